//! Keywords a destination will not keep. Dovecot keeps any keyword, so a small rewriting relay
//! (plain IMAP) plays the stricter server: it hides `\*` from PERMANENTFLAGS, or turns a
//! keyword into an invalid atom so the destination refuses the APPEND.

#[path = "support/proxy.rs"]
mod proxy;
mod support;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::process::Output;
use std::time::Duration;

use serde_json::Value;
use support::{Dovecot, btsx};

const USER: &str = "alice";

/// Relays loopback connections to `upstream`, replacing `from` with `to` in one direction.
/// Patterns split across reads are caught by carrying the last bytes over.
struct Relay {
    port: u16,
}

impl Relay {
    fn start(upstream: u16, to_server: bool, from: &'static [u8], to: &'static [u8]) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        std::thread::spawn(move || {
            for client in listener.incoming().take(64).flatten() {
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                let (c2, s2) = match (client.try_clone(), server.try_clone()) {
                    (Ok(c), Ok(s)) => (c, s),
                    _ => continue,
                };
                let (up_rw, down_rw) = if to_server {
                    (Some((from, to)), None)
                } else {
                    (None, Some((from, to)))
                };
                std::thread::spawn(move || pump(client, server, up_rw));
                std::thread::spawn(move || pump(s2, c2, down_rw));
            }
        });
        Relay { port }
    }
}

fn pump(mut from: TcpStream, mut to: TcpStream, rewrite: Option<(&[u8], &[u8])>) {
    let _ = from.set_read_timeout(Some(Duration::from_secs(60)));
    let mut buf = vec![0u8; 64 * 1024];
    let mut carry: Vec<u8> = Vec::new();
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        carry.extend_from_slice(&buf[..n]);
        let out = match rewrite {
            None => std::mem::take(&mut carry),
            Some((pat, rep)) => {
                let mut out = Vec::with_capacity(carry.len());
                let mut i = 0;
                while i < carry.len() {
                    if carry[i..].starts_with(pat) {
                        out.extend_from_slice(rep);
                        i += pat.len();
                    } else if pat.starts_with(&carry[i..]) {
                        // The tail may be the start of a pattern split across reads.
                        break;
                    } else {
                        out.push(carry[i]);
                        i += 1;
                    }
                }
                carry.drain(..i);
                out
            }
        };
        if to.write_all(&out).is_err() {
            break;
        }
    }
    let _ = to.write_all(&carry);
    let _ = to.shutdown(Shutdown::Write);
}

fn migrate_via(src: &Dovecot, relay: &Relay, dst: &Dovecot, state: &Path) -> Output {
    btsx()
        .arg("migrate")
        .arg(src.url(USER))
        .arg(format!("imap://{USER}@localhost:{}", relay.port))
        .arg("--ca-file")
        .arg(&src.ca_file)
        .arg("--plaintext")
        .arg("--state")
        .arg(state)
        .arg("--json")
        .env("BTSX_SRC_PASSWORD", src.password(USER))
        .env("BTSX_DST_PASSWORD", dst.password(USER))
        .output()
        .expect("run btsx")
}

fn events(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn is_keyword(f: &str) -> bool {
    !f.starts_with('\\')
}

#[test]
fn keywords_the_destination_cannot_keep_are_dropped_with_a_warning() {
    let src = Dovecot::source();
    let dst = Dovecot::destination();
    src.generate(USER, &["--seed", "21", "--messages", "120"]);
    // The destination's PERMANENTFLAGS lose `\*`: no new keywords there.
    let relay = Relay::start(dst.imap_port, false, b" \\*)]", b")]");
    let tmp = tempfile::tempdir().expect("tmp");
    let out = migrate_via(&src, &relay, &dst, &tmp.path().join("s.json"));
    let ev = events(&out);
    assert_eq!(out.status.code(), Some(0), "{:?}", ev.last());
    let warnings: Vec<&str> = ev
        .iter()
        .filter(|e| e["type"] == "warning")
        .filter_map(|e| e["message"].as_str())
        .filter(|m| m.contains("does not accept the keyword"))
        .collect();
    assert!(
        warnings.iter().any(|w| w.contains("'Work'")),
        "{warnings:?}"
    );
    let src_d = src.digest(USER);
    let dst_d = dst.digest(USER);
    assert_eq!(
        support::total_messages(&src_d),
        support::total_messages(&dst_d)
    );
    // System flags arrive, keywords do not.
    let flags = |d: &support::Digest, keyword: bool| -> usize {
        d.folders
            .values()
            .flat_map(|f| &f.messages)
            .flat_map(|m| &m.flags)
            .filter(|f| is_keyword(f) == keyword)
            .count()
    };
    assert!(flags(&src_d, true) > 0);
    assert_eq!(flags(&dst_d, true), 0, "no keyword stored");
    assert_eq!(
        flags(&src_d, false),
        flags(&dst_d, false),
        "system flags kept"
    );
}

#[test]
fn a_refused_keyword_is_dropped_on_a_second_try() {
    let src = Dovecot::source();
    let dst = Dovecot::destination();
    src.generate(USER, &["--seed", "22", "--messages", "120"]);
    // "Work" becomes "W\\rk", an invalid atom: the destination answers BAD to any APPEND
    // (and any MULTIAPPEND batch) carrying it.
    let relay = Relay::start(dst.imap_port, true, b"Work", b"W\\rk");
    let tmp = tempfile::tempdir().expect("tmp");
    let out = migrate_via(&src, &relay, &dst, &tmp.path().join("s.json"));
    let ev = events(&out);
    let summary = ev.last().expect("events");
    assert_eq!(summary["type"], "summary");
    assert_eq!(out.status.code(), Some(0), "{summary}");
    let src_d = src.digest(USER);
    let with_work = src_d
        .folders
        .values()
        .flat_map(|f| &f.messages)
        .filter(|m| m.flags.iter().any(|f| f == "Work"))
        .count();
    assert!(with_work > 0);
    let retried = ev
        .iter()
        .filter(|e| e["type"] == "warning")
        .filter(|e| {
            e["message"]
                .as_str()
                .unwrap_or_default()
                .contains("copied without its keywords")
        })
        .count();
    assert_eq!(
        retried, with_work,
        "one warning per message that lost keywords"
    );
    let dst_d = dst.digest(USER);
    assert_eq!(
        support::total_messages(&src_d),
        support::total_messages(&dst_d),
        "every message arrived, none twice"
    );
    assert_eq!(summary["messages_copied"].as_u64(), Some(120));
}

// ------------------------------------------------------------------------------------------
// Fault injection on the resend paths (issue 11): whatever step a connection is cut at,
// every source message ends on the destination exactly once.

/// (sha256, internal date) of every message: what must arrive, keywords aside.
fn bodies(d: &support::Digest) -> Vec<(String, i64)> {
    let mut v: Vec<(String, i64)> = d
        .folders
        .values()
        .flat_map(|f| &f.messages)
        .map(|m| (m.sha256.clone(), m.internaldate))
        .collect();
    v.sort();
    v
}

fn cut_rule(dir: proxy::Dir, at: u64) -> proxy::Rule {
    proxy::Rule {
        dir,
        action: proxy::Action::Cut,
        first_at: at,
        every: u64::MAX / 4,
        max_faults: 1,
        min_conn_bytes: 0,
        from_conn: 0,
        per_connection: false,
    }
}

/// One run through `url` (a proxy in front of the destination); it must end complete and
/// lossless, the cut having been healed by a reconnect.
fn run_through(
    src: &Dovecot,
    src_url: &str,
    dst: &Dovecot,
    url: &str,
    plaintext: bool,
    what: &str,
) -> Value {
    let tmp = tempfile::tempdir().expect("tmp");
    let mut c = btsx();
    c.arg("migrate")
        .arg(src_url)
        .arg(url)
        .arg("--ca-file")
        .arg(&src.ca_file)
        .arg("--state")
        .arg(tmp.path().join("s.json"))
        .arg("--jobs")
        .arg("1")
        .arg("--json")
        .env("BTSX_SRC_PASSWORD", src.password(USER))
        .env("BTSX_DST_PASSWORD", dst.password(USER))
        .env("XDG_STATE_HOME", tmp.path());
    if plaintext {
        c.arg("--plaintext");
    }
    let out = c.output().expect("run btsx");
    let ev = events(&out);
    let summary = ev.last().cloned().expect("events");
    assert_eq!(summary["type"], "summary", "{what}");
    assert_eq!(
        bodies(&src.digest(USER)),
        bodies(&dst.digest(USER)),
        "{what}: every message once ({summary})"
    );
    summary
}

#[test]
fn cuts_anywhere_in_the_keyword_refused_resend_lose_and_double_nothing() {
    let src = Dovecot::source();
    src.generate(USER, &["--seed", "22", "--messages", "40"]);
    // Cuts on the destination side (APPENDs, their answers) and on the source side (the
    // bodies fetched again for the resends).
    let d = |dir, at| (false, dir, at);
    let s = |dir, at| (true, dir, at);
    for (i, (on_source, dir, at)) in [
        d(proxy::Dir::ClientToServer, 30_000u64),
        d(proxy::Dir::ClientToServer, 120_000),
        d(proxy::Dir::ClientToServer, 260_000),
        d(proxy::Dir::ClientToServer, 420_000),
        d(proxy::Dir::ClientToServer, 600_000),
        d(proxy::Dir::ServerToClient, 2_500),
        d(proxy::Dir::ServerToClient, 4_000),
        d(proxy::Dir::ServerToClient, 6_000),
        s(proxy::Dir::ServerToClient, 300_000),
        s(proxy::Dir::ServerToClient, 700_000),
        s(proxy::Dir::ServerToClient, 1_000_000),
        s(proxy::Dir::ServerToClient, 850_000),
    ]
    .into_iter()
    .enumerate()
    {
        let dst = Dovecot::destination();
        // btsx → (cutting proxy) → keyword-breaking relay → destination; the source
        // directly or through the cutting proxy.
        let relay = Relay::start(dst.imap_port, true, b"Work", b"W\\rk");
        let cut = proxy::Proxy::start(
            if on_source {
                src.imaps_port
            } else {
                relay.port
            },
            Some(cut_rule(dir, at)),
        );
        let (src_url, url) = if on_source {
            (
                format!("imaps://{USER}@localhost:{}", cut.port),
                format!("imap://{USER}@localhost:{}", relay.port),
            )
        } else {
            (
                src.url(USER),
                format!("imap://{USER}@localhost:{}", cut.port),
            )
        };
        let what = format!(
            "cut {i} ({} {dir:?} at {at})",
            if on_source { "source" } else { "destination" }
        );
        let s = run_through(&src, &src_url, &dst, &url, true, &what);
        assert_eq!(s["exit_code"], 0, "{what}: {s}");
        assert_eq!(s["messages_failed"], 0, "{what}: {s}");
        let settled = s["messages_copied"].as_u64().unwrap_or(0)
            + s["messages_skipped"].as_u64().unwrap_or(0);
        assert_eq!(settled, 40, "{what}: each message accounted once: {s}");
        assert!(cut.faults() > 0, "{what}: the cut happened");
    }
}

#[test]
fn cuts_anywhere_in_the_multiappend_refused_resend_lose_and_double_nothing() {
    let src = Dovecot::source();
    src.generate(USER, &["--seed", "14", "--messages", "150"]);
    let big = bodies(&src.digest(USER)).len()
        - src
            .digest(USER)
            .folders
            .values()
            .flat_map(|f| &f.messages)
            .filter(|m| m.size <= 100 * 1024)
            .count();
    assert!(big > 0, "some messages over the limit");
    for (i, (dir, at)) in [
        (proxy::Dir::ClientToServer, 200_000u64),
        (proxy::Dir::ClientToServer, 900_000),
        (proxy::Dir::ClientToServer, 1_700_000),
        (proxy::Dir::ServerToClient, 5_000),
        (proxy::Dir::ServerToClient, 9_000),
    ]
    .into_iter()
    .enumerate()
    {
        // Refuses messages over 100 kB without saying so in advance: whole MULTIAPPEND
        // batches are refused, then resent one by one.
        let dst = Dovecot::start(support::ServerOpts {
            separator: '.',
            max_mail_size: Some("100k".into()),
            extra_conf: Some("imap_capability =\n".into()),
            ..Default::default()
        });
        let cut = proxy::Proxy::start(dst.imaps_port, Some(cut_rule(dir, at)));
        let url = format!("imaps://{USER}@localhost:{}", cut.port);
        let what = format!("cut {i} ({dir:?} at {at})");
        let tmp = tempfile::tempdir().expect("tmp");
        let out = btsx()
            .arg("migrate")
            .arg(src.url(USER))
            .arg(&url)
            .arg("--ca-file")
            .arg(&src.ca_file)
            .arg("--state")
            .arg(tmp.path().join("s.json"))
            .arg("--jobs")
            .arg("1")
            .arg("--json")
            .env("BTSX_SRC_PASSWORD", src.password(USER))
            .env("BTSX_DST_PASSWORD", dst.password(USER))
            .env("XDG_STATE_HOME", tmp.path())
            .output()
            .expect("run btsx");
        let ev = events(&out);
        let s = ev.last().cloned().expect("events");
        assert_eq!(s["exit_code"], 1, "{what}: {s}");
        assert_eq!(
            s["messages_failed"].as_u64(),
            Some(big as u64),
            "{what}: {s}"
        );
        let mut want: Vec<(String, i64)> = src
            .digest(USER)
            .folders
            .values()
            .flat_map(|f| &f.messages)
            .filter(|m| m.size <= 100 * 1024)
            .map(|m| (m.sha256.clone(), m.internaldate))
            .collect();
        want.sort();
        assert_eq!(
            want,
            bodies(&dst.digest(USER)),
            "{what}: every message once"
        );
        let settled = ["messages_copied", "messages_skipped", "messages_failed"]
            .iter()
            .map(|k| s[k].as_u64().unwrap_or(0))
            .sum::<u64>();
        assert_eq!(settled, 150, "{what}: each message accounted once: {s}");
        assert!(cut.faults() > 0, "{what}: the cut happened");
    }
}

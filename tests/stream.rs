//! Issue 12 item 6: a message larger than a batch is copied alone and streamed, from the
//! source's FETCH literal into the destination's APPEND literal, never held whole. Against
//! real Dovecot servers: it arrives byte-exact among small ones (with LITERAL+ and with
//! synchronizing literals, into Cyrus and out of it), `--delete-source` proves and deletes it,
//! a refusal fails it alone, and a cut in the middle of the stream on either side leaves
//! neither a partial nor a doubled copy.

#[path = "support/fake.rs"]
mod fake;
#[path = "support/proxy.rs"]
mod proxy;
mod support;

use std::path::Path;
use std::process::Output;

use fake::{Fake, Rule as FakeRule, Script, assert_each_once, folder};
use proxy::{Dir, Proxy, Rule};
use serde_json::Value;
use support::{
    Cyrus, Digest, Dovecot, Others, Server, ServerOpts, assert_same_mail, btsx, digest_map,
    folder_map, json_lines, summary,
};

const USER: &str = "alice";
const MB: u64 = 1024 * 1024;
/// The giant message: well above the 2 MiB batch, well below anything slow.
const GIANT_MB: &str = "40";

/// A source whose INBOX holds 30 small messages and one of 40 MiB, and its digest.
fn source_with_giant(seed: &str) -> (Dovecot, Digest) {
    let src = Dovecot::source();
    src.generate(
        USER,
        &[
            "--seed",
            seed,
            "--profile",
            "flat",
            "--messages",
            "30",
            "--big-message-mb",
            GIANT_MB,
        ],
    );
    let d = src.digest(USER);
    assert_eq!(d.folders["INBOX"].messages.len(), 31);
    assert!(d.folders["INBOX"].messages.iter().any(|m| m.size > 40 * MB));
    (src, d)
}

/// `btsx migrate SRC_URL DST_URL --json -v EXTRA…` for alice on both sides.
fn migrate(
    (src, src_url): (&Dovecot, &str),
    (dst, dst_url): (&Dovecot, &str),
    state: &Path,
    extra: &[&str],
) -> Output {
    btsx()
        .arg("migrate")
        .arg(src_url)
        .arg(dst_url)
        .arg("--ca-file")
        .arg(&src.ca_file)
        .arg("--state")
        .arg(state.join("state.json"))
        .args(["--json", "-v"])
        .args(extra)
        .env("BTSX_SRC_PASSWORD", src.password(USER))
        .env("BTSX_DST_PASSWORD", dst.password(USER))
        .env("XDG_STATE_HOME", state)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run btsx")
}

/// The sizes of the messages the run says it streamed (its `detail` events).
fn streamed(ev: &[Value]) -> Vec<u64> {
    ev.iter()
        .filter(|e| e["type"] == "detail")
        .filter_map(|e| e["message"].as_str())
        .filter(|m| m.contains("streamed from the source"))
        .filter_map(|m| {
            let open = m.find('(')?;
            m[open + 1..].split(' ').next()?.parse().ok()
        })
        .collect()
}

fn ctx(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let tail: Vec<&str> = stdout
        .lines()
        .filter(|l| !l.contains("\"type\":\"progress\""))
        .collect();
    format!(
        "exit {}\nstderr:\n{}\nevents:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        tail[tail.len().saturating_sub(40)..].join("\n")
    )
}

/// Exit 0, every message copied, exactly one streamed (the giant one), and the destination
/// holds each source message once: bytes (sha256), flags and dates.
fn assert_copied(out: &Output, src: &Digest, dst: &Dovecot) -> Vec<Value> {
    let ev = json_lines(out);
    let c = ctx(out);
    assert_eq!(out.status.code(), Some(0), "{c}");
    let s = summary(&ev);
    assert_eq!(s["messages_copied"], 31, "{c}");
    assert_eq!(s["messages_failed"], 0, "{c}");
    let giant = streamed(&ev);
    assert!(
        !giant.is_empty() && giant.iter().all(|&n| n > 2 * MB),
        "only messages above a batch are streamed, the giant one among them: {giant:?}\n{c}"
    );
    assert!(giant.iter().any(|&n| n > 40 * MB), "{giant:?}\n{c}");
    assert_same_mail("", src, &dst.digest(USER), &folder_map(s), Others::Empty);
    ev
}

#[test]
fn a_giant_message_streams_byte_exact_among_small_ones() {
    let ((src, src_digest), plus, sync) = std::thread::scope(|s| {
        let a = s.spawn(|| source_with_giant("61"));
        let b = s.spawn(Dovecot::destination);
        // No LITERAL+ and no MULTIAPPEND (as Gmail): the APPEND waits for the server's `+`.
        let c = s.spawn(|| {
            Dovecot::start(ServerOpts {
                separator: '.',
                extra_conf: Some(
                    "imap_capability = IMAP4rev1 SASL-IR ID ENABLE IDLE NAMESPACE CHILDREN UNSELECT SPECIAL-USE UIDPLUS\n"
                        .into(),
                ),
                ..ServerOpts::default()
            })
        });
        (a.join().unwrap(), b.join().unwrap(), c.join().unwrap())
    });
    for dst in [&plus, &sync] {
        let state = tempfile::tempdir().expect("state dir");
        let out = migrate(
            (&src, &src.url(USER)),
            (dst, &dst.url(USER)),
            state.path(),
            &[],
        );
        assert_copied(&out, &src_digest, dst);
        // A re-run finds it in place: nothing is copied twice.
        let out = migrate(
            (&src, &src.url(USER)),
            (dst, &dst.url(USER)),
            state.path(),
            &[],
        );
        let ev = json_lines(&out);
        assert_eq!(out.status.code(), Some(0), "{}", ctx(&out));
        assert_eq!(summary(&ev)["messages_copied"], 0, "{}", ctx(&out));
    }
    assert_eq!(src.digest(USER), src_digest, "the source is unchanged");
}

#[test]
fn delete_source_proves_and_deletes_a_streamed_message() {
    let ((src, src_digest), dst) = std::thread::scope(|s| {
        let a = s.spawn(|| source_with_giant("62"));
        let b = s.spawn(Dovecot::destination);
        (a.join().unwrap(), b.join().unwrap())
    });
    let state = tempfile::tempdir().expect("state dir");
    let out = migrate(
        (&src, &src.url(USER)),
        (&dst, &dst.url(USER)),
        state.path(),
        &["--delete-source", "--yes"],
    );
    let ev = assert_copied(&out, &src_digest, &dst);
    let s = summary(&ev);
    assert_eq!(s["messages_altered"], 0, "{}", ctx(&out));
    assert_eq!(s["messages_deleted_on_source"], 31, "{}", ctx(&out));
    let left: usize = src
        .digest(USER)
        .folders
        .values()
        .map(|f| f.messages.len())
        .sum();
    assert_eq!(left, 0, "every proven message is deleted from the source");
}

#[test]
fn a_cut_in_the_middle_of_the_stream_leaves_no_partial_or_doubled_copy() {
    let ((src, src_digest), dst_a, dst_b) = std::thread::scope(|s| {
        let a = s.spawn(|| source_with_giant("63"));
        let b = s.spawn(Dovecot::destination);
        let c = s.spawn(Dovecot::destination);
        (a.join().unwrap(), b.join().unwrap(), c.join().unwrap())
    });
    // The giant message is the last one appended: 20 MB into the run is inside it. First the
    // destination's link breaks while it receives the APPEND, then the source's while it sends
    // the body.
    let cases = [
        (&dst_a, Dir::ClientToServer, false),
        (&dst_b, Dir::ServerToClient, true),
    ];
    for (dst, dir, on_source) in cases {
        let port = if on_source {
            src.imaps_port
        } else {
            dst.imaps_port
        };
        let proxy = Proxy::start(port, Some(Rule::cut_every(dir, 20 * MB, 1)));
        let via = format!("imaps://{USER}@localhost:{}", proxy.port);
        let (src_url, dst_url) = if on_source {
            (via, dst.url(USER))
        } else {
            (src.url(USER), via)
        };
        let state = tempfile::tempdir().expect("state dir");
        let out = migrate(
            (&src, &src_url),
            (dst, &dst_url),
            state.path(),
            &["--timeout", "30s"],
        );
        let c = ctx(&out);
        assert_eq!(proxy.faults(), 1, "the proxy cut once\n{c}");
        let ev = assert_copied(&out, &src_digest, dst);
        let s = summary(&ev);
        let side = if on_source { "source" } else { "destination" };
        assert!(
            s[format!("reconnects_{side}")].as_u64().unwrap_or(0) >= 1,
            "the {side} reconnected\n{c}"
        );
    }
}

#[test]
fn a_streamed_message_the_destination_refuses_fails_alone() {
    // Messages over 10 MB are refused, and APPENDLIMIT is not advertised, so btsx learns it
    // from the APPEND's answer: after the literal (LITERAL+), or instead of the `+` (then the
    // source's body is read to its end and dropped, and the connection goes on).
    let ((src, src_digest), plus, sync) = std::thread::scope(|s| {
        let a = s.spawn(|| source_with_giant("64"));
        let dst = |caps: &'static str| {
            move || {
                Dovecot::start(ServerOpts {
                    separator: '.',
                    max_mail_size: Some("10M".into()),
                    extra_conf: Some(format!("imap_capability ={caps}\n")),
                    ..ServerOpts::default()
                })
            }
        };
        let b = s.spawn(dst(""));
        let c = s.spawn(dst(
            " IMAP4rev1 SASL-IR ID ENABLE IDLE NAMESPACE CHILDREN UNSELECT SPECIAL-USE UIDPLUS",
        ));
        (a.join().unwrap(), b.join().unwrap(), c.join().unwrap())
    });
    let mut small = src_digest.clone();
    if let Some(inbox) = small.folders.get_mut("INBOX") {
        inbox.messages.retain(|m| m.size < 10 * MB);
    }
    for dst in [&plus, &sync] {
        let state = tempfile::tempdir().expect("state dir");
        let out = migrate(
            (&src, &src.url(USER)),
            (dst, &dst.url(USER)),
            state.path(),
            &[],
        );
        let ev = json_lines(&out);
        let c = ctx(&out);
        assert_eq!(out.status.code(), Some(1), "partial\n{c}");
        let s = summary(&ev);
        assert_eq!(s["messages_copied"], 30, "{c}");
        assert_eq!(s["messages_failed"], 1, "{c}");
        let failed: Vec<&Value> = ev
            .iter()
            .filter(|e| e["type"] == "message_failed")
            .collect();
        assert_eq!(failed.len(), 1, "{c}");
        let reason = failed[0]["reason"].as_str().unwrap_or_default();
        assert!(reason.contains("the destination refused it"), "{reason}");
        assert_same_mail("", &small, &dst.digest(USER), &folder_map(s), Others::Empty);
    }
}

#[test]
fn a_giant_message_streams_into_cyrus_and_back_out() {
    let ((src, src_digest), cyrus, back) = std::thread::scope(|s| {
        let a = s.spawn(|| source_with_giant("65"));
        let b = s.spawn(Cyrus::start_default);
        let c = s.spawn(Dovecot::destination);
        (a.join().unwrap(), b.join().unwrap(), c.join().unwrap())
    });
    let hops: [(&dyn Server, &dyn Server); 2] = [(&src, &cyrus), (&cyrus, &back)];
    for (from, to) in hops {
        let state = tempfile::tempdir().expect("state dir");
        let out = support::migrate_cmd(
            from,
            to,
            USER,
            &state.path().join("s.json"),
            &["--json", "-v"],
        )
        .output()
        .expect("run btsx");
        let ev = json_lines(&out);
        let c = format!("{} → {}: {}", from.kind(), to.kind(), ctx(&out));
        assert_eq!(out.status.code(), Some(0), "{c}");
        let s = summary(&ev);
        assert_eq!(s["messages_copied"], 31, "{c}");
        assert!(streamed(&ev).iter().any(|&n| n > 40 * MB), "{c}");
        let got = to.digest(USER);
        assert_same_mail(&c, &src_digest, &got, &digest_map(s, &got), Others::Empty);
    }
}

// ------------------------------------------------------------------------------------------
// Against the scripted fake server (tests/support/fake.rs), every message streamed
// (`BTSX_STREAM_ABOVE=0`): answers a real server will not give on demand.

#[test]
fn streamed_appends_meet_trycreate_unavailable_and_a_source_no() {
    let mut broken = folder(b"Broken", 9, 1);
    broken.messages[0].uid = 7;
    broken.uid_next = 8;
    let src = Fake::start(Script {
        folders: vec![folder(b"INBOX", 1, 3), broken],
        rules: vec![FakeRule::always(
            r"^UID FETCH 7 \(UID BODY\.PEEK\[\]\)",
            "{tag} NO Message is unavailable\r\n",
        )],
        ..Default::default()
    });
    // The first APPEND meets [TRYCREATE], the third [UNAVAILABLE].
    let dst = Fake::start(Script {
        folders: vec![folder(b"INBOX", 100, 0), folder(b"Broken", 100, 0)],
        rules: vec![
            FakeRule::once("^APPEND", "{tag} NO [TRYCREATE] Mailbox doesn't exist\r\n"),
            FakeRule::once_after(1, "^APPEND", "{tag} NO [UNAVAILABLE] Backend busy\r\n"),
        ],
        ..Default::default()
    });
    let tmp = tempfile::tempdir().expect("tmp");
    let out = btsx()
        .arg("migrate")
        .arg(src.url(USER))
        .arg(dst.url(USER))
        .args([
            "--plaintext",
            "--json",
            "-v",
            "--jobs",
            "1",
            "--timeout",
            "20s",
        ])
        .arg("--state")
        .arg(tmp.path().join("state.json"))
        .env("BTSX_SRC_PASSWORD", "pw")
        .env("BTSX_DST_PASSWORD", "pw")
        .env("XDG_STATE_HOME", tmp.path())
        .env("BTSX_STREAM_ABOVE", "0")
        .output()
        .expect("run btsx");
    let c = ctx(&out);
    let ev = json_lines(&out);
    let s = summary(&ev);
    assert_eq!(out.status.code(), Some(1), "one message failed\n{c}");
    assert_eq!(s["messages_copied"], 3, "{c}");
    assert!(
        s["reconnects_destination"].as_u64().unwrap_or(0) >= 1,
        "{c}"
    );
    assert!(streamed(&ev).len() >= 3, "every message went streamed\n{c}");
    // CREATE followed the streamed APPEND's [TRYCREATE].
    let sent = dst.commands();
    let first = sent
        .iter()
        .position(|c| c.contains("APPEND"))
        .expect("append");
    assert!(
        sent[first..].iter().any(|c| c.contains("CREATE INBOX")),
        "{sent:?}"
    );
    // The source's NO is about that one message: it fails alone, with the server's words.
    assert!(
        ev.iter().any(|e| e["type"] == "message_failed"
            && e["folder"] == "Broken"
            && e["uid"] == 7
            && e["reason"].as_str().is_some_and(
                |m| m.contains("would not give it: ") && m.contains("Message is unavailable")
            )),
        "{c}"
    );
    assert_each_once(&dst, b"INBOX", 1, 3, &c);
}

#[test]
fn a_streamed_message_whose_keywords_are_refused_is_streamed_again_without_them() {
    let mut inbox = folder(b"INBOX", 1, 2);
    inbox.messages[1].flags = "\\Seen $Label1".into();
    let src = Fake::start(Script {
        folders: vec![inbox],
        ..Default::default()
    });
    let dst = Fake::start(Script {
        folders: vec![folder(b"INBOX", 100, 0)],
        rules: vec![FakeRule::always(
            r"^APPEND INBOX \([^)]*\$Label1",
            "{tag} NO Invalid keyword\r\n",
        )],
        ..Default::default()
    });
    let tmp = tempfile::tempdir().expect("tmp");
    let out = btsx()
        .arg("migrate")
        .arg(src.url(USER))
        .arg(dst.url(USER))
        .args([
            "--plaintext",
            "--json",
            "-v",
            "--jobs",
            "1",
            "--timeout",
            "20s",
        ])
        .arg("--state")
        .arg(tmp.path().join("state.json"))
        .env("BTSX_SRC_PASSWORD", "pw")
        .env("BTSX_DST_PASSWORD", "pw")
        .env("XDG_STATE_HOME", tmp.path())
        .env("BTSX_STREAM_ABOVE", "0")
        .output()
        .expect("run btsx");
    let c = ctx(&out);
    let ev = json_lines(&out);
    assert_eq!(out.status.code(), Some(0), "{c}");
    assert_eq!(summary(&ev)["messages_copied"], 2, "{c}");
    assert!(
        ev.iter().any(|e| e["type"] == "warning"
            && e["message"]
                .as_str()
                .is_some_and(|m| m.contains("copied without its keywords $Label1"))),
        "{c}"
    );
    assert_each_once(&dst, b"INBOX", 1, 2, &c);
    // The second message was read from the source twice: once per APPEND.
    let fetches = src
        .commands()
        .iter()
        .filter(|c| c.contains("UID FETCH 2 (UID BODY.PEEK[])"))
        .count();
    assert_eq!(fetches, 2, "{c}");
}

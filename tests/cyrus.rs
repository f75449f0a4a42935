//! The core migrate and resume tests with Cyrus IMAP (classic namespace: `INBOX.` prefix,
//! separator '.') as destination and as source, the other side a Dovecot; checked by the
//! independent reader scripts/digest.py.
//!
//! Cyrus rewrites 8-bit header bytes to 'X', replaces an INTERNALDATE of 1 January 1970
//! 00:00:00 UTC by the time of the APPEND and refuses earlier dates (issue 15): the lossless
//! tests generate no such message (`--no-8bit-headers`), and one test documents the alteration.

mod support;

use std::fs::{self, File};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{
    Cyrus, Digest, Dovecot, Others, Server, assert_same_mail, digest_map, json_lines, parse_lines,
    summary,
};

const USER: &str = "alice";

fn migrate_cmd(src: &dyn Server, dst: &dyn Server, state: &Path, extra: &[&str]) -> Command {
    support::migrate_cmd(src, dst, USER, state, extra)
}

fn migrate(src: &dyn Server, dst: &dyn Server, state: &Path, extra: &[&str]) -> Output {
    migrate_cmd(src, dst, state, extra)
        .output()
        .expect("run btsx")
}

/// A finished `--json` run that must exit 0; returns its events.
fn migrate_ok(src: &dyn Server, dst: &dyn Server, state: &Path) -> Vec<Value> {
    let out = migrate(src, dst, state, &["--json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{} → {}: stderr: {}\nstdout: {}\n--- destination log ---\n{}",
        src.kind(),
        dst.kind(),
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout),
        dst.log()
    );
    json_lines(&out)
}

fn total(d: &Digest) -> u64 {
    support::total_messages(d) as u64
}

/// Copies everything, checks it with digest.py, then checks that a re-run with the state
/// and one without it copy nothing.
fn lossless_round(src: &dyn Server, dst: &dyn Server) {
    let src_digest = src.digest(USER);
    let n = total(&src_digest);
    assert!(n > 0);
    let tmp = tempfile::tempdir().expect("tmp");
    let state = tmp.path().join("job.json");

    let events = migrate_ok(src, dst, &state);
    let sum = summary(&events);
    assert_eq!(sum["status"], "complete");
    assert_eq!(sum["messages_copied"].as_u64(), Some(n));
    assert_eq!(sum["messages_failed"].as_u64(), Some(0));
    let dst_digest = dst.digest(USER);
    let map = digest_map(sum, &dst_digest);
    assert_eq!(map.len(), src_digest.folders.len(), "{map:?}");
    assert_same_mail(
        &format!("{} → {}", src.kind(), dst.kind()),
        &src_digest,
        &dst_digest,
        &map,
        Others::Empty,
    );
    assert_eq!(src.digest(USER), src_digest, "source unchanged");
    // btsx verify agrees.
    let (code, events) = support::verify_json(src, dst, USER);
    let v = events.last().expect("verify_summary");
    assert_eq!(
        code,
        Some(0),
        "{} → {}: verify: {v}",
        src.kind(),
        dst.kind()
    );
    assert_eq!(v["missing"], 0, "{v}");
    assert_eq!(v["source_messages"].as_u64(), Some(n), "{v}");

    // Again with the state: nothing to copy.
    let events = migrate_ok(src, dst, &state);
    let sum = summary(&events);
    assert_eq!(sum["messages_copied"].as_u64(), Some(0));
    // Without the state: the destination's index finds every message.
    let events = migrate_ok(src, dst, &tmp.path().join("fresh.json"));
    let sum = summary(&events);
    assert_eq!(sum["messages_copied"].as_u64(), Some(0));
    assert_eq!(sum["messages_skipped"].as_u64(), Some(n));
    assert_eq!(dst.digest(USER), dst_digest, "nothing duplicated");
}

#[test]
fn cyrus_serves_the_classic_namespace() {
    let c = Cyrus::start_default();
    let d = c.digest(USER);
    assert_eq!(d.separator, '.');
    assert_eq!(d.folders.keys().collect::<Vec<_>>(), ["INBOX"]);
    let t = c.imap(USER, &["NAMESPACE", "CAPABILITY"]);
    assert!(t.contains("* NAMESPACE ((\"INBOX.\" \".\"))"), "{t}");
    assert!(t.contains("IMAP4rev1"), "{t}");
    let g = c.generate(USER, &["--seed", "5", "--messages", "30"]);
    let d = c.digest(USER);
    assert_eq!(g["messages"].as_u64(), Some(total(&d)));
    assert!(d.folders.contains_key("INBOX.Archive.2020.Q1"), "{d:?}");
    assert!(d.folders.contains_key("INBOX.Entwürfe"), "{d:?}");
    assert!(!d.folders["INBOX.Old Mail"].subscribed);
    assert!(d.folders["INBOX.Drafts"].subscribed);
}

/// Pre-login capabilities on the plain port (STARTTLS must be offered there).
fn greeting_capabilities(port: u16) -> String {
    use std::io::{BufRead, BufReader, Write};
    let s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut w = s.try_clone().expect("clone");
    let mut r = BufReader::new(s);
    let mut text = String::new();
    r.read_line(&mut text).expect("greeting");
    w.write_all(b"a CAPABILITY\r\na LOGOUT\r\n").expect("write");
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).expect("read") == 0 || line.starts_with("a OK LOGOUT") {
            return text;
        }
        let done = line.starts_with("a ");
        text.push_str(&line);
        if done && text.contains("BYE") {
            return text;
        }
    }
}

#[test]
fn cyrus_speaks_tls_and_starttls() {
    let c = Cyrus::start_default();
    assert!(greeting_capabilities(c.imap_port).contains("STARTTLS"));
    c.generate(
        USER,
        &["--seed", "8", "--messages", "20", "--no-8bit-headers"],
    );
    // digest.py over imaps, the certificate checked against the fixtures' CA.
    let out = support::python3()
        .arg(support::script("digest.py"))
        .args(["--host", "localhost", "--tls", "--ca-file"])
        .arg(&c.ca_file)
        .args(["--port", &c.imaps_port.to_string()])
        .args(["--user", USER, "--password", &c.password(USER)])
        .output()
        .expect("run digest.py");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let over_tls: Digest = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(over_tls, c.digest(USER));
    // btsx reads a Cyrus source through STARTTLS.
    let dst = Dovecot::destination();
    let tmp = tempfile::tempdir().expect("tmp");
    let out = support::btsx()
        .arg("migrate")
        .arg(c.starttls_url(USER))
        .arg(dst.url(USER))
        .arg("--ca-file")
        .arg(&c.ca_file)
        .arg("--state")
        .arg(tmp.path().join("job.json"))
        .arg("--json")
        .env("BTSX_SRC_PASSWORD", c.password(USER))
        .env("BTSX_DST_PASSWORD", dst.password(USER))
        .env("XDG_STATE_HOME", tmp.path())
        .stdin(Stdio::null())
        .output()
        .expect("run btsx");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(summary(&json_lines(&out))["messages_copied"], 20);
}

#[test]
fn cyrus_stops_on_drop_and_when_its_owner_is_gone() {
    let (port, dir) = {
        let c = Cyrus::start_default();
        assert!(TcpStream::connect(("127.0.0.1", c.imap_port)).is_ok());
        (c.imap_port, c.dir.clone())
    };
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
    assert!(!dir.exists());

    // The watchdog: an instance owned by a process that dies stops by itself.
    let tmp = tempfile::Builder::new()
        .prefix("btsx-cyrus-owner-")
        .tempdir()
        .expect("tmp");
    let mut owner = Command::new("sleep")
        .arg("600")
        .spawn()
        .expect("spawn sleep");
    let out = Command::new("bash")
        .arg(support::script("cyrus-server.sh"))
        .arg("start")
        .arg(tmp.path().join("srv"))
        .arg("--owner-pid")
        .arg(owner.id().to_string())
        .stdin(Stdio::null())
        .output()
        .expect("cyrus-server.sh start");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let port: u16 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("IMAP_PORT="))
        .and_then(|p| p.parse().ok())
        .expect("IMAP_PORT");
    assert!(TcpStream::connect(("127.0.0.1", port)).is_ok());
    owner.kill().expect("kill owner");
    owner.wait().expect("reap owner");
    let t = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_ok() {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "Cyrus still serves 30 s after its owner died"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
#[should_panic(expected = "cyrus-server.sh start failed")]
fn cyrus_that_cannot_start_fails_the_test() {
    let _c = Cyrus::start(&[], Some("tls_server_cert: /nonexistent/cert.pem\n"));
}

#[test]
fn dovecot_to_cyrus_is_lossless_and_reruns_copy_nothing() {
    let src = Dovecot::source();
    let dst = Cyrus::start_default();
    src.generate(
        USER,
        &["--seed", "31", "--messages", "200", "--no-8bit-headers"],
    );
    lossless_round(&src, &dst);
}

#[test]
fn cyrus_to_dovecot_is_lossless_and_reruns_copy_nothing() {
    let src = Cyrus::start_default();
    let dst = Dovecot::source();
    src.generate(
        USER,
        &["--seed", "32", "--messages", "200", "--no-8bit-headers"],
    );
    lossless_round(&src, &dst);
}

// ------------------------------------------------------------------------------------------
// resume after kill -9

fn events_in(path: &Path) -> Vec<Value> {
    parse_lines(&fs::read_to_string(path).unwrap_or_default(), false)
}

/// Starts a run, kills it with SIGKILL once it has settled a first batch (a `progress`
/// event), then runs the same command to the end: every message exactly once.
fn kill_9_mid_copy_then_resume(src: &dyn Server, dst: &dyn Server) {
    let src_digest = src.digest(USER);
    let n = total(&src_digest);
    let tmp = tempfile::tempdir().expect("tmp");
    let state = tmp.path().join("job.json");
    let out = tmp.path().join("killed.jsonl");
    let mut child: Child = migrate_cmd(src, dst, &state, &["--json"])
        .stdout(File::create(&out).expect("stdout file"))
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn btsx");
    let t = Instant::now();
    let killed = loop {
        if child.try_wait().expect("try_wait").is_some() {
            break false;
        }
        if events_in(&out).iter().any(|e| e["type"] == "progress") {
            child.kill().expect("SIGKILL btsx");
            child.wait().expect("reap btsx");
            break true;
        }
        if t.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("btsx ran for 2 minutes: {:#?}", events_in(&out));
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    assert!(killed, "the run ended before its first progress event");
    let partial = total(&dst.digest(USER));
    assert!(partial < n, "killed mid-copy: {partial} of {n} copied");

    let events = migrate_ok(src, dst, &state);
    let sum = summary(&events);
    assert_eq!(sum["status"], "complete");
    assert_eq!(sum["messages_failed"].as_u64(), Some(0));
    let dst_digest = dst.digest(USER);
    assert_same_mail(
        &format!("{} → {} after kill -9", src.kind(), dst.kind()),
        &src_digest,
        &dst_digest,
        &digest_map(sum, &dst_digest),
        Others::Empty,
    );
}

/// Enough mail for several batches: the realistic tree plus a flat folder of 600.
fn fill_for_resume(s: &dyn Server, seed: &str) {
    s.generate(
        USER,
        &["--seed", seed, "--messages", "150", "--no-8bit-headers"],
    );
    s.generate(
        USER,
        &[
            "--profile",
            "flat",
            "--folder",
            "Bulk",
            "--messages",
            "600",
            "--seed",
            seed,
        ],
    );
}

#[test]
fn resume_after_kill_9_dovecot_to_cyrus() {
    let src = Dovecot::source();
    let dst = Cyrus::start_default();
    fill_for_resume(&src, "33");
    kill_9_mid_copy_then_resume(&src, &dst);
}

#[test]
fn resume_after_kill_9_cyrus_to_dovecot() {
    let src = Cyrus::start_default();
    let dst = Dovecot::destination();
    fill_for_resume(&src, "34");
    kill_9_mid_copy_then_resume(&src, &dst);
}

// ------------------------------------------------------------------------------------------
// what Cyrus alters (issue 15)

/// Documents, as a fixture for issue 15, what Cyrus 3.6 does to messages it accepts: every
/// 8-bit header byte becomes 'X' (size unchanged) and an INTERNALDATE of exactly the epoch
/// becomes the time of the APPEND. btsx copies them (exit 0) and warns (tests/proof.rs covers what btsx does about it). (Cyrus
/// answers BAD to an APPEND dated before 1970, and wraps `01-Jan-1970 00:30:00 +0100`, which
/// is before the epoch, to 2106.)
#[test]
fn cyrus_alters_8bit_headers_and_epoch_dates() {
    let src = Dovecot::source();
    let dst = Cyrus::start_default();
    let utf8 = "From: Jürgen Groß <j@example.org>\r\nSubject: Grüße\r\nMessage-ID: <utf8@example.org>\r\n\r\nBody\r\n";
    let latin1: &[u8] =
        b"From: Caf\xe9 <c@example.org>\r\nSubject: cr\xe8me\r\nMessage-ID: <latin1@example.org>\r\n\r\nBody\r\n";
    let epoch =
        "From: a@example.org\r\nSubject: epoch\r\nMessage-ID: <epoch@example.org>\r\n\r\nBody\r\n";
    let plain =
        "From: a@example.org\r\nSubject: plain\r\nMessage-ID: <plain@example.org>\r\n\r\nBody\r\n";
    let cmd = |date: &str, body: &[u8]| -> String {
        // Dovecot::imap sends text; the Latin-1 message goes through append_bytes.
        format!(
            "APPEND INBOX (\\Seen) \"{date}\" {{{}}}\r\n{}",
            body.len(),
            String::from_utf8_lossy(body)
        )
    };
    src.imap(
        USER,
        &[
            &cmd("02-Mar-2021 10:00:00 +0000", utf8.as_bytes()),
            &cmd("01-Jan-1970 00:00:00 +0000", epoch.as_bytes()),
            &cmd("03-Mar-2021 10:00:00 +0000", plain.as_bytes()),
        ],
    );
    append_bytes(src.imap_port, "02-Mar-2021 11:00:00 +0000", latin1);
    let src_digest = src.digest(USER);
    assert_eq!(total(&src_digest), 4);
    let by_id = |d: &Digest, id: &str| {
        d.folders["INBOX"]
            .messages
            .iter()
            .find(|m| m.message_id.as_deref() == Some(id))
            .cloned()
            .unwrap_or_else(|| panic!("{id} missing: {d:?}"))
    };
    // Dovecot keeps them as given.
    assert_eq!(by_id(&src_digest, "<epoch@example.org>").internaldate, 0);

    let tmp = tempfile::tempdir().expect("tmp");
    let events = migrate_ok(&src, &dst, &tmp.path().join("job.json"));
    assert_eq!(summary(&events)["messages_copied"], 4);
    let dst_digest = dst.digest(USER);
    assert_eq!(total(&dst_digest), 4);

    // Unaltered: bytes, flags and date.
    assert_eq!(
        by_id(&dst_digest, "<plain@example.org>"),
        by_id(&src_digest, "<plain@example.org>")
    );
    // 8-bit header bytes: each became 'X' (same size, other bytes).
    for (id, original) in [
        ("<utf8@example.org>", utf8.as_bytes()),
        ("<latin1@example.org>", latin1),
    ] {
        let (s, d) = (by_id(&src_digest, id), by_id(&dst_digest, id));
        assert_eq!(
            s.sha256,
            sha256_hex(original),
            "{id}: the source is as given"
        );
        let munged: Vec<u8> = original
            .iter()
            .map(|&b| if b >= 0x80 { b'X' } else { b })
            .collect();
        assert_eq!(
            d.sha256,
            sha256_hex(&munged),
            "{id}: 8-bit header bytes became 'X'"
        );
        assert_eq!(s.size, d.size, "{id}: size kept");
        assert_eq!(s.internaldate, d.internaldate, "{id}: date kept");
    }
    // The epoch: the bytes are kept, the date is not.
    let (s, d) = (
        by_id(&src_digest, "<epoch@example.org>"),
        by_id(&dst_digest, "<epoch@example.org>"),
    );
    assert_eq!(s.sha256, d.sha256, "epoch: bytes kept");
    assert!(
        d.internaldate > 1_600_000_000,
        "epoch: Cyrus gave it the time of the APPEND, not {}",
        d.internaldate
    );
}

/// SHA-256 (hex) of `data`, by Python's hashlib (the digest's own hash).
fn sha256_hex(data: &[u8]) -> String {
    use std::io::Write;
    let mut child = support::python3()
        .args([
            "-c",
            "import hashlib, sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run python3");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(data)
        .expect("write to python3");
    let out = child.wait_with_output().expect("python3");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// APPENDs raw bytes (not necessarily UTF-8) to alice's INBOX over plain IMAP.
fn append_bytes(port: u16, date: &str, msg: &[u8]) {
    use std::io::{BufRead, BufReader, Write};
    let s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let mut w = s.try_clone().expect("clone");
    let mut r = BufReader::new(s);
    let mut line = String::new();
    let mut expect = |r: &mut BufReader<std::net::TcpStream>, want: &str| {
        loop {
            line.clear();
            r.read_line(&mut line).expect("read");
            assert!(!line.is_empty(), "server closed the connection");
            if line.starts_with(want) {
                return;
            }
            assert!(
                line.starts_with('*'),
                "unexpected {line:?} waiting for {want}"
            );
        }
    };
    expect(&mut r, "* OK");
    w.write_all(format!("a LOGIN {USER} alice-pw\r\n").as_bytes())
        .expect("write");
    expect(&mut r, "a OK");
    w.write_all(format!("b APPEND INBOX (\\Seen) \"{date}\" {{{}}}\r\n", msg.len()).as_bytes())
        .expect("write");
    expect(&mut r, "+");
    w.write_all(msg).expect("write");
    w.write_all(b"\r\n").expect("write");
    expect(&mut r, "b OK");
    w.write_all(b"c LOGOUT\r\n").expect("write");
}

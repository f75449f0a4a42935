//! Issue 15: servers that alter what they store. `--delete-source` deletes only messages whose
//! copy was read back and proven the same (bytes and arrival date); the index recognises a
//! copy the destination altered; a rewriting destination is named early. Cyrus 3.6 is the
//! altering server (8-bit header bytes become 'X', an epoch INTERNALDATE becomes the time of
//! the APPEND); Dovecot the faithful one.

mod support;

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use serde_json::Value;
use support::{Cyrus, Digest, Dovecot, Server, json_lines, summary};

const USER: &str = "alice";

const UTF8: &str = "From: J\u{fc}rgen Gro\u{df} <j@example.org>\r\nTo: b@example.org\r\nDate: Tue, 2 Mar 2021 10:00:00 +0000\r\nSubject: Gr\u{fc}\u{df}e\r\nMessage-ID: <utf8@example.org>\r\n\r\nBody\r\n";
const LATIN1: &[u8] = b"From: Caf\xe9 <c@example.org>\r\nSubject: cr\xe8me\r\nMessage-ID: <latin1@example.org>\r\n\r\nBody\r\n";
const EPOCH: &str =
    "From: a@example.org\r\nSubject: epoch\r\nMessage-ID: <epoch@example.org>\r\n\r\nBody\r\n";
/// No Message-ID and 8-bit bytes: the identity's fallback.
const NO_ID: &[u8] =
    b"From: Ren\xc3\xa9 <r@example.org>\r\nDate: Wed, 3 Mar 2021 09:00:00 +0100\r\nSubject: sans id\r\n\r\nBody\r\n";

/// The three messages Cyrus alters (and one it alters without a Message-ID) plus plain ones
/// it keeps, in the source's INBOX.
fn fill(src: &Dovecot) {
    let cmd = |date: &str, body: &str| {
        format!(
            "APPEND INBOX (\\Seen) \"{date}\" {{{}}}\r\n{body}",
            body.len()
        )
    };
    let plain = |n: u32| {
        format!(
            "From: a@example.org\r\nSubject: plain {n}\r\nMessage-ID: <plain{n}@example.org>\r\n\r\nBody {n}\r\n"
        )
    };
    src.imap(
        USER,
        &[
            &cmd("02-Mar-2021 10:00:00 +0000", UTF8),
            &cmd("01-Jan-1970 00:00:00 +0000", EPOCH),
            &cmd("03-Mar-2021 10:00:00 +0000", &plain(1)),
            &cmd("04-Mar-2021 10:00:00 +0000", &plain(2)),
            &cmd("05-Mar-2021 10:00:00 +0000", &plain(3)),
        ],
    );
    append_bytes(src.imap_port, "02-Mar-2021 11:00:00 +0000", LATIN1);
    append_bytes(src.imap_port, "03-Mar-2021 11:00:00 +0000", NO_ID);
}

fn migrate(src: &dyn Server, dst: &dyn Server, state: &Path, extra: &[&str]) -> Output {
    support::migrate_cmd(src, dst, USER, state, extra)
        .output()
        .expect("run btsx")
}

/// `btsx verify SRC DST --json EXTRA…`: (exit code, events).
fn verify(src: &dyn Server, dst: &dyn Server, extra: &[&str]) -> (Option<i32>, Vec<Value>) {
    let out = support::btsx()
        .arg("verify")
        .arg(src.url(USER))
        .arg(dst.url(USER))
        .arg("--ca-file")
        .arg(src.ca_file())
        .arg("--json")
        .args(extra)
        .env("BTSX_SRC_PASSWORD", src.password(USER))
        .env("BTSX_DST_PASSWORD", dst.password(USER))
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run btsx verify");
    (out.status.code(), json_lines(&out))
}

fn of_type<'a>(events: &'a [Value], ty: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    events.iter().filter(move |e| e["type"] == ty)
}

fn inbox_ids(d: &Digest) -> Vec<String> {
    let mut v: Vec<String> = d.folders["INBOX"]
        .messages
        .iter()
        .map(|m| m.message_id.clone().unwrap_or_else(|| "(none)".into()))
        .collect();
    v.sort();
    v
}

fn sorted(ids: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

#[test]
fn delete_source_into_cyrus_keeps_what_cyrus_altered_and_names_it() {
    let src = Dovecot::source();
    let dst = Cyrus::start_default();
    fill(&src);
    let tmp = tempfile::tempdir().expect("tmp");

    let out = migrate(
        &src,
        &dst,
        &tmp.path().join("job.json"),
        &["--delete-source", "--yes", "--json"],
    );
    let events = json_lines(&out);
    let sum = summary(&events);
    assert_eq!(out.status.code(), Some(1), "{sum}");
    assert_eq!(sum["status"], "partial", "{sum}");
    assert_eq!(sum["messages_copied"], 7, "{sum}");
    assert_eq!(sum["messages_altered"], 4, "{sum}");
    assert_eq!(sum["messages_deleted_on_source"], 3, "{sum}");
    assert_eq!(sum["per_folder"][0]["altered"], 4, "{sum}");
    let finished = of_type(&events, "folder_finished")
        .next()
        .expect("folder_finished");
    assert_eq!(finished["altered"], 4);
    assert_eq!(finished["status"], "partial");

    // Each kept message is named: folder, UID, Message-ID, what differs.
    let altered: Vec<&Value> = of_type(&events, "message_altered").collect();
    assert_eq!(altered.len(), 4, "{altered:?}");
    let by_id = |id: &str| {
        altered
            .iter()
            .find(|e| e["message_id"] == id)
            .unwrap_or_else(|| panic!("{id} not reported: {altered:?}"))
    };
    for id in ["<utf8@example.org>", "<latin1@example.org>"] {
        let e = by_id(id);
        assert_eq!(e["folder"], "INBOX");
        assert_eq!(e["differences"], serde_json::json!(["header_bytes"]), "{e}");
        assert!(e["uid"].as_u64().is_some() && e["destination_uid"].as_u64().is_some());
        assert!(
            e["reason"]
                .as_str()
                .unwrap_or_default()
                .contains("the destination altered its header bytes"),
            "{e}"
        );
    }
    let e = by_id("<epoch@example.org>");
    assert_eq!(e["differences"], serde_json::json!(["arrival_date"]), "{e}");
    assert!(
        e["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("changed its arrival date")
    );
    assert!(altered.iter().any(|e| e["message_id"].is_null()));

    // The source keeps exactly the altered ones; the destination holds one copy of each.
    let kept = sorted(&[
        "<utf8@example.org>",
        "<latin1@example.org>",
        "<epoch@example.org>",
        "(none)",
    ]);
    assert_eq!(inbox_ids(&src.digest(USER)), kept);
    assert_eq!(dst.digest(USER).folders["INBOX"].messages.len(), 7);

    // verify finds every message (the identity recognises the altered copies); by class it
    // sees the epoch message's other arrival date (a mismatch), not the header bytes; --deep
    // names every altered one.
    let (code, events) = verify(&src, &dst, &[]);
    let v = events.last().expect("verify_summary");
    assert_eq!(code, Some(8), "{v}");
    assert_eq!(v["missing"], 0, "{v}");
    assert_eq!(v["date_differ"], 1, "{v}");
    assert_eq!(v["flags_differ"], 0, "{v}");
    assert_eq!(v["altered"], 0, "{v}");
    assert_eq!(of_type(&events, "message_altered").count(), 0);
    let (code, events) = verify(&src, &dst, &["--deep"]);
    let v = events.last().expect("verify_summary");
    assert_eq!(code, Some(8), "{v}");
    assert_eq!(v["status"], "mismatch", "{v}");
    assert_eq!(v["missing"], 0, "{v}");
    assert_eq!(v["altered"], 4, "{v}");
    let named: Vec<(String, Value)> = of_type(&events, "message_altered")
        .map(|e| {
            (
                e["message_id"].as_str().unwrap_or("(none)").to_string(),
                e["differences"].clone(),
            )
        })
        .collect();
    for (id, what) in [
        ("<utf8@example.org>", serde_json::json!(["header_bytes"])),
        ("<latin1@example.org>", serde_json::json!(["header_bytes"])),
        ("(none)", serde_json::json!(["header_bytes"])),
        ("<epoch@example.org>", serde_json::json!(["arrival_date"])),
    ] {
        assert!(
            named.iter().any(|(i, w)| i == id && *w == what),
            "{id} {what}: {named:?}"
        );
    }

    // Again, without the state file: the altered copies are recognised (no second copy),
    // proven different again, and still kept.
    let out = migrate(
        &src,
        &dst,
        &tmp.path().join("fresh.json"),
        &["--delete-source", "--yes", "--json"],
    );
    let events = json_lines(&out);
    let sum = summary(&events);
    assert_eq!(out.status.code(), Some(1), "{sum}");
    assert_eq!(sum["messages_copied"], 0, "{sum}");
    assert_eq!(sum["messages_skipped"], 4, "{sum}");
    assert_eq!(sum["messages_altered"], 4, "{sum}");
    assert_eq!(sum["messages_deleted_on_source"], 0, "{sum}");
    assert_eq!(inbox_ids(&src.digest(USER)), kept);
    assert_eq!(dst.digest(USER).folders["INBOX"].messages.len(), 7);

    // What a person reads: each kept message, the folder's line and the summary say so.
    let out = migrate(
        &src,
        &dst,
        &tmp.path().join("human.json"),
        &["--delete-source", "--yes", "--color", "never"],
    );
    assert_eq!(out.status.code(), Some(1));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for want in [
        "Altered copy: INBOX UID",
        "<utf8@example.org>: kept on the source: the destination altered its header bytes",
        "<epoch@example.org>: kept on the source: the destination changed its arrival date",
        "4 kept on the source (the destination's copy differs)",
        "Kept on source: 4",
    ] {
        assert!(text.contains(want), "{want:?} not in:\n{text}");
    }
}

#[test]
fn three_runs_into_cyrus_without_state_leave_one_copy_and_warn_early() {
    let src = Dovecot::source();
    let dst = Cyrus::start_default();
    fill(&src);
    let src_digest = src.digest(USER);
    let tmp = tempfile::tempdir().expect("tmp");
    for run in 0..3 {
        let out = migrate(
            &src,
            &dst,
            &tmp.path().join(format!("run{run}.json")),
            &["--json"],
        );
        let events = json_lines(&out);
        let sum = summary(&events);
        assert_eq!(out.status.code(), Some(0), "run {run}: {sum}");
        assert_eq!(
            sum["messages_copied"],
            if run == 0 { 7 } else { 0 },
            "run {run}: {sum}"
        );
        let d = dst.digest(USER);
        assert_eq!(
            inbox_ids(&d),
            inbox_ids(&src_digest),
            "run {run}: one copy of each message"
        );
        // The first run reads a few copies back and says the destination rewrites mail.
        let warned: Vec<&Value> = of_type(&events, "warning")
            .filter(|w| {
                w["message"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("altered")
            })
            .collect();
        if run == 0 {
            assert_eq!(warned.len(), 1, "one warning for the folder: {warned:?}");
            assert_eq!(warned[0]["folder"], "INBOX");
            assert!(
                warned[0]["message"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("the destination altered its header bytes"),
                "{}",
                warned[0]
            );
        } else {
            assert!(warned.is_empty(), "run {run}: {warned:?}");
        }
    }
    assert_eq!(src.digest(USER), src_digest, "source unchanged");
}

#[test]
fn delete_source_into_dovecot_proves_and_deletes_everything() {
    let src = Dovecot::source();
    let dst = Dovecot::destination();
    fill(&src);
    src.generate(USER, &["--seed", "15", "--messages", "80"]);
    let src_digest = src.digest(USER);
    let n = support::total_messages(&src_digest) as u64;
    let tmp = tempfile::tempdir().expect("tmp");

    // First copy half of the way: a plain run, then --delete-source without the state, so
    // every message is "already present" and must be proven before it is deleted.
    let out = migrate(&src, &dst, &tmp.path().join("a.json"), &["--json"]);
    assert_eq!(out.status.code(), Some(0));
    let events = json_lines(&out);
    assert!(
        of_type(&events, "warning").all(|w| !w["message"]
            .as_str()
            .unwrap_or_default()
            .contains("altered")),
        "Dovecot keeps what it stores: {:?}",
        of_type(&events, "warning").collect::<Vec<_>>()
    );
    let dst_digest = dst.digest(USER);
    // A faithful destination: verify --deep finds nothing altered.
    let (code, events) = verify(&src, &dst, &["--deep"]);
    let v = events.last().expect("verify_summary");
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(v["altered"], 0, "{v}");
    assert_eq!(v["source_messages"].as_u64(), Some(n), "{v}");
    let out = migrate(
        &src,
        &dst,
        &tmp.path().join("b.json"),
        &["--delete-source", "--yes", "--json"],
    );
    let events = json_lines(&out);
    let sum = summary(&events);
    assert_eq!(out.status.code(), Some(0), "{sum}");
    assert_eq!(sum["messages_skipped"].as_u64(), Some(n), "{sum}");
    assert_eq!(sum["messages_altered"], 0, "{sum}");
    assert_eq!(sum["messages_deleted_on_source"].as_u64(), Some(n), "{sum}");
    assert_eq!(of_type(&events, "message_altered").count(), 0);
    assert_eq!(support::total_messages(&src.digest(USER)), 0);
    assert_eq!(dst.digest(USER), dst_digest, "destination unchanged");

    // And copied and deleted in one run.
    let src2 = Dovecot::source();
    let dst2 = Dovecot::destination();
    fill(&src2);
    let n2 = support::total_messages(&src2.digest(USER)) as u64;
    let out = migrate(
        &src2,
        &dst2,
        &tmp.path().join("c.json"),
        &["--delete-source", "--yes", "--json"],
    );
    let events = json_lines(&out);
    let sum = summary(&events);
    assert_eq!(out.status.code(), Some(0), "{sum}");
    assert_eq!(sum["messages_copied"].as_u64(), Some(n2), "{sum}");
    assert_eq!(
        sum["messages_deleted_on_source"].as_u64(),
        Some(n2),
        "{sum}"
    );
    assert_eq!(support::total_messages(&src2.digest(USER)), 0);
}

/// More than one window (1,000 messages) in a folder: claims are proven window by window,
/// between batches of APPENDs, and every message is still proven and deleted.
#[test]
fn delete_source_proves_a_folder_of_several_windows() {
    let src = Dovecot::source();
    let dst = Dovecot::destination();
    src.generate(
        USER,
        &[
            "--profile",
            "flat",
            "--folder",
            "Bulk",
            "--messages",
            "2300",
            "--seed",
            "17",
        ],
    );
    let tmp = tempfile::tempdir().expect("tmp");
    let out = migrate(
        &src,
        &dst,
        &tmp.path().join("job.json"),
        &["--delete-source", "--yes", "--json"],
    );
    let events = json_lines(&out);
    let sum = summary(&events);
    assert_eq!(out.status.code(), Some(0), "{sum}");
    assert_eq!(sum["messages_copied"], 2300, "{sum}");
    assert_eq!(sum["messages_deleted_on_source"], 2300, "{sum}");
    assert_eq!(sum["messages_altered"], 0, "{sum}");
    assert_eq!(support::total_messages(&src.digest(USER)), 0);
    assert_eq!(support::total_messages(&dst.digest(USER)), 2300);
}

/// A destination without UIDPLUS does not say where it stored a copy: the copies are found
/// through the index and proven all the same.
#[test]
fn delete_source_into_a_destination_without_uidplus() {
    let src = Dovecot::source();
    let dst = Dovecot::start(support::ServerOpts {
        separator: '.',
        extra_conf: Some(
            "imap_capability = IMAP4rev1 LITERAL+ SASL-IR ID ENABLE IDLE NAMESPACE CHILDREN UNSELECT SPECIAL-USE MULTIAPPEND\n"
                .into(),
        ),
        ..Default::default()
    });
    fill(&src);
    src.generate(USER, &["--seed", "18", "--messages", "120"]);
    let n = support::total_messages(&src.digest(USER)) as u64;
    let tmp = tempfile::tempdir().expect("tmp");
    let out = migrate(
        &src,
        &dst,
        &tmp.path().join("job.json"),
        &["--delete-source", "--yes", "--json", "-v"],
    );
    let events = json_lines(&out);
    let sum = summary(&events);
    assert!(
        of_type(&events, "detail").any(|d| {
            let m = d["message"].as_str().unwrap_or_default();
            d["side"] == "destination" && m.contains("capabilities") && m.contains("uidplus: false")
        }),
        "the destination offers no UIDPLUS"
    );
    assert_eq!(out.status.code(), Some(0), "{sum}");
    assert_eq!(sum["messages_copied"].as_u64(), Some(n), "{sum}");
    assert_eq!(sum["messages_deleted_on_source"].as_u64(), Some(n), "{sum}");
    assert_eq!(sum["messages_altered"], 0, "{sum}");
    assert_eq!(support::total_messages(&src.digest(USER)), 0);
    assert_eq!(support::total_messages(&dst.digest(USER)) as u64, n);
}

#[test]
fn delete_source_from_cyrus_into_dovecot_proves_and_deletes_everything() {
    let src = Cyrus::start_default();
    let dst = Dovecot::destination();
    src.generate(USER, &["--seed", "16", "--messages", "60"]);
    let before = src.digest(USER);
    let n = support::total_messages(&before) as u64;
    assert!(n >= 60);
    let tmp = tempfile::tempdir().expect("tmp");
    let out = migrate(
        &src,
        &dst,
        &tmp.path().join("job.json"),
        &["--delete-source", "--yes", "--json"],
    );
    let events = json_lines(&out);
    let sum = summary(&events);
    assert_eq!(out.status.code(), Some(0), "{sum}");
    assert_eq!(sum["messages_copied"].as_u64(), Some(n), "{sum}");
    assert_eq!(sum["messages_deleted_on_source"].as_u64(), Some(n), "{sum}");
    assert_eq!(sum["messages_altered"], 0, "{sum}");
    assert_eq!(support::total_messages(&src.digest(USER)), 0);
    assert_eq!(support::total_messages(&dst.digest(USER)) as u64, n);
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

//! Provider signals (issue 12 item 5): a server that has too many connections, throttles or
//! is unavailable gets fewer connections for the rest of the run; a source's bandwidth cap
//! ends the run as interrupted, and a later run finishes it.

#[path = "support/fake.rs"]
mod fake;
mod support;

use std::path::Path;
use std::process::Output;

use fake::{Fake, FakeFolder, Rule, Script, assert_each_once, folder};
use serde_json::Value;
use support::{
    Dovecot, Others, ServerOpts, assert_same_mail, btsx, folder_map, json_lines, summary,
};

const USER: &str = "alice";

fn context(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn of_type<'a>(ev: &'a [Value], ty: &str) -> Vec<&'a Value> {
    ev.iter().filter(|e| e["type"] == ty).collect()
}

/// Dovecot counts a connection once its imap process runs, so logins at the same moment all
/// pass a limit of 2 (seen here: sometimes no refusal at all). With a limit of 1 the scanning
/// connection, logged in long before, makes every other worker's login refused, every time.
#[test]
fn a_destination_that_allows_one_connection_gets_fewer_and_the_copy_completes() {
    let (events, ctx) = limited_destination(1);
    assert!(!events.is_empty(), "no connections_reduced event\n{ctx}");
}

/// With 2, whether a login is refused depends on timing; what a user relies on does not.
#[test]
fn a_destination_that_allows_two_connections_gets_every_message_once() {
    limited_destination(2);
}

/// `btsx migrate --jobs 4` into a Dovecot with `mail_max_userip_connections = limit`:
/// complete, every message exactly once, each `connections_reduced` event a step down from
/// 4 (never below 1) naming Dovecot's reason. Returns those events.
fn limited_destination(limit: u32) -> (Vec<Value>, String) {
    let src = Dovecot::source();
    let dst = Dovecot::start(ServerOpts {
        separator: '.',
        extra_conf: Some(format!("mail_max_userip_connections = {limit}\n")),
        ..ServerOpts::default()
    });
    src.generate(USER, &["--seed", "12", "--messages", "400"]);
    let src_digest = src.digest(USER);
    let total = support::total_messages(&src_digest) as u64;
    let tmp = tempfile::tempdir().expect("tmp");
    let out = support::migrate_cmd(
        &src,
        &dst,
        USER,
        &tmp.path().join("job.json"),
        &["--json", "--jobs", "4"],
    )
    .output()
    .expect("run btsx");
    let ctx = context(&out);
    assert_eq!(out.status.code(), Some(0), "{ctx}");
    let ev = json_lines(&out);
    let sum = summary(&ev);
    assert_eq!(sum["status"], "complete", "{ctx}");
    assert_eq!(sum["messages_copied"].as_u64(), Some(total), "{ctx}");
    assert_eq!(sum["messages_failed"].as_u64(), Some(0), "{ctx}");
    // The refused logins lowered the limit, each change said once, towards what the server
    // allows; never below one.
    let reduced = of_type(&ev, "connections_reduced");
    let mut allowed = 4;
    for r in &reduced {
        assert_eq!(r["side"], "destination", "{r}");
        assert_eq!(r["from"].as_u64(), Some(allowed), "{r}");
        let to = r["to"].as_u64().expect("to");
        assert!((1..allowed).contains(&to), "{r}");
        assert!(
            r["reason"]
                .as_str()
                .is_some_and(|s| s.contains("Maximum number of connections")),
            "{r}"
        );
        allowed = to;
    }
    assert!(of_type(&ev, "message_failed").is_empty(), "{ctx}");
    // Every message exactly once: nothing lost, nothing doubled.
    assert_same_mail(
        "",
        &src_digest,
        &dst.digest(USER),
        &folder_map(sum),
        Others::Empty,
    );
    (reduced.into_iter().cloned().collect(), ctx)
}

/// Two source folders of 250 messages each (two batches apiece).
fn two_folders() -> Vec<FakeFolder> {
    vec![folder(b"INBOX", 1, 250), folder(b"Archive", 1001, 250)]
}

/// btsx migrate from one fake to another (plain IMAP on loopback), state in `dir`.
fn migrate_fakes(src: &Fake, dst: &Fake, dir: &Path, extra: &[&str]) -> Output {
    btsx()
        .arg("migrate")
        .arg(src.url(USER))
        .arg(dst.url(USER))
        .args(["--plaintext", "--timeout", "20s"])
        .arg("--state")
        .arg(dir.join("state.json"))
        .args(extra)
        .env("BTSX_SRC_PASSWORD", "pw")
        .env("BTSX_DST_PASSWORD", "pw")
        .env("XDG_STATE_HOME", dir)
        .output()
        .expect("run btsx")
}

#[test]
fn throttled_append_backs_off_uses_fewer_connections_and_completes() {
    let src = Fake::start(Script {
        folders: two_folders(),
        ..Default::default()
    });
    let dst = Fake::start(Script {
        folders: vec![folder(b"INBOX", 0, 0), folder(b"Archive", 0, 0)],
        rules: vec![Rule::once_after(
            1,
            "^APPEND",
            "{tag} NO [THROTTLED] Too many requests, slow down\r\n",
        )],
        ..Default::default()
    });
    let tmp = tempfile::tempdir().expect("tmp");
    let out = migrate_fakes(&src, &dst, tmp.path(), &["--json", "--jobs", "2"]);
    let ctx = context(&out);
    assert_eq!(out.status.code(), Some(0), "{ctx}");
    let ev = json_lines(&out);
    let sum = summary(&ev);
    assert_eq!(sum["messages_copied"].as_u64(), Some(500), "{ctx}");
    assert!(sum["reconnects_destination"].as_u64() >= Some(1), "{ctx}");
    let reduced = of_type(&ev, "connections_reduced");
    assert_eq!(reduced.len(), 1, "one change, one event\n{ctx}");
    assert_eq!(reduced[0]["side"], "destination");
    assert_eq!(reduced[0]["from"].as_u64(), Some(2));
    assert_eq!(reduced[0]["to"].as_u64(), Some(1));
    assert!(
        reduced[0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("[THROTTLED]")),
        "{ctx}"
    );
    assert!(of_type(&ev, "message_failed").is_empty(), "{ctx}");
    assert_each_once(&dst, b"INBOX", 1, 250, &ctx);
    assert_each_once(&dst, b"Archive", 1001, 250, &ctx);
}

#[test]
fn a_login_refused_for_too_many_connections_and_server_unavailable_byes_are_waited_out() {
    // Gmail refuses a login over its connection limit with NO [ALERT] and words; Office 365
    // ends a session with "BYE Server Unavailable". Neither is a wrong password (exit 4) nor
    // a reason to fail the messages of the batch being fetched.
    let src = Fake::start(Script {
        folders: two_folders(),
        rules: vec![Rule::once_after(
            1,
            r"^UID FETCH \S+ \(UID BODY\.PEEK\[\]\)",
            "* BYE Server Unavailable. 15\r\n",
        )],
        ..Default::default()
    });
    let dst = Fake::start(Script {
        folders: vec![folder(b"INBOX", 0, 0), folder(b"Archive", 0, 0)],
        rules: vec![Rule::once_after(
            1,
            "^LOGIN",
            "{tag} NO [ALERT] Too many simultaneous connections. (Failure)\r\n",
        )],
        ..Default::default()
    });
    let tmp = tempfile::tempdir().expect("tmp");
    let out = migrate_fakes(&src, &dst, tmp.path(), &["--json", "--jobs", "2"]);
    let ctx = context(&out);
    assert_eq!(out.status.code(), Some(0), "{ctx}");
    let ev = json_lines(&out);
    let sum = summary(&ev);
    assert_eq!(sum["status"], "complete", "{ctx}");
    assert_eq!(sum["messages_copied"].as_u64(), Some(500), "{ctx}");
    assert!(of_type(&ev, "message_failed").is_empty(), "{ctx}");
    // Whichever came first (the refused login, or the BYE) lowered the limit to one pair;
    // the other found it there already: one change, one event.
    let reduced = of_type(&ev, "connections_reduced");
    assert_eq!(reduced.len(), 1, "{ctx}");
    assert_eq!(
        (reduced[0]["from"].as_u64(), reduced[0]["to"].as_u64()),
        (Some(2), Some(1))
    );
    assert!(
        ev.iter().any(|e| e["type"] == "connection"
            && e["reason"]
                .as_str()
                .is_some_and(|r| r.contains("Server Unavailable"))),
        "the BYE is the reconnect's reason\n{ctx}"
    );
    assert_each_once(&dst, b"INBOX", 1, 250, &ctx);
    assert_each_once(&dst, b"Archive", 1001, 250, &ctx);
}

#[test]
fn the_sources_bandwidth_cap_interrupts_the_run_and_a_later_run_finishes() {
    // Gmail's answer once the account's daily IMAP download is used up: the second body
    // FETCH is refused. Every later FETCH would be too, for hours.
    let src = Fake::start(Script {
        folders: vec![folder(b"INBOX", 1, 250)],
        rules: vec![Rule::once_after(
            1,
            r"^UID FETCH \S+ \(UID BODY\.PEEK\[\]\)",
            "{tag} NO [OVERQUOTA] Account exceeded command or bandwidth limits. (Failure)\r\n",
        )],
        ..Default::default()
    });
    let dst = Fake::start(Script {
        folders: vec![folder(b"INBOX", 0, 0)],
        ..Default::default()
    });
    let tmp = tempfile::tempdir().expect("tmp");
    let events = tmp.path().join("events.jsonl");
    // The human display (the resume line), with the events beside it.
    let out = migrate_fakes(
        &src,
        &dst,
        tmp.path(),
        &[
            "--jobs",
            "1",
            "--events-file",
            events.to_str().expect("utf-8"),
        ],
    );
    let ctx = context(&out);
    assert_eq!(out.status.code(), Some(130), "exit: interrupted\n{ctx}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let state = tmp.path().join("state.json");
    assert!(
        stderr.contains(&format!(
            "Resume with: btsx migrate --resume {}",
            state.display()
        )),
        "{ctx}"
    );
    let ev = support::parse_lines(&std::fs::read_to_string(&events).expect("events"), true);
    let sum = summary(&ev);
    assert_eq!(sum["status"], "interrupted", "{ctx}");
    assert_eq!(sum["exit_code"].as_i64(), Some(130));
    // Not a failure of messages or folders: they are simply not copied yet.
    assert_eq!(sum["messages_failed"].as_u64(), Some(0), "{ctx}");
    assert_eq!(sum["folders_failed"].as_u64(), Some(0), "{ctx}");
    assert!(of_type(&ev, "message_failed").is_empty(), "{ctx}");
    assert!(
        of_type(&ev, "warning").iter().any(|w| w["message"]
            .as_str()
            .is_some_and(|m| m.contains("bandwidth limit")
                && m.contains("Account exceeded command or bandwidth limits"))),
        "a warning says why\n{ctx}"
    );
    let copied = sum["messages_copied"].as_u64().expect("copied");
    assert!(copied < 250, "{ctx}");
    // `btsx status` agrees: interrupted (11), resumable.
    let st = btsx()
        .arg("status")
        .arg(&state)
        .output()
        .expect("btsx status");
    assert_eq!(st.status.code(), Some(11), "{}", context(&st));

    // The next day: the rest, each message once.
    let again = btsx()
        .args(["migrate", "--resume"])
        .arg(&state)
        .arg("--json")
        .env("BTSX_SRC_PASSWORD", "pw")
        .env("BTSX_DST_PASSWORD", "pw")
        .env("XDG_STATE_HOME", tmp.path())
        .output()
        .expect("run btsx");
    let ctx = context(&again);
    assert_eq!(again.status.code(), Some(0), "{ctx}");
    let sum2 = summary(&json_lines(&again)).clone();
    assert_eq!(
        sum2["messages_copied"].as_u64(),
        Some(250 - copied),
        "{ctx}"
    );
    assert_each_once(&dst, b"INBOX", 1, 250, &ctx);
}

#[test]
fn the_first_login_refused_for_too_many_connections_is_retried() {
    // Another client holds the destination's connections when the run starts: Dovecot 2.3's
    // answer. Before the fix this ended the run as a wrong password (exit 4).
    let src = Fake::start(Script {
        folders: vec![folder(b"INBOX", 1, 3)],
        ..Default::default()
    });
    let dst = Fake::start(Script {
        folders: vec![folder(b"INBOX", 0, 0)],
        rules: vec![Rule::once(
            "^LOGIN",
            "{tag} NO [LIMIT] Maximum number of connections from user+IP exceeded (mail_max_userip_connections=10)\r\n",
        )],
        ..Default::default()
    });
    let tmp = tempfile::tempdir().expect("tmp");
    let out = migrate_fakes(&src, &dst, tmp.path(), &["--json", "--jobs", "1"]);
    let ctx = context(&out);
    assert_eq!(out.status.code(), Some(0), "{ctx}");
    let ev = json_lines(&out);
    assert!(
        ev.iter().any(|e| e["type"] == "connection"
            && e["state"] == "failed"
            && e["reason"]
                .as_str()
                .is_some_and(|r| r.contains("refused the login for now"))),
        "{ctx}"
    );
    assert_each_once(&dst, b"INBOX", 1, 3, &ctx);
}

//! Never lose, never lie (issue 11): a mailbox is never deleted into itself, the servers
//! outrank the state file, a run that never connected leaves nothing behind.

mod support;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use support::{Dovecot, Others, assert_same_mail, btsx, folder_map, json_lines, summary};

const USER: &str = "alice";

/// `btsx migrate SRC DST --ca-file … --state S --json EXTRA…` with both passwords set.
fn migrate_urls(
    src: &Dovecot,
    dst: &Dovecot,
    src_url: &str,
    dst_url: &str,
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
        .arg(state)
        .arg("--json")
        .args(extra)
        .env("BTSX_SRC_PASSWORD", src.password(USER))
        .env("BTSX_DST_PASSWORD", dst.password(USER))
        .env(
            "XDG_STATE_HOME",
            state.parent().unwrap_or(Path::new("/tmp")),
        )
        .stdin(Stdio::null())
        .output()
        .expect("run btsx")
}

fn migrate(src: &Dovecot, dst: &Dovecot, state: &Path, extra: &[&str]) -> Output {
    migrate_urls(src, dst, &src.url(USER), &dst.url(USER), state, extra)
}

fn warnings(ev: &[Value]) -> Vec<String> {
    ev.iter()
        .filter(|e| e["type"] == "warning")
        .map(|e| e["message"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Wire names of every folder of `user`, deepest first (children go before parents).
fn wire_folders(d: &Dovecot) -> Vec<String> {
    let t = d.imap(USER, &["LIST \"\" \"*\""]);
    let mut names: Vec<String> = t
        .lines()
        .filter_map(|l| l.strip_prefix("S: * LIST "))
        .filter_map(|l| {
            let l = l.trim_end();
            match l.strip_suffix('"') {
                Some(q) => q.rfind('"').map(|i| q[i + 1..].to_string()),
                None => l.rsplit(' ').next().map(str::to_string),
            }
        })
        .collect();
    names.sort_by_key(|n| std::cmp::Reverse(n.len()));
    names
}

/// Empty an account through IMAP: every folder but INBOX deleted, INBOX expunged.
fn empty_account(d: &Dovecot) {
    let mut cmds: Vec<String> = wire_folders(d)
        .into_iter()
        .filter(|n| !n.eq_ignore_ascii_case("INBOX"))
        .map(|n| format!("DELETE \"{n}\""))
        .collect();
    cmds.extend([
        "SELECT INBOX".to_string(),
        "STORE 1:* +FLAGS.SILENT (\\Deleted)".to_string(),
        "EXPUNGE".to_string(),
    ]);
    let refs: Vec<&str> = cmds.iter().map(String::as_str).collect();
    d.imap(USER, &refs);
    let left = d.digest(USER);
    assert_eq!(support::total_messages(&left), 0, "emptied: {left:?}");
    assert_eq!(left.folders.len(), 1, "only INBOX is left: {left:?}");
}

#[test]
fn the_same_account_under_two_names_is_never_deleted_into_itself() {
    let server = Dovecot::source();
    server.generate(USER, &["--seed", "11", "--messages", "60"]);
    let before = server.digest(USER);
    let tmp = tempfile::tempdir().expect("tmp");
    let state = tmp.path().join("same.json");
    let by_ip = format!("imaps://{USER}@127.0.0.1:{}", server.imaps_port);
    let by_name = format!("imaps://{USER}@localhost:{}", server.imaps_port);

    // Identical URLs: refused before connecting.
    let out = migrate_urls(&server, &server, &by_name, &by_name, &state, &[]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let ev = json_lines(&out);
    let msg = summary(&ev)["error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(msg.contains("same mailbox"), "{msg}");

    // Two names of one account with --delete-source: the probe folder shows up on the
    // source, so nothing is copied or deleted.
    let out = migrate_urls(
        &server,
        &server,
        &by_ip,
        &by_name,
        &state,
        &["--delete-source", "--yes"],
    );
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let ev = json_lines(&out);
    let s = summary(&ev);
    assert!(
        s["error"]
            .as_str()
            .unwrap_or_default()
            .contains("same mailbox"),
        "{s}"
    );
    assert_eq!(s["messages_deleted_on_source"], 0, "{s}");
    assert_eq!(
        server.digest(USER),
        before,
        "every message and folder still there"
    );
    assert!(
        !wire_folders(&server)
            .iter()
            .any(|n| n.contains("btsx-probe")),
        "the probe folder is removed"
    );

    // A plain migrate between the two names warns that they look like one mailbox.
    let out = migrate_urls(&server, &server, &by_ip, &by_name, &state, &[]);
    let ev = json_lines(&out);
    assert!(
        warnings(&ev)
            .iter()
            .any(|w| w.contains("very likely the same mailbox")),
        "{:?}",
        warnings(&ev)
    );
    assert_eq!(summary(&ev)["messages_copied"], 0);
    assert_eq!(server.digest(USER), before);
}

#[test]
fn delete_source_between_two_accounts_still_works() {
    let src = Dovecot::source();
    let dst = Dovecot::destination();
    src.generate(USER, &["--profile", "flat", "--messages", "12"]);
    let before = src.digest(USER);
    let tmp = tempfile::tempdir().expect("tmp");
    let state = tmp.path().join("ds.json");
    let out = migrate(&src, &dst, &state, &["--delete-source", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let ev = json_lines(&out);
    assert_eq!(summary(&ev)["messages_deleted_on_source"], 12);
    let after = dst.digest(USER);
    assert_eq!(
        after.folders["INBOX"].messages, before.folders["INBOX"].messages,
        "the destination holds what the source held"
    );
    assert!(!wire_folders(&dst).iter().any(|n| n.contains("btsx-probe")));
}

#[test]
fn an_emptied_destination_is_refilled_from_the_same_state_file() {
    let src = Dovecot::source();
    let dst = Dovecot::destination();
    src.generate(USER, &["--seed", "12", "--messages", "80"]);
    let tmp = tempfile::tempdir().expect("tmp");
    let state = tmp.path().join("refill.json");
    let out = migrate(&src, &dst, &state, &[]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let map = folder_map(summary(&json_lines(&out)));
    let want = src.digest(USER);
    assert_same_mail("first run", &want, &dst.digest(USER), &map, Others::Empty);

    empty_account(&dst);
    let out = migrate(&src, &dst, &state, &[]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let ev = json_lines(&out);
    let s = summary(&ev);
    assert_eq!(s["messages_copied"], 80, "{s}");
    assert!(
        warnings(&ev)
            .iter()
            .any(|w| w.contains("fewer than") || w.contains("is gone")),
        "{:?}",
        warnings(&ev)
    );
    assert_same_mail("refilled", &want, &dst.digest(USER), &map, Others::Empty);

    // And the run after that copies nothing.
    let out = migrate(&src, &dst, &state, &[]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let ev = json_lines(&out);
    assert_eq!(summary(&ev)["messages_copied"], 0);
    assert!(
        !warnings(&ev)
            .iter()
            .any(|w| w.contains("destination folder")),
        "{:?}",
        warnings(&ev)
    );
    assert_same_mail("third run", &want, &dst.digest(USER), &map, Others::Empty);
}

#[test]
fn a_run_that_never_connected_leaves_no_state_and_no_lock() {
    let tmp = tempfile::tempdir().expect("tmp");
    let state = tmp.path().join("never.json");
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let out = Command::new(env!("CARGO_BIN_EXE_btsx"))
        .arg("migrate")
        .arg(format!("imaps://a@127.0.0.1:{port}"))
        .arg(format!("imaps://b@localhost:{port}"))
        .arg("--state")
        .arg(&state)
        .arg("--json")
        .arg("--retries")
        .arg("0")
        .env("BTSX_SRC_PASSWORD", "x")
        .env("BTSX_DST_PASSWORD", "y")
        .env("XDG_STATE_HOME", tmp.path())
        .stdin(Stdio::null())
        .output()
        .expect("run btsx");
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let left: Vec<_> = std::fs::read_dir(tmp.path())
        .expect("ls")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert!(left.is_empty(), "nothing left behind: {left:?}");
}

#[test]
fn the_lock_file_is_private_and_removed_at_the_end() {
    use std::os::unix::fs::PermissionsExt;
    let src = Dovecot::source();
    let dst = Dovecot::destination();
    src.generate(USER, &["--profile", "flat", "--messages", "3"]);
    let tmp = tempfile::tempdir().expect("tmp");
    let state = tmp.path().join("lock.json");
    let out = migrate(&src, &dst, &state, &[]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(state.exists());
    assert_eq!(
        std::fs::metadata(&state)
            .expect("meta")
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    assert!(!tmp.path().join("lock.json.lock").exists(), "lock removed");
}

#[test]
fn flags_changed_on_the_source_follow_on_the_next_run() {
    let src = Dovecot::source();
    let dst = Dovecot::destination();
    src.generate(USER, &["--seed", "13", "--messages", "70"]);
    let tmp = tempfile::tempdir().expect("tmp");
    let state = tmp.path().join("flags.json");
    let out = migrate(&src, &dst, &state, &[]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let map = folder_map(summary(&json_lines(&out)));

    // Additions and removals of system flags and keywords, in two folders.
    let t = src.imap(
        USER,
        &[
            "SELECT INBOX",
            "STORE 1:6 +FLAGS (\\Flagged NewKeyword)",
            "STORE 7:12 -FLAGS (\\Seen)",
            "STORE 13:20 +FLAGS (\\Seen \\Answered)",
            "STORE 1:* -FLAGS (Work)",
            "SELECT Archive",
            "STORE 1:3 FLAGS ()",
        ],
    );
    assert!(!t.contains(" NO ") && !t.contains(" BAD "), "{t}");
    let want = src.digest(USER);

    // Opted out: nothing changes on the destination.
    let out = migrate(&src, &dst, &state, &["--no-flag-sync"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(summary(&json_lines(&out))["flags_updated"], 0);
    assert_ne!(
        dst.digest(USER).folders["INBOX"].messages,
        want.folders["INBOX"].messages
    );

    let out = migrate(&src, &dst, &state, &[]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let ev = json_lines(&out);
    let s = summary(&ev);
    assert_eq!(s["messages_copied"], 0, "{s}");
    let synced: u64 = ev
        .iter()
        .filter(|e| e["type"] == "flags_synced")
        .map(|e| e["updated"].as_u64().unwrap_or(0))
        .sum();
    assert!(synced > 0, "flags_synced events");
    assert_eq!(s["flags_updated"].as_u64(), Some(synced), "{s}");
    assert_same_mail(
        "flags synced",
        &want,
        &dst.digest(USER),
        &map,
        Others::Empty,
    );

    // Dovecot offers LIST-STATUS with HIGHESTMODSEQ: a no-change run asks each side once.
    let t = src.imap(
        USER,
        &["LIST \"\" \"*\" RETURN (STATUS (MESSAGES UIDNEXT UIDVALIDITY HIGHESTMODSEQ))"],
    );
    assert!(
        t.contains("* STATUS INBOX (MESSAGES") && t.contains("HIGHESTMODSEQ"),
        "{t}"
    );

    // Nothing changed since: nothing to update.
    let out = migrate(&src, &dst, &state, &[]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(summary(&json_lines(&out))["flags_updated"], 0);
    assert_same_mail("no change", &want, &dst.digest(USER), &map, Others::Empty);
}

fn verify(src: &Dovecot, dst: &Dovecot) -> Output {
    btsx()
        .arg("verify")
        .arg(src.url(USER))
        .arg(dst.url(USER))
        .arg("--ca-file")
        .arg(&src.ca_file)
        .arg("--json")
        .env("BTSX_SRC_PASSWORD", src.password(USER))
        .env("BTSX_DST_PASSWORD", dst.password(USER))
        .stdin(Stdio::null())
        .output()
        .expect("run btsx verify")
}

#[test]
fn verify_finds_a_flag_removed_by_hand_on_the_destination() {
    let src = Dovecot::source();
    let dst = Dovecot::destination();
    src.generate(USER, &["--profile", "flat", "--messages", "20"]);
    // Every message flagged, so removing the flag on one makes a difference.
    src.imap(USER, &["SELECT INBOX", "STORE 1:* +FLAGS (\\Flagged)"]);
    let tmp = tempfile::tempdir().expect("tmp");
    let out = migrate(&src, &dst, &tmp.path().join("v.json"), &[]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");

    let out = verify(&src, &dst);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let ev = json_lines(&out);
    let s = support::last_event(&ev, "verify_summary");
    assert_eq!(s["flags_differ"], 0, "{s}");
    assert_eq!(s["date_differ"], 0, "{s}");

    dst.imap(USER, &["SELECT INBOX", "STORE 3 -FLAGS (\\Flagged)"]);
    let out = verify(&src, &dst);
    assert_eq!(out.status.code(), Some(8), "{out:?}");
    let ev = json_lines(&out);
    let s = support::last_event(&ev, "verify_summary");
    assert_eq!(s["status"], "mismatch", "{s}");
    assert_eq!(s["flags_differ"], 1, "{s}");
    assert_eq!(s["missing"], 0, "{s}");
    assert_eq!(s["date_differ"], 0, "{s}");
    let folder = ev
        .iter()
        .find(|e| e["type"] == "verify_folder" && e["folder"] == "INBOX")
        .expect("INBOX compared");
    assert_eq!(folder["flags_differ"], 1, "{folder}");
    let d = &folder["differing_messages"][0];
    assert_eq!(d["uid"], 3, "{folder}");
    let has = |k: &str| {
        d[k].as_array()
            .expect("flags")
            .iter()
            .any(|f| f == "\\Flagged")
    };
    assert!(has("source_flags") && !has("destination_flags"), "{folder}");
}

#[test]
fn resume_alone_continues_a_job_with_a_private_ca_and_password_files() {
    use std::os::unix::fs::PermissionsExt;
    let src = Dovecot::source();
    let dst = Dovecot::destination();
    src.generate(USER, &["--seed", "15", "--messages", "40"]);
    let tmp = tempfile::tempdir().expect("tmp");
    let secret = |name: &str, pw: &str| {
        let p = tmp.path().join(name);
        std::fs::write(&p, pw).expect("write password file");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        p
    };
    let src_pw = secret("src.pw", &src.password(USER));
    let dst_pw = secret("dst.pw", &dst.password(USER));
    let state = tmp.path().join("job.json");
    let first = |extra: &[&str]| {
        btsx()
            .arg("migrate")
            .arg(src.url(USER))
            .arg(dst.url(USER))
            .arg("--ca-file")
            .arg(&src.ca_file)
            .arg("--src-password-file")
            .arg(&src_pw)
            .arg("--dst-password-file")
            .arg(&dst_pw)
            .arg("--jobs")
            .arg("2")
            .arg("--state")
            .arg(&state)
            .arg("--json")
            .args(extra)
            .env("XDG_STATE_HOME", tmp.path())
            .stdin(Stdio::null())
            .output()
            .expect("run btsx")
    };
    let out = first(&[]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let map = folder_map(summary(&json_lines(&out)));
    let text = std::fs::read_to_string(&state).expect("state");
    assert!(!text.contains(&src.password(USER)) && !text.contains(&dst.password(USER)));
    assert!(text.contains("ca.pem") && text.contains("src.pw"), "{text}");

    // New mail, then `--resume FILE` and nothing else, from another directory.
    src.generate(
        USER,
        &["--profile", "flat", "--seed", "16", "--messages", "7"],
    );
    let elsewhere = tempfile::tempdir().expect("cwd");
    let out = btsx()
        .arg("migrate")
        .arg("--resume")
        .arg(&state)
        .arg("--json")
        .current_dir(elsewhere.path())
        .env("XDG_STATE_HOME", tmp.path())
        .stdin(Stdio::null())
        .output()
        .expect("run btsx");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let ev = json_lines(&out);
    assert_eq!(summary(&ev)["messages_copied"], 7);
    let start = ev.iter().find(|e| e["type"] == "start").expect("start");
    assert_eq!(start["jobs"], 2, "the saved --jobs");
    assert_same_mail(
        "resumed",
        &src.digest(USER),
        &dst.digest(USER),
        &map,
        Others::Empty,
    );

    // Another filter on the same state file is the same job, saved for next time.
    let out = first(&["--exclude", "Archive*"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(&state).expect("state")).expect("json");
    assert_eq!(saved["job"]["exclude"][0], "Archive*");
}

#[test]
fn messages_found_by_the_index_have_their_flags_kept_in_step_too() {
    let src = Dovecot::source();
    let dst = Dovecot::destination();
    src.generate(
        USER,
        &["--profile", "flat", "--seed", "17", "--messages", "30"],
    );
    let tmp = tempfile::tempdir().expect("tmp");
    let state = tmp.path().join("idx.json");
    assert_eq!(migrate(&src, &dst, &state, &[]).status.code(), Some(0));
    // Five messages lost on the destination: refilled, the other 25 found by the index.
    dst.imap(
        USER,
        &[
            "SELECT INBOX",
            "STORE 1:5 +FLAGS.SILENT (\\Deleted)",
            "EXPUNGE",
        ],
    );
    let out = migrate(&src, &dst, &state, &[]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let s = summary(&json_lines(&out)).clone();
    assert_eq!(
        (
            s["messages_copied"].as_u64(),
            s["messages_skipped"].as_u64()
        ),
        (Some(5), Some(25)),
        "{s}"
    );
    let map = folder_map(&s);

    src.imap(USER, &["SELECT INBOX", "STORE 1:* FLAGS (\\Flagged Later)"]);
    let out = migrate(&src, &dst, &state, &[]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(summary(&json_lines(&out))["flags_updated"], 30);
    assert_same_mail(
        "",
        &src.digest(USER),
        &dst.digest(USER),
        &map,
        Others::Empty,
    );
}

#[test]
fn a_message_the_source_will_not_give_fails_alone() {
    use std::os::unix::fs::PermissionsExt;
    let src = Dovecot::source();
    let dst = Dovecot::destination();
    src.generate(
        USER,
        &["--profile", "flat", "--seed", "18", "--messages", "20"],
    );
    let before = src.digest(USER);
    // Make one message file unreadable behind Dovecot's back: the folder still lists the
    // message, but its body cannot be read (FETCH answers NO for any batch holding it).
    let mut files: Vec<std::path::PathBuf> = walk(&src.dir.join("home").join(USER))
        .into_iter()
        .filter(|p| {
            p.parent()
                .is_some_and(|d| d.ends_with("cur") || d.ends_with("new"))
        })
        .collect();
    files.sort();
    assert_eq!(files.len(), 20, "{files:?}");
    std::fs::set_permissions(&files[9], std::fs::Permissions::from_mode(0o000)).expect("chmod");
    let tmp = tempfile::tempdir().expect("tmp");
    let out = migrate(&src, &dst, &tmp.path().join("no.json"), &["--jobs", "1"]);
    let ev = json_lines(&out);
    let s = summary(&ev);
    // The folder goes on; that one message fails with a reason and is tried again next run.
    assert_eq!(out.status.code(), Some(1), "{s}");
    assert_eq!(s["messages_copied"], 19, "{s}");
    assert_eq!(s["messages_failed"], 1, "{s}");
    assert!(
        s["failures"][0]["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("closes the session"),
        "{s}"
    );
    let got: Vec<_> = dst.digest(USER).folders["INBOX"].messages.clone();
    assert_eq!(got.len(), 19, "every other message once");
    for m in &got {
        assert!(before.folders["INBOX"].messages.contains(m), "{m:?}");
    }

    // Readable again: the next run copies it.
    std::fs::set_permissions(&files[9], std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let out = migrate(&src, &dst, &tmp.path().join("no.json"), &["--jobs", "1"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(summary(&json_lines(&out))["messages_copied"], 1);
    let mut got = dst.digest(USER).folders["INBOX"].messages.clone();
    let mut want = before.folders["INBOX"].messages.clone();
    got.sort();
    want.sort();
    assert_eq!(got, want);
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

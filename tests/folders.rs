//! Folders against real Dovecot servers: one folder's failure is that folder's alone, and
//! subscriptions follow the source.

#[path = "support/proxy.rs"]
mod proxy;
mod support;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;
use support::{Digest, Dovecot, Others, assert_same_mail, btsx, folder_map, json_lines, summary};

const USER: &str = "alice";

fn run(cmd: &str, src: &Dovecot, dst: &Dovecot, state: &Path, extra: &[&str]) -> Output {
    let mut c = btsx();
    c.arg(cmd)
        .arg(src.url(USER))
        .arg(dst.url(USER))
        .arg("--ca-file")
        .arg(&src.ca_file)
        .args(extra)
        .env("BTSX_SRC_PASSWORD", src.password(USER))
        .env("BTSX_DST_PASSWORD", dst.password(USER))
        .env(
            "XDG_STATE_HOME",
            state.parent().unwrap_or(Path::new("/tmp")),
        );
    if cmd == "migrate" {
        c.arg("--state").arg(state);
    }
    c.output().expect("run btsx")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The maildir directory of a source folder (LAYOUT=fs: the path as named).
fn folder_dir(server: &Dovecot, folder: &str) -> PathBuf {
    server
        .dir
        .join("home")
        .join(USER)
        .join("Maildir")
        .join(folder)
}

fn chmod(dir: &Path, mode: u32) {
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn without(d: &Digest, folder: &str) -> Digest {
    let mut d = d.clone();
    d.folders.remove(folder);
    d
}

#[test]
fn an_unreadable_source_folder_fails_alone_and_the_next_run_finishes_it() {
    let src = Dovecot::source();
    let dst = Dovecot::destination();
    src.generate(USER, &["--seed", "11", "--messages", "120"]);
    let src_digest = src.digest(USER);
    let bad = "Archive/2019";
    assert!(
        !src_digest.folders[bad].messages.is_empty(),
        "the broken folder holds mail"
    );
    // An empty directory is a folder Dovecot lists \Noselect without children and will not
    // open ("Mailbox doesn't exist"): a node of the tree, not a failure.
    let maildir = folder_dir(&src, "");
    let ghost = maildir.join("Ghost").join("Sub");
    std::fs::create_dir_all(&ghost).expect("mkdir");
    let owner = std::fs::metadata(&maildir).expect("stat");
    for d in [ghost.parent().expect("parent"), &ghost] {
        std::os::unix::fs::chown(d, Some(owner.uid()), Some(owner.gid())).expect("chown");
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let state = tmp.path().join("job.json");

    // Dovecot answers EXAMINE and STATUS of that folder with NO [SERVERBUG].
    chmod(&folder_dir(&src, bad), 0o000);
    let out = run("migrate", &src, &dst, &state, &["--json"]);
    assert_eq!(out.status.code(), Some(1), "stderr: {}", stderr(&out));
    let events = json_lines(&out);
    let sum = summary(&events);
    assert_eq!(sum["status"], "partial");
    assert_eq!(sum["folders_failed"].as_u64(), Some(1));
    let err = events
        .iter()
        .find(|e| e["type"] == "error")
        .expect("an error event");
    assert_eq!(err["folder"], bad, "{err}");
    assert_eq!(err["side"], "source", "{err}");
    let failed: Vec<&Value> = sum["per_folder"]
        .as_array()
        .expect("per_folder")
        .iter()
        .filter(|f| f["status"] == "failed")
        .collect();
    assert_eq!(failed.len(), 1, "{sum}");
    assert_eq!(failed[0]["folder"], bad);
    // Every other folder is copied, exactly.
    let map = folder_map(sum);
    let dst_digest = dst.digest(USER);
    assert_same_mail(
        "first run",
        &without(&src_digest, bad),
        &dst_digest,
        &map,
        Others::Empty,
    );
    assert!(
        !dst_digest.folders.contains_key("Archive.2019")
            || dst_digest.folders["Archive.2019"].messages.is_empty(),
        "nothing copied from the unreadable folder"
    );

    // Still broken: the same again (Dovecot now lists the folder \Noselect to plain LIST), nothing
    // duplicated.
    let out = run("migrate", &src, &dst, &state, &["--json"]);
    assert_eq!(out.status.code(), Some(1), "stderr: {}", stderr(&out));
    let events = json_lines(&out);
    assert!(
        events
            .iter()
            .any(|e| e["type"] == "error" && e["folder"] == bad && e["side"] == "source"),
        "{events:?}"
    );
    assert_eq!(dst.digest(USER), dst_digest, "nothing changed");

    // verify: the folder it cannot open is reported, the others are compared.
    let out = run("verify", &src, &dst, &state, &["--json"]);
    assert_eq!(out.status.code(), Some(1), "stderr: {}", stderr(&out));
    let events = json_lines(&out);
    let vs = events.last().expect("events");
    assert_eq!(vs["type"], "verify_summary");
    assert_eq!(vs["status"], "partial", "{vs}");
    assert_eq!(vs["folders_failed"].as_u64(), Some(1));
    assert_eq!(vs["missing"].as_u64(), Some(0));
    assert!(
        events
            .iter()
            .any(|e| e["type"] == "error" && e["folder"] == bad && e["side"] == "source")
    );
    let compared = events
        .iter()
        .filter(|e| e["type"] == "verify_folder")
        .count();
    assert_eq!(compared, src_digest.folders.len() - 1);

    // Readable again: the same command finishes the job.
    chmod(&folder_dir(&src, bad), 0o700);
    let out = run("migrate", &src, &dst, &state, &["--json"]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let events = json_lines(&out);
    let sum = summary(&events);
    assert_eq!(sum["status"], "complete");
    assert_eq!(
        sum["messages_copied"].as_u64(),
        Some(src_digest.folders[bad].messages.len() as u64)
    );
    let map = folder_map(sum);
    assert!(
        !map.contains_key("Ghost/Sub") && !map.contains_key("Ghost"),
        "{map:?}"
    );
    assert!(
        !events.iter().any(|e| e["type"] == "warning"
            && e["message"].as_str().is_some_and(|m| m.contains("Ghost")))
    );
    assert_same_mail(
        "second run",
        &src_digest,
        &dst.digest(USER),
        &map,
        Others::Empty,
    );
    let out = run("verify", &src, &dst, &state, &["--json"]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));

    // A folder an earlier run copied breaks: the incremental run says so (exit 1), not
    // "complete"; mended, the next run is complete again with nothing to copy.
    chmod(&folder_dir(&src, bad), 0o000);
    for round in ["broken", "broken again"] {
        let out = run("migrate", &src, &dst, &state, &["--json"]);
        assert_eq!(out.status.code(), Some(1), "{round}: {}", stderr(&out));
        let events = json_lines(&out);
        assert!(
            events
                .iter()
                .any(|e| e["type"] == "error" && e["folder"] == bad && e["side"] == "source"),
            "{round}: {events:?}"
        );
    }
    // A job that never saw the folder (its own state file) is not fooled by the \Noselect
    // Dovecot now lists it with either.
    let fresh = tmp.path().join("fresh.json");
    let out = run("migrate", &src, &dst, &fresh, &["--json"]);
    assert_eq!(out.status.code(), Some(1), "fresh job: {}", stderr(&out));
    let events = json_lines(&out);
    assert_eq!(summary(&events)["folders_failed"].as_u64(), Some(1));
    chmod(&folder_dir(&src, bad), 0o700);
    let out = run("migrate", &src, &dst, &state, &["--json"]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let events = json_lines(&out);
    assert_eq!(summary(&events)["messages_copied"].as_u64(), Some(0));
    assert_same_mail(
        "after mending",
        &src_digest,
        &dst.digest(USER),
        &map,
        Others::Empty,
    );
}

#[test]
fn subscriptions_follow_the_source_and_folders_never_merge() {
    let src = Dovecot::source();
    let dst = Dovecot::destination();
    src.generate(USER, &["--seed", "5", "--messages", "60"]);
    // A real "a_b" beside "a.b" (which becomes "a_b" on a '.' destination).
    src.generate(
        USER,
        &["--profile", "flat", "--folder", "a_b", "--messages", "3"],
    );
    src.imap(USER, &["UNSUBSCRIBE Archive"]);
    // The destination has some folders already, subscribed unlike the source; two of them
    // ("Elsewhere", "Lonely") are not part of the plan, one ("Entwürfe") is left out.
    dst.imap(
        USER,
        &[
            "CREATE Archive",
            "SUBSCRIBE Archive",
            "CREATE \"Old Mail\"",
            "SUBSCRIBE \"Old Mail\"",
            "CREATE Drafts",
            "UNSUBSCRIBE Drafts",
            "CREATE Entw&APw-rfe",
            "CREATE Elsewhere",
            "SUBSCRIBE Elsewhere",
            "CREATE Lonely",
        ],
    );
    let src_digest = src.digest(USER);
    assert!(!src_digest.folders["Archive"].subscribed);
    assert!(!src_digest.folders["Old Mail"].subscribed);
    assert!(src_digest.folders["Drafts"].subscribed);
    assert!(src_digest.folders["Entwürfe"].subscribed);
    let before = dst.digest(USER);
    let tmp = tempfile::tempdir().expect("tmp");
    let state = tmp.path().join("job.json");

    // A --folder-map onto another source folder's name is refused before anything changes.
    let out = run(
        "migrate",
        &src,
        &dst,
        &state,
        &["--json", "--folder-map", "Old Mail=Empty"],
    );
    assert_eq!(out.status.code(), Some(2), "stderr: {}", stderr(&out));
    let events = json_lines(&out);
    let err = summary(&events)["error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        err.contains("'Old Mail'") && err.contains("'Empty'"),
        "{err}"
    );
    assert_eq!(dst.digest(USER), before, "nothing changed");

    // (A job with other options is another job: its own state file.)
    let state = tmp.path().join("job2.json");
    let out = run(
        "migrate",
        &src,
        &dst,
        &state,
        &["--json", "--exclude", "Entw*"],
    );
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let events = json_lines(&out);
    let map = folder_map(summary(&events));
    assert_eq!(map["a_b"], "a_b");
    assert_eq!(map["a.b"], "a_b-2");
    assert!(events.iter().any(|e| e["type"] == "warning"
        && e["folder"] == "a.b"
        && e["message"].as_str().is_some_and(|m| m.contains("a_b-2"))));
    let dst_digest = dst.digest(USER);
    assert_same_mail(
        "",
        &without(&src_digest, "Entwürfe"),
        &dst_digest,
        &map,
        Others::Ignored,
    );
    for (name, f) in &src_digest.folders {
        if name == "Entwürfe" {
            continue;
        }
        assert_eq!(
            dst_digest.folders[&map[name]].subscribed, f.subscribed,
            "subscription of {name}"
        );
    }
    // Folders outside the plan keep theirs.
    assert!(dst_digest.folders["Elsewhere"].subscribed);
    assert!(!dst_digest.folders["Lonely"].subscribed);
    assert!(!dst_digest.folders["Entwürfe"].subscribed);
}

#[test]
fn a_destination_folder_that_cannot_be_opened_fails_alone() {
    let src = Dovecot::source();
    let dst = Dovecot::destination();
    src.generate(USER, &["--seed", "9", "--messages", "60"]);
    let src_digest = src.digest(USER);
    assert!(!src_digest.folders["Archive"].messages.is_empty());
    dst.imap(USER, &["CREATE Archive"]);
    // Maildir++ on the destination: the folder is the directory ".Archive".
    let broken = dst
        .dir
        .join("home")
        .join(USER)
        .join("Maildir")
        .join(".Archive");
    chmod(&broken, 0o000);
    let tmp = tempfile::tempdir().expect("tmp");
    let state = tmp.path().join("job.json");

    let out = run("migrate", &src, &dst, &state, &["--json"]);
    assert_eq!(out.status.code(), Some(1), "stderr: {}", stderr(&out));
    let events = json_lines(&out);
    let sum = summary(&events);
    assert_eq!(sum["folders_failed"].as_u64(), Some(1), "{sum}");
    assert!(
        events.iter().any(|e| e["type"] == "error"
            && e["folder"] == "Archive"
            && e["side"] == "destination"),
        "{events:?}"
    );
    let map = folder_map(sum);
    chmod(&broken, 0o700);
    assert_same_mail(
        "first run",
        &without(&src_digest, "Archive"),
        &dst.digest(USER),
        &map,
        Others::Ignored,
    );

    let out = run("migrate", &src, &dst, &state, &["--json"]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let events = json_lines(&out);
    assert_eq!(
        summary(&events)["messages_copied"].as_u64(),
        Some(src_digest.folders["Archive"].messages.len() as u64)
    );
    assert_same_mail(
        "second run",
        &src_digest,
        &dst.digest(USER),
        &map,
        Others::Empty,
    );
    let dst_digest = dst.digest(USER);

    // A job without a state file finds everything present, whatever LIST now says about
    // the once-broken folder (Dovecot may list it \Noselect): nothing is appended twice.
    let out = run(
        "migrate",
        &src,
        &dst,
        &tmp.path().join("fresh.json"),
        &["--json"],
    );
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    assert_eq!(
        summary(&json_lines(&out))["messages_copied"].as_u64(),
        Some(0)
    );
    assert_eq!(dst.digest(USER), dst_digest, "nothing duplicated");
}

#[test]
fn a_folder_that_keeps_breaking_the_session_fails_alone() {
    let src = Dovecot::source();
    let dst = Dovecot::destination();
    src.generate(USER, &["--seed", "3", "--messages", "60"]);
    let src_digest = src.digest(USER);
    let bad = "Old Mail";
    assert!(!src_digest.folders[bad].messages.is_empty());
    // Every command naming that folder, on every source connection, gets an unreadable
    // line in its answer: a FETCH that does not parse (an unknown untagged response would
    // be skipped, as RFC 3501 allows).
    let rule = proxy::Rule {
        dir: proxy::Dir::ServerToClient,
        action: proxy::Action::InjectAfterCommand {
            command: bad.as_bytes().to_vec(),
            line: b"* 1 FETCH (UID )) \x01\r\n".to_vec(),
        },
        first_at: 1,
        every: 1,
        max_faults: usize::MAX,
        min_conn_bytes: 0,
        from_conn: 0,
        per_connection: true,
    };
    let p = proxy::Proxy::start(src.imap_port, Some(rule));
    let tmp = tempfile::tempdir().expect("tmp");
    let out = btsx()
        .arg("migrate")
        .arg(format!("imap://{USER}@localhost:{}", p.port))
        .arg(dst.url(USER))
        .arg("--ca-file")
        .arg(&dst.ca_file)
        .args(["--plaintext", "--retries", "2", "--json", "--state"])
        .arg(tmp.path().join("job.json"))
        .env("BTSX_SRC_PASSWORD", src.password(USER))
        .env("BTSX_DST_PASSWORD", dst.password(USER))
        .output()
        .expect("run btsx");
    assert_eq!(out.status.code(), Some(1), "stderr: {}", stderr(&out));
    let events = json_lines(&out);
    let sum = summary(&events);
    assert_eq!(sum["folders_failed"].as_u64(), Some(1), "{sum}");
    assert!(
        events.iter().any(|e| e["type"] == "error"
            && e["folder"] == bad
            && e["side"] == "source"
            && e["message"]
                .as_str()
                .is_some_and(|m| m.contains("unreadable response"))),
        "{events:?}"
    );
    assert_same_mail(
        "",
        &without(&src_digest, bad),
        &dst.digest(USER),
        &folder_map(sum),
        Others::Empty,
    );

    // verify through the same proxy: that folder is reported, every other one compared.
    let out = btsx()
        .arg("verify")
        .arg(format!("imap://{USER}@localhost:{}", p.port))
        .arg(dst.url(USER))
        .arg("--ca-file")
        .arg(&dst.ca_file)
        // (verify has no --retries: the default 5, so this waits out its back-off.)
        .args(["--plaintext", "--json"])
        .env("BTSX_SRC_PASSWORD", src.password(USER))
        .env("BTSX_DST_PASSWORD", dst.password(USER))
        .output()
        .expect("run btsx");
    assert_eq!(out.status.code(), Some(1), "stderr: {}", stderr(&out));
    let events = json_lines(&out);
    let vs = events.last().expect("events");
    assert_eq!(vs["status"], "partial", "{vs}");
    assert_eq!(vs["missing"].as_u64(), Some(0), "{vs}");
    assert!(
        events
            .iter()
            .any(|e| e["type"] == "error" && e["folder"] == bad && e["side"] == "source"),
        "{events:?}"
    );
    let compared = events
        .iter()
        .filter(|e| e["type"] == "verify_folder")
        .count();
    assert_eq!(compared, src_digest.folders.len() - 1);
}

#[test]
fn a_destination_folder_listed_noselect_is_still_indexed_before_copying() {
    let src = Dovecot::source();
    // LAYOUT=fs on the destination too: there Dovecot lists a folder it once failed to open
    // as \Noselect, also after it was mended.
    let dst = Dovecot::source();
    src.generate(USER, &["--seed", "21", "--messages", "40"]);
    let tmp = tempfile::tempdir().expect("tmp");
    let out = run(
        "migrate",
        &src,
        &dst,
        &tmp.path().join("a.json"),
        &["--json"],
    );
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let dst_digest = dst.digest(USER);
    let folder = "Old Mail";
    assert!(!dst_digest.folders[folder].messages.is_empty());
    chmod(&folder_dir(&dst, folder), 0o000);
    dst.imap(USER, &["STATUS \"Old Mail\" (MESSAGES)", "LIST \"\" \"*\""]);
    chmod(&folder_dir(&dst, folder), 0o700);
    let listed = dst.imap(USER, &["LIST \"\" \"Old Mail\""]);
    assert!(listed.contains("\\Noselect"), "precondition: {listed}");

    // A job without a state file: the folder holds mail, so it is indexed, not refilled.
    let out = run(
        "migrate",
        &src,
        &dst,
        &tmp.path().join("b.json"),
        &["--json"],
    );
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    assert_eq!(
        summary(&json_lines(&out))["messages_copied"].as_u64(),
        Some(0)
    );
    // (digest.py leaves \Noselect folders out: ask STATUS.)
    let status = dst.imap(USER, &["STATUS \"Old Mail\" (MESSAGES)"]);
    let want = format!("(MESSAGES {})", dst_digest.folders[folder].messages.len());
    assert!(status.contains(&want), "nothing appended twice: {status}");
}

//! A big folder on several connections (issue 12 item 4): a folder holding more than its
//! share of the job is copied in parts of contiguous source UIDs, one per worker, and still
//! reads as one folder: every message once, one folder_started and one folder_finished,
//! counts right, and a kill -9 in the middle resumes without losing or doubling mail.

mod support;

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Dovecot, Others, assert_same_mail, folder_map, json_lines, migrate_cmd, summary};

const USER: &str = "alice";

/// APPEND the same small message (a twin of every other call's) to `folder`.
fn append_twin(d: &Dovecot, folder: &str) {
    let msg = "From: Twin <twin@example.org>\r\nTo: Alice <alice@example.com>\r\nSubject: the same twice\r\nDate: Mon, 01 Jan 2024 10:00:00 +0000\r\nMessage-ID: <twin@example.org>\r\n\r\nIdentical bytes, identical date.\r\n";
    let cmd = format!(
        "APPEND \"{folder}\" (\\Seen) \"01-Jan-2024 10:00:00 +0000\" {{{}}}\r\n{msg}",
        msg.len()
    );
    let t = d.imap(USER, &[&cmd]);
    assert!(t.contains("OK [APPENDUID") || t.contains(" OK "), "{t}");
}

/// A source whose INBOX holds `n` generated messages between two identical twins (first
/// and last UID: they land in different parts).
fn source_with_big_inbox(n: u32) -> Dovecot {
    let src = Dovecot::source();
    append_twin(&src, "INBOX");
    src.generate(
        USER,
        &[
            "--seed",
            "3",
            "--messages",
            &n.to_string(),
            "--profile",
            "flat",
        ],
    );
    append_twin(&src, "INBOX");
    src
}

fn of_type<'a>(events: &'a [Value], t: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    events.iter().filter(move |e| e["type"] == t)
}

fn inbox_events<'a>(events: &'a [Value], t: &'a str) -> Vec<&'a Value> {
    of_type(events, t)
        .filter(|e| e["folder"] == "INBOX")
        .collect()
}

fn read_state(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).expect("read state")).expect("state json")
}

#[test]
fn a_big_folder_goes_in_parts_and_every_message_arrives_once() {
    let src = source_with_big_inbox(1200);
    let dst = Dovecot::destination();
    let src_digest = src.digest(USER);
    let total = src_digest.folders["INBOX"].messages.len() as u64;
    assert_eq!(total, 1202);
    let tmp = tempfile::tempdir().expect("tmp");
    let state = tmp.path().join("job.json");
    let out = migrate_cmd(
        &src,
        &dst,
        USER,
        &state,
        &["--json", "--verbose", "--jobs", "4"],
    )
    .output()
    .expect("run btsx");
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let events = json_lines(&out);
    assert!(
        of_type(&events, "detail").any(|e| e["message"]
            .as_str()
            .is_some_and(|m| m.contains("'INBOX' goes in 8 parts"))),
        "1,202 messages at --jobs 4: parts of 150"
    );
    let started = inbox_events(&events, "folder_started");
    let finished = inbox_events(&events, "folder_finished");
    assert_eq!(started.len(), 1, "one folder_started");
    assert_eq!(finished.len(), 1, "one folder_finished");
    assert_eq!(started[0]["messages"].as_u64(), Some(total));
    let f = finished[0];
    assert_eq!(f["status"], "complete");
    assert_eq!(f["messages"].as_u64(), Some(total));
    assert_eq!(f["copied"].as_u64(), Some(total), "the twins both copied");
    assert_eq!(f["skipped"].as_u64(), Some(0));
    for p in inbox_events(&events, "progress") {
        assert!(
            p["done"].as_u64() <= Some(total),
            "progress within the folder: {p}"
        );
        assert_eq!(p["total"].as_u64(), Some(total));
        assert!(p["overall_done"].as_u64() <= p["overall_total"].as_u64());
    }
    let sum = summary(&events);
    let all = support::total_messages(&src_digest) as u64;
    assert_eq!(sum["messages_copied"].as_u64(), Some(all));
    assert_eq!(sum["messages_total"].as_u64(), Some(all));
    let inbox = sum["per_folder"]
        .as_array()
        .expect("per_folder")
        .iter()
        .filter(|r| r["folder"] == "INBOX")
        .count();
    assert_eq!(inbox, 1, "one report for the folder");
    assert_same_mail(
        "",
        &src_digest,
        &dst.digest(USER),
        &folder_map(sum),
        Others::Empty,
    );
    // The state file: settled to the last UID, no parts left, UIDNEXT recorded.
    let st = read_state(&state);
    let inbox = &st["folders"]["INBOX"];
    assert_eq!(inbox["last_uid"].as_u64(), Some(total), "{inbox}");
    assert!(inbox.get("parts").is_none(), "{inbox}");
    assert!(inbox["dest_uid_next"].as_u64().is_some(), "{inbox}");
    assert_eq!(inbox["copied"].as_u64(), Some(total));

    // A second run copies nothing.
    let again = migrate_cmd(&src, &dst, USER, &state, &["--json", "--jobs", "4"])
        .output()
        .expect("run btsx");
    assert_eq!(again.status.code(), Some(0));
    let events = json_lines(&again);
    assert_eq!(summary(&events)["messages_copied"].as_u64(), Some(0));
}

/// Wait until the run has recorded INBOX in its state file as parts still under way (what
/// the run writes, not a clock, says when to kill it).
fn wait_for_recorded_parts(child: &mut Child, state: &Path, out: &Path) {
    let limit = Instant::now() + Duration::from_secs(120);
    loop {
        let recorded = std::fs::read(state)
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .is_some_and(|st| {
                st["folders"]["INBOX"]["parts"]
                    .as_array()
                    .is_some_and(|p| !p.is_empty())
            });
        if recorded {
            return;
        }
        if let Ok(Some(st)) = child.try_wait() {
            let text = std::fs::read_to_string(out).unwrap_or_default();
            panic!("btsx ended ({st}) before it recorded INBOX's parts:\n{text}");
        }
        assert!(Instant::now() < limit, "INBOX's parts never recorded");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn kill_9_in_a_split_folder_then_resume_loses_and_doubles_nothing() {
    kill_then_resume("4");
}

/// The parts an earlier run recorded are kept whatever `--jobs` says now.
#[test]
fn a_split_folder_resumed_with_one_job_loses_and_doubles_nothing() {
    kill_then_resume("1");
}

fn kill_then_resume(resume_jobs: &str) {
    // Big enough that the kill lands mid-folder (a throttle would keep the folder whole).
    let src = source_with_big_inbox(3000);
    let dst = Dovecot::destination();
    let src_digest = src.digest(USER);
    let total = src_digest.folders["INBOX"].messages.len() as u64;
    let tmp = tempfile::tempdir().expect("tmp");
    let state = tmp.path().join("job.json");
    let out = tmp.path().join("run1.jsonl");
    let mut child = migrate_cmd(&src, &dst, USER, &state, &["--json", "--jobs", "4"])
        .stdout(Stdio::from(std::fs::File::create(&out).expect("out")))
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn btsx");
    wait_for_recorded_parts(&mut child, &state, &out);
    child.kill().expect("kill -9");
    let _ = child.wait();

    // The state file claims no more than is settled: parts beyond the watermark.
    let st = read_state(&state);
    let inbox = &st["folders"]["INBOX"];
    let parts = inbox["parts"].as_array().cloned().unwrap_or_default();
    assert!(
        !parts.is_empty(),
        "a split folder stopped midway records its parts: {inbox}"
    );
    assert!(inbox["dest_uid_next"].is_null(), "{inbox}");
    let last_uid = inbox["last_uid"].as_u64().expect("last_uid");
    // Settled: everything up to the watermark and each part's point. Copies confirmed
    // ahead of a part's point are not recorded yet (the next run walks them again).
    let mut settled: std::collections::HashSet<u64> = (1..=last_uid).collect();
    for p in &parts {
        let (lo, hi, done) = (p[0].as_u64(), p[1].as_u64(), p[2].as_u64());
        let (Some(lo), Some(hi), Some(done)) = (lo, hi, done) else {
            panic!("bad part {p}");
        };
        assert!(lo <= hi && done + 1 >= lo && done <= hi, "{p}");
        settled.extend(lo..=done);
    }
    let settled = settled.len() as u64;
    let recorded = inbox["copied"].as_u64().unwrap_or(0) + inbox["skipped"].as_u64().unwrap_or(0);
    assert!(
        recorded <= settled,
        "counts ({recorded}) never exceed the settled UIDs ({settled}): {inbox}"
    );
    // The destination holds at least what the state claims (maybe more: in flight).
    let mid = dst.digest(USER);
    let held = mid
        .folders
        .get("INBOX")
        .map_or(0, |f| f.messages.len() as u64);
    assert!(held >= inbox["copied"].as_u64().unwrap_or(0));

    let run = migrate_cmd(&src, &dst, USER, &state, &["--json", "--jobs", resume_jobs])
        .output()
        .expect("resume");
    assert_eq!(
        run.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let events = json_lines(&run);
    assert_eq!(inbox_events(&events, "folder_started").len(), 1);
    assert_eq!(inbox_events(&events, "folder_finished").len(), 1);
    assert_same_mail(
        "after resume",
        &src_digest,
        &dst.digest(USER),
        &folder_map(summary(&events)),
        Others::Empty,
    );
    let st = read_state(&state);
    let inbox = &st["folders"]["INBOX"];
    assert!(inbox.get("parts").is_none(), "{inbox}");
    assert_eq!(inbox["last_uid"].as_u64(), Some(total));
    let c = |k: &str| inbox[k].as_u64().unwrap_or(0);
    assert_eq!(
        c("copied") + c("skipped"),
        total,
        "each message counted once: {inbox}"
    );
    assert_eq!(c("messages"), total, "{inbox}");
    assert_eq!(c("failed"), 0, "{inbox}");
}

#[test]
fn twins_in_two_parts_never_take_the_same_destination_copy() {
    // Twins at UIDs 152 and 302, in parts 151..=300 and 301..=450. Whichever indexes the
    // destination second must not take the copy the other found (whether it was claimed
    // before or after that index was read: `parts::Keep`).
    let src = Dovecot::source();
    let generate = |seed: &str, n: &str| {
        src.generate(
            USER,
            &["--seed", seed, "--messages", n, "--profile", "flat"],
        );
    };
    generate("3", "151");
    append_twin(&src, "INBOX");
    generate("4", "149");
    append_twin(&src, "INBOX");
    generate("5", "900");
    let dst = Dovecot::destination();
    // The destination holds one copy of the twin already: one part finds it there, the
    // other part's twin must still be copied.
    append_twin(&dst, "INBOX");
    let src_digest = src.digest(USER);
    let total = src_digest.folders["INBOX"].messages.len() as u64;
    let tmp = tempfile::tempdir().expect("tmp");
    let state = tmp.path().join("job.json");
    let out = migrate_cmd(&src, &dst, USER, &state, &["--json", "--jobs", "4"])
        .output()
        .expect("run btsx");
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let events = json_lines(&out);
    let f = inbox_events(&events, "folder_finished");
    assert_eq!(f.len(), 1);
    assert_eq!(f[0]["copied"].as_u64(), Some(total - 1), "{}", f[0]);
    assert_eq!(f[0]["skipped"].as_u64(), Some(1), "{}", f[0]);
    assert_eq!(
        of_type(&events, "message_skipped")
            .filter(|e| e["reason"] == "already_present")
            .count(),
        1
    );
    assert_same_mail(
        "",
        &src_digest,
        &dst.digest(USER),
        &folder_map(summary(&events)),
        Others::Empty,
    );
}

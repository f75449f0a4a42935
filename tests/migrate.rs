//! `btsx migrate` against two real Dovecot servers: source separator '/', destination '.'.

mod support;

use std::path::Path;
use std::process::Output;

use serde_json::Value;
use support::{Dovecot, Others, assert_same_mail, btsx, folder_map, json_lines, summary};

const USER: &str = "alice";

/// Run `btsx migrate src dst` with passwords from the environment and the given extra args.
fn migrate(src: &Dovecot, dst: &Dovecot, state: &Path, extra: &[&str]) -> Output {
    btsx()
        .arg("migrate")
        .arg(src.url(USER))
        .arg(dst.url(USER))
        .arg("--ca-file")
        .arg(&src.ca_file)
        .arg("--state")
        .arg(state)
        .args(extra)
        .env("BTSX_SRC_PASSWORD", src.password(USER))
        .env("BTSX_DST_PASSWORD", dst.password(USER))
        .env(
            "XDG_STATE_HOME",
            state.parent().unwrap_or(Path::new("/tmp")),
        )
        .output()
        .expect("run btsx")
}

#[test]
fn full_migration_is_lossless_and_reruns_copy_nothing() {
    let src = Dovecot::source();
    let dst = Dovecot::destination();
    let generated = src.generate(USER, &["--seed", "7", "--messages", "300"]);
    let src_digest = src.digest(USER);
    let total = support::total_messages(&src_digest);
    assert_eq!(Some(total as u64), generated["messages"].as_u64());
    let tmp = tempfile::tempdir().expect("tmp");
    let state = tmp.path().join("job.json");

    // First run: everything copied.
    let out = migrate(&src, &dst, &state, &["--json"]);
    let events = json_lines(&out);
    let sum = summary(&events);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(sum["status"], "complete");
    assert_eq!(sum["messages_copied"].as_u64(), Some(total as u64));
    assert_eq!(sum["messages_failed"].as_u64(), Some(0));
    let map = folder_map(summary(&events));

    // Folder names: hierarchy translated, non-ASCII decoded, the plain '.' not a hierarchy.
    for (s, d) in [
        ("INBOX", "INBOX"),
        ("Archive/2020/Q1", "Archive.2020.Q1"),
        ("Entwürfe", "Entwürfe"),
        ("日本語", "日本語"),
        ("Old Mail", "Old Mail"),
        ("Empty", "Empty"),
        ("a.b", "a_b"),
    ] {
        assert_eq!(map.get(s).map(String::as_str), Some(d), "mapping of {s}");
    }
    let dst_digest = dst.digest(USER);
    assert_same_mail("", &src_digest, &dst_digest, &map, Others::Ignored);
    assert!(
        dst_digest.folders.contains_key("Empty"),
        "empty folder created"
    );
    // Subscriptions follow the source ("Old Mail" is not subscribed there).
    assert!(!src_digest.folders["Old Mail"].subscribed);
    for (name, f) in &src_digest.folders {
        assert_eq!(
            dst_digest.folders[&map[name]].subscribed, f.subscribed,
            "subscription of {name}"
        );
    }
    // The warning about the plain separator says how the folder was mapped.
    assert!(events.iter().any(
        |e| e["type"] == "warning" && e["message"].as_str().unwrap_or_default().contains("a_b")
    ));
    // Migrate never changes the source.
    assert_eq!(src.digest(USER), src_digest, "source unchanged");

    // Second run with the same state: incremental, nothing to copy, no body fetched.
    let out = migrate(&src, &dst, &state, &["--json"]);
    let events = json_lines(&out);
    let sum = summary(&events);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(sum["messages_copied"].as_u64(), Some(0));
    assert_eq!(sum["messages_total"].as_u64(), Some(0));
    assert!(!events.iter().any(|e| e["type"] == "message_skipped"));

    // A run without the state: the destination index finds everything already there.
    let fresh = tmp.path().join("other.json");
    let out = migrate(&src, &dst, &fresh, &["--json"]);
    let events = json_lines(&out);
    let sum = summary(&events);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(sum["messages_copied"].as_u64(), Some(0));
    assert_eq!(sum["messages_skipped"].as_u64(), Some(total as u64));
    assert_eq!(dst.digest(USER), dst_digest, "nothing duplicated");
}

#[test]
fn partially_present_destination_gets_only_what_is_missing() {
    let src = Dovecot::source();
    let dst = Dovecot::destination();
    src.generate(USER, &["--seed", "3", "--messages", "120"]);
    let tmp = tempfile::tempdir().expect("tmp");
    let out = migrate(&src, &dst, &tmp.path().join("a.json"), &["--json"]);
    assert_eq!(out.status.code(), Some(0));
    let map = folder_map(summary(&json_lines(&out)));
    // Remove two INBOX messages on the destination, then migrate again without state.
    dst.imap(
        USER,
        &[
            "SELECT INBOX",
            "STORE 1:2 +FLAGS.SILENT (\\Deleted)",
            "EXPUNGE",
        ],
    );
    let out = migrate(&src, &dst, &tmp.path().join("b.json"), &["--json"]);
    let events = json_lines(&out);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(summary(&events)["messages_copied"].as_u64(), Some(2));
    assert_same_mail(
        "",
        &src.digest(USER),
        &dst.digest(USER),
        &map,
        Others::Ignored,
    );
}

#[test]
fn json_stream_is_complete_and_ordered() {
    let src = Dovecot::source();
    let dst = Dovecot::destination();
    src.generate(USER, &["--seed", "5", "--messages", "80"]);
    let tmp = tempfile::tempdir().expect("tmp");
    let out = migrate(&src, &dst, &tmp.path().join("s.json"), &["--json"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        out.stderr.is_empty(),
        "nothing on stderr with --json: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let events = json_lines(&out);
    assert_eq!(events[0]["type"], "start");
    assert_eq!(events[0]["format_version"], 1);
    for e in &events {
        let ts = e["ts"].as_str().expect("ts");
        assert!(humantime::parse_rfc3339(ts).is_ok(), "ts {ts}");
    }
    let phases: Vec<&str> = events
        .iter()
        .filter(|e| e["type"] == "phase")
        .filter_map(|e| e["phase"].as_str())
        .collect();
    assert_eq!(
        phases,
        [
            "initializing",
            "scanning_folders",
            "creating_folders",
            "copying_messages",
            "finalizing",
            "complete"
        ]
    );
    for side in ["source", "destination"] {
        let states: Vec<&str> = events
            .iter()
            .filter(|e| e["type"] == "connection" && e["side"] == side)
            .filter_map(|e| e["state"].as_str())
            .collect();
        assert_eq!(
            states,
            ["connecting", "connected", "authenticating", "authenticated"]
        );
    }
    // Every started folder finishes; progress reaches the total.
    let started: Vec<&str> = events
        .iter()
        .filter(|e| e["type"] == "folder_started")
        .filter_map(|e| e["folder"].as_str())
        .collect();
    for f in &started {
        assert!(events.iter().any(|e| e["type"] == "folder_finished"
            && e["folder"] == *f
            && e["status"] == "complete"));
    }
    let last_progress = events
        .iter()
        .rev()
        .find(|e| e["type"] == "progress")
        .expect("progress events");
    assert_eq!(
        last_progress["overall_done"],
        last_progress["overall_total"]
    );
    assert_eq!(last_progress["overall_total"].as_u64(), Some(80));
}

#[test]
fn plain_human_output_has_the_live_lines() {
    let src = Dovecot::source();
    let dst = Dovecot::destination();
    src.generate(USER, &["--seed", "9", "--messages", "250"]);
    let tmp = tempfile::tempdir().expect("tmp");
    let out = migrate(&src, &dst, &tmp.path().join("s.json"), &[]);
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty(), "humans on stderr, nothing on stdout");
    let err = String::from_utf8_lossy(&out.stderr);
    for want in [
        "✓ Connected to source server: localhost",
        "✓ Connected to destination server: localhost",
        "→ Scanning folders...",
        "✓ Found 13 folders",
        // People see the source's name, and "→ destination" where the two differ.
        "→ Creating folder: Archive/2020/Q1 → Archive.2020.Q1",
        "→ Copying INBOX (",
        "⚠ Warning: folder 'a.b'",
        "Migration complete",
        "Total Folders",
        "Average speed:",
        "Folder",
        "✓ complete",
    ] {
        if want == "Total Folders" {
            assert!(err.contains("Folders:"), "missing folders total in:\n{err}");
            continue;
        }
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
    assert!(
        !err.contains('\u{1b}'),
        "no color or cursor codes off a terminal"
    );
    // Summary numbers.
    assert!(err.contains("250 copied"), "{err}");
    // The per-folder table lines up on screen, wide characters (日本語) included.
    let columns: Vec<usize> = err
        .lines()
        .filter_map(|l| {
            l.find("✓ complete")
                .map(|i| console::measure_text_width(&l[..i]))
        })
        .collect();
    assert_eq!(columns.len(), 13, "one row per folder:\n{err}");
    assert!(
        columns.windows(2).all(|w| w[0] == w[1]),
        "{columns:?}\n{err}"
    );
}

#[test]
fn special_use_folders_land_in_the_destinations_own() {
    let src = Dovecot::source();
    let dst = Dovecot::destination();
    src.generate(USER, &["--seed", "11", "--messages", "120"]);
    // The destination already has its own Sent and Trash (special use set in its config).
    dst.imap(USER, &["CREATE Sent", "CREATE Trash"]);
    let tmp = tempfile::tempdir().expect("tmp");
    let out = migrate(&src, &dst, &tmp.path().join("s.json"), &["--json"]);
    assert_eq!(out.status.code(), Some(0));
    let events = json_lines(&out);
    let map = folder_map(summary(&events));
    assert_eq!(map["Sent Messages"], "Sent");
    assert_eq!(map["Deleted Messages"], "Trash");
    assert_eq!(map["Drafts"], "Drafts");
    let dst_digest = dst.digest(USER);
    assert!(!dst_digest.folders.contains_key("Sent Messages"));
    assert_eq!(dst_digest.folders["Sent"].special_use, ["\\Sent"]);
    assert_same_mail("", &src.digest(USER), &dst_digest, &map, Others::Ignored);
}

#[test]
fn courier_style_destination_gets_every_folder_under_its_prefix() {
    let src = Dovecot::source();
    let dst = Dovecot::start(support::ServerOpts {
        separator: '.',
        ns_prefix: Some("INBOX.".into()),
        ..Default::default()
    });
    src.generate(USER, &["--seed", "12", "--messages", "80"]);
    let tmp = tempfile::tempdir().expect("tmp");
    let out = migrate(&src, &dst, &tmp.path().join("s.json"), &["--json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let events = json_lines(&out);
    let map = folder_map(summary(&events));
    assert_eq!(map["INBOX"], "INBOX");
    assert_eq!(map["Archive/2020/Q1"], "INBOX.Archive.2020.Q1");
    assert_eq!(map["Entwürfe"], "INBOX.Entwürfe");
    assert_same_mail(
        "",
        &src.digest(USER),
        &dst.digest(USER),
        &map,
        Others::Ignored,
    );
}

#[test]
fn starttls_urls_upgrade_and_plaintext_needs_to_be_asked_for() {
    let src = Dovecot::source();
    let dst = Dovecot::destination();
    src.generate(USER, &["--seed", "13", "--messages", "40"]);
    let tmp = tempfile::tempdir().expect("tmp");
    let run = |extra: &[&str], state: &str| {
        btsx()
            .arg("migrate")
            .arg(src.starttls_url(USER))
            .arg(dst.starttls_url(USER))
            .arg("--ca-file")
            .arg(&src.ca_file)
            .arg("--state")
            .arg(tmp.path().join(state))
            .arg("--json")
            .args(extra)
            .env("BTSX_SRC_PASSWORD", src.password(USER))
            .env("BTSX_DST_PASSWORD", dst.password(USER))
            .output()
            .expect("run btsx")
    };
    // imap:// means STARTTLS, verified against the CA.
    let out = run(&[], "a.json");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let events = json_lines(&out);
    assert_eq!(summary(&events)["messages_copied"].as_u64(), Some(40));
    assert!(!events.iter().any(|e| {
        e["type"] == "warning"
            && e["message"]
                .as_str()
                .unwrap_or_default()
                .contains("plaintext")
    }));
    // --plaintext works too, and says what it costs.
    let out = run(&["--plaintext"], "b.json");
    assert_eq!(out.status.code(), Some(0));
    let events = json_lines(&out);
    assert!(events.iter().any(|e| {
        e["type"] == "warning"
            && e["message"]
                .as_str()
                .unwrap_or_default()
                .contains("--plaintext")
    }));
    assert_eq!(summary(&events)["messages_skipped"].as_u64(), Some(40));
}

#[test]
fn a_message_refused_inside_a_multiappend_fails_alone() {
    // The destination refuses messages over 100 kB but does not advertise APPENDLIMIT, so
    // btsx only learns it from the refusal of a whole MULTIAPPEND batch.
    let src = Dovecot::source();
    let dst = Dovecot::start(support::ServerOpts {
        separator: '.',
        max_mail_size: Some("100k".into()),
        extra_conf: Some("imap_capability =\n".into()),
        ..Default::default()
    });
    src.generate(USER, &["--seed", "14", "--messages", "300"]);
    let src_digest = src.digest(USER);
    let big: usize = src_digest
        .folders
        .values()
        .flat_map(|f| &f.messages)
        .filter(|m| m.size > 100 * 1024)
        .count();
    assert!(big > 0, "the generator makes some large messages");
    let tmp = tempfile::tempdir().expect("tmp");
    let out = migrate(&src, &dst, &tmp.path().join("s.json"), &["--json"]);
    let events = json_lines(&out);
    let sum = summary(&events);
    assert_eq!(out.status.code(), Some(1), "partial: {sum}");
    assert_eq!(sum["messages_failed"].as_u64(), Some(big as u64));
    assert_eq!(
        sum["messages_copied"].as_u64(),
        Some((support::total_messages(&src_digest) - big) as u64)
    );
    // Every refusal is reported with the server's reason.
    let failed: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "message_failed")
        .collect();
    assert_eq!(failed.len(), big);
    assert!(
        failed
            .iter()
            .all(|e| e["reason"].as_str().unwrap_or_default().contains("refused"))
    );
    // Nothing else is missing or doubled.
    let dst_digest = dst.digest(USER);
    assert_eq!(
        support::total_messages(&dst_digest),
        support::total_messages(&src_digest) - big
    );
}

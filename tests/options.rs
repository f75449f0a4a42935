//! One test per `btsx migrate` / `btsx verify` option, each against its own real Dovecot
//! servers, asserting what the option does to the mailboxes (read back with
//! scripts/digest.py) and to the event stream.

mod support;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;
use support::{Digest, Dovecot, MsgDigest, ServerOpts, btsx, folder_map, last_event, summary};
use tempfile::TempDir;

const USER: &str = "alice";

/// A per-test scratch directory: the state file `x.json` and `XDG_STATE_HOME` live here.
fn scratch() -> TempDir {
    tempfile::Builder::new()
        .prefix("btsx-options-")
        .tempdir()
        .expect("tempdir")
}

fn xdg(tmp: &Path) -> PathBuf {
    tmp.join("xdg")
}

/// `btsx SUB SRC DST --ca-file … [--state TMP/x.json]` with both passwords in the
/// environment, XDG_STATE_HOME inside `tmp` and no terminal on stdin.
fn cmd(sub: &str, src: &Dovecot, dst: &Dovecot, tmp: &Path) -> Command {
    let mut c = btsx();
    c.arg(sub)
        .arg(src.url(USER))
        .arg(dst.url(USER))
        .arg("--ca-file")
        .arg(&src.ca_file);
    if sub == "migrate" {
        c.arg("--state").arg(tmp.join("x.json"));
    }
    c.env("BTSX_SRC_PASSWORD", src.password(USER))
        .env("BTSX_DST_PASSWORD", dst.password(USER))
        .env("XDG_STATE_HOME", xdg(tmp))
        .stdin(Stdio::null());
    c
}

fn migrate(src: &Dovecot, dst: &Dovecot, tmp: &Path, extra: &[&str]) -> Output {
    cmd("migrate", src, dst, tmp)
        .args(extra)
        .output()
        .expect("run btsx migrate")
}

fn verify(src: &Dovecot, dst: &Dovecot, tmp: &Path, extra: &[&str]) -> Output {
    cmd("verify", src, dst, tmp)
        .args(extra)
        .output()
        .expect("run btsx verify")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn json_lines(bytes: &[u8]) -> Vec<Value> {
    text(bytes)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// The run ended with `code`; says what it printed otherwise.
fn assert_code(out: &Output, code: i32, what: &str) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "{what}: exit code\n--- stdout ---\n{}\n--- stderr ---\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

fn of_type<'a>(events: &'a [Value], ty: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    events.iter().filter(move |e| e["type"] == ty)
}

fn total(d: &Digest) -> usize {
    support::total_messages(d)
}

fn sorted(mut v: Vec<MsgDigest>) -> Vec<MsgDigest> {
    v.sort();
    v
}

/// Every message of `want` (source folder → messages) is, exactly, in its mapped folder.
fn assert_holds(
    dst: &Digest,
    want: &BTreeMap<String, Vec<MsgDigest>>,
    map: &HashMap<String, String>,
) {
    let mut by_dest: BTreeMap<&str, Vec<MsgDigest>> = BTreeMap::new();
    for (folder, msgs) in want {
        let d = map
            .get(folder)
            .unwrap_or_else(|| panic!("source folder {folder:?} not in the summary"));
        by_dest.entry(d).or_default().extend(msgs.iter().cloned());
    }
    for (d, msgs) in by_dest {
        let have = dst
            .folders
            .get(d)
            .unwrap_or_else(|| panic!("destination folder {d:?} missing"));
        assert_eq!(
            sorted(have.messages.clone()),
            sorted(msgs),
            "messages in destination folder {d:?}"
        );
    }
}

fn messages_of(d: &Digest) -> BTreeMap<String, Vec<MsgDigest>> {
    d.folders
        .iter()
        .map(|(k, f)| (k.clone(), f.messages.clone()))
        .collect()
}

/// RFC 3339 UTC for an epoch second.
fn rfc3339(epoch: i64) -> String {
    chrono::DateTime::from_timestamp(epoch, 0)
        .expect("valid epoch")
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn ts_ms(e: &Value) -> i64 {
    chrono::DateTime::parse_from_rfc3339(e["ts"].as_str().expect("ts"))
        .expect("RFC 3339 ts")
        .timestamp_millis()
}

// ---------------------------------------------------------------------------------------------

#[test]
fn verify_reports_ok_then_the_missing_message() {
    let src = Dovecot::source();
    let dst = Dovecot::destination();
    src.generate(USER, &["--seed", "11", "--messages", "60"]);
    let tmp = scratch();
    let out = migrate(&src, &dst, tmp.path(), &["--json"]);
    assert_code(&out, 0, "migrate");

    let out = verify(&src, &dst, tmp.path(), &["--json"]);
    assert_code(&out, 0, "verify after a full migrate");
    let events = json_lines(&out.stdout);
    assert_eq!(events[0]["type"], "start");
    assert_eq!(events[0]["command"], "verify");
    let sum = last_event(&events, "verify_summary");
    assert_eq!(sum["status"], "ok", "{sum}");
    assert_eq!(sum["exit_code"], 0);
    assert_eq!(sum["missing"], 0);
    let src_digest = src.digest(USER);
    assert_eq!(
        sum["source_messages"].as_u64(),
        Some(total(&src_digest) as u64)
    );
    assert_eq!(
        sum["source_clean"], false,
        "the source still holds every copied message"
    );
    assert!(of_type(&events, "verify_folder").all(|f| f["missing"] == 0));

    // Take away one INBOX message on the destination: one whose Message-ID is unique.
    let dst_digest = dst.digest(USER);
    let inbox = &dst_digest.folders["INBOX"].messages;
    let id = inbox
        .iter()
        .filter_map(|m| m.message_id.clone())
        .find(|id| {
            inbox
                .iter()
                .filter(|m| m.message_id.as_deref() == Some(id))
                .count()
                == 1
        })
        .expect("an INBOX message with a unique Message-ID");
    let t = dst.imap(
        USER,
        &[
            "SELECT INBOX",
            &format!("SEARCH HEADER Message-ID \"{id}\""),
        ],
    );
    let seqs: Vec<u32> = t
        .lines()
        .find_map(|l| l.strip_prefix("S: * SEARCH"))
        .expect("SEARCH answer")
        .split_whitespace()
        .map(|n| n.parse().expect("sequence number"))
        .collect();
    assert_eq!(seqs.len(), 1, "{t}");
    let t = dst.imap(
        USER,
        &[
            "SELECT INBOX",
            &format!("STORE {} +FLAGS.SILENT (\\Deleted)", seqs[0]),
            "EXPUNGE",
        ],
    );
    assert!(t.contains(" EXPUNGE"), "{t}");
    assert_eq!(
        dst.digest(USER).folders["INBOX"].messages.len(),
        inbox.len() - 1
    );

    let out = verify(&src, &dst, tmp.path(), &["--json"]);
    assert_code(&out, 8, "verify with one message gone");
    let events = json_lines(&out.stdout);
    let sum = last_event(&events, "verify_summary");
    assert_eq!(sum["status"], "mismatch");
    assert_eq!(sum["exit_code"], 8);
    assert_eq!(sum["missing"], 1);
    let folder = of_type(&events, "verify_folder")
        .find(|f| f["folder"] == "INBOX")
        .expect("verify_folder for INBOX");
    assert_eq!(folder["missing"], 1, "{folder}");
    assert_eq!(folder["missing_messages"][0]["message_id"], id.as_str());
    assert!(
        of_type(&events, "verify_folder")
            .filter(|f| f["folder"] != "INBOX")
            .all(|f| f["missing"] == 0)
    );
    // People see it too.
    let out = verify(&src, &dst, tmp.path(), &[]);
    assert_code(&out, 8, "verify, human display");
    assert!(out.stdout.is_empty());
    assert!(text(&out.stderr).contains(&id), "{}", text(&out.stderr));
}

#[test]
fn dry_run_changes_nothing_and_reports_the_plan() {
    let src = Dovecot::source();
    let dst = Dovecot::destination();
    src.generate(USER, &["--seed", "12", "--messages", "60"]);
    let src_digest = src.digest(USER);
    let before = dst.digest(USER);
    let tmp = scratch();

    let out = migrate(&src, &dst, tmp.path(), &["--dry-run", "--json"]);
    assert_code(&out, 0, "dry run");
    let events = json_lines(&out.stdout);
    assert_eq!(events[0]["dry_run"], true);

    assert_eq!(dst.digest(USER), before, "destination byte-identical");
    assert_eq!(
        before.folders.keys().collect::<Vec<_>>(),
        ["INBOX"],
        "no folder created"
    );
    assert_eq!(src.digest(USER), src_digest, "source unchanged");
    assert!(!tmp.path().join("x.json").exists(), "no state file written");
    assert!(!xdg(tmp.path()).exists(), "nothing under XDG_STATE_HOME");
    assert!(of_type(&events, "folder_created").next().is_none());
    assert!(of_type(&events, "progress").next().is_none());

    // The plan: every source folder, those missing on the destination marked `create`.
    let found: BTreeMap<&str, &Value> = of_type(&events, "folder_found")
        .map(|e| (e["folder"].as_str().expect("folder"), e))
        .collect();
    assert_eq!(
        found.keys().copied().collect::<BTreeSet<_>>(),
        src_digest.folders.keys().map(String::as_str).collect()
    );
    for (name, e) in &found {
        let dest = e["destination"].as_str().expect("destination");
        let exists = before.folders.contains_key(dest);
        assert_eq!(e["create"], !exists, "create flag of {name} → {dest}");
    }
    assert_eq!(found["INBOX"]["create"], false);

    let sum = last_event(&events, "summary");
    assert_eq!(sum["status"], "complete", "{sum}");
    assert_eq!(sum["messages_copied"], 0);
    assert_eq!(
        sum["messages_total"].as_u64(),
        Some(total(&src_digest) as u64)
    );
    for f in sum["per_folder"].as_array().expect("per_folder") {
        let name = f["folder"].as_str().expect("folder");
        let msgs = &src_digest.folders[name].messages;
        assert_eq!(f["messages"].as_u64(), Some(msgs.len() as u64), "{name}");
        assert_eq!(
            f["bytes"].as_u64(),
            Some(msgs.iter().map(|m| m.size).sum::<u64>()),
            "{name}"
        );
        assert_eq!(f["copied"], 0);
        assert_eq!(found[name]["messages"], f["messages"]);
        assert_eq!(found[name]["bytes"], f["bytes"]);
    }
}

#[test]
fn folders_only_creates_every_folder_and_no_message() {
    let src = Dovecot::source();
    let dst = Dovecot::destination();
    src.generate(USER, &["--seed", "13", "--messages", "60"]);
    let src_digest = src.digest(USER);
    let tmp = scratch();

    let out = migrate(&src, &dst, tmp.path(), &["--folders-only", "--json"]);
    assert_code(&out, 0, "folders only");
    let events = json_lines(&out.stdout);
    let map = folder_map(summary(&events));
    assert_eq!(
        map.keys().collect::<BTreeSet<_>>(),
        src_digest.folders.keys().collect(),
        "every source folder planned"
    );
    let sum = last_event(&events, "summary");
    assert_eq!(sum["messages_copied"], 0);
    assert_eq!(sum["status"], "complete");

    let d = dst.digest(USER);
    assert_eq!(
        d.folders.keys().collect::<BTreeSet<_>>(),
        map.values().collect(),
        "the destination has exactly the mapped folders"
    );
    for (name, f) in &d.folders {
        assert!(f.messages.is_empty(), "{name} holds messages");
    }
    // Subscriptions follow the source's.
    for (name, f) in &src_digest.folders {
        assert_eq!(d.folders[&map[name]].subscribed, f.subscribed, "{name}");
    }
    assert_eq!(src.digest(USER), src_digest, "source unchanged");
}

#[test]
fn delete_source_moves_everything_and_leaves_the_source_clean() {
    let src = Dovecot::source();
    let dst = Dovecot::destination();
    src.generate(USER, &["--seed", "14", "--messages", "60"]);
    let src_digest = src.digest(USER);
    let n = total(&src_digest) as u64;
    let tmp = scratch();

    let out = migrate(
        &src,
        &dst,
        tmp.path(),
        &["--delete-source", "--yes", "--json"],
    );
    assert_code(&out, 0, "--delete-source --yes");
    let events = json_lines(&out.stdout);
    let sum = last_event(&events, "summary");
    assert_eq!(sum["messages_copied"].as_u64(), Some(n));
    assert_eq!(sum["messages_deleted_on_source"].as_u64(), Some(n), "{sum}");
    assert!(
        of_type(&events, "warning")
            .all(|w| !w["message"].as_str().unwrap_or_default().contains("delete"))
    );

    let after = src.digest(USER);
    assert_eq!(
        after.folders.keys().collect::<Vec<_>>(),
        src_digest.folders.keys().collect::<Vec<_>>(),
        "the source folders stay"
    );
    for (name, f) in &after.folders {
        assert!(
            f.messages.is_empty(),
            "{name} still holds {}",
            f.messages.len()
        );
    }
    assert_holds(
        &dst.digest(USER),
        &messages_of(&src_digest),
        &folder_map(summary(&events)),
    );

    let out = verify(&src, &dst, tmp.path(), &["--json"]);
    assert_code(&out, 0, "verify after --delete-source");
    let events = json_lines(&out.stdout);
    let v = last_event(&events, "verify_summary");
    assert_eq!(v["source_clean"], true, "{v}");
    assert_eq!(v["missing"], 0);
}

#[test]
fn delete_source_deletes_only_the_selected_messages() {
    let src = Dovecot::source();
    let dst = Dovecot::destination();
    src.generate(
        USER,
        &["--seed", "15", "--messages", "60", "--profile", "flat"],
    );
    let src_digest = src.digest(USER);
    let mut dates: Vec<i64> = src_digest.folders["INBOX"]
        .messages
        .iter()
        .map(|m| m.internaldate)
        .collect();
    dates.sort_unstable();
    let since = dates[dates.len() / 2];
    let (new, old): (Vec<MsgDigest>, Vec<MsgDigest>) = src_digest.folders["INBOX"]
        .messages
        .iter()
        .cloned()
        .partition(|m| m.internaldate >= since);
    assert!(!new.is_empty() && !old.is_empty());
    let tmp = scratch();

    let out = migrate(
        &src,
        &dst,
        tmp.path(),
        &[
            "--delete-source",
            "--yes",
            "--since",
            &rfc3339(since),
            "--json",
        ],
    );
    assert_code(&out, 0, "--delete-source --since");
    let sum = last_event(&json_lines(&out.stdout), "summary").clone();
    assert_eq!(sum["messages_copied"].as_u64(), Some(new.len() as u64));
    assert_eq!(
        sum["messages_deleted_on_source"].as_u64(),
        Some(new.len() as u64)
    );
    assert_eq!(
        sorted(src.digest(USER).folders["INBOX"].messages.clone()),
        sorted(old),
        "the messages before --since stay on the source"
    );
    assert_eq!(
        sorted(dst.digest(USER).folders["INBOX"].messages.clone()),
        sorted(new),
        "the destination got the messages since --since"
    );
}

#[test]
fn delete_source_keeps_a_message_that_arrives_during_the_run() {
    let src = Dovecot::source();
    let dst = Dovecot::destination();
    src.generate(
        USER,
        &["--seed", "16", "--messages", "60", "--profile", "flat"],
    );
    let src_digest = src.digest(USER);
    let tmp = scratch();

    // Slow enough (about 2 s) to add a message to INBOX while INBOX is being copied.
    let mut child = cmd("migrate", &src, &dst, tmp.path())
        .args([
            "--delete-source",
            "--yes",
            "--json",
            "--max-messages-per-second",
            "30",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn btsx");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = Vec::new();
    let mut appended = false;
    let late_id = "<late-arrival-4711@btsx.test>";
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("read btsx stdout");
        let e: Value = serde_json::from_str(&line).expect("JSON line");
        if !appended && e["type"] == "progress" && e["folder"] == "INBOX" {
            assert!(
                e["done"].as_u64() < e["total"].as_u64(),
                "INBOX copied before the test could add a message: {e}"
            );
            let body = format!(
                "From: late@btsx.test\r\nTo: alice@btsx.test\r\nSubject: arrived during the run\r\nMessage-ID: {late_id}\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\n\r\nhello\r\n"
            );
            let t = src.imap(
                USER,
                &[&format!("APPEND INBOX {{{}}}\r\n{body}", body.len())],
            );
            assert!(t.contains("OK [APPENDUID"), "{t}");
            appended = true;
        }
        lines.push(e);
    }
    let status = child.wait().expect("wait for btsx");
    assert!(appended, "no INBOX progress seen");
    assert_eq!(status.code(), Some(0));
    let sum = last_event(&lines, "summary");
    assert_eq!(sum["messages_deleted_on_source"], 60, "{sum}");

    let left = &src.digest(USER).folders["INBOX"].messages;
    assert_eq!(left.len(), 1, "only the late message stays: {left:?}");
    assert_eq!(left[0].message_id.as_deref(), Some(late_id));
    assert_eq!(
        sorted(dst.digest(USER).folders["INBOX"].messages.clone()),
        sorted(src_digest.folders["INBOX"].messages.clone())
    );
}

#[test]
fn delete_source_without_yes_off_a_terminal_is_refused() {
    let src = Dovecot::source();
    let dst = Dovecot::destination();
    src.generate(
        USER,
        &["--seed", "17", "--messages", "10", "--profile", "flat"],
    );
    let src_digest = src.digest(USER);
    let dst_digest = dst.digest(USER);
    let tmp = scratch();

    let out = migrate(&src, &dst, tmp.path(), &["--delete-source", "--json"]);
    assert_code(&out, 2, "--delete-source without --yes");
    let events = json_lines(&out.stdout);
    let sum = last_event(&events, "summary");
    assert_eq!(sum["exit_code"], 2);
    assert!(
        sum["error"].as_str().unwrap_or_default().contains("--yes"),
        "the error says what to add: {sum}"
    );
    let out = migrate(&src, &dst, tmp.path(), &["--delete-source"]);
    assert_code(&out, 2, "--delete-source without --yes, human display");
    assert!(text(&out.stderr).contains("--yes"), "{}", text(&out.stderr));

    assert_eq!(src.digest(USER), src_digest, "source untouched");
    assert_eq!(dst.digest(USER), dst_digest, "destination untouched");
}

#[test]
fn include_exclude_and_folder_map_shape_the_destination_tree() {
    let src = Dovecot::source();
    let dst = Dovecot::start(ServerOpts {
        separator: '.',
        users: vec![
            ("alice".into(), "alice-pw".into()),
            ("bob".into(), "bob-pw".into()),
        ],
        ..ServerOpts::default()
    });
    src.generate(USER, &["--seed", "18", "--messages", "80"]);
    let src_digest = src.digest(USER);
    let names: BTreeSet<&str> = src_digest.folders.keys().map(String::as_str).collect();
    for want in [
        "INBOX",
        "Archive",
        "Archive/2019",
        "Archive/2020",
        "Archive/2020/Q1",
        "日本語",
        "Old Mail",
    ] {
        assert!(names.contains(want), "generator made no {want}: {names:?}");
    }

    // Globs and regexes on both sides, and a renamed subtree.
    let tmp = scratch();
    let out = migrate(
        &src,
        &dst,
        tmp.path(),
        &[
            "--include",
            "Archive*",
            "--include",
            "re:^(INBOX|日本語)$",
            "--exclude",
            "Archive/20?9",
            "--folder-map",
            "Archive.2020=Years.2020",
            "--json",
        ],
    );
    assert_code(&out, 0, "include/exclude/folder-map");
    let events = json_lines(&out.stdout);
    let expected: BTreeMap<&str, &str> = [
        ("INBOX", "INBOX"),
        ("Archive", "Archive"),
        ("Archive/2020", "Years.2020"),
        ("Archive/2020/Q1", "Years.2020.Q1"),
        ("日本語", "日本語"),
    ]
    .into();
    let map = folder_map(summary(&events));
    assert_eq!(
        map.iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect::<BTreeMap<_, _>>(),
        expected
    );
    let d = dst.digest(USER);
    assert_eq!(
        d.folders
            .keys()
            .map(String::as_str)
            .collect::<BTreeSet<_>>(),
        expected.values().copied().collect(),
        "exactly the selected folders, renamed"
    );
    let want: BTreeMap<String, Vec<MsgDigest>> = expected
        .keys()
        .map(|k| (k.to_string(), src_digest.folders[*k].messages.clone()))
        .collect();
    assert_holds(&d, &want, &map);

    // Exclusion only, by regex, into another account.
    let tmp = scratch();
    let out = btsx()
        .arg("migrate")
        .arg(src.url(USER))
        .arg(dst.url("bob"))
        .arg("--ca-file")
        .arg(&src.ca_file)
        .arg("--state")
        .arg(tmp.path().join("x.json"))
        .args([
            "--exclude",
            "re:^(Archive|Sent|Drafts|Deleted|Junk)",
            "--json",
        ])
        .env("BTSX_SRC_PASSWORD", src.password(USER))
        .env("BTSX_DST_PASSWORD", dst.password("bob"))
        .env("XDG_STATE_HOME", xdg(tmp.path()))
        .stdin(Stdio::null())
        .output()
        .expect("run btsx");
    assert_code(&out, 0, "exclude by regex");
    let map = folder_map(summary(&json_lines(&out.stdout)));
    let kept: BTreeSet<&str> = names
        .iter()
        .copied()
        .filter(|n| {
            !["Archive", "Sent", "Drafts", "Deleted", "Junk"]
                .iter()
                .any(|p| n.starts_with(p))
        })
        .collect();
    assert_eq!(
        map.keys().map(String::as_str).collect::<BTreeSet<_>>(),
        kept
    );
    let bob = dst.digest("bob");
    assert_eq!(
        bob.folders.keys().collect::<BTreeSet<_>>(),
        map.values().collect(),
        "bob has exactly the folders not excluded"
    );
    let want: BTreeMap<String, Vec<MsgDigest>> = kept
        .iter()
        .map(|k| (k.to_string(), src_digest.folders[*k].messages.clone()))
        .collect();
    assert_holds(&bob, &want, &map);
}

#[test]
fn since_and_before_select_by_internaldate() {
    let src = Dovecot::source();
    let dst = Dovecot::destination();
    src.generate(
        USER,
        &["--seed", "19", "--messages", "80", "--profile", "flat"],
    );
    let src_digest = src.digest(USER);
    let inbox = &src_digest.folders["INBOX"].messages;
    let mut dates: Vec<i64> = inbox.iter().map(|m| m.internaldate).collect();
    dates.sort_unstable();
    dates.dedup();
    assert!(dates.len() > 40, "dates too alike");
    // Exact message dates as bounds: --since is inclusive, --before exclusive.
    let (since, before) = (dates[20], dates[dates.len() - 20]);
    let want: Vec<MsgDigest> = inbox
        .iter()
        .filter(|m| m.internaldate >= since && m.internaldate < before)
        .cloned()
        .collect();
    assert!(want.iter().any(|m| m.internaldate == since));
    assert!(!want.iter().any(|m| m.internaldate == before));
    let tmp = scratch();

    let (s, b) = (rfc3339(since), rfc3339(before));
    let out = migrate(
        &src,
        &dst,
        tmp.path(),
        &["--since", &s, "--before", &b, "--json"],
    );
    assert_code(&out, 0, "--since/--before");
    let events = json_lines(&out.stdout);
    let found = of_type(&events, "folder_found")
        .find(|e| e["folder"] == "INBOX")
        .expect("INBOX found");
    assert_eq!(found["messages"].as_u64(), Some(want.len() as u64));
    assert_eq!(
        last_event(&events, "summary")["messages_copied"].as_u64(),
        Some(want.len() as u64)
    );
    assert_eq!(
        sorted(dst.digest(USER).folders["INBOX"].messages.clone()),
        sorted(want.clone()),
        "exactly the messages with since <= INTERNALDATE < before"
    );

    // Only --before, as a plain date (midnight UTC), into a verify of the same window.
    let out = verify(
        &src,
        &dst,
        tmp.path(),
        &["--since", &s, "--before", &b, "--json"],
    );
    assert_code(&out, 0, "verify with the same window");
    let v = json_lines(&out.stdout);
    assert_eq!(
        last_event(&v, "verify_summary")["source_messages"].as_u64(),
        Some(want.len() as u64)
    );
    let day = chrono::DateTime::from_timestamp(before, 0)
        .expect("date")
        .format("%Y-%m-%d")
        .to_string();
    let midnight = chrono::NaiveDate::parse_from_str(&day, "%Y-%m-%d")
        .expect("day")
        .and_hms_opt(0, 0, 0)
        .expect("midnight")
        .and_utc()
        .timestamp();
    let out = verify(&src, &dst, tmp.path(), &["--before", &day, "--json"]);
    let v = json_lines(&out.stdout);
    let n = inbox.iter().filter(|m| m.internaldate < midnight).count();
    assert_eq!(
        last_event(&v, "verify_summary")["source_messages"].as_u64(),
        Some(n as u64),
        "--before {day}"
    );
}

#[test]
fn max_messages_per_second_holds_the_rate() {
    let src = Dovecot::source();
    let dst = Dovecot::destination();
    let n = 240u64;
    src.generate(
        USER,
        &[
            "--seed",
            "20",
            "--messages",
            &n.to_string(),
            "--profile",
            "flat",
        ],
    );
    let tmp = scratch();
    let out = migrate(
        &src,
        &dst,
        tmp.path(),
        &["--max-messages-per-second", "40", "--json"],
    );
    assert_code(&out, 0, "throttled run");
    let events = json_lines(&out.stdout);
    assert_eq!(
        last_event(&events, "summary")["messages_copied"].as_u64(),
        Some(n)
    );

    let phase = |p: &str| {
        events
            .iter()
            .find(|e| e["type"] == "phase" && e["phase"] == p)
            .map(ts_ms)
            .unwrap_or_else(|| panic!("no phase {p}"))
    };
    let copy_ms = phase("finalizing") - phase("copying_messages");
    // n messages at 40/s: n-1 intervals of 25 ms at least.
    let min_ms = (n as i64 - 1) * 25;
    assert!(
        copy_ms >= min_ms * 95 / 100,
        "copy phase took {copy_ms} ms, expected ≥ {min_ms} ms"
    );

    let progress: Vec<(i64, u64)> = of_type(&events, "progress")
        .map(|e| (ts_ms(e), e["overall_done"].as_u64().expect("overall_done")))
        .collect();
    assert!(progress.len() >= 10, "{} progress events", progress.len());
    let (t0, d0) = progress[0];
    let (t1, d1) = *progress.last().expect("progress");
    assert_eq!(d1, n);
    let rate = (d1 - d0) as f64 * 1000.0 / (t1 - t0) as f64;
    eprintln!("copy phase {copy_ms} ms; {rate:.2} messages/s from progress events");
    assert!(
        (36.0..=44.0).contains(&rate),
        "measured {rate:.1} messages/s from progress events, expected 40 ± 10 %: {progress:?}"
    );
    // No burst: over any stretch of at least a second the pace stays below the limit (+10 %).
    for i in 0..progress.len() {
        for j in i + 1..progress.len() {
            let dt = progress[j].0 - progress[i].0;
            if dt >= 1000 {
                let r = (progress[j].1 - progress[i].1) as f64 * 1000.0 / dt as f64;
                assert!(
                    r <= 44.0 + 10.0 * 1000.0 / dt as f64,
                    "burst: {r:.1}/s over {dt} ms"
                );
            }
        }
    }
}

#[test]
fn events_file_gets_json_while_people_get_lines() {
    let src = Dovecot::source();
    let dst = Dovecot::destination();
    src.generate(USER, &["--seed", "21", "--messages", "40"]);
    let n = total(&src.digest(USER)) as u64;
    let tmp = scratch();
    let file = tmp.path().join("events.jsonl");

    let out = migrate(
        &src,
        &dst,
        tmp.path(),
        &["--events-file", file.to_str().expect("utf-8 path")],
    );
    assert_code(&out, 0, "human run with --events-file");
    assert!(out.stdout.is_empty(), "human mode writes nothing on stdout");
    let err = text(&out.stderr);
    for want in [
        "✓ Connected to source server: localhost",
        "→ Scanning folders...",
        "Migration complete",
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
    assert!(!err.contains("\"type\""), "no JSON on stderr:\n{err}");

    let events = json_lines(&std::fs::read(&file).expect("events file"));
    assert_eq!(events[0]["type"], "start");
    assert_eq!(events[0]["format_version"], 1);
    let sum = last_event(&events, "summary");
    assert_eq!(sum["status"], "complete");
    assert_eq!(sum["messages_copied"].as_u64(), Some(n));
    assert!(of_type(&events, "progress").next().is_some());
    assert!(err.contains(&format!("{n} copied")), "{err}");
}

/// A token introspection endpoint for Dovecot's oauth2 passdb: answers
/// `{"active": true, "username": USER}` for the tokens listed in `tokens` and
/// `{"active": false}` otherwise, and appends every request to `log` (one JSON line).
const INTROSPECT_PY: &str = r#"
import http.server, json, os, sys, threading, urllib.parse
tokens_file, log_file, user = sys.argv[1:4]
threading.Timer(600, lambda: os._exit(0)).start()  # never outlive a stuck test
class H(http.server.BaseHTTPRequestHandler):
    def answer(self, body):
        token = (urllib.parse.parse_qs(body).get("token") or [""])[0]
        with open(log_file, "a") as f:
            f.write(json.dumps({"method": self.command, "path": self.path,
                                "body": body, "token": token}) + "\n")
        with open(tokens_file) as f:
            ok = token != "" and token in f.read().split()
        out = json.dumps({"active": True, "username": user} if ok else {"active": False}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)
    def do_POST(self):
        self.answer(self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode())
    def do_GET(self):
        self.answer(urllib.parse.urlsplit(self.path).query)
    def log_message(self, *args):
        pass
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
print(srv.server_address[1], flush=True)
srv.serve_forever()
"#;

/// The introspection server, stopped on drop.
struct Introspection {
    child: Child,
    port: u16,
    log: PathBuf,
    tokens: PathBuf,
}

impl Introspection {
    fn start(dir: &Path, user: &str) -> Introspection {
        let script = dir.join("introspect.py");
        std::fs::write(&script, INTROSPECT_PY).expect("write introspect.py");
        let (log, tokens) = (dir.join("introspect.log"), dir.join("tokens"));
        std::fs::write(&log, "").expect("log");
        std::fs::write(&tokens, "").expect("tokens");
        let mut child = support::python3()
            .arg(&script)
            .arg(&tokens)
            .arg(&log)
            .arg(user)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the introspection server");
        let mut first = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut first)
            .expect("read the port");
        let port = first.trim().parse().expect("port number");
        Introspection {
            child,
            port,
            log,
            tokens,
        }
    }

    fn accept_only(&self, token: &str) {
        std::fs::write(&self.tokens, format!("{token}\n")).expect("tokens");
    }

    /// Tokens received so far, in order.
    fn received(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .expect("log")
            .lines()
            .map(|l| {
                let v: Value = serde_json::from_str(l).expect("log line");
                v["token"].as_str().unwrap_or_default().to_string()
            })
            .collect()
    }
}

impl Drop for Introspection {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A destination whose logins go through Dovecot's oauth2 passdb with `mechanisms`, checked
/// against a local introspection endpoint. The directory holds the config and must outlive
/// the server.
fn oauth_destination(mechanisms: &str) -> (tempfile::TempDir, Introspection, Dovecot) {
    // Readable by Dovecot's unprivileged auth process.
    let conf_dir = scratch();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(conf_dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
    }
    let idp = Introspection::start(conf_dir.path(), USER);
    let ext = conf_dir.path().join("dovecot-oauth2.conf.ext");
    std::fs::write(
        &ext,
        format!(
            "introspection_mode = post\nintrospection_url = http://127.0.0.1:{}/\nusername_attribute = username\nactive_attribute = active\nactive_value = true\nforce_introspection = yes\n",
            idp.port
        ),
    )
    .expect("write oauth2 conf");
    let dst = Dovecot::start(ServerOpts {
        separator: '.',
        extra_conf: Some(format!(
            "auth_mechanisms = plain login {mechanisms}\npassdb {{\n  driver = oauth2\n  mechanisms = {mechanisms}\n  args = {}\n}}\n",
            ext.display()
        )),
        ..ServerOpts::default()
    });
    (conf_dir, idp, dst)
}

#[test]
fn oauth2_token_file_is_sent_and_read_again_on_the_next_run() {
    let (_conf_dir, idp, dst) = oauth_destination("xoauth2 oauthbearer");
    let src = Dovecot::source();
    src.generate(
        USER,
        &["--seed", "22", "--messages", "20", "--profile", "flat"],
    );
    let tmp = scratch();
    let token_file = tmp.path().join("token");
    let run = |token: &str| -> Output {
        std::fs::write(&token_file, format!("{token}\n")).expect("token file");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600))
                .expect("chmod");
        }
        let out = cmd("migrate", &src, &dst, tmp.path())
            .env_remove("BTSX_DST_PASSWORD")
            .arg("--dst-oauth2-token-file")
            .arg(&token_file)
            .arg("--json")
            .output()
            .expect("run btsx");
        for stream in [&out.stdout, &out.stderr] {
            assert!(!text(stream).contains(token), "the token leaked");
        }
        out
    };

    let first = "tok-first-8c1f0e";
    idp.accept_only(first);
    let out = run(first);
    assert_code(&out, 0, "migrate with an OAuth2 token");
    assert_eq!(
        last_event(&json_lines(&out.stdout), "summary")["messages_copied"],
        20
    );
    assert!(
        idp.received().iter().any(|t| t == first),
        "{:?}",
        idp.received()
    );
    assert!(
        idp.received().iter().all(|t| t == first),
        "only the token was sent: {:?}",
        idp.received()
    );
    assert!(
        dst.log().contains("user=<alice>, method=XOAUTH2"),
        "{}",
        dst.log()
    );
    assert_eq!(dst.digest(USER).folders["INBOX"].messages.len(), 20);

    // The refresher wrote a new token: the next run reads the file again.
    let second = "tok-second-93b2a4";
    idp.accept_only(second);
    let out = run(second);
    assert_code(&out, 0, "migrate with the refreshed token");
    assert_eq!(idp.received().last().map(String::as_str), Some(second));

    // A token the provider no longer accepts: authentication failure.
    let out = run("tok-revoked-000");
    assert_code(&out, 4, "migrate with a rejected token");
    assert_eq!(
        last_event(&json_lines(&out.stdout), "summary")["exit_code"],
        4
    );
}

#[test]
fn verbose_shows_protocol_detail_but_never_the_passwords() {
    let (src_pw, dst_pw) = ("Src-Secret-7Q2x", "Dst-Secret-4K9z");
    let src = Dovecot::start(ServerOpts {
        separator: '/',
        users: vec![(USER.into(), src_pw.into())],
        ..ServerOpts::default()
    });
    let dst = Dovecot::start(ServerOpts {
        separator: '.',
        users: vec![(USER.into(), dst_pw.into())],
        ..ServerOpts::default()
    });
    src.generate(USER, &["--seed", "23", "--messages", "30"]);
    // What a leak would look like besides the plain text: SASL PLAIN's base64.
    let b64 = |pw: &str| {
        use std::fmt::Write;
        let raw = format!("\0{USER}\0{pw}");
        // Minimal base64 encoder (no extra dependency).
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut s = String::new();
        for c in raw.as_bytes().chunks(3) {
            let n = (u32::from(c[0]) << 16)
                | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
                | u32::from(*c.get(2).unwrap_or(&0));
            for i in 0..4 {
                if i <= c.len() {
                    let _ = write!(s, "{}", A[(n >> (18 - 6 * i) & 63) as usize] as char);
                } else {
                    s.push('=');
                }
            }
        }
        s
    };
    let secrets = [
        src_pw.to_string(),
        dst_pw.to_string(),
        b64(src_pw),
        b64(dst_pw),
    ];

    let tmp = scratch();
    let out = migrate(&src, &dst, tmp.path(), &["-v"]);
    assert_code(&out, 0, "migrate -v");
    let err = text(&out.stderr);
    for want in ["capabilities", "namespace", "APPEND"] {
        assert!(err.contains(want), "-v shows no {want:?} detail:\n{err}");
    }
    for s in &secrets {
        assert!(
            !err.contains(s.as_str()),
            "a password leaked with -v:\n{err}"
        );
    }

    // The same in JSON, on a second job (nothing left to copy: detail lines still come).
    let tmp = scratch();
    let out = migrate(&src, &dst, tmp.path(), &["-v", "--json"]);
    assert_code(&out, 0, "migrate -v --json");
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    let events = json_lines(&out.stdout);
    assert!(
        of_type(&events, "detail").count() >= 2,
        "detail events with -v"
    );
    for s in &secrets {
        assert!(
            !all.contains(s.as_str()),
            "a password leaked with -v --json"
        );
    }

    // Without -v: no detail.
    let tmp = scratch();
    let out = migrate(&src, &dst, tmp.path(), &["--json"]);
    assert_code(&out, 0, "migrate without -v");
    assert!(of_type(&json_lines(&out.stdout), "detail").next().is_none());
}

#[test]
fn oauthbearer_is_used_when_the_server_offers_only_that() {
    // Only OAUTHBEARER (RFC 7628) is offered, as on some providers.
    let (_conf_dir, idp, dst) = oauth_destination("oauthbearer");
    let src = Dovecot::source();
    src.generate(
        USER,
        &["--seed", "24", "--messages", "10", "--profile", "flat"],
    );
    let tmp = scratch();
    let token = "tok-bearer-5d7e21";
    idp.accept_only(token);
    let out = cmd("migrate", &src, &dst, tmp.path())
        .env_remove("BTSX_DST_PASSWORD")
        .arg("--dst-oauth2-token-command")
        .arg(format!("printf '%s\\n' {token}"))
        .arg("--json")
        .output()
        .expect("run btsx");
    assert_code(&out, 0, "migrate with OAUTHBEARER");
    assert!(!text(&out.stdout).contains(token), "the token leaked");
    assert!(
        idp.received().iter().any(|t| t == token),
        "{:?}",
        idp.received()
    );
    assert!(dst.log().contains("method=OAUTHBEARER"), "{}", dst.log());
    assert_eq!(dst.digest(USER).folders["INBOX"].messages.len(), 10);
}

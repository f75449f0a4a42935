//! Migrations through a fault-injecting proxy (tests/support/proxy.rs) against
//! real Dovecot servers: dropped connections, stalls past `--timeout` and
//! garbage from the server must all end in a complete, lossless and
//! duplicate-free copy.

#[path = "support/proxy.rs"]
mod proxy;
mod support;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::Output;
use std::time::Duration;

use proxy::{Dir, Proxy, Rule};
use serde_json::Value;
use support::{Digest, Dovecot, Key, btsx, dest_name, json_lines, key, summary, total_messages};

const USER: &str = "alice";
const MB: u64 = 1024 * 1024;

/// How one side is reached: the URL to give btsx (through a proxy or not).
struct Side<'a> {
    server: &'a Dovecot,
    url: String,
}

impl<'a> Side<'a> {
    fn direct(server: &'a Dovecot) -> Side<'a> {
        Side {
            url: server.url(USER),
            server,
        }
    }

    /// imaps:// through `proxy` (which relays the server's IMAPS port).
    fn via(server: &'a Dovecot, proxy: &Proxy) -> Side<'a> {
        Side {
            url: format!("imaps://{USER}@localhost:{}", proxy.port),
            server,
        }
    }

    /// imap:// (plaintext) through `proxy` (which relays the plain IMAP port).
    fn via_plain(server: &'a Dovecot, proxy: &Proxy) -> Side<'a> {
        Side {
            url: format!("imap://{USER}@localhost:{}", proxy.port),
            server,
        }
    }
}

fn migrate(src: &Side, dst: &Side, state_dir: &Path, extra: &[&str]) -> Output {
    btsx()
        .arg("migrate")
        .arg(&src.url)
        .arg(&dst.url)
        .arg("--ca-file")
        .arg(&src.server.ca_file)
        .arg("--state")
        .arg(state_dir.join("state.json"))
        .arg("--json")
        .args(extra)
        .env("BTSX_SRC_PASSWORD", src.server.password(USER))
        .env("BTSX_DST_PASSWORD", dst.server.password(USER))
        .env("XDG_STATE_HOME", state_dir)
        .output()
        .expect("run btsx")
}

/// Everything a failing assertion should show.
fn context(out: &Output, proxies: &[&Proxy]) -> String {
    let mut s = format!(
        "exit: {}\nstderr:\n{}\n",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let interesting: Vec<&str> = stdout
        .lines()
        .filter(|l| {
            !l.contains("\"type\":\"progress\"") && !l.contains("\"type\":\"message_skipped\"")
        })
        .collect();
    s.push_str("events (no progress):\n");
    for l in interesting.iter().rev().take(80).rev() {
        s.push_str(l);
        s.push('\n');
    }
    for (i, p) in proxies.iter().enumerate() {
        s.push_str(&format!(
            "proxy {i}: {} connections, {} faults\n",
            p.connections(),
            p.faults()
        ));
        for l in p.log() {
            s.push_str(&format!("  {l}\n"));
        }
    }
    s
}

/// Source folder → destination folder, from the `folder_found` events.
fn folder_map(ev: &[Value]) -> HashMap<String, String> {
    ev.iter()
        .filter(|e| e["type"] == "folder_found")
        .map(|e| {
            (
                e["folder"].as_str().unwrap_or_default().to_string(),
                e["destination"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// Every source message is in its destination folder exactly as often as in
/// the source (multiset of sha256 + flags + internaldate), and the destination
/// holds nothing else. Folders that btsx mapped onto one destination folder
/// (special-use) are compared as a union.
fn assert_lossless(src: &Digest, dst: &Digest, map: &HashMap<String, String>) {
    let mut expected: BTreeMap<String, Vec<Key>> = BTreeMap::new();
    for (name, f) in &src.folders {
        let d = map
            .get(name)
            .unwrap_or_else(|| panic!("no folder_found event for source folder {name:?}"));
        if f.special_use.is_empty() {
            assert_eq!(d, &dest_name(name), "destination name of {name:?}");
        }
        expected
            .entry(d.clone())
            .or_default()
            .extend(f.messages.iter().map(key));
    }
    for (dname, mut want) in expected {
        want.sort();
        let got = dst
            .folders
            .get(&dname)
            .unwrap_or_else(|| panic!("destination folder {dname:?} missing"));
        let mut have: Vec<Key> = got.messages.iter().map(key).collect();
        have.sort();
        if have != want {
            let count = |v: &[Key]| {
                let mut m: BTreeMap<Key, i64> = BTreeMap::new();
                for k in v {
                    *m.entry(k.clone()).or_default() += 1;
                }
                m
            };
            let (w, h) = (count(&want), count(&have));
            let missing: Vec<_> = w
                .iter()
                .filter(|(k, n)| h.get(*k).copied().unwrap_or(0) < **n)
                .map(|(k, _)| &k.0[..12])
                .collect();
            let extra: Vec<_> = h
                .iter()
                .filter(|(k, n)| w.get(*k).copied().unwrap_or(0) < **n)
                .map(|(k, _)| &k.0[..12])
                .collect();
            panic!(
                "folder {dname:?}: {} messages expected, {} found; missing {missing:?}, extra/duplicated {extra:?}",
                want.len(),
                have.len()
            );
        }
    }
    let mapped: Vec<&String> = map.values().collect();
    for (name, f) in &dst.folders {
        if !mapped.contains(&name) {
            assert!(
                f.messages.is_empty(),
                "unexpected messages in destination folder {name:?}"
            );
        }
    }
    assert_eq!(total_messages(src), total_messages(dst));
}

fn connection_states(ev: &[Value], side: &str) -> Vec<String> {
    ev.iter()
        .filter(|e| e["type"] == "connection" && e["side"] == side)
        .map(|e| e["state"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// A `reconnecting` event on some side, followed later by `reconnected`.
fn assert_reconnect_events(ev: &[Value], ctx: &str) {
    let states: Vec<(usize, String)> = ev
        .iter()
        .enumerate()
        .filter(|(_, e)| e["type"] == "connection")
        .map(|(i, e)| (i, e["state"].as_str().unwrap_or_default().to_string()))
        .collect();
    let first = states
        .iter()
        .find(|(_, s)| s == "reconnecting")
        .unwrap_or_else(|| panic!("no connection event 'reconnecting'\n{ctx}"));
    assert!(
        states
            .iter()
            .any(|(i, s)| *i > first.0 && s == "reconnected"),
        "no 'reconnected' after 'reconnecting'\n{ctx}"
    );
    for e in ev
        .iter()
        .filter(|e| e["type"] == "connection" && e["state"] == "reconnecting")
    {
        assert!(
            e["reason"].as_str().is_some_and(|r| !r.is_empty()),
            "reconnecting without a reason: {e}"
        );
    }
}

fn assert_complete(out: &Output, ev: &[Value], ctx: &str) {
    assert_eq!(out.status.code(), Some(0), "{ctx}");
    let s = summary(ev);
    assert_eq!(s["status"], "complete", "{ctx}");
    assert_eq!(s["exit_code"], 0);
    assert_eq!(s["messages_failed"], 0, "{ctx}");
    assert!(s["error"].is_null(), "{ctx}");
}

fn state_is_complete(state_dir: &Path) {
    let st: Value = serde_json::from_slice(
        &std::fs::read(state_dir.join("state.json")).expect("state file written"),
    )
    .expect("state file is JSON");
    assert_eq!(st["status"], "complete", "{st}");
    for (name, f) in st["folders"].as_object().expect("folders") {
        assert_eq!(f["status"], "complete", "state of {name}: {f}");
    }
}

#[test]
fn cuts_every_two_megabytes_on_both_sides_lose_and_duplicate_nothing() {
    let (src, dst) = std::thread::scope(|s| {
        let a = s.spawn(|| {
            let src = Dovecot::source();
            src.generate(USER, &["--seed", "11", "--messages", "450"]);
            src
        });
        let b = s.spawn(Dovecot::destination);
        (a.join().unwrap(), b.join().unwrap())
    });
    let src_digest = src.digest(USER);
    let bytes: u64 = src_digest
        .folders
        .values()
        .flat_map(|f| &f.messages)
        .map(|m| m.size)
        .sum();
    assert!(bytes > 8 * MB, "only {bytes} bytes generated");

    // Source: cut the server→client stream (FETCH bodies); destination: cut the
    // client→server stream (pipelined APPENDs, so some land unconfirmed).
    let psrc = Proxy::start(
        src.imaps_port,
        Some(Rule::cut_every(Dir::ServerToClient, 2 * MB, 4)),
    );
    let pdst = Proxy::start(
        dst.imaps_port,
        Some(Rule::cut_every(Dir::ClientToServer, 2 * MB + 300 * 1024, 4)),
    );
    let state = tempfile::tempdir().expect("state dir");
    let out = migrate(
        &Side::via(&src, &psrc),
        &Side::via(&dst, &pdst),
        state.path(),
        &["--retries", "10", "--timeout", "20s"],
    );
    let ev = json_lines(&out);
    let ctx = context(&out, &[&psrc, &pdst]);
    assert!(psrc.faults() >= 3, "source proxy cut too little\n{ctx}");
    assert!(
        pdst.faults() >= 3,
        "destination proxy cut too little\n{ctx}"
    );
    assert_complete(&out, &ev, &ctx);
    let s = summary(&ev);
    assert!(s["reconnects_source"].as_u64().unwrap_or(0) > 0, "{ctx}");
    assert!(
        s["reconnects_destination"].as_u64().unwrap_or(0) > 0,
        "{ctx}"
    );
    assert_reconnect_events(&ev, &ctx);
    for side in ["source", "destination"] {
        let st = connection_states(&ev, side);
        assert!(
            st.iter().any(|s| s == "reconnecting") && st.iter().any(|s| s == "reconnected"),
            "{side}: {st:?}"
        );
        assert!(!st.iter().any(|s| s == "failed"), "{side}: {st:?}");
    }
    assert_eq!(
        s["messages_total"].as_u64(),
        Some(total_messages(&src_digest) as u64)
    );
    assert_lossless(&src_digest, &dst.digest(USER), &folder_map(&ev));
    assert_eq!(src.digest(USER), src_digest, "the source is unchanged");
    state_is_complete(state.path());

    // A second run (no faults, a new job) finds everything in place and copies nothing.
    drop((psrc, pdst));
    let state2 = tempfile::tempdir().expect("state dir");
    let out = migrate(&Side::direct(&src), &Side::direct(&dst), state2.path(), &[]);
    let ev = json_lines(&out);
    let ctx = context(&out, &[]);
    assert_complete(&out, &ev, &ctx);
    assert_eq!(summary(&ev)["messages_copied"], 0, "{ctx}");
    assert_lossless(&src_digest, &dst.digest(USER), &folder_map(&ev));
}

#[test]
fn stall_past_the_timeout_reconnects_and_loses_nothing() {
    let src = Dovecot::source();
    let dst = Dovecot::destination();
    src.generate(USER, &["--seed", "12", "--messages", "150"]);
    let src_digest = src.digest(USER);

    // Stall the source once, mid-copy, for longer than --timeout.
    let psrc = Proxy::start(
        src.imaps_port,
        Some(Rule::stall_once(
            Dir::ServerToClient,
            MB,
            Duration::from_secs(8),
        )),
    );
    let state = tempfile::tempdir().expect("state dir");
    let started = std::time::Instant::now();
    let out = migrate(
        &Side::via(&src, &psrc),
        &Side::direct(&dst),
        state.path(),
        &["--timeout", "2s", "--jobs", "2"],
    );
    let ev = json_lines(&out);
    let ctx = context(&out, &[&psrc]);
    assert_eq!(psrc.faults(), 1, "the stall happened\n{ctx}");
    assert_complete(&out, &ev, &ctx);
    let s = summary(&ev);
    assert!(s["reconnects_source"].as_u64().unwrap_or(0) >= 1, "{ctx}");
    assert_reconnect_events(&ev, &ctx);
    let reason = ev
        .iter()
        .find(|e| e["type"] == "connection" && e["state"] == "reconnecting")
        .and_then(|e| e["reason"].as_str())
        .unwrap_or_default()
        .to_string();
    assert!(reason.contains("timed out"), "reason: {reason}\n{ctx}");
    assert!(
        started.elapsed() < Duration::from_secs(120),
        "recovery took {:?}",
        started.elapsed()
    );
    assert_lossless(&src_digest, &dst.digest(USER), &folder_map(&ev));
    state_is_complete(state.path());
}

const GARBAGE: &[u8] = b"* GARBAGE \x01\x02 unparsable\r\n";
const BROKEN_FETCH: &[u8] = b"* 1 FETCH (UID )) \x01\r\n";

/// Copies the realistic profile over plaintext IMAP through `psrc`; returns
/// the output, the events, and the diagnostic context.
fn garbage_run(seed: &str, rule: Rule) -> (Output, Vec<Value>, String) {
    let src = Dovecot::source();
    let dst = Dovecot::destination();
    src.generate(USER, &["--seed", seed, "--messages", "150"]);
    let src_digest = src.digest(USER);
    // Plaintext, so the line can be put between two responses of the source.
    let psrc = Proxy::start(src.imap_port, Some(rule));
    let state = tempfile::tempdir().expect("state dir");
    let out = migrate(
        &Side::via_plain(&src, &psrc),
        &Side::direct(&dst),
        state.path(),
        &["--plaintext", "--timeout", "10s", "--jobs", "2"],
    );
    let ev = json_lines(&out);
    let ctx = context(&out, &[&psrc]);
    assert_eq!(psrc.faults(), 1, "the line was injected\n{ctx}");
    assert_complete(&out, &ev, &ctx);
    assert!(
        ev.iter().any(|e| e["type"] == "warning"
            && e["message"]
                .as_str()
                .is_some_and(|m| m.contains("--plaintext"))),
        "plaintext warning\n{ctx}"
    );
    assert_lossless(&src_digest, &dst.digest(USER), &folder_map(&ev));
    state_is_complete(state.path());
    (out, ev, ctx)
}

#[test]
fn unreadable_fetch_response_drops_the_session_and_loses_nothing() {
    // Mid-copy, into the answer to the next "UID FETCH n:* (UID RFC822.SIZE
    // FLAGS INTERNALDATE)" on the connection past 512 KB: a FETCH response the
    // parser cannot read, so the session is dropped and the folder retried.
    let (_, ev, ctx) = garbage_run(
        "13",
        Rule::inject_after_command(512 * 1024, b"RFC822.SIZE FLAGS", BROKEN_FETCH),
    );
    let s = summary(&ev);
    assert!(
        s["reconnects_source"].as_u64().unwrap_or(0) >= 1,
        "the out-of-step session is dropped\n{ctx}"
    );
    assert_eq!(s["reconnects_destination"], 0, "{ctx}");
    assert_reconnect_events(&ev, &ctx);
}

#[test]
fn unknown_untagged_response_is_ignored_and_loses_nothing() {
    // A response of a kind btsx does not know is framed like any other and
    // skipped: the session stays in step, nothing reconnects.
    let (_, ev, ctx) = garbage_run(
        "13",
        Rule::inject_after_command(512 * 1024, b"RFC822.SIZE FLAGS", GARBAGE),
    );
    let s = summary(&ev);
    assert_eq!(s["reconnects_source"], 0, "{ctx}");
    assert_eq!(s["reconnects_destination"], 0, "{ctx}");
}

#[test]
fn garbage_line_between_message_bodies_loses_nothing() {
    // Between two "* n FETCH (UID n BODY[] {..}" answers: ignoring the line or
    // dropping the session are both fine; losing or doubling mail is not.
    let (_, ev, ctx) = garbage_run("17", Rule::inject_once(512 * 1024, GARBAGE));
    let s = summary(&ev);
    if s["reconnects_source"].as_u64().unwrap_or(0) > 0 {
        assert_reconnect_events(&ev, &ctx);
    }
}

#[test]
fn clean_proxy_changes_nothing() {
    // The proxy itself is transparent: no rule, no reconnects.
    let src = Dovecot::source();
    let dst = Dovecot::destination();
    src.generate(USER, &["--seed", "14", "--messages", "60"]);
    let src_digest = src.digest(USER);
    let psrc = Proxy::start(src.imaps_port, None);
    let pdst = Proxy::start(dst.imaps_port, None);
    let state = tempfile::tempdir().expect("state dir");
    let out = migrate(
        &Side::via(&src, &psrc),
        &Side::via(&dst, &pdst),
        state.path(),
        &[],
    );
    let ev = json_lines(&out);
    let ctx = context(&out, &[&psrc, &pdst]);
    assert_complete(&out, &ev, &ctx);
    assert_eq!(summary(&ev)["reconnects_source"], 0, "{ctx}");
    assert_eq!(summary(&ev)["reconnects_destination"], 0, "{ctx}");
    assert!(psrc.connections() >= 1 && pdst.connections() >= 1);
    assert_lossless(&src_digest, &dst.digest(USER), &folder_map(&ev));
}

#[test]
fn cut_inside_the_tls_handshake_of_a_reconnect_is_retried() {
    let src = Dovecot::source();
    let dst = Dovecot::destination();
    src.generate(USER, &["--seed", "15", "--messages", "120"]);
    let src_digest = src.digest(USER);

    // One worker: connection 0 is cut mid-copy; connection 1 (the reconnect)
    // is cut 1000 bytes into the server's TLS handshake; connection 2 works.
    let psrc = Proxy::with_rules(
        src.imaps_port,
        vec![
            Rule::cut_every(Dir::ServerToClient, MB, 1),
            Rule::cut_connections_at(Dir::ServerToClient, 1, 1000, 1),
        ],
    );
    let state = tempfile::tempdir().expect("state dir");
    let out = migrate(
        &Side::via(&src, &psrc),
        &Side::direct(&dst),
        state.path(),
        &["--jobs", "1", "--timeout", "10s"],
    );
    let ev = json_lines(&out);
    let ctx = context(&out, &[&psrc]);
    assert_eq!(psrc.faults(), 2, "both cuts happened\n{ctx}");
    assert_complete(&out, &ev, &ctx);
    assert_reconnect_events(&ev, &ctx);
    assert_lossless(&src_digest, &dst.digest(USER), &folder_map(&ev));
}

#[test]

fn cut_during_the_folder_scan_is_retried() {
    let src = Dovecot::source();
    let dst = Dovecot::destination();
    src.generate(USER, &["--seed", "16", "--messages", "600"]);
    let src_digest = src.digest(USER);

    // The first connection is cut 24 KB into the server's answers: after the
    // login, while the scan fetches sizes and flags of 600 messages.
    let psrc = Proxy::with_rules(
        src.imaps_port,
        vec![Rule::cut_connections_at(
            Dir::ServerToClient,
            0,
            24 * 1024,
            1,
        )],
    );
    let state = tempfile::tempdir().expect("state dir");
    let out = migrate(
        &Side::via(&src, &psrc),
        &Side::direct(&dst),
        state.path(),
        &["--timeout", "10s"],
    );
    let ev = json_lines(&out);
    let ctx = context(&out, &[&psrc]);
    assert_eq!(psrc.faults(), 1, "the cut happened\n{ctx}");
    assert!(
        !ev.iter()
            .any(|e| e["type"] == "phase" && e["phase"] == "copying_messages")
            || ev
                .iter()
                .position(|e| e["type"] == "connection" && e["state"] == "reconnecting")
                < ev.iter()
                    .position(|e| e["type"] == "phase" && e["phase"] == "copying_messages"),
        "the cut fell into the scan\n{ctx}"
    );
    assert_complete(&out, &ev, &ctx);
    assert_reconnect_events(&ev, &ctx);
    assert_lossless(&src_digest, &dst.digest(USER), &folder_map(&ev));
}

/// Issue 12: `--retries` counts failures in a row without progress. A link that drops the
/// APPEND stream every ~300 KB, far more often than `--retries 2` would allow per folder, but
/// carries whole batches between drops, copies the folder in one run.
#[test]
fn a_link_that_drops_often_but_carries_messages_between_drops_completes() {
    let src = Dovecot::source();
    let dst = Dovecot::destination();
    // One folder (INBOX) of 120 messages of 2–40 KB, about 2 MB.
    src.generate(
        USER,
        &["--seed", "17", "--messages", "120", "--profile", "flat"],
    );
    let src_digest = src.digest(USER);
    let pdst = Proxy::start(
        dst.imaps_port,
        Some(Rule::cut_every(Dir::ClientToServer, 300 * 1024, 40)),
    );
    let state = tempfile::tempdir().expect("state dir");
    // 40 messages/s makes batches of 10 messages (~170 KB), so every window between two cuts
    // holds at least one whole batch.
    let out = migrate(
        &Side::direct(&src),
        &Side::via(&dst, &pdst),
        state.path(),
        &[
            "--jobs",
            "1",
            "--retries",
            "2",
            "--max-messages-per-second",
            "40",
            "--timeout",
            "20s",
        ],
    );
    let ev = json_lines(&out);
    let ctx = context(&out, &[&pdst]);
    assert!(
        pdst.faults() > 3,
        "the link was cut more often than --retries 2 allows in a row\n{ctx}"
    );
    assert_complete(&out, &ev, &ctx);
    assert_eq!(
        summary(&ev)["messages_total"].as_u64(),
        Some(total_messages(&src_digest) as u64),
        "{ctx}"
    );
    assert_reconnect_events(&ev, &ctx);
    assert_lossless(&src_digest, &dst.digest(USER), &folder_map(&ev));
    state_is_complete(state.path());
}

/// Only the messages of `d` smaller than `below` bytes (or at least that large: `!small`).
fn by_size(d: &Digest, below: u64, small: bool) -> Digest {
    let mut d = d.clone();
    for f in d.folders.values_mut() {
        f.messages.retain(|m| (m.size < below) == small);
    }
    d
}

/// Issue 12: a link cut every 1–3 MB on both sides (a new amount per connection). One run
/// copies every message under 1 MB; a message larger than any cut fails alone with its
/// reason (exit 1) instead of stalling its folder; nothing is doubled; progress never says
/// more than 100 %; a reconnect reads the destination only from the last UIDNEXT it saw, never
/// the whole folder again. The next run, over a sound link, copies what failed.
#[test]
fn cuts_every_one_to_three_megabytes_copy_what_fits_and_fail_what_cannot_pass() {
    let (src, dst) = std::thread::scope(|s| {
        let a = s.spawn(|| {
            let src = Dovecot::source();
            src.generate(
                USER,
                &["--seed", "21", "--messages", "600", "--big-message-mb", "4"],
            );
            src
        });
        let b = s.spawn(Dovecot::destination);
        (a.join().unwrap(), b.join().unwrap())
    });
    let src_digest = src.digest(USER);
    let sizes: Vec<u64> = src_digest
        .folders
        .values()
        .flat_map(|f| &f.messages)
        .map(|m| m.size)
        .collect();
    assert!(
        sizes.iter().sum::<u64>() > 6 * MB,
        "too little mail: {sizes:?}"
    );
    assert!(
        sizes.iter().any(|s| *s > 3 * MB),
        "no message above every cut"
    );

    // Source: FETCH answers; destination: APPENDs. Each connection is cut once it carried
    // 1–3 MB that way, a new amount per connection on each side. A cut on one side
    // reconnects both, so whichever side's amount is lower is cut; with a message larger
    // than a batch streamed (source and destination in step) disjoint ranges would leave
    // the side with the higher range almost never cut.
    let psrc = Proxy::cut_each_connection(src.imaps_port, &[Dir::ServerToClient], MB, 3 * MB, 7);
    let pdst = Proxy::cut_each_connection(dst.imaps_port, &[Dir::ClientToServer], MB, 3 * MB, 8);
    let state = tempfile::tempdir().expect("state dir");
    let out = migrate(
        &Side::via(&src, &psrc),
        &Side::via(&dst, &pdst),
        state.path(),
        &["--jobs", "2", "--timeout", "20s", "--verbose"],
    );
    let ev = json_lines(&out);
    let ctx = context(&out, &[&psrc, &pdst]);
    assert!(psrc.faults() >= 2, "the source link was hardly cut\n{ctx}");
    assert!(
        pdst.faults() >= 2,
        "the destination link was hardly cut\n{ctx}"
    );

    // Exit 1: messages failed, each with its reason; no folder failed or stalled.
    assert_eq!(out.status.code(), Some(1), "{ctx}");
    let s = summary(&ev);
    assert!(s["error"].is_null(), "{ctx}");
    let failed: Vec<&Value> = ev
        .iter()
        .filter(|e| e["type"] == "message_failed")
        .collect();
    assert!(!failed.is_empty(), "{ctx}");
    assert_eq!(
        s["messages_failed"].as_u64(),
        Some(failed.len() as u64),
        "{ctx}"
    );
    for f in &failed {
        let why = f["reason"].as_str().unwrap_or_default();
        assert!(
            why.contains("broke each of the 3 times") && why.contains("cannot pass this link"),
            "{f}\n{ctx}"
        );
    }
    for e in ev.iter().filter(|e| e["type"] == "folder_finished") {
        assert_ne!(e["status"], "failed", "{e}\n{ctx}");
    }
    assert!(
        !ev.iter().any(|e| e["type"] == "error"),
        "no folder failed\n{ctx}"
    );

    // Every message under 1 MB arrived once; of the larger ones only some, each at most once,
    // and never the one larger than every cut.
    let dst_digest = dst.digest(USER);
    let map = folder_map(&ev);
    assert_lossless(
        &by_size(&src_digest, MB, true),
        &by_size(&dst_digest, MB, true),
        &map,
    );
    let big_src: Vec<Key> = by_size(&src_digest, MB, false)
        .folders
        .values()
        .flat_map(|f| f.messages.iter().map(key))
        .collect();
    let big_dst: Vec<(u64, Key)> = by_size(&dst_digest, MB, false)
        .folders
        .values()
        .flat_map(|f| f.messages.iter().map(|m| (m.size, key(m))))
        .collect();
    for (size, k) in &big_dst {
        assert!(
            *size <= 3 * MB,
            "a {size}-byte message passed a 3 MB link\n{ctx}"
        );
        assert_eq!(
            big_dst.iter().filter(|(_, x)| x == k).count(),
            big_src.iter().filter(|x| *x == k).count(),
            "copied twice?\n{ctx}"
        );
    }
    assert_eq!(
        big_src.len() - big_dst.len(),
        failed.len(),
        "each large message missing is reported failed\n{ctx}"
    );

    // Progress counts each settled message once.
    let progress: Vec<&Value> = ev.iter().filter(|e| e["type"] == "progress").collect();
    assert!(!progress.is_empty());
    for p in &progress {
        let n = |k: &str| p[k].as_u64().unwrap_or(u64::MAX);
        assert!(n("done") <= n("total"), "{p}");
        assert!(n("overall_done") <= n("overall_total"), "{p}");
    }

    // Reconnects with APPENDs unconfirmed read the destination from the last UIDNEXT on; the
    // whole folder is never read (the destination was empty and its UIDVALIDITY did not
    // change).
    let details: Vec<&str> = ev
        .iter()
        .filter(|e| e["type"] == "detail")
        .filter_map(|e| e["message"].as_str())
        .collect();
    assert!(
        !details.iter().any(|d| d.starts_with("reading all")),
        "{details:?}"
    );
    assert!(
        details
            .iter()
            .any(|d| d.starts_with("reading UIDs ") && d.contains("unconfirmed")),
        "no reconnect had APPENDs unconfirmed\n{ctx}"
    );
    assert_eq!(src.digest(USER), src_digest, "the source is unchanged");

    // The next run, over a sound link, copies what failed, and nothing else.
    psrc.heal();
    pdst.heal();
    let faults = (psrc.faults(), pdst.faults());
    let out = migrate(
        &Side::via(&src, &psrc),
        &Side::via(&dst, &pdst),
        state.path(),
        &[],
    );
    let ev = json_lines(&out);
    let ctx = context(&out, &[&psrc, &pdst]);
    assert_eq!((psrc.faults(), pdst.faults()), faults, "healed");
    assert_complete(&out, &ev, &ctx);
    assert_eq!(
        summary(&ev)["messages_copied"].as_u64(),
        Some(failed.len() as u64),
        "{ctx}"
    );
    assert_lossless(&src_digest, &dst.digest(USER), &folder_map(&ev));
    state_is_complete(state.path());
}

/// Issue 12 item 3: a destination that already holds part of the mail (a new job, so every
/// folder is read whole once) is read again after a cut only from the last UIDNEXT seen, never
/// whole again, and nothing is doubled.
#[test]
fn after_a_cut_only_the_destination_uids_since_the_last_look_are_read_again() {
    let src = Dovecot::source();
    let dst = Dovecot::destination();
    src.generate(USER, &["--seed", "22", "--messages", "1000"]);
    let src_digest = src.digest(USER);
    // The oldest mail first, directly.
    let state = tempfile::tempdir().expect("state dir");
    let out = migrate(
        &Side::direct(&src),
        &Side::direct(&dst),
        state.path(),
        &["--before", "2014-01-01"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", context(&out, &[]));
    let first = summary(&json_lines(&out))["messages_copied"]
        .as_u64()
        .unwrap_or(0);
    assert!(first > 50, "only {first} copied before 2014");

    // Then everything, as a new job (no state: each destination folder may hold mail), through
    // a destination link cut every 5–6 MB of APPENDs (more than the largest message). One
    // worker, so one connection carries enough to be cut, mostly in folders that held mail.
    let pdst =
        Proxy::cut_each_connection(dst.imaps_port, &[Dir::ClientToServer], 5 * MB, 6 * MB, 9);
    let state2 = tempfile::tempdir().expect("state dir");
    let out = migrate(
        &Side::direct(&src),
        &Side::via(&dst, &pdst),
        state2.path(),
        &["--jobs", "1", "--timeout", "20s", "--verbose"],
    );
    let ev = json_lines(&out);
    let ctx = context(&out, &[&pdst]);
    assert!(pdst.faults() >= 2, "the link was hardly cut\n{ctx}");
    assert_complete(&out, &ev, &ctx);
    assert_eq!(
        summary(&ev)["messages_skipped"].as_u64(),
        Some(first),
        "{ctx}"
    );
    assert_lossless(&src_digest, &dst.digest(USER), &folder_map(&ev));

    let details: Vec<&str> = ev
        .iter()
        .filter(|e| e["type"] == "detail")
        .filter_map(|e| e["message"].as_str())
        .collect();
    let mut whole: HashMap<&str, usize> = HashMap::new();
    for d in details.iter().filter(|d| d.starts_with("reading all")) {
        let folder = d.split('\'').nth(1).unwrap_or_default();
        *whole.entry(folder).or_default() += 1;
    }
    assert!(
        whole.len() > 3,
        "every folder holding mail is read once: {whole:?}"
    );
    assert!(
        whole.values().all(|n| *n == 1),
        "a folder was read whole more than once: {whole:?}\n{ctx}"
    );
    // At least one folder read whole was cut into, and then read from its last UIDNEXT on.
    assert!(
        details.iter().any(|d| d.starts_with("reading UIDs ")
            && d.contains("unconfirmed")
            && whole.contains_key(d.split('\'').nth(1).unwrap_or_default())),
        "no cut left APPENDs unconfirmed in a folder that held mail\n{ctx}"
    );
}

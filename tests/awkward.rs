//! Awkward mailboxes (scripts/awkward.py: 72 cases of folder names, message forms, flags
//! and dates) migrated Dovecot→Dovecot, Dovecot→Cyrus and Cyrus→Dovecot, checked by the
//! independent reader scripts/digest.py.
//!
//! Cases that fail today because of known bugs are left out of the passing tests by their
//! generator tag and covered by `#[ignore]`d tests naming the work they wait for.

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Output;

use serde_json::Value;
use support::{
    Cyrus, Digest, Dovecot, Others, Server, assert_same_mail, awkward, digest_binary, digest_map,
    json_lines, summary,
};

const USER: &str = "alice";

/// Known bugs (issue 10): escaped names abort the scan; NUL bytes are altered without BINARY;
/// an INTERNALDATE before 1970 arrives as the time of the copy.
const BUGS: [&str; 3] = ["escape", "nul", "pre-epoch"];
/// What Cyrus refuses (names with `\ " % * [ { !`…, NUL bytes, bare LF, dates in 1969) or
/// alters (8-bit header bytes, dates at or before the epoch; issue 15).
const CYRUS_CANNOT: [&str; 7] = [
    "escape",
    "wildcard",
    "cyrus-refuses",
    "nul",
    "bare-eol",
    "8bit-header",
    "epoch-date",
];

fn migrate(src: &dyn Server, dst: &dyn Server, state: &Path) -> Output {
    support::migrate_cmd(src, dst, USER, state, &["--json"])
        .output()
        .expect("run btsx")
}

fn count(d: &Digest) -> u64 {
    support::total_messages(d) as u64
}

fn strings(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|s| s.as_str().expect("string").to_string())
        .collect()
}

/// Migrates, checks every message (bytes, flags, dates) with digest.py, then checks that a
/// re-run copies nothing. Returns (source digest, destination digest, src→dst folder map).
fn lossless(
    src: &dyn Server,
    dst: &dyn Server,
) -> (Digest, Digest, std::collections::HashMap<String, String>) {
    let what = format!("{} → {}", src.kind(), dst.kind());
    let src_digest = src.digest(USER);
    let n = count(&src_digest);
    let tmp = tempfile::tempdir().expect("tmp");
    let state = tmp.path().join("job.json");
    let out = migrate(src, dst, &state);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{what}: stderr: {}\nstdout: {}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    let events = json_lines(&out);
    let sum = summary(&events);
    assert_eq!(sum["messages_copied"].as_u64(), Some(n), "{what}");
    assert_eq!(sum["messages_failed"].as_u64(), Some(0), "{what}");
    let dst_digest = dst.digest(USER);
    let map = digest_map(sum, &dst_digest);
    for name in src_digest.folders.keys() {
        assert!(
            map.contains_key(name),
            "{what}: folder {name:?} not migrated"
        );
    }
    assert_same_mail(&what, &src_digest, &dst_digest, &map, Others::Empty);
    // Two source folders never share one destination folder.
    let targets: BTreeSet<&String> = map.values().collect();
    assert_eq!(targets.len(), map.len(), "{what}: {map:?}");

    // btsx verify agrees.
    let (code, events) = support::verify_json(src, dst, USER);
    let v = events.last().expect("verify_summary");
    assert_eq!(code, Some(0), "{what}: verify: {v}");
    assert_eq!(v["missing"], 0, "{what}: {v}");
    assert_eq!(v["source_messages"].as_u64(), Some(n), "{what}: {v}");

    let again = migrate(src, dst, &state);
    assert_eq!(again.status.code(), Some(0), "{what}: re-run");
    let events = json_lines(&again);
    assert_eq!(summary(&events)["messages_copied"], 0, "{what}: re-run");
    assert_eq!(
        dst.digest(USER),
        dst_digest,
        "{what}: re-run changed nothing"
    );
    (src_digest, dst_digest, map)
}

#[test]
fn generator_has_at_least_60_cases_and_dovecot_takes_them_all() {
    let src = Dovecot::source();
    let g = awkward(&src, USER, &[]);
    assert!(g["cases"].as_u64() >= Some(60), "{g}");
    assert_eq!(strings(&g["refused"]), BTreeSet::new(), "{g}");
    // A name component holding '/' cannot exist where '/' is the separator.
    assert_eq!(
        strings(&g["unsupported"]),
        BTreeSet::from(["name-slash-inside".to_string()])
    );
    let d = src.digest(USER);
    assert_eq!(count(&d), g["messages"].as_u64().expect("messages"));
    for name in [
        "back\\slash",
        "Say \"hi\"",
        "pct%star*",
        " lead space",
        "trail space ",
        "NIL",
        "Post 📬 box",
        "l1/l2/l3/l4/l5/l6/l7/l8",
    ] {
        assert!(
            d.folders.contains_key(name),
            "{name:?} in {:?}",
            d.folders.keys()
        );
    }
    assert!(!d.folders["Not subscribed"].subscribed);
}

#[test]
fn awkward_dovecot_to_dovecot() {
    let src = Dovecot::source();
    let dst = Dovecot::destination();
    let g = awkward(&src, USER, &BUGS);
    assert_eq!(strings(&g["refused"]), BTreeSet::new(), "{g}");
    lossless(&src, &dst);
}

#[test]
fn awkward_dovecot_to_dovecot_escaped_names() {
    let src = Dovecot::source();
    let dst = Dovecot::destination();
    awkward(&src, USER, &["nul", "pre-epoch"]);
    let (_, dst_digest, map) = lossless(&src, &dst);
    for name in ["back\\slash", "Say \"hi\"", "a\\\"b"] {
        assert!(dst_digest.folders.contains_key(&map[name]), "{name:?}");
    }
}

#[test]
fn awkward_dovecot_to_dovecot_nul_bytes() {
    let src = Dovecot::source();
    let dst = Dovecot::destination();
    awkward(&src, USER, &["escape", "pre-epoch"]);
    let (_, _, map) = lossless(&src, &dst);
    // BODY[] cannot show it (Dovecot serves NUL as 0x80 on both sides): read the stored bytes.
    assert_same_mail(
        "BINARY",
        &digest_binary(&src, USER),
        &digest_binary(&dst, USER),
        &map,
        Others::Empty,
    );
}

#[test]
#[ignore = "Dovecot 2.3 (maildir) itself reports a pre-1970 INTERNALDATE as 07-Feb-2106 (uint32 wrap) once a new session syncs the folder, and replaces dates from 2038 on at APPEND: btsx copies what the source reports; seen with strace, not a btsx bug"]
fn awkward_dovecot_to_dovecot_pre_1970_date() {
    let src = Dovecot::source();
    let dst = Dovecot::destination();
    awkward(&src, USER, &["escape", "nul"]);
    let (src_digest, _, _) = lossless(&src, &dst);
    assert!(
        src_digest.folders["Dates"]
            .messages
            .iter()
            .any(|m| m.internaldate < 0),
        "the source holds a date before 1970"
    );
}

#[test]
fn awkward_subscriptions_match() {
    let src = Dovecot::source();
    let dst = Dovecot::destination();
    awkward(&src, USER, &BUGS);
    let (src_digest, dst_digest, map) = lossless(&src, &dst);
    for (name, f) in &src_digest.folders {
        assert_eq!(
            dst_digest.folders[&map[name]].subscribed, f.subscribed,
            "subscription of {name:?}"
        );
    }
}

#[test]
fn awkward_dovecot_to_cyrus() {
    let src = Dovecot::source();
    let dst = Cyrus::start_default();
    let g = awkward(&src, USER, &CYRUS_CANNOT);
    assert_eq!(strings(&g["refused"]), BTreeSet::new(), "{g}");
    assert!(g["messages"].as_u64() >= Some(50), "{g}");
    lossless(&src, &dst);
}

/// Names Cyrus refuses to create: those folders fail alone, named, and the rest is copied.
#[test]
fn awkward_dovecot_to_cyrus_refused_names() {
    let src = Dovecot::source();
    let dst = Cyrus::start_default();
    awkward(
        &src,
        USER,
        &["escape", "nul", "bare-eol", "8bit-header", "epoch-date"],
    );
    let src_digest = src.digest(USER);
    let tmp = tempfile::tempdir().expect("tmp");
    let out = migrate(&src, &dst, &tmp.path().join("job.json"));
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let events = json_lines(&out);
    let refused = [
        "pct%star*",
        "br [a] (b) {c}",
        "lit {5}",
        "a,b;c:d=e+f!g@h'i",
    ];
    for name in refused {
        assert!(
            events
                .iter()
                .any(|e| e["type"] == "error" && e["folder"].as_str() == Some(name)),
            "an error event names {name:?}"
        );
    }
    let dst_digest = dst.digest(USER);
    let map = digest_map(summary(&events), &dst_digest);
    let mut rest = src_digest.clone();
    rest.folders
        .retain(|name, _| !refused.contains(&name.as_str()));
    assert_same_mail(
        "the other folders",
        &rest,
        &dst_digest,
        &map,
        Others::Ignored,
    );
    // btsx verify: the refused folders' mail is missing (exit 8), nothing else.
    let (code, events) = support::verify_json(&src, &dst, USER);
    let v = events.last().expect("verify_summary");
    assert_eq!(code, Some(8), "{v}\n{events:#?}");
    assert_eq!(v["missing"].as_u64(), Some(refused.len() as u64), "{v}");
}

#[test]
fn awkward_cyrus_to_dovecot() {
    let src = Cyrus::start_default();
    let dst = Dovecot::destination();
    // Dovecot 2.3 replaces INTERNALDATEs from 2038 on with the time of the APPEND (and Cyrus
    // turns a 1970 date before the epoch into one in 2106).
    let g = awkward(&src, USER, &["far-future", "pre-epoch"]);
    // Cyrus's own limits, as a record of what a Cyrus source can hold.
    let refused: BTreeSet<String> = [
        "name-backslash",
        "name-quote",
        "name-both-escapes",
        "name-percent-star",
        "name-brackets",
        "name-literal-look",
        "name-punct",
        "name-slash-inside",
        "form-nul",
        "form-bare-lf",
        "form-mixed-eol",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(strings(&g["refused"]), refused, "{g}");
    let (src_digest, _, _) = lossless(&src, &dst);
    // The source holds what Cyrus made of the 8-bit headers and the epoch date: copied as is.
    assert!(count(&src_digest) >= 55, "{}", count(&src_digest));
    drop(dst);
    // Again into a destination whose separator is '/'.
    let slash = Dovecot::source();
    lossless(&src, &slash);
}

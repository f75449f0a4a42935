//! docs/events.md and the JSON the renderer emits must agree, field for field.

use std::collections::{BTreeMap, BTreeSet};

use btsx::event::*;
use btsx::render::json::to_line;

/// Documented fields per event type, read from docs/events.md.
fn documented() -> BTreeMap<String, BTreeSet<String>> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/events.md"))
        .expect("docs/events.md");
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in doc.lines() {
        if let Some(h) = line.strip_prefix("### `") {
            current = h.strip_suffix('`').map(str::to_string);
            if let Some(c) = &current {
                out.entry(c.clone()).or_default();
            }
            continue;
        }
        if line.starts_with("## ") {
            current = None;
        }
        if let Some(c) = &current
            && let Some(rest) = line.strip_prefix("| `")
            && let Some(end) = rest.find('`')
        {
            out.entry(c.clone())
                .or_default()
                .insert(rest[..end].to_string());
        }
    }
    out
}

fn one_of_each() -> Vec<Event> {
    let ep = EndpointInfo {
        url: "imaps://u@h:993".into(),
        host: "h".into(),
        port: 993,
        user: "u".into(),
    };
    let report = FolderReport {
        folder: "INBOX".into(),
        destination: "INBOX".into(),
        status: FolderStatus::Complete,
        messages: 1,
        copied: 1,
        skipped: 0,
        failed: 0,
        bytes: 10,
        deleted_on_source: 0,
        altered: 0,
    };
    let events = vec![
        Event::Start {
            format_version: FORMAT_VERSION,
            tool: "btsx",
            version: "0",
            command: "migrate",
            source: Some(ep.clone()),
            destination: Some(ep),
            jobs: 4,
            dry_run: false,
            state_file: None,
        },
        Event::Phase {
            phase: Phase::Initializing,
        },
        Event::Connection {
            side: Side::Source,
            state: ConnState::Connecting,
            host: "h".into(),
            reason: None,
        },
        Event::FolderFound {
            folder: "a".into(),
            destination: "a".into(),
            special_use: None,
            create: true,
            messages: 1,
            bytes: 1,
        },
        Event::FolderCreated {
            folder: "a".into(),
            destination: "a".into(),
        },
        Event::FolderStarted {
            folder: "a".into(),
            destination: "a".into(),
            messages: 1,
            bytes: 1,
        },
        Event::Progress {
            folder: "a".into(),
            done: 1,
            total: 1,
            bytes: 1,
            overall_done: 1,
            overall_total: 1,
            overall_bytes: 1,
        },
        Event::MessageSkipped {
            folder: "a".into(),
            uid: 1,
            message_id: None,
            size: 1,
            reason: SkipReason::SizeLimit,
        },
        Event::MessageFailed {
            folder: "a".into(),
            uid: 1,
            message_id: None,
            reason: "r".into(),
        },
        Event::MessageAltered {
            folder: "a".into(),
            uid: 1,
            message_id: None,
            destination_uid: Some(2),
            differences: vec![btsx::digest::Difference::HeaderBytes],
            reason: "r".into(),
        },
        Event::FolderFinished {
            folder: "a".into(),
            destination: "a".into(),
            status: FolderStatus::Complete,
            messages: 1,
            copied: 1,
            skipped: 0,
            failed: 0,
            bytes: 1,
            deleted_on_source: 0,
            altered: 0,
            duration_ms: 1,
            reason: None,
        },
        Event::Warning {
            message: "w".into(),
            folder: None,
        },
        Event::Error {
            message: "e".into(),
            folder: None,
            side: None,
        },
        Event::Summary(Summary {
            status: RunStatus::Complete,
            exit_code: 0,
            folders: 1,
            folders_failed: 0,
            messages_total: 1,
            messages_copied: 1,
            messages_skipped: 0,
            messages_failed: 0,
            messages_deleted_on_source: 0,
            messages_altered: 0,
            bytes_copied: 10,
            duration_ms: 1,
            messages_per_minute: 1.0,
            bytes_per_second: 1.0,
            reconnects_source: 0,
            reconnects_destination: 0,
            flags_updated: 0,
            state_file: None,
            error: None,
            per_folder: vec![report],
            failures: vec![FailureReport {
                folder: "a".into(),
                uid: 1,
                message_id: None,
                reason: "r".into(),
            }],
        }),
        Event::Detail {
            side: None,
            message: "m".into(),
        },
        Event::VerifyFolder {
            folder: "a".into(),
            destination: "a".into(),
            source_messages: 1,
            destination_messages: 1,
            missing: 0,
            extra: 0,
            in_both: 1,
            altered: 0,
            missing_messages: vec![],
            flags_differ: 0,
            date_differ: 0,
            differing_messages: vec![],
        },
        Event::VerifySummary(VerifySummary::early_error("e".into(), 3)),
        Event::BatchSummary(BatchSummary {
            status: RunStatus::Partial,
            exit_code: 1,
            accounts: 1,
            complete: 0,
            failed: 1,
            messages_copied: 0,
            bytes_copied: 0,
            duration_ms: 1,
            per_account: vec![],
            bad_rows: vec![],
        }),
        Event::Views {
            views: vec!["[Gmail]/Starred".into()],
            all_mail: Some("[Gmail]/All Mail".into()),
            all_mail_destination: Some("Archive".into()),
            archived_messages: Some(1),
            archived_bytes: Some(1),
            destination_views: vec![],
            not_copied: vec![],
        },
        Event::FlagsSynced {
            folder: "a".into(),
            destination: "a".into(),
            updated: 1,
        },
        Event::ConnectionsReduced {
            side: Side::Destination,
            host: "h".into(),
            from: 4,
            to: 3,
            reason: "too many connections".into(),
        },
    ];
    // Adding a variant without listing it here fails to compile.
    for e in &events {
        match e {
            Event::Start { .. }
            | Event::Phase { .. }
            | Event::Connection { .. }
            | Event::FolderFound { .. }
            | Event::FolderCreated { .. }
            | Event::FolderStarted { .. }
            | Event::Progress { .. }
            | Event::MessageSkipped { .. }
            | Event::MessageFailed { .. }
            | Event::MessageAltered { .. }
            | Event::FolderFinished { .. }
            | Event::Warning { .. }
            | Event::Error { .. }
            | Event::Summary(_)
            | Event::Detail { .. }
            | Event::VerifyFolder { .. }
            | Event::VerifySummary(_)
            | Event::BatchSummary(_)
            | Event::Views { .. }
            | Event::FlagsSynced { .. }
            | Event::ConnectionsReduced { .. } => {}
        }
    }
    events
}

#[test]
fn every_event_matches_its_documentation() {
    let docs = documented();
    let mut seen = BTreeSet::new();
    for e in one_of_each() {
        let v: serde_json::Value = serde_json::from_str(&to_line(&e)).expect("valid JSON");
        let obj = v.as_object().expect("object");
        let ty = obj["type"].as_str().expect("type").to_string();
        assert_eq!(ty, e.kind());
        assert!(obj["ts"].is_string(), "{ty}: ts");
        let fields: BTreeSet<String> = obj
            .keys()
            .filter(|k| *k != "type" && *k != "ts" && *k != "job")
            .cloned()
            .collect();
        let want = docs
            .get(&ty)
            .unwrap_or_else(|| panic!("event type {ty} is not documented in docs/events.md"));
        assert_eq!(&fields, want, "fields of {ty}: emitted vs documented");
        seen.insert(ty);
    }
    let documented_types: BTreeSet<String> = docs.keys().filter(|k| *k != "job").cloned().collect();
    assert_eq!(
        seen, documented_types,
        "documented types that btsx never emits"
    );
}

#[test]
fn one_line_per_event() {
    for e in one_of_each() {
        assert!(!to_line(&e).contains('\n'));
    }
}

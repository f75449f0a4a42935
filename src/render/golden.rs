//! Golden tests of the human display: one event of each kind through [`HumanSink`], in
//! terminal mode (bars, color) and plain mode (off a terminal), compared with the files in
//! `tests/golden/`. ESC shows as `␛` there so a diff reads. After a deliberate change:
//! `UPDATE_GOLDEN=1 cargo test --lib golden` and review the diff.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::Sink;
use super::batch::BatchView;
use super::human::{HumanOptions, HumanSink};
use crate::event::*;

#[derive(Clone, Default)]
struct Buf(Arc<Mutex<Vec<u8>>>);

impl Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Buf {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).replace('\x1b', "␛")
    }
}

/// A clock that moves only when told to.
#[derive(Clone)]
struct FakeClock(Instant, Arc<AtomicU64>);

impl FakeClock {
    fn new() -> FakeClock {
        FakeClock(Instant::now(), Arc::new(AtomicU64::new(0)))
    }
    fn advance(&self, secs: u64) {
        self.1.fetch_add(secs, Ordering::SeqCst);
    }
    fn boxed(&self) -> super::human::Clock {
        let c = self.clone();
        Box::new(move || c.0 + Duration::from_secs(c.1.load(Ordering::SeqCst)))
    }
}

fn golden(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).expect("write golden file");
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; run with UPDATE_GOLDEN=1", path.display()));
    assert!(
        want == actual,
        "{name} differs from the golden file (UPDATE_GOLDEN=1 to accept):\n--- want\n{want}\n--- got\n{actual}"
    );
}

fn endpoint(user: &str, host: &str) -> EndpointInfo {
    EndpointInfo {
        url: format!("imaps://{user}@{host}:993"),
        host: host.into(),
        port: 993,
        user: user.into(),
    }
}

fn start(dry_run: bool) -> Event {
    Event::Start {
        format_version: FORMAT_VERSION,
        tool: "btsx",
        version: "0.0.0",
        command: "migrate",
        source: Some(endpoint("alice", "old.example.com")),
        destination: Some(endpoint("alice", "new.example.com")),
        jobs: 4,
        dry_run,
        state_file: Some("/var/lib/btsx/alice.json".into()),
    }
}

fn conn(side: Side, state: ConnState, reason: Option<&str>) -> Event {
    Event::Connection {
        side,
        state,
        host: match side {
            Side::Source => "old.example.com".into(),
            Side::Destination => "new.example.com".into(),
        },
        reason: reason.map(String::from),
    }
}

fn finished(folder: &str, dest: &str, status: FolderStatus, copied: u64, failed: u64) -> Event {
    Event::FolderFinished {
        folder: folder.into(),
        destination: dest.into(),
        status,
        messages: 120,
        copied,
        skipped: 0,
        failed,
        bytes: 5 * 1024 * 1024 + 300 * 1024,
        deleted_on_source: 0,
        altered: 0,
        duration_ms: 4200,
        reason: (status == FolderStatus::Failed).then(|| "NO [CANNOT] bad name".to_string()),
    }
}

/// A run that meets every kind of event.
fn every_event(clock: &FakeClock, sink: &dyn Sink) {
    let e = |ev: Event| sink.emit(&ev);
    e(start(false));
    e(Event::Phase {
        phase: Phase::Initializing,
    });
    e(conn(Side::Source, ConnState::Connecting, None));
    e(conn(Side::Source, ConnState::Connected, None));
    e(conn(Side::Source, ConnState::Authenticating, None));
    e(conn(Side::Source, ConnState::Authenticated, None));
    e(Event::Phase {
        phase: Phase::ScanningFolders,
    });
    e(Event::FolderFound {
        folder: "INBOX".into(),
        destination: "INBOX".into(),
        special_use: None,
        create: false,
        messages: 900,
        bytes: 40 * 1024 * 1024,
    });
    e(Event::FolderFound {
        folder: "Lists/rust-users".into(),
        destination: "Lists.rust-users".into(),
        special_use: None,
        create: true,
        messages: 100,
        bytes: 1024 * 1024,
    });
    e(Event::Views {
        views: vec!["[Gmail]/Starred".into(), "[Gmail]/Important".into()],
        all_mail: Some("[Gmail]/All Mail".into()),
        all_mail_destination: Some("Archive".into()),
        archived_messages: Some(12),
        archived_bytes: Some(345_678),
        destination_views: vec![],
        not_copied: vec![],
    });
    e(Event::FlagsSynced {
        folder: "INBOX".into(),
        destination: "INBOX".into(),
        updated: 3,
    });
    e(Event::Phase {
        phase: Phase::CreatingFolders,
    });
    e(Event::FolderCreated {
        folder: "Lists/rust-users".into(),
        destination: "Lists.rust-users".into(),
    });
    e(Event::Phase {
        phase: Phase::CopyingMessages,
    });
    e(Event::FolderStarted {
        folder: "INBOX".into(),
        destination: "INBOX".into(),
        messages: 900,
        bytes: 40 * 1024 * 1024,
    });
    clock.advance(20);
    e(Event::Progress {
        folder: "INBOX".into(),
        done: 200,
        total: 900,
        bytes: 8 * 1024 * 1024,
        overall_done: 250,
        overall_total: 1000,
        overall_bytes: 9 * 1024 * 1024,
    });
    clock.advance(2);
    e(Event::Progress {
        folder: "INBOX".into(),
        done: 210,
        total: 900,
        bytes: 8 * 1024 * 1024,
        overall_done: 260,
        overall_total: 1000,
        overall_bytes: 9 * 1024 * 1024,
    });
    e(conn(
        Side::Destination,
        ConnState::Reconnecting,
        Some("connection reset"),
    ));
    e(conn(Side::Destination, ConnState::Reconnected, None));
    e(conn(
        Side::Destination,
        ConnState::Failed,
        Some("timed out"),
    ));
    e(Event::ConnectionsReduced {
        side: Side::Destination,
        host: "new.example.com".into(),
        from: 4,
        to: 3,
        reason: "[LIMIT] Maximum number of connections from user+IP exceeded".into(),
    });
    e(Event::MessageSkipped {
        folder: "INBOX".into(),
        uid: 17,
        message_id: Some("<big@example.com>".into()),
        size: 30 * 1024 * 1024,
        reason: SkipReason::SizeLimit,
    });
    e(Event::MessageSkipped {
        folder: "INBOX".into(),
        uid: 18,
        message_id: None,
        size: 2048,
        reason: SkipReason::AlreadyPresent,
    });
    e(Event::MessageFailed {
        folder: "INBOX".into(),
        uid: 19,
        message_id: Some("<bad@example.com>".into()),
        reason: "NO [LIMIT] too big".into(),
    });
    e(finished("INBOX", "INBOX", FolderStatus::Partial, 118, 1));
    e(finished(
        "Lists/rust-users",
        "Lists.rust-users",
        FolderStatus::Complete,
        120,
        0,
    ));
    e(finished("Junk", "Spam", FolderStatus::Failed, 0, 0));
    e(finished(
        "Archive",
        "Archive",
        FolderStatus::Interrupted,
        40,
        0,
    ));
    e(Event::Warning {
        message: "folder name 'a.b' holds the destination's separator".into(),
        folder: Some("a.b".into()),
    });
    e(Event::Error {
        message: "Drafts: NO server bug".into(),
        folder: Some("Drafts".into()),
        side: Some(Side::Source),
    });
    e(Event::Detail {
        side: Some(Side::Source),
        message: "UIDVALIDITY 42".into(),
    });
    e(Event::Phase {
        phase: Phase::Finalizing,
    });
    e(Event::VerifyFolder {
        folder: "Sent Items".into(),
        destination: "Sent".into(),
        source_messages: 10,
        destination_messages: 10,
        missing: 0,
        extra: 0,
        in_both: 10,
        altered: 0,
        missing_messages: Vec::new(),
        flags_differ: 0,
        date_differ: 0,
        differing_messages: Vec::new(),
    });
    e(Event::VerifyFolder {
        folder: "INBOX".into(),
        destination: "INBOX".into(),
        source_messages: 900,
        destination_messages: 898,
        missing: 2,
        extra: 1,
        in_both: 898,
        altered: 0,
        missing_messages: vec![MissingMessage {
            uid: 19,
            message_id: Some("<bad@example.com>".into()),
            size: 1536,
        }],
        flags_differ: 1,
        date_differ: 0,
        differing_messages: vec![crate::event::DifferingMessage {
            uid: 23,
            message_id: Some("<flag@example.com>".into()),
            source_flags: vec!["\\Flagged".into(), "\\Seen".into()],
            destination_flags: vec!["\\Seen".into()],
            date_differs: false,
        }],
    });
    let mut summary = Summary::early_error("unused".into(), 130);
    summary.status = RunStatus::Interrupted;
    summary.error = None;
    summary.folders = 4;
    summary.folders_failed = 1;
    summary.messages_total = 1000;
    summary.messages_copied = 278;
    summary.messages_skipped = 1;
    summary.messages_failed = 1;
    summary.bytes_copied = 12 * 1024 * 1024;
    summary.duration_ms = 83_456;
    summary.messages_per_minute = 200.0;
    summary.bytes_per_second = 150_000.0;
    summary.reconnects_destination = 1;
    summary.state_file = Some("/var/lib/btsx/alice job.json".into());
    summary.per_folder = vec![FolderReport {
        folder: "Lists/rust-users".into(),
        destination: "Lists.rust-users".into(),
        status: FolderStatus::Complete,
        messages: 120,
        copied: 120,
        skipped: 0,
        failed: 0,
        bytes: 1024 * 1024,
        deleted_on_source: 0,
        altered: 0,
    }];
    summary.failures = vec![FailureReport {
        folder: "INBOX".into(),
        uid: 19,
        message_id: Some("<bad@example.com>".into()),
        reason: "NO [LIMIT] too big".into(),
    }];
    e(Event::Summary(summary));
    e(Event::VerifySummary(VerifySummary {
        status: VerifyStatus::Mismatch,
        exit_code: 8,
        folders: 2,
        source_messages: 910,
        destination_messages: 908,
        missing: 2,
        extra: 1,
        altered: 0,
        source_clean: false,
        duration_ms: 1000,
        error: None,
        folders_failed: 0,
        flags_differ: 1,
        date_differ: 0,
    }));
}

fn run(bars: bool, color: bool) -> String {
    let out = Buf::default();
    let clock = FakeClock::new();
    let opts = HumanOptions {
        bars,
        color,
        quiet: false,
        verbose: true,
        width: 100,
        progress_every: Duration::from_secs(10),
    };
    let sink = HumanSink::with_writer(opts, out.clone(), clock.boxed());
    every_event(&clock, &sink);
    out.text()
}

#[test]
fn every_event_on_a_terminal() {
    golden("human-terminal.txt", &run(true, true));
}

#[test]
fn every_event_off_a_terminal() {
    golden("human-plain.txt", &run(false, false));
}

#[test]
fn no_color_means_no_escape_sequence() {
    for bars in [true, false] {
        assert!(!run(bars, false).contains('␛'));
    }
}

#[test]
fn an_early_error_is_one_line() {
    let out = Buf::default();
    let clock = FakeClock::new();
    let opts = HumanOptions {
        bars: false,
        color: false,
        quiet: false,
        verbose: false,
        width: 80,
        progress_every: Duration::from_secs(10),
    };
    let sink = HumanSink::with_writer(opts, out.clone(), clock.boxed());
    let reason = "cannot connect to new.example.com:993: Connection refused (check the host and port, and that the server is running)";
    sink.emit(&start(false));
    sink.emit(&conn(Side::Source, ConnState::Connecting, None));
    sink.emit(&conn(Side::Destination, ConnState::Connecting, None));
    sink.emit(&conn(
        Side::Destination,
        ConnState::Reconnecting,
        Some("timed out"),
    ));
    sink.emit(&conn(Side::Destination, ConnState::Failed, Some(reason)));
    let message = format!("destination server: {reason}");
    sink.emit(&Event::Error {
        message: message.clone(),
        folder: None,
        side: None,
    });
    sink.emit(&Event::Phase {
        phase: Phase::Error,
    });
    sink.emit(&Event::Summary(Summary::early_error(message, 3)));
    golden("human-early-error.txt", &out.text());
    assert_eq!(out.text().lines().count(), 1, "{}", out.text());
}

#[test]
fn batch_view_lines_and_summary() {
    let out = Buf::default();
    let view = BatchView::with_writer(2, false, false, out.clone());
    let view = view.with_resume("btsx batch accounts.csv --state-dir /srv/btsx".into());
    let a = view.sink_for("alice@old");
    a.emit(&start(false));
    a.emit(&Event::ConnectionsReduced {
        side: Side::Source,
        host: "imap.gmail.com".into(),
        from: 2,
        to: 1,
        reason: "Too many simultaneous connections. (Failure)".into(),
    });
    let mut s = Summary::early_error("source server: authentication failed".into(), 4);
    s.state_file = Some("/srv/btsx/alice.json".into());
    a.emit(&Event::Summary(s));
    view.emit(&Event::BatchSummary(BatchSummary {
        status: RunStatus::Partial,
        exit_code: 1,
        accounts: 1,
        complete: 0,
        failed: 1,
        messages_copied: 0,
        bytes_copied: 0,
        duration_ms: 3000,
        per_account: vec![AccountReport {
            job: "alice@old".into(),
            line: 2,
            status: RunStatus::Error,
            exit_code: 4,
            messages_copied: 0,
            messages_failed: 0,
            bytes_copied: 0,
            duration_ms: 3000,
            state_file: Some("/srv/btsx/alice.json".into()),
            error: Some("source server: authentication failed".into()),
        }],
        bad_rows: Vec::new(),
    }));
    golden("batch-plain.txt", &out.text());
}

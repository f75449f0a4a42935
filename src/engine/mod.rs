//! The migration itself: connect, scan, plan, create folders, copy messages with a pool of
//! workers. It reports only through [`Event`]s; it never prints.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod adapt;
mod connections;
mod copy;
pub(crate) use copy::WINDOW;
mod disposition;
pub(crate) use disposition::{Disposition, Op, disposition, server_trouble};
mod flags;
mod guard;
mod known;
mod late;
mod ledger;
mod parts;
mod proof;
mod retry;
mod scan;
mod split;
mod stream;
mod views;
pub use views::AllMail;

use crate::endpoint::Endpoint;
use crate::event::{
    ConnState, EndpointInfo, Event, FailureReport, FolderReport, FolderStatus, Phase, RunStatus,
    Side, SkipReason, Summary,
};
use crate::exit;
use crate::filter::{DateFilter, FolderFilter};
use crate::imap::{
    AppendItem, AppendOutcome, Credentials, DeleteOutcome, FolderInfo, ImapError, Kind,
    MessageMeta, Pending, Session, Timeouts, TlsOptions,
};
use crate::index::{self, Index};
use crate::plan::{self, ExistingFolder, Mapping, Namespace, SourceFolder};
use crate::render::Sink;
use crate::state::{FolderState, StateStore};
use crate::throttle::Throttle;

/// One server to talk to.
#[derive(Debug, Clone)]
pub struct Server {
    pub endpoint: Endpoint,
    pub creds: Credentials,
    pub tls: TlsOptions,
}

/// Everything that shapes a run.
#[derive(Debug, Clone)]
pub struct Options {
    pub jobs: usize,
    /// Reconnect attempts per folder after a recoverable error.
    pub retries: u32,
    /// Upper bound on the bytes of message bodies fetched at once.
    pub batch_bytes: u64,
    /// Upper bound on the messages fetched at once.
    pub batch_messages: usize,
    pub max_size: Option<u64>,
    pub timeouts: Timeouts,
    pub folder_map: Vec<(String, String)>,
    pub dry_run: bool,
    /// Create the folder tree, copy no messages.
    pub folders_only: bool,
    pub folders: FolderFilter,
    pub dates: DateFilter,
    pub throttle: Option<Arc<Throttle>>,
    /// Delete from the source what the destination confirmed.
    pub delete_source: bool,
    /// Emit `detail` events.
    pub verbose: bool,
    /// The source's `\All` folder and views (`--all-mail`).
    pub all_mail: AllMail,
    /// Bring the flags of messages copied earlier in line with the source.
    pub flag_sync: bool,
    /// `verify --deep`: compare every message's content hash, date and flags.
    pub deep: bool,
    /// Messages larger than this are streamed alone, source to destination (see `stream`);
    /// `None`: those larger than `batch_bytes`.
    pub stream_above: Option<u64>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            jobs: 4,
            retries: 5,
            batch_bytes: 2 * 1024 * 1024,
            batch_messages: 200,
            max_size: None,
            timeouts: Timeouts::default(),
            folder_map: Vec::new(),
            dry_run: false,
            folders_only: false,
            folders: FolderFilter::default(),
            dates: DateFilter::default(),
            throttle: None,
            delete_source: false,
            verbose: false,
            all_mail: AllMail::default(),
            flag_sync: true,
            deep: false,
            stream_above: stream::stream_above_from_env(),
        }
    }
}

/// What a run ended with.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub summary: Summary,
}

/// An error tagged with the side it came from.
#[derive(Debug)]
pub(crate) struct SideErr {
    pub(crate) side: Side,
    pub(crate) err: ImapError,
}

pub(crate) type SResult<T> = Result<T, SideErr>;

impl SideErr {
    /// One line for people, and the server it is about: none for a usage error (such as a
    /// refused folder plan), which no server said.
    pub(crate) fn describe(&self) -> (String, Option<Side>) {
        if self.err.kind == Kind::Usage {
            (self.err.message.clone(), None)
        } else {
            (
                format!("{} server: {}", self.side.label(), self.err.message),
                Some(self.side),
            )
        }
    }
}

/// (folder, message) pairs.
type Warnings = Vec<(String, String)>;

pub(crate) trait OnSide<T> {
    fn on(self, side: Side) -> SResult<T>;
}

impl<T> OnSide<T> for Result<T, ImapError> {
    fn on(self, side: Side) -> SResult<T> {
        self.map_err(|err| SideErr { side, err })
    }
}

/// A folder to copy.
#[derive(Debug, Clone)]
struct Task {
    map: Mapping,
    messages: u64,
    bytes: u64,
    /// Copy messages with UID ≥ this.
    start_uid: u32,
    /// The destination may hold some of these messages already; index it before copying.
    index_destination: bool,
    /// Messages that failed in an earlier run, tried again first.
    retry_uids: Vec<u32>,
    /// Their failure reports, kept in the state file until they are settled.
    retry_failures: Vec<FailureReport>,
    /// The source folder's HIGHESTMODSEQ at scan time: flags copied in this run are at
    /// least that recent, so the next flag sync starts there.
    scan_modseq: Option<u64>,
    /// The source folder's UIDVALIDITY at scan time.
    uid_validity: Option<u32>,
    /// The highest UID the scan counted: mail that arrives later waits for the next run,
    /// so counts stay true and --delete-source never touches what it did not report.
    scan_last_uid: u32,
    /// What earlier runs recorded for this folder (without the failures retried now), so the
    /// state file counts the whole job.
    prior: Option<FolderState>,
    /// Copy only these UIDs (sorted): the archived messages of an All Mail pass.
    only_uids: Option<Vec<u32>>,
    /// An earlier run stopped mid-folder with APPENDs maybe in flight: index the
    /// destination folder, not before this moment (see `late`).
    late_appends_until: Option<std::time::SystemTime>,
    /// Ranges an earlier run left of a split folder (see `parts`): (settled, pending).
    resume_parts: parts::Resumed,
    /// This task is one part of a split folder.
    split: Option<parts::Part>,
    /// The source UIDs the scan found to copy (sorted; without `--jobs` above 1 not kept):
    /// where a split folder's parts begin. Emptied when the folder is planned.
    found: Vec<u32>,
}

/// Progress within one folder; survives reconnects.
#[derive(Debug, Default)]
struct FolderProgress {
    /// Which source UIDs are settled: the only way to move the resume point.
    ledger: ledger::Ledger,
    /// (source UID, destination UID) of the messages stored in this run (APPENDUID).
    mapped: Vec<(u32, u32)>,
    /// The destination's UIDNEXT as our own APPENDs moved it (None once unknown): a
    /// MULTIAPPEND that began there got consecutive UIDs.
    next_seen: Option<u32>,
    /// Messages in a batch whose FETCH made the source close the session: fetched alone from
    /// then on; `true` once one did it alone too (then it fails, and the folder goes on).
    suspects: HashMap<u32, bool>,
    failures: Vec<FailureReport>,
    warned_flags: HashSet<String>,
    uid_validity: Option<u32>,
    dest_uid_validity: Option<u32>,
    dest_uid_next: Option<u32>,
    /// Source UIDs the destination is known to hold and proven the same (for --delete-source).
    confirmed: Vec<u32>,
    /// Copies to read back and compare: every one with --delete-source, a sample without.
    claims: Vec<proof::Claim>,
    /// The early sample of this folder was taken (see [`proof`]).
    sampled: bool,
    /// Kept on the source: the destination's copy differs.
    altered: u64,
    deleted_on_source: u64,
    /// The last attempt ended with every APPEND answered (or sent none).
    attempt_done: bool,
    /// When the last attempt broke off, possibly with APPENDs in flight.
    broke_off: Option<std::time::SystemTime>,
    /// Batch sizes the link carries, and messages that break it alone (see [`adapt`]).
    batch: adapt::BatchSize,
    /// What is known of the destination folder across attempts (see [`known`]).
    known: known::DestKnown,
}

impl FolderProgress {
    /// Grows with every message settled and with what a failure taught (a smaller batch, a
    /// strike against a message): a failure that moves it does not spend `--retries`.
    fn progress_mark(&self) -> u64 {
        u64::from(self.ledger.next_uid()) + self.batch.lessons()
    }
}

/// Wire names subscribed on each side (LSUB) when the job began; `None` when that side
/// would not say.
struct Subscriptions {
    source: Option<HashSet<String>>,
    destination: Option<HashSet<String>>,
}

pub(crate) struct Pair {
    pub(crate) src: Session,
    pub(crate) dst: Session,
    /// The worker's body buffer, reused batch after batch.
    buf: Vec<u8>,
}

struct Totals {
    total: AtomicU64,
    done: AtomicU64,
    bytes: AtomicU64,
    reconnects_src: AtomicU64,
    reconnects_dst: AtomicU64,
    flags_updated: AtomicU64,
}

pub struct Engine {
    src: Server,
    dst: Server,
    opts: Options,
    sink: Arc<dyn Sink>,
    cancel: Arc<AtomicBool>,
    state: Option<Arc<StateStore>>,
    totals: Totals,
    warnings: Vec<String>,
    /// Server notices already shown: every connection hears the same login ALERT.
    notices_seen: Arc<std::sync::Mutex<HashSet<String>>>,
    /// How many connection pairs the servers let us use now.
    conns: connections::Connections,
    /// A server's bandwidth cap stopped the run: it ends as interrupted, like Ctrl-C.
    capped: AtomicBool,
}

impl Engine {
    pub fn new(
        src: Server,
        dst: Server,
        opts: Options,
        sink: Arc<dyn Sink>,
        cancel: Arc<AtomicBool>,
        state: Option<Arc<StateStore>>,
    ) -> Engine {
        let jobs = opts.jobs;
        Engine {
            src,
            dst,
            opts,
            sink,
            cancel,
            state,
            totals: Totals {
                total: AtomicU64::new(0),
                done: AtomicU64::new(0),
                bytes: AtomicU64::new(0),
                reconnects_src: AtomicU64::new(0),
                reconnects_dst: AtomicU64::new(0),
                flags_updated: AtomicU64::new(0),
            },
            warnings: Vec::new(),
            notices_seen: Arc::default(),
            conns: connections::Connections::new(jobs),
            capped: AtomicBool::new(false),
        }
    }

    /// Warnings found while setting up (insecure options, readable password files).
    pub fn with_warnings(mut self, warnings: Vec<String>) -> Self {
        self.warnings = warnings;
        self
    }

    pub(crate) fn emit(&self, e: Event) {
        self.sink.emit(&e);
    }

    fn server(&self, side: Side) -> &Server {
        match side {
            Side::Source => &self.src,
            Side::Destination => &self.dst,
        }
    }

    /// Ctrl-C, SIGTERM, or a server's bandwidth cap: stop taking work.
    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::SeqCst) || self.capped.load(Ordering::SeqCst)
    }

    fn connect(&self, side: Side, report: bool) -> SResult<Session> {
        let server = self.server(side);
        let host = server.endpoint.host.clone();
        let mut on_state = |state: ConnState| {
            if report {
                self.sink.emit(&Event::Connection {
                    side,
                    state,
                    host: host.clone(),
                    reason: None,
                });
            }
        };
        let mut result = Session::open(
            &server.endpoint,
            &server.creds,
            &server.tls,
            self.opts.timeouts,
            &mut on_state,
        );
        if let Ok(s) = &mut result {
            let (sink, seen) = (self.sink.clone(), self.notices_seen.clone());
            let who = format!("the {} server {}", side.label(), server.endpoint.host);
            s.on_notice(Box::new(move |n| {
                let message = notice_text(&who, &n);
                let new = seen
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(message.clone());
                if new {
                    sink.emit(&Event::Warning {
                        message,
                        folder: None,
                    });
                }
            }));
        }
        if let Err(e) = &result {
            self.emit(Event::Connection {
                side,
                state: ConnState::Failed,
                host: server.endpoint.host.clone(),
                reason: Some(e.message.clone()),
            });
        }
        result.on(side)
    }

    pub(crate) fn open_pair(&self, report: bool) -> SResult<Pair> {
        // Both logins at once: a handshake is mostly waiting.
        let (src, dst) = std::thread::scope(|s| {
            let dst = s.spawn(|| self.connect(Side::Destination, report));
            let src = self.connect(Side::Source, report);
            let dst = dst.join().unwrap_or_else(|_| {
                Err(SideErr {
                    side: Side::Destination,
                    err: ImapError::new(Kind::Protocol, "connection thread failed"),
                })
            });
            (src, dst)
        });
        let (src, dst) = (src?, dst?);
        if report && self.opts.verbose {
            for (side, s) in [(Side::Source, &src), (Side::Destination, &dst)] {
                self.emit(Event::Detail {
                    side: Some(side),
                    message: format!("{} capabilities: {:?}", s.addr(), s.caps),
                });
            }
        }
        Ok(Pair {
            src,
            dst,
            buf: Vec::new(),
        })
    }

    pub(crate) fn options(&self) -> &Options {
        &self.opts
    }

    pub(crate) fn emit_start(&self, command: &'static str) {
        self.emit(Event::Start {
            format_version: crate::event::FORMAT_VERSION,
            tool: "btsx",
            version: env!("CARGO_PKG_VERSION"),
            command,
            source: Some(endpoint_info(&self.src.endpoint)),
            destination: Some(endpoint_info(&self.dst.endpoint)),
            jobs: self.opts.jobs,
            dry_run: self.opts.dry_run,
            state_file: self.state.as_ref().map(|s| s.path().display().to_string()),
        });
    }

    pub(crate) fn emit_warnings(&self) {
        for w in &self.warnings {
            self.emit(Event::Warning {
                message: w.clone(),
                folder: None,
            });
        }
    }

    pub fn run(&self) -> Outcome {
        let started = Instant::now();
        self.emit_start("migrate");
        self.emit_warnings();
        self.emit(Event::Phase {
            phase: Phase::Initializing,
        });
        let mut reports: Vec<FolderReport> = Vec::new();
        let mut failures: Vec<FailureReport> = Vec::new();
        let result = self.run_inner(&mut reports, &mut failures);
        let (status, code, error) = match result {
            Ok(()) if self.cancelled() => (RunStatus::Interrupted, exit::INTERRUPTED, None),
            // The bandwidth cap before the copy began: resumable all the same.
            Err(e) if self.stop_if_capped(&e) => (RunStatus::Interrupted, exit::INTERRUPTED, None),
            Ok(()) => {
                let bad = reports
                    .iter()
                    .any(|r| matches!(r.status, FolderStatus::Partial | FolderStatus::Failed));
                if bad {
                    (RunStatus::Partial, exit::PARTIAL, None)
                } else {
                    (RunStatus::Complete, exit::OK, None)
                }
            }
            Err(e) => {
                let code = exit_code_for(&e.err);
                let (message, side) = e.describe();
                self.emit(Event::Error {
                    message: message.clone(),
                    folder: None,
                    side,
                });
                self.emit(Event::Phase {
                    phase: Phase::Error,
                });
                (RunStatus::Error, code, Some(message))
            }
        };
        if status != RunStatus::Error {
            self.emit(Event::Phase {
                phase: if status == RunStatus::Interrupted {
                    Phase::Error
                } else {
                    Phase::Complete
                },
            });
        }
        if let Some(st) = &self.state
            && let Err(e) = st.finish(status)
        {
            self.emit(Event::Warning {
                message: format!("could not write the state file: {e}"),
                folder: None,
            });
        }
        let elapsed = started.elapsed();
        let secs = elapsed.as_secs_f64().max(1e-3);
        let sum = |f: fn(&FolderReport) -> u64| reports.iter().map(f).sum::<u64>();
        let summary = Summary {
            status,
            exit_code: code,
            folders: reports.len() as u64,
            folders_failed: reports
                .iter()
                .filter(|r| r.status == FolderStatus::Failed)
                .count() as u64,
            messages_total: sum(|r| r.messages),
            messages_copied: sum(|r| r.copied),
            messages_skipped: sum(|r| r.skipped),
            messages_failed: sum(|r| r.failed),
            messages_deleted_on_source: sum(|r| r.deleted_on_source),
            messages_altered: sum(|r| r.altered),
            bytes_copied: sum(|r| r.bytes),
            duration_ms: elapsed.as_millis() as u64,
            messages_per_minute: sum(|r| r.copied) as f64 * 60.0 / secs,
            bytes_per_second: sum(|r| r.bytes) as f64 / secs,
            reconnects_source: self.totals.reconnects_src.load(Ordering::Relaxed),
            reconnects_destination: self.totals.reconnects_dst.load(Ordering::Relaxed),
            flags_updated: self.totals.flags_updated.load(Ordering::Relaxed),
            state_file: self.state.as_ref().map(|s| s.path().display().to_string()),
            error,
            per_folder: reports,
            failures,
        };
        self.emit(Event::Summary(summary.clone()));
        Outcome { summary }
    }

    fn run_inner(
        &self,
        reports: &mut Vec<FolderReport>,
        failures: &mut Vec<FailureReport>,
    ) -> SResult<()> {
        // Connecting, scanning and creating only read or are idempotent ("already exists"
        // is fine), so a dropped connection there means: reconnect and do them again.
        let mut attempt = 0u32;
        let prepared = loop {
            let first = attempt == 0;
            let result = if first {
                self.open_pair(true)
            } else {
                self.reopen(attempt)
            }
            .and_then(|mut main| self.prepare(&mut main).map(|p| (main, p)));
            match result {
                Ok(p) => break p,
                Err(e) if self.stop_if_capped(&e) => return Err(e),
                Err(e)
                    if e.err.is_recoverable()
                        && attempt < self.opts.retries
                        && !self.cancelled() =>
                {
                    attempt += 1;
                    self.note_reconnect(e.side, &e.err);
                }
                Err(e) => return Err(e),
            }
        };
        let (main, (ready, mut early)) = prepared;
        reports.append(&mut early);
        if let Some(st) = &self.state
            && let Err(e) = st.reached()
        {
            self.emit(Event::Warning {
                message: format!("could not write the state file: {e}"),
                folder: None,
            });
        }
        if self.opts.dry_run {
            main.src.logout();
            main.dst.logout();
            return Ok(());
        }

        // Copy.
        self.emit(Event::Phase {
            phase: Phase::CopyingMessages,
        });
        // The All Mail pass goes after every real folder is done.
        let (last, ready): (Vec<Task>, Vec<Task>) =
            ready.into_iter().partition(|t| t.only_uids.is_some());
        let mut results = self.copy_all(ready, Some(main))?;
        if !last.is_empty() {
            results.extend(self.copy_all(last, None)?);
        }
        for (rep, mut f) in results {
            reports.push(rep);
            failures.append(&mut f);
        }
        self.emit(Event::Phase {
            phase: Phase::Finalizing,
        });
        Ok(())
    }

    /// Scan and create folders. Returns the folders ready to copy, and reports for those
    /// that are already settled (dry run: the plan; folders the destination refused).
    fn prepare(&self, main: &mut Pair) -> SResult<(Vec<Task>, Vec<FolderReport>)> {
        let mut reports = Vec::new();
        if self.opts.delete_source && !self.opts.dry_run {
            self.prove_distinct(main)?;
        }
        self.emit(Event::Phase {
            phase: Phase::ScanningFolders,
        });
        let (tasks, warnings, mut failed) = self.scan(main)?;
        reports.append(&mut failed);
        for (folder, message) in warnings {
            self.emit(Event::Warning {
                message,
                folder: (!folder.is_empty()).then_some(folder),
            });
        }
        self.totals
            .total
            .store(tasks.iter().map(|t| t.messages).sum(), Ordering::Relaxed);

        if self.opts.dry_run {
            // Report the plan; nothing is created or copied.
            for t in &tasks {
                reports.push(pending(&t.map, t.messages, t.bytes));
            }
            return Ok((Vec::new(), reports));
        }

        self.emit(Event::Phase {
            phase: Phase::CreatingFolders,
        });
        // Subscriptions of the planned folders follow the source's, both ways; folders
        // outside the plan are never touched.
        let subscribed = Subscriptions {
            source: self.subscribed(&mut main.src, Side::Source)?,
            destination: self.subscribed(&mut main.dst, Side::Destination)?,
        };
        let early = self.create_new_folders_at_once(&mut main.dst, &tasks, &subscribed);
        let mut ready = Vec::new();
        for t in tasks {
            if self.cancelled() {
                break;
            }
            let done = early.get(&t.map.dest_wire);
            if done == Some(&Early::Subscribed) {
                ready.push(t);
                continue;
            }
            let created = self.for_folder(main, Op::Create, |p| {
                self.create_folder(&mut p.dst, &t.map, &subscribed, done.is_some())
                    .on(Side::Destination)
            })?;
            match created {
                Ok(()) => ready.push(t),
                Err(e) => {
                    let e = SideErr {
                        side: e.side,
                        err: ImapError::new(
                            e.err.kind,
                            format!(
                                "{} folder '{}': {}",
                                if e.err.is_recoverable() {
                                    "could not create"
                                } else {
                                    "refused to create"
                                },
                                t.map.dest,
                                e.err
                            ),
                        ),
                    };
                    reports.push(self.folder_failed(&t.map, t.messages, &e));
                }
            }
        }
        Ok((ready, reports))
    }

    /// LSUB. A refusal is a warning (subscriptions are a courtesy); a dropped connection
    /// is retried like any other.
    fn subscribed(&self, s: &mut Session, side: Side) -> SResult<Option<HashSet<String>>> {
        match s.subscribed() {
            Ok(names) => Ok(Some(names.into_iter().collect())),
            Err(err) if err.is_recoverable() => Err(SideErr { side, err }),
            Err(e) => {
                self.emit(Event::Warning {
                    message: format!(
                        "the {} server would not list its subscriptions ({e}); the destination's may not match the source's",
                        side.label()
                    ),
                    folder: None,
                });
                Ok(None)
            }
        }
    }

    /// Under latency two round trips per folder add up (a second for a dozen folders over a
    /// 40 ms link): the folders a new job must create are created in one round trip, and the
    /// new ones to subscribe subscribed in another. Whatever did not go through here is done
    /// the careful way, folder by folder, with retries.
    fn create_new_folders_at_once(
        &self,
        dst: &mut Session,
        tasks: &[Task],
        subscribed: &Subscriptions,
    ) -> HashMap<String, Early> {
        let mut early = HashMap::new();
        let new: Vec<&Mapping> = tasks.iter().map(|t| &t.map).filter(|m| !m.exists).collect();
        if new.len() < 2 {
            return early;
        }
        let names: Vec<&[u8]> = new.iter().map(|m| m.dest_wire.as_bytes()).collect();
        let Ok(answers) = dst.create_all(&names) else {
            return early;
        };
        let mut to_subscribe = Vec::new();
        for (m, r) in new.iter().zip(answers) {
            if r.is_err() {
                continue;
            }
            self.emit(Event::FolderCreated {
                folder: m.source.clone(),
                destination: m.dest.clone(),
            });
            match subscription_change(m, subscribed) {
                Some(true) => to_subscribe.push(*m),
                _ => {
                    early.insert(m.dest_wire.clone(), Early::Subscribed);
                    continue;
                }
            }
            early.insert(m.dest_wire.clone(), Early::Created);
        }
        let names: Vec<&[u8]> = to_subscribe
            .iter()
            .map(|m| m.dest_wire.as_bytes())
            .collect();
        if let Ok(answers) = dst.subscribe_all(&names) {
            for (m, r) in to_subscribe.iter().zip(answers) {
                if r.is_ok() {
                    early.insert(m.dest_wire.clone(), Early::Subscribed);
                }
            }
        }
        early
    }

    fn create_folder(
        &self,
        dst: &mut Session,
        m: &Mapping,
        subscribed: &Subscriptions,
        created: bool,
    ) -> Result<(), ImapError> {
        if self.opts.dry_run {
            return Ok(());
        }
        if !m.exists && !created {
            dst.create(&m.dest_wire)?;
            self.emit(Event::FolderCreated {
                folder: m.source.clone(),
                destination: m.dest.clone(),
            });
        }
        if let Some(want) = subscription_change(m, subscribed) {
            let r = if want {
                dst.subscribe(&m.dest_wire)
            } else {
                dst.unsubscribe(&m.dest_wire)
            };
            // A subscription is a courtesy: the folder and its mail are there either way.
            if let Err(e) = r {
                if e.is_recoverable() {
                    return Err(e);
                }
                self.emit(Event::Warning {
                    message: format!(
                        "could not {} destination folder '{}': {e}",
                        if want { "subscribe" } else { "unsubscribe" },
                        m.dest
                    ),
                    folder: Some(m.source.clone()),
                });
            }
        }
        Ok(())
    }

    /// Spread folders over `jobs` workers, largest first. The scanning pair serves worker 0.
    fn copy_all(
        &self,
        tasks: Vec<Task>,
        main: Option<Pair>,
    ) -> SResult<Vec<(FolderReport, Vec<FailureReport>)>> {
        let mut main = main;
        let mut tasks = self.split_folders(tasks, &mut main);
        if self.opts.jobs > 1 {
            // Under latency each message costs a round trip: the most messages first.
            tasks.sort_by(|a, b| b.messages.cmp(&a.messages).then(b.bytes.cmp(&a.bytes)));
        } else {
            tasks.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(b.messages.cmp(&a.messages)));
        }
        let queue = Mutex::new(tasks.into_iter());
        let results = Mutex::new(Vec::new());
        let fatal: Mutex<Option<SideErr>> = Mutex::new(None);
        let stop = AtomicBool::new(false);
        // After a server asked for fewer connections, a later pass starts fewer workers.
        let jobs = self.opts.jobs.max(1).min(self.conns.allowed());
        let main = Mutex::new(main);
        std::thread::scope(|scope| {
            for _ in 0..jobs {
                scope.spawn(|| {
                    let mut pair: Option<Pair> = main.lock().ok().and_then(|mut m| m.take());
                    let mut seat = self.conns.seat();
                    loop {
                        if stop.load(Ordering::SeqCst) || self.cancelled() {
                            break;
                        }
                        // A server asked for fewer connections: one worker too many stops.
                        if self.conns.leave_if_over(&mut seat) {
                            break;
                        }
                        let next = queue.lock().ok().and_then(|mut q| q.next());
                        let Some(task) = next else { break };
                        match self.run_folder(&mut pair, &task) {
                            Ok(r) => {
                                if let Some(r) = r
                                    && let Ok(mut v) = results.lock()
                                {
                                    v.push(r);
                                }
                            }
                            Err(e) => {
                                stop.store(true, Ordering::SeqCst);
                                if let Ok(mut f) = fatal.lock()
                                    && f.is_none()
                                {
                                    *f = Some(e);
                                }
                                break;
                            }
                        }
                    }
                    if let Some(p) = pair {
                        p.src.logout();
                        p.dst.logout();
                    }
                });
            }
        });
        if let Some(e) = fatal.into_inner().ok().flatten() {
            return Err(e);
        }
        let mut results = results.into_inner().unwrap_or_default();
        // Folders never started (interrupted) still belong in the report.
        for t in queue
            .into_inner()
            .map(|q| q.collect::<Vec<_>>())
            .unwrap_or_default()
        {
            if t.split.is_some() {
                results.extend(self.part_skipped(&t));
                continue;
            }
            results.push((pending(&t.map, t.messages, 0), Vec::new()));
        }
        Ok(results)
    }

    /// Copy one folder, reconnecting on recoverable errors. `Err` only for fatal errors.
    fn run_folder(
        &self,
        pair: &mut Option<Pair>,
        task: &Task,
    ) -> SResult<Option<(FolderReport, Vec<FailureReport>)>> {
        let started = Instant::now();
        if task.messages == 0 && task.split.is_none() {
            // Nothing new: no connection needed (keeps a no-change run cheap). A folder the
            // state does not know yet is recorded, so `btsx status` lists it.
            if let Some(prior) = &task.prior
                && (prior.status != FolderStatus::Complete || prior.last_uid < task.scan_last_uid)
                && let Some(st) = &self.state
                && !self.opts.dry_run
            {
                // An earlier run was stopped after its last message: the folder is done.
                // (An All Mail pass also settles the UIDs it found in other folders.)
                let _ = st.update(FolderState {
                    status: FolderStatus::Complete,
                    last_uid: prior.last_uid.max(task.scan_last_uid),
                    in_flight_at: None,
                    parts: Vec::new(),
                    ..prior.clone()
                });
            }
            if task.prior.is_none()
                && let Some(st) = &self.state
                && let Some(v) = task.uid_validity
                && !self.opts.dry_run
            {
                let _ = st.update(FolderState {
                    source: task.map.source.clone(),
                    destination: task.map.dest.clone(),
                    uid_validity: v,
                    last_uid: task.start_uid.saturating_sub(1).max(task.scan_last_uid),
                    dest_uid_validity: None,
                    dest_uid_next: None,
                    messages: 0,
                    copied: 0,
                    skipped: 0,
                    failed: 0,
                    bytes: 0,
                    status: FolderStatus::Complete,
                    failures: Vec::new(),
                    held: Some(0),
                    uid_map: Default::default(),
                    modseq: None,
                    in_flight_at: None,
                    parts: Vec::new(),
                });
            }
            let rep = FolderReport {
                folder: task.map.source.clone(),
                destination: task.map.dest.clone(),
                status: FolderStatus::Complete,
                messages: 0,
                copied: 0,
                skipped: 0,
                failed: 0,
                bytes: 0,
                deleted_on_source: 0,
                altered: 0,
            };
            self.emit(folder_finished(&rep, 0, None));
            return Ok(Some((rep, Vec::new())));
        }
        // A split folder is announced once, by its first part, with all its messages.
        let announce = match &task.split {
            Some(p) => p
                .folder
                .begin()
                .then_some((p.folder.messages, p.folder.bytes)),
            None => Some((task.messages, task.bytes)),
        };
        if let Some((messages, bytes)) = announce {
            self.emit(Event::FolderStarted {
                folder: task.map.source.clone(),
                destination: task.map.dest.clone(),
                messages,
                bytes,
            });
        }
        let mut prog = FolderProgress {
            ledger: match task.split {
                Some(_) => {
                    ledger::Ledger::for_part(task.start_uid, task.scan_last_uid, &task.retry_uids)
                }
                None => ledger::Ledger::new(task.start_uid, &task.retry_uids),
            },
            batch: adapt::BatchSize::new(self.opts.batch_bytes, self.opts.batch_messages),
            ..Default::default()
        };
        // `--retries` counts failures in a row: progress in between gives it back. Progress is
        // `next_uid`, which moves only when a batch is settled (`done` also counts messages
        // skipped again after each reconnect), and what a failure taught.
        let mut budget = retry::RetryBudget::new(self.opts.retries, prog.progress_mark());
        let mut failed_reason = None;
        loop {
            if pair.is_none() {
                if budget.attempt() > 0 && self.cancelled() {
                    break;
                }
                match self.reopen(budget.attempt()) {
                    Ok(p) => *pair = Some(p),
                    // Too many connections: wait for a worker to give its pair up, not
                    // spending the budget. The bandwidth cap: stop (the run is interrupted).
                    Err(e) if self.login_refused_for_now(&e) => continue,
                    Err(e) if self.stop_if_capped(&e) => break,
                    Err(e) if e.err.is_recoverable() && budget.allows(prog.progress_mark()) => {
                        continue;
                    }
                    Err(e) => return Err(e),
                }
            }
            let Some(p) = pair.as_mut() else { continue };
            let r = self.copy_once(p, task, &mut prog);
            // A broken link: the next batch is smaller, or the message alone on it is blamed.
            // A server asking us to slow down is no fault of the message on its way.
            if let Err(e) = &r
                && e.err.is_recoverable()
                && !disposition::is_signal(e, Op::Copy)
            {
                prog.batch.broke(e.side);
            }
            match r {
                Ok(()) => break,
                // [TRYCREATE]: the destination folder went away; create it and go on.
                Err(e)
                    if e.err.disposition(e.side, crate::imap::Phase::Append)
                        == crate::imap::Disposition::CreateAndRetry
                        && budget.allows(prog.progress_mark()) =>
                {
                    if let Err(ce) = p.dst.create(&task.map.dest_wire) {
                        failed_reason = Some((
                            Side::Destination,
                            format!("destination server: {}", ce.message),
                        ));
                        break;
                    }
                }
                Err(e) if self.stop_if_capped(&e) => {
                    if let Some(old) = pair.take() {
                        old.src.abandon();
                        old.dst.abandon();
                    }
                    break;
                }
                Err(e) if e.err.is_recoverable() && budget.allows(prog.progress_mark()) => {
                    if let Some(old) = pair.take() {
                        old.src.abandon();
                        old.dst.abandon();
                    }
                    self.slow_down(&e, Op::Copy);
                    self.note_reconnect(e.side, &e.err);
                    if self.cancelled() {
                        break;
                    }
                }
                Err(e)
                    if matches!(
                        disposition(&e.err, e.side, Op::Copy),
                        Disposition::EndJob(_)
                    ) =>
                {
                    self.checkpoint(task, &prog, FolderStatus::Interrupted);
                    return Err(e);
                }
                Err(e) => {
                    // This folder cannot be copied (e.g. deleted on the source meanwhile);
                    // the others go on.
                    if let Some(old) = pair.take() {
                        if e.err.is_recoverable() {
                            old.src.abandon();
                            old.dst.abandon();
                        } else {
                            *pair = Some(old);
                        }
                    }
                    failed_reason = Some((
                        e.side,
                        format!("{} server: {}", e.side.label(), e.err.message),
                    ));
                    break;
                }
            }
        }
        if self.opts.delete_source
            && failed_reason.is_none()
            && !self.cancelled()
            && let Some(p) = pair.as_mut()
        {
            self.prove_claims(p, task, &mut prog);
            self.delete_confirmed(&mut p.src, task, &mut prog);
        }
        if let Some(part) = &task.split {
            let through = failed_reason.is_none() && !self.cancelled();
            return Ok(self.part_ended(part, task, &prog, pair, failed_reason, through));
        }
        let status = if failed_reason.is_some() {
            FolderStatus::Failed
        } else if self.cancelled() && prog.ledger.tally().done() < task.messages {
            FolderStatus::Interrupted
        } else if prog.ledger.tally().failed > 0 || prog.altered > 0 {
            FolderStatus::Partial
        } else {
            FolderStatus::Complete
        };
        if let Some((side, r)) = &failed_reason {
            self.emit(Event::Error {
                message: format!("folder '{}' failed: {r}", task.map.source),
                folder: Some(task.map.source.clone()),
                side: Some(*side),
            });
        }
        self.checkpoint(task, &prog, status);
        let rep = FolderReport {
            folder: task.map.source.clone(),
            destination: task.map.dest.clone(),
            status,
            messages: task.messages,
            copied: prog.ledger.tally().copied,
            skipped: prog.ledger.tally().skipped,
            failed: prog.ledger.tally().failed,
            bytes: prog.ledger.tally().bytes,
            deleted_on_source: prog.deleted_on_source,
            altered: prog.altered,
        };
        self.emit(folder_finished(
            &rep,
            started.elapsed().as_millis() as u64,
            failed_reason.map(|(_, r)| r),
        ));
        Ok(Some((rep, std::mem::take(&mut prog.failures))))
    }

    /// A folder that cannot be copied in this run: an error event naming it and the side
    /// that refused, and its report. The next run tries it again.
    fn folder_failed(&self, m: &Mapping, messages: u64, e: &SideErr) -> FolderReport {
        let reason = format!("{} server: {}", e.side.label(), e.err.message);
        self.emit(Event::Error {
            message: format!("folder '{}' failed: {reason}", m.source),
            folder: Some(m.source.clone()),
            side: Some(e.side),
        });
        let rep = FolderReport {
            folder: m.source.clone(),
            destination: m.dest.clone(),
            status: FolderStatus::Failed,
            messages,
            copied: 0,
            skipped: 0,
            failed: messages,
            bytes: 0,
            deleted_on_source: 0,
            altered: 0,
        };
        self.emit(folder_finished(&rep, 0, Some(reason)));
        rep
    }

    /// `--delete-source`: remove from the source exactly the messages the destination
    /// confirmed in this run (copied or already present); anything newer stays.
    fn delete_confirmed(&self, src: &mut Session, task: &Task, prog: &mut FolderProgress) {
        if prog.confirmed.is_empty() {
            return;
        }
        match src.delete_messages(&task.map.source_wire, &prog.confirmed) {
            Ok(DeleteOutcome::Expunged(n)) => prog.deleted_on_source += n,
            Ok(DeleteOutcome::MarkedOnly(n)) => self.emit(Event::Warning {
                message: format!(
                    "{n} copied messages in '{}' are marked \\Deleted on the source but not expunged: the server has no UIDPLUS and other messages there are marked \\Deleted too",
                    task.map.source
                ),
                folder: Some(task.map.source.clone()),
            }),
            Err(e) => self.emit(Event::Warning {
                message: format!(
                    "could not delete the copied messages from source folder '{}': {e}",
                    task.map.source
                ),
                folder: Some(task.map.source.clone()),
            }),
        }
        prog.confirmed.clear();
    }

    fn reopen(&self, attempt: u32) -> SResult<Pair> {
        self.pause(retry::backoff(attempt));
        let pair = self.open_pair(false)?;
        if attempt > 0 {
            for side in [Side::Source, Side::Destination] {
                self.emit(Event::Connection {
                    side,
                    state: ConnState::Reconnected,
                    host: self.server(side).endpoint.host.clone(),
                    reason: None,
                });
            }
        }
        Ok(pair)
    }

    /// Sleeps for `d`, or less when Ctrl-C comes meanwhile.
    fn pause(&self, d: Duration) {
        let until = Instant::now() + d;
        while !self.cancelled() {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            std::thread::sleep(left.min(Duration::from_millis(100)));
        }
    }

    fn note_reconnect(&self, side: Side, err: &ImapError) {
        match side {
            Side::Source => &self.totals.reconnects_src,
            Side::Destination => &self.totals.reconnects_dst,
        }
        .fetch_add(1, Ordering::Relaxed);
        self.emit(Event::Connection {
            side,
            state: ConnState::Reconnecting,
            host: self.server(side).endpoint.host.clone(),
            reason: Some(err.message.clone()),
        });
    }
}

/// How far [`Engine::create_new_folders_at_once`] got with a folder.
#[derive(PartialEq, Eq)]
enum Early {
    Created,
    /// Created, and subscribed if it should be.
    Subscribed,
}

/// Subscribe (`true`) or unsubscribe the destination folder so it follows the source's.
fn subscription_change(m: &Mapping, subscribed: &Subscriptions) -> Option<bool> {
    let have =
        m.exists
            && subscribed.destination.iter().flatten().any(|d| {
                *d == m.dest_wire || (m.dest == "INBOX" && d.eq_ignore_ascii_case("INBOX"))
            });
    match &subscribed.source {
        Some(source) => {
            let want = source.contains(&m.source_wire);
            (want != have).then_some(want)
        }
        // The source's subscriptions are unknown: new folders are subscribed (so mail
        // clients show them), existing ones are left as they are.
        None => (!m.exists).then_some(true),
    }
}

/// The report of a folder not started: `bytes` planned (dry run) or 0.
fn pending(m: &Mapping, messages: u64, bytes: u64) -> FolderReport {
    FolderReport {
        folder: m.source.clone(),
        destination: m.dest.clone(),
        status: FolderStatus::Pending,
        messages,
        copied: 0,
        skipped: 0,
        failed: 0,
        bytes,
        deleted_on_source: 0,
        altered: 0,
    }
}

fn folder_finished(rep: &FolderReport, duration_ms: u64, reason: Option<String>) -> Event {
    Event::FolderFinished {
        folder: rep.folder.clone(),
        destination: rep.destination.clone(),
        status: rep.status,
        messages: rep.messages,
        copied: rep.copied,
        skipped: rep.skipped,
        failed: rep.failed,
        bytes: rep.bytes,
        deleted_on_source: rep.deleted_on_source,
        altered: rep.altered,
        duration_ms,
        reason,
    }
}

pub fn endpoint_info(ep: &Endpoint) -> EndpointInfo {
    EndpointInfo {
        url: ep.url(),
        host: ep.host.clone(),
        port: ep.port,
        user: ep.user.clone(),
    }
}

fn namespace(s: &mut Session) -> Result<Namespace, ImapError> {
    Ok(match s.personal_namespace()? {
        Some((prefix, separator)) => Namespace {
            prefix: crate::utf7::decode_lossy(&prefix),
            separator,
        },
        None => Namespace::default(),
    })
}

/// Servers without NAMESPACE still tell the separator in LIST.
fn fill_separator(mut ns: Namespace, listed: &[crate::imap::ListedFolder]) -> Namespace {
    if ns.separator.is_none() {
        ns.separator = listed.iter().find_map(|f| f.delimiter);
    }
    ns
}

/// A server's `[ALERT]` or untagged NO/BAD, as a warning a person reads.
fn notice_text(who: &str, n: &crate::imap::Notice) -> String {
    use crate::imap::NoticeKind;
    match n.kind {
        NoticeKind::Alert => format!("alert from {who}: {}", n.text),
        NoticeKind::No => format!("{who} warns: {}", n.text),
        NoticeKind::Bad => format!("{who} reports a protocol error: {}", n.text),
        NoticeKind::NotByteExact => n.text.clone(),
    }
}

/// Compact UID set: "1:5,7,9:12".
pub fn uid_set(uids: impl IntoIterator<Item = u32>) -> String {
    let mut v: Vec<u32> = uids.into_iter().collect();
    v.sort_unstable();
    v.dedup();
    let mut out = String::new();
    let mut i = 0;
    while i < v.len() {
        let start = v[i];
        let mut end = start;
        while i + 1 < v.len() && v[i + 1] == end + 1 {
            i += 1;
            end = v[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    out
}

/// The exit code for a fatal error.
pub fn exit_code_for(e: &ImapError) -> i32 {
    match e.kind {
        Kind::Usage => exit::USAGE,
        Kind::Auth => exit::AUTH,
        Kind::OverQuota => exit::DESTINATION,
        Kind::Resolve | Kind::Connect | Kind::Tls | Kind::Certificate | Kind::Timeout => {
            exit::CONNECTION
        }
        Kind::Dropped | Kind::Protocol => exit::CONNECTION,
        // Too many connections or unavailable until the retries ran out: the server could
        // not be used, as with a connection failure.
        Kind::No | Kind::Bad
            if e.signal(Side::Source, crate::imap::Phase::Connect)
                == Some(crate::imap::Signal::FewerConnections) =>
        {
            exit::CONNECTION
        }
        // A destination refusing even the login because it is over quota (a source's
        // [OVERQUOTA] is its bandwidth cap: the run was interrupted before it got here).
        Kind::No | Kind::Bad if e.code == Some(crate::imap::parse::Code::OverQuota) => {
            exit::DESTINATION
        }
        // Exit 7 means over quota and nothing else; a refusal that ended the job is a failure.
        Kind::No | Kind::Bad => exit::PARTIAL,
    }
}

#[cfg(test)]
mod tests {
    use super::uid_set;

    #[test]
    fn exit_codes_of_refusals_that_ended_a_run() {
        use crate::imap::parse::Code;
        use crate::imap::{ImapError, Kind};
        let no = |code: Option<Code>, text: &str| ImapError {
            code,
            ..ImapError::new(Kind::No, text)
        };
        let too_many = no(Some(Code::Limit), "Maximum number of connections");
        assert_eq!(super::exit_code_for(&too_many), crate::exit::CONNECTION);
        let gmail = no(Some(Code::Alert), "Too many simultaneous connections");
        assert_eq!(super::exit_code_for(&gmail), crate::exit::CONNECTION);
        let full = no(Some(Code::OverQuota), "Quota exceeded");
        assert_eq!(super::exit_code_for(&full), crate::exit::DESTINATION);
        assert_eq!(
            super::exit_code_for(&no(None, "refused")),
            crate::exit::PARTIAL
        );
    }

    #[test]
    fn uid_sets_are_compact() {
        assert_eq!(uid_set([5, 1, 2, 3, 7, 9, 10]), "1:3,5,7,9:10");
        assert_eq!(uid_set([]), "");
        assert_eq!(uid_set([4]), "4");
    }
}

//! The one truth of what a run does. The engine reports only through these events;
//! renderers ([`crate::render`]) turn them into a human display or JSON lines.
//!
//! The JSON form of every variant is a contract documented in `docs/events.md`
//! (format version [`FORMAT_VERSION`]); the `tests/events_schema.rs` test keeps both in step.

use serde::{Deserialize, Serialize};

/// Bumped on any incompatible change to the JSON form of events.
pub const FORMAT_VERSION: u32 = 1;

/// Which server an event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Source,
    Destination,
}

impl Side {
    pub fn label(self) -> &'static str {
        match self {
            Side::Source => "source",
            Side::Destination => "destination",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnState {
    Connecting,
    Connected,
    Authenticating,
    Authenticated,
    Reconnecting,
    Reconnected,
    Failed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Initializing,
    ScanningFolders,
    CreatingFolders,
    CopyingMessages,
    Finalizing,
    Complete,
    Error,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FolderStatus {
    /// Every message is in the destination.
    Complete,
    /// Some messages failed; the rest were copied.
    Partial,
    /// The folder could not be copied at all.
    Failed,
    /// The run stopped (Ctrl-C, fatal error elsewhere) before the folder was done.
    Interrupted,
    /// Not started.
    Pending,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Complete,
    Partial,
    Error,
    Interrupted,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// The destination already holds this message (same Message-ID or header hash, same size).
    AlreadyPresent,
    /// Larger than `--max-size` or the destination's APPENDLIMIT.
    SizeLimit,
}

/// Per-side connection endpoint, without secrets.
#[derive(Debug, Clone, Serialize)]
pub struct EndpointInfo {
    pub url: String,
    pub host: String,
    pub port: u16,
    pub user: String,
}

/// One folder's line in the summary.
#[derive(Debug, Clone, Serialize)]
pub struct FolderReport {
    pub folder: String,
    pub destination: String,
    pub status: FolderStatus,
    pub messages: u64,
    pub copied: u64,
    pub skipped: u64,
    pub failed: u64,
    pub bytes: u64,
    /// Removed from the source after the destination confirmed them (`--delete-source`).
    pub deleted_on_source: u64,
    /// Kept on the source because the destination's copy differs (`--delete-source`).
    pub altered: u64,
}

/// A message the destination refused, listed again in the summary.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FailureReport {
    pub folder: String,
    pub uid: u32,
    pub message_id: Option<String>,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub status: RunStatus,
    pub exit_code: i32,
    pub folders: u64,
    pub folders_failed: u64,
    pub messages_total: u64,
    pub messages_copied: u64,
    pub messages_skipped: u64,
    pub messages_failed: u64,
    /// Removed from the source (`--delete-source`).
    pub messages_deleted_on_source: u64,
    /// Kept on the source because the destination's copy differs (`--delete-source`).
    pub messages_altered: u64,
    /// Bytes appended to the destination in this run.
    pub bytes_copied: u64,
    pub duration_ms: u64,
    pub messages_per_minute: f64,
    pub bytes_per_second: f64,
    pub reconnects_source: u64,
    pub reconnects_destination: u64,
    /// Messages copied earlier whose flags were brought in line with the source.
    pub flags_updated: u64,
    pub state_file: Option<String>,
    /// The fatal error, when `status` is `error`.
    pub error: Option<String>,
    pub per_folder: Vec<FolderReport>,
    pub failures: Vec<FailureReport>,
}

impl Summary {
    /// The summary of a run that stopped before any folder was looked at.
    pub fn early_error(message: String, exit_code: i32) -> Summary {
        Summary {
            status: RunStatus::Error,
            exit_code,
            folders: 0,
            folders_failed: 0,
            messages_total: 0,
            messages_copied: 0,
            messages_skipped: 0,
            messages_failed: 0,
            messages_deleted_on_source: 0,
            messages_altered: 0,
            bytes_copied: 0,
            duration_ms: 0,
            messages_per_minute: 0.0,
            bytes_per_second: 0.0,
            reconnects_source: 0,
            reconnects_destination: 0,
            flags_updated: 0,
            state_file: None,
            error: Some(message),
            per_folder: Vec::new(),
            failures: Vec::new(),
        }
    }
}

/// Everything a run reports. Serialized with `"type": "<snake_case variant>"`.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// Always first.
    Start {
        format_version: u32,
        tool: &'static str,
        version: &'static str,
        command: &'static str,
        /// Absent only when the run failed before the endpoints were known.
        source: Option<EndpointInfo>,
        destination: Option<EndpointInfo>,
        jobs: usize,
        dry_run: bool,
        state_file: Option<String>,
    },
    Phase {
        phase: Phase,
    },
    Connection {
        side: Side,
        state: ConnState,
        host: String,
        /// Set for `failed` and `reconnecting`.
        reason: Option<String>,
    },
    /// A selectable source folder, with what it holds.
    FolderFound {
        folder: String,
        destination: String,
        special_use: Option<String>,
        /// The destination folder does not exist yet and will be created.
        create: bool,
        messages: u64,
        bytes: u64,
    },
    FolderCreated {
        folder: String,
        destination: String,
    },
    FolderStarted {
        folder: String,
        destination: String,
        /// Messages in the source folder this run looks at.
        messages: u64,
        bytes: u64,
    },
    /// Emitted as messages land; `copied` counts copied + skipped + failed in this folder.
    Progress {
        folder: String,
        done: u64,
        total: u64,
        bytes: u64,
        overall_done: u64,
        overall_total: u64,
        overall_bytes: u64,
    },
    MessageSkipped {
        folder: String,
        uid: u32,
        message_id: Option<String>,
        size: u64,
        reason: SkipReason,
    },
    MessageFailed {
        folder: String,
        uid: u32,
        message_id: Option<String>,
        reason: String,
    },
    /// `--delete-source`: the destination's copy of a source message is not the same (read
    /// back and compared), so the source message is kept.
    MessageAltered {
        folder: String,
        uid: u32,
        message_id: Option<String>,
        /// Where the destination holds its copy, when known.
        destination_uid: Option<u32>,
        differences: Vec<crate::digest::Difference>,
        reason: String,
    },
    FolderFinished {
        folder: String,
        destination: String,
        status: FolderStatus,
        messages: u64,
        copied: u64,
        skipped: u64,
        failed: u64,
        bytes: u64,
        deleted_on_source: u64,
        altered: u64,
        duration_ms: u64,
        /// Set when `status` is `failed`.
        reason: Option<String>,
    },
    Warning {
        message: String,
        folder: Option<String>,
    },
    Error {
        message: String,
        folder: Option<String>,
        /// The server whose answer this is, when one is.
        side: Option<Side>,
    },
    /// Protocol-level detail, only with `-v` (never secrets).
    Detail {
        side: Option<Side>,
        message: String,
    },
    /// `btsx verify`: one folder compared.
    VerifyFolder {
        folder: String,
        destination: String,
        source_messages: u64,
        destination_messages: u64,
        /// Source messages the destination lacks.
        missing: u64,
        /// Destination messages with no source counterpart.
        extra: u64,
        /// Source messages also in the destination (0 everywhere: the source is clean after
        /// `--delete-source`).
        in_both: u64,
        /// `--deep`: copies whose content, arrival date or flags differ (each named in a
        /// `message_altered` event).
        altered: u64,
        /// Up to 20 of the missing messages.
        missing_messages: Vec<MissingMessage>,
        /// Messages in both whose system flags or keywords differ.
        flags_differ: u64,
        /// Messages in both whose INTERNALDATE differs.
        date_differ: u64,
        /// Up to 20 of the messages whose flags or date differ.
        differing_messages: Vec<DifferingMessage>,
    },
    /// Always last, also after a fatal error or an interruption.
    Summary(Summary),
    /// Always last for `btsx verify`.
    VerifySummary(VerifySummary),
    /// Always last for `btsx batch` (each account also ends with its own `summary`).
    BatchSummary(BatchSummary),
    /// Folders treated as views of other folders (special use `\All`, `\Flagged`,
    /// `\Important`, as on Gmail), after scanning; only when there are any.
    Views {
        /// Source folders not copied as folders.
        views: Vec<String>,
        /// The source's `\All` folder, of which only archived messages are copied.
        all_mail: Option<String>,
        /// Where those go.
        all_mail_destination: Option<String>,
        /// Archived messages (and their bytes) to copy from it on this run.
        archived_messages: Option<u64>,
        archived_bytes: Option<u64>,
        /// Destination folders that are views: never appended to.
        destination_views: Vec<String>,
        /// Source folders left out because they would land in a destination view.
        not_copied: Vec<String>,
    },
    /// Flags and keywords of messages copied in earlier runs were brought in line with the
    /// source (additions and removals).
    FlagsSynced {
        folder: String,
        destination: String,
        /// Messages whose flags changed on the destination.
        updated: u64,
    },
    /// A server said it has too many connections, throttles or is unavailable: the run uses
    /// fewer connection pairs from now on (one event per change; never below one).
    ConnectionsReduced {
        /// The server that said so.
        side: Side,
        host: String,
        /// Connection pairs allowed before and from now on.
        from: usize,
        to: usize,
        /// What the server said.
        reason: String,
    },
}

/// One account's line in a batch summary.
#[derive(Debug, Clone, Serialize)]
pub struct AccountReport {
    pub job: String,
    /// Line of the row in the batch file.
    pub line: usize,
    pub status: RunStatus,
    pub exit_code: i32,
    pub messages_copied: u64,
    pub messages_failed: u64,
    pub bytes_copied: u64,
    pub duration_ms: u64,
    pub state_file: Option<String>,
    pub error: Option<String>,
}

/// A batch file row that could not be used.
#[derive(Debug, Clone, Serialize)]
pub struct RowError {
    pub line: usize,
    pub message: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct BatchSummary {
    pub status: RunStatus,
    pub exit_code: i32,
    /// Rows this run (or shard) took.
    pub accounts: u64,
    pub complete: u64,
    pub failed: u64,
    pub messages_copied: u64,
    pub bytes_copied: u64,
    pub duration_ms: u64,
    pub per_account: Vec<AccountReport>,
    pub bad_rows: Vec<RowError>,
}

/// A message in both whose flags or date differ (`btsx verify`).
#[derive(Debug, Clone, Serialize)]
pub struct DifferingMessage {
    /// Source UID.
    pub uid: u32,
    pub message_id: Option<String>,
    /// Sorted, without `\Recent`.
    pub source_flags: Vec<String>,
    pub destination_flags: Vec<String>,
    pub date_differs: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct MissingMessage {
    pub uid: u32,
    pub message_id: Option<String>,
    pub size: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VerifyStatus {
    /// The destination holds every source message.
    Ok,
    /// Some source messages are missing in the destination, or differ in flags or date.
    Mismatch,
    /// Nothing found missing, but some folders could not be compared.
    Partial,
    Error,
}

#[derive(Debug, Clone, Serialize)]
pub struct VerifySummary {
    pub status: VerifyStatus,
    pub exit_code: i32,
    pub folders: u64,
    /// Folders that could not be compared (each reported by an `error` event).
    pub folders_failed: u64,
    pub source_messages: u64,
    pub destination_messages: u64,
    pub missing: u64,
    pub extra: u64,
    /// `--deep`: copies whose content, arrival date or flags differ.
    pub altered: u64,
    /// No source message is also in the destination (what `--delete-source` should leave).
    pub source_clean: bool,
    pub duration_ms: u64,
    pub error: Option<String>,
    /// Messages in both whose system flags or keywords differ.
    pub flags_differ: u64,
    /// Messages in both whose INTERNALDATE differs.
    pub date_differ: u64,
}

impl VerifySummary {
    pub fn early_error(message: String, exit_code: i32) -> VerifySummary {
        VerifySummary {
            status: VerifyStatus::Error,
            exit_code,
            folders: 0,
            folders_failed: 0,
            source_messages: 0,
            destination_messages: 0,
            missing: 0,
            extra: 0,
            altered: 0,
            source_clean: false,
            duration_ms: 0,
            error: Some(message),
            flags_differ: 0,
            date_differ: 0,
        }
    }
}

impl Event {
    /// The `"type"` tag, for renderers and tests.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::Start { .. } => "start",
            Event::Phase { .. } => "phase",
            Event::Connection { .. } => "connection",
            Event::FolderFound { .. } => "folder_found",
            Event::FolderCreated { .. } => "folder_created",
            Event::FolderStarted { .. } => "folder_started",
            Event::Progress { .. } => "progress",
            Event::MessageSkipped { .. } => "message_skipped",
            Event::MessageFailed { .. } => "message_failed",
            Event::MessageAltered { .. } => "message_altered",
            Event::FolderFinished { .. } => "folder_finished",
            Event::Warning { .. } => "warning",
            Event::Error { .. } => "error",
            Event::Summary(_) => "summary",
            Event::Detail { .. } => "detail",
            Event::VerifyFolder { .. } => "verify_folder",
            Event::VerifySummary(_) => "verify_summary",
            Event::BatchSummary(_) => "batch_summary",
            Event::Views { .. } => "views",
            Event::FlagsSynced { .. } => "flags_synced",
            Event::ConnectionsReduced { .. } => "connections_reduced",
        }
    }
}

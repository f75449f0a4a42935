//! The resume file: what a job is, and how far each folder got.
//!
//! Written atomically (temporary file in the same directory, fsync, rename), mode 0600, after
//! every folder and at checkpoints within a folder. It never holds a password or token.
//! A sidecar `FILE.lock` (an OS file lock) keeps two runs off the same job.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

use crate::endpoint::Endpoint;
use crate::engine::AllMail;
use crate::event::{FailureReport, FolderStatus, RunStatus};

/// Bumped on incompatible changes; a newer file is refused, never overwritten.
pub const STATE_VERSION: u32 = 1;

/// A folder in progress is written after this long, or after this many checkpoints (one per
/// settled batch of at most 200 messages), whichever comes first.
const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(2);
const CHECKPOINT_BATCHES: u32 = 3;

/// What a job copies: its two endpoints (which identify it: two runs between the same
/// endpoints are the same job) and the selection last used (saved, and changeable).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobIdentity {
    pub source: Endpoint,
    pub destination: Endpoint,
    #[serde(default)]
    pub folder_map: Vec<(String, String)>,
    #[serde(default)]
    pub max_size: Option<u64>,
    #[serde(default)]
    pub include: Vec<String>,
    #[serde(default)]
    pub exclude: Vec<String>,
    #[serde(default)]
    pub since: Option<String>,
    #[serde(default)]
    pub before: Option<String>,
    /// Left out of the file at its default, so older jobs keep their identity.
    #[serde(default, skip_serializing_if = "AllMail::is_default")]
    pub all_mail: AllMail,
}

impl JobIdentity {
    /// A file name for this job: readable, and unique through a short hash.
    pub fn file_name(&self) -> String {
        let raw = format!(
            "{}@{}-to-{}@{}",
            self.source.user, self.source.host, self.destination.user, self.destination.host
        );
        let clean: String = raw
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "@.-_".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .take(100)
            .collect();
        let json = serde_json::to_string(&(&self.source, &self.destination)).unwrap_or_default();
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in json.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        format!("{clean}-{:08x}.json", h as u32)
    }

    fn describe(&self) -> String {
        format!("{} → {}", self.source.url(), self.destination.url())
    }

    /// The same two endpoints: the same job, whatever its selection.
    pub fn same_job(&self, other: &JobIdentity) -> bool {
        self.source == other.source && self.destination == other.destination
    }
}

/// Every non-secret option of a job besides its selection, so `--resume FILE` alone
/// continues it. Paths are absolute. Never a password or token: only where to get them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SavedOptions {
    pub ca_file: Option<PathBuf>,
    pub src_ca_file: Option<PathBuf>,
    pub dst_ca_file: Option<PathBuf>,
    pub insecure: bool,
    pub plaintext: bool,
    pub src_password_file: Option<PathBuf>,
    pub src_password_command: Option<String>,
    pub dst_password_file: Option<PathBuf>,
    pub dst_password_command: Option<String>,
    pub src_oauth2_token_file: Option<PathBuf>,
    pub src_oauth2_token_command: Option<String>,
    pub dst_oauth2_token_file: Option<PathBuf>,
    pub dst_oauth2_token_command: Option<String>,
    pub jobs: Option<u16>,
    pub retries: Option<u32>,
    pub timeout_ms: Option<u64>,
    pub max_messages_per_second: Option<f64>,
    pub max_bytes_per_second: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FolderState {
    pub source: String,
    pub destination: String,
    pub uid_validity: u32,
    /// Every source message with a UID up to this one is settled (copied, present, skipped
    /// or failed and listed).
    pub last_uid: u32,
    /// The destination folder's UIDVALIDITY and UIDNEXT after our last confirmed APPEND;
    /// when both are unchanged at the next run nothing was appended since.
    pub dest_uid_validity: Option<u32>,
    pub dest_uid_next: Option<u32>,
    pub messages: u64,
    pub copied: u64,
    pub skipped: u64,
    pub failed: u64,
    pub bytes: u64,
    pub status: FolderStatus,
    #[serde(default)]
    pub failures: Vec<FailureReport>,
    /// Messages the destination folder confirmed holding (copied, or found there by the
    /// index) over the whole job; a destination holding fewer is refilled. Older files
    /// lack it: their `copied` stands in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held: Option<u64>,
    /// Source UID → destination UID of the copied messages (from APPENDUID), for flag sync.
    #[serde(default, skip_serializing_if = "UidMap::is_empty")]
    pub uid_map: UidMap,
    /// The source folder's HIGHESTMODSEQ when its flags were last brought over (CONDSTORE).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modseq: Option<u64>,
    /// Unix time of a checkpoint written while APPENDs may have been in flight (the run
    /// stopped mid-folder). A server may still store a batch whose client died, a moment
    /// later: the next run waits for that before it looks at the destination folder. Only
    /// its presence decides (the wait counts from the next run's start); the time is kept
    /// for people reading the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_flight_at: Option<i64>,
    /// A folder copied in parts (ranges of source UIDs on several connections): each part
    /// beyond `last_uid` as `[lo, hi, done_through]`, every UID of `lo..=done_through`
    /// settled. Empty once the parts met up (and in files older than this field).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<[u32; 3]>,
}

/// Source UID → destination UID, compact: runs of consecutive pairs `[src, dst, len]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UidMap(Vec<[u32; 3]>);

impl UidMap {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Record one pair; consecutive pairs extend the last run.
    pub fn push(&mut self, src: u32, dst: u32) {
        if let Some([s, d, n]) = self.0.last_mut()
            && s.checked_add(*n) == Some(src)
            && d.checked_add(*n) == Some(dst)
        {
            *n += 1;
            return;
        }
        self.0.push([src, dst, 1]);
    }

    pub fn extend(&mut self, pairs: impl IntoIterator<Item = (u32, u32)>) {
        for (s, d) in pairs {
            self.push(s, d);
        }
    }

    /// Every (source, destination) pair.
    pub fn pairs(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        self.0
            .iter()
            .flat_map(|[s, d, n]| (0..*n).map(move |i| (s + i, d + i)))
    }
}

impl FolderState {
    /// What the destination folder should hold at least.
    pub fn held(&self) -> u64 {
        self.held.unwrap_or(self.copied)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Running,
    Complete,
    Partial,
    Error,
    Interrupted,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StateData {
    pub version: u32,
    pub tool: String,
    pub job: JobIdentity,
    pub status: JobStatus,
    pub created: String,
    pub updated: String,
    pub folders: BTreeMap<String, FolderState>,
    /// The options the job last ran with (see [`SavedOptions`]).
    #[serde(default)]
    pub options: SavedOptions,
}

#[derive(Debug)]
pub enum StateError {
    /// Unreadable, corrupt, empty, truncated, or from a newer btsx.
    Bad(String),
    /// Belongs to another job.
    Foreign(String),
    /// Another btsx holds the lock.
    Locked(String),
    /// Cannot write.
    Io(String),
}

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StateError::Bad(s)
            | StateError::Foreign(s)
            | StateError::Locked(s)
            | StateError::Io(s) => f.write_str(s),
        }
    }
}

impl std::error::Error for StateError {}

/// Read a state file without locking it (for `btsx status` and `--resume`).
pub fn read(path: &Path) -> Result<StateData, StateError> {
    let shown = path.display();
    let bytes = fs::read(path).map_err(|e| {
        StateError::Bad(format!(
            "cannot read state file {shown}: {} (check the path)",
            crate::imap::error::truncate(&e.to_string(), 100)
        ))
    })?;
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(StateError::Bad(format!(
            "state file {shown} is empty; delete it to start the job afresh (the destination index prevents duplicates)"
        )));
    }
    // Look at the version first, so a newer format is named as such, not as corrupt.
    let v: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
        StateError::Bad(format!(
            "state file {shown} is corrupt or truncated ({e}); move it aside to start afresh (the destination index prevents duplicates)"
        ))
    })?;
    match v.get("version").and_then(|v| v.as_u64()) {
        Some(n) if n == u64::from(STATE_VERSION) => {}
        Some(n) if n > u64::from(STATE_VERSION) => {
            return Err(StateError::Bad(format!(
                "state file {shown} has version {n}, newer than this btsx understands ({STATE_VERSION}); upgrade btsx"
            )));
        }
        _ => {
            return Err(StateError::Bad(format!(
                "{shown} is not a btsx state file (no usable \"version\"); pass the right file or move it aside"
            )));
        }
    }
    if v.get("tool").and_then(|t| t.as_str()) != Some("btsx") {
        return Err(StateError::Bad(format!(
            "{shown} is not a btsx state file; pass the right file or move it aside"
        )));
    }
    serde_json::from_value(v).map_err(|e| {
        StateError::Bad(format!(
            "state file {shown} is corrupt ({e}); move it aside to start afresh (the destination index prevents duplicates)"
        ))
    })
}

pub struct StateStore {
    path: PathBuf,
    data: Mutex<StateData>,
    last_write: Mutex<Instant>,
    /// Checkpoints recorded since the last write.
    pending: std::sync::atomic::AtomicU32,
    /// One writer at a time, so an older snapshot never replaces a newer one.
    writing: Mutex<()>,
    /// The file exists on disk (it did before, or this run reached the servers): a run
    /// that never connected leaves no state file behind.
    on_disk: std::sync::atomic::AtomicBool,
    _lock: File,
}

impl StateStore {
    /// Open (or create) the state of `job` at `path`, taking the lock.
    pub fn open(path: &Path, job: &JobIdentity) -> Result<StateStore, StateError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(|e| {
                StateError::Io(format!(
                    "cannot create the state directory {}: {e}",
                    dir.display()
                ))
            })?;
        }
        let lock = lock_file(path)?;
        remove_stale_temps(path);
        let existed = fs::metadata(path).is_ok();
        let data = match fs::metadata(path) {
            Ok(_) => {
                let mut d = read(path)?;
                if !d.job.same_job(job) {
                    return Err(StateError::Foreign(format!(
                        "state file {} belongs to another job ({}); use another --state file, or --resume {} to continue that job",
                        path.display(),
                        d.job.describe(),
                        path.display()
                    )));
                }
                // A changed selection is this job's new selection.
                d.job = job.clone();
                d
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {
                let now = now();
                StateData {
                    version: STATE_VERSION,
                    tool: "btsx".into(),
                    job: job.clone(),
                    status: JobStatus::Running,
                    created: now.clone(),
                    updated: now,
                    folders: BTreeMap::new(),
                    options: SavedOptions::default(),
                }
            }
            Err(e) => {
                return Err(StateError::Bad(format!(
                    "cannot read state file {}: {e}",
                    path.display()
                )));
            }
        };
        let store = StateStore {
            path: path.to_path_buf(),
            data: Mutex::new(data),
            last_write: Mutex::new(Instant::now()),
            pending: std::sync::atomic::AtomicU32::new(0),
            writing: Mutex::new(()),
            on_disk: std::sync::atomic::AtomicBool::new(existed),
            _lock: lock,
        };
        if existed {
            store.set_status(JobStatus::Running)?;
        }
        Ok(store)
    }

    /// The servers answered: from now on the job is on disk.
    pub fn reached(&self) -> Result<(), StateError> {
        self.on_disk
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.write()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The options this run uses, saved with the job (written with the next write).
    pub fn save_options(&self, o: SavedOptions) {
        if let Ok(mut d) = self.data.lock() {
            d.options = o;
        }
    }

    pub fn folder(&self, source: &str) -> Option<FolderState> {
        self.data.lock().ok()?.folders.get(source).cloned()
    }

    /// Record a folder's progress; written now when the folder is done, else at most every
    /// [`CHECKPOINT_INTERVAL`].
    pub fn update(&self, f: FolderState) -> Result<(), StateError> {
        let settled = !matches!(f.status, FolderStatus::Interrupted | FolderStatus::Pending);
        {
            let mut d = self.data.lock().map_err(|_| poisoned())?;
            d.folders.insert(f.source.clone(), f);
        }
        self.on_disk
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let batches = self
            .pending
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1;
        let due = batches >= CHECKPOINT_BATCHES
            || self
                .last_write
                .lock()
                .map(|t| t.elapsed() >= CHECKPOINT_INTERVAL)
                .unwrap_or(true);
        if settled || due {
            self.write()?;
        }
        Ok(())
    }

    fn set_status(&self, s: JobStatus) -> Result<(), StateError> {
        self.data.lock().map_err(|_| poisoned())?.status = s;
        if !self.on_disk.load(std::sync::atomic::Ordering::SeqCst) {
            return Ok(());
        }
        self.write()
    }

    /// The run ended: record how.
    pub fn finish(&self, status: RunStatus) -> Result<(), StateError> {
        self.set_status(match status {
            RunStatus::Complete => JobStatus::Complete,
            RunStatus::Partial => JobStatus::Partial,
            RunStatus::Error => JobStatus::Error,
            RunStatus::Interrupted => JobStatus::Interrupted,
        })
    }

    /// Atomic replace: a crash leaves either the old or the new file, never half of one.
    pub fn write(&self) -> Result<(), StateError> {
        let _one_writer = self.writing.lock().unwrap_or_else(|p| p.into_inner());
        let json = {
            let mut d = self.data.lock().map_err(|_| poisoned())?;
            d.updated = now();
            serde_json::to_vec_pretty(&*d).map_err(|e| StateError::Io(e.to_string()))?
        };
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let io = |e: std::io::Error| {
            StateError::Io(format!(
                "cannot write state file {}: {e}",
                self.path.display()
            ))
        };
        // NamedTempFile is created 0600 and lives in the same directory, so rename is atomic.
        let mut tmp = tempfile::Builder::new()
            .prefix(&temp_prefix(&self.path))
            .tempfile_in(&dir)
            .map_err(io)?;
        tmp.write_all(&json).map_err(io)?;
        tmp.write_all(b"\n").map_err(io)?;
        tmp.as_file().sync_all().map_err(io)?;
        tmp.persist(&self.path).map_err(|e| io(e.error))?;
        if let Ok(d) = File::open(&dir) {
            let _ = d.sync_all();
        }
        if let Ok(mut t) = self.last_write.lock() {
            *t = Instant::now();
        }
        self.pending.store(0, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }
}

impl Drop for StateStore {
    /// The lock file goes with the run (still locked while it is removed, so no other run
    /// can hold it meanwhile; `lock_file` checks it locked the file still at the path).
    fn drop(&mut self) {
        let _ = fs::remove_file(lock_path(&self.path));
    }
}

/// Temporary files of one job share a prefix, so a later run can clear what a kill left.
fn temp_prefix(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "state".into());
    format!(".{name}.tmp")
}

/// Under the lock, any temporary file of this job is a leftover of a killed run.
fn remove_stale_temps(path: &Path) {
    let prefix = temp_prefix(path);
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with(&prefix) {
                let _ = fs::remove_file(e.path());
            }
        }
    }
}

fn poisoned() -> StateError {
    StateError::Io("state lock poisoned".into())
}

fn lock_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".lock");
    PathBuf::from(p)
}

/// Is a run holding this state file right now?
pub fn is_locked(path: &Path) -> bool {
    match OpenOptions::new().write(true).open(lock_path(path)) {
        Ok(f) => f.try_lock().is_err(),
        Err(_) => false,
    }
}

fn lock_file(path: &Path) -> Result<File, StateError> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let lp = lock_path(path);
    loop {
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&lp)
            .map_err(|e| StateError::Io(format!("cannot open lock file {}: {e}", lp.display())))?;
        match f.try_lock() {
            // A run that just ended may have removed the file we opened: lock the one at
            // the path, or two runs could each hold a lock of their own.
            Ok(()) => match (f.metadata(), fs::metadata(&lp)) {
                (Ok(a), Ok(b)) if a.ino() == b.ino() && a.dev() == b.dev() => return Ok(f),
                _ => continue,
            },
            Err(e) => return lock_error(path, &lp, e),
        }
    }
}

fn lock_error(path: &Path, lp: &Path, e: std::fs::TryLockError) -> Result<File, StateError> {
    match e {
        std::fs::TryLockError::WouldBlock => Err(StateError::Locked(format!(
            "another btsx is already running with state file {}; wait for it to finish (see `btsx status {}`)",
            path.display(),
            path.display()
        ))),
        std::fs::TryLockError::Error(e) => {
            Err(StateError::Io(format!("cannot lock {}: {e}", lp.display())))
        }
    }
}

/// `$XDG_STATE_HOME/btsx/`, else `~/.local/state/btsx/`.
pub fn base_dir() -> PathBuf {
    std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .unwrap_or_else(|| PathBuf::from("."))
        .join("btsx")
}

/// Where a job's state goes without `--state`.
pub fn default_path(job: &JobIdentity) -> PathBuf {
    base_dir().join(job.file_name())
}

fn now() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn job() -> JobIdentity {
        JobIdentity {
            source: "imaps://a@src.example".parse().expect("url"),
            destination: "imaps://b@dst.example".parse().expect("url"),
            folder_map: vec![],
            max_size: None,
            include: vec![],
            exclude: vec![],
            since: None,
            before: None,
            all_mail: AllMail::default(),
        }
    }

    #[test]
    fn round_trip_mode_and_lock() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("s.json");
        let st = StateStore::open(&p, &job()).expect("open");
        // Nothing on disk before the servers answered; the lock is private.
        assert!(!p.exists());
        let lock = lock_path(&p);
        assert_eq!(
            fs::metadata(&lock).expect("lock").permissions().mode() & 0o777,
            0o600
        );
        st.reached().expect("reached");
        assert_eq!(
            fs::metadata(&p).expect("meta").permissions().mode() & 0o777,
            0o600
        );
        assert!(matches!(
            StateStore::open(&p, &job()),
            Err(StateError::Locked(_))
        ));
        st.finish(RunStatus::Complete).expect("finish");
        drop(st);
        assert!(!lock.exists(), "the lock goes with the run");
        let d = read(&p).expect("read");
        assert_eq!(d.status, JobStatus::Complete);
        assert!(StateStore::open(&p, &job()).is_ok());
    }

    #[test]
    fn bad_files_are_named_and_explained() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("s.json");
        for (content, want) in [
            ("", "empty"),
            ("{\"version\": 1, \"tool\": \"bt", "corrupt or truncated"),
            ("{\"version\": 99, \"tool\": \"btsx\"}", "newer"),
            ("{\"hello\": 1}", "not a btsx state file"),
            ("[1,2]", "not a btsx state file"),
        ] {
            fs::write(&p, content).expect("write");
            let e = StateStore::open(&p, &job()).err().expect("error");
            let msg = e.to_string();
            assert!(msg.contains(want), "{content:?}: {msg}");
            assert!(msg.contains("s.json"), "{msg}");
            // Never overwritten silently.
            assert_eq!(fs::read_to_string(&p).expect("read"), content);
        }
    }

    #[test]
    fn foreign_job_is_refused() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("s.json");
        StateStore::open(&p, &job())
            .expect("open")
            .reached()
            .expect("write");
        let mut other = job();
        other.destination = "imaps://c@elsewhere.example".parse().expect("url");
        let e = StateStore::open(&p, &other).err().expect("error");
        assert!(matches!(e, StateError::Foreign(_)));
        assert!(e.to_string().contains("another job"));
    }

    #[test]
    fn parts_are_optional_and_round_trip() {
        // A folder record from before `parts` existed reads as a folder without parts.
        let old = r#"{"source":"INBOX","destination":"INBOX","uid_validity":7,"last_uid":40,
            "dest_uid_validity":3,"dest_uid_next":41,"messages":40,"copied":40,"skipped":0,
            "failed":0,"bytes":1000,"status":"complete"}"#;
        let f: FolderState = serde_json::from_str(old).expect("old record");
        assert!(f.parts.is_empty());
        let text = serde_json::to_string(&f).expect("json");
        assert!(!text.contains("parts"), "left out when empty: {text}");
        let split = FolderState {
            parts: vec![[41, 200, 120], [201, 400, 400]],
            ..f
        };
        let text = serde_json::to_string(&split).expect("json");
        assert!(
            text.contains(r#""parts":[[41,200,120],[201,400,400]]"#),
            "{text}"
        );
        let back: FolderState = serde_json::from_str(&text).expect("read back");
        assert_eq!(back.parts, split.parts);
    }

    #[test]
    fn uid_maps_are_runs_of_consecutive_pairs() {
        let mut m = UidMap::default();
        m.extend([(1, 10), (2, 11), (3, 12), (5, 13), (6, 14), (9, 30)]);
        assert_eq!(m.0, vec![[1, 10, 3], [5, 13, 2], [9, 30, 1]]);
        assert_eq!(
            m.pairs().collect::<Vec<_>>(),
            vec![(1, 10), (2, 11), (3, 12), (5, 13), (6, 14), (9, 30)]
        );
        let json = serde_json::to_string(&m).expect("json");
        assert_eq!(json, "[[1,10,3],[5,13,2],[9,30,1]]");
    }

    #[test]
    fn a_job_is_its_two_endpoints() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("s.json");
        StateStore::open(&p, &job())
            .expect("open")
            .reached()
            .expect("write");
        let mut other = job();
        other.exclude = vec!["Trash".into()];
        let st = StateStore::open(&p, &other).expect("a changed filter is the same job");
        st.reached().expect("write");
        drop(st);
        assert_eq!(
            read(&p).expect("read").job.exclude,
            vec!["Trash".to_string()]
        );
    }

    #[test]
    fn file_names_differ_per_job() {
        let mut other = job();
        other.max_size = Some(5);
        assert_eq!(job().file_name(), other.file_name(), "same endpoints");
        other.destination = "imaps://c@dst.example".parse().expect("url");
        assert_ne!(job().file_name(), other.file_name());
        assert!(
            job()
                .file_name()
                .starts_with("a@src.example-to-b@dst.example-")
        );
    }
}

#[cfg(test)]
mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever is in the file, reading it never panics and never succeeds on garbage
        /// without a version.
        #[test]
        fn read_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let dir = tempfile::tempdir().expect("tmp");
            let p = dir.path().join("s.json");
            fs::write(&p, &bytes).expect("write");
            let _ = read(&p);
        }

        #[test]
        fn read_never_panics_on_json_like(s in r#"\{("[a-z_]{1,9}": ?(-?[0-9]{1,12}|"[^"\\]{0,8}"|null|\[\]|\{\}),? ?){0,8}\}"#) {
            let dir = tempfile::tempdir().expect("tmp");
            let p = dir.path().join("s.json");
            fs::write(&p, s.as_bytes()).expect("write");
            let _ = read(&p);
        }
    }
}

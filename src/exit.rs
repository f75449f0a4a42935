//! Exit codes: a contract with scripts and cron jobs, listed in the README.

/// Every message is in the destination.
pub const OK: i32 = 0;
/// The run finished, but some messages or folders failed (listed in the summary).
pub const PARTIAL: i32 = 1;
/// Bad command line, bad URL, unreadable password or CA file.
pub const USAGE: i32 = 2;
/// A server could not be reached: unknown host, refused port, timeout, TLS or certificate failure.
pub const CONNECTION: i32 = 3;
/// A server refused the login.
pub const AUTH: i32 = 4;
/// The state file is corrupt, truncated, from a newer btsx, or belongs to another job.
pub const STATE: i32 = 5;
/// Another btsx is running on the same state file.
pub const LOCKED: i32 = 6;
/// The destination refused to go on: over quota, or a fatal server error.
pub const DESTINATION: i32 = 7;
/// `btsx verify` found messages missing in the destination.
pub const VERIFY_MISMATCH: i32 = 8;
/// Stopped by Ctrl-C or SIGTERM, or by the account's bandwidth limit (Gmail's `[OVERQUOTA]`);
/// the state file is saved, `--resume` continues.
pub const INTERRUPTED: i32 = 130;

// `btsx status` answers with the job's state, so a script can wait for a job without parsing
// (0 is a complete job; a directory counts as complete only when every job in it is).
/// `btsx status`: a btsx run holds the job now.
pub const STATUS_RUNNING: i32 = 10;
/// `btsx status`: the job stopped before it was done (Ctrl-C, kill, reboot); `--resume` continues.
pub const STATUS_INTERRUPTED: i32 = 11;
/// `btsx status`: the job finished with failed messages or folders, or stopped on an error.
pub const STATUS_FAILED: i32 = 12;

/// All codes with a one-line meaning, for `--help` and the docs test.
pub const TABLE: &[(i32, &str)] = &[
    (OK, "everything copied"),
    (PARTIAL, "finished, but some messages or folders failed"),
    (
        USAGE,
        "usage error: bad arguments, URL, password or CA file",
    ),
    (CONNECTION, "connection or TLS failure"),
    (AUTH, "authentication failed"),
    (STATE, "unusable state file"),
    (LOCKED, "another btsx holds the state file"),
    (DESTINATION, "destination refused to go on (over quota)"),
    (VERIFY_MISMATCH, "verify: destination is missing messages"),
    (
        INTERRUPTED,
        "interrupted (Ctrl-C / SIGTERM, or the bandwidth limit); resume with --resume",
    ),
    (STATUS_RUNNING, "status: the job is running"),
    (
        STATUS_INTERRUPTED,
        "status: the job was interrupted; resume with --resume",
    ),
    (
        STATUS_FAILED,
        "status: the job finished with failures or stopped on an error",
    ),
];

/// A failure that ends a command before or instead of its work: one line saying what is
/// wrong and what to do, and the exit code. `app` turns it into output and the exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub code: i32,
    pub message: String,
}

impl Failure {
    pub fn new(code: i32, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
        }
    }
}

//! APPENDs that land after their client is gone. A server that has read a whole APPEND
//! (or MULTIAPPEND) stores it even when the connection died meanwhile, a moment later:
//! Dovecot was seen storing a 2 MiB MULTIAPPEND 0.6 s after the client was killed. A new
//! attempt that looked at the destination folder before that would copy the batch again.
//! So after a run stopped mid-folder (counted from the resuming run's start), or a
//! connection broke with APPENDs in flight (counted from the break), the destination folder
//! is read only once a grace period has passed.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{Engine, FolderProgress, Task};
use crate::event::{Event, Side};

/// How long a server may still store an APPEND after its client is gone.
pub(crate) const GRACE: Duration = Duration::from_secs(5);

pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Until when a folder recorded with APPENDs in flight (`in_flight_at`) may still change.
/// Counted from now, not from that checkpoint: the run may have gone on after it (up to
/// `state::CHECKPOINT_INTERVAL`, or longer while one message streamed) before it was
/// stopped, and starting this run may take seconds on a loaded machine. Both ate into a
/// grace counted from the checkpoint, and a batch could land after the index.
pub(crate) fn settle_deadline() -> SystemTime {
    SystemTime::now() + GRACE
}

impl Engine {
    /// Before a folder's destination is indexed: wait out the grace of APPENDs an earlier
    /// run or a broken connection may have left in flight. Ctrl-C ends the wait.
    pub(super) fn await_late_appends(&self, task: &Task, prog: &FolderProgress, uncertain: bool) {
        let after_break = prog.broke_off.filter(|_| uncertain).map(|t| t + GRACE);
        let Some(until) = task.late_appends_until.into_iter().chain(after_break).max() else {
            return;
        };
        let Ok(left) = until.duration_since(SystemTime::now()) else {
            return;
        };
        self.emit(Event::Detail {
            side: Some(Side::Destination),
            message: format!(
                "waiting {:.1} s before reading '{}': APPENDs sent before the interruption may still be stored",
                left.as_secs_f64(),
                task.map.dest
            ),
        });
        while !self.cancelled() {
            let Ok(left) = until.duration_since(SystemTime::now()) else {
                return;
            };
            std::thread::sleep(left.min(Duration::from_millis(100)));
        }
    }
}

//! What the engine does about an error: retry, give up one message, give up one folder, or
//! end the job. One function decides, from the side, the phase and the error, so the rules
//! live in one table (it can move into the IMAP layer once errors carry response codes).

use std::sync::atomic::Ordering;

use super::connections::Lowering;
use super::{Engine, Pair, SResult, SideErr, retry};
use crate::event::{Event, Side};
#[cfg(test)]
use crate::imap::Kind;
use crate::imap::{self, ImapError, Phase, Signal};

/// The kind of command that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    /// Opening or asking about one folder: EXAMINE, SELECT, STATUS.
    Open,
    /// CREATE of one destination folder.
    Create,
    /// Reading one folder's messages (UID SEARCH, FETCH) or anything while copying it.
    Copy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Disposition {
    /// Reconnect and try again (up to `--retries`).
    Retry,
    /// This folder cannot be done now; the others go on, the next run tries it again.
    FailFolder,
    /// This message cannot be done now; the folder goes on. (APPEND answers are still
    /// judged in copy.rs; this is their row once they move here.)
    #[allow(dead_code)]
    FailMessage,
    /// Nothing can go on: end the job with this exit code.
    EndJob(i32),
    /// Nothing more can be done now (the bandwidth cap): the run stops as interrupted.
    Interrupt,
}

/// The engine's view of the one table, [`ImapError::disposition`] (side, phase, response
/// code): what a folder's step does about an error. Account-wide commands such as LIST are
/// not in it: without them nothing can go on.
pub(crate) fn disposition(err: &ImapError, side: Side, op: Op) -> Disposition {
    match err.disposition(side, phase(side, op)) {
        imap::Disposition::Retry => Disposition::Retry,
        imap::Disposition::EndJob(code) => Disposition::EndJob(code),
        imap::Disposition::Interrupt => Disposition::Interrupt,
        // A step of one folder: what fails a message, a vanished folder or one to create
        // again is decided by the copy itself; here the folder's step fails alone.
        imap::Disposition::FailFolder
        | imap::Disposition::FailMessage
        | imap::Disposition::FolderGone
        | imap::Disposition::CreateAndRetry => Disposition::FailFolder,
    }
}

/// Did the server ask us to slow down (a provider signal, not a broken link)?
pub(crate) fn is_signal(e: &SideErr, op: Op) -> bool {
    e.err.signal(e.side, phase(e.side, op)).is_some()
}

fn phase(side: Side, op: Op) -> Phase {
    match (op, side) {
        (Op::Open, _) => Phase::Open,
        (Op::Create, _) => Phase::Create,
        (Op::Copy, Side::Source) => Phase::Fetch,
        (Op::Copy, Side::Destination) => Phase::Append,
    }
}

impl Engine {
    /// One folder's step (`op`) with the table applied: what calls for a retry runs again on
    /// a reopened `pair`, up to `--retries` times. `Ok(Ok(v))`: done. `Ok(Err(e))`: this
    /// folder's failure, for the caller to report; when the session gave up, `pair` is fresh
    /// again for the next folder. `Err(e)`: the job ends.
    pub(crate) fn for_folder<T>(
        &self,
        pair: &mut Pair,
        op: Op,
        mut step: impl FnMut(&mut Pair) -> SResult<T>,
    ) -> SResult<Result<T, SideErr>> {
        let mut attempt = 0u32;
        loop {
            let e = match step(pair) {
                Ok(v) => return Ok(Ok(v)),
                Err(e) => e,
            };
            match disposition(&e.err, e.side, op) {
                Disposition::EndJob(_) | Disposition::Interrupt => return Err(e),
                Disposition::FailFolder | Disposition::FailMessage => return Ok(Err(e)),
                Disposition::Retry => {
                    let give_up = attempt >= self.opts.retries || self.cancelled();
                    attempt += 1;
                    if !give_up {
                        self.note_reconnect(e.side, &e.err);
                    }
                    let fresh = self.reopen(if give_up { 1 } else { attempt })?;
                    let old = std::mem::replace(pair, fresh);
                    old.src.abandon();
                    old.dst.abandon();
                    if give_up {
                        return Ok(Err(e));
                    }
                }
            }
        }
    }
}

impl Engine {
    /// A server said too many connections, throttled or unavailable (the table's
    /// [`Signal::FewerConnections`]): use one connection pair fewer for the rest of the run,
    /// saying so once per change. The caller backs off before it reconnects.
    pub(crate) fn slow_down(&self, e: &SideErr, op: Op) -> Option<Lowering> {
        if e.err.signal(e.side, phase(e.side, op)) != Some(Signal::FewerConnections) {
            return None;
        }
        let lowering = self.conns.lower();
        if let Lowering::Lowered { from, to } = lowering {
            self.emit(Event::ConnectionsReduced {
                side: e.side,
                host: self.server(e.side).endpoint.host.clone(),
                from,
                to,
                reason: e.err.message.clone(),
            });
        }
        Some(lowering)
    }

    /// A worker's login was refused for too many connections: once a worker over the
    /// lowered limit has left, it goes on (after a short backoff) without spending its
    /// retries. `false`: not that refusal, or no worker of ours will leave (the connections
    /// are someone else's), so the budget decides.
    pub(crate) fn login_refused_for_now(&self, e: &SideErr) -> bool {
        match self.slow_down(e, Op::Open) {
            Some(Lowering::Lowered { .. } | Lowering::Pending) => {
                if !self.conns.wait_settled(|| self.cancelled()) {
                    return false;
                }
                // A connection just logged out may still count at the server for a moment.
                self.pause(retry::backoff(1));
                true
            }
            Some(Lowering::Floor) | None => false,
        }
    }

    /// The account's bandwidth cap (the table's [`Signal::Capped`]): every worker stops as on
    /// Ctrl-C, the state is saved, and the run ends as interrupted with the resume hint. Says
    /// why once. `false` for any other error.
    pub(crate) fn stop_if_capped(&self, e: &SideErr) -> bool {
        if e.err.signal(e.side, Phase::Fetch) != Some(Signal::Capped) {
            return false;
        }
        if !self.capped.swap(true, Ordering::SeqCst) {
            self.emit(Event::Warning {
                message: format!(
                    "the {} server {} has reached the account's bandwidth limit ({}); stopping now: run the same command later (such a limit is lifted after some hours) to go on where this run stopped",
                    e.side.label(),
                    self.server(e.side).endpoint.host,
                    e.err.message
                ),
                folder: None,
            });
        }
        true
    }
}

/// The server says the trouble is its own ([SERVERBUG], [UNAVAILABLE], [LIMIT] …), not that
/// the folder is not a mailbox.
pub(crate) fn server_trouble(err: &ImapError) -> bool {
    err.code.as_ref().is_some_and(imap::is_transient)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit;

    fn e(kind: Kind, text: &str) -> ImapError {
        ImapError::new(kind, text)
    }

    #[test]
    fn only_a_destination_over_quota_ends_the_job() {
        let q = e(Kind::OverQuota, "Quota exceeded (mailbox for user is full)");
        assert_eq!(
            disposition(&q, Side::Destination, Op::Copy),
            Disposition::EndJob(exit::DESTINATION)
        );
        // "Quotations" vanished: that folder only (the IMAP layer says over quota only for an
        // APPEND answer with [OVERQUOTA] or a code-less quota text).
        let gone = e(Kind::No, "Mailbox doesn't exist: Quotations");
        assert_eq!(
            disposition(&gone, Side::Source, Op::Open),
            Disposition::FailFolder
        );
        assert_eq!(
            disposition(&gone, Side::Destination, Op::Open),
            Disposition::FailFolder
        );
    }

    #[test]
    fn a_no_fails_one_folder_and_drops_are_retried() {
        let no = e(Kind::No, "Mailbox is broken");
        for op in [Op::Open, Op::Create, Op::Copy] {
            for side in [Side::Source, Side::Destination] {
                assert_eq!(disposition(&no, side, op), Disposition::FailFolder);
            }
        }
        assert_eq!(
            disposition(&e(Kind::Dropped, "x"), Side::Source, Op::Open),
            Disposition::Retry
        );
        assert_eq!(
            disposition(&e(Kind::Auth, "x"), Side::Source, Op::Copy),
            Disposition::EndJob(exit::AUTH)
        );
    }
}

//! Giant messages (issue 12 item 6): a message larger than a batch is copied alone, from the
//! source's FETCH literal straight into the destination's APPEND literal, chunk by chunk,
//! so memory stays bounded whatever its size.
//!
//! As soon as the source announces the body's size, the APPEND is announced with that size
//! (its `+` awaited unless LITERAL+), then every piece read from the source is written to
//! the destination and hashed on the way (for the proof of `--delete-source` and the early
//! sample). A break on either side mid-stream drops both connections: a destination that got
//! a short literal cannot store it, and the message stays open in the ledger, so the next
//! attempt (after indexing the destination) copies it again. Nothing is half-stored.
//!
//! What a batch does and a stream cannot: a body is sent before it is seen whole, so a NUL
//! byte goes in a plain literal (a notice says so) and Dovecot's NUL-as-0x80 in `BODY[]` is
//! not repaired from `BINARY[]`; the proof reads such a copy back the same way, so it matches.

use super::copy::{Sent, source_refused};
use super::*;
use crate::digest::Hasher;
use crate::imap::{AppendStart, BodySink, StreamedAppend};

/// Header bytes kept from the first chunks to read the Message-ID.
const HEAD_MAX: usize = 64 * 1024;
/// Bytes gathered before they are written to the destination: the wire hands over one TLS
/// record (16 KiB) at a time, and a write per record costs wake-ups on every process of the
/// chain.
const WRITE_CHUNK: usize = 256 * 1024;

/// `BTSX_STREAM_ABOVE` (bytes): a hidden knob for tests, to stream messages of a few MiB.
pub(super) fn stream_above_from_env() -> Option<u64> {
    std::env::var("BTSX_STREAM_ABOVE").ok()?.trim().parse().ok()
}

impl Engine {
    /// Is `m` copied alone, streamed (larger than a batch, or than `stream_above`)?
    pub(super) fn streams(&self, m: &MessageMeta) -> bool {
        m.size > self.opts.stream_above.unwrap_or(self.opts.batch_bytes)
    }

    /// Copy one giant message alone, streamed (nothing else in flight on `dst`). Settles it
    /// (stored, or failed with its reason), or leaves its APPEND's answer in flight (returned,
    /// to be settled like a batch's while the next batch is fetched), or returns the error
    /// that broke the stream, with the message left open.
    pub(super) fn stream_alone(
        &self,
        src: &mut Session,
        dst: &mut Session,
        task: &Task,
        prog: &mut FolderProgress,
        mut s: Sent,
    ) -> SResult<Option<(Pending, Vec<Sent>)>> {
        if prog.suspects.get(&s.uid) == Some(&true) {
            let why = "the source closes the session whenever this message is fetched";
            self.fail_streamed(task, prog, &s, why.into());
            return Ok(None);
        }
        if let Some(t) = &self.opts.throttle {
            t.acquire(s.size);
        }
        if self.opts.verbose {
            self.emit(Event::Detail {
                side: Some(Side::Destination),
                message: format!(
                    "APPEND 1 message ({} bytes) to {}, streamed from the source",
                    s.size, task.map.dest
                ),
            });
        }
        prog.ledger.sent([s.uid]);
        let all: Vec<String> = s.system_flags.iter().chain(&s.keywords).cloned().collect();
        // As it is, then (refused with keywords) once more without them, read again.
        let mut attempts: Vec<&[String]> = vec![&all];
        if !s.keywords.is_empty() {
            attempts.push(&s.system_flags);
        }
        let want_hash = self.opts.delete_source || !prog.sampled;
        let mut reason = String::new();
        for flags in attempts {
            let mut pipe = Pipe {
                dst: &mut *dst,
                mailbox: task.map.dest_wire.as_bytes(),
                flags,
                date: s.date,
                state: PipeState::Idle,
                hasher: want_hash.then(Hasher::default),
                head: Vec::new(),
                out: Vec::new(),
                bytes: 0,
                dst_broke: false,
            };
            let got = src.fetch_streamed(s.uid, &mut pipe);
            let hash = pipe.hasher.as_ref().map(Hasher::finish);
            let (head, bytes) = (std::mem::take(&mut pipe.head), pipe.bytes);
            match got {
                Ok(_) if !matches!(pipe.state, PipeState::Idle) => {}
                Ok(_) => {
                    // No body came: nothing was sent to the destination.
                    let why = "the message disappeared from the source during the run";
                    self.fail_streamed(task, prog, &s, why.into());
                    return Ok(None);
                }
                Err(e) if pipe.dst_broke => return Err(e).on(Side::Destination),
                // A NO that is not about the server's state (such as [UNAVAILABLE]) is about
                // this message; nothing reached the destination.
                // (Nor the bandwidth cap, which ends the run.)
                Err(e) if source_refused(&e) && matches!(pipe.state, PipeState::Idle) => {
                    let why = format!("the source would not give it: {}", e.message);
                    self.fail_streamed(task, prog, &s, why);
                    return Ok(None);
                }
                Err(mut e) => {
                    if e.kind == Kind::Dropped && e.message.contains("closed the session") {
                        // It was alone: after the reconnect it fails with this reason.
                        let alone = prog.suspects.entry(s.uid).or_insert(false);
                        *alone = true;
                    }
                    if matches!(pipe.state, PipeState::Writing(_)) && !e.is_recoverable() {
                        // The destination holds an unfinished APPEND: both connections go.
                        e = ImapError::new(
                            Kind::Protocol,
                            format!("{e}; the streamed APPEND was cut"),
                        );
                    }
                    return Err(e).on(Side::Source);
                }
            }
            s.message_id = index::message_id(&head);
            let outcome = match pipe.finish().on(Side::Destination)? {
                Err(answered) => answered,
                // Without keywords there is no second try: its answer is settled like a
                // batch's, while the next batch is fetched.
                Ok(pending) if s.keywords.is_empty() => {
                    (s.size, s.hash) = (bytes, hash);
                    return Ok(Some((pending, vec![s])));
                }
                Ok(pending) => {
                    let mut answers = dst.append_finish(pending).on(Side::Destination)?;
                    let no = || AppendOutcome::Refused("no answer".into());
                    answers.pop().unwrap_or_else(no)
                }
            };
            match outcome {
                AppendOutcome::Stored(uid) => {
                    (s.size, s.hash) = (bytes, hash);
                    self.stored(prog, &s, uid, uid);
                    if flags.len() < all.len() {
                        self.keywords_lost(task, &s, &reason);
                    }
                    self.progress(task, prog);
                    self.checkpoint(task, prog, FolderStatus::Interrupted);
                    return Ok(None);
                }
                AppendOutcome::Refused(why) | AppendOutcome::BatchRefused(why) => reason = why,
            }
        }
        self.fail_streamed(
            task,
            prog,
            &s,
            format!("the destination refused it: {reason}"),
        );
        Ok(None)
    }

    fn fail_streamed(&self, task: &Task, prog: &mut FolderProgress, s: &Sent, reason: String) {
        self.fail(task, prog, s.uid, s.message_id.clone(), reason);
        self.progress(task, prog);
        self.checkpoint(task, prog, FolderStatus::Interrupted);
    }
}

/// Where the streamed APPEND stands.
enum PipeState {
    /// The source has not announced the body yet.
    Idle,
    /// The destination takes the literal.
    Writing(StreamedAppend),
    /// The destination answered instead of taking it: the source's bytes are read (and
    /// hashed) to keep that connection in step, and dropped.
    Answered(Result<AppendOutcome, ImapError>),
}

/// The source's body literal, piped into the destination's APPEND.
struct Pipe<'a> {
    dst: &'a mut Session,
    mailbox: &'a [u8],
    flags: &'a [String],
    date: Option<chrono::DateTime<chrono::FixedOffset>>,
    state: PipeState,
    hasher: Option<Hasher>,
    /// The header's first bytes, for the Message-ID.
    head: Vec<u8>,
    /// Read, not yet written to the destination (at most [`WRITE_CHUNK`]).
    out: Vec<u8>,
    bytes: u64,
    /// The destination failed: the error is about it (the source is merely out of step).
    dst_broke: bool,
}

impl Pipe<'_> {
    /// Once the whole body went through: the APPEND ended, its answer still to read, or
    /// the answer the destination gave instead of taking the literal.
    fn finish(self) -> Result<Result<Pending, AppendOutcome>, ImapError> {
        match self.state {
            PipeState::Writing(mut a) => {
                self.dst.append_write(&mut a, &self.out)?;
                self.dst.append_close(a).map(Ok)
            }
            PipeState::Answered(r) => r.map(Err),
            PipeState::Idle => Err(ImapError::new(
                Kind::Protocol,
                "the source returned the message without its body",
            )),
        }
    }

    fn dst_err(&mut self, e: ImapError) -> ImapError {
        self.dst_broke = true;
        e
    }
}

impl BodySink for Pipe<'_> {
    fn begin(&mut self, n: usize) -> Result<usize, ImapError> {
        if !matches!(self.state, PipeState::Idle) {
            return Err(ImapError::new(
                Kind::Protocol,
                "the source sent a second body for one message; starting a new session",
            ));
        }
        self.state = match self
            .dst
            .append_start(self.mailbox, self.flags, self.date, n as u64)
        {
            Ok(AppendStart::Go(a)) => PipeState::Writing(a),
            Ok(AppendStart::Answered(r)) => PipeState::Answered(r),
            Err(e) => return Err(self.dst_err(e)),
        };
        Ok(0)
    }

    fn chunk(&mut self, data: &[u8]) -> Result<(), ImapError> {
        self.bytes += data.len() as u64;
        if let Some(h) = &mut self.hasher {
            h.update(data);
        }
        if self.head.len() < HEAD_MAX && memchr::memmem::find(&self.head, b"\r\n\r\n").is_none() {
            let take = (HEAD_MAX - self.head.len()).min(data.len());
            self.head.extend_from_slice(&data[..take]);
        }
        if let PipeState::Writing(a) = &mut self.state {
            if self.out.capacity() == 0 {
                self.out.reserve_exact(WRITE_CHUNK + 64 * 1024);
            }
            self.out.extend_from_slice(data);
            if self.out.len() >= WRITE_CHUNK {
                let r = self.dst.append_write(a, &self.out);
                self.out.clear();
                r.map_err(|e| self.dst_err(e))?;
            }
        }
        Ok(())
    }
}

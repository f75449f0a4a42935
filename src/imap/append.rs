//! APPEND: pipelined with LITERAL+, or one MULTIAPPEND per batch, through the one encoder.

use chrono::{DateTime, FixedOffset};

use super::encode::Command;
use super::error::{ImapError, Kind, says_quota};
use super::parse::{Code, Status, StatusResp};
use super::session::{Done, Session};

/// One message to append.
pub struct AppendItem<'a> {
    pub body: &'a [u8],
    pub flags: &'a [String],
    pub date: Option<DateTime<FixedOffset>>,
}

/// The destination's answer to one APPEND.
#[derive(Debug, Clone)]
pub enum AppendOutcome {
    /// Stored; the new UID with UIDPLUS. For a MULTIAPPEND, each message's own UID when
    /// the APPENDUID set names one per message, else the highest of the batch.
    Stored(Option<u32>),
    /// NO or BAD for this message alone.
    Refused(String),
    /// A MULTIAPPEND was refused as a whole (it is all or nothing): nothing of the batch was
    /// stored, and which message the server objected to is unknown.
    BatchRefused(String),
}

/// APPENDs written but not yet answered.
#[must_use]
pub struct Pending {
    tags: Vec<String>,
    done: Done,
    /// One MULTIAPPEND covering this many messages (under `tags[0]`).
    multi: Option<usize>,
}

impl Pending {
    pub fn len(&self) -> usize {
        self.tags.len()
    }
    pub fn is_empty(&self) -> bool {
        self.tags.is_empty()
    }
}

/// An APPEND whose literal the caller writes piece by piece ([`Session::append_start`]):
/// a giant message streamed from the source, never held whole.
#[must_use]
pub struct StreamedAppend {
    tag: String,
    /// Literal bytes still to write.
    left: u64,
    size: u64,
    /// A NUL byte went out in a plain literal (noted once).
    nul_noted: bool,
}

/// What the destination said to an announced APPEND before its literal.
pub enum AppendStart {
    /// Write the literal now ([`Session::append_write`], then [`Session::append_close`]).
    Go(StreamedAppend),
    /// It answered instead of taking the literal: refused, or an error the engine acts on.
    Answered(Result<AppendOutcome, ImapError>),
}

/// Does a body need `~{n}` (RFC 3516) to arrive unchanged? NUL is the one byte a plain
/// literal cannot carry.
pub fn needs_binary(body: &[u8]) -> bool {
    memchr::memchr(0, body).is_some()
}

impl Session {
    /// Write APPENDs for `items` into `mailbox` (wire name). With LITERAL+ nothing is read
    /// until [`Session::append_finish`], so the server works while we fetch the next batch.
    pub fn append_send(
        &mut self,
        mailbox: impl AsRef<[u8]>,
        items: &[AppendItem<'_>],
    ) -> Result<Pending, ImapError> {
        let mailbox = mailbox.as_ref();
        let mut pending = Pending {
            tags: Vec::with_capacity(items.len()),
            done: Done::new(),
            multi: None,
        };
        let mut out: Vec<u8> = Vec::with_capacity(64 * 1024);
        if items.len() > 1 && self.caps.multiappend && self.caps.literal_plus {
            let tag = self.tag();
            let mut cmd = Command::new("APPEND").astring(mailbox);
            for item in items {
                cmd = self.message(cmd, item);
            }
            self.send(&tag, cmd, &mut out, &mut pending.done, &mut |_| {})?;
            pending.tags.push(tag);
            pending.multi = Some(items.len());
        } else {
            for item in items {
                let tag = self.tag();
                let cmd = self.message(Command::new("APPEND").astring(mailbox), item);
                self.send(&tag, cmd, &mut out, &mut pending.done, &mut |_| {})?;
                pending.tags.push(tag);
            }
        }
        self.write(&out)?;
        self.flush()?;
        Ok(pending)
    }

    /// ` (flags) "date" {n}` + body; never \Recent; `~{n}` for a body with NULs where the
    /// server offers BINARY.
    fn message<'a>(&mut self, cmd: Command<'a>, item: &AppendItem<'a>) -> Command<'a> {
        let flags = flag_list(item.flags);
        let date = date_arg(item.date);
        let nul = needs_binary(item.body);
        let binary = self.caps.binary && nul;
        if nul && !binary {
            self.note_not_exact(item.body);
        }
        cmd.raw(&format!(" ({flags}){date}"))
            .literal(item.body, binary)
    }

    /// Warn that a message with NUL bytes cannot arrive byte-exact (no BINARY here).
    fn note_not_exact(&mut self, body: &[u8]) {
        let id = message_id(body).unwrap_or_else(|| "without Message-ID".into());
        let text = format!(
            "message {id} ({} bytes) contains NUL bytes and {} does not offer BINARY: it cannot be stored byte-exact",
            body.len(),
            self.addr
        );
        self.notice(super::session::NoticeKind::NotByteExact, &text);
    }

    /// Announce an APPEND of a message of `size` bytes whose bytes are not at hand yet (a
    /// giant message streamed from the source): flags and date as [`Session::append_send`]
    /// sends them, then `{size}` and the server's `+` (or `{size+}` with LITERAL+). A plain
    /// literal: whether the bytes hold a NUL is not known before they pass.
    pub fn append_start(
        &mut self,
        mailbox: impl AsRef<[u8]>,
        flags: &[String],
        date: Option<DateTime<FixedOffset>>,
        size: u64,
    ) -> Result<AppendStart, ImapError> {
        let tag = self.tag();
        let cmd = Command::new("APPEND")
            .astring(mailbox.as_ref())
            .raw(&format!(" ({}){}", flag_list(flags), date_arg(date)))
            .announce(size);
        let mut out = Vec::new();
        let mut done = Done::new();
        self.send(&tag, cmd, &mut out, &mut done, &mut |_| {})?;
        if let Some(r) = done.remove(&tag) {
            return Ok(AppendStart::Answered(self.outcome(r)));
        }
        self.write(&out)?;
        Ok(AppendStart::Go(StreamedAppend {
            tag,
            left: size,
            size,
            nul_noted: false,
        }))
    }

    /// The next bytes of a streamed APPEND's literal (never more than announced).
    pub fn append_write(&mut self, a: &mut StreamedAppend, data: &[u8]) -> Result<(), ImapError> {
        if data.len() as u64 > a.left {
            return Err(ImapError::new(
                Kind::Protocol,
                format!(
                    "a streamed message is longer than the {} bytes announced to {}",
                    a.size, self.addr
                ),
            ));
        }
        if !a.nul_noted && needs_binary(data) {
            a.nul_noted = true;
            let text = format!(
                "a message of {} bytes streamed to {} contains NUL bytes: it went as a plain literal and may not be stored byte-exact",
                a.size, self.addr
            );
            self.notice(super::session::NoticeKind::NotByteExact, &text);
        }
        a.left -= data.len() as u64;
        self.write(data)
    }

    /// End a streamed APPEND whose literal is complete; its answer is read with
    /// [`Session::append_finish`] (so the next batch can be fetched while the server stores
    /// it). A literal cut short is never ended: the caller drops the connection, and the
    /// server aborts the APPEND.
    pub fn append_close(&mut self, a: StreamedAppend) -> Result<Pending, ImapError> {
        if a.left > 0 {
            return Err(ImapError::new(
                Kind::Protocol,
                format!(
                    "a streamed message to {} ended {} bytes short",
                    self.addr, a.left
                ),
            ));
        }
        self.write(b"\r\n")?;
        self.flush()?;
        Ok(Pending {
            tags: vec![a.tag],
            done: Done::new(),
            multi: None,
        })
    }

    /// Read the answers to every APPEND in `pending`, one outcome per message, in order.
    /// Every answer is read before an error is returned, so the session stays in step.
    pub fn append_finish(&mut self, mut pending: Pending) -> Result<Vec<AppendOutcome>, ImapError> {
        for tag in &pending.tags {
            self.read_until(tag, None, &mut pending.done, &mut |_| {})?;
        }
        let mut answers = Vec::with_capacity(pending.tags.len());
        let mut first_err: Option<ImapError> = None;
        // The last answer's APPENDUID set, every UID (a MULTIAPPEND's names each message's).
        let mut uids = Vec::new();
        for tag in &pending.tags {
            let r = pending.done.remove(tag).unwrap_or(StatusResp {
                status: Status::No,
                code: None,
                text: "no answer".into(),
            });
            uids = match &r.code {
                Some(Code::AppendUid(_, set)) if r.status == Status::Ok && self.caps.uidplus => {
                    uid_list(set)
                }
                _ => Vec::new(),
            };
            match self.outcome(r) {
                Ok(o) => answers.push(o),
                Err(e) => {
                    // An over-quota answer decides for the job; keep the gravest.
                    if first_err.as_ref().is_none_or(|f| f.kind != Kind::OverQuota) {
                        first_err = Some(e);
                    }
                    answers.push(AppendOutcome::Refused(String::new()));
                }
            }
        }
        if let Some(e) = first_err {
            return Err(e);
        }
        if let Some(n) = pending.multi {
            let outcome = match answers.pop() {
                Some(AppendOutcome::Refused(why)) => AppendOutcome::BatchRefused(why),
                Some(o) => o,
                None => AppendOutcome::BatchRefused("no answer".into()),
            };
            // RFC 4315: the set lists the new UIDs in the order the messages were sent. Only
            // believed when it names exactly one distinct UID per message.
            if matches!(outcome, AppendOutcome::Stored(_)) && uids.len() == n {
                let mut distinct = uids.clone();
                distinct.sort_unstable();
                distinct.dedup();
                if distinct.len() == n {
                    return Ok(uids
                        .into_iter()
                        .map(|u| AppendOutcome::Stored(Some(u)))
                        .collect());
                }
            }
            return Ok(vec![outcome; n]);
        }
        Ok(answers)
    }

    /// One APPEND's answer: stored, refused for this message, or an error the engine acts
    /// on (over quota ends the job; `[UNAVAILABLE]` and kin are retried; `[TRYCREATE]`).
    fn outcome(&self, r: StatusResp) -> Result<AppendOutcome, ImapError> {
        if r.status == Status::Ok {
            // APPENDUID belongs to UIDPLUS: a server that does not offer it is not believed.
            let uid = match &r.code {
                Some(Code::AppendUid(_, set)) if self.caps.uidplus => max_uid(set),
                _ => None,
            };
            return Ok(AppendOutcome::Stored(uid));
        }
        let quota = r.code == Some(Code::OverQuota) || (r.code.is_none() && says_quota(&r.text));
        if quota {
            let mut e = ImapError::from_status(&r, &self.addr);
            e.kind = Kind::OverQuota;
            e.message = format!(
                "the destination {} is over quota: {}",
                self.addr,
                super::error::truncate(&r.text, 120)
            );
            return Err(e);
        }
        let e = ImapError::from_status(&r, &self.addr);
        // [LIMIT] on APPEND is about this message (Dovecot: "Mail size is too large"):
        // sending it again would meet the same limit.
        if r.code == Some(Code::Limit) {
            return Ok(AppendOutcome::Refused(super::error::truncate(
                &e.message, 200,
            )));
        }
        // A provider signal (the bandwidth cap in words) is about the account, not this
        // message: the engine decides (see `ImapError::signal`).
        let signal = e.signal(crate::event::Side::Destination, super::Phase::Append);
        if e.is_recoverable() || r.code == Some(Code::TryCreate) || signal.is_some() {
            return Err(e);
        }
        Ok(AppendOutcome::Refused(super::error::truncate(
            &e.message, 200,
        )))
    }
}

/// An APPEND's flag list, never \Recent.
fn flag_list(flags: &[String]) -> String {
    flags
        .iter()
        .filter(|f| !f.eq_ignore_ascii_case("\\Recent"))
        .cloned()
        .collect::<Vec<_>>()
        .join(" ")
}

/// ` "date-time"`, or nothing.
fn date_arg(date: Option<DateTime<FixedOffset>>) -> String {
    date.map(|d| format!(" \"{}\"", d.format("%d-%b-%Y %H:%M:%S %z")))
        .unwrap_or_default()
}

/// The Message-ID of a message, from its header.
fn message_id(body: &[u8]) -> Option<String> {
    let end = memchr::memmem::find(body, b"\r\n\r\n").unwrap_or(body.len());
    let head = String::from_utf8_lossy(&body[..end]);
    head.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case("Message-ID")
                .then(|| v.trim().to_string())
        })
        .filter(|v| !v.is_empty())
}

/// The highest UID of an APPENDUID set ("42", "31:130", "5,9:12,7").
fn max_uid(set: &str) -> Option<u32> {
    set.split([',', ':'])
        .filter_map(|u| u.parse::<u32>().ok())
        .max()
}

/// Every UID of an APPENDUID set, in the order given ("3955,3960:3962"); empty when it does
/// not parse or a range is implausibly large. A range is ascending whichever way it is
/// written.
fn uid_list(set: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for part in set.split(',') {
        let bounds = part.split_once(':').unwrap_or((part, part));
        let (Ok(a), Ok(b)) = (bounds.0.parse::<u32>(), bounds.1.parse::<u32>()) else {
            return Vec::new();
        };
        let (lo, hi) = (a.min(b), a.max(b));
        if hi - lo > 100_000 {
            return Vec::new();
        }
        out.extend(lo..=hi);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appenduid_sets() {
        assert_eq!(max_uid("42"), Some(42));
        assert_eq!(max_uid("31:130"), Some(130));
        assert_eq!(max_uid("5,9:12,7"), Some(12));
        assert_eq!(max_uid("x"), None);
        assert_eq!(uid_list("3955,3960:3962"), vec![3955, 3960, 3961, 3962]);
        assert_eq!(uid_list("7"), vec![7]);
        assert_eq!(uid_list("9:7"), vec![7, 8, 9]);
        assert!(uid_list("x").is_empty());
        assert!(uid_list("1:4000000").is_empty());
        assert!(needs_binary(b"a\0b"));
        assert!(!needs_binary(b"ab\x80"));
    }
}

//! One logged-in IMAP connection: after login every byte is read by [`super::reader`],
//! parsed by [`super::parse`] and every command written through [`super::encode`].
//!
//! The operations the engine uses live in `ops.rs` and `append.rs`; this file holds the
//! session itself, the command loop and the handling of untagged responses that may come
//! at any time (`* NO`, `* BAD`, `[ALERT]`, `* BYE`).

use std::collections::HashMap;

use super::encode::{Command, Part};
use super::error::{ImapError, Kind, truncate};
use super::parse::{self, Code, Response, Status, StatusResp};
use super::reader::{self, BodySink, Frame};
use super::wire::{Timeouts, TlsOptions, Wire};
use crate::endpoint::Endpoint;
use crate::event::ConnState;
use crate::secret::{Secret, SecretSource};

/// How to log in.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub user: String,
    pub auth: Auth,
}

#[derive(Debug, Clone)]
pub enum Auth {
    Password(Secret),
    /// An OAuth2 access token, fetched again on every connect so an external refresher can
    /// keep it fresh.
    OAuth2(SecretSource),
}

/// What the server can do that changes how we talk to it (from its CAPABILITY response).
#[derive(Debug, Clone, Default)]
pub struct Caps {
    /// LITERAL+ (any size) — APPENDs can be pipelined without waiting for "+".
    pub literal_plus: bool,
    /// LITERAL- — non-synchronizing literals up to 4096 bytes.
    pub literal_minus: bool,
    pub uidplus: bool,
    pub special_use: bool,
    pub namespace: bool,
    /// APPENDLIMIT=N: the largest message the server accepts.
    pub append_limit: Option<u64>,
    /// MULTIAPPEND (RFC 3502): many messages in one APPEND, stored in one transaction.
    pub multiappend: bool,
    /// BINARY (RFC 3516): `BINARY.PEEK[]` and `~{n}` literals.
    pub binary: bool,
    /// LIST-EXTENDED (RFC 5258): `RETURN (...)` options on LIST.
    pub list_extended: bool,
    pub utf8_accept: bool,
    /// LIST-STATUS (RFC 5819): every folder's STATUS in one LIST.
    pub list_status: bool,
    /// X-GM-EXT-1: Gmail's X-GM-MSGID identifies a message across folders.
    pub gmail: bool,
}

impl Caps {
    pub(crate) fn from_list(caps: &[String]) -> Caps {
        let has = |c: &str| caps.iter().any(|x| x.eq_ignore_ascii_case(c));
        Caps {
            literal_plus: has("LITERAL+"),
            literal_minus: has("LITERAL-"),
            uidplus: has("UIDPLUS"),
            multiappend: has("MULTIAPPEND"),
            special_use: has("SPECIAL-USE"),
            namespace: has("NAMESPACE"),
            binary: has("BINARY"),
            list_extended: has("LIST-EXTENDED"),
            utf8_accept: has("UTF8=ACCEPT"),
            list_status: has("LIST-STATUS"),
            gmail: has("X-GM-EXT-1"),
            append_limit: caps.iter().find_map(|c| {
                let (k, v) = c.split_once('=')?;
                if k.eq_ignore_ascii_case("APPENDLIMIT") {
                    v.parse().ok()
                } else {
                    None
                }
            }),
        }
    }
}

/// Something the server said that is not an answer to a command: a person should see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub kind: NoticeKind,
    pub text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeKind {
    /// `[ALERT]` (RFC 3501 §7.1: must be shown to the user).
    Alert,
    /// An untagged `* NO`.
    No,
    /// An untagged `* BAD`.
    Bad,
    /// btsx itself: a message cannot be copied byte-exact (NUL bytes, no BINARY).
    NotByteExact,
}

pub struct Session {
    pub(super) wire: Wire,
    pub(super) addr: String,
    pub caps: Caps,
    next_tag: u64,
    /// The last response read; its buffer is reused.
    frame: Frame,
    notices: Vec<Notice>,
    /// Where notices go as they arrive; without one they wait in `notices`.
    on_notice: Option<NoticeFn>,
    /// LOGOUT was sent: a BYE is the expected answer, not a failure.
    logging_out: bool,
}

/// Receives server notices as they arrive (the engine turns them into warning events).
pub type NoticeFn = Box<dyn FnMut(Notice) + Send>;

/// Send state changes to the caller (connecting, connected, authenticating, authenticated).
pub type StateFn<'a> = &'a mut dyn FnMut(ConnState);

/// Tagged answers read while other commands were still being written (pipelining).
pub(super) type Done = HashMap<String, StatusResp>;

impl Session {
    pub fn open(
        ep: &Endpoint,
        creds: &Credentials,
        tls: &TlsOptions,
        timeouts: Timeouts,
        on_state: StateFn<'_>,
    ) -> Result<Session, ImapError> {
        let addr = ep.display_addr();
        on_state(ConnState::Connecting);
        let (wire, greeting) = Wire::connect(ep, tls, timeouts)?;
        on_state(ConnState::Connected);
        on_state(ConnState::Authenticating);
        if greeting.len() >= 9 && greeting[..9].eq_ignore_ascii_case(b"* PREAUTH") {
            return Err(ImapError::new(
                Kind::Auth,
                format!("{addr} pre-authenticated the connection; btsx needs a login"),
            ));
        }
        let mut s = Session {
            wire,
            addr,
            caps: Caps::default(),
            next_tag: 0,
            frame: Frame::default(),
            notices: Vec::new(),
            on_notice: None,
            logging_out: false,
        };
        let before = s.capability_list()?;
        super::login::login(&s.wire, ep, creds, &before)?;
        on_state(ConnState::Authenticated);
        let caps = s.capability_list()?;
        s.caps = Caps::from_list(&caps);
        Ok(s)
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// What the server said outside the answers to commands since the last call: `[ALERT]`
    /// texts and untagged NO/BAD. The engine emits them as warnings.
    pub fn take_notices(&mut self) -> Vec<Notice> {
        std::mem::take(&mut self.notices)
    }

    /// Hand every notice to `f` from now on (those already received first).
    pub fn on_notice(&mut self, mut f: NoticeFn) {
        for n in self.notices.drain(..) {
            f(n);
        }
        self.on_notice = Some(f);
    }

    pub(super) fn notice(&mut self, kind: NoticeKind, text: &str) {
        let n = Notice {
            kind,
            text: text.to_string(),
        };
        match self.on_notice.as_mut() {
            Some(f) => f(n),
            None => self.notices.push(n),
        }
    }

    fn capability_list(&mut self) -> Result<Vec<String>, ImapError> {
        let mut caps = Vec::new();
        let done = self.run(Command::new("CAPABILITY"), None, |r| {
            if let Response::Capability(c) = r {
                caps.extend(c);
            }
        })?;
        if caps.is_empty()
            && let Some(Code::Capability(c)) = done.code
        {
            caps = c;
        }
        Ok(caps)
    }

    pub(super) fn tag(&mut self) -> String {
        self.next_tag += 1;
        format!("B{}", self.next_tag)
    }

    /// Read and parse the next response and hand it to `f`. Untagged NO/BAD and `[ALERT]`
    /// are noted on the way; a BYE ends the session with a recoverable error.
    pub(super) fn next<R>(
        &mut self,
        sink: Option<&mut dyn BodySink>,
        f: impl FnOnce(Response<'_>) -> R,
    ) -> Result<R, ImapError> {
        let mut frame = std::mem::take(&mut self.frame);
        let out = match reader::read_frame(&mut &self.wire, &mut frame, sink, &self.addr) {
            Err(e) => Err(e),
            Ok(()) => match parse::parse(&frame) {
                Err(parse::ParseError(why)) => Err(ImapError::new(
                    Kind::Protocol,
                    format!(
                        "unreadable response from {}: {why}: '{}'; starting a new session",
                        self.addr,
                        truncate(&String::from_utf8_lossy(frame.bytes()), 100).trim_end()
                    ),
                )),
                Ok(r) => self.screen(&r).map(|()| f(r)),
            },
        };
        // A huge header response should not pin its memory for the session's life.
        if frame.bytes().len() > 1 << 20 {
            frame = Frame::default();
        }
        self.frame = frame;
        out
    }

    /// Note what a person must see; end on BYE.
    fn screen(&mut self, r: &Response<'_>) -> Result<(), ImapError> {
        let (Response::Untagged(s) | Response::Tagged(_, s)) = r else {
            return Ok(());
        };
        let untagged = matches!(r, Response::Untagged(_));
        if s.code == Some(Code::Alert) {
            self.notice(NoticeKind::Alert, &s.text);
        } else if untagged && s.status == Status::No {
            self.notice(NoticeKind::No, &s.text);
        } else if untagged && s.status == Status::Bad {
            self.notice(NoticeKind::Bad, &s.text);
        }
        if untagged && s.status == Status::Bye && !self.logging_out {
            return Err(ImapError::from_status(s, &self.addr));
        }
        Ok(())
    }

    /// Send `cmd` and read up to its tagged answer, handing every untagged response to `on`.
    /// NO and BAD are errors.
    pub(super) fn run(
        &mut self,
        cmd: Command<'_>,
        sink: Option<&mut dyn BodySink>,
        on: impl FnMut(Response<'_>),
    ) -> Result<StatusResp, ImapError> {
        let r = self.run_status(cmd, sink, on)?;
        if r.status == Status::Ok {
            Ok(r)
        } else {
            Err(ImapError::from_status(&r, &self.addr))
        }
    }

    /// Like [`Session::run`], but NO and BAD are returned as answers.
    pub(super) fn run_status(
        &mut self,
        cmd: Command<'_>,
        sink: Option<&mut dyn BodySink>,
        mut on: impl FnMut(Response<'_>),
    ) -> Result<StatusResp, ImapError> {
        let tag = self.tag();
        let mut out = Vec::new();
        let mut done = Done::new();
        self.send(&tag, cmd, &mut out, &mut done, &mut on)?;
        self.write(&out)?;
        self.flush()?;
        if let Some(r) = done.remove(&tag) {
            return Ok(r);
        }
        self.read_until(&tag, sink, &mut done, &mut on)?;
        done.remove(&tag)
            .ok_or_else(|| ImapError::new(Kind::Protocol, "answer lost"))
    }

    /// Send every command at once, then read their answers: one round trip for commands
    /// that do not depend on each other's outcome. The outer error is the session's; each
    /// inner one is that command's NO or BAD.
    pub(super) fn run_all(
        &mut self,
        cmds: Vec<Command<'_>>,
    ) -> Result<Vec<Result<(), ImapError>>, ImapError> {
        let mut out = Vec::new();
        let mut done = Done::new();
        let mut tags = Vec::with_capacity(cmds.len());
        for cmd in cmds {
            let tag = self.tag();
            self.send(&tag, cmd, &mut out, &mut done, &mut |_| {})?;
            tags.push(tag);
        }
        self.write(&out)?;
        self.flush()?;
        let mut answers = Vec::with_capacity(tags.len());
        for tag in &tags {
            self.read_until(tag, None, &mut done, &mut |_| {})?;
            answers.push(match done.remove(tag) {
                Some(r) if r.status == Status::Ok => Ok(()),
                Some(r) => Err(ImapError::from_status(&r, &self.addr)),
                None => Err(ImapError::new(Kind::Protocol, "answer lost")),
            });
        }
        Ok(answers)
    }

    /// Read responses until the one tagged `tag`; other tags' answers go into `done`.
    pub(super) fn read_until(
        &mut self,
        tag: &str,
        mut sink: Option<&mut dyn BodySink>,
        done: &mut Done,
        on: &mut dyn FnMut(Response<'_>),
    ) -> Result<(), ImapError> {
        let addr = self.addr.clone();
        while !done.contains_key(tag) {
            // A reborrow for this response (a sink's own lifetime cannot shrink behind &mut).
            let sink = sink.as_mut().map(|s| &mut **s as &mut dyn BodySink);
            self.next(sink, |r| match r {
                Response::Tagged(t, s) => {
                    done.insert(t, s);
                    Ok(())
                }
                Response::Continue(_) => Err(ImapError::new(
                    Kind::Protocol,
                    format!("{addr}: unexpected continuation request"),
                )),
                other => {
                    on(other);
                    Ok(())
                }
            })??;
        }
        Ok(())
    }

    /// Write `tag cmd` into `out` (written to the wire as it fills). A literal the server
    /// must acknowledge first (no LITERAL+) is announced with `{n}` and sent after its `+`;
    /// if the server answers the command instead, the rest is not sent and the answer is
    /// in `done`. A command ending in [`Part::Announce`] is left open for its literal.
    pub(super) fn send(
        &mut self,
        tag: &str,
        cmd: Command<'_>,
        out: &mut Vec<u8>,
        done: &mut Done,
        on: &mut dyn FnMut(Response<'_>),
    ) -> Result<(), ImapError> {
        out.extend_from_slice(tag.as_bytes());
        out.push(b' ');
        for part in cmd.into_parts() {
            match part {
                Part::Text(t) => out.extend_from_slice(&t),
                Part::Literal(data, binary) => {
                    if !self.literal_marker(data.len() as u64, binary, tag, out, done, on)? {
                        return Ok(());
                    }
                    let n = data.len();
                    // Big bodies go straight to the wire rather than through `out`.
                    if out.len() + n > 256 * 1024 {
                        self.write(out)?;
                        out.clear();
                        self.write(&data)?;
                    } else {
                        out.extend_from_slice(&data);
                    }
                }
                Part::Announce(n) => {
                    self.literal_marker(n, false, tag, out, done, on)?;
                    return Ok(());
                }
            }
        }
        out.extend_from_slice(b"\r\n");
        Ok(())
    }

    /// `{n}`, `{n+}` or `~{n}` into `out`; for a synchronizing literal, write it all and
    /// wait for `+`. False when the server answered the command instead (in `done`).
    fn literal_marker(
        &mut self,
        n: u64,
        binary: bool,
        tag: &str,
        out: &mut Vec<u8>,
        done: &mut Done,
        on: &mut dyn FnMut(Response<'_>),
    ) -> Result<bool, ImapError> {
        let sync = !(self.caps.literal_plus || (self.caps.literal_minus && n <= 4096));
        let tilde = if binary { "~" } else { "" };
        let plus = if sync { "" } else { "+" };
        out.extend_from_slice(format!("{tilde}{{{n}{plus}}}\r\n").as_bytes());
        if !sync {
            return Ok(true);
        }
        self.write(out)?;
        out.clear();
        self.flush()?;
        self.wait_continuation(tag, done, on)
    }

    /// Wait for "+"; false when the command `tag` was answered instead.
    fn wait_continuation(
        &mut self,
        tag: &str,
        done: &mut Done,
        on: &mut dyn FnMut(Response<'_>),
    ) -> Result<bool, ImapError> {
        loop {
            let got_plus = self.next(None, |r| match r {
                Response::Continue(_) => true,
                Response::Tagged(t, s) => {
                    done.insert(t, s);
                    false
                }
                other => {
                    on(other);
                    false
                }
            })?;
            if got_plus {
                return Ok(true);
            }
            if done.contains_key(tag) {
                return Ok(false);
            }
        }
    }

    pub(super) fn write(&self, data: &[u8]) -> Result<(), ImapError> {
        self.wire
            .write_all(data)
            .map_err(|e| ImapError::io(e, &self.addr))
    }

    pub(super) fn flush(&self) -> Result<(), ImapError> {
        self.wire.flush().map_err(|e| ImapError::io(e, &self.addr))
    }

    pub fn logout(mut self) {
        self.logging_out = true;
        let _ = self.run_status(Command::new("LOGOUT"), None, |_| {});
    }

    /// Drop a session that is out of step; nothing more is read from it.
    pub fn abandon(self) {
        self.wire.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_come_from_the_parsed_list() {
        let list: Vec<String> = "IMAP4rev1 literal+ UIDPLUS MULTIAPPEND APPENDLIMIT=35651584 BINARY LIST-EXTENDED SPECIAL-USE X-NOT-LITERAL-"
            .split(' ')
            .map(str::to_string)
            .collect();
        let c = Caps::from_list(&list);
        assert!(c.literal_plus && c.uidplus && c.multiappend && c.binary);
        assert!(c.list_extended && c.special_use);
        // A capability is a whole atom, not a substring of another one.
        assert!(!c.literal_minus && !c.namespace && !c.utf8_accept);
        assert_eq!(c.append_limit, Some(35651584));
    }
}

//! Errors of the IMAP layer, classified by what the engine should do about them.

use std::fmt;
use std::io;

use super::parse::{Code, Status, StatusResp};
use crate::event::Side;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Bad input detected before talking to a server (CA file unreadable, …).
    Usage,
    /// Host name does not resolve.
    Resolve,
    /// TCP connect refused or unreachable.
    Connect,
    /// TLS negotiation failed, or the server does not offer STARTTLS.
    Tls,
    /// The server's certificate is not trusted.
    Certificate,
    /// Wrong user or password, or no usable mechanism.
    Auth,
    /// No answer within the I/O timeout.
    Timeout,
    /// Connection reset, closed, or the server said BYE.
    Dropped,
    /// A response we could not read: the session is out of step and must be dropped.
    Protocol,
    /// The server answered NO to a command.
    No,
    /// The server answered BAD to a command.
    Bad,
    /// The destination is over its quota.
    OverQuota,
}

#[derive(Debug, Clone)]
pub struct ImapError {
    pub kind: Kind,
    pub message: String,
    /// The response code of the server's NO/BAD/BYE, when it gave one.
    pub code: Option<Code>,
}

impl ImapError {
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        ImapError {
            kind,
            message: message.into(),
            code: None,
        }
    }

    /// A tagged NO or BAD (or an untagged BYE), keeping its response code: what follows is
    /// decided from the code (see [`ImapError::disposition`]), never from the words.
    pub fn from_status(r: &StatusResp, addr: &str) -> Self {
        // Not `OverQuota` even with [OVERQUOTA]: only the destination's APPEND answer
        // makes that (append.rs), since a source's quota never stops a copy.
        let kind = match r.status {
            Status::Bye => Kind::Dropped,
            Status::Bad => Kind::Bad,
            _ => Kind::No,
        };
        let message = match kind {
            Kind::Dropped => format!("{addr} closed the session: {}", r.text),
            _ => r.text.clone(),
        };
        let message = match &r.code {
            Some(c) if kind != Kind::Dropped => format!("[{}] {message}", code_name(c)),
            _ => message,
        };
        ImapError {
            kind,
            message,
            code: r.code.clone(),
        }
    }

    pub fn io(e: io::Error, addr: &str) -> Self {
        let kind = match e.kind() {
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => Kind::Timeout,
            _ => Kind::Dropped,
        };
        let what = match kind {
            Kind::Timeout => "timed out".to_string(),
            _ => e.to_string(),
        };
        ImapError::new(kind, format!("connection to {addr} lost: {what}"))
    }

    /// Worth a reconnect and another try (after a pause: the engine backs off).
    pub fn is_recoverable(&self) -> bool {
        matches!(self.kind, Kind::Timeout | Kind::Dropped | Kind::Protocol)
            || (matches!(self.kind, Kind::No | Kind::Bad)
                && self.code.as_ref().is_some_and(is_transient))
    }

    /// The whole run must stop: retrying or going on cannot help.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self.kind,
            Kind::Usage
                | Kind::Resolve
                | Kind::Connect
                | Kind::Tls
                | Kind::Certificate
                | Kind::Auth
                | Kind::OverQuota
        )
    }
}

impl fmt::Display for ImapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ImapError {}

/// Map the `imap` crate's error onto our kinds. `addr` names the server in messages.
pub fn from_crate(e: imap::Error, addr: &str) -> ImapError {
    match e {
        imap::Error::Io(io) => ImapError::io(io, addr),
        imap::Error::ConnectionLost => ImapError::new(
            Kind::Dropped,
            format!("connection to {addr} lost: closed by server"),
        ),
        // The crate reports a line it cannot parse as a BYE without code or text.
        imap::Error::Bye(b) if b.code.is_none() && b.information == "no explanation given" => {
            ImapError::new(
                Kind::Protocol,
                format!("unreadable response from {addr}; starting a new session"),
            )
        }
        imap::Error::Bye(b) => ImapError::new(
            Kind::Dropped,
            format!("{addr} closed the session: {}", b.information),
        ),
        // Only LOGIN/AUTHENTICATE go through the crate now; a NO there is about the login.
        imap::Error::No(no) => ImapError::new(Kind::No, no.information),
        imap::Error::Bad(bad) => ImapError::new(Kind::Bad, bad.information),

        imap::Error::Validate(v) => ImapError::new(Kind::Usage, v.to_string()),
        other => ImapError::new(
            Kind::Protocol,
            format!(
                "unreadable response from {addr}: {}",
                truncate(&other.to_string(), 160)
            ),
        ),
    }
}

pub fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n).collect::<String>() + "…"
    }
}

/// RFC 5530 codes that say "not now": back off and try again.
pub(crate) fn is_transient(c: &Code) -> bool {
    matches!(
        c,
        Code::Unavailable | Code::ServerBug | Code::Limit | Code::Throttled | Code::InUse
    )
}

/// The code as the server wrote it, for messages.
pub fn code_name(c: &Code) -> String {
    match c {
        Code::Alert => "ALERT".into(),
        Code::TryCreate => "TRYCREATE".into(),
        Code::OverQuota => "OVERQUOTA".into(),
        Code::Unavailable => "UNAVAILABLE".into(),
        Code::ServerBug => "SERVERBUG".into(),
        Code::Limit => "LIMIT".into(),
        Code::Throttled => "THROTTLED".into(),
        Code::NonExistent => "NONEXISTENT".into(),
        Code::AlreadyExists => "ALREADYEXISTS".into(),
        Code::NoPerm => "NOPERM".into(),
        Code::InUse => "INUSE".into(),
        Code::ReadOnly => "READ-ONLY".into(),
        Code::ReadWrite => "READ-WRITE".into(),
        Code::AppendUid(..) => "APPENDUID".into(),
        Code::CopyUid(..) => "COPYUID".into(),
        Code::UidValidity(_) => "UIDVALIDITY".into(),
        Code::UidNext(_) => "UIDNEXT".into(),
        Code::Unseen(_) => "UNSEEN".into(),
        Code::HighestModSeq(_) => "HIGHESTMODSEQ".into(),
        Code::PermanentFlags(_) => "PERMANENTFLAGS".into(),
        Code::Capability(_) => "CAPABILITY".into(),
        Code::Other(name, _) => name.clone(),
    }
}

/// What a command was doing when it failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Connecting and logging in.
    Connect,
    /// LIST, LSUB, NAMESPACE, STATUS while planning.
    Scan,
    /// EXAMINE or SELECT of one folder.
    Open,
    /// CREATE or SUBSCRIBE of one folder.
    Create,
    /// FETCH of UIDs, metadata, headers or bodies.
    Fetch,
    /// APPEND of one message or batch.
    Append,
    /// STORE/EXPUNGE for --delete-source.
    Delete,
}

/// What to do about an error: the one table the engine asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Reconnect (after a backoff) and try again.
    Retry,
    /// `[TRYCREATE]`: create the destination folder, then try again.
    CreateAndRetry,
    /// The folder is gone from the source: a warning, nothing to copy.
    FolderGone,
    /// This folder cannot be done; the others go on (exit 1 at the end).
    FailFolder,
    /// This message cannot be stored; the rest of the folder goes on.
    FailMessage,
    /// Nothing more can be done in this job: stop with this exit code.
    EndJob(i32),
}

impl ImapError {
    /// Decide from (side, phase, response code) — never from the words of the text,
    /// except a code-less quota NO on APPEND, which [`Kind::OverQuota`] already records.
    pub fn disposition(&self, side: Side, phase: Phase) -> Disposition {
        use crate::exit;
        match self.kind {
            Kind::Usage => return Disposition::EndJob(exit::USAGE),
            Kind::Auth => return Disposition::EndJob(exit::AUTH),
            Kind::Resolve | Kind::Connect | Kind::Tls | Kind::Certificate => {
                return Disposition::EndJob(exit::CONNECTION);
            }
            Kind::Timeout | Kind::Dropped | Kind::Protocol => return Disposition::Retry,
            // Only a destination says it is over quota; a source's quota says nothing
            // about whether the copy can go on.
            Kind::OverQuota if side == Side::Destination => {
                return Disposition::EndJob(exit::DESTINATION);
            }
            Kind::OverQuota | Kind::No | Kind::Bad => {}
        }
        match (&self.code, side, phase) {
            (Some(Code::OverQuota), Side::Destination, _) => Disposition::EndJob(exit::DESTINATION),
            // A message over a size limit meets it again on every try.
            (Some(Code::Limit), Side::Destination, Phase::Append) => Disposition::FailMessage,
            (Some(c), _, _) if is_transient(c) => Disposition::Retry,
            (Some(Code::TryCreate), Side::Destination, _) => Disposition::CreateAndRetry,
            (Some(Code::NonExistent), Side::Source, Phase::Open | Phase::Scan) => {
                Disposition::FolderGone
            }
            (_, Side::Destination, Phase::Append) => Disposition::FailMessage,
            _ => Disposition::FailFolder,
        }
    }
}

/// Does the text of a code-less NO on APPEND clearly say the mailbox is full?
pub fn says_quota(text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    [
        "quota exceeded",
        "over quota",
        "overquota",
        "quota exceed",
        "mailbox is full",
        "mailbox full",
    ]
    .iter()
    .any(|w| t.contains(w))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no(code: Option<Code>, text: &str) -> ImapError {
        ImapError::from_status(
            &StatusResp {
                status: Status::No,
                code,
                text: text.into(),
            },
            "h",
        )
    }

    #[test]
    fn codes_decide_not_words() {
        use Disposition::*;
        let (src, dst) = (Side::Source, Side::Destination);
        // A folder called "Quotations" that vanished is not a quota problem.
        let gone = no(None, "Mailbox Quotations doesn't exist");
        assert_eq!(gone.disposition(src, Phase::Open), FailFolder);
        assert!(!gone.is_fatal());
        let gone = no(Some(Code::NonExistent), "gone");
        assert_eq!(gone.disposition(src, Phase::Open), FolderGone);
        for c in [
            Code::Unavailable,
            Code::ServerBug,
            Code::Limit,
            Code::Throttled,
        ] {
            let e = no(Some(c), "later");
            assert_eq!(e.disposition(src, Phase::Open), Retry);
            assert!(e.is_recoverable());
        }
        assert_eq!(
            no(Some(Code::Limit), "too big").disposition(dst, Phase::Append),
            FailMessage
        );
        assert_eq!(
            no(Some(Code::TryCreate), "x").disposition(dst, Phase::Append),
            CreateAndRetry
        );
        assert_eq!(
            no(Some(Code::OverQuota), "full").disposition(dst, Phase::Append),
            EndJob(crate::exit::DESTINATION)
        );
        assert_eq!(
            no(Some(Code::OverQuota), "full").disposition(src, Phase::Fetch),
            FailFolder
        );
        assert_eq!(
            no(None, "refused").disposition(dst, Phase::Append),
            FailMessage
        );
        assert!(says_quota("Quota exceeded (mailbox for user is full)"));
        assert!(!says_quota("Mailbox Quotations doesn't exist"));
        assert_eq!(
            ImapError::new(Kind::Timeout, "t").disposition(src, Phase::Fetch),
            Retry
        );
    }
}

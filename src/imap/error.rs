//! Errors of the IMAP layer, classified by what the engine should do about them.

use std::fmt;
use std::io;

use super::parse::{Code, Status, StatusResp, split_code};
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
                && (self.code.as_ref().is_some_and(is_transient) || says_too_many(&self.message)))
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
        imap::Error::Bye(b) => {
            let code = split_code(&b.information).0;
            ImapError {
                kind: Kind::Dropped,
                message: format!("{addr} closed the session: {}", b.information),
                code,
            }
        }
        // Only LOGIN/AUTHENTICATE go through the crate now; a NO there is about the login.
        imap::Error::No(no) => {
            // The crate's parser knows only RFC 3501's codes; others stay in the text.
            let code = split_code(&no.information).0;
            ImapError {
                kind: Kind::No,
                message: no.information,
                code,
            }
        }
        imap::Error::Bad(bad) => {
            // The crate's parser knows only RFC 3501's codes; others stay in the text.
            let code = split_code(&bad.information).0;
            ImapError {
                kind: Kind::Bad,
                message: bad.information,
                code,
            }
        }

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
    /// Nothing more can be done now, but a later run can go on (the account's bandwidth
    /// cap): every worker stops, the state is saved, the run ends as interrupted.
    Interrupt,
}

/// What a provider's answer says about its limits (issue 12). This is the one place that
/// reads them: response codes first, and the words of the few providers that send none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// Too many connections (at login or later), throttled, unavailable: back off, and use
    /// fewer connections to that server for the rest of the run.
    FewerConnections,
    /// The account's bandwidth or command cap (Gmail's `[OVERQUOTA]` on the source, "Account
    /// exceeded command or bandwidth limits"): nothing more can be moved for hours; the run
    /// stops as interrupted, to be resumed later.
    Capped,
}

impl ImapError {
    /// Decide from (side, phase, response code) — never from the words of the text,
    /// except a code-less quota NO on APPEND, which [`Kind::OverQuota`] already records.
    pub fn disposition(&self, side: Side, phase: Phase) -> Disposition {
        use crate::exit;
        match self.signal(side, phase) {
            Some(Signal::Capped) => return Disposition::Interrupt,
            Some(Signal::FewerConnections) => return Disposition::Retry,
            None => {}
        }
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

impl ImapError {
    /// Which provider signal this answer is, if any (see [`Signal`]). `phase` tells a
    /// destination's `[LIMIT]` on APPEND (that message is too big) from a limit on the
    /// session. A destination's `[OVERQUOTA]` is not a cap: it stays "over quota" (exit 7).
    pub fn signal(&self, side: Side, phase: Phase) -> Option<Signal> {
        if !matches!(
            self.kind,
            Kind::No | Kind::Bad | Kind::Dropped | Kind::OverQuota
        ) {
            return None;
        }
        let over_quota = self.code == Some(Code::OverQuota) || self.kind == Kind::OverQuota;
        let capped = match side {
            Side::Source => over_quota || says_bandwidth_cap(&self.message),
            Side::Destination => !over_quota && says_bandwidth_cap(&self.message),
        };
        if capped {
            return Some(Signal::Capped);
        }
        match &self.code {
            Some(Code::Limit) if side == Side::Destination && phase == Phase::Append => None,
            Some(Code::Throttled | Code::Unavailable | Code::Limit) => {
                Some(Signal::FewerConnections)
            }
            _ if says_too_many(&self.message) => Some(Signal::FewerConnections),
            _ => None,
        }
    }
}

/// Does a code-less answer say the server has too many connections or is unavailable?
/// Gmail ("NO [ALERT] Too many simultaneous connections"), Dovecot ("Maximum number of
/// connections from user+IP exceeded", with `[LIMIT]` or `[UNAVAILABLE]` by version) and
/// Office 365 ("BYE Server Unavailable") say so in words.
pub fn says_too_many(text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    [
        "too many simultaneous connections",
        "too many connections",
        "maximum number of connections",
        "server unavailable",
    ]
    .iter()
    .any(|w| t.contains(w))
}

/// Does an answer say the account's bandwidth or command cap is reached (Gmail)?
pub fn says_bandwidth_cap(text: &str) -> bool {
    text.to_ascii_lowercase()
        .contains("exceeded command or bandwidth limits")
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

    /// An answer as the server wrote it: `[CODE] text` read the way both parsers do.
    fn said(kind: Kind, line: &str) -> ImapError {
        let (code, _) = split_code(line);
        ImapError {
            kind,
            message: line.into(),
            code,
        }
    }

    #[test]
    fn provider_signals() {
        use Disposition::*;
        use Signal::*;
        let (src, dst) = (Side::Source, Side::Destination);
        let fewer = [
            // Dovecot 2.3 refusing a login over mail_max_userip_connections; older ones
            // said [UNAVAILABLE]; Gmail says it in words under [ALERT].
            (
                Kind::No,
                "[LIMIT] Maximum number of connections from user+IP exceeded (mail_max_userip_connections=2)",
                Phase::Connect,
            ),
            (
                Kind::No,
                "[UNAVAILABLE] Maximum number of connections from user+IP exceeded (mail_max_userip_connections=16)",
                Phase::Connect,
            ),
            (
                Kind::No,
                "[ALERT] Too many simultaneous connections. (Failure)",
                Phase::Connect,
            ),
            // Later in a session: a BYE saying so, Office 365's, or a throttled command.
            (
                Kind::Dropped,
                "imap.example.com closed the session: Too many simultaneous connections",
                Phase::Fetch,
            ),
            (
                Kind::Dropped,
                "outlook.office365.com closed the session: Server Unavailable. 15",
                Phase::Append,
            ),
            (Kind::No, "[THROTTLED] Slow down", Phase::Append),
            (Kind::No, "[UNAVAILABLE] Backend busy", Phase::Fetch),
            (Kind::No, "[LIMIT] Too many commands", Phase::Fetch),
        ];
        for (kind, line, phase) in fewer {
            let e = said(kind, line);
            for side in [src, dst] {
                assert_eq!(e.signal(side, phase), Some(FewerConnections), "{line}");
                assert_eq!(e.disposition(side, phase), Retry, "{line}");
            }
            assert!(e.is_recoverable(), "{line}: not a wrong password");
            assert!(!e.is_fatal(), "{line}");
        }
        // A message over the destination's size limit is that message's trouble.
        let big = said(Kind::No, "[LIMIT] Message too large");
        assert_eq!(big.signal(dst, Phase::Append), None);
        assert_eq!(big.disposition(dst, Phase::Append), FailMessage);
        // Gmail's bandwidth cap: from the source with [OVERQUOTA] or in words, and in words
        // from a destination; the destination's [OVERQUOTA] stays "over quota" (exit 7).
        let overquota = said(
            Kind::No,
            "[OVERQUOTA] Account exceeded command or bandwidth limits. (Failure)",
        );
        assert_eq!(overquota.signal(src, Phase::Fetch), Some(Capped));
        assert_eq!(overquota.disposition(src, Phase::Fetch), Interrupt);
        assert_eq!(overquota.signal(dst, Phase::Append), None);
        assert_eq!(
            overquota.disposition(dst, Phase::Append),
            EndJob(crate::exit::DESTINATION)
        );
        for e in [
            said(
                Kind::No,
                "Account exceeded command or bandwidth limits. (Failure)",
            ),
            said(
                Kind::Dropped,
                "imap.gmail.com closed the session: Account exceeded command or bandwidth limits.",
            ),
        ] {
            for (side, phase) in [
                (src, Phase::Fetch),
                (src, Phase::Open),
                (dst, Phase::Append),
            ] {
                assert_eq!(e.disposition(side, phase), Interrupt, "{}", e.message);
            }
        }
        // Not signals: a server bug is retried on the same connections, a refusal or a
        // wrong password is what it was.
        assert_eq!(
            said(Kind::No, "[SERVERBUG] oops").signal(src, Phase::Fetch),
            None
        );
        assert_eq!(
            said(Kind::No, "Mailbox is broken").signal(src, Phase::Open),
            None
        );
        let wrong = said(Kind::Auth, "[AUTHENTICATIONFAILED] Invalid credentials");
        assert_eq!(wrong.signal(src, Phase::Connect), None);
        assert_eq!(
            wrong.disposition(src, Phase::Connect),
            EndJob(crate::exit::AUTH)
        );
        assert_eq!(
            ImapError::new(Kind::Timeout, "timed out").signal(src, Phase::Fetch),
            None
        );
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
        // Gmail's bandwidth cap on the source: the run stops as interrupted.
        assert_eq!(
            no(Some(Code::OverQuota), "full").disposition(src, Phase::Fetch),
            Interrupt
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

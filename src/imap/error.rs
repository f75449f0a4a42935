//! Errors of the IMAP layer, classified by what the engine should do about them.

use std::fmt;
use std::io;

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
}

impl ImapError {
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        ImapError {
            kind,
            message: message.into(),
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

    /// Worth a reconnect and another try.
    pub fn is_recoverable(&self) -> bool {
        matches!(self.kind, Kind::Timeout | Kind::Dropped | Kind::Protocol)
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
        imap::Error::No(no) => {
            // imap-proto has no variant for RFC 5530's [OVERQUOTA]; it stays in the text.
            let over_quota = no.information.to_ascii_lowercase().contains("quota");
            let kind = if over_quota {
                Kind::OverQuota
            } else {
                Kind::No
            };
            ImapError::new(kind, no.information)
        }
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

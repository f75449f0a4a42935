//! The small IMAP interface the engine uses.
//!
//! - `wire`: TCP, TLS, STARTTLS, the greeting; the byte stream.
//! - `login`: LOGIN / AUTHENTICATE through the `imap` crate (the only place it is used).
//! - `reader`: frames every response after login (lines and literals; bodies streamed).
//! - `parse`: framed responses into typed data; `encode`: every command we send.
//! - `session`, `ops`, `append`: the one client the engine talks to.
//! - `name`: mailbox names (exact wire bytes + decoded name); `error`: what failures mean.

pub mod append;
mod encode;
pub mod error;
mod login;
pub mod name;
pub mod ops;
pub(crate) mod parse;
#[cfg(test)]
mod proptests;
pub(crate) mod reader;
pub(crate) use reader::BodySink;
pub mod session;
pub mod wire;

pub use append::{AppendItem, AppendOutcome, AppendStart, Pending, StreamedAppend};
pub(crate) use error::is_transient;
pub use error::{Disposition, ImapError, Kind, Phase, Signal};
pub use name::MailboxName;
pub use ops::{
    Bodies, DeleteOutcome, FetchedHash, FolderInfo, ListStatus, ListedFolder, MessageHeaders,
    MessageMeta,
};
pub use session::{Auth, Caps, Credentials, Notice, NoticeKind, Session};
pub use wire::{Timeouts, TlsOptions};

//! The small IMAP interface the engine uses. Only this module knows the `imap` crate.

pub mod error;
pub mod session;
pub mod wire;

pub use error::{ImapError, Kind};
pub use session::{
    AppendItem, AppendOutcome, Auth, Bodies, Caps, Credentials, DeleteOutcome, FetchedHash,
    FolderInfo, ListedFolder, MessageHeaders, MessageMeta, Pending, Session,
};
pub use wire::{Timeouts, TlsOptions};

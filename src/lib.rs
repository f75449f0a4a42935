//! btsx: copy a whole mailbox from one IMAP server to another.
//!
//! The engine ([`engine`]) never prints: it reports through [`event::Event`]s
//! sent to a [`render::Sink`]; renderers turn them into a human display or JSON lines.

pub mod app;
pub mod batch;
pub mod cli;
pub mod digest;
pub mod docs;
pub mod endpoint;
pub mod engine;
pub mod event;
pub mod exit;
pub mod filter;
pub mod imap;
pub mod index;
pub mod plan;
pub mod render;
pub mod secret;
pub mod state;
pub mod status;
pub mod throttle;
pub mod utf7;
pub mod verify;

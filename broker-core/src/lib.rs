//! Core of the Pro Custodibus broker.
//!
//! The broker pulls security events from the Pro Custodibus API's queues (a [`Source`]) and pushes
//! each pipe's events to its [`Sink`]. This crate holds everything that is not a particular sink
//! and not the command line: the config files ([`config`]), the API client ([`api`]), the event
//! type and its output encoding ([`event`]), the sink trait and plugin registry ([`sink`],
//! [`registry`]) and the poll loop ([`pipeline`]). It keeps no process-global state, so tests can
//! run many brokers in one process.

pub mod api;
pub mod backoff;
pub mod config;
pub mod encode;
pub mod event;
pub mod keyword;
pub mod loopback;
pub mod pipeline;
pub mod registry;
pub mod sink;
pub mod source;
pub mod spool;
pub mod status;
pub mod text;

pub use event::{Event, EventType};
pub use registry::SinkPlugin;
pub use sink::{KeyError, Sink, SinkError, SinkErrorKind};
pub use source::{Source, SourceError};

/// The broker's own version: printed by `--version` and sent in the hello path.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Installs the one rustls crypto provider of the workspace (ring), once per process.
///
/// Call it at start in every binary and test that makes TLS connections; calling it again is
/// harmless.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

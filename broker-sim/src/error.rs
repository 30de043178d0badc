//! Errors of the simulator's library API (starting it, naming a queue).

use std::io;

/// What can go wrong when driving the simulator from code.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The listening socket on 127.0.0.1 could not be bound.
    #[error("cannot listen on 127.0.0.1:{port}: {source}")]
    Bind {
        /// The port asked for (0 means any free port).
        port: u16,
        /// Why binding failed.
        source: io::Error,
    },
    /// The background thread or its tokio runtime could not be started.
    #[error("cannot start the simulator's background runtime: {0}")]
    Runtime(io::Error),
    /// An event type other than alerts, endpoint_stats, log_authn or log_changes.
    #[error("unknown event type {0:?}: use one of alerts, endpoint_stats, log_authn, log_changes")]
    UnknownEventType(String),
}

//! The [`Sink`] trait: where a pipe's events go.
//!
//! A sink receives batches of events in order and hands them over to something outside the
//! broker (a file, a syslog socket, a web service). Sinks are plugins: see [`crate::registry`].
//!
//! # Contract
//!
//! - [`Sink::deliver`] returns `Ok` only when every event of the batch was handed over, in the
//!   order given, as durably as the destination allows, because the spool reclaims the events'
//!   space at once: the stock `file` sink has synced the lines to disk (`fdatasync`; pipes and
//!   character devices: written), the syslog sink over a stream (TCP, TLS, unix stream) has
//!   seen the socket's send queue drain past them (the receiver's kernel has them), the syslog
//!   sink over UDP
//!   or a unix datagram socket has sent each datagram.
//! - On failure it returns a [`SinkError`] that says how many events at the front of the batch
//!   were handed over before the failure, and whether the failure is worth retrying
//!   ([`SinkErrorKind::Retry`]: disk full, connection refused) or permanent for the next event
//!   ([`SinkErrorKind::Permanent`]: too large for the transport, rejected by the receiver).
//! - A retryable error may ask for a pause: [`SinkError::with_retry_after`] (a web service's
//!   `Retry-After`). In `--loop` mode the pipe then waits at least that long before the next
//!   attempt (its own backoff delay if that is longer); without it the backoff alone decides.
//! - [`Sink::reopen`] is called on SIGHUP (log rotation); [`Sink::close`] once at shutdown.
//! - [`Sink::use_state_dir`] tells a sink the spool directory, for state that must outlive a
//!   restart (a channel id).
//! - A sink builds without I/O; it opens files and sockets on first use, so a config check has
//!   no side effects. [`Sink::check_files`] lets `--check-config` read the files a key names
//!   (a `CA`) that the sink itself reads only when it connects.

use std::time::Duration;

use async_trait::async_trait;

use crate::event::Event;

/// A destination for a pipe's events.
///
/// How to write one, register it (and keep the linker from dropping it), declare and check its
/// config keys, test it and build a daemon that has it: the guide `docs/writing-a-sink.md` in the
/// repository, whose code is compiled as doctests of the `broker-examples` package. Worked
/// examples: `examples/stdout_sink.rs` (the smallest plugin) and `examples/webhook-sink/`.
#[async_trait]
pub trait Sink: Send {
    /// Hands over every event of `events`, in order, durably (a file: synced to disk): the spool
    /// reclaims them once this returns `Ok`. See the module docs for what `Ok` promises per sink.
    async fn deliver(&mut self, events: &[Event]) -> Result<(), SinkError>;

    /// Closes and opens again whatever the sink writes to (after log rotation). Default: nothing.
    async fn reopen(&mut self) -> Result<(), SinkError> {
        Ok(())
    }

    /// Flushes and closes the sink at shutdown. Default: nothing.
    async fn close(&mut self) -> Result<(), SinkError> {
        Ok(())
    }

    /// What the receiver last answered, on one line with its secrets masked (an HTTP sink:
    /// `200 OK: {"text":"Success"}`), for `--test-pipe` to print. Default: `None` (a file or
    /// socket says nothing back).
    fn last_answer(&self) -> Option<String> {
        None
    }

    /// Where the sink may keep small state that must outlive a restart (the `splunk` sink keeps
    /// its HEC channel id there): the spool directory, handed over by the pipeline before the
    /// first delivery. Not called for an in-memory spool or `--test-pipe`, so a sink must work
    /// without it. Name files after the pipe; never touch the spool's own files. Default:
    /// nothing.
    fn use_state_dir(&mut self, dir: &std::path::Path) {
        let _ = dir;
    }

    /// Reads the files the sink's keys name that building it did not read, the ones it reads
    /// only when it connects (a `CA`, a client certificate), and checks them, without network
    /// or writes: `--check-config` calls it, so that a missing or malformed file shows there,
    /// not at the first delivery. The daemon does not: it reads them when it connects, and a
    /// failure then is retried. Default: nothing to check.
    fn check_files(&self) -> Result<(), KeyError> {
        Ok(())
    }
}

/// What is wrong with the file a key names ([`Sink::check_files`]); the caller words it with
/// the config file, the key's line and the pipe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyError {
    /// The key, as the sink declares it (`CA`).
    pub key: &'static str,
    /// What is wrong, naming the file and never quoting its content
    /// (`/etc/ca.pem: no such file or directory`).
    pub message: String,
}

impl KeyError {
    /// `message` about the file `key` names.
    pub fn new(key: &'static str, message: impl Into<String>) -> Self {
        KeyError {
            key,
            message: message.into(),
        }
    }
}

/// Whether a failed delivery is worth trying again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SinkErrorKind {
    /// The destination is unavailable for now (disk full, connection refused): try again later.
    Retry,
    /// The next event can never be delivered here (too large, rejected): do not retry it.
    Permanent,
}

/// A failed delivery: how far it got, whether to retry, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SinkError {
    /// How many events at the front of the batch were handed over before the failure.
    pub delivered: usize,
    /// Whether the failure is worth retrying.
    pub kind: SinkErrorKind,
    /// One line that names the destination and the reason (never a secret).
    pub message: String,
    /// For a [`SinkErrorKind::Retry`]: the least time to wait before the next attempt, when the
    /// destination said so (an HTTP `Retry-After`). `None` (what [`SinkError::retry`] gives):
    /// the pipe's backoff alone decides. The pipe waits the longer of the two; a sink should
    /// cap what a remote asks for (the webhook sink caps it at 300 s).
    pub retry_after: Option<Duration>,
}

impl SinkError {
    /// A failure worth retrying, after `delivered` events were handed over.
    pub fn retry(delivered: usize, message: impl Into<String>) -> Self {
        SinkError {
            delivered,
            kind: SinkErrorKind::Retry,
            message: message.into(),
            retry_after: None,
        }
    }

    /// A failure that is permanent for the event at index `delivered`.
    pub fn permanent(delivered: usize, message: impl Into<String>) -> Self {
        SinkError {
            delivered,
            kind: SinkErrorKind::Permanent,
            message: message.into(),
            retry_after: None,
        }
    }

    /// The same error, asking the pipe to wait at least `delay` before the next attempt (see
    /// [`SinkError::retry_after`]; ignored for a permanent failure).
    pub fn with_retry_after(mut self, delay: Duration) -> Self {
        self.retry_after = Some(delay);
        self
    }
}

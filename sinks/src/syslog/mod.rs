//! The `syslog` sink: sends one syslog message per event to a UDP or local socket.
//!
//! ```ini
//! [Pipe.MyAlerts]
//! From = alerts
//! To = syslog
//! Socket = /dev/log        # or host:port over UDP; default localhost:514
//! Facility = local0        # default local0
//! Priority = info          # default info
//! Tag = procustodibus      # default procustodibus
//! ```
//!
//! Every value is checked when the config loads ([`SyslogSink::from_settings`]); the socket is
//! resolved and connected on the first delivery and kept until an error worth retrying,
//! [`Sink::reopen`] or [`Sink::close`]. A missing local socket, a receiver that went away, a
//! refused UDP port or a failed lookup is worth retrying, and the next delivery connects afresh;
//! a message too large for the socket (`EMSGSIZE`) is permanent for that one event only. The
//! parts: [`names`] (facility and priority tables),
//! [`format`](mod@format) (the bytes of a message), [`address`] (the `Socket` value) and
//! [`transport`] (the sockets).

pub mod address;
pub mod format;
pub mod names;
pub mod transport;

use async_trait::async_trait;
use broker_core::config::{ConfigError, PipeSettings};
use broker_core::registry::{BuildError, SinkKey};
use broker_core::{Event, Sink, SinkError, SinkErrorKind, SinkPlugin};

use crate::os_error::reason;
use address::{Socket, DEFAULT_SOCKET};
use format::{check_tag, Format, MessageSettings};
use names::{Facility, Priority};
use transport::Transport;

inventory::submit! {
    SinkPlugin {
        name: "syslog",
        keys: &[
            SinkKey::one("socket", "host:port (UDP) or path of a local socket (default localhost:514)"),
            SinkKey::one("facility", "syslog facility name (default local0)"),
            SinkKey::one("priority", "syslog priority name (default info)"),
            SinkKey::one("tag", "tag before each message (default procustodibus)"),
        ],
        build: build_syslog_sink,
    }
}

/// Builds a [`SyslogSink`] from a pipe's settings (the registered builder of the `syslog` sink).
fn build_syslog_sink(settings: &PipeSettings) -> Result<Box<dyn Sink>, BuildError> {
    Ok(Box::new(SyslogSink::from_settings(settings)?))
}

/// A sink that sends each event as one syslog message (`<PRI>TAG: JSON\0`).
#[derive(Debug)]
pub struct SyslogSink {
    socket: Socket,
    settings: MessageSettings,
    format: Format,
    transport: Option<Transport>,
}

impl SyslogSink {
    /// A sink that sends to `socket` with these settings. Nothing is opened until the first
    /// delivery.
    pub fn new(socket: Socket, settings: MessageSettings) -> Self {
        SyslogSink {
            socket,
            settings,
            format: Format::SysLogHandler,
            transport: None,
        }
    }

    /// Validates a pipe's `Socket`, `Facility`, `Priority` and `Tag` (all optional), without
    /// resolving or connecting anything.
    pub fn from_settings(settings: &PipeSettings) -> Result<Self, ConfigError> {
        let socket: Socket = settings
            .value("Socket")
            .unwrap_or(DEFAULT_SOCKET)
            .parse()
            .map_err(|e| settings.error("Socket", e))?;
        let facility = match settings.value("Facility") {
            Some(name) => name.parse().map_err(|e| settings.error("Facility", e))?,
            None => Facility::LOCAL0,
        };
        let priority = match settings.value("Priority") {
            Some(name) => name.parse().map_err(|e| settings.error("Priority", e))?,
            None => Priority::INFO,
        };
        let mut message = MessageSettings {
            facility,
            priority,
            ..MessageSettings::default()
        };
        if let Some(tag) = settings.value("Tag") {
            check_tag(tag).map_err(|e| settings.error("Tag", e))?;
            message.tag = tag.to_string();
        }
        Ok(SyslogSink::new(socket, message))
    }

    /// Where the messages go.
    pub fn socket(&self) -> &Socket {
        &self.socket
    }

    /// The facility, priority and tag of every message.
    pub fn message_settings(&self) -> &MessageSettings {
        &self.settings
    }

    /// The error for event `index` that the transport refused, or for the connection as a whole.
    fn send_error(
        &self,
        index: usize,
        event: &Event,
        size: usize,
        error: &std::io::Error,
    ) -> SinkError {
        if error.raw_os_error() == Some(libc::EMSGSIZE) {
            let id = match event.id() {
                Some(id) => format!("event {id}"),
                None => "event without id".to_string(),
            };
            let message = format!("{id} is {size} bytes, too large for {}", self.socket);
            SinkError::permanent(index, message)
        } else {
            SinkError::retry(
                index,
                format!("cannot send to {}: {}", self.socket, reason(error)),
            )
        }
    }
}

#[async_trait]
impl Sink for SyslogSink {
    async fn deliver(&mut self, events: &[Event]) -> Result<(), SinkError> {
        if events.is_empty() {
            return Ok(());
        }
        // Taken out while sending: after an error worth retrying (or a cancelled delivery) it
        // stays dropped, so the next delivery connects afresh (a restarted receiver, a socket
        // that was missing and is back).
        let mut transport = match self.transport.take() {
            Some(transport) => transport,
            None => {
                let transport = Transport::connect(&self.socket)
                    .await
                    .map_err(|message| SinkError::retry(0, message))?;
                tracing::debug!(
                    "syslog: connected to {} ({})",
                    self.socket,
                    transport.kind()
                );
                transport
            }
        };
        let mut message = Vec::new();
        for (index, event) in events.iter().enumerate() {
            message.clear();
            self.format.encode_into(&self.settings, event, &mut message);
            if let Err(e) = transport.send(&message).await {
                let error = self.send_error(index, event, message.len(), &e);
                // One event too large says nothing against the socket: keep it for the rest.
                if error.kind == SinkErrorKind::Permanent {
                    self.transport = Some(transport);
                }
                return Err(error);
            }
        }
        self.transport = Some(transport);
        Ok(())
    }

    async fn reopen(&mut self) -> Result<(), SinkError> {
        self.transport = None;
        Ok(())
    }

    async fn close(&mut self) -> Result<(), SinkError> {
        self.transport = None;
        Ok(())
    }
}

#[cfg(test)]
mod tests;

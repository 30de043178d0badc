//! The `syslog` sink: sends one syslog message per event over UDP, TCP, TLS, RELP or a local
//! socket.
//!
//! ```ini
//! [Pipe.MyAlerts]
//! From = alerts
//! To = syslog
//! Socket = /dev/log        # or host[:port]; default localhost (port 514, 6514 for tls)
//! Protocol = udp           # udp | tcp | tls | unix | relp | relp-tls; default from Socket
//! Format = legacy          # legacy | rfc3164 | rfc5424; default legacy
//! Framing = octet          # octet | lf | nul, streams only; default octet (nul: legacy on unix)
//! Window = 1024            # relp: unanswered messages at most; default 1024
//! Facility = local0        # default local0
//! Priority = info          # default info
//! Tag = procustodibus      # default procustodibus (RFC 5424: APP-NAME)
//! Hostname = web1          # RFC formats; default the system's short host name
//! MaxSize = 65507          # bytes per message; default 65507 over udp, else no limit
//! CA = /etc/ssl/syslog-ca.pem   # tls: trusted CAs (default the system's roots)
//! Cert = /etc/ssl/broker.pem    # tls: client certificate chain, with Key
//! Key = /etc/ssl/broker.key     # tls: its private key
//! ServerName = logs.example.com # tls: name to verify (default the host of Socket)
//! ```
//!
//! Every value is checked when the config loads ([`SyslogSink::from_settings`], no I/O); the
//! socket is resolved and connected on the first delivery and kept until an error worth
//! retrying, [`Sink::reopen`] or [`Sink::close`]. A stream connection the receiver closed is
//! noticed before the next batch and replaced; a batch is handed over only once the stream
//! confirmed it ([`confirmed`](crate::util::confirmed)), and what was not confirmed when a connection failed is
//! sent again on one new connection within the same delivery (at least once). The last batch
//! confirmed is kept and sent again if its connection closes right after it ([`Kept`]). A
//! missing local socket, a refused connection, a failed lookup or TLS handshake is worth
//! retrying; a message larger than `MaxSize` (or than the socket takes, `EMSGSIZE`) is
//! permanent for that one event, which the pipeline sets aside in the dead-letter file: it is
//! never cut.
//!
//! The parts: [`config`] (the keys), [`names`] (facility and priority tables),
//! [`format`](mod@format) (the bytes of a message, pure), [`framing`] (frames on a stream),
//! [`address`] (the `Socket` value) and [`transport`] (the connection for the endpoint). The
//! sockets, TLS and the confirmed stream writer are the sink toolkit's ([`crate::util`]);
//! [`relp`] delivers over RELP instead, where the receiver answers for each message (port 2514
//! by default).

pub mod address;
pub mod config;
pub mod format;
pub mod framing;
pub mod names;
pub mod relp;
pub mod transport;

use std::time::{Duration, Instant};

use async_trait::async_trait;
use broker_core::config::{ConfigError, PipeSettings};
use broker_core::registry::{BuildError, SinkKey};
use broker_core::{Event, KeyError, Sink, SinkError, SinkPlugin};

use crate::util::confirmed::kept::Kept;
use crate::util::confirmed::{ConfirmedStream, Unconfirmed, SETTLE};
use crate::util::connect::TIMEOUT;
use crate::util::io_error::reason;
use crate::util::tls::{self, TlsClient};
use config::{Endpoint, SyslogConfig};
use relp::RelpDelivery;
use transport::Connection;

/// The keys of a syslog pipe (see [`config`]), as messages and `--list-sinks` show them.
pub const KEYS: &[SinkKey] = &[
    SinkKey::one(
        "Socket",
        "host[:port] or path of a local socket (default localhost)",
    ),
    SinkKey::one(
        "Protocol",
        "udp, tcp, tls, unix, relp or relp-tls (default from Socket)",
    ),
    SinkKey::one("Format", "legacy, rfc3164 or rfc5424 (default legacy)"),
    SinkKey::one(
        "Framing",
        "octet, lf or nul on a stream (default octet; nul for legacy on unix)",
    ),
    SinkKey::one("Facility", "syslog facility name (default local0)"),
    SinkKey::one("Priority", "syslog priority name (default info)"),
    SinkKey::one("Tag", "tag before each message (default procustodibus)"),
    SinkKey::one(
        "Hostname",
        "host name in RFC 3164/5424 messages (default this system's)",
    ),
    SinkKey::one(
        "MaxSize",
        "largest message in bytes (default 65507 over udp, else none)",
    ),
    SinkKey::one(
        "Rate",
        "udp: datagrams per second at most (default 2000; 0 no pacing)",
    ),
    SinkKey::one(
        "Window",
        "relp: messages sent and not yet answered at most (default 1024)",
    ),
    tls::CA,
    tls::CERT,
    tls::KEY,
    tls::SERVER_NAME,
];

inventory::submit! {
    SinkPlugin {
        name: "syslog",
        keys: KEYS,
        build: build_syslog_sink,
    }
}

/// Builds a [`SyslogSink`] from a pipe's settings (the registered builder of the `syslog` sink).
fn build_syslog_sink(settings: &PipeSettings) -> Result<Box<dyn Sink>, BuildError> {
    Ok(Box::new(SyslogSink::from_settings(settings)?))
}

/// A sink that sends each event as one syslog message.
#[derive(Debug)]
pub struct SyslogSink {
    config: SyslogConfig,
    connection: Option<Connection>,
    connected_at: Instant,
    resolve_every: Duration,
    tls: TlsClient,
    stall: Duration,
    settle: Duration,
    kept: Kept,
    relp: RelpDelivery,
}

/// How long a UDP socket is kept before the host name is resolved again (a SIEM that moved to
/// another address is found within this time; a failed send resolves again at once).
pub const RESOLVE_EVERY: Duration = Duration::from_secs(60);

impl SyslogSink {
    /// A sink with these settings. Nothing is opened until the first delivery.
    pub fn new(config: SyslogConfig) -> Self {
        SyslogSink {
            config,
            connection: None,
            connected_at: Instant::now(),
            resolve_every: RESOLVE_EVERY,
            tls: TlsClient::default(),
            stall: TIMEOUT,
            settle: SETTLE,
            kept: Kept::new(SETTLE),
            relp: RelpDelivery::default(),
        }
    }

    /// Sets, for stream connections, how long a write or the send queue may stay still before
    /// a send fails (default [`TIMEOUT`]) and how long a connection must stay open after a batch
    /// for it to be let go (default [`SETTLE`]; see [`Kept`]).
    pub fn set_stream_limits(&mut self, stall: Duration, settle: Duration) {
        self.stall = stall;
        self.settle = settle;
        self.kept = Kept::new(settle);
    }

    /// Validates a pipe's keys (all optional), without resolving, connecting or reading
    /// anything.
    pub fn from_settings(settings: &PipeSettings) -> Result<Self, ConfigError> {
        Ok(SyslogSink::new(SyslogConfig::from_settings(settings)?))
    }

    /// The pipe's settings.
    pub fn config(&self) -> &SyslogConfig {
        &self.config
    }

    /// Where the messages go.
    pub fn endpoint(&self) -> &Endpoint {
        &self.config.endpoint
    }

    /// `" over TCP"` or `" over TLS"` after the endpoint in messages (nothing for UDP and local
    /// sockets, whose messages stay as they were).
    fn over(&self) -> &'static str {
        match self.config.endpoint {
            Endpoint::Tcp { .. } => " over TCP",
            Endpoint::Tls { .. } => " over TLS",
            Endpoint::Relp { .. } => relp::over(&self.config.endpoint),
            Endpoint::Udp { .. } | Endpoint::Local(_) => "",
        }
    }

    /// Connects afresh; the error is worth retrying, with nothing of this batch handed over.
    async fn connect(&mut self, delivered: usize) -> Result<Connection, SinkError> {
        let connection = Connection::connect(&self.config, &mut self.tls)
            .await
            .map_err(|message| SinkError::retry(delivered, message))?;
        let connection = match connection {
            Connection::Stream(stream) => {
                Connection::Stream(stream.with_limits(self.stall, self.settle))
            }
            datagram => datagram,
        };
        self.connected_at = Instant::now();
        tracing::debug!(
            "syslog: connected to {} ({})",
            self.config.endpoint,
            connection.kind()
        );
        Ok(connection)
    }

    /// The permanent error for event `index`, which is `size` bytes and too large: over
    /// `MaxSize` (`max`) or refused by the socket (`None`).
    fn too_large(&self, index: usize, event: &Event, size: usize, max: Option<usize>) -> SinkError {
        let id = match event.id() {
            Some(id) => format!("event {id}"),
            None => "event without id".to_string(),
        };
        let endpoint = &self.config.endpoint;
        let message = match max {
            Some(max) => format!("{id} is {size} bytes, over MaxSize {max} for {endpoint}"),
            None => format!("{id} is {size} bytes, too large for {endpoint}"),
        };
        SinkError::permanent(index, message)
    }

    /// Sends each message as one datagram; stops at the first failure.
    async fn send_datagrams(
        &mut self,
        mut connection: Connection,
        events: &[Event],
        datagrams: &[Vec<u8>],
    ) -> Result<(), SinkError> {
        let pace = match (&connection, self.config.rate) {
            (Connection::Udp(_), rate) if rate > 0 => Some(Duration::from_secs(1) / rate),
            _ => None,
        };
        let start = tokio::time::Instant::now();
        for (index, datagram) in datagrams.iter().enumerate() {
            if let Some(pace) = pace {
                // At most `Rate` datagrams a second, so a local receiver's buffer keeps up.
                tokio::time::sleep_until(start + pace * u32::try_from(index).unwrap_or(u32::MAX))
                    .await;
            }
            if let Err(e) = connection.send_datagram(datagram).await {
                if e.raw_os_error() == Some(libc::EMSGSIZE) {
                    // One event too large says nothing against the socket: keep it for the rest.
                    self.connection = Some(connection);
                    return Err(self.too_large(index, &events[index], datagram.len(), None));
                }
                let endpoint = &self.config.endpoint;
                return Err(SinkError::retry(
                    index,
                    format!("cannot send to {endpoint}: {}", reason(&e)),
                ));
            }
        }
        self.connection = Some(connection);
        Ok(())
    }

    /// Sends the messages on a stream until confirmed, after the kept batch if it is to go
    /// again ([`Kept`]); when the stream fails, once more from the first message not settled on a
    /// new connection (unless `stream` is itself new). The error counts the messages of `batch`
    /// that settled.
    async fn send_stream(
        &mut self,
        mut stream: ConfirmedStream,
        mut fresh: bool,
        batch: &[Vec<u8>],
    ) -> Result<(), SinkError> {
        let mut from = 0;
        loop {
            let resend = self.kept.to_resend();
            let resending = resend.len();
            let messages: Vec<&[u8]> = resend
                .iter()
                .chain(&batch[from..])
                .map(Vec::as_slice)
                .collect();
            let Unconfirmed { confirmed, error } = match stream.send(&messages).await {
                Ok(()) => {
                    self.connection = Some(Connection::Stream(stream));
                    return Ok(());
                }
                Err(unconfirmed) => unconfirmed,
            };
            drop(stream);
            if confirmed >= resending {
                self.kept.resent();
            }
            self.kept.connection_lost(Some(Duration::ZERO));
            from += confirmed.saturating_sub(resending);
            let failed = format!(
                "cannot send to {}{}: {}",
                self.config.endpoint,
                self.over(),
                reason(&error)
            );
            if fresh {
                return Err(SinkError::retry(from, failed));
            }
            tracing::debug!("syslog: {failed}; reconnecting");
            stream = match self.connect(from).await? {
                Connection::Stream(stream) => stream,
                datagram => {
                    // A local socket that came back as a datagram socket: the next delivery
                    // uses it.
                    self.connection = Some(datagram);
                    return Err(SinkError::retry(from, failed));
                }
            };
            fresh = true;
        }
    }
}

impl SyslogSink {
    /// Delivers over RELP: every message answered `200` by the receiver ([`relp`]); everything
    /// before the first message over `MaxSize` goes, and that one is set aside.
    async fn deliver_relp(&mut self, events: &[Event]) -> Result<(), SinkError> {
        let time = chrono::Local::now().fixed_offset();
        let max = self.config.max_size();
        let mut messages = Vec::with_capacity(events.len());
        for event in events {
            let message = self
                .config
                .format
                .encode(&self.config.message, event, &time);
            if max.is_some_and(|max| message.len() > max) {
                break;
            }
            messages.push(message);
        }
        let fit = messages.len();
        self.relp
            .send(
                &self.config,
                &mut self.tls,
                self.stall,
                &events[..fit],
                &messages,
            )
            .await?;
        match events.get(fit) {
            Some(event) => {
                let size = self
                    .config
                    .format
                    .encode(&self.config.message, event, &time)
                    .len();
                Err(self.too_large(fit, event, size, max))
            }
            None => Ok(()),
        }
    }
}

#[async_trait]
impl Sink for SyslogSink {
    async fn deliver(&mut self, events: &[Event]) -> Result<(), SinkError> {
        if events.is_empty() {
            return Ok(());
        }
        if self.config.endpoint.protocol().is_relp() {
            return self.deliver_relp(events).await;
        }
        // Taken out while sending: after an error worth retrying (or a cancelled delivery) it
        // stays dropped, so the next delivery connects afresh (a restarted receiver, a socket
        // that was missing and is back). A stream the receiver closed meanwhile is replaced now.
        let (connection, fresh) = match self.connection.take() {
            Some(Connection::Stream(mut stream)) => match stream.check_open() {
                Ok(()) => {
                    self.kept.seen_open();
                    (Connection::Stream(stream), false)
                }
                Err(e) => {
                    tracing::debug!(
                        "syslog: the connection to {} is gone ({}); reconnecting",
                        self.config.endpoint,
                        reason(&e)
                    );
                    self.kept.connection_lost(stream.quiet_for());
                    drop(stream);
                    (self.connect(0).await?, true)
                }
            },
            Some(Connection::Udp(_)) if self.connected_at.elapsed() >= self.resolve_every => {
                (self.connect(0).await?, true)
            }
            Some(connection) => (connection, false),
            None => (self.connect(0).await?, true),
        };
        let time = chrono::Local::now().fixed_offset();
        let format = self.config.format;
        let is_datagram = !matches!(connection, Connection::Stream(_));
        let mut messages: Vec<Vec<u8>> = events
            .iter()
            .map(|event| {
                let message = format.encode(&self.config.message, event, &time);
                if is_datagram {
                    framing::datagram(format, &message)
                } else {
                    message
                }
            })
            .collect();
        // Everything before the first message over MaxSize goes out; that one is set aside.
        let max = self.config.max_size();
        let fit = match max {
            Some(max) => messages.iter().take_while(|m| m.len() <= max).count(),
            None => messages.len(),
        };
        let too_large = messages.get(fit).map(Vec::len);
        messages.truncate(fit);
        match connection {
            Connection::Stream(stream) => {
                self.send_stream(stream, fresh, &messages).await?;
                self.kept.delivered(messages);
            }
            datagram => {
                self.send_datagrams(datagram, &events[..fit], &messages)
                    .await?;
            }
        }
        match too_large {
            Some(size) => Err(self.too_large(fit, &events[fit], size, max)),
            None => Ok(()),
        }
    }

    fn last_answer(&self) -> Option<String> {
        self.relp.last_answer()
    }

    fn check_files(&self) -> Result<(), KeyError> {
        self.config.tls.check_files()
    }

    async fn reopen(&mut self) -> Result<(), SinkError> {
        self.connection = None;
        self.relp.forget();
        self.tls.forget();
        Ok(())
    }

    async fn close(&mut self) -> Result<(), SinkError> {
        if let Some(Connection::Stream(mut stream)) = self.connection.take() {
            stream.shutdown().await;
        }
        self.relp.close().await;
        Ok(())
    }
}

#[cfg(test)]
mod tests;

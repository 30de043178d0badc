//! Transports that carry syslog messages: UDP, TCP, TLS, and local (unix) datagram or stream
//! sockets.
//!
//! A transport knows nothing of the message format: it connects to an [`Endpoint`] and carries
//! bytes. A datagram transport ([`Connection::Udp`], [`Connection::UnixDatagram`]) sends one
//! message per datagram; a stream ([`Connection::Stream`]) sends framed messages and confirms
//! them ([`stream`]). The parts: [`udp`], [`unix`], [`tcp`], [`tls`] (connecting) and
//! [`stream`] (writing and confirming on any stream); [`relp`] carries messages in RELP sessions
//! over TCP or TLS, acknowledged one by one (the sink drives it apart from [`Connection`]).

pub mod relp;
pub mod stream;
pub mod tcp;
pub mod tls;
pub mod udp;
pub mod unix;

use std::io;
use std::time::Duration;

use tokio::net::{UdpSocket, UnixDatagram};

use super::config::{Endpoint, SyslogConfig};
use stream::Stream;
use tls::TlsClient;

/// How long resolving, connecting, sending or confirming may take before it counts as failed
/// (a syslog daemon that stopped reading would otherwise stall the pipe without a word).
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// A connected socket to a syslog receiver.
#[derive(Debug)]
pub enum Connection {
    /// A UDP socket connected to one address of the host.
    Udp(UdpSocket),
    /// A connected unix datagram socket.
    UnixDatagram(UnixDatagram),
    /// A TCP, TLS or unix stream connection with its framing.
    Stream(Stream),
}

impl Connection {
    /// Connects to the pipe's endpoint. `tls` keeps the TLS client settings between connections
    /// (loaded on first use). The error is one line naming the endpoint.
    pub async fn connect(config: &SyslogConfig, tls: &mut TlsClient) -> Result<Connection, String> {
        let endpoint = &config.endpoint;
        match endpoint {
            Endpoint::Udp { host, port } => udp::connect(endpoint, host, *port)
                .await
                .map(Connection::Udp),
            Endpoint::Local(path) => unix::connect(endpoint, path, config.stream_framing()).await,
            Endpoint::Tcp { host, port } => {
                let tcp = tcp::connect(host, *port)
                    .await
                    .map_err(|e| format!("cannot connect to {endpoint} over TCP: {e}"))?;
                Ok(Connection::Stream(Stream::tcp(
                    tcp,
                    config.stream_framing(),
                )))
            }
            Endpoint::Relp { .. } => Err(format!(
                "{endpoint}: RELP runs in sessions of its own, not on a plain connection"
            )),
            Endpoint::Tls { host, port } => {
                let stream = tls
                    .connect(host, *port, &config.tls)
                    .await
                    .map_err(|e| format!("cannot connect to {endpoint} over TLS: {e}"))?;
                Ok(Connection::Stream(Stream::tls(
                    stream,
                    config.stream_framing(),
                )))
            }
        }
    }

    /// What kind of connection this is, for log lines (`UDP`, `unix datagram`, `TCP` ...).
    pub fn kind(&self) -> &'static str {
        match self {
            Connection::Udp(_) => "UDP",
            Connection::UnixDatagram(_) => "unix datagram",
            Connection::Stream(stream) => stream.kind(),
        }
    }

    /// Sends one datagram, whole, or fails (an error of kind `TimedOut` after [`TIMEOUT`]).
    /// Only for datagram connections; a stream refuses with `Unsupported`.
    pub async fn send_datagram(&mut self, datagram: &[u8]) -> io::Result<()> {
        let sent = match self {
            Connection::Udp(udp) => within_timeout(udp.send(datagram)).await?,
            Connection::UnixDatagram(unix) => within_timeout(unix.send(datagram)).await?,
            Connection::Stream(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "a stream carries frames, not datagrams",
                ))
            }
        };
        if sent == datagram.len() {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!("sent only {sent} of {} bytes", datagram.len()),
            ))
        }
    }
}

/// Runs `io` for at most [`TIMEOUT`].
pub(crate) async fn within_timeout<T>(
    io: impl std::future::Future<Output = io::Result<T>>,
) -> io::Result<T> {
    within(TIMEOUT, io).await
}

/// Runs `io` for at most `limit`; an error of kind `TimedOut` after that.
pub(crate) async fn within<T>(
    limit: Duration,
    io: impl std::future::Future<Output = io::Result<T>>,
) -> io::Result<T> {
    match tokio::time::timeout(limit, io).await {
        Ok(result) => result,
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("timed out after {}", span(limit)),
        )),
    }
}

/// A duration in words for messages: `30 seconds`, or `250 ms` under a second.
pub(crate) fn span(duration: Duration) -> String {
    if duration >= Duration::from_secs(1) {
        format!("{} seconds", duration.as_secs())
    } else {
        format!("{} ms", duration.as_millis())
    }
}

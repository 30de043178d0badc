//! The connection a syslog pipe uses: chosen from its [`Endpoint`], made with the sink toolkit
//! ([`crate::util`]).
//!
//! A transport knows nothing of the message format: it connects and carries bytes. A datagram
//! connection ([`Connection::Udp`], [`Connection::UnixDatagram`]) sends one message per datagram;
//! a stream ([`Connection::Stream`]: TCP, TLS or a local stream socket) sends messages in the
//! pipe's [`Framing`](super::framing::Framing) and confirms them
//! ([`ConfirmedStream`]). [`relp`] carries messages in RELP sessions over TCP or TLS,
//! acknowledged one by one (the sink drives it apart from [`Connection`]).

pub mod relp;

use std::io;

use tokio::net::{UdpSocket, UnixDatagram};

use super::config::{Endpoint, SyslogConfig};
use crate::util::confirmed::ConfirmedStream;
use crate::util::connect::{self, within, LocalSocket, TIMEOUT};
use crate::util::io_error::reason;
use crate::util::tls::TlsClient;

/// A connected socket to a syslog receiver.
#[derive(Debug)]
pub enum Connection {
    /// A UDP socket connected to one address of the host.
    Udp(UdpSocket),
    /// A connected unix datagram socket.
    UnixDatagram(UnixDatagram),
    /// A TCP, TLS or unix stream connection with its framing.
    Stream(ConfirmedStream),
}

impl Connection {
    /// Connects to the pipe's endpoint. `tls` keeps the TLS client settings between connections
    /// (loaded on first use). The error is one line naming the endpoint.
    pub async fn connect(config: &SyslogConfig, tls: &mut TlsClient) -> Result<Connection, String> {
        let endpoint = &config.endpoint;
        let framing = config.stream_framing();
        match endpoint {
            Endpoint::Udp { host, port } => connect::udp(host, *port, endpoint)
                .await
                .map(Connection::Udp),
            Endpoint::Local(path) => match connect::local(path).await {
                Ok(LocalSocket::Datagram(datagram)) => Ok(Connection::UnixDatagram(datagram)),
                Ok(LocalSocket::Stream(stream)) => {
                    Ok(Connection::Stream(ConfirmedStream::unix(stream, framing)))
                }
                Err(e) => Err(format!("cannot connect to {endpoint}: {}", reason(&e))),
            },
            Endpoint::Tcp { host, port } => {
                let tcp = connect::tcp(host, *port)
                    .await
                    .map_err(|e| format!("cannot connect to {endpoint} over TCP: {e}"))?;
                Ok(Connection::Stream(ConfirmedStream::tcp(tcp, framing)))
            }
            Endpoint::Relp { .. } => Err(format!(
                "{endpoint}: RELP runs in sessions of its own, not on a plain connection"
            )),
            Endpoint::Tls { host, port } => {
                let stream = tls
                    .connect(host, *port, &config.tls)
                    .await
                    .map_err(|e| format!("cannot connect to {endpoint} over TLS: {e}"))?;
                Ok(Connection::Stream(ConfirmedStream::tls(stream, framing)))
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
            Connection::Udp(udp) => within(TIMEOUT, udp.send(datagram)).await?,
            Connection::UnixDatagram(unix) => within(TIMEOUT, unix.send(datagram)).await?,
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

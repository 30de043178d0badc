//! Transports that carry syslog messages: UDP, and local (unix) datagram or stream sockets.
//!
//! A transport knows nothing of the message format: it connects to a [`Socket`] and sends bytes,
//! one message per call. Over UDP and a unix datagram socket each message is one datagram; over a
//! unix stream socket messages follow one another (each ends in the NUL byte the format adds).

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{UdpSocket, UnixDatagram, UnixStream};

use super::address::Socket;
use crate::os_error::reason;

/// How long resolving, connecting or sending one message may take before it counts as failed
/// (a syslog daemon that stopped reading would otherwise stall the pipe without a word).
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// A connected socket to a syslog receiver.
#[derive(Debug)]
pub enum Transport {
    /// A UDP socket connected to one address of the host.
    Udp(UdpSocket),
    /// A connected unix datagram socket.
    UnixDatagram(UnixDatagram),
    /// A unix stream socket (the fallback when the local socket is not a datagram socket).
    UnixStream(UnixStream),
}

impl Transport {
    /// Resolves (for UDP) and connects to `socket`. The error is one line naming the socket.
    pub async fn connect(socket: &Socket) -> Result<Transport, String> {
        match socket {
            Socket::Local(path) => connect_local(socket, path).await,
            Socket::Udp { host, port } => connect_udp(socket, host, *port).await,
        }
    }

    /// Sends one message, whole, or fails (an error of kind `TimedOut` after [`TIMEOUT`]).
    pub async fn send(&mut self, message: &[u8]) -> io::Result<()> {
        let sent = match self {
            Transport::Udp(udp) => within_timeout(udp.send(message)).await?,
            Transport::UnixDatagram(unix) => within_timeout(unix.send(message)).await?,
            Transport::UnixStream(stream) => {
                within_timeout(stream.write_all(message)).await?;
                message.len()
            }
        };
        if sent == message.len() {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!("sent only {sent} of {} bytes", message.len()),
            ))
        }
    }

    /// What kind of socket this is, for log lines (`UDP`, `unix datagram`, `unix stream`).
    pub fn kind(&self) -> &'static str {
        match self {
            Transport::Udp(_) => "UDP",
            Transport::UnixDatagram(_) => "unix datagram",
            Transport::UnixStream(_) => "unix stream",
        }
    }
}

/// A datagram socket first; a stream socket if the path is one (`EPROTOTYPE`).
async fn connect_local(socket: &Socket, path: &Path) -> Result<Transport, String> {
    let failed = |e: io::Error| format!("cannot connect to {socket}: {}", reason(&e));
    let datagram = UnixDatagram::unbound().map_err(failed)?;
    match datagram.connect(path) {
        Ok(()) => Ok(Transport::UnixDatagram(datagram)),
        Err(e) if e.raw_os_error() == Some(libc::EPROTOTYPE) => {
            let stream = within_timeout(UnixStream::connect(path))
                .await
                .map_err(failed)?;
            Ok(Transport::UnixStream(stream))
        }
        Err(e) => Err(failed(e)),
    }
}

/// Resolves the host and connects a UDP socket to the first address that takes it.
async fn connect_udp(socket: &Socket, host: &str, port: u16) -> Result<Transport, String> {
    let addresses = within_timeout(tokio::net::lookup_host((host, port)))
        .await
        .map_err(|e| format!("cannot resolve {socket}: {}", reason(&e)))?;
    let mut last_error = None;
    for address in addresses {
        match connect_udp_to(address).await {
            Ok(udp) => return Ok(Transport::Udp(udp)),
            Err(e) => last_error = Some((address, e)),
        }
    }
    Err(match last_error {
        Some((address, e)) => format!("cannot connect to {socket} ({address}): {}", reason(&e)),
        None => format!("cannot resolve {socket}: no address found"),
    })
}

/// Binds an unspecified address of the same family, port 0, and connects it to `address`.
async fn connect_udp_to(address: SocketAddr) -> io::Result<UdpSocket> {
    let local: SocketAddr = match address {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let udp = UdpSocket::bind(local).await?;
    udp.connect(address).await?;
    Ok(udp)
}

/// Runs `io` for at most [`TIMEOUT`].
async fn within_timeout<T>(io: impl std::future::Future<Output = io::Result<T>>) -> io::Result<T> {
    match tokio::time::timeout(TIMEOUT, io).await {
        Ok(result) => result,
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("timed out after {} seconds", TIMEOUT.as_secs()),
        )),
    }
}

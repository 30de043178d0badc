//! Connecting with a time limit: TCP and UDP to `host:port`, unix stream and datagram sockets.
//!
//! Every wait is bounded: a name that does not resolve, a host that drops packets or a receiver
//! that stopped reading fails after [`TIMEOUT`] (or the limit given to [`within`]) with an error
//! of kind `TimedOut` that says so (`timed out after 30 seconds`), instead of stalling the pipe
//! without a word. A host name is resolved on every connection, and each of its addresses is
//! tried in turn, so a receiver that moved or has an IPv4 and an IPv6 address is found.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use tokio::net::{TcpStream, UdpSocket, UnixDatagram, UnixStream};

use super::io_error::reason;

/// How long resolving, connecting, sending or confirming may take before it counts as failed
/// (a receiver that stopped reading would otherwise stall the pipe without a word).
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// Runs `io` for at most `limit`; an error of kind `TimedOut` after that, whose text is
/// `timed out after {limit}` ([`span`]).
pub async fn within<T>(limit: Duration, io: impl Future<Output = io::Result<T>>) -> io::Result<T> {
    match tokio::time::timeout(limit, io).await {
        Ok(result) => result,
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("timed out after {}", span(limit)),
        )),
    }
}

/// A duration in words for messages: `30 seconds`, or `250 ms` under a second.
pub fn span(duration: Duration) -> String {
    if duration >= Duration::from_secs(1) {
        format!("{} seconds", duration.as_secs())
    } else {
        format!("{} ms", duration.as_millis())
    }
}

/// Resolves `host` and opens a TCP connection to the first of its addresses that accepts one,
/// trying each in turn, each within [`TIMEOUT`]. Nagle's algorithm is off (a message goes out as
/// it is written). The error is the reason only, so the caller names the endpoint and protocol:
/// `cannot resolve logs.example.com: ...`, or the last address's failure, `connection refused
/// (127.0.0.1:514)`.
pub async fn tcp(host: &str, port: u16) -> Result<TcpStream, String> {
    let addresses: Vec<_> = within(TIMEOUT, tokio::net::lookup_host((host, port)))
        .await
        .map_err(|e| format!("cannot resolve {host}: {}", reason(&e)))?
        .collect();
    let mut last_error = format!("cannot resolve {host}: no address found");
    for address in addresses {
        match within(TIMEOUT, TcpStream::connect(address)).await {
            Ok(tcp) => {
                // Messages go out as they are written; Nagle would only delay the last one.
                let _ = tcp.set_nodelay(true);
                return Ok(tcp);
            }
            Err(e) => last_error = format!("{} ({address})", reason(&e)),
        }
    }
    Err(last_error)
}

/// Resolves `host` and connects a UDP socket (bound to an unspecified address of the same
/// family, port 0) to the first of its addresses that takes it. The error is one line naming
/// `endpoint`: `cannot resolve {endpoint}: ...` or `cannot connect to {endpoint} ({address}):
/// ...`.
pub async fn udp(
    host: &str,
    port: u16,
    endpoint: &(dyn fmt::Display + Sync),
) -> Result<UdpSocket, String> {
    let addresses = within(TIMEOUT, tokio::net::lookup_host((host, port)))
        .await
        .map_err(|e| format!("cannot resolve {endpoint}: {}", reason(&e)))?;
    let mut last_error = None;
    for address in addresses {
        match udp_to(address).await {
            Ok(udp) => return Ok(udp),
            Err(e) => last_error = Some((address, e)),
        }
    }
    Err(match last_error {
        Some((address, e)) => format!("cannot connect to {endpoint} ({address}): {}", reason(&e)),
        None => format!("cannot resolve {endpoint}: no address found"),
    })
}

/// Binds an unspecified address of the same family, port 0, and connects it to `address`.
async fn udp_to(address: SocketAddr) -> io::Result<UdpSocket> {
    let local: SocketAddr = match address {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let udp = UdpSocket::bind(local).await?;
    udp.connect(address).await?;
    Ok(udp)
}

/// An unbound unix datagram socket connected to the socket at `path`. A stream socket there
/// fails with `EPROTOTYPE` (see [`local`]).
pub fn unix_datagram(path: &Path) -> io::Result<UnixDatagram> {
    let datagram = UnixDatagram::unbound()?;
    datagram.connect(path)?;
    Ok(datagram)
}

/// A unix stream connection to the socket at `path`, within [`TIMEOUT`].
pub async fn unix_stream(path: &Path) -> io::Result<UnixStream> {
    within(TIMEOUT, UnixStream::connect(path)).await
}

/// A connection to a local socket of either kind.
#[derive(Debug)]
pub enum LocalSocket {
    /// The path is a datagram socket (`/dev/log` on most systems).
    Datagram(UnixDatagram),
    /// The path is a stream socket.
    Stream(UnixStream),
}

/// Connects to the local socket at `path` as a datagram socket, or, if it is a stream socket
/// (`EPROTOTYPE`), as a stream.
pub async fn local(path: &Path) -> io::Result<LocalSocket> {
    match unix_datagram(path) {
        Ok(datagram) => Ok(LocalSocket::Datagram(datagram)),
        Err(e) if e.raw_os_error() == Some(libc::EPROTOTYPE) => {
            unix_stream(path).await.map(LocalSocket::Stream)
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn within_names_the_limit() {
        let slow = within(
            Duration::from_millis(20),
            std::future::pending::<io::Result<()>>(),
        );
        let error = slow.await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert_eq!(error.to_string(), "timed out after 20 ms");
        assert_eq!(span(TIMEOUT), "30 seconds");
    }

    #[tokio::test]
    async fn tcp_names_the_refused_address() {
        // A port that was just free: nothing listens there.
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let error = tcp("127.0.0.1", port).await.unwrap_err();
        assert_eq!(error, format!("connection refused (127.0.0.1:{port})"));
    }

    #[tokio::test]
    async fn local_tells_a_datagram_socket_from_a_stream_socket() {
        let dir = tempfile::tempdir().unwrap();
        let datagram_path = dir.path().join("dgram");
        let _receiver = UnixDatagram::bind(&datagram_path).unwrap();
        assert!(matches!(
            local(&datagram_path).await.unwrap(),
            LocalSocket::Datagram(_)
        ));
        let stream_path = dir.path().join("stream");
        let _listener = tokio::net::UnixListener::bind(&stream_path).unwrap();
        assert!(matches!(
            local(&stream_path).await.unwrap(),
            LocalSocket::Stream(_)
        ));
        let missing = local(&dir.path().join("none")).await.unwrap_err();
        assert_eq!(reason(&missing), "no such file or directory");
    }
}

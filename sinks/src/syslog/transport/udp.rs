//! UDP: a socket connected to the first address of the host that takes it.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use tokio::net::UdpSocket;

use super::within_timeout;
use crate::syslog::config::Endpoint;
use crate::util::io_error::reason;

/// Resolves `host` and connects a UDP socket to the first address that takes it. The error is
/// one line naming `endpoint`.
pub async fn connect(endpoint: &Endpoint, host: &str, port: u16) -> Result<UdpSocket, String> {
    let addresses = within_timeout(tokio::net::lookup_host((host, port)))
        .await
        .map_err(|e| format!("cannot resolve {endpoint}: {}", reason(&e)))?;
    let mut last_error = None;
    for address in addresses {
        match connect_to(address).await {
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
async fn connect_to(address: SocketAddr) -> io::Result<UdpSocket> {
    let local: SocketAddr = match address {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let udp = UdpSocket::bind(local).await?;
    udp.connect(address).await?;
    Ok(udp)
}

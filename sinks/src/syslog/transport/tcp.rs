//! TCP: a connection to the first address of the host that accepts one.

use tokio::net::TcpStream;

use super::within_timeout;
use crate::util::io_error::reason;

/// Resolves `host` and connects to the first address that accepts, trying each in turn; the
/// error is the reason only (the caller names the endpoint).
pub async fn connect(host: &str, port: u16) -> Result<TcpStream, String> {
    let addresses: Vec<_> = within_timeout(tokio::net::lookup_host((host, port)))
        .await
        .map_err(|e| format!("cannot resolve {host}: {}", reason(&e)))?
        .collect();
    let mut last_error = format!("cannot resolve {host}: no address found");
    for address in addresses {
        match within_timeout(TcpStream::connect(address)).await {
            Ok(tcp) => {
                // Messages go out as they are written; Nagle would only delay the last frame.
                let _ = tcp.set_nodelay(true);
                return Ok(tcp);
            }
            Err(e) => last_error = format!("{} ({address})", reason(&e)),
        }
    }
    Err(last_error)
}

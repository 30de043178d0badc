//! Local (unix) sockets: a datagram socket first; a stream socket if the path is one.

use std::io;
use std::path::Path;

use tokio::net::{UnixDatagram, UnixStream};

use super::stream::Stream;
use super::{within_timeout, Connection};
use crate::syslog::config::Endpoint;
use crate::syslog::framing::Framing;
use crate::util::io_error::reason;

/// Connects to the local socket at `path`: as a datagram socket, or, if it is a stream socket
/// (`EPROTOTYPE`), as a stream with `framing`. The error is one line naming `endpoint`.
pub async fn connect(
    endpoint: &Endpoint,
    path: &Path,
    framing: Framing,
) -> Result<Connection, String> {
    let failed = |e: io::Error| format!("cannot connect to {endpoint}: {}", reason(&e));
    let datagram = UnixDatagram::unbound().map_err(failed)?;
    match datagram.connect(path) {
        Ok(()) => Ok(Connection::UnixDatagram(datagram)),
        Err(e) if e.raw_os_error() == Some(libc::EPROTOTYPE) => {
            let stream = within_timeout(UnixStream::connect(path))
                .await
                .map_err(failed)?;
            Ok(Connection::Stream(Stream::unix(stream, framing)))
        }
        Err(e) => Err(failed(e)),
    }
}

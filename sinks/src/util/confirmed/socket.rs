//! What the confirmed stream asks of a socket: how many written bytes the receiver's end has not
//! taken yet (the send queue), how long the TCP peer has been quiet, and the socket options it
//! sets (keepalive; a reset instead of a close when bytes are left unconfirmed).

use std::fmt;
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpStream, UnixStream};
use tokio_rustls::client::TlsStream;

/// A byte stream to a receiver that can tell how much of what was written is still unconfirmed.
pub trait ByteStream: AsyncRead + AsyncWrite + Unpin + Send + fmt::Debug {
    /// Bytes written and not yet taken by the receiver's end (`None` where the system cannot
    /// tell).
    fn unconfirmed_bytes(&self) -> Option<usize>;

    /// How long ago the receiver last sent anything (for TCP, its last acknowledgement or FIN;
    /// `None` where the system cannot tell).
    fn quiet_for(&self) -> Option<Duration> {
        None
    }

    /// The socket's descriptor, for socket options.
    fn socket_fd(&self) -> RawFd;
}

impl ByteStream for TcpStream {
    fn unconfirmed_bytes(&self) -> Option<usize> {
        send_queue(self.as_raw_fd())
    }

    fn quiet_for(&self) -> Option<Duration> {
        tcp_quiet_for(self.as_raw_fd())
    }

    fn socket_fd(&self) -> RawFd {
        self.as_raw_fd()
    }
}

impl ByteStream for UnixStream {
    fn unconfirmed_bytes(&self) -> Option<usize> {
        send_queue(self.as_raw_fd())
    }

    fn socket_fd(&self) -> RawFd {
        self.as_raw_fd()
    }
}

impl ByteStream for TlsStream<TcpStream> {
    fn unconfirmed_bytes(&self) -> Option<usize> {
        send_queue(self.get_ref().0.as_raw_fd())
    }

    fn quiet_for(&self) -> Option<Duration> {
        tcp_quiet_for(self.get_ref().0.as_raw_fd())
    }

    fn socket_fd(&self) -> RawFd {
        self.get_ref().0.as_raw_fd()
    }
}

/// The bytes in a socket's send queue: for TCP, sent and not yet acknowledged or not yet sent;
/// for a unix stream socket, not yet read by the peer (Linux's `TIOCOUTQ`, alias `SIOCOUTQ`).
#[cfg(target_os = "linux")]
fn send_queue(fd: RawFd) -> Option<usize> {
    let mut bytes: libc::c_int = 0;
    // SAFETY: TIOCOUTQ writes one int through the pointer, which points at `bytes`; the
    // descriptor belongs to a socket the caller holds.
    let result = unsafe { libc::ioctl(fd, libc::TIOCOUTQ, &mut bytes) };
    (result == 0).then(|| usize::try_from(bytes).unwrap_or(0))
}

/// The bytes in a socket's send buffer, not yet acknowledged (FreeBSD's `FIONWRITE`). Checked
/// with `cargo check` and `cargo clippy --target x86_64-unknown-freebsd`; never run (the tests
/// run on Linux only).
#[cfg(target_os = "freebsd")]
fn send_queue(fd: RawFd) -> Option<usize> {
    let mut bytes: libc::c_int = 0;
    // SAFETY: FIONWRITE writes one int through the pointer, which points at `bytes`; the
    // descriptor belongs to a socket the caller holds.
    let result = unsafe { libc::ioctl(fd, libc::FIONWRITE, &mut bytes) };
    (result == 0).then(|| usize::try_from(bytes).unwrap_or(0))
}

/// Unknown on this system.
#[cfg(not(any(target_os = "linux", target_os = "freebsd")))]
fn send_queue(_fd: RawFd) -> Option<usize> {
    None
}

/// How long ago the TCP peer last acknowledged anything (`TCP_INFO`'s `tcpi_last_ack_recv`):
/// after our data was taken, the receiver's next segment is its FIN, so on a closed connection
/// this says how long ago it closed. A reset carries no acknowledgement: it then says how long
/// ago our data was taken, which errs on the side of resending.
#[cfg(target_os = "linux")]
fn tcp_quiet_for(fd: RawFd) -> Option<Duration> {
    // SAFETY: tcp_info is plain integers; all zeros is a valid value.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut size = libc::socklen_t::try_from(std::mem::size_of::<libc::tcp_info>()).ok()?;
    // SAFETY: TCP_INFO writes at most `size` bytes into `info`; the descriptor belongs to a
    // socket the caller holds.
    let result = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            std::ptr::from_mut(&mut info).cast(),
            &mut size,
        )
    };
    (result == 0).then(|| Duration::from_millis(u64::from(info.tcpi_last_ack_recv)))
}

/// Unknown on this system.
#[cfg(not(target_os = "linux"))]
fn tcp_quiet_for(_fd: RawFd) -> Option<Duration> {
    None
}

/// Turns on TCP keepalive, so a connection an idle NAT or load balancer dropped is noticed.
pub(super) fn keep_alive(fd: RawFd) {
    set_option(
        fd,
        libc::SOL_SOCKET,
        libc::SO_KEEPALIVE,
        &(1 as libc::c_int),
    );
}

/// Makes closing the socket reset the connection (`SO_LINGER` 0), dropping any unsent bytes.
pub(super) fn abort_on_close(fd: RawFd) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    set_option(fd, libc::SOL_SOCKET, libc::SO_LINGER, &linger);
}

/// Sets one socket option; a failure only loses the option.
fn set_option<T>(fd: RawFd, level: libc::c_int, name: libc::c_int, value: &T) {
    let size = libc::socklen_t::try_from(std::mem::size_of::<T>()).unwrap_or(0);
    // SAFETY: `value` points at a live `T` of `size` bytes, the layout the option expects; the
    // descriptor belongs to a socket the caller holds.
    unsafe { libc::setsockopt(fd, level, name, std::ptr::from_ref(value).cast(), size) };
}

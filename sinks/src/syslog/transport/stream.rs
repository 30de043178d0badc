//! Writing framed messages on a stream (TCP, TLS, a unix stream socket), and confirming them.
//!
//! Plain syslog over a stream has no acknowledgements: a write succeeds as soon as the kernel
//! takes the bytes, even on a connection the receiver has already closed. So a batch counts as
//! handed over only once it is *confirmed*: written, flushed, taken off the send queue by the
//! receiver's end (for TCP and TLS: acknowledged by its TCP stack; for a unix stream socket: read
//! by the receiving process), with the connection still open afterwards. Events written but not
//! confirmed when a connection fails are the unconfirmed tail of the batch, which the sink sends
//! again on a new connection; so delivery is at least once, and only that tail may arrive twice.
//! (Bytes a receiver had taken but not yet processed when it died are beyond what syslog over a
//! stream can know.) Where the system cannot tell the size of the send queue (not Linux), a batch
//! is confirmed once flushed on a connection that is still open.

use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpStream, UnixStream};
use tokio_rustls::client::TlsStream;

use super::{within_timeout, TIMEOUT};
use crate::syslog::framing::Framing;

/// How many bytes of frames go to the socket in one write (and between two checks).
const CHUNK: usize = 64 * 1024;

/// The longest pause between two looks at the send queue while waiting for confirmation.
const MAX_PAUSE: Duration = Duration::from_millis(50);

/// A byte stream to a receiver that can tell how much of what was written is still unconfirmed.
pub trait ByteStream: AsyncRead + AsyncWrite + Unpin + Send + fmt::Debug {
    /// Bytes written and not yet taken by the receiver's end (`None` where the system cannot
    /// tell).
    fn unconfirmed_bytes(&self) -> Option<usize>;

    /// The socket's descriptor, for socket options.
    fn socket_fd(&self) -> RawFd;
}

impl ByteStream for TcpStream {
    fn unconfirmed_bytes(&self) -> Option<usize> {
        send_queue(self)
    }

    fn socket_fd(&self) -> RawFd {
        self.as_raw_fd()
    }
}

impl ByteStream for UnixStream {
    fn unconfirmed_bytes(&self) -> Option<usize> {
        send_queue(self)
    }

    fn socket_fd(&self) -> RawFd {
        self.as_raw_fd()
    }
}

impl ByteStream for TlsStream<TcpStream> {
    fn unconfirmed_bytes(&self) -> Option<usize> {
        send_queue(self.get_ref().0)
    }

    fn socket_fd(&self) -> RawFd {
        self.get_ref().0.as_raw_fd()
    }
}

/// The bytes in a socket's send queue: for TCP, sent and not yet acknowledged or not yet sent;
/// for a unix stream socket, not yet read by the peer (Linux's `TIOCOUTQ`).
#[cfg(target_os = "linux")]
fn send_queue(socket: &impl std::os::fd::AsRawFd) -> Option<usize> {
    let mut bytes: libc::c_int = 0;
    // SAFETY: TIOCOUTQ writes one int through the pointer, which points at `bytes`; the
    // descriptor belongs to a socket that lives as long as `socket` is borrowed.
    let result = unsafe { libc::ioctl(socket.as_raw_fd(), libc::TIOCOUTQ, &mut bytes) };
    (result == 0).then(|| usize::try_from(bytes).unwrap_or(0))
}

/// Unknown on this system.
#[cfg(not(target_os = "linux"))]
fn send_queue(_socket: &impl std::os::fd::AsRawFd) -> Option<usize> {
    None
}

/// Turns on TCP keepalive, so a connection an idle NAT or load balancer dropped is noticed.
fn keep_alive(fd: RawFd) {
    set_option(
        fd,
        libc::SOL_SOCKET,
        libc::SO_KEEPALIVE,
        &(1 as libc::c_int),
    );
}

/// Makes closing the socket reset the connection (`SO_LINGER` 0), dropping any unsent bytes.
fn abort_on_close(fd: RawFd) {
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

/// Events of a batch that a failed stream did confirm, and why it failed.
#[derive(Debug)]
pub struct Unconfirmed {
    /// How many messages at the front of the batch were confirmed before the failure.
    pub confirmed: usize,
    /// What failed.
    pub error: io::Error,
}

/// A stream connection to a syslog receiver, with the framing of its messages.
#[derive(Debug)]
pub struct Stream {
    io: Box<dyn ByteStream>,
    framing: Framing,
    kind: &'static str,
}

impl Stream {
    /// A TCP connection.
    pub fn tcp(tcp: TcpStream, framing: Framing) -> Self {
        keep_alive(tcp.as_raw_fd());
        Stream::new(Box::new(tcp), framing, "TCP")
    }

    /// A TLS connection.
    pub fn tls(tls: TlsStream<TcpStream>, framing: Framing) -> Self {
        keep_alive(tls.get_ref().0.as_raw_fd());
        Stream::new(Box::new(tls), framing, "TLS")
    }

    /// A unix stream connection.
    pub fn unix(unix: UnixStream, framing: Framing) -> Self {
        Stream::new(Box::new(unix), framing, "unix stream")
    }

    /// Any byte stream (`kind` names it in log lines).
    pub fn new(io: Box<dyn ByteStream>, framing: Framing, kind: &'static str) -> Self {
        Stream { io, framing, kind }
    }

    /// `TCP`, `TLS` or `unix stream`.
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// The framing of every message on this stream.
    pub fn framing(&self) -> Framing {
        self.framing
    }

    /// Whether the receiver still has the connection open, without waiting: an error if it
    /// closed its end or reset the connection. Anything the receiver sent (syslog receivers send
    /// nothing) is read and dropped.
    pub fn check_open(&mut self) -> io::Result<()> {
        let mut context = Context::from_waker(Waker::noop());
        let mut buf = [0u8; 1024];
        for _ in 0..64 {
            let mut read = ReadBuf::new(&mut buf);
            match Pin::new(&mut self.io).poll_read(&mut context, &mut read) {
                Poll::Pending => return Ok(()),
                Poll::Ready(Ok(())) if read.filled().is_empty() => {
                    return Err(io::Error::new(
                        io::ErrorKind::ConnectionAborted,
                        "the receiver closed the connection",
                    ))
                }
                Poll::Ready(Ok(())) => continue,
                Poll::Ready(Err(e)) => return Err(e),
            }
        }
        Ok(())
    }

    /// Ends the connection politely (a TLS close_notify, a TCP FIN), waiting at most a second.
    pub async fn shutdown(&mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(1), self.io.shutdown()).await;
    }

    /// Writes every message in its frame, in order, and returns once all are confirmed (see the
    /// module docs); on failure, says how many at the front were confirmed. A frame is confirmed
    /// as soon as it ends at or before `written - queued` (the bytes the receiver's end has taken),
    /// so a slow receiver confirms frames as it goes; waiting fails only when nothing moves for
    /// [`TIMEOUT`].
    pub async fn send(&mut self, messages: &[Vec<u8>]) -> Result<(), Unconfirmed> {
        let mut progress = Progress::default();
        let mut chunk = Vec::with_capacity(CHUNK);
        for (index, message) in messages.iter().enumerate() {
            self.framing.frame_into(message, &mut chunk);
            progress.frame_ends.push(progress.written + chunk.len());
            if chunk.len() < CHUNK && index + 1 < messages.len() {
                continue;
            }
            let written = async {
                within_timeout(self.io.write_all(&chunk)).await?;
                within_timeout(self.io.flush()).await
            }
            .await;
            if let Err(error) = written {
                // Part of a frame may be in the send queue: reset the connection when it is
                // dropped instead of sending the torn frame ahead of a FIN.
                abort_on_close(self.io.socket_fd());
                return Err(progress.failed(error));
            }
            progress.written += chunk.len();
            chunk.clear();
            let queued = self.io.unconfirmed_bytes();
            self.check_open().map_err(|error| progress.failed(error))?;
            progress.taken(queued);
        }
        self.wait_until_taken(&mut progress)
            .await
            .map_err(|error| progress.failed(error))
    }

    /// Waits until the send queue is empty (where the system can tell) and the connection is
    /// still open then; fails when the queue has not shrunk for [`TIMEOUT`].
    async fn wait_until_taken(&mut self, progress: &mut Progress) -> io::Result<()> {
        let mut last_move = Instant::now();
        let mut last_queued = None;
        let mut pause = Duration::from_millis(1);
        loop {
            let queued = self.io.unconfirmed_bytes();
            self.check_open()?;
            progress.taken(queued);
            match queued {
                None | Some(0) => return Ok(()),
                Some(bytes) if last_queued.is_none_or(|last| bytes < last) => {
                    last_queued = Some(bytes);
                    last_move = Instant::now();
                }
                Some(bytes) if last_move.elapsed() >= TIMEOUT => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!(
                            "the receiver took nothing of the last {bytes} bytes for {} seconds",
                            TIMEOUT.as_secs()
                        ),
                    ))
                }
                Some(_) => {}
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(MAX_PAUSE);
        }
    }
}

/// How far a batch on a stream has got: the bytes written, where each frame ends, and how many
/// frames at the front the receiver's end has taken.
#[derive(Debug, Default)]
struct Progress {
    written: usize,
    frame_ends: Vec<usize>,
    confirmed: usize,
}

impl Progress {
    /// Confirms every written frame that ends at or before `written - queued`; with no reading of
    /// the send queue (`None`), nothing until the end of the batch.
    fn taken(&mut self, queued: Option<usize>) {
        let Some(queued) = queued else { return };
        let taken = self.written.saturating_sub(queued);
        self.confirmed = self.frame_ends.partition_point(|&end| end <= taken);
    }

    /// The failure, with the frames confirmed before it.
    fn failed(&self, error: io::Error) -> Unconfirmed {
        Unconfirmed {
            confirmed: self.confirmed,
            error,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsRawFd;

    use super::{Progress, Stream};
    use crate::syslog::framing::Framing;

    #[tokio::test]
    async fn tcp_streams_have_keepalive_on() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let tcp = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let fd = tcp.as_raw_fd();
        let _stream = Stream::tcp(tcp, Framing::Octet);
        let mut on: libc::c_int = 0;
        let mut size = libc::socklen_t::try_from(std::mem::size_of::<libc::c_int>()).unwrap();
        // SAFETY: reads one int option into `on`, whose size is `size`.
        let result = unsafe {
            libc::getsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_KEEPALIVE,
                std::ptr::from_mut(&mut on).cast(),
                &mut size,
            )
        };
        assert_eq!(result, 0);
        assert_eq!(on, 1, "SO_KEEPALIVE is on");
    }

    #[test]
    fn frames_are_confirmed_as_far_as_the_receiver_took_them() {
        let mut progress = Progress {
            written: 300,
            frame_ends: vec![100, 200, 300, 400],
            confirmed: 0,
        };
        progress.taken(Some(150));
        assert_eq!(
            progress.confirmed, 1,
            "only the frame ending at 100 is taken"
        );
        progress.taken(Some(100));
        assert_eq!(progress.confirmed, 2);
        progress.taken(Some(0));
        assert_eq!(
            progress.confirmed, 3,
            "the unwritten frame is not confirmed"
        );
        progress.taken(None);
        assert_eq!(progress.confirmed, 3);
    }
}

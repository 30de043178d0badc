//! The confirmed stream writer: framed messages on a stream (TCP, TLS, a unix stream socket),
//! each counted as delivered only once the receiver's end has taken it.
//!
//! A stream protocol without acknowledgements (syslog over TCP, CEF or JSON lines to a
//! collector) gives no word of delivery: a write succeeds as soon as the kernel takes the bytes,
//! even on a connection the receiver has already closed. So a batch counts as handed over only
//! once it is *confirmed*: written, flushed, taken off the send queue by the receiver's end (for
//! TCP and TLS: acknowledged by its TCP stack; for a unix stream socket: read by the receiving
//! process), with the connection still open afterwards. When a connection fails part way, only
//! the frames it *settled* count as handed over: taken by the receiver's end with the connection
//! seen open [`SETTLE`] later. The rest is sent again on a new connection, so delivery is at
//! least once. (Bytes a receiver had taken but not processed when it went away are beyond what a
//! stream can know; a sink keeps the last confirmed batch for [`SETTLE`] to cover a close right
//! after it, with [`kept::Kept`].)
//!
//! The send queue is read with `TIOCOUTQ` on Linux and `FIONWRITE` on FreeBSD. Where the system
//! has neither, a flush is not taken as delivery: a batch is confirmed only once its connection
//! has stayed open for [`SETTLE`] after the flush (so such a stream carries at most one batch per
//! [`SETTLE`]). A connection given up with bytes unconfirmed (a failure, a timeout, a delivery
//! cancelled at shutdown) is reset (`SO_LINGER` 0) rather than closed, so no torn frame reaches
//! the receiver ahead of a clean end.
//!
//! A sink connects with [`connect`](super::connect), wraps the connection in a
//! [`ConfirmedStream`] with its [`Framer`] (how one message is laid on the stream), and calls
//! [`ConfirmedStream::send`] for each batch: `Ok` means every message was confirmed;
//! [`Unconfirmed`] says how many at the front settled before the failure, the count the sink
//! reports as delivered. The parts: `socket` (what is read and set on the socket: [`ByteStream`]),
//! `progress` (which frames are confirmed and settled) and [`kept`] (the last batch, kept in
//! case its connection closes right after it).

pub mod kept;
mod progress;
mod socket;

use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpStream, UnixStream};
use tokio_rustls::client::TlsStream;

use super::connect::{span, within, TIMEOUT};
use progress::Progress;
pub use socket::ByteStream;
use socket::{abort_on_close, keep_alive};

/// How many bytes of frames go to the socket in one write (and between two checks).
const CHUNK: usize = 64 * 1024;

/// The longest pause between two looks at the send queue while waiting for confirmation.
const MAX_PAUSE: Duration = Duration::from_millis(50);

/// How long a connection must stay open after the receiver's end took some frames for them to
/// count as handed over even if it fails later (a receiver that closes at once may have dropped
/// what it had not read).
pub const SETTLE: Duration = Duration::from_secs(3);

/// How one message is laid on a stream, so the receiver tells messages apart: a length before
/// it, a newline or a NUL after it. Messages sent on a [`ConfirmedStream`] are counted by frame.
pub trait Framer: fmt::Debug + Send + Sync {
    /// Appends `message`, in its frame, to `out`.
    fn frame_into(&self, message: &[u8], out: &mut Vec<u8>);
}

/// Armed while a batch is on its way: dropped armed (the send failed, timed out or was
/// cancelled), it makes the socket reset the connection when closed, so the receiver sees a
/// reset instead of a torn frame and a clean end. Costs nothing on success.
struct ResetUnlessConfirmed {
    fd: RawFd,
    armed: bool,
}

impl Drop for ResetUnlessConfirmed {
    fn drop(&mut self) {
        if self.armed {
            abort_on_close(self.fd);
        }
    }
}

/// Events of a batch that a failed stream did confirm, and why it failed.
#[derive(Debug)]
pub struct Unconfirmed {
    /// How many messages at the front of the batch were settled before the failure (taken by
    /// the receiver's end, and the connection seen open [`SETTLE`] after).
    pub confirmed: usize,
    /// What failed.
    pub error: io::Error,
}

/// A stream connection to a receiver, with the framing of its messages, that confirms what it
/// sends (see the module docs).
#[derive(Debug)]
pub struct ConfirmedStream {
    io: Box<dyn ByteStream>,
    framer: Box<dyn Framer>,
    kind: &'static str,
    stall: Duration,
    settle: Duration,
}

impl ConfirmedStream {
    /// A TCP connection (TCP keepalive turned on, so a connection an idle NAT or load balancer
    /// dropped is noticed).
    pub fn tcp(tcp: TcpStream, framer: impl Framer + 'static) -> Self {
        keep_alive(tcp.as_raw_fd());
        ConfirmedStream::new(Box::new(tcp), framer, "TCP")
    }

    /// A TLS connection (TCP keepalive turned on).
    pub fn tls(tls: TlsStream<TcpStream>, framer: impl Framer + 'static) -> Self {
        keep_alive(tls.get_ref().0.as_raw_fd());
        ConfirmedStream::new(Box::new(tls), framer, "TLS")
    }

    /// A unix stream connection.
    pub fn unix(unix: UnixStream, framer: impl Framer + 'static) -> Self {
        ConfirmedStream::new(Box::new(unix), framer, "unix stream")
    }

    /// Any byte stream (`kind` names it in log lines), with the stall limit [`TIMEOUT`] and the
    /// settling time [`SETTLE`].
    pub fn new(io: Box<dyn ByteStream>, framer: impl Framer + 'static, kind: &'static str) -> Self {
        ConfirmedStream {
            io,
            framer: Box::new(framer),
            kind,
            stall: TIMEOUT,
            settle: SETTLE,
        }
    }

    /// Sets how long a write or the send queue may stay still before the send fails (default
    /// [`TIMEOUT`]), and how long the connection must stay open for taken frames to settle
    /// (default [`SETTLE`]).
    pub fn with_limits(mut self, stall: Duration, settle: Duration) -> Self {
        self.stall = stall;
        self.settle = settle;
        self
    }

    /// `TCP`, `TLS` or `unix stream`.
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// How long ago the receiver last sent anything: on a connection it closed, about how long
    /// ago it closed it (TCP on Linux; `None` elsewhere).
    pub fn quiet_for(&self) -> Option<Duration> {
        self.io.quiet_for()
    }

    /// Whether the receiver still has the connection open, without waiting: an error if it
    /// closed its end or reset the connection. Anything the receiver sent is read and dropped (this
    /// writer is for protocols whose receivers answer nothing, such as syslog).
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
    /// module docs); on failure, says how many at the front were settled. A frame is taken as
    /// soon as it ends at or before `written - queued` (the bytes the receiver's end has taken),
    /// so a slow receiver confirms frames as it goes; writing or waiting fails only when nothing
    /// moves for the stall limit ([`TIMEOUT`]). A send that fails or is cancelled leaves the
    /// connection to be reset when dropped.
    pub async fn send<M: AsRef<[u8]>>(&mut self, messages: &[M]) -> Result<(), Unconfirmed> {
        let mut guard = ResetUnlessConfirmed {
            fd: self.io.socket_fd(),
            armed: true,
        };
        let mut progress = Progress::new(Instant::now());
        let sent = self.write_and_confirm(messages, &mut progress).await;
        guard.armed = sent.is_err();
        sent.map_err(|error| progress.failed(error))
    }

    /// The body of [`ConfirmedStream::send`].
    async fn write_and_confirm<M: AsRef<[u8]>>(
        &mut self,
        messages: &[M],
        progress: &mut Progress,
    ) -> io::Result<()> {
        let mut chunk = Vec::with_capacity(CHUNK);
        for (index, message) in messages.iter().enumerate() {
            self.framer.frame_into(message.as_ref(), &mut chunk);
            progress.frame_ends.push(progress.written + chunk.len());
            if chunk.len() < CHUNK && index + 1 < messages.len() {
                continue;
            }
            self.write_chunk(&chunk).await?;
            progress.written += chunk.len();
            chunk.clear();
            let queued = self.io.unconfirmed_bytes();
            self.check_open()?;
            progress.taken(queued, Instant::now(), self.settle);
        }
        self.wait_until_taken(progress).await
    }

    /// Writes and flushes `bytes`; fails when a write takes nothing for the stall limit.
    async fn write_chunk(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            let wrote = within(self.stall, self.io.write(bytes))
                .await
                .map_err(|e| stalled(e, bytes.len(), self.stall))?;
            if wrote == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            bytes = &bytes[wrote..];
        }
        within(self.stall, self.io.flush()).await
    }

    /// Waits until the send queue is empty and the connection is still open then; fails when
    /// the queue has not shrunk for the stall limit. Where the system cannot tell the queue, waits
    /// instead until the connection has stayed open for the settling time after the flush.
    async fn wait_until_taken(&mut self, progress: &mut Progress) -> io::Result<()> {
        let flushed = Instant::now();
        let mut last_move = flushed;
        let mut last_queued = None;
        let mut pause = Duration::from_millis(1);
        loop {
            let queued = self.io.unconfirmed_bytes();
            self.check_open()?;
            let now = Instant::now();
            progress.taken(queued, now, self.settle);
            match queued {
                Some(0) => return Ok(()),
                None if now.duration_since(flushed) >= self.settle => return Ok(()),
                None => {}
                Some(bytes) if last_queued.is_none_or(|last| bytes < last) => {
                    last_queued = Some(bytes);
                    last_move = now;
                }
                Some(bytes) if now.duration_since(last_move) >= self.stall => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!(
                            "the receiver took nothing of the last {bytes} bytes for {}",
                            span(self.stall)
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

/// A write that timed out, in words: the receiver took nothing of `left` bytes.
fn stalled(error: io::Error, left: usize, stall: Duration) -> io::Error {
    if error.kind() != io::ErrorKind::TimedOut {
        return error;
    }
    io::Error::new(
        io::ErrorKind::TimedOut,
        format!(
            "the receiver took nothing of the next {left} bytes for {}",
            span(stall)
        ),
    )
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsRawFd;

    use super::{ConfirmedStream, Framer};

    /// Each message as it is, then a newline.
    #[derive(Debug)]
    struct Lines;

    impl Framer for Lines {
        fn frame_into(&self, message: &[u8], out: &mut Vec<u8>) {
            out.extend_from_slice(message);
            out.push(b'\n');
        }
    }

    #[tokio::test]
    async fn tcp_streams_have_keepalive_on() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let tcp = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let fd = tcp.as_raw_fd();
        let _stream = ConfirmedStream::tcp(tcp, Lines);
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
}

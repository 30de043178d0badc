//! Writing framed messages on a stream (TCP, TLS, a unix stream socket), and confirming them.
//!
//! Plain syslog over a stream has no acknowledgements: a write succeeds as soon as the kernel
//! takes the bytes, even on a connection the receiver has already closed. So a batch counts as
//! handed over only once it is *confirmed*: written, flushed, taken off the send queue by the
//! receiver's end (for TCP and TLS: acknowledged by its TCP stack; for a unix stream socket: read
//! by the receiving process), with the connection still open afterwards. When a connection fails
//! part way, only the frames it *settled* count as handed over: taken by the receiver's end with
//! the connection seen open [`SETTLE`] later. The rest is sent again on a new connection, so
//! delivery is at least once. (Bytes a receiver had taken but not processed when it went away
//! are beyond what syslog over a stream can know; the sink keeps the last confirmed batch for
//! [`SETTLE`] to cover a close right after it, see `syslog::kept`.)
//!
//! The send queue is read with `TIOCOUTQ` on Linux and `FIONWRITE` on FreeBSD. Where the system
//! has neither, a flush is not taken as delivery: a batch is confirmed only once its connection
//! has stayed open for [`SETTLE`] after the flush (so such a stream carries at most one batch per
//! [`SETTLE`]). A connection given up with bytes unconfirmed (a failure, a timeout, a delivery
//! cancelled at shutdown) is reset (`SO_LINGER` 0) rather than closed, so no torn frame reaches
//! the receiver ahead of a clean end.

use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpStream, UnixStream};
use tokio_rustls::client::TlsStream;

use super::{span, within, TIMEOUT};
use crate::syslog::framing::Framing;

/// How many bytes of frames go to the socket in one write (and between two checks).
const CHUNK: usize = 64 * 1024;

/// The longest pause between two looks at the send queue while waiting for confirmation.
const MAX_PAUSE: Duration = Duration::from_millis(50);

/// How long a connection must stay open after the receiver's end took some frames for them to
/// count as handed over even if it fails later (a receiver that closes at once may have dropped
/// what it had not read).
pub const SETTLE: Duration = Duration::from_secs(3);

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

/// A stream connection to a syslog receiver, with the framing of its messages.
#[derive(Debug)]
pub struct Stream {
    io: Box<dyn ByteStream>,
    framing: Framing,
    kind: &'static str,
    stall: Duration,
    settle: Duration,
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

    /// Any byte stream (`kind` names it in log lines), with the stall limit [`TIMEOUT`] and the
    /// settling time [`SETTLE`].
    pub fn new(io: Box<dyn ByteStream>, framing: Framing, kind: &'static str) -> Self {
        Stream {
            io,
            framing,
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

    /// The framing of every message on this stream.
    pub fn framing(&self) -> Framing {
        self.framing
    }

    /// How long ago the receiver last sent anything: on a connection it closed, about how long
    /// ago it closed it (TCP on Linux; `None` elsewhere).
    pub fn quiet_for(&self) -> Option<Duration> {
        self.io.quiet_for()
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

    /// The body of [`Stream::send`].
    async fn write_and_confirm<M: AsRef<[u8]>>(
        &mut self,
        messages: &[M],
        progress: &mut Progress,
    ) -> io::Result<()> {
        let mut chunk = Vec::with_capacity(CHUNK);
        for (index, message) in messages.iter().enumerate() {
            self.framing.frame_into(message.as_ref(), &mut chunk);
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

/// How far a batch on a stream has got: the bytes written, where each frame ends, how many
/// frames at the front the receiver's end has taken, and how many of those have settled.
#[derive(Debug)]
struct Progress {
    written: usize,
    frame_ends: Vec<usize>,
    confirmed: usize,
    settled: usize,
    /// When `confirmed` was last noted, and its value then.
    noted: (Instant, usize),
}

impl Progress {
    /// Nothing written yet, at `now`.
    fn new(now: Instant) -> Self {
        Progress {
            written: 0,
            frame_ends: Vec::new(),
            confirmed: 0,
            settled: 0,
            noted: (now, 0),
        }
    }

    /// Takes every written frame that ends at or before `written - queued` (with no reading of
    /// the send queue, `None`, nothing until the end of the batch), the connection being open
    /// at `now`. Frames taken at least `settle` before `now` have settled.
    fn taken(&mut self, queued: Option<usize>, now: Instant, settle: Duration) {
        if let Some(queued) = queued {
            let taken = self.written.saturating_sub(queued);
            self.confirmed = self.frame_ends.partition_point(|&end| end <= taken);
        }
        if now.duration_since(self.noted.0) >= settle {
            self.settled = self.noted.1;
            self.noted = (now, self.confirmed);
        }
    }

    /// The failure, with the frames settled before it.
    fn failed(&self, error: io::Error) -> Unconfirmed {
        Unconfirmed {
            confirmed: self.settled,
            error,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsRawFd;
    use std::time::{Duration, Instant};

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
        let start = Instant::now();
        let settle = Duration::from_secs(3);
        let mut progress = Progress::new(start);
        progress.written = 300;
        progress.frame_ends = vec![100, 200, 300, 400];
        progress.taken(Some(150), start, settle);
        assert_eq!(
            progress.confirmed, 1,
            "only the frame ending at 100 is taken"
        );
        progress.taken(Some(100), start, settle);
        assert_eq!(progress.confirmed, 2);
        progress.taken(Some(0), start + Duration::from_secs(1), settle);
        assert_eq!(
            progress.confirmed, 3,
            "the unwritten frame is not confirmed"
        );
        progress.taken(None, start + Duration::from_secs(2), settle);
        assert_eq!(progress.confirmed, 3);
        assert_eq!(progress.settled, 0, "nothing was taken 3 s ago");
        progress.taken(None, start + Duration::from_secs(3), settle);
        assert_eq!(progress.settled, 0, "at the start nothing was taken");
        progress.taken(None, start + Duration::from_secs(6), settle);
        assert_eq!(progress.settled, 3, "taken by 3 s, open at 6 s");
        let failed = progress.failed(std::io::ErrorKind::BrokenPipe.into());
        assert_eq!(failed.confirmed, 3);
    }
}

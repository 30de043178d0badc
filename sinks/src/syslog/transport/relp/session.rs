//! A RELP session on one connection (TCP or TLS): `open`, `syslog` commands in a window, the
//! receiver's answers, `close`.
//!
//! Sending and reading run together (full duplex): frames go out while the window has room,
//! and every answer that arrives frees its place at once, so a batch streams without a pause
//! per message. Nothing moving for the stall limit (no byte taken, no answer) fails the session,
//! as does a `serverclose` hint, the connection's end or a malformed frame; the caller then
//! sends every unanswered message again on a new session.

use std::fmt;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf, ReadHalf, WriteHalf};

use super::ack::{ack_now, ACK_DELAY};
use super::frame::{self, encode, next_txnr, Answer, Frame, Parser};
use super::window::Window;
use crate::util::io_error::reason;

/// A connection a session runs on: TCP or TLS over TCP (its descriptor is the TCP socket's).
pub trait RelpIo: AsyncRead + AsyncWrite + AsRawFd + Unpin + Send + fmt::Debug {}

impl<T: AsyncRead + AsyncWrite + AsRawFd + Unpin + Send + fmt::Debug> RelpIo for T {}

/// How many bytes of frames go to the connection in one write.
const CHUNK: usize = 64 * 1024;

/// How long `close` waits for the receiver's answer.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// An open RELP session.
pub struct Session {
    reader: ReadHalf<Box<dyn RelpIo>>,
    writer: WriteHalf<Box<dyn RelpIo>>,
    /// The TCP socket under `reader` and `writer` (open as long as they are), for [`ack_now`].
    socket: RawFd,
    parser: Parser,
    frames: Vec<Frame>,
    buf: Box<[u8]>,
    txnr: u32,
    closing: bool,
    stall: Duration,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("txnr", &self.txnr)
            .field("closing", &self.closing)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// Opens a session on `io`: sends `open` with this client's offers and waits for the
    /// receiver's `200` that enables the `syslog` command. `stall` bounds every wait. The error
    /// is the reason only (the caller names the endpoint).
    pub async fn open(io: Box<dyn RelpIo>, stall: Duration) -> Result<Session, String> {
        let socket = io.as_raw_fd();
        let (reader, writer) = tokio::io::split(io);
        let mut session = Session {
            reader,
            writer,
            socket,
            parser: Parser::default(),
            frames: Vec::new(),
            buf: vec![0; CHUNK].into_boxed_slice(),
            txnr: 1,
            closing: false,
            stall,
        };
        let mut out = Vec::new();
        encode(session.txnr, "open", &frame::open_offers(), &mut out);
        let open_txnr = session.txnr;
        session.txnr = next_txnr(session.txnr);
        session.write_all(&out).await?;
        let answer = session.answer_to(open_txnr).await?;
        if answer.code != 200 {
            return Err(format!(
                "the receiver refused the RELP session: {} {}",
                answer.code, answer.text
            ));
        }
        if !frame::offers_syslog(&answer.data) {
            return Err("the receiver does not offer the RELP syslog command".to_string());
        }
        Ok(session)
    }

    /// Whether the session can carry more, without waiting: false once the receiver closed the
    /// connection, sent `serverclose`, or anything unexpected. Answers already due are read.
    pub fn is_open(&mut self) -> bool {
        let mut context = Context::from_waker(Waker::noop());
        while !self.closing {
            let mut read = ReadBuf::new(&mut self.buf);
            match Pin::new(&mut self.reader).poll_read(&mut context, &mut read) {
                Poll::Pending => return true,
                Poll::Ready(Ok(())) if read.filled().is_empty() => return false,
                Poll::Ready(Ok(())) => {
                    let n = read.filled().len();
                    if self.parser.push(&self.buf[..n], &mut self.frames).is_err() {
                        return false;
                    }
                    // Between batches nothing is unanswered: any frame but a hint is wrong.
                    for frame in self.frames.drain(..) {
                        if frame.txnr != 0 || frame.command == "serverclose" {
                            self.closing = true;
                        }
                    }
                }
                Poll::Ready(Err(_)) => return false,
            }
        }
        false
    }

    /// Sends `messages` as `syslog` commands, those the `window` says are waiting, until every
    /// one is answered. On failure the window holds what was answered; the session is then done.
    pub async fn send(&mut self, messages: &[Vec<u8>], window: &mut Window) -> Result<(), String> {
        let mut out: Vec<u8> = Vec::with_capacity(CHUNK + 1024);
        let mut written = 0;
        let mut unflushed = false;
        // One timer for the whole batch: when it fires, it is set again from the last progress
        // unless nothing moved for the stall limit.
        let mut progress = Instant::now();
        let stalled = tokio::time::sleep(self.stall);
        tokio::pin!(stalled);
        // Set after a read while nothing is left to send: then the acknowledgement goes out.
        let ack = tokio::time::sleep(ACK_DELAY);
        tokio::pin!(ack);
        let mut ack_due = false;
        loop {
            // Frames go out as soon as the window has room: an answer's place is filled at once,
            // which also keeps acknowledgements riding on data (waiting for a larger burst
            // leaves the receiver's Nagle algorithm holding answers for a delayed ACK).
            if written == out.len() {
                out.clear();
                written = 0;
                while out.len() < CHUNK {
                    let Some(index) = window.next_to_send() else {
                        break;
                    };
                    encode(self.txnr, "syslog", &messages[index], &mut out);
                    window.sent(index, self.txnr);
                    self.txnr = next_txnr(self.txnr);
                }
            }
            if window.all_answered() {
                return Ok(());
            }
            if self.closing {
                return Err("the receiver ended the session (serverclose)".to_string());
            }
            let Session {
                reader,
                writer,
                buf,
                stall,
                ..
            } = self;
            let stall = *stall;
            let pending = &out[written..];
            tokio::select! {
                read = reader.read(&mut buf[..]) => {
                    let n = read.map_err(|e| reason(&e))?;
                    if n == 0 {
                        return Err("the receiver closed the connection".to_string());
                    }
                    self.take_answers(n, window)?;
                    progress = Instant::now();
                    // No frame of ours will carry the acknowledgement of these answers.
                    if written == out.len() && window.next_to_send().is_none() {
                        ack.as_mut().reset((progress + ACK_DELAY).into());
                        ack_due = true;
                    }
                }
                wrote = async {
                    if pending.is_empty() {
                        writer.flush().await.map(|()| 0)
                    } else {
                        writer.write(pending).await
                    }
                }, if !pending.is_empty() || unflushed => {
                    let n = wrote.map_err(|e| reason(&e))?;
                    if !pending.is_empty() && n == 0 {
                        return Err("the connection took no more bytes".to_string());
                    }
                    written += n;
                    unflushed = n > 0;
                    progress = Instant::now();
                }
                () = &mut ack, if ack_due => {
                    ack_due = false;
                    ack_now(self.socket);
                }
                () = &mut stalled => {
                    if progress.elapsed() >= stall {
                        return Err(format!(
                            "no answer for {} seconds ({} messages unanswered)",
                            stall.as_secs_f32(),
                            window.on_the_way()
                        ));
                    }
                    stalled.as_mut().reset((progress + stall).into());
                }
            }
        }
    }

    /// Reads the frames in the first `n` bytes of the buffer into the window.
    fn take_answers(&mut self, n: usize, window: &mut Window) -> Result<(), String> {
        self.parser
            .push(&self.buf[..n], &mut self.frames)
            .map_err(|e| e.to_string())?;
        for frame in self.frames.drain(..) {
            match (frame.txnr, frame.command.as_str()) {
                (_, "serverclose") => self.closing = true,
                (0, _) => {} // A hint this client does not know: ignored, as librelp does.
                (txnr, "rsp") => {
                    let answer = Answer::parse(&frame.data).map_err(|e| e.to_string())?;
                    window.answered(txnr, answer.code, &answer.text)?;
                }
                (txnr, command) => {
                    return Err(format!(
                        "the receiver sent the command {command:?} (transaction {txnr}) instead \
                         of an answer"
                    ))
                }
            }
        }
        Ok(())
    }

    /// Writes and flushes `bytes`, within the stall limit.
    async fn write_all(&mut self, bytes: &[u8]) -> Result<(), String> {
        let write = async {
            self.writer.write_all(bytes).await?;
            self.writer.flush().await
        };
        match tokio::time::timeout(self.stall, write).await {
            Ok(result) => result.map_err(|e| reason(&e)),
            Err(_) => Err(format!("sending timed out after {:?}", self.stall)),
        }
    }

    /// Waits for the answer to `txnr`, within the stall limit.
    async fn answer_to(&mut self, txnr: u32) -> Result<Answer, String> {
        let wait = async {
            loop {
                if let Some(at) = self.frames.iter().position(|f| f.txnr == txnr) {
                    let frame = self.frames.remove(at);
                    if frame.command != "rsp" {
                        return Err(format!(
                            "the receiver sent {:?} instead of an answer",
                            frame.command
                        ));
                    }
                    return Answer::parse(&frame.data).map_err(|e| e.to_string());
                }
                if self.frames.iter().any(|f| f.command == "serverclose") {
                    return Err("the receiver ended the session (serverclose)".to_string());
                }
                let n = self
                    .reader
                    .read(&mut self.buf)
                    .await
                    .map_err(|e| reason(&e))?;
                if n == 0 {
                    return Err("the receiver closed the connection".to_string());
                }
                self.parser
                    .push(&self.buf[..n], &mut self.frames)
                    .map_err(|e| e.to_string())?;
            }
        };
        match tokio::time::timeout(self.stall, wait).await {
            Ok(answer) => answer,
            Err(_) => Err(format!(
                "no answer for {} seconds",
                self.stall.as_secs_f32()
            )),
        }
    }

    /// Ends the session politely: `close`, the receiver's answer (at most a second), then the
    /// connection's end.
    pub async fn close(mut self) {
        let mut out = Vec::new();
        encode(self.txnr, "close", b"", &mut out);
        let txnr = self.txnr;
        self.stall = CLOSE_WAIT;
        if !self.closing && self.write_all(&out).await.is_ok() {
            let _ = self.answer_to(txnr).await;
        }
        let _ = tokio::time::timeout(CLOSE_WAIT, self.writer.shutdown()).await;
    }
}

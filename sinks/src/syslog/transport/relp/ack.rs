//! Acknowledging the receiver's answers at the right moment, so that they come in few large
//! reads instead of many small ones and never wait for a delayed ACK.
//!
//! librelp writes each answer as it makes it, with Nagle's algorithm on: after the first answer
//! of a burst, the rest wait in the receiver's socket until that first one is acknowledged. A
//! client that is still sending acknowledges with its next frame. A client with nothing more to
//! send (the end of a batch, or a full window) acknowledges only when its kernel's delayed-ACK
//! timer fires, some 40 ms later on Linux: once per batch, which held RELP to a fifth of the rate
//! of plain TCP in relp-bench. Acknowledging every answer at once instead (`TCP_QUICKACK` = 1)
//! makes the receiver send each answer in a segment of its own, and the session wakes for every
//! one or two answers: at deliveries of 1000 messages, some 450 reads, with the sink's and
//! rsyslog's CPU per message up by half.
//!
//! So the session waits [`ACK_DELAY`] after a read while it has nothing to send, and then
//! [`ack_now`]: the receiver's held answers come in one segment, and the kernel goes back to
//! delaying. relp-bench: about 8 reads per 1000 messages, the sink's CPU per message as low as
//! over plain TCP, and RELP at 0.6 to 0.7 of the TCP rate into the same rsyslog.

use std::os::fd::RawFd;
use std::time::Duration;

/// How long the session waits, with nothing to send, before it acknowledges what it read: one
/// tick of tokio's timer. In relp-bench, 2 ms and 4 ms were slower, and no delay at all far
/// slower (above).
pub const ACK_DELAY: Duration = Duration::from_millis(1);

/// Sends the acknowledgement of what arrived on `socket` now, if one is due, and leaves the
/// kernel delaying the next ones (Linux's `TCP_QUICKACK` with the value 2: an even value pushes
/// the due ACK and then goes back to delayed ACKs). A failure only costs the wait for the
/// kernel's own timer.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn ack_now(socket: RawFd) {
    let push_then_delay: libc::c_int = 2;
    let size = libc::socklen_t::try_from(std::mem::size_of::<libc::c_int>()).unwrap_or(0);
    // SAFETY: the option value points at a live int of `size` bytes; the descriptor is the
    // session's socket, open while the session holds it.
    unsafe {
        libc::setsockopt(
            socket,
            libc::IPPROTO_TCP,
            libc::TCP_QUICKACK,
            std::ptr::from_ref(&push_then_delay).cast(),
            size,
        );
    }
}

/// Nothing to do where the system has no `TCP_QUICKACK`: its own delayed-ACK timer decides.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub fn ack_now(_socket: RawFd) {}

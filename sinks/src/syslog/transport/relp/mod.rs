//! RELP, the Reliable Event Logging Protocol of librelp (rsyslog's `imrelp`), over TCP or TLS.
//!
//! The client opens a session with `open` and its offers (`relp_version=0`, `relp_software=...`,
//! `commands=syslog`), then sends each message as a `syslog` command with a transaction number
//! (1, 2, ... up to 999999999, then 1 again); the receiver answers each with `rsp` and a status,
//! `200 OK` when it took the message. A message counts as delivered only on that `200`. At most a
//! window of messages is unanswered at once. A broken session (the connection's end, the
//! receiver's `serverclose` hint, nothing moving for the stall limit) leaves the unanswered
//! messages to be sent again on a new session: delivery is at least once. The parts: [`frame`]
//! (the bytes of frames, both ways), [`window`] (which messages are answered), [`session`]
//! (the I/O) and [`ack`] (when the session acknowledges the receiver's answers).

pub mod ack;
pub mod frame;
pub mod session;
pub mod window;

/// The usual RELP port (rsyslog's `imrelp` examples and most setups), with or without TLS.
pub const RELP_PORT: u16 = 2514;

/// Unanswered messages at most, by default. librelp's own default is 128; with a pipe's batch of
/// up to 1000 messages, a window that holds the whole batch lets it go out in a few large writes
/// and its answers come back in a few reads: relp-bench measured a RELP/TCP rate ratio of 0.64
/// to 0.72 with 1024, against 0.40 with 128, where every full window waits for answers (rsyslog
/// 8.2302 on a quiet 2-core machine).
pub const DEFAULT_WINDOW: usize = 1024;

/// The largest `Window` accepted: the answers to a whole window must fit the socket buffers
/// while the client is still writing.
pub const MAX_WINDOW: usize = 65_536;

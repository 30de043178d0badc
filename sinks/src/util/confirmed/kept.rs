//! The last batch a stream delivered, kept in memory in case its connection closes right after.
//!
//! A stream batch counts as delivered once the receiver's kernel has it (see
//! [`confirmed`](super)); a receiver that closes or restarts right then may drop it unread. So
//! the sink keeps the batch until its connection has carried the next batch or was seen open
//! [`SETTLE`](super::SETTLE) after it. If the connection is seen closed (end of stream, reset, a
//! failed write) within that time, the kept batch goes again, first, on the next connection:
//! duplicates are possible, loss is not.

use std::time::{Duration, Instant};

/// The kept batch of a stream sink.
#[derive(Debug)]
pub struct Kept {
    messages: Vec<Vec<u8>>,
    delivered_at: Instant,
    resend: bool,
    window: Duration,
}

impl Kept {
    /// Nothing kept; a batch is kept for `window` after its delivery.
    pub fn new(window: Duration) -> Self {
        Kept {
            messages: Vec::new(),
            delivered_at: Instant::now(),
            resend: false,
            window,
        }
    }

    /// A batch was confirmed: it replaces the one kept before (whose connection carried this
    /// one after it, or which was just sent again ahead of it).
    /// An empty batch (every event too large) keeps the batch kept before, and if that one was
    /// just sent again, keeps it from now on.
    pub fn delivered(&mut self, messages: Vec<Vec<u8>>) {
        if !messages.is_empty() {
            self.messages = messages;
            self.delivered_at = Instant::now();
        } else if self.resend {
            self.delivered_at = Instant::now();
        }
        self.resend = false;
    }

    /// The connection that carried the kept batch is open now: once the window has passed, the
    /// batch is let go.
    pub fn seen_open(&mut self) {
        if !self.resend && self.delivered_at.elapsed() >= self.window {
            self.messages = Vec::new();
        }
    }

    /// The connection that carried the kept batch is gone; it closed `closed_ago` ago, or just
    /// now, or (`None`) at a time not known. Closed within the window (or not known when), the
    /// batch is to be sent again; else it is let go.
    pub fn connection_lost(&mut self, closed_ago: Option<Duration>) {
        if self.resend || self.messages.is_empty() {
            return;
        }
        let open_for = match closed_ago {
            Some(ago) => self.delivered_at.elapsed().saturating_sub(ago),
            None => Duration::ZERO,
        };
        if open_for < self.window {
            self.resend = true;
        } else {
            self.messages = Vec::new();
        }
    }

    /// The messages to send again, first, on the next connection (empty if none).
    pub fn to_resend(&self) -> &[Vec<u8>] {
        if self.resend {
            &self.messages
        } else {
            &[]
        }
    }

    /// The batch sent again was confirmed and settled on a new connection: let it go.
    pub fn resent(&mut self) {
        if self.resend {
            self.messages = Vec::new();
            self.resend = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch() -> Vec<Vec<u8>> {
        vec![b"a".to_vec(), b"b".to_vec()]
    }

    #[test]
    fn a_close_within_the_window_sends_the_batch_again() {
        let mut kept = Kept::new(Duration::from_secs(3));
        assert!(kept.to_resend().is_empty());
        kept.delivered(batch());
        kept.seen_open();
        assert!(kept.to_resend().is_empty(), "kept, not yet to resend");
        kept.connection_lost(Some(Duration::ZERO));
        assert_eq!(kept.to_resend(), batch());
        kept.seen_open();
        assert_eq!(kept.to_resend(), batch(), "still to resend on the new one");
        kept.resent();
        assert!(kept.to_resend().is_empty());
        kept.connection_lost(None);
        assert!(kept.to_resend().is_empty(), "nothing kept any more");
    }

    #[test]
    fn a_batch_is_let_go_after_the_window() {
        let mut kept = Kept::new(Duration::ZERO);
        kept.delivered(batch());
        kept.seen_open();
        kept.connection_lost(None);
        assert!(kept.to_resend().is_empty());
        let mut kept = Kept::new(Duration::from_millis(100));
        kept.delivered(batch());
        std::thread::sleep(Duration::from_millis(150));
        kept.connection_lost(Some(Duration::from_millis(10)));
        assert!(
            kept.to_resend().is_empty(),
            "it closed 140 ms after the batch"
        );
        kept.delivered(batch());
        kept.connection_lost(None);
        assert_eq!(kept.to_resend(), batch(), "when it closed is not known");
    }
}

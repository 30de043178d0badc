//! The window of a batch on a RELP session: which messages are unanswered, answered, refused.
//!
//! At most `size` messages are on their way (sent, unanswered) at once. A message counts as
//! delivered only when the receiver answered `200` for its transaction number; any other status
//! refuses that message for good. When a connection breaks, every message on its way goes back
//! to be sent again on the next connection, in order: so delivery is at least once. Pure state,
//! no I/O: the session ([`super::session`]) drives it.

use std::collections::HashMap;

/// Where one message of the batch is.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Status {
    /// Not sent on the current connection (yet, or again).
    Waiting,
    /// Sent with this transaction number, unanswered.
    Sent(u32),
    /// The receiver answered 200.
    Delivered,
    /// The receiver answered another status: its code and text.
    Refused(u16, String),
}

/// The messages of one batch and their answers.
#[derive(Debug)]
pub struct Window {
    status: Vec<Status>,
    on_the_way: HashMap<u32, usize>,
    size: usize,
    cursor: usize,
    answered: usize,
    last_answer: Option<(u16, String)>,
}

impl Window {
    /// A batch of `count` messages, at most `size` (at least 1) unanswered at once.
    pub fn new(count: usize, size: usize) -> Self {
        Window {
            status: vec![Status::Waiting; count],
            on_the_way: HashMap::new(),
            size: size.max(1),
            cursor: 0,
            answered: 0,
            last_answer: None,
        }
    }

    /// The next message to send if the window has room for it: the first waiting one.
    pub fn next_to_send(&mut self) -> Option<usize> {
        if self.on_the_way.len() >= self.size {
            return None;
        }
        while self.cursor < self.status.len() {
            if self.status[self.cursor] == Status::Waiting {
                return Some(self.cursor);
            }
            self.cursor += 1;
        }
        None
    }

    /// Message `index` went out with transaction number `txnr`.
    pub fn sent(&mut self, index: usize, txnr: u32) {
        self.status[index] = Status::Sent(txnr);
        self.on_the_way.insert(txnr, index);
    }

    /// The receiver answered `code` (and `text`) for `txnr`; an error if no message is waiting
    /// for that transaction number.
    pub fn answered(&mut self, txnr: u32, code: u16, text: &str) -> Result<(), String> {
        let Some(index) = self.on_the_way.remove(&txnr) else {
            return Err(format!(
                "the receiver answered transaction {txnr}, which is not waiting for an answer"
            ));
        };
        self.last_answer = Some((code, text.to_string()));
        self.status[index] = if code == 200 {
            Status::Delivered
        } else {
            Status::Refused(code, text.to_string())
        };
        self.answered += 1;
        Ok(())
    }

    /// The status and text of the last answer the receiver gave, if any.
    pub fn last_answer(&self) -> Option<(u16, &str)> {
        self.last_answer
            .as_ref()
            .map(|(code, text)| (*code, text.as_str()))
    }

    /// How many messages are sent and unanswered.
    pub fn on_the_way(&self) -> usize {
        self.on_the_way.len()
    }

    /// Whether every message is answered.
    pub fn all_answered(&self) -> bool {
        self.answered == self.status.len()
    }

    /// The connection broke: every unanswered message is to be sent again, in order.
    pub fn connection_lost(&mut self) {
        for index in self.on_the_way.drain().map(|(_, index)| index) {
            self.status[index] = Status::Waiting;
            self.cursor = self.cursor.min(index);
        }
    }

    /// How many messages at the front are delivered (the count the sink reports).
    pub fn delivered(&self) -> usize {
        self.status
            .iter()
            .take_while(|s| **s == Status::Delivered)
            .count()
    }

    /// The first message the receiver refused, if every one before it is delivered: its
    /// index, status code and text.
    pub fn refused(&self) -> Option<(usize, u16, &str)> {
        let index = self.delivered();
        match self.status.get(index) {
            Some(Status::Refused(code, text)) => Some((index, *code, text)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sends what the window lets out, with transaction numbers from `txnr` on.
    fn send_all(window: &mut Window, txnr: &mut u32) -> Vec<usize> {
        let mut sent = Vec::new();
        while let Some(index) = window.next_to_send() {
            window.sent(index, *txnr);
            *txnr += 1;
            sent.push(index);
        }
        sent
    }

    #[test]
    fn at_most_the_window_is_on_the_way() {
        let mut window = Window::new(5, 2);
        let mut txnr = 1;
        assert_eq!(send_all(&mut window, &mut txnr), [0, 1]);
        assert_eq!(window.on_the_way(), 2);
        window.answered(2, 200, "OK").unwrap();
        assert_eq!(window.delivered(), 0, "the first is unanswered");
        assert_eq!(send_all(&mut window, &mut txnr), [2]);
        window.answered(1, 200, "OK").unwrap();
        assert_eq!(window.delivered(), 2);
        assert_eq!(send_all(&mut window, &mut txnr), [3]);
        window.answered(3, 200, "OK").unwrap();
        window.answered(4, 200, "OK").unwrap();
        assert_eq!(send_all(&mut window, &mut txnr), [4]);
        assert!(!window.all_answered());
        window.answered(5, 200, "OK").unwrap();
        assert!(window.all_answered());
        assert_eq!(window.delivered(), 5);
        assert!(window.answered(5, 200, "OK").is_err(), "answered twice");
    }

    #[test]
    fn a_broken_connection_sends_the_unanswered_again_in_order() {
        let mut window = Window::new(4, 10);
        let mut txnr = 1;
        assert_eq!(send_all(&mut window, &mut txnr), [0, 1, 2, 3]);
        window.answered(2, 200, "OK").unwrap();
        window.connection_lost();
        assert_eq!(window.on_the_way(), 0);
        assert_eq!(window.delivered(), 0);
        let mut txnr = 1;
        assert_eq!(
            send_all(&mut window, &mut txnr),
            [0, 2, 3],
            "the answered one is not sent again"
        );
        for t in 1..=3 {
            window.answered(t, 200, "OK").unwrap();
        }
        assert!(window.all_answered());
        assert_eq!(window.delivered(), 4);
    }

    #[test]
    fn a_refusal_is_that_message_s_alone() {
        let mut window = Window::new(3, 8);
        let mut txnr = 7;
        send_all(&mut window, &mut txnr);
        assert_eq!(window.last_answer(), None);
        window.answered(8, 500, "message too large").unwrap();
        assert_eq!(window.last_answer(), Some((500, "message too large")));
        assert_eq!(window.refused(), None, "the one before is unanswered");
        window.answered(7, 200, "OK").unwrap();
        window.answered(9, 200, "OK").unwrap();
        assert!(window.all_answered());
        assert_eq!(window.delivered(), 1);
        assert_eq!(window.refused(), Some((1, 500, "message too large")));
    }
}

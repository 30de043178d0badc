//! Remembering a receiver's per-event answers past the first failure.
//!
//! Some receivers answer for each event of a request: this one taken, that one refused for good,
//! another to be sent again (Loki's 400 naming the entries it refused; the webhook example
//! sending a refused request's events one by one). A sink's `deliver` can report only the first
//! failure, as a [`SinkError`] that counts the events before it: the core dead-letters a refused
//! event, or backs off, and calls `deliver` again with the events from there. What the receiver
//! said about the events after the reported one must not be lost, or the next delivery sends
//! the taken ones twice and the refused ones again (to be refused, or worse, taken).
//!
//! [`Verdicts`] keeps it: [`Verdicts::settle`] turns a request's verdicts into how far the
//! delivery got and keeps the verdicts after the first refused event; [`Verdicts::recall`], at
//! the start of the next delivery, counts the events at its front that the receiver took
//! already, or reports the next refused one again with the receiver's reason, without a request.
//!
//! The verdicts are matched to the events by their lines ([`Event::line`]), in order. A delivery
//! that does not start with the events they are about (the core restarted the batch elsewhere)
//! forgets them: its events are sent again, which is at least once, never a loss. A verdict
//! refused and reported stays first until a delivery starts past it, so a delivery that starts
//! with it again (the dead-letter file could not be written) gets the same answer.
//!
//! ```
//! use broker_core::{Event, EventType, SinkErrorKind};
//! use broker_sinks::util::verdicts::{Recalled, Settled, Verdict, Verdicts};
//!
//! let events: Vec<Event> = (0..4)
//!     .map(|i| Event::from_json(EventType::Alerts, &format!(r#"{{"id":"e{i}"}}"#)).unwrap())
//!     .collect();
//! let mut ahead = Verdicts::new();
//! // One request of all four: e1 refused, the others taken.
//! let answer = vec![
//!     Verdict::Taken,
//!     Verdict::Refused("e1 is too old".into()),
//!     Verdict::Taken,
//!     Verdict::Taken,
//! ];
//! let Settled::Refused(error) = ahead.settle(&events, 0, answer) else {
//!     unreachable!()
//! };
//! assert_eq!((error.kind, error.delivered), (SinkErrorKind::Permanent, 1));
//! // The core dead-letters e1 and delivers from e2: the receiver has e2 and e3 already.
//! assert_eq!(ahead.recall(&events[2..]).unwrap(), Recalled::Taken(2));
//! assert!(ahead.is_empty());
//! ```

use std::collections::VecDeque;

use broker_core::{Event, SinkError};

/// What a receiver did with one event of a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Taken: the event is delivered.
    Taken,
    /// Refused for itself, for good: the reason the dead letter gets (the receiver's words,
    /// masked and on one line).
    Refused(String),
    /// Not known to be taken (the receiver may have refused it without saying so): to be sent
    /// again.
    Resend,
}

/// How far a request's verdicts let a delivery go ([`Verdicts::settle`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Settled {
    /// Every event of the request was taken: the delivery goes on from this index of the
    /// batch (the end of the request).
    Taken(usize),
    /// The first event not taken was refused: the delivery stops with this permanent error,
    /// which counts the events before it and carries the receiver's reason. The verdicts on the
    /// events after it are kept.
    Refused(SinkError),
    /// The first event not taken, at this index of the batch, is to be sent again: the delivery
    /// stops with a retry that counts the events before it. Nothing is kept.
    Resend(usize),
}

/// What the verdicts kept told about the front of a delivery ([`Verdicts::recall`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recalled {
    /// This many events at the front were taken already: send from there.
    Taken(usize),
    /// This many events at the front were taken already, and the next one is to be sent again
    /// (with the rest): send from there, and perhaps log that the receiver left it unsaid.
    Resend(usize),
}

/// The verdicts on the events after the one last reported failed, kept for the next delivery
/// (see the module docs). Empty at first; a sink keeps one for its life and clears it on
/// `close`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Verdicts {
    /// Each event's line and its verdict, in the order of the batch.
    ahead: VecDeque<(String, Verdict)>,
}

impl Verdicts {
    /// Nothing kept.
    pub fn new() -> Self {
        Verdicts::default()
    }

    /// Whether nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.ahead.is_empty()
    }

    /// How many verdicts are kept.
    pub fn len(&self) -> usize {
        self.ahead.len()
    }

    /// Forgets every verdict kept.
    pub fn clear(&mut self) {
        self.ahead.clear();
    }

    /// Uses what the receiver already said about the first events of `events`, at the start of
    /// a delivery: how many of them were taken ([`Recalled`]; the delivery sends from there), or
    /// the permanent error of the first one refused (`delivered` counts the taken ones before
    /// it; the delivery returns it without a request). A verdict refused and reported before
    /// is passed over once a delivery starts past it; verdicts that do not match the events
    /// are forgotten.
    pub fn recall(&mut self, events: &[Event]) -> Result<Recalled, SinkError> {
        let first = events.first().map(Event::line);
        while self
            .ahead
            .front()
            .is_some_and(|(line, _)| Some(line.as_str()) != first)
        {
            self.ahead.pop_front();
        }
        let mut taken = 0;
        while let Some((line, verdict)) = self.ahead.front() {
            if events.get(taken).map(Event::line) != Some(line.as_str()) {
                self.ahead.clear();
                break;
            }
            match verdict {
                Verdict::Taken => taken += 1,
                Verdict::Refused(why) => return Err(SinkError::permanent(taken, why.clone())),
                Verdict::Resend => {
                    self.ahead.clear();
                    return Ok(Recalled::Resend(taken));
                }
            }
            self.ahead.pop_front();
        }
        Ok(Recalled::Taken(taken))
    }

    /// Settles a request of `events[start..start + verdicts.len()]` whose verdicts are
    /// `verdicts`, in order (`events` is the whole batch): how far the delivery got
    /// ([`Settled`]). When the first event not taken was refused, the verdicts after it are
    /// kept in place of any kept before, for [`Verdicts::recall`] to use when the next delivery
    /// starts after it.
    pub fn settle(&mut self, events: &[Event], start: usize, verdicts: Vec<Verdict>) -> Settled {
        let end = start + verdicts.len();
        let taken = verdicts
            .iter()
            .take_while(|v| **v == Verdict::Taken)
            .count();
        let first = start + taken;
        let mut rest = verdicts.into_iter().skip(taken);
        match rest.next() {
            None => Settled::Taken(end),
            Some(Verdict::Refused(why)) => {
                self.ahead = events[first + 1..]
                    .iter()
                    .map(|e| e.line().to_string())
                    .zip(rest)
                    .collect();
                Settled::Refused(SinkError::permanent(first, why))
            }
            Some(Verdict::Taken | Verdict::Resend) => Settled::Resend(first),
        }
    }
}

#[cfg(test)]
mod tests {
    use broker_core::EventType;

    use super::*;

    fn events(n: usize) -> Vec<Event> {
        (0..n)
            .map(|i| Event::from_json(EventType::Alerts, &format!("{{\"id\":\"e{i}\"}}")).unwrap())
            .collect()
    }

    fn refused(why: &str) -> Verdict {
        Verdict::Refused(why.to_string())
    }

    fn permanent(delivered: usize, why: &str) -> SinkError {
        SinkError::permanent(delivered, why)
    }

    /// `n` events, and what is kept after a request of the first ones got `verdicts`.
    fn kept(n: usize, verdicts: Vec<Verdict>) -> (Vec<Event>, Verdicts) {
        let all = events(n);
        let mut ahead = Verdicts::new();
        ahead.settle(&all, 0, verdicts);
        (all, ahead)
    }

    #[test]
    fn a_request_all_taken_goes_on_and_keeps_nothing() {
        let all = events(5);
        let mut ahead = Verdicts::new();
        let settled = ahead.settle(&all, 2, vec![Verdict::Taken; 3]);
        assert_eq!(settled, Settled::Taken(5));
        assert!(ahead.is_empty());
        assert_eq!(ahead.recall(&all), Ok(Recalled::Taken(0)));
    }

    #[test]
    fn the_first_refusal_is_reported_and_the_rest_recalled_in_turn() {
        // e1 to e4 in one request: e1 taken, e2 and e3 refused, e4 taken.
        let all = events(6);
        let mut ahead = Verdicts::new();
        let settled = ahead.settle(
            &all,
            1,
            vec![
                Verdict::Taken,
                refused("two"),
                refused("three"),
                Verdict::Taken,
            ],
        );
        assert_eq!(settled, Settled::Refused(permanent(2, "two")));
        assert_eq!(ahead.len(), 2);
        // The core dead-letters e2 and delivers from e3: refused already, without a request.
        assert_eq!(ahead.recall(&all[3..]), Err(permanent(0, "three")));
        // Dead-lettered too, from e4: taken already, e5 to send.
        assert_eq!(ahead.recall(&all[4..]), Ok(Recalled::Taken(1)));
        assert!(ahead.is_empty());
        assert_eq!(ahead.recall(&all[5..]), Ok(Recalled::Taken(0)));
    }

    #[test]
    fn taken_events_before_a_kept_refusal_are_counted() {
        let all = events(5);
        let mut ahead = Verdicts::new();
        let verdicts = vec![
            refused("zero"),
            Verdict::Taken,
            Verdict::Taken,
            refused("three"),
            Verdict::Taken,
        ];
        let settled = ahead.settle(&all, 0, verdicts);
        assert_eq!(settled, Settled::Refused(permanent(0, "zero")));
        assert_eq!(ahead.recall(&all[1..]), Err(permanent(2, "three")));
        assert_eq!(ahead.recall(&all[4..]), Ok(Recalled::Taken(1)));
    }

    #[test]
    fn a_delivery_that_starts_with_a_reported_refusal_again_gets_it_again() {
        // The dead-letter file could not be written: the core delivers from e1 again.
        let (all, mut ahead) = kept(3, vec![refused("zero"), refused("one"), Verdict::Taken]);
        assert_eq!(ahead.recall(&all[1..]), Err(permanent(0, "one")));
        assert_eq!(ahead.recall(&all[1..]), Err(permanent(0, "one")));
        assert_eq!(ahead.recall(&all[2..]), Ok(Recalled::Taken(1)));
    }

    #[test]
    fn verdicts_that_do_not_match_the_delivery_are_forgotten() {
        let (all, mut ahead) = kept(4, vec![refused("zero"), Verdict::Taken, Verdict::Taken]);
        // A delivery from elsewhere (the core went back to e0): sent again, nothing recalled.
        assert_eq!(ahead.recall(&all[..]), Ok(Recalled::Taken(0)));
        assert!(ahead.is_empty());
        // A delivery whose events differ after the first match: the match counts, then forgets.
        let other = events(6);
        ahead.settle(
            &all,
            0,
            vec![refused("zero"), Verdict::Taken, Verdict::Taken],
        );
        let mixed = [other[1].clone(), other[5].clone()];
        assert_eq!(ahead.recall(&mixed), Ok(Recalled::Taken(1)));
        assert!(ahead.is_empty());
        assert_eq!(ahead.recall(&[]), Ok(Recalled::Taken(0)));
    }

    #[test]
    fn a_resend_stops_the_request_or_the_recall() {
        let all = events(5);
        let mut ahead = Verdicts::new();
        // First not taken is to be sent again: a retry from it, nothing kept.
        let settled = ahead.settle(&all, 1, vec![Verdict::Taken, Verdict::Resend, refused("x")]);
        assert_eq!(settled, Settled::Resend(2));
        assert!(ahead.is_empty());
        // After a refusal: the taken ones before the resend count, the rest is sent again.
        let resend = Verdict::Resend;
        ahead.settle(
            &all,
            0,
            vec![refused("0"), Verdict::Taken, resend.clone(), resend],
        );
        assert_eq!(ahead.recall(&all[1..]), Ok(Recalled::Resend(1)));
        assert!(ahead.is_empty());
    }

    #[test]
    fn a_new_refusal_replaces_what_was_kept() {
        let (all, mut ahead) = kept(6, vec![refused("zero"), Verdict::Taken]);
        assert_eq!(ahead.len(), 1);
        let settled = ahead.settle(&all, 3, vec![refused("three"), refused("four")]);
        assert_eq!(settled, Settled::Refused(permanent(3, "three")));
        assert_eq!(ahead.recall(&all[4..]), Err(permanent(0, "four")));
        ahead.clear();
        assert!(ahead.is_empty());
    }
}

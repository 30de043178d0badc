//! Capped exponential backoff with jitter, for failing sinks and a failing API.

use std::time::Duration;

/// The delays between retries: doubling from `initial` up to `cap`, each with random jitter of
/// up to half the delay taken off, so many brokers (or pipes) do not retry in step.
#[derive(Clone, Debug)]
pub struct Backoff {
    initial: Duration,
    cap: Duration,
    next: Duration,
}

impl Backoff {
    /// A backoff starting at `initial` and never above `cap`.
    pub fn new(initial: Duration, cap: Duration) -> Self {
        let initial = initial.min(cap);
        Backoff {
            initial,
            cap,
            next: initial,
        }
    }

    /// The backoff for a failing sink: 0.25 s doubling up to 30 s.
    pub fn for_sink() -> Self {
        Backoff::new(Duration::from_millis(250), Duration::from_secs(30))
    }

    /// The delay before the next retry (and doubles the one after it).
    pub fn next_delay(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(self.cap);
        base.mul_f64(1.0 - random_fraction() / 2.0)
    }

    /// Starts over after a success.
    pub fn reset(&mut self) {
        self.next = self.initial;
    }
}

/// A random number in `[0, 1)` from the operating system (0.5 if it has none).
pub(crate) fn random_fraction() -> f64 {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        return 0.5;
    }
    (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_with_jitter_up_to_the_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(5));
        let delays: Vec<f64> = (0..6).map(|_| b.next_delay().as_secs_f64()).collect();
        for (delay, base) in delays.iter().zip([1.0, 2.0, 4.0, 5.0, 5.0, 5.0]) {
            assert!(*delay > base / 2.0 - 1e-9 && *delay <= base, "{delays:?}");
        }
        b.reset();
        assert!(b.next_delay() <= Duration::from_secs(1));
    }
}

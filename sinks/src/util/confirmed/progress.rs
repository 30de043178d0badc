//! How far a batch on a confirmed stream has got, frame by frame: pure bookkeeping, no I/O.

use std::io;
use std::time::{Duration, Instant};

use super::Unconfirmed;

/// How far a batch on a stream has got: the bytes written, where each frame ends, how many
/// frames at the front the receiver's end has taken, and how many of those have settled.
#[derive(Debug)]
pub(super) struct Progress {
    /// Bytes written so far.
    pub(super) written: usize,
    /// Where each frame written or being written ends, in bytes from the start.
    pub(super) frame_ends: Vec<usize>,
    /// Frames at the front the receiver's end has taken.
    confirmed: usize,
    /// Frames at the front taken at least the settling time before the connection was last seen
    /// open.
    settled: usize,
    /// When `confirmed` was last noted, and its value then.
    noted: (Instant, usize),
}

impl Progress {
    /// Nothing written yet, at `now`.
    pub(super) fn new(now: Instant) -> Self {
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
    pub(super) fn taken(&mut self, queued: Option<usize>, now: Instant, settle: Duration) {
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
    pub(super) fn failed(&self, error: io::Error) -> Unconfirmed {
        Unconfirmed {
            confirmed: self.settled,
            error,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::Progress;

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

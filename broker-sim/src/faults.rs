//! Injected faults: the pending misbehaviours that the next matching API requests suffer.
//!
//! Faults wait in one ordered list. A request takes the first pending fault whose path prefix
//! matches its path (a fault without prefix matches every API request; admin requests under
//! `/_admin/` never take a fault), and that fault's count goes down by one; at zero it is gone.
//! Pulls are transactional, as in the real API (whose database transaction rolls back when the
//! answer cannot be given): a pull that fails in any way never removes events from its queue.
//! Every fault except [`Fault::Delay`] and [`Fault::SlowAnswer`] answers (or hangs up) without handling the request, and
//! a delayed request is handled only if its client is still connected when the delay is over.
//! So a failed, malformed, dropped, stalled or timed-out pull leaves the queue as it was, and
//! only a pull answered with 200 and its events removes them. The exceptions are
//! [`Fault::SlowAnswer`], which models the window a broker must not lose: the API has already
//! committed the dequeue and its answer is still on the way, and [`Fault::BrokenAnswer`], whose
//! answer after the dequeue cannot be read.

use std::time::Duration;

pub use crate::broken::Breakage;

/// One kind of misbehaviour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer this HTTP status with a JSON:API error body instead of handling the request.
    Status(u16),
    /// Wait this long, then handle the request normally if the client is still connected. A
    /// client that gave up meanwhile (a timeout shorter than the delay) gets nothing and its
    /// pull removes nothing: the request is logged with status 499 and the queue is untouched.
    /// (The check happens once, when the delay is over: a client that leaves in the same
    /// instant can still lose its answer, as with a real server, so tests should choose a
    /// delay well beyond the client's timeout.)
    Delay(Duration),
    /// Wait this long, then answer 504 (gateway timeout) with a JSON:API error body, without
    /// handling the request: a slow failure that never touches the queue. If the client leaves
    /// while waiting, the request is logged with status 499.
    Stall(Duration),
    /// Handle the request at once (a pull takes its events off the queue), then wait this long
    /// before sending the answer. Unlike [`Fault::Delay`], the events are gone from the queue
    /// even if the client leaves meanwhile: the window between the API's dequeue and the
    /// broker's spool, where a signal to the broker must not lose the batch.
    SlowAnswer(Duration),
    /// Close the connection without sending any response.
    Drop,
    /// Answer 200 with a body that is not valid JSON (`{"data": [`), without handling the
    /// request: the queue keeps its events.
    MalformedJson,
    /// Answer 401 with a JSON:API error body, as for an expired session.
    Unauthorized,
    /// Handle the request at once (a pull takes its events off the queue), then answer 200
    /// with its body broken this way: like [`Fault::SlowAnswer`], the events are gone from the
    /// queue, and the broker must keep the body that holds them.
    BrokenAnswer(Breakage),
    /// Handle a pull as if its `max` were this many more (within the simulator's cap): an
    /// answer with more events than the broker asked for.
    OversizedAnswer(u32),
}

/// A fault waiting for its requests.
#[derive(Debug, Clone)]
struct PendingFault {
    fault: Fault,
    remaining: u32,
    path_prefix: Option<String>,
}

/// The ordered list of pending faults.
#[derive(Debug, Default)]
pub(crate) struct FaultQueue {
    pending: Vec<PendingFault>,
}

impl FaultQueue {
    /// Add `fault` for the next `count` requests whose path starts with `path_prefix` (all API
    /// requests when `None`). A count of 0 adds nothing.
    pub(crate) fn push(&mut self, fault: Fault, count: u32, path_prefix: Option<&str>) {
        if count == 0 {
            return;
        }
        self.pending.push(PendingFault {
            fault,
            remaining: count,
            path_prefix: path_prefix.map(str::to_string),
        });
    }

    /// Take one use of the first pending fault that applies to `path`.
    pub(crate) fn take(&mut self, path: &str) -> Option<Fault> {
        let pos = self.pending.iter().position(|p| match &p.path_prefix {
            Some(prefix) => path.starts_with(prefix.as_str()),
            None => true,
        })?;
        let entry = &mut self.pending[pos];
        let fault = entry.fault.clone();
        entry.remaining -= 1;
        if entry.remaining == 0 {
            self.pending.remove(pos);
        }
        Some(fault)
    }

    /// How many requests the pending faults will still affect in total.
    pub(crate) fn remaining(&self) -> u64 {
        self.pending.iter().map(|p| u64::from(p.remaining)).sum()
    }

    /// Forget every pending fault.
    pub(crate) fn clear(&mut self) {
        self.pending.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_apply_in_order_to_matching_paths_and_run_out() {
        let mut q = FaultQueue::default();
        q.push(Fault::Status(503), 2, Some("/queues/alerts"));
        q.push(Fault::Drop, 1, None);
        q.push(Fault::MalformedJson, 0, None);
        q.push(Fault::Stall(Duration::from_millis(5)), 0, None);
        assert_eq!(q.remaining(), 3);
        assert_eq!(q.take("/health"), Some(Fault::Drop));
        assert_eq!(q.take("/health"), None);
        assert_eq!(q.take("/queues/alerts/next"), Some(Fault::Status(503)));
        assert_eq!(q.take("/queues/log_authn/next"), None);
        assert_eq!(q.take("/queues/alerts/next"), Some(Fault::Status(503)));
        assert_eq!(q.take("/queues/alerts/next"), None);
        assert_eq!(q.remaining(), 0);
        q.push(Fault::Unauthorized, 5, None);
        q.clear();
        assert_eq!(q.take("/x"), None);
    }
}

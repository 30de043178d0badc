//! The [`Source`] trait: where events come from.
//!
//! The real source is the Pro Custodibus API ([`crate::api::ApiSource`]); tests and embedders may
//! use an in-memory one. Pulling removes the events from the source's queue.

use async_trait::async_trait;

use crate::event::{Event, EventType};

/// A set of event queues to pull from.
#[async_trait]
pub trait Source: Send + Sync {
    /// Takes up to `max` events, oldest first, from the queue of `queue`.
    async fn pull(&self, queue: EventType, max: u32) -> Result<Vec<Event>, SourceError>;
}

/// A failed pull, with one line that names the URL or queue and the reason (never a secret).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SourceError {
    /// What went wrong.
    pub message: String,
    /// The kind of failure, a short word for metrics (`transport`, `status`, `unauthorized`,
    /// `malformed` for the API; `source` when the source does not say).
    pub class: &'static str,
    /// The raw answer of a pull that took events off the queue but could not be read whole
    /// (not decodable, or cut short): the drain writes it to the dead-letter file, since it is
    /// the only copy of those events.
    pub unread_answer: Option<bytes::Bytes>,
}

impl SourceError {
    /// A source error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        SourceError {
            message: message.into(),
            class: "source",
            unread_answer: None,
        }
    }

    /// A failed pull whose `answer` holds events already taken off the queue.
    pub fn with_unread_answer(message: impl Into<String>, answer: bytes::Bytes) -> Self {
        SourceError {
            message: message.into(),
            class: "source",
            unread_answer: Some(answer),
        }
    }

    /// This error, of the kind `class` (see [`SourceError::class`]).
    pub fn with_class(mut self, class: &'static str) -> Self {
        self.class = class;
        self
    }
}

/// An in-memory source: one FIFO per queue (for tests and for embedding the broker).
#[derive(Debug, Default)]
pub struct MemorySource {
    queues:
        std::sync::Mutex<std::collections::HashMap<EventType, std::collections::VecDeque<Event>>>,
}

impl MemorySource {
    /// An empty source.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends an event to its type's queue.
    pub fn push(&self, event: Event) {
        let mut queues = self.queues.lock().unwrap_or_else(|e| e.into_inner());
        queues
            .entry(event.event_type())
            .or_default()
            .push_back(event);
    }

    /// How many events wait in `queue`.
    pub fn len(&self, queue: EventType) -> usize {
        let queues = self.queues.lock().unwrap_or_else(|e| e.into_inner());
        queues.get(&queue).map_or(0, |q| q.len())
    }

    /// Whether every queue is empty.
    pub fn is_empty(&self) -> bool {
        let queues = self.queues.lock().unwrap_or_else(|e| e.into_inner());
        queues.values().all(|q| q.is_empty())
    }
}

#[async_trait]
impl Source for MemorySource {
    async fn pull(&self, queue: EventType, max: u32) -> Result<Vec<Event>, SourceError> {
        let mut queues = self.queues.lock().unwrap_or_else(|e| e.into_inner());
        let q = queues.entry(queue).or_default();
        let n = q.len().min(max as usize);
        Ok(q.drain(..n).collect())
    }
}

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
}

impl SourceError {
    /// A source error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        SourceError {
            message: message.into(),
        }
    }
}

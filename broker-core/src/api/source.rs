//! [`ApiSource`]: the API as a [`Source`], logged in, with its session renewed before it expires
//! and one fresh login and retry after a 401.

use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::answer::Session;
use super::client::ApiClient;
use super::error::ApiError;
use crate::config::Credentials;
use crate::event::{Event, EventType};
use crate::source::{Source, SourceError};

/// The Pro Custodibus API as a source of events.
pub struct ApiSource {
    client: ApiClient,
    credentials: Credentials,
    session: Mutex<Option<LiveSession>>,
}

struct LiveSession {
    session: Session,
    renew_at: Instant,
}

impl ApiSource {
    /// A source that logs in with `credentials` when it first needs a session.
    pub fn new(client: ApiClient, credentials: Credentials) -> Self {
        ApiSource {
            client,
            credentials,
            session: Mutex::new(None),
        }
    }

    /// The client underneath.
    pub fn client(&self) -> &ApiClient {
        &self.client
    }

    /// `hello`: the broker's display name (logs in first if needed).
    pub async fn hello(&self) -> Result<String, ApiError> {
        self.with_session(|s| {
            let client = self.client.clone();
            async move { client.hello(&s).await }
        })
        .await
    }

    /// Pulls one queue (logs in first if needed).
    pub async fn pull_queue(&self, queue: EventType, max: u32) -> Result<Vec<Event>, ApiError> {
        self.with_session(|s| {
            let client = self.client.clone();
            async move { client.pull(&s, queue, max).await }
        })
        .await
    }

    /// Runs `call` with a live session; after a 401 logs in once more and retries once.
    async fn with_session<T, F, Fut>(&self, call: F) -> Result<T, ApiError>
    where
        F: Fn(Session) -> Fut,
        Fut: std::future::Future<Output = Result<T, ApiError>>,
    {
        let session = self.session(false).await?;
        match call(session).await {
            Err(e) if e.is_unauthorized() => {
                tracing::info!("session not accepted ({e}); logging in again");
                let session = self.session(true).await?;
                call(session).await
            }
            other => other,
        }
    }

    /// The current session, logging in when there is none, it is due for renewal, or `fresh`.
    async fn session(&self, fresh: bool) -> Result<Session, ApiError> {
        let mut guard = self.session.lock().await;
        if let Some(live) = guard.as_ref() {
            if !fresh && Instant::now() < live.renew_at {
                return Ok(live.session.clone());
            }
        }
        *guard = None;
        let session = self.client.login(&self.credentials).await?;
        let renew_in = renewal_delay(session.lifetime, crate::backoff::random_fraction());
        tracing::debug!(
            "logged in to {}; session renewed in {:.0} s",
            self.client.base(),
            renew_in.as_secs_f64()
        );
        *guard = Some(LiveSession {
            session: session.clone(),
            renew_at: Instant::now() + renew_in,
        });
        Ok(session)
    }
}

#[async_trait]
impl Source for ApiSource {
    async fn pull(&self, queue: EventType, max: u32) -> Result<Vec<Event>, SourceError> {
        self.pull_queue(queue, max).await.map_err(|e| {
            let class = e.class();
            match e {
                ApiError::Unreadable { ref body, .. } => {
                    SourceError::with_unread_answer(e.to_string(), body.clone())
                }
                other => SourceError::new(other.to_string()),
            }
            .with_class(class)
        })
    }
}

/// When to renew a session of `lifetime`: before it runs out, less a jitter of 60 to 600 s
/// (`fraction` 0.0 to 1.0 picks where in that range), the jitter clamped to half the lifetime so
/// short sessions still work.
pub fn renewal_delay(lifetime: Duration, fraction: f64) -> Duration {
    let jitter = 60.0 + 540.0 * fraction.clamp(0.0, 1.0);
    let jitter = jitter.min(lifetime.as_secs_f64() / 2.0);
    lifetime.saturating_sub(Duration::from_secs_f64(jitter))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewal_with_jitter() {
        let hour = Duration::from_secs(3600);
        assert_eq!(renewal_delay(hour, 0.0), Duration::from_secs(3540));
        assert_eq!(renewal_delay(hour, 1.0), Duration::from_secs(3000));
        let short = Duration::from_secs(4);
        assert_eq!(renewal_delay(short, 0.3), Duration::from_secs(2));
        let f = crate::backoff::random_fraction();
        assert!((0.0..1.0).contains(&f));
    }
}

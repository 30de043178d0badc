//! [`LokiSink`]: pushes a pipe's events to Loki, `Batch` at a time, and says how far it got.
//!
//! | Loki's answer | what the sink says |
//! | --- | --- |
//! | 2xx (204, 200) | the request's events are delivered |
//! | 429, 5xx, 408, 3xx, no answer (refused, reset, timed out, TLS failure) | retry: the request's events and the rest wait in the spool; a `Retry-After` on a 429 or 503 is the least wait |
//! | 401, 403, 404, 405, 407, 410, 415, 421 | retry too, with the status and Loki's words in the log: the Url, the credentials or the tenant are wrong for every request; nothing is dead-lettered |
//! | 400 naming entries (too old, too far behind, too new, line too long) | the named events are dead-lettered with Loki's words, the others count as delivered (see [`super::answer`]) |
//! | 400 naming none of the request's entries, any other 4xx | the request is refused, not an event: a retry, logged with Loki's words |
//! | 413 | the request is sent again in halves; an event Loki refuses alone with 413 is dead-lettered |
//!
//! What Loki said about the events after a dead-lettered one is kept for the next delivery,
//! which starts with them: they are not sent again ([`crate::util::verdicts`]). An answer is read up to 8 MiB; should a 400
//! be longer, the events after the last one it names are sent again rather than counted.

use std::time::Duration;

use async_trait::async_trait;
use broker_core::config::{ConfigError, PipeSettings};
use broker_core::{Event, KeyError, Sink, SinkError};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use reqwest::StatusCode;

use super::answer::verdicts;
use super::body::{build, now_nanos};
use super::config::LokiConfig;
use crate::util::http::client::LazyClient;
use crate::util::http::{quote, retry_error, Answer, Class, Secrets};
use crate::util::verdicts::{Recalled, Settled, Verdict, Verdicts};

/// How much of an answer the sink reads: Loki's 400 names each refused entry in about 250
/// bytes, so this holds the names of every entry of the largest request.
const ANSWER_BYTES: usize = 8 << 20;

/// The most characters of Loki's words about a refused entry a dead letter's reason quotes.
const REASON_CHARS: usize = 500;

/// A sink that pushes events to Grafana Loki.
pub struct LokiSink {
    config: LokiConfig,
    /// The pipe's name, for log lines.
    pipe: String,
    /// The HTTP client, built (and the `CA` file read) on the first delivery.
    client: LazyClient,
    /// Texts never to show.
    secrets: Secrets,
    /// Loki's last answer, for `--test-pipe`.
    last_answer: Option<String>,
    /// What Loki said about the events after the one last reported refused.
    ahead: Verdicts,
}

/// How Loki answered one request.
#[derive(Debug)]
enum Outcome {
    /// Every event taken.
    Taken,
    /// Send again later, not before the wait if any.
    Retry(String, Option<Duration>),
    /// 413: too large.
    TooLarge(String),
    /// Each event's verdict (a 400 naming entries).
    Verdicts(Vec<Verdict>),
}

impl LokiSink {
    /// A sink for checked settings; `pipe` names it in log lines. Nothing is opened yet.
    pub fn new(config: LokiConfig, pipe: impl Into<String>) -> Self {
        LokiSink {
            secrets: config.secrets(),
            config,
            pipe: pipe.into(),
            client: LazyClient::default(),
            last_answer: None,
            ahead: Verdicts::new(),
        }
    }

    /// Checks a pipe's settings and makes the sink. No I/O but a `PasswordFile` or `TokenFile`.
    pub fn from_settings(settings: &PipeSettings) -> Result<Self, ConfigError> {
        Ok(Self::new(
            LokiConfig::from_settings(settings)?,
            &settings.pipe,
        ))
    }

    /// Pushes one request of `events` and sorts the answer.
    async fn post(&mut self, client: &reqwest::Client, events: &[Event]) -> Outcome {
        let origin = self.config.origin();
        let mut push = build(events, &self.config.labels, now_nanos());
        let body = std::mem::take(&mut push.body);
        let size = body.len();
        let mut request = client
            .post(self.config.url.clone())
            .header(CONTENT_TYPE, "application/json")
            .body(body);
        if let Some(tenant) = &self.config.tenant {
            request = request.header("X-Scope-OrgID", tenant);
        }
        if let Some(authorization) = &self.config.authorization {
            request = request.header(AUTHORIZATION, authorization.clone());
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) => {
                let reason = self.secrets.mask(&self.config.client.reason(&e));
                return Outcome::Retry(format!("cannot push to Loki {origin}: {reason}"), None);
            }
        };
        let answer = Answer::read(response, ANSWER_BYTES).await;
        let status = answer.status;
        tracing::debug!(
            "pipe {}: loki {origin}: {} events ({size} bytes): {status}",
            self.pipe,
            events.len()
        );
        let summary = answer.summary(&self.secrets);
        self.last_answer = Some(summary.clone());
        let message = format!(
            "Loki {origin} answered {summary}{}{}",
            hint(status),
            answer.asked_wait()
        );
        match answer.class() {
            Class::Delivered => Outcome::Taken,
            Class::Retry => Outcome::Retry(message, answer.retry_after),
            Class::Reject if status == StatusCode::PAYLOAD_TOO_LARGE => Outcome::TooLarge(message),
            Class::Reject if status == StatusCode::BAD_REQUEST => {
                let text = self.secrets.mask(&String::from_utf8_lossy(&answer.body));
                match verdicts(&push, &text) {
                    Some(mut verdicts) => {
                        if !answer.complete {
                            resend_after_last_named(&mut verdicts);
                        }
                        Outcome::Verdicts(
                        verdicts
                            .into_iter()
                            .map(|v| match v {
                                Verdict::Refused(why) => Verdict::Refused(format!(
                                    "Loki {origin} refused the entry (400): {}",
                                    quote(&why, REASON_CHARS)
                                )),
                                other => other,
                            })
                            .collect(),
                        )
                    }
                    None => Outcome::Retry(
                        format!(
                            "{message} (it names no entry of the request: the request is \
                             refused, not an event; the events wait in the spool)"
                        ),
                        None,
                    ),
                }
            }
            Class::Reject => Outcome::Retry(
                format!("{message} (the request is refused, not an event; the events wait in the spool)"),
                None,
            ),
        }
    }

    /// Uses what Loki already said about the first events of `events` (see
    /// [`LokiSink::ahead`]): how many were taken, or the permanent failure of the first refused.
    fn recall(&mut self, events: &[Event]) -> Result<usize, SinkError> {
        match self.ahead.recall(events)? {
            Recalled::Taken(taken) => Ok(taken),
            Recalled::Resend(taken) => {
                tracing::info!(
                    "pipe {}: Loki {} counted more ignored entries than it named: sending the \
                     unnamed ones again",
                    self.pipe,
                    self.config.origin()
                );
                Ok(taken)
            }
        }
    }

    /// The error for a request of `events[start..]` whose verdicts are `verdicts`: how many
    /// were taken up to the first refused (dead-lettered) or to be sent again, and the
    /// verdicts after it kept for the next delivery. `Ok(end)` when all were taken.
    fn settle(
        &mut self,
        events: &[Event],
        start: usize,
        verdicts: Vec<Verdict>,
    ) -> Result<usize, SinkError> {
        match self.ahead.settle(events, start, verdicts) {
            Settled::Taken(end) => Ok(end),
            Settled::Refused(error) => Err(error),
            Settled::Resend(first) => Err(SinkError::retry(
                first,
                format!(
                    "Loki {} counted more ignored entries than it named: sending the unnamed \
                     ones again",
                    self.config.origin()
                ),
            )),
        }
    }
}

/// For an answer read only in part: the events after the last one it named may have been
/// named in the rest, so they are sent again rather than counted delivered.
pub(super) fn resend_after_last_named(verdicts: &mut [Verdict]) {
    let last = verdicts.iter().rposition(|v| *v != Verdict::Taken);
    for verdict in verdicts.iter_mut().skip(last.map_or(0, |i| i + 1)) {
        *verdict = Verdict::Resend;
    }
}

/// What to check when Loki refuses every request alike.
fn hint(status: StatusCode) -> &'static str {
    match status.as_u16() {
        300..=399 => " (redirects are not followed: set Url to the address it points to)",
        401 | 403 | 407 => {
            " (check User and Password, or Token, and TenantId; the events wait in the spool)"
        }
        404 | 405 | 410 | 421 => " (check Url: Loki's base URL; the events wait in the spool)",
        _ => "",
    }
}

#[async_trait]
impl Sink for LokiSink {
    /// Pushes `events` in requests of at most `Batch` events, in order, stopping at the first
    /// request that failed; see the module docs for what each answer means.
    async fn deliver(&mut self, events: &[Event]) -> Result<(), SinkError> {
        if events.is_empty() {
            return Ok(());
        }
        let mut next = self.recall(events)?;
        let client = self
            .client
            .get(&self.config.client)
            .await
            .map_err(|e| SinkError::retry(next, e))?;
        let mut size = self.config.batch;
        while next < events.len() {
            let end = (next + size).min(events.len());
            next = match self.post(&client, &events[next..end]).await {
                Outcome::Taken => end,
                Outcome::Retry(why, wait) => return Err(retry_error(next, why, wait)),
                Outcome::TooLarge(why) if end - next == 1 => {
                    return Err(SinkError::permanent(
                        next,
                        format!("{why} (to this event alone: larger than Loki takes)"),
                    ))
                }
                Outcome::TooLarge(why) => {
                    size = (end - next).div_ceil(2);
                    tracing::info!(
                        "pipe {}: {why}: sending requests of {size} events",
                        self.pipe
                    );
                    next
                }
                Outcome::Verdicts(verdicts) => self.settle(events, next, verdicts)?,
            };
        }
        Ok(())
    }

    /// Drops the client: the next delivery reads the `CA` file again and opens new connections.
    async fn reopen(&mut self) -> Result<(), SinkError> {
        self.client.forget();
        Ok(())
    }

    /// Loki's last answer: `STATUS: the start of the body`, secrets masked.
    fn last_answer(&self) -> Option<String> {
        self.last_answer.clone()
    }

    fn check_files(&self) -> Result<(), KeyError> {
        self.config.client.check_files()
    }

    /// Drops the client and its connections. Nothing is buffered: every request was answered.
    async fn close(&mut self) -> Result<(), SinkError> {
        self.client.forget();
        self.ahead.clear();
        Ok(())
    }
}

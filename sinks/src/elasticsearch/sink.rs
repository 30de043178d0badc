//! [`ElasticSink`]: sends a pipe's events to `_bulk` in requests of at most `Batch` events and
//! `MaxBytes` bytes, and sorts out each event's result.
//!
//! A batch from the core is encoded once (one bulk entry per event, [`super::body`]), then sent
//! in requests, one after the other. What each answer means:
//!
//! | answer | what the sink does |
//! | --- | --- |
//! | no answer (refused, reset, timed out, TLS failure), 5xx | the same request to the next `Url`, in turn; when every one failed, a retry |
//! | 2xx | each event by its item ([`super::answer`]): stored or already stored (409) delivered; 429 or 5xx sent again later, alone; other 4xx dead-lettered with the item's error type and reason; 401/403/404 or an index error, a retry |
//! | 413 | the request split in two, each sent again; a lone event refused so is dead-lettered |
//! | anything else (400, 401, 403, 404, 429, ...) | a retry with a loud message: the request is refused, not an event, so nothing is dead-lettered |
//!
//! The core learns how many events at the front of the batch are delivered, so the sink keeps
//! what it learnt about the events after the first one not delivered (by `_id`): the next
//! delivery, after the core's backoff or the dead letter, sends only the events still to store.
//! A resend after a timeout or a crash is harmless: the `_id` is there already, the item says
//! 409, and the event counts as delivered. Exactly once in the index.

use std::collections::{HashMap, VecDeque};
use std::ops::Range;
use std::time::Duration;

use async_trait::async_trait;
use broker_core::config::{ConfigError, PipeSettings};
use broker_core::{Event, KeyError, Sink, SinkError};
use bytes::Bytes;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use reqwest::StatusCode;

use super::answer::{request_error, verdicts, Verdict};
use super::body::push_entry;
use super::config::ElasticConfig;
use crate::util::http::answer::QUOTE_BYTES;
use crate::util::http::client::{origin, LazyClient};
use crate::util::http::{retry_error, Answer};

/// The most of an answer's body read: a bulk answer has an item per event.
const MAX_ANSWER: usize = 64 << 20;

/// A sink that stores events in Elasticsearch or OpenSearch through `_bulk`.
pub struct ElasticSink {
    config: ElasticConfig,
    /// The HTTP client, built (and the `CA` file read) on the first delivery.
    client: LazyClient,
    /// The `Url` tried first: the last one that answered.
    current: usize,
    /// The receiver's last answer, for `--test-pipe`.
    last_answer: Option<String>,
    /// What the receiver said about events past the first one not delivered, by `_id` (not in
    /// the batch's order as [`crate::util::verdicts`] keeps them: a delivery sends only its
    /// events still waiting, wherever they stand, and each item may ask for a retry alone).
    known: HashMap<String, Known>,
}

/// What the receiver said about an event in an earlier delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Known {
    /// Stored.
    Delivered,
    /// Refused for itself: the dead letter's reason.
    Refused(String),
}

/// Where an event of a delivery stands.
#[derive(Clone, Debug, PartialEq, Eq)]
enum State {
    /// Not sent yet (or its request had no answer the sink could use).
    Waiting,
    /// Stored (or already there).
    Delivered,
    /// Refused for itself: to dead-letter with this reason.
    Refused(String),
    /// To send again later: why, and the least wait if the receiver asked for one.
    Retry(String, Option<Duration>),
}

/// How a request went.
enum Outcome {
    /// A bulk answer: each event's verdict.
    Verdicts(Vec<Verdict>),
    /// 413: the body is too large for the receiver.
    TooLarge(String),
    /// No use: the message (naming the receiver and its reason) and the least wait.
    Retry(String, Option<Duration>),
}

/// What to check when the receiver refuses a request as a whole.
fn hint(status: StatusCode) -> &'static str {
    match status.as_u16() {
        300..=399 => " (redirects are not followed: set Url to the address it points to)",
        401 | 403 => " (check ApiKey, or User and Password, and their privileges on the index)",
        404 => " (check Index and Url: the index or data stream is missing and not created)",
        408 | 429 => "",
        _ => " (the request is refused, not an event)",
    }
}

impl ElasticSink {
    /// A sink for checked settings. Nothing is opened yet.
    pub fn new(config: ElasticConfig) -> Self {
        ElasticSink {
            config,
            client: LazyClient::default(),
            current: 0,
            last_answer: None,
            known: HashMap::new(),
        }
    }

    /// Checks a pipe's settings and makes the sink. No I/O but the secret files.
    pub fn from_settings(settings: &PipeSettings) -> Result<Self, ConfigError> {
        Ok(Self::new(ElasticConfig::from_settings(settings)?))
    }

    /// POSTs `body` (`count` entries) to the receivers in turn, from the current one, until one
    /// answers other than with a 5xx.
    async fn post(&mut self, client: &reqwest::Client, body: Bytes, count: usize) -> Outcome {
        let urls = self.config.bulk_urls.len();
        let mut failed = Vec::new();
        let mut wait = None;
        for attempt in 0..urls {
            let at = (self.current + attempt) % urls;
            let url = self.config.bulk_urls[at].clone();
            let origin = origin(&url);
            let mut request = client
                .post(url)
                .header(CONTENT_TYPE, "application/x-ndjson")
                .body(body.clone());
            if let Some(authorization) = &self.config.authorization {
                request = request.header(AUTHORIZATION, authorization.clone());
            }
            let response = match request.send().await {
                Ok(response) => response,
                Err(e) => {
                    let reason = self.config.secrets.mask(&self.config.client.reason(&e));
                    failed.push(format!("cannot POST to {origin}: {reason}"));
                    continue;
                }
            };
            let status = response.status();
            let limit = if status.is_success() {
                MAX_ANSWER
            } else {
                QUOTE_BYTES
            };
            let answer = Answer::read(response, limit).await;
            let summary = answer.summary(&self.config.secrets);
            self.last_answer = Some(summary.clone());
            // An error answer in Elasticsearch's shape is quoted as its type and reason.
            let summary = match request_error(&answer.body).filter(|_| !status.is_success()) {
                Some(error) => format!("{status}: {}", self.config.secrets.mask(&error)),
                None => summary,
            };
            tracing::debug!("elasticsearch {origin}: {count} events: {status}");
            if status.is_server_error() {
                failed.push(format!(
                    "{origin} answered {summary}{}",
                    answer.asked_wait()
                ));
                wait = wait.max(answer.retry_after);
                continue;
            }
            self.current = at;
            return if status.is_success() {
                match verdicts(&answer.body, count) {
                    Ok(verdicts) => Outcome::Verdicts(verdicts),
                    Err(e) => Outcome::Retry(format!("{origin} answered {status}, but {e}"), None),
                }
            } else if status == StatusCode::PAYLOAD_TOO_LARGE {
                Outcome::TooLarge(format!("{origin} answered {summary}"))
            } else {
                Outcome::Retry(
                    format!(
                        "{origin} refused the request: {summary}{}{}",
                        hint(status),
                        answer.asked_wait()
                    ),
                    answer.retry_after,
                )
            };
        }
        if urls > 1 {
            tracing::warn!("elasticsearch: every Url failed: {}", failed.join("; "));
        }
        let last = failed.pop().unwrap_or_default();
        Outcome::Retry(last, wait)
    }

    /// Sends the waiting events (`entries[i]` of `encoded` is event `i`'s bulk entry) in
    /// requests of at most `Batch` events and `MaxBytes` bytes, and records each one's state.
    /// Stops at a request the receiver refused as a whole.
    async fn send_waiting(
        &mut self,
        client: &reqwest::Client,
        encoded: &[u8],
        entries: &[Range<usize>],
        states: &mut [State],
    ) {
        let mut requests: VecDeque<Vec<usize>> = VecDeque::new();
        let mut request: Vec<usize> = Vec::new();
        let mut size = 0;
        for (i, state) in states.iter().enumerate() {
            if *state != State::Waiting {
                continue;
            }
            let len = entries[i].len();
            if !request.is_empty()
                && (request.len() == self.config.batch || size + len > self.config.max_bytes)
            {
                requests.push_back(std::mem::take(&mut request));
                size = 0;
            }
            request.push(i);
            size += len;
        }
        if !request.is_empty() {
            requests.push_back(request);
        }
        while let Some(request) = requests.pop_front() {
            let mut body = Vec::with_capacity(request.iter().map(|&i| entries[i].len()).sum());
            for &i in &request {
                body.extend_from_slice(&encoded[entries[i].clone()]);
            }
            match self.post(client, body.into(), request.len()).await {
                Outcome::Verdicts(verdicts) => {
                    let refused_alike = refused_alike(&verdicts);
                    let origin = origin(&self.config.bulk_urls[self.current]);
                    let mut stop = false;
                    for (&i, verdict) in request.iter().zip(verdicts) {
                        states[i] = match verdict {
                            Verdict::Delivered => State::Delivered,
                            Verdict::Retry(why) => State::Retry(
                                format!("{origin} did not store an event for now: {why}"),
                                None,
                            ),
                            Verdict::Refused {
                                why, about_request, ..
                            } if about_request || refused_alike => {
                                stop = true;
                                State::Retry(
                                    format!(
                                        "{origin} refused every event of a request: {why}{}",
                                        if about_request {
                                            " (check Index, the credentials and their privileges)"
                                        } else {
                                            " (the request is refused, not an event)"
                                        }
                                    ),
                                    None,
                                )
                            }
                            Verdict::Refused { why, .. } => {
                                State::Refused(format!("{origin} refused the event: {why}"))
                            }
                        };
                    }
                    if stop {
                        return;
                    }
                }
                Outcome::TooLarge(why) if request.len() > 1 => {
                    tracing::info!(
                        "elasticsearch: {why}: sending the {} events of the request in two",
                        request.len()
                    );
                    let (front, back) = request.split_at(request.len() / 2);
                    requests.push_front(back.to_vec());
                    requests.push_front(front.to_vec());
                }
                Outcome::TooLarge(why) => {
                    states[request[0]] =
                        State::Refused(format!("{why} for this event alone (too large)"));
                }
                Outcome::Retry(why, wait) => {
                    for &i in &request {
                        states[i] = State::Retry(why.clone(), wait);
                    }
                    return;
                }
            }
        }
    }

    /// The result of a delivery from each event's state: `Ok` when all are delivered, else the
    /// error for the first one that is not, after keeping what is known about the rest.
    fn conclude(&mut self, ids: &[Option<String>], states: &[State]) -> Result<(), SinkError> {
        let Some(first) = states.iter().position(|s| *s != State::Delivered) else {
            return Ok(());
        };
        for (id, state) in ids.iter().zip(states).skip(first + 1) {
            let known = match state {
                State::Delivered => Known::Delivered,
                State::Refused(why) => Known::Refused(why.clone()),
                _ => continue,
            };
            if let Some(id) = id {
                self.known.insert(id.clone(), known);
            }
        }
        let later = states
            .iter()
            .filter(|s| matches!(s, State::Retry(..) | State::Waiting))
            .count();
        match &states[first] {
            State::Refused(why) => Err(SinkError::permanent(first, why.clone())),
            State::Retry(why, wait) => Err(retry_error(
                first,
                format!("{why} ({later} of {} events to send again)", states.len()),
                *wait,
            )),
            _ => {
                // Waiting: a request before it failed; its message is on the retried events.
                let why = states
                    .iter()
                    .find_map(|s| match s {
                        State::Retry(why, _) => Some(why.clone()),
                        _ => None,
                    })
                    .unwrap_or_else(|| "the events were not sent".to_string());
                Err(SinkError::retry(first, why))
            }
        }
    }
}

/// Whether every item of a request of two or more events was refused (for itself, by its own
/// account) with the same error type: then the refusal is about the request (a mapping or
/// pipeline that fails every document), not the events, and nothing is dead-lettered.
fn refused_alike(verdicts: &[Verdict]) -> bool {
    let mut types = verdicts.iter().map(|v| match v {
        Verdict::Refused { error_type, .. } => Some(error_type.as_str()),
        _ => None,
    });
    let Some(Some(first)) = types.next() else {
        return false;
    };
    verdicts.len() > 1 && types.all(|t| t == Some(first))
}

#[async_trait]
impl Sink for ElasticSink {
    /// Stores `events`; see the module docs for what each answer means.
    async fn deliver(&mut self, events: &[Event]) -> Result<(), SinkError> {
        if events.is_empty() {
            return Ok(());
        }
        let mut encoded = Vec::with_capacity(events.iter().map(|e| e.line().len() + 80).sum());
        let mut entries = Vec::with_capacity(events.len());
        let mut ids = Vec::with_capacity(events.len());
        let mut states = Vec::with_capacity(events.len());
        let known = std::mem::take(&mut self.known);
        for event in events {
            let start = encoded.len();
            let id = push_entry(event, &mut encoded);
            let len = encoded.len() - start;
            states.push(match id.as_ref().and_then(|id| known.get(id)) {
                Some(Known::Delivered) => State::Delivered,
                Some(Known::Refused(why)) => State::Refused(why.clone()),
                None if len > self.config.max_bytes => State::Refused(format!(
                    "the event is {len} bytes as a bulk entry, more than MaxBytes ({} bytes)",
                    self.config.max_bytes
                )),
                None => State::Waiting,
            });
            entries.push(start..encoded.len());
            ids.push(id);
        }
        if states.contains(&State::Waiting) {
            match self.client.get(&self.config.client).await {
                Ok(client) => {
                    self.send_waiting(&client, &encoded, &entries, &mut states)
                        .await
                }
                Err(e) => {
                    let first = states.iter().position(|s| *s != State::Delivered);
                    return Err(SinkError::retry(first.unwrap_or(0), e));
                }
            }
        }
        self.conclude(&ids, &states)
    }

    /// Drops the client: the next delivery reads the `CA` file again and opens new connections.
    async fn reopen(&mut self) -> Result<(), SinkError> {
        self.client.forget();
        Ok(())
    }

    /// The receiver's last answer: `STATUS: the start of the body`, secrets masked.
    fn last_answer(&self) -> Option<String> {
        self.last_answer.clone()
    }

    fn check_files(&self) -> Result<(), KeyError> {
        self.config.client.check_files()
    }

    /// Drops the client and its connections. Nothing is buffered: every request was answered.
    async fn close(&mut self) -> Result<(), SinkError> {
        self.client.forget();
        self.known.clear();
        Ok(())
    }
}

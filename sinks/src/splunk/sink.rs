//! [`SplunkSink`]: POSTs a pipe's events to HEC, `Batch` at a time, and counts them delivered
//! as the guarantee of the pipe asks (see [`super`] for the delivery guarantee).
//!
//! A batch from the core is cut into requests of at most `Batch` events, sent one after the
//! other on the pipe's channel. With `Ack = no` a request's events count once HEC answered 2xx.
//! With `Ack = yes` every accepted request's `ackId` is kept, and once the batch is sent (or a
//! request failed) the sink asks `/services/collector/ack` about them all, again and again
//! (50 ms, doubling up to 1 s between questions) until each says `true` or `AckTimeout`
//! passed: the events count up to the first request not yet acknowledged, and the rest are
//! sent again by the next delivery (at least once).
//!
//! Sorting out a refused request (see [`super::answer`] for what each answer means):
//!
//! - HEC refused the event at `invalid-event-number` N (code 6, 12, 13, 15): HEC refuses the
//!   whole request on such an error, so the N events before it are sent again as a request of
//!   their own, then the event N alone. Refused alone too, it is a permanent failure: the core
//!   writes it to the dead-letter file with HEC's answer and calls again with the rest. Taken
//!   alone, it is delivered and the sending goes on. If HEC had indexed the events before N
//!   the first time after all, they are in the index twice (at least once, never lost).
//! - 413 (request too large): the request is sent again in halves; a single event HEC refuses
//!   as too large is a permanent failure.
//! - Any other refusal is about the request (token, index, channel, a busy or failing HEC, no
//!   answer): a retry after the events delivered so far, which the core logs as a warning
//!   naming the pipe, HEC's answer and the key to check, and which never dead-letters.

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use broker_core::config::{ConfigError, PipeSettings};
use broker_core::{Event, KeyError, Sink, SinkError};
use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use tokio::time::Instant;

use super::answer::{ack_query, acked_ids, outcome, Outcome, Reply};
use super::body::Envelope;
use super::channel;
use super::config::SplunkConfig;
use crate::util::http::answer::{retry_error, Answer, QUOTE_BYTES};
use crate::util::http::client::LazyClient;
use crate::util::http::Secrets;

/// The header that names the channel.
pub const CHANNEL_HEADER: &str = "x-splunk-request-channel";
/// The first pause between two questions to the acknowledgement endpoint.
const FIRST_ACK_PAUSE: Duration = Duration::from_millis(50);
/// The longest pause between two questions to the acknowledgement endpoint.
const LONGEST_ACK_PAUSE: Duration = Duration::from_secs(1);

/// A sink that sends events to a Splunk HTTP Event Collector.
pub struct SplunkSink {
    config: SplunkConfig,
    /// The pipe's name, for the channel file and log lines.
    pipe: String,
    /// The members every event object shares.
    envelope: Envelope,
    /// `Splunk TOKEN`, marked sensitive.
    authorization: HeaderValue,
    /// Texts never to show: the token, a proxy password.
    secrets: Secrets,
    /// The HTTP client, built (and the `CA` file read) on the first delivery.
    client: LazyClient,
    /// Where the channel file is kept (the spool directory), once the pipeline said.
    state_dir: Option<PathBuf>,
    /// The channel GUID, read or made on the first delivery.
    channel: Option<String>,
    /// HEC's last answer, for `--test-pipe`.
    last_answer: Option<String>,
}

/// An accepted request waiting for its acknowledgement.
#[derive(Clone, Copy, Debug)]
struct Pending {
    /// The index after the request's last event in the batch.
    end: usize,
    /// Its `ackId`.
    ack_id: u64,
    /// Whether HEC said it is indexed.
    acked: bool,
}

impl SplunkSink {
    /// A sink for checked settings; `pipe` names its channel file. Nothing is opened yet.
    pub fn new(config: SplunkConfig, pipe: impl Into<String>) -> Result<Self, String> {
        let mut authorization = HeaderValue::from_str(&format!("Splunk {}", config.token.expose()))
            .map_err(|_| "holds characters an HTTP header cannot carry".to_string())?;
        authorization.set_sensitive(true);
        let mut secrets = Secrets::new();
        secrets.add_secret(&config.token);
        if let Some(password) = config.client.proxy_password() {
            secrets.add(&password);
        }
        Ok(SplunkSink {
            envelope: Envelope::new(&config),
            config,
            pipe: pipe.into(),
            authorization,
            secrets,
            client: LazyClient::default(),
            state_dir: None,
            channel: None,
            last_answer: None,
        })
    }

    /// Checks a pipe's settings (reading `TokenFile`) and makes the sink.
    pub fn from_settings(settings: &PipeSettings) -> Result<Self, ConfigError> {
        let config = SplunkConfig::from_settings(settings)?;
        let token_key = if settings.get("TokenFile").is_some() {
            "TokenFile"
        } else {
            "Token"
        };
        Self::new(config, &settings.pipe).map_err(|e| settings.error(token_key, e))
    }

    /// The channel: kept in the state directory when there is one, else made for this sink.
    async fn channel(&mut self) -> Result<String, String> {
        if let Some(channel) = &self.channel {
            return Ok(channel.clone());
        }
        let channel = match &self.state_dir {
            Some(dir) => {
                let file = channel::channel_file(dir, &self.pipe);
                tokio::task::spawn_blocking(move || channel::load_or_create(&file))
                    .await
                    .map_err(|e| format!("reading the channel file failed: {e}"))??
            }
            None => channel::new_guid()?,
        };
        self.channel = Some(channel.clone());
        Ok(channel)
    }

    /// POSTs one request of `events` and sorts HEC's answer; the message says what HEC (or the
    /// connection) said, secrets masked.
    async fn post(
        &mut self,
        client: &reqwest::Client,
        channel: &str,
        events: &[Event],
    ) -> (Outcome, String) {
        let origin = self.config.origin();
        let request = client
            .post(self.config.event_url.clone())
            .header(AUTHORIZATION, self.authorization.clone())
            .header(CHANNEL_HEADER, channel)
            .header(CONTENT_TYPE, "application/json")
            .body(self.envelope.body(events));
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) => {
                let reason = self.secrets.mask(&self.config.client.reason(&e));
                let retry = Outcome::Retry {
                    hint: "",
                    wait: None,
                };
                return (retry, format!("cannot POST to {origin}: {reason}"));
            }
        };
        let answer = Answer::read(response, QUOTE_BYTES).await;
        let summary = answer.summary(&self.secrets);
        self.last_answer = Some(summary.clone());
        let reply = Reply::parse(&answer.body);
        let outcome = outcome(
            answer.status.as_u16(),
            &reply,
            answer.retry_after,
            events.len(),
        );
        tracing::debug!(
            "pipe {}: splunk {origin}: {} events: {summary}",
            self.pipe,
            events.len()
        );
        let message = match &outcome {
            Outcome::Retry { hint, .. } => {
                format!("{origin} answered {summary}{hint}{}", answer.asked_wait())
            }
            _ => format!("{origin} answered {summary}"),
        };
        (outcome, message)
    }

    /// Asks the acknowledgement endpoint about `ids`: the ids HEC says are indexed, or why it
    /// did not answer (`Err((message, worth asking again))`).
    async fn ask_acks(
        &mut self,
        client: &reqwest::Client,
        channel: &str,
        ids: &[u64],
    ) -> Result<Vec<u64>, (String, bool)> {
        let origin = self.config.origin();
        let request = client
            .post(self.config.ack_url.clone())
            .header(AUTHORIZATION, self.authorization.clone())
            .header(CHANNEL_HEADER, channel)
            .header(CONTENT_TYPE, "application/json")
            .body(ack_query(ids));
        let response = request.send().await.map_err(|e| {
            let reason = self.secrets.mask(&self.config.client.reason(&e));
            (
                format!("cannot ask {origin} for acknowledgements: {reason}"),
                true,
            )
        })?;
        let answer = Answer::read(response, QUOTE_BYTES).await;
        let status = answer.status.as_u16();
        if (200..300).contains(&status) {
            return Ok(acked_ids(&answer.body));
        }
        let summary = answer.summary(&self.secrets);
        let reply = Reply::parse(&answer.body);
        let hint = match outcome(status, &reply, None, 0) {
            Outcome::Retry { hint, .. } => hint,
            _ => "",
        };
        let again = status == 429 || status >= 500;
        let message = format!("{origin} answered the acknowledgement query {summary}{hint}");
        Err((message, again))
    }

    /// Waits for the acknowledgements of `pending` (see the module docs) and returns how many
    /// events of the batch count as delivered (`counted`, then the end of each acknowledged
    /// request in order), and why not more when not all were acknowledged.
    async fn settle(
        &mut self,
        client: &reqwest::Client,
        channel: &str,
        pending: &mut [Pending],
        mut counted: usize,
    ) -> (usize, Option<String>) {
        let deadline = Instant::now() + self.config.ack_timeout;
        let mut pause = FIRST_ACK_PAUSE;
        let mut problem = None;
        loop {
            let ids: Vec<u64> = pending
                .iter()
                .filter(|p| !p.acked)
                .map(|p| p.ack_id)
                .collect();
            if ids.is_empty() {
                break;
            }
            match self.ask_acks(client, channel, &ids).await {
                Ok(acked) => {
                    for p in pending.iter_mut() {
                        p.acked |= acked.contains(&p.ack_id);
                    }
                    problem = None;
                }
                Err((message, again)) => {
                    problem = Some(message);
                    if !again {
                        break;
                    }
                }
            }
            if pending.iter().all(|p| p.acked) {
                break;
            }
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            tokio::time::sleep(pause.min(deadline - now)).await;
            pause = (pause * 2).min(LONGEST_ACK_PAUSE);
        }
        for p in pending.iter() {
            if !p.acked {
                break;
            }
            counted = p.end;
        }
        let waiting = pending.iter().filter(|p| !p.acked).count();
        if waiting == 0 {
            return (counted, None);
        }
        let why = problem.unwrap_or_else(|| {
            format!(
                "{} did not acknowledge {waiting} of {} requests within AckTimeout ({} s): \
                 sending their events again (at least once)",
                self.config.origin(),
                pending.len(),
                self.config.ack_timeout.as_secs_f64()
            )
        });
        (counted, Some(why))
    }
}

#[async_trait]
impl Sink for SplunkSink {
    async fn deliver(&mut self, events: &[Event]) -> Result<(), SinkError> {
        let origin = self.config.origin();
        let client = self
            .client
            .get(&self.config.client)
            .await
            .map_err(|e| SinkError::retry(0, format!("splunk {origin}: {e}")))?;
        let channel = self
            .channel()
            .await
            .map_err(|e| SinkError::retry(0, format!("splunk {origin}: {e}")))?;
        let ack = self.config.ack;
        let mut pending: Vec<Pending> = Vec::new();
        // Events before `sent` were accepted; without Ack they are delivered as well.
        let mut sent = 0;
        // The sizes of the next requests while a refusal is sorted out (else `Batch`).
        let mut sizes: Vec<usize> = Vec::new();
        let failure = loop {
            if sent == events.len() {
                break None;
            }
            let size = sizes.first().copied().unwrap_or(self.config.batch);
            let end = (sent + size).min(events.len());
            let request = &events[sent..end];
            let (outcome, message) = self.post(&client, &channel, request).await;
            match outcome {
                Outcome::Accepted { ack_id } => {
                    if !sizes.is_empty() {
                        sizes.remove(0);
                    }
                    if ack {
                        let Some(ack_id) = ack_id else {
                            let why = format!(
                                "{origin} gave no ackId although Ack = yes: turn on indexer \
                                 acknowledgement for the token or set Ack = no (the events are \
                                 sent again until then)"
                            );
                            break Some(SinkError::retry(0, why));
                        };
                        pending.push(Pending {
                            end,
                            ack_id,
                            acked: false,
                        });
                    }
                    sent = end;
                }
                Outcome::EventRefused { at } if request.len() > 1 => {
                    tracing::info!(
                        "pipe {}: {message}: sending the {at} events before it again, then it alone",
                        self.pipe
                    );
                    sizes = if at > 0 { vec![at, 1] } else { vec![1] };
                }
                Outcome::TooLarge if request.len() > 1 => {
                    sizes = vec![request.len() / 2];
                }
                Outcome::EventRefused { .. } => {
                    break Some(SinkError::permanent(sent, message));
                }
                Outcome::TooLarge => {
                    let why = format!("{message} (the event alone is larger than HEC takes)");
                    break Some(SinkError::permanent(sent, why));
                }
                Outcome::Retry { wait, .. } => break Some(retry_error(sent, message, wait)),
            }
        };
        // Without Ack, everything sent is delivered; with it, what HEC acknowledged.
        let counted = if ack {
            let (counted, why) = self.settle(&client, &channel, &mut pending, 0).await;
            if counted < sent {
                // A failure after an unacknowledged request: its events and the rest go again.
                let why = why.unwrap_or_default();
                let why = match &failure {
                    Some(failure) => format!("{why}; then {}", failure.message),
                    None => why,
                };
                return Err(retry_error(
                    counted,
                    why,
                    failure.and_then(|f| f.retry_after),
                ));
            }
            counted
        } else {
            sent
        };
        match failure {
            None => Ok(()),
            Some(mut failure) => {
                failure.delivered = counted;
                Err(failure)
            }
        }
    }

    async fn reopen(&mut self) -> Result<(), SinkError> {
        // Read the CA file again on the next delivery (a renewed certificate); keep the channel.
        self.client.forget();
        Ok(())
    }

    fn use_state_dir(&mut self, dir: &Path) {
        if self.state_dir.as_deref() != Some(dir) {
            self.state_dir = Some(dir.to_path_buf());
            self.channel = None;
        }
    }

    fn last_answer(&self) -> Option<String> {
        self.last_answer.clone()
    }

    fn check_files(&self) -> Result<(), KeyError> {
        self.config.client.check_files()
    }
}

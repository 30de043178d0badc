//! [`SentinelSink`]: posts a pipe's events as rows to the Logs Ingestion API, with a token of
//! the client-credentials flow, and says how far it got. See the [module docs](super) for what
//! each answer means.

use std::ops::Range;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use broker_core::config::{ConfigError, PipeSettings};
use broker_core::{Event, KeyError, Sink, SinkError};
use reqwest::header::{CONTENT_TYPE, WWW_AUTHENTICATE};
use reqwest::StatusCode;

use super::answer::{self, refresh_margin};
use super::body::{self, too_large, MAX_REQUEST};
use super::config::SentinelConfig;
use crate::util::http::answer::{quote, QUOTED_CHARS, QUOTE_BYTES};
use crate::util::http::client::LazyClient;
use crate::util::http::{retry_error, Answer, Class, Secret, Secrets};

/// How many bytes of a token answer are read (a token is a few kilobytes).
const TOKEN_ANSWER_BYTES: usize = 256 * 1024;

/// A token and when to fetch the next one.
struct CachedToken {
    /// The bearer token.
    value: Secret,
    /// From then on, a new token is fetched first.
    refresh_at: Instant,
}

/// What came of one request.
#[derive(Debug)]
enum Sent {
    /// 2xx: its rows are ingested.
    Taken,
    /// 413: too large together.
    TooLarge(String),
    /// 400 or another 4xx about the content: a row, or the request, was refused.
    Refused(String),
    /// No answer, or an answer that says "later" or "not with this configuration".
    Retry(String, Option<Duration>),
}

/// Sends a pipe's events to Azure Monitor (`To = sentinel`).
pub struct SentinelSink {
    config: SentinelConfig,
    /// The ingestion URL.
    url: String,
    /// The client, built on the first delivery.
    client: LazyClient,
    token: Option<CachedToken>,
    /// The client secret and the proxy's password.
    base_secrets: Secrets,
    /// Those and the current token, masked in every quoted text.
    secrets: Secrets,
    /// What the receiver last answered (`--test-pipe` prints it).
    last_answer: Option<String>,
    /// The line of an event already ingested after the event reported refused: the next
    /// delivery counts it without sending it again.
    taken_ahead: Option<String>,
}

impl SentinelSink {
    /// A sink for a checked configuration (no I/O).
    pub fn new(config: SentinelConfig) -> Self {
        let mut secrets = Secrets::new();
        secrets.add_secret(&config.client_secret);
        if let Some(password) = config.client.proxy_password() {
            secrets.add(&password);
        }
        SentinelSink {
            url: config.ingestion_url(),
            config,
            client: LazyClient::default(),
            token: None,
            base_secrets: secrets.clone(),
            secrets,
            last_answer: None,
            taken_ahead: None,
        }
    }

    /// Reads and checks a pipe's keys and builds the sink (no I/O but reading `ClientSecretFile`).
    pub fn from_settings(settings: &PipeSettings) -> Result<Self, ConfigError> {
        Ok(SentinelSink::new(SentinelConfig::from_settings(settings)?))
    }

    /// The checked configuration.
    pub fn config(&self) -> &SentinelConfig {
        &self.config
    }

    /// `text` masked, on one line, cut to the length a message quotes.
    fn quote(&self, text: &str) -> String {
        quote(&self.secrets.mask(text), QUOTED_CHARS)
    }

    /// `STATUS: what Azure said`: the error its body names (`named`), else the start of the
    /// body, masked.
    fn summary(&self, got: &Answer, named: Option<String>) -> String {
        match named.map(|text| self.quote(&text)) {
            Some(said) if !said.is_empty() => format!("{}: {said}", got.status),
            _ => got.summary(&self.secrets),
        }
    }

    /// The bearer token: the cached one until shortly before it expires, else a new one from
    /// the token endpoint. The error is the one-line reason and the wait a 429 or 503 asked for
    /// (always a retry: the credentials are the same for every event).
    async fn token(
        &mut self,
        client: &reqwest::Client,
    ) -> Result<String, (String, Option<Duration>)> {
        if let Some(token) = &self.token {
            if Instant::now() < token.refresh_at {
                return Ok(token.value.expose().to_string());
            }
        }
        self.token = None;
        let asked = Instant::now();
        let form = form(&[
            ("client_id", &self.config.client_id),
            ("client_secret", self.config.client_secret.expose()),
            ("grant_type", "client_credentials"),
            ("scope", &self.config.scope),
        ]);
        let authority = self.config.authority_origin();
        let response = client
            .post(self.config.token_url())
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await;
        let response = match response {
            Ok(response) => response,
            Err(e) => {
                let reason = self.quote(&self.config.client.reason(&e));
                return Err((
                    format!("cannot get a token from {authority}: {reason}"),
                    None,
                ));
            }
        };
        let got = Answer::read(response, TOKEN_ANSWER_BYTES).await;
        if got.class() != Class::Delivered {
            let summary = self.summary(&got, answer::token_error(&got.body));
            self.last_answer = Some(format!("token endpoint {summary}"));
            let busy = got.status == StatusCode::TOO_MANY_REQUESTS || got.status.is_server_error();
            let why = if busy {
                format!(
                    "token endpoint {authority} answered {summary}{}",
                    got.asked_wait()
                )
            } else {
                format!(
                    "token endpoint {authority} refused the client credentials: {summary} \
                     (check TenantId, ClientId, ClientSecret and AuthorityHost; the events wait \
                     in the spool)"
                )
            };
            return Err((why, got.retry_after));
        }
        let token = if got.complete {
            answer::token(&got.body)
        } else {
            Err("the answer is too large".to_string())
        };
        let token = token.map_err(|why| {
            let why = format!(
                "token endpoint {authority} answered {} without a usable token: {why}",
                got.status
            );
            (why, None)
        })?;
        // The new token replaces the old one among the secrets (they would pile up otherwise).
        self.secrets = self.base_secrets.clone();
        self.secrets.add(&token.access_token);
        let refresh_at = asked
            + token
                .lifetime
                .saturating_sub(refresh_margin(token.lifetime));
        self.token = Some(CachedToken {
            value: Secret::new(token.access_token.clone()),
            refresh_at,
        });
        Ok(token.access_token)
    }

    /// Posts `rows` as one request; a 401 fetches a new token and sends once more.
    async fn post(&mut self, client: &reqwest::Client, rows: &[String]) -> Sent {
        let body = body::body(rows);
        let origin = self.config.endpoint_origin();
        let mut fresh = false;
        loop {
            let token = match self.token(client).await {
                Ok(token) => token,
                Err((why, wait)) => return Sent::Retry(why, wait),
            };
            let response = client
                .post(&self.url)
                .bearer_auth(&token)
                .header(CONTENT_TYPE, "application/json")
                .body(body.clone())
                .send()
                .await;
            let response = match response {
                Ok(response) => response,
                Err(e) => {
                    let reason = self.quote(&self.config.client.reason(&e));
                    self.last_answer = None;
                    return Sent::Retry(format!("Azure Monitor {origin}: {reason}"), None);
                }
            };
            let challenge = response
                .headers()
                .get(WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let got = Answer::read(response, QUOTE_BYTES).await;
            let summary = self.summary(&got, answer::ingestion_error(&got.body));
            self.last_answer = Some(summary.clone());
            if got.status == StatusCode::UNAUTHORIZED && !fresh {
                // The token expired or was revoked early: a new one, and the request once more.
                tracing::info!(
                    "Azure Monitor {origin} answered 401 ({}): fetching a new token",
                    self.quote(challenge.as_deref().unwrap_or("no challenge"))
                );
                self.token = None;
                fresh = true;
                continue;
            }
            let why = format!("Azure Monitor {origin} answered {summary}");
            return match (got.status.as_u16(), got.class()) {
                (_, Class::Delivered) => Sent::Taken,
                (413, _) => Sent::TooLarge(why),
                (_, Class::Reject) => Sent::Refused(why),
                (status, Class::Retry) => Sent::Retry(
                    format!("{why}{}{}", hint(status), got.asked_wait()),
                    got.retry_after,
                ),
            };
        }
    }

    /// Counts the event taken ahead of a refused one, if `events` starts with it.
    fn recall(&mut self, events: &[Event]) -> usize {
        match self.taken_ahead.take() {
            Some(line) if events.first().is_some_and(|e| e.line() == line) => 1,
            _ => 0,
        }
    }

    /// Delivers `events` from `start` (see the module docs).
    async fn send(&mut self, events: &[Event], start: usize) -> Result<(), SinkError> {
        let client = self
            .client
            .get(&self.config.client)
            .await
            .map_err(|why| SinkError::retry(start, format!("Azure Monitor: {why}")))?;
        let now = chrono::Utc::now();
        let rows: Vec<String> = events.iter().map(|e| body::row(e, now)).collect();
        let mut at = start;
        while at < rows.len() {
            if too_large(&rows[at]) {
                return Err(SinkError::permanent(
                    at,
                    format!(
                        "its row is {} bytes: more than the {MAX_REQUEST} bytes the Logs Ingestion API takes in a request",
                        rows[at].len()
                    ),
                ));
            }
            let request = body::next_request(&rows, at, self.config.batch);
            // Requests still to send, the next one last: a refused request is split in halves.
            let mut pending: Vec<Range<usize>> = vec![request];
            while let Some(range) = pending.pop() {
                match self.post(&client, &rows[range.clone()]).await {
                    Sent::Taken => at = range.end,
                    Sent::TooLarge(_) | Sent::Refused(_) if range.len() > 1 => {
                        let middle = range.start + range.len() / 2;
                        pending.push(middle..range.end);
                        pending.push(range.start..middle);
                    }
                    Sent::TooLarge(why) => {
                        return Err(SinkError::permanent(
                            range.start,
                            format!(
                                "{why}, for its row alone ({} bytes)",
                                rows[range.start].len()
                            ),
                        ))
                    }
                    Sent::Refused(why) => {
                        return Err(self
                            .refused_alone(&client, events, &rows, range.start, why)
                            .await)
                    }
                    Sent::Retry(why, wait) => return Err(retry_error(range.start, why, wait)),
                }
            }
        }
        Ok(())
    }

    /// The row of event `index` was refused alone. After an event taken in this delivery, the
    /// row is bad: a dead letter. As the first event, the next one is sent alone to tell a bad
    /// row from a refused request; without a next one, it waits (a retry).
    async fn refused_alone(
        &mut self,
        client: &reqwest::Client,
        events: &[Event],
        rows: &[String],
        index: usize,
        why: String,
    ) -> SinkError {
        if index > 0 {
            return SinkError::permanent(index, why);
        }
        let next = index + 1;
        if next >= rows.len() || too_large(&rows[next]) {
            return SinkError::retry(
                index,
                format!(
                    "{why}, for a request of one row: a bad row or a request the receiver refuses \
                     whatever it holds (check Dcr, Stream and the stream's columns); the event \
                     waits in the spool and is sorted out with the next one"
                ),
            );
        }
        match self.post(client, &rows[next..=next]).await {
            Sent::Taken => {
                self.taken_ahead = Some(events[next].line().to_string());
                SinkError::permanent(index, why)
            }
            Sent::Retry(next_why, wait) => retry_error(index, next_why, wait),
            Sent::Refused(_) | Sent::TooLarge(_) => SinkError::retry(
                index,
                format!(
                    "{why}; the next event alone was refused too: the receiver refuses every \
                     request, not these events (check Dcr, Stream and the stream's columns); the \
                     events wait in the spool"
                ),
            ),
        }
    }
}

/// What to check after a status that is about the configuration.
fn hint(status: u16) -> &'static str {
    match status {
        401 => " even with a new token (check TenantId and that the app's token is for Azure Monitor: Scope, AuthorityHost)",
        403 => " (the app needs the Monitoring Metrics Publisher role on the DCR; a new role assignment can take 30 minutes)",
        404 => " (check Endpoint, Dcr and Stream: the DCR or its stream was not found)",
        _ => "",
    }
}

/// An `application/x-www-form-urlencoded` body.
pub(super) fn form(pairs: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        encode_component(name, &mut out);
        out.push('=');
        encode_component(value, &mut out);
    }
    out
}

/// Percent-encodes every byte but letters, digits and `-._~`.
fn encode_component(text: &str, out: &mut String) {
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

#[async_trait]
impl Sink for SentinelSink {
    async fn deliver(&mut self, events: &[Event]) -> Result<(), SinkError> {
        let start = self.recall(events);
        self.send(events, start).await
    }

    async fn reopen(&mut self) -> Result<(), SinkError> {
        // A renewed CA file or proxy setting is read again; a token is fetched again.
        self.client.forget();
        self.token = None;
        Ok(())
    }

    fn last_answer(&self) -> Option<String> {
        self.last_answer.clone()
    }

    fn check_files(&self) -> Result<(), KeyError> {
        self.config.client.check_files()
    }
}

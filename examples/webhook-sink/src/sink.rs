//! [`WebhookSink`]: POSTs a pipe's events, `Batch` at a time, and says how far it got.
//!
//! A batch from the core is cut into requests of at most `Batch` events, sent one after the
//! other; the events of the requests that the receiver accepted (2xx) count as delivered.
//!
//! | answer | what the sink says |
//! | --- | --- |
//! | 2xx | the request's events are delivered |
//! | 429, 408, 5xx, 3xx, no answer (refused, reset, timed out, TLS failure) | retry: the request's events and the rest wait in the spool; a `Retry-After` on a 429 or 503 (seconds or an HTTP-date, capped at 300 s) is the least wait before the next attempt |
//! | 401, 403, 404, 405, 407, 410, 415, 421 | retry too: these say the Url, the credentials or the body format are wrong for every request, not that an event is bad; dead-lettering would empty the spool into the dead-letter file until someone fixed the config |
//! | any other 4xx (400, 413, 422, ...) | the request's content was refused: its events are sent again one per request (a request of one event: it and the next event), to tell a refused event from a refused request, below |
//!
//! Sorting out a refused request, one event per request, in order:
//!
//! - Every event taken (a request too large together): all delivered.
//! - No event taken: the receiver refuses the requests, not the events (Splunk's `Incorrect
//!   index`, a wrong channel or source type answer 400 to every request). That is a retry, never
//!   a dead letter: the events wait in the spool, the pipe backs off, and the log line names the
//!   status and the receiver's message. It goes on until the receiver takes events again.
//! - Some events refused while another is taken: each refused event is a permanent failure (the
//!   core writes it to the dead-letter file and goes on). The sending stops at the first event
//!   taken after a refusal; what the receiver said about the events after the reported one is
//!   kept for the next delivery ([`Verdicts`]), so no event is sent (or taken) twice for it.
//!
//! A request that timed out may have reached the receiver: it is sent again, so delivery is at
//! least once. The HTTP client is the layer's ([`broker_sinks::util::http`]): no proxy unless
//! `Proxy` names one (the proxy variables of the environment are ignored without it), the
//! server's certificate always verified, no redirects followed. Header values (tokens, API keys)
//! and the URL's path and query are never logged nor put in a message: a response body quoted in
//! a message has them masked in every form a receiver may echo ([`Secrets`]). Every answer is
//! kept for `--test-pipe` ([`Sink::last_answer`]).

use std::time::Duration;

use async_trait::async_trait;
use broker_core::config::{ConfigError, PipeSettings};
use broker_core::{Event, KeyError, Sink, SinkError};
use broker_sinks::util::http::answer::QUOTE_BYTES;
use broker_sinks::util::http::client::LazyClient;
use broker_sinks::util::http::{retry_error, Answer, Class, Secrets};
use broker_sinks::util::verdicts::{Recalled, Settled, Verdict, Verdicts};
use reqwest::StatusCode;

use crate::body::encode_body;
use crate::config::WebhookConfig;

/// A sink that POSTs events to a web service over HTTPS.
pub struct WebhookSink {
    config: WebhookConfig,
    /// The pipe's name, for log lines (the core names the pipe in its own lines).
    pipe: String,
    /// The HTTP client, built (and the `CA` file read) on the first delivery.
    client: LazyClient,
    /// Texts never to show: the header values, the URL's path and query, a proxy's password.
    secrets: Secrets,
    /// The receiver's last answer, for `--test-pipe`.
    last_answer: Option<String>,
    /// What the receiver said about events past the one last reported refused, learnt while
    /// sorting out a refused request: used instead of sending them again, when the next
    /// delivery starts with them.
    ahead: Verdicts,
}

/// How the receiver answered one request.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// 2xx: every event of the request was taken.
    Taken,
    /// Worth sending again later, not before the wait if any; the message says why.
    Retry(String, Option<Duration>),
    /// The request's content was refused; the message says why.
    Refused(String),
}

/// What to check when the receiver refuses every request alike.
fn hint(status: StatusCode) -> &'static str {
    match status.as_u16() {
        300..=399 => " (redirects are not followed: set Url to the address it points to)",
        401 | 403 | 407 => {
            " (check the credentials in the Header keys; the events wait in the spool)"
        }
        404 | 405 | 410 | 421 => " (check Url; the events wait in the spool)",
        415 => " (check Body and any Content-Type Header; the events wait in the spool)",
        _ => "",
    }
}

impl WebhookSink {
    /// A sink for checked settings; `pipe` names it in log lines. Nothing is opened yet.
    pub fn new(config: WebhookConfig, pipe: impl Into<String>) -> Self {
        WebhookSink {
            secrets: secrets_of(&config),
            config,
            pipe: pipe.into(),
            client: LazyClient::default(),
            last_answer: None,
            ahead: Verdicts::new(),
        }
    }

    /// Checks a pipe's settings and makes the sink. No I/O.
    pub fn from_settings(settings: &PipeSettings) -> Result<Self, ConfigError> {
        Ok(Self::new(
            WebhookConfig::from_settings(settings)?,
            &settings.pipe,
        ))
    }

    /// POSTs one request of `events` and sorts the answer.
    async fn post(&mut self, client: &reqwest::Client, events: &[Event]) -> Outcome {
        let origin = self.config.origin();
        let body = encode_body(self.config.body, events);
        let size = body.len();
        // The headers go on each request: a client's default headers keep one value per name,
        // and a `Header` may repeat.
        let request = client
            .post(self.config.url.clone())
            .headers(self.config.headers.clone())
            .body(body);
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) => {
                let reason = self.secrets.mask(&self.config.client.reason(&e));
                return Outcome::Retry(format!("cannot POST to {origin}: {reason}"), None);
            }
        };
        let answer = Answer::read(response, QUOTE_BYTES).await;
        let status = answer.status;
        tracing::debug!(
            "pipe {}: webhook {origin}: {} events ({size} bytes): {status}",
            self.pipe,
            events.len()
        );
        let summary = answer.summary(&self.secrets);
        self.last_answer = Some(summary.clone());
        match answer.class() {
            Class::Delivered => Outcome::Taken,
            class => {
                let message = format!(
                    "{origin} answered {summary}{}{}",
                    hint(status),
                    answer.asked_wait()
                );
                if class == Class::Retry {
                    Outcome::Retry(message, answer.retry_after)
                } else {
                    Outcome::Refused(message)
                }
            }
        }
    }

    /// Uses what the receiver already said about the first events of `events` (see
    /// [`WebhookSink::ahead`]): how many of them were taken, or the permanent failure of the first
    /// one refused. Forgets what does not match.
    fn recall(&mut self, events: &[Event]) -> Result<usize, SinkError> {
        match self.ahead.recall(events)? {
            // This sink keeps no `Resend` verdict.
            Recalled::Taken(taken) | Recalled::Resend(taken) => Ok(taken),
        }
    }

    /// Sorts out a request of `events[start..end]` that the receiver refused (see the module
    /// docs): sends its events one per request, and returns where the next request starts
    /// when all were taken.
    async fn sort_out(
        &mut self,
        client: &reqwest::Client,
        events: &[Event],
        start: usize,
        end: usize,
        why: String,
    ) -> Result<usize, SinkError> {
        // A request of one event is sorted out with the next: it alone would tell nothing.
        let end = end.max((start + 2).min(events.len()));
        tracing::warn!(
            "pipe {}: webhook {why}, for a request of events {} to {} of {}: sending them one per request to tell a refused event from a refused request",
            self.pipe,
            start + 1,
            end,
            events.len()
        );
        let mut verdicts: Vec<Verdict> = Vec::new();
        for event in &events[start..end] {
            let refused_before = verdicts.iter().any(|v| *v != Verdict::Taken);
            match self.post(client, std::slice::from_ref(event)).await {
                Outcome::Taken => {
                    verdicts.push(Verdict::Taken);
                    if refused_before {
                        break;
                    }
                }
                Outcome::Refused(why) => verdicts.push(Verdict::Refused(why)),
                Outcome::Retry(why, wait) => {
                    let taken = verdicts.iter().take_while(|v| **v == Verdict::Taken);
                    return Err(retry_error(start + taken.count(), why, wait));
                }
            }
        }
        if !verdicts.contains(&Verdict::Taken) {
            let alone = match verdicts.len() {
                1 => "its event sent alone was".to_string(),
                n => format!("each of its {n} events sent alone was"),
            };
            return Err(SinkError::retry(
                start,
                format!(
                    "{why}; {alone} refused too: the receiver refuses every request, not these \
                     events (check Url and the Header keys: token, index, channel, source \
                     type); the events wait in the spool"
                ),
            ));
        }
        // All taken (`Ok(end)`), or the first refused one's error, the verdicts after it kept.
        match self.ahead.settle(events, start, verdicts) {
            Settled::Taken(end) => Ok(end),
            Settled::Refused(error) => Err(error),
            Settled::Resend(_) => unreachable!("this sink gives no Resend verdict"),
        }
    }
}

/// The secrets of a webhook pipe: its header values and its Url's path and query.
fn secrets_of(config: &WebhookConfig) -> Secrets {
    let mut secrets = Secrets::new();
    for value in config.headers.values().filter(|v| v.is_sensitive()) {
        if let Ok(value) = value.to_str() {
            secrets.add_credential(value);
        }
    }
    secrets.add_url(&config.url);
    if let Some(password) = config.client.proxy_password() {
        secrets.add(&password);
    }
    secrets
}

#[async_trait]
impl Sink for WebhookSink {
    /// Sends `events` in requests of at most `Batch` events, in order, stopping at the first
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
        while next < events.len() {
            let end = (next + self.config.batch).min(events.len());
            next = match self.post(&client, &events[next..end]).await {
                Outcome::Taken => end,
                Outcome::Retry(why, wait) => return Err(retry_error(next, why, wait)),
                Outcome::Refused(why) => self.sort_out(&client, events, next, end, why).await?,
            };
        }
        Ok(())
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
        self.ahead.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use broker_core::{EventType, SinkErrorKind};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    /// A plain HTTP/1.1 receiver on 127.0.0.1 that answers each request with the status
    /// `answer` gives for its body, and records the bodies.
    struct Receiver {
        url: String,
        bodies: Arc<Mutex<Vec<(String, u16)>>>,
    }

    impl Receiver {
        async fn start(answer: fn(&str, usize) -> u16) -> Receiver {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}/hook/s3cret-path", listener.local_addr().unwrap());
            let bodies = Arc::new(Mutex::new(Vec::new()));
            let seen = bodies.clone();
            tokio::spawn(async move {
                loop {
                    let (mut socket, _) = listener.accept().await.unwrap();
                    let request = read_request(&mut socket).await;
                    let n = seen.lock().unwrap().len();
                    let status = answer(&request, n);
                    seen.lock().unwrap().push((request.clone(), status));
                    let body = format!("echo {request}");
                    let wait = if matches!(status, 429 | 503) {
                        "Retry-After: 7\r\n"
                    } else {
                        ""
                    };
                    let reply = format!(
                        "HTTP/1.1 {status} X\r\n{wait}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = socket.write_all(reply.as_bytes()).await;
                }
            });
            Receiver { url, bodies }
        }

        fn bodies(&self) -> Vec<(String, u16)> {
            self.bodies.lock().unwrap().clone()
        }
    }

    /// Reads one request and returns its `x-token` headers and its body, as `TOKEN,TOKEN|BODY`.
    async fn read_request(socket: &mut tokio::net::TcpStream) -> String {
        let mut data = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = socket.read(&mut buf).await.unwrap();
            data.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&data).to_string();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length: usize = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse().unwrap())
                    })
                    .unwrap_or(0);
                if body.len() >= length || n == 0 {
                    let tokens: Vec<&str> = head
                        .lines()
                        .filter_map(|l| l.strip_prefix("x-token: "))
                        .collect();
                    return format!("{}|{body}", tokens.join(","));
                }
            }
        }
    }

    fn events(n: usize) -> Vec<Event> {
        (0..n)
            .map(|i| Event::from_json(EventType::Alerts, &format!("{{\"id\":\"e{i}\"}}")).unwrap())
            .collect()
    }

    fn webhook(url: &str, batch: &str, body: &str) -> WebhookSink {
        let settings = PipeSettings::new(
            "Hook",
            "/b.conf",
            &[
                ("Url", url),
                ("Header", "X-Token: t0ken-value"),
                ("Batch", batch),
                ("Body", body),
                ("Timeout", "5"),
            ],
        );
        WebhookSink::from_settings(&settings).unwrap()
    }

    #[tokio::test]
    async fn batches_in_order_with_the_headers() {
        let receiver = Receiver::start(|_, _| 200).await;
        let mut sink = webhook(&receiver.url, "2", "ndjson");
        sink.deliver(&events(5)).await.unwrap();
        let bodies: Vec<_> = receiver.bodies().into_iter().map(|(b, _)| b).collect();
        assert_eq!(
            bodies,
            [
                "t0ken-value|{\"id\":\"e0\"}\n{\"id\":\"e1\"}\n",
                "t0ken-value|{\"id\":\"e2\"}\n{\"id\":\"e3\"}\n",
                "t0ken-value|{\"id\":\"e4\"}\n",
            ]
        );
        let mut sink = super::WebhookSink::from_settings(&PipeSettings::new(
            "Hook",
            "/b.conf",
            &[("Url", receiver.url.as_str()), ("Body", "array")],
        ))
        .unwrap();
        sink.deliver(&events(2)).await.unwrap();
        assert_eq!(receiver.bodies()[3].0, "|[{\"id\":\"e0\"},{\"id\":\"e1\"}]");
    }

    #[tokio::test]
    async fn a_repeated_header_sends_every_value_in_order() {
        let receiver = Receiver::start(|_, _| 200).await;
        let settings = PipeSettings::new(
            "Hook",
            "/b.conf",
            &[
                ("Url", receiver.url.as_str()),
                ("Header", "X-Token: one"),
                ("Header", "X-Other: x"),
                ("Header", "X-Token: two"),
            ],
        );
        let mut sink = WebhookSink::from_settings(&settings).unwrap();
        sink.deliver(&events(1)).await.unwrap();
        assert_eq!(receiver.bodies()[0].0, "one,two|{\"id\":\"e0\"}\n");
    }

    #[tokio::test]
    async fn a_503_counts_only_the_requests_taken_before() {
        let receiver = Receiver::start(|_, n| if n == 1 { 503 } else { 200 }).await;
        let mut sink = webhook(&receiver.url, "2", "ndjson");
        let e = sink.deliver(&events(5)).await.unwrap_err();
        assert_eq!(e.kind, SinkErrorKind::Retry);
        assert_eq!(e.delivered, 2);
        assert!(
            e.message.contains("answered 503 Service Unavailable"),
            "{e}"
        );
        assert_eq!(e.retry_after, Some(Duration::from_secs(7)), "{e}");
        assert!(
            e.message.contains("Retry-After: waiting at least 7 s"),
            "{e}"
        );
        assert_eq!(receiver.bodies().len(), 2);
    }

    fn statuses(receiver: &Receiver) -> Vec<u16> {
        receiver.bodies().iter().map(|(_, s)| *s).collect()
    }

    #[tokio::test]
    async fn a_400_in_a_batch_is_found_by_sending_one_per_request() {
        let receiver =
            Receiver::start(|body, _| if body.contains("\"e3\"") { 400 } else { 200 }).await;
        let mut sink = webhook(&receiver.url, "3", "ndjson");
        let all = events(6);
        let e = sink.deliver(&all).await.unwrap_err();
        assert_eq!(e.kind, SinkErrorKind::Permanent);
        assert_eq!(e.delivered, 3, "{e}");
        assert!(e.message.contains("answered 400 Bad Request"), "{e}");
        // The receiver echoed the token and the path: masked.
        assert!(!e.message.contains("t0ken-value"), "{e}");
        assert!(!e.message.contains("s3cret-path"), "{e}");
        assert!(e.message.contains("***"), "{e}");
        // e0-e2; e3-e5 refused; e3 alone refused, e4 alone taken: e3 is refused on its own.
        assert_eq!(statuses(&receiver), [200, 400, 400, 200]);
        // The core dead-letters e3 and goes on from e4, which the receiver already took.
        sink.deliver(&all[4..]).await.unwrap();
        let last = receiver.bodies().pop().unwrap();
        assert_eq!(
            last,
            ("t0ken-value|{\"id\":\"e5\"}\n".to_string(), 200),
            "e4 is not sent twice"
        );
        assert_eq!(receiver.bodies().len(), 5);

        // A refused request whose events all pass alone (too large together): all delivered.
        let receiver =
            Receiver::start(|body, _| if body.lines().count() > 1 { 413 } else { 200 }).await;
        let mut sink = webhook(&receiver.url, "3", "ndjson");
        sink.deliver(&events(3)).await.unwrap();
        assert_eq!(statuses(&receiver), [413, 200, 200, 200]);
    }

    #[tokio::test]
    async fn refused_events_between_taken_ones_are_each_sent_once() {
        // e1 and e2 are refused on their own; e0 and e3 are taken.
        let receiver = Receiver::start(|body, _| {
            let bad = body.contains("\"e1\"") || body.contains("\"e2\"");
            if bad {
                422
            } else {
                200
            }
        })
        .await;
        let mut sink = webhook(&receiver.url, "4", "ndjson");
        let all = events(5);
        let e = sink.deliver(&all).await.unwrap_err();
        assert_eq!((e.kind, e.delivered), (SinkErrorKind::Permanent, 1), "{e}");
        // e0-e3 refused; e0 taken, e1 refused, e2 refused, e3 taken.
        assert_eq!(statuses(&receiver), [422, 200, 422, 422, 200]);
        // From e2: refused already, without a request.
        let e = sink.deliver(&all[2..]).await.unwrap_err();
        assert_eq!((e.kind, e.delivered), (SinkErrorKind::Permanent, 0), "{e}");
        assert!(e.message.contains("422 Unprocessable Entity"), "{e}");
        assert_eq!(receiver.bodies().len(), 5);
        // From e3: taken already; only e4 is sent.
        sink.deliver(&all[3..]).await.unwrap();
        assert_eq!(receiver.bodies().len(), 6);
        assert_eq!(receiver.bodies()[5].0, "t0ken-value|{\"id\":\"e4\"}\n");
    }

    #[tokio::test]
    async fn a_request_refused_for_every_event_is_a_retry_not_dead_letters() {
        let receiver = Receiver::start(|_, _| 400).await;
        let mut sink = webhook(&receiver.url, "3", "ndjson");
        let e = sink.deliver(&events(7)).await.unwrap_err();
        assert_eq!((e.kind, e.delivered), (SinkErrorKind::Retry, 0), "{e}");
        assert!(e.message.contains("answered 400 Bad Request"), "{e}");
        assert!(e.message.contains("refuses every request"), "{e}");
        assert!(!e.message.contains("t0ken-value"), "{e}");
        // The first request, then its three events alone; never the next request.
        assert_eq!(statuses(&receiver), [400, 400, 400, 400]);

        // The last event alone, refused: nothing to tell it by, so it waits (a retry).
        let e = sink.deliver(&events(1)).await.unwrap_err();
        assert_eq!((e.kind, e.delivered), (SinkErrorKind::Retry, 0), "{e}");
        assert!(
            e.message.contains("; its event sent alone was refused too"),
            "{e}"
        );
        assert_eq!(statuses(&receiver).len(), 6);

        // Batch = 1: a refused event is sent again with the next one to tell.
        let receiver = Receiver::start(|_, _| 400).await;
        let mut sink = webhook(&receiver.url, "1", "ndjson");
        let e = sink.deliver(&events(3)).await.unwrap_err();
        assert_eq!((e.kind, e.delivered), (SinkErrorKind::Retry, 0), "{e}");
        assert_eq!(statuses(&receiver), [400, 400, 400]);
        let receiver =
            Receiver::start(|body, _| if body.contains("\"e0\"") { 400 } else { 200 }).await;
        let mut sink = webhook(&receiver.url, "1", "ndjson");
        let e = sink.deliver(&events(3)).await.unwrap_err();
        assert_eq!((e.kind, e.delivered), (SinkErrorKind::Permanent, 0), "{e}");
        assert_eq!(statuses(&receiver), [400, 400, 200]);
    }

    #[tokio::test]
    async fn a_429_asks_for_its_retry_after() {
        let receiver = Receiver::start(|_, _| 429).await;
        let mut sink = webhook(&receiver.url, "3", "ndjson");
        let e = sink.deliver(&events(2)).await.unwrap_err();
        assert_eq!((e.kind, e.delivered), (SinkErrorKind::Retry, 0));
        assert_eq!(e.retry_after, Some(Duration::from_secs(7)), "{e}");
        assert!(e.message.contains("answered 429 Too Many Requests"), "{e}");
    }

    #[tokio::test]
    async fn a_401_is_retried_not_dead_lettered() {
        let receiver = Receiver::start(|_, _| 401).await;
        let mut sink = webhook(&receiver.url, "3", "ndjson");
        let e = sink.deliver(&events(3)).await.unwrap_err();
        assert_eq!((e.kind, e.delivered), (SinkErrorKind::Retry, 0));
        assert!(e.message.contains("check the credentials"), "{e}");
        // Only 429 and 503 give a Retry-After; a 401 has none to give.
        assert_eq!(e.retry_after, None);
    }

    #[tokio::test]
    async fn no_receiver_is_a_retry_that_names_the_origin_only() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://{}/path/s3cret?k=s3cret",
            listener.local_addr().unwrap()
        );
        drop(listener);
        let mut sink = webhook(&url, "3", "ndjson");
        let e = sink.deliver(&events(1)).await.unwrap_err();
        assert_eq!((e.kind, e.delivered), (SinkErrorKind::Retry, 0));
        assert!(
            e.message.starts_with("cannot POST to http://127.0.0.1:"),
            "{e}"
        );
        assert!(!e.message.contains("s3cret"), "{e}");
    }

    #[tokio::test]
    async fn a_missing_ca_file_is_a_retry_naming_it() {
        let settings = PipeSettings::new(
            "Hook",
            "/b.conf",
            &[
                ("Url", "https://127.0.0.1:9/"),
                ("CA", "/nonexistent/ca.pem"),
            ],
        );
        let mut sink = WebhookSink::from_settings(&settings).unwrap();
        let e = sink.deliver(&events(1)).await.unwrap_err();
        assert_eq!((e.kind, e.delivered), (SinkErrorKind::Retry, 0));
        assert!(
            e.message
                .starts_with("cannot read CA /nonexistent/ca.pem: "),
            "{e}"
        );
    }
}

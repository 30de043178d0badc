//! [`WebhookSink`]: POSTs a pipe's events, `Batch` at a time, and says how far it got.
//!
//! A batch from the core is cut into requests of at most `Batch` events, sent one after the
//! other; the events of the requests that the receiver accepted (2xx) count as delivered.
//!
//! | answer | what the sink says |
//! | --- | --- |
//! | 2xx | the request's events are delivered |
//! | 429, 408, 5xx, 3xx, no answer (refused, reset, timed out, TLS failure) | retry: the request's events and the rest wait in the spool |
//! | 401, 403, 404, 405, 407, 410, 415, 421 | retry too: these say the Url, the credentials or the body format are wrong for every request, not that an event is bad; dead-lettering would empty the spool into the dead-letter file until someone fixed the config |
//! | any other 4xx (400, 413, 422, ...) | the request's content was refused: a request of one event is a permanent failure for that event (the core writes it to the dead-letter file and goes on); a request of several is sent again one event per request, so only the refused event is dead-lettered and the others are delivered once |
//!
//! A request that timed out may have reached the receiver: it is sent again, so delivery is at
//! least once. Header values (tokens, API keys) are never logged nor put in a message; a
//! response body quoted in a message has them, and the URL's path and query, masked.

use std::error::Error as _;
use std::time::Duration;

use async_trait::async_trait;
use broker_core::config::{ConfigError, PipeSettings};
use broker_core::{Event, Sink, SinkError};
use reqwest::StatusCode;

use crate::body::encode_body;
use crate::config::WebhookConfig;

/// How much of a response body a message quotes, in characters.
const QUOTED_BODY_CHARS: usize = 200;

/// A sink that POSTs events to a web service over HTTPS.
pub struct WebhookSink {
    config: WebhookConfig,
    /// The pipe's name, for log lines (the core names the pipe in its own lines).
    pipe: String,
    /// The HTTP client, built (and the `CA` file read) on the first delivery.
    client: Option<reqwest::Client>,
    /// Texts never to show: the header values, the URL's path and query.
    secrets: Vec<String>,
}

/// How the receiver answered one request.
#[derive(Debug, PartialEq, Eq)]
enum Answer {
    /// 2xx: every event of the request was taken.
    Taken,
    /// Worth sending again later; the message says why.
    Retry(String),
    /// The request's content was refused for good; the message says why.
    Refused(String),
}

/// What a status code means for the request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Class {
    Taken,
    Retry,
    Refused,
}

/// Sorts a status code: see the module docs.
pub(crate) fn classify(status: StatusCode) -> Class {
    match status.as_u16() {
        200..=299 => Class::Taken,
        401 | 403 | 404 | 405 | 407 | 408 | 410 | 415 | 421 | 429 => Class::Retry,
        400..=499 => Class::Refused,
        _ => Class::Retry,
    }
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
        let mut secrets: Vec<String> = config
            .headers
            .values()
            .filter(|v| v.is_sensitive())
            .filter_map(|v| v.to_str().ok())
            .filter(|v| !v.is_empty())
            .map(String::from)
            .collect();
        if config.url.path().len() > 1 {
            secrets.push(config.url.path().to_string());
        }
        if let Some(query) = config.url.query().filter(|q| !q.is_empty()) {
            secrets.push(query.to_string());
        }
        // Longest first, so a secret that contains another is masked whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        WebhookSink {
            config,
            pipe: pipe.into(),
            client: None,
            secrets,
        }
    }

    /// Checks a pipe's settings and makes the sink. No I/O.
    pub fn from_settings(settings: &PipeSettings) -> Result<Self, ConfigError> {
        Ok(Self::new(
            WebhookConfig::from_settings(settings)?,
            &settings.pipe,
        ))
    }

    /// The client, built on first use: reads the `CA` file (on tokio's blocking pool).
    async fn client(&mut self) -> Result<reqwest::Client, String> {
        if let Some(client) = &self.client {
            return Ok(client.clone());
        }
        broker_core::install_crypto_provider();
        let mut builder = reqwest::Client::builder()
            .user_agent(format!("procustodibus-broker/{}", broker_core::VERSION))
            .connect_timeout(self.config.timeout)
            .timeout(self.config.timeout)
            .redirect(reqwest::redirect::Policy::none());
        if let Some(ca) = &self.config.ca {
            let pem = tokio::fs::read(ca)
                .await
                .map_err(|e| format!("cannot read CA {}: {e}", ca.display()))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| format!("CA {}: not PEM certificates ({e})", ca.display()))?;
            if certs.is_empty() {
                return Err(format!(
                    "CA {}: no PEM certificate in the file",
                    ca.display()
                ));
            }
            builder = builder.tls_certs_only(certs);
        }
        let client = builder
            .build()
            .map_err(|e| format!("cannot set up the HTTP client: {}", self.reason(e)))?;
        self.client = Some(client.clone());
        Ok(client)
    }

    /// POSTs one request of `events` and sorts the answer.
    async fn post(&self, client: &reqwest::Client, events: &[Event]) -> Answer {
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
            Err(e) => return Answer::Retry(format!("cannot POST to {origin}: {}", self.reason(e))),
        };
        let status = response.status();
        tracing::debug!(
            "pipe {}: webhook {origin}: {} events ({size} bytes): {status}",
            self.pipe,
            events.len()
        );
        match classify(status) {
            Class::Taken => Answer::Taken,
            class => {
                let quoted = self.quote(response).await;
                let message = format!("{origin} answered {status}{quoted}{}", hint(status));
                if class == Class::Retry {
                    Answer::Retry(message)
                } else {
                    Answer::Refused(message)
                }
            }
        }
    }

    /// `: TEXT` with the start of a response body, secrets masked; empty for an empty body.
    async fn quote(&self, mut response: reqwest::Response) -> String {
        let mut bytes = Vec::new();
        while bytes.len() < 4 * QUOTED_BODY_CHARS {
            match response.chunk().await {
                Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
                _ => break,
            }
        }
        let mut text = String::from_utf8_lossy(&bytes).into_owned();
        for secret in &self.secrets {
            text = text.replace(secret.as_str(), "***");
        }
        let mut text: String = text
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect::<String>()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        if text.is_empty() {
            return text;
        }
        if let Some((cut, _)) = text.char_indices().nth(QUOTED_BODY_CHARS) {
            text.truncate(cut);
            text.push_str("...");
        }
        format!(": {text}")
    }

    /// A reqwest error's causes, without its URL (which may hold a secret).
    fn reason(&self, error: reqwest::Error) -> String {
        if error.is_timeout() {
            return format!(
                "no answer within {} (the request may have arrived: it is sent again)",
                seconds(self.config.timeout)
            );
        }
        let error = error.without_url();
        let mut parts: Vec<String> = Vec::new();
        let mut source = error.source();
        while let Some(e) = source {
            let text = e.to_string();
            if !parts.iter().any(|p| p.contains(&text)) {
                parts.push(text);
            }
            source = e.source();
        }
        if parts.is_empty() {
            parts.push(error.to_string());
        }
        let mut reason = parts.join(": ");
        if reason.contains("invalid peer certificate") {
            reason.push_str(&match &self.config.ca {
                Some(ca) => format!(
                    " (the server's certificate is not signed by a CA of {})",
                    ca.display()
                ),
                None => " (the server's certificate is not signed by a CA this system trusts: \
                          set CA = the PEM file of the CA that signed it)"
                    .to_string(),
            });
        }
        for secret in &self.secrets {
            reason = reason.replace(secret.as_str(), "***");
        }
        reason
    }
}

fn seconds(duration: Duration) -> String {
    format!("{} s", duration.as_secs_f64())
}

#[async_trait]
impl Sink for WebhookSink {
    /// Sends `events` in requests of at most `Batch` events, in order, stopping at the first
    /// request that failed; see the module docs for what each answer means.
    async fn deliver(&mut self, events: &[Event]) -> Result<(), SinkError> {
        if events.is_empty() {
            return Ok(());
        }
        let client = self.client().await.map_err(|e| SinkError::retry(0, e))?;
        let mut delivered = 0;
        for request in events.chunks(self.config.batch) {
            match self.post(&client, request).await {
                Answer::Taken => delivered += request.len(),
                Answer::Retry(why) => return Err(SinkError::retry(delivered, why)),
                Answer::Refused(why) if request.len() == 1 => {
                    return Err(SinkError::permanent(delivered, why))
                }
                Answer::Refused(why) => {
                    tracing::warn!(
                        "pipe {}: webhook {why}, for a request of {} events: sending them one per request to find the refused one",
                        self.pipe,
                        request.len()
                    );
                    for event in request {
                        match self.post(&client, std::slice::from_ref(event)).await {
                            Answer::Taken => delivered += 1,
                            Answer::Retry(why) => return Err(SinkError::retry(delivered, why)),
                            Answer::Refused(why) => {
                                return Err(SinkError::permanent(delivered, why))
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Drops the client: the next delivery reads the `CA` file again and opens new connections.
    async fn reopen(&mut self) -> Result<(), SinkError> {
        self.client = None;
        Ok(())
    }

    /// Drops the client and its connections. Nothing is buffered: every request was answered.
    async fn close(&mut self) -> Result<(), SinkError> {
        self.client = None;
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

    #[test]
    fn statuses_sort_as_documented() {
        let class = |n: u16| classify(StatusCode::from_u16(n).unwrap());
        for n in [200, 201, 202, 204, 299] {
            assert_eq!(class(n), Class::Taken, "{n}");
        }
        for n in [
            301, 302, 307, 401, 403, 404, 405, 407, 408, 410, 415, 421, 429, 500, 502, 503, 504,
        ] {
            assert_eq!(class(n), Class::Retry, "{n}");
        }
        for n in [400, 409, 411, 413, 422, 451, 499] {
            assert_eq!(class(n), Class::Refused, "{n}");
        }
    }

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
                    let reply = format!(
                        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
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
        assert_eq!(receiver.bodies().len(), 2);
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
        // e0-e2; e3-e5 refused; e3 alone refused. The core dead-letters e3 and goes on.
        let statuses: Vec<u16> = receiver.bodies().iter().map(|(_, s)| *s).collect();
        assert_eq!(statuses, [200, 400, 400]);
        sink.deliver(&all[4..]).await.unwrap();
        let last = receiver.bodies().pop().unwrap();
        assert_eq!(
            last,
            (
                "t0ken-value|{\"id\":\"e4\"}\n{\"id\":\"e5\"}\n".to_string(),
                200
            )
        );

        // A refused request whose events all pass alone (too large together): all delivered.
        let receiver =
            Receiver::start(|body, _| if body.lines().count() > 1 { 413 } else { 200 }).await;
        let mut sink = webhook(&receiver.url, "3", "ndjson");
        sink.deliver(&events(3)).await.unwrap();
        let statuses: Vec<u16> = receiver.bodies().iter().map(|(_, s)| *s).collect();
        assert_eq!(statuses, [413, 200, 200, 200]);
    }

    #[tokio::test]
    async fn a_401_is_retried_not_dead_lettered() {
        let receiver = Receiver::start(|_, _| 401).await;
        let mut sink = webhook(&receiver.url, "3", "ndjson");
        let e = sink.deliver(&events(3)).await.unwrap_err();
        assert_eq!((e.kind, e.delivered), (SinkErrorKind::Retry, 0));
        assert!(e.message.contains("check the credentials"), "{e}");
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

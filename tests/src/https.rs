//! The webhook sink's receiver for its end-to-end tests, on the generic
//! [`HttpReceiver`] (HTTPS with a test CA, or plain HTTP:
//! [`HttpsReceiver::plain`]). It records every
//! request (path, headers, body, when it came, the status it answered) and answers 200, unless
//! told to answer a scripted run of statuses or to refuse requests whose body contains a given
//! text. Its 429 and 503 answers carry a `Retry-After` when told to; its refusals echo the
//! `Authorization` header in the forms careless receivers use (see `echo`).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use crate::http_receiver::{Action, HttpReceiver, Reply, Request};
use crate::rsyslog::Certificates;

/// One request as the receiver saw it.
#[derive(Clone, Debug)]
pub struct Received {
    /// The path and query (`/hook?x=1`).
    pub path: String,
    /// The headers, names in lower case, in the order received.
    pub headers: Vec<(String, String)>,
    /// The body as text.
    pub body: String,
    /// The status the receiver answered.
    pub status: u16,
    /// When the request's head arrived.
    pub at: Instant,
    /// The same, by the wall clock (to compare with an HTTP-date).
    pub wall: SystemTime,
}

impl Received {
    /// Every value of header `name` (lower case).
    pub fn header_values(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The first value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.header_values(name).into_iter().next()
    }

    /// The lines of an NDJSON body.
    pub fn lines(&self) -> Vec<String> {
        self.body.lines().map(String::from).collect()
    }

    /// Whether the receiver took it (2xx).
    pub fn taken(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

#[derive(Default)]
struct State {
    /// Statuses for the next requests, in order, before any other rule.
    script: VecDeque<u16>,
    /// A request whose body contains the text gets the status.
    refuse: Vec<(String, u16)>,
    /// The `Retry-After` of the 429 and 503 answers, if any.
    retry_after: Option<String>,
    /// How many requests came so far.
    count: usize,
}

/// The webhook test receiver; stops when dropped.
pub struct HttpsReceiver {
    /// The CA (`CA =` of a pipe) and the server's certificate.
    pub certs: Certificates,
    receiver: HttpReceiver,
    state: Arc<Mutex<State>>,
}

impl HttpsReceiver {
    /// Generates the certificates and starts listening on `127.0.0.1:0`.
    pub fn start() -> HttpsReceiver {
        Self::listen(true)
    }

    /// The same receiver over plain HTTP (`http://127.0.0.1:PORT`).
    pub fn plain() -> HttpsReceiver {
        Self::listen(false)
    }

    fn listen(tls: bool) -> HttpsReceiver {
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let handler = move |request: &Request| answer(&shared, request);
        let receiver = if tls {
            HttpReceiver::start_tls(handler)
        } else {
            HttpReceiver::start(handler)
        };
        let c = receiver.certs();
        let certs = Certificates {
            ca: c.ca.clone(),
            ca_der: c.ca_der.clone(),
            cert: c.cert.clone(),
            key: c.key.clone(),
            client_cert: c.client_cert.clone(),
            client_key: c.client_key.clone(),
        };
        HttpsReceiver {
            certs,
            receiver,
            state,
        }
    }

    /// `https://127.0.0.1:PORT{path}` (`http://` for a [`HttpsReceiver::plain`] one).
    pub fn url(&self, path: &str) -> String {
        self.receiver.url(path)
    }

    /// Answers the next requests with these statuses, in order (then as before).
    pub fn script(&self, statuses: &[u16]) {
        self.lock().script.extend(statuses);
    }

    /// Answers `status` to every request whose body contains `text`.
    pub fn refuse_containing(&self, text: &str, status: u16) {
        self.lock().refuse.push((text.to_string(), status));
    }

    /// Takes every request again (forgets the `refuse_containing` rules).
    pub fn clear_refusals(&self) {
        self.lock().refuse.clear();
    }

    /// Sends `Retry-After: VALUE` with every 429 and 503 answer from now on.
    pub fn retry_after(&self, value: &str) {
        self.lock().retry_after = Some(value.to_string());
    }

    /// Every request so far, in order.
    pub fn received(&self) -> Vec<Received> {
        self.receiver
            .requests()
            .into_iter()
            .map(|(request, status)| Received {
                body: request.text(),
                path: request.path,
                headers: request.headers,
                status: status.unwrap_or(0),
                at: request.at,
                wall: request.wall,
            })
            .collect()
    }

    /// The requests to `path` so far, in order.
    pub fn received_at(&self, path: &str) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }

    /// The NDJSON lines of the requests to `path` that were taken (2xx), in order.
    pub fn taken_lines(&self, path: &str) -> Vec<String> {
        self.received_at(path)
            .iter()
            .filter(|r| r.taken())
            .flat_map(Received::lines)
            .collect()
    }

    /// Waits at most `limit` until the requests to `path` that were taken hold `count` lines.
    pub fn wait_for_lines(&self, path: &str, count: usize, limit: Duration) -> Vec<String> {
        let start = Instant::now();
        loop {
            let lines = self.taken_lines(path);
            if lines.len() >= count || start.elapsed() > limit {
                return lines;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Answers a request: the next scripted status, else the status of the first `refuse` text in
/// the body, else 200. A refusal's body echoes the `authorization` header and the path, as
/// careless receivers do, so a test can check that the broker masks them.
fn answer(state: &Mutex<State>, request: &Request) -> Action {
    let body = request.text();
    let (status, retry_after, number) = {
        let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
        let status = match state.script.pop_front() {
            Some(status) => status,
            None => state
                .refuse
                .iter()
                .find(|(text, _)| body.contains(text.as_str()))
                .map_or(200, |(_, status)| *status),
        };
        state.count += 1;
        (status, state.retry_after.clone(), state.count)
    };
    let text = if status < 300 {
        "{\"text\":\"Success\",\"code\":0}".to_string()
    } else {
        let auth = request.header("authorization").unwrap_or_default();
        echo(auth, &request.path, number)
    };
    let mut reply = Reply::status(status)
        .header("content-type", "application/json")
        .body(text);
    if let (429 | 503, Some(wait)) = (status, retry_after) {
        reply = reply.header("retry-after", &wait);
    }
    Action::Reply(reply)
}

/// The body of the `n`th answer, a refusal: it echoes the `authorization` header and the path,
/// as careless receivers do, and in `echo` the header again in one of the forms a receiver may
/// use, a different one for each answer (so that each fits in the start of a body that a
/// message quotes): JSON-escaped (`\"`, `\/`, `\u002B`), percent-encoded (upper or lower case
/// hex, `+` for a space) or the credential alone. For `Basic`, `user` has the decoded
/// `user:password`.
fn echo(auth: &str, path: &str, n: usize) -> String {
    let percent = |upper: bool, space: &str| -> String {
        auth.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    (b as char).to_string()
                }
                b' ' => space.to_string(),
                _ if upper => format!("%{b:02X}"),
                _ => format!("%{b:02x}"),
            })
            .collect()
    };
    let unicode: String = auth
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_string()
            } else {
                format!("\\u{:04X}", c as u32)
            }
        })
        .collect();
    let token = auth.split_whitespace().last().unwrap_or_default();
    let forms = [
        serde_json::to_string(&format!("said \"{auth}\"")).unwrap_or_default(),
        format!("\"{}\"", auth.replace('/', "\\/")),
        format!("\"{unicode}\""),
        format!("\"{}\"", percent(true, "%20")),
        format!("\"{}\"", percent(false, "+")),
        format!("\"{token}\""),
    ];
    let user = match auth.split_once(' ') {
        Some((scheme, credential)) if scheme.eq_ignore_ascii_case("basic") => {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD
                .decode(credential)
                .map(|d| String::from_utf8_lossy(&d).into_owned())
                .unwrap_or_default()
        }
        _ => String::new(),
    };
    format!(
        "{{\"text\":\"refused\",\"authorization\":\"{auth}\",\"path\":\"{path}\",\
         \"user\":\"{user}\",\"echo\":{}}}",
        forms[n % forms.len()]
    )
}

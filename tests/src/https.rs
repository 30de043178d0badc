//! An HTTPS receiver on 127.0.0.1 for the webhook sink's end-to-end tests: hyper over
//! tokio-rustls (ring), with a CA and a server certificate for `127.0.0.1`, `::1` and `localhost`
//! made by rcgen for the test (or plain HTTP: [`HttpsReceiver::plain`]). It records every
//! request (path, headers, body, when it came, the status it answered) and answers 200, unless
//! told to answer a scripted run of statuses or to refuse requests whose body contains a given
//! text. Its 429 and 503 answers carry a `Retry-After` when told to; its refusals echo the
//! `Authorization` header in the forms careless receivers use (see `echo`).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

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
    received: Vec<Received>,
    /// Statuses for the next requests, in order, before any other rule.
    script: VecDeque<u16>,
    /// A request whose body contains the text gets the status.
    refuse: Vec<(String, u16)>,
    /// The `Retry-After` of the 429 and 503 answers, if any.
    retry_after: Option<String>,
}

/// The HTTPS receiver; stops when dropped.
pub struct HttpsReceiver {
    /// The CA (`CA =` of a pipe) and the server's certificate.
    pub certs: Certificates,
    addr: SocketAddr,
    /// `https` or `http`.
    scheme: &'static str,
    state: Arc<Mutex<State>>,
    _runtime: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
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
        install_ring_provider();
        let dir = tempfile::tempdir().expect("temp dir for the certificates");
        let certs = Certificates::generate(dir.path());
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&certs.cert)
            .expect("read the server certificate")
            .collect::<Result<_, _>>()
            .expect("parse the server certificate");
        let key = PrivateKeyDer::from_pem_file(&certs.key).expect("read the server key");
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("server certificate and key");
        let acceptor = tls.then(|| TlsAcceptor::from(Arc::new(config)));

        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("receiver runtime");
        let listener = runtime
            .block_on(TcpListener::bind("127.0.0.1:0"))
            .expect("bind the receiver");
        let addr = listener.local_addr().expect("receiver address");
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        runtime.spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let (acceptor, state) = (acceptor.clone(), shared.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |request| answer(state.clone(), request));
                    let http = http1::Builder::new();
                    let Some(acceptor) = acceptor else {
                        let _ = http.serve_connection(TokioIo::new(tcp), service).await;
                        return;
                    };
                    // A client that gives up on the handshake (an untrusted certificate) is fine.
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let _ = http.serve_connection(TokioIo::new(tls), service).await;
                });
            }
        });
        HttpsReceiver {
            certs,
            addr,
            scheme: if tls { "https" } else { "http" },
            state,
            _runtime: runtime,
            _dir: dir,
        }
    }

    /// `https://127.0.0.1:PORT{path}` (`http://` for a [`HttpsReceiver::plain`] one).
    pub fn url(&self, path: &str) -> String {
        format!("{}://{}{path}", self.scheme, self.addr)
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
        self.lock().received.clone()
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

/// rustls needs one crypto provider for the process: ring, as everywhere in the workspace.
fn install_ring_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Records a request and answers it: the next scripted status, else the status of the first
/// `refuse` text in the body, else 200. A refusal's body echoes the `authorization` header and
/// the path, as careless receivers do, so a test can check that the broker masks them.
async fn answer(
    state: Arc<Mutex<State>>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (at, wall) = (Instant::now(), SystemTime::now());
    let path = request
        .uri()
        .path_and_query()
        .map_or("/".to_string(), |p| p.to_string());
    let headers: Vec<(String, String)> = request
        .headers()
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = match request.into_body().collect().await {
        Ok(collected) => String::from_utf8_lossy(&collected.to_bytes()).into_owned(),
        Err(_) => String::new(),
    };
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
        state.received.push(Received {
            path: path.clone(),
            headers: headers.clone(),
            body,
            status,
            at,
            wall,
        });
        (status, state.retry_after.clone(), state.received.len())
    };
    let text = if status < 300 {
        "{\"text\":\"Success\",\"code\":0}".to_string()
    } else {
        let auth = headers
            .iter()
            .find(|(n, _)| n == "authorization")
            .map_or("", |(_, v)| v.as_str());
        echo(auth, &path, number)
    };
    let mut response = Response::builder()
        .status(status)
        .header("content-type", "application/json");
    if let (429 | 503, Some(wait)) = (status, retry_after) {
        response = response.header("retry-after", wait);
    }
    let response = response
        .body(Full::new(Bytes::from(text)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())));
    Ok(response)
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

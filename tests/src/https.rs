//! An HTTPS receiver on 127.0.0.1 for the webhook sink's end-to-end tests: hyper over
//! tokio-rustls (ring), with a CA and a server certificate for `127.0.0.1`, `::1` and `localhost`
//! made by rcgen for the test. It records every request (path, headers, body, the status it
//! answered) and answers 200, unless told to answer a scripted run of statuses or to refuse
//! requests whose body contains a given text.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
}

/// The HTTPS receiver; stops when dropped.
pub struct HttpsReceiver {
    /// The CA (`CA =` of a pipe) and the server's certificate.
    pub certs: Certificates,
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    _runtime: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

impl HttpsReceiver {
    /// Generates the certificates and starts listening on `127.0.0.1:0`.
    pub fn start() -> HttpsReceiver {
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
        let acceptor = TlsAcceptor::from(Arc::new(config));

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
                    // A client that gives up on the handshake (an untrusted certificate) is fine.
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = service_fn(move |request| answer(state.clone(), request));
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        HttpsReceiver {
            certs,
            addr,
            state,
            _runtime: runtime,
            _dir: dir,
        }
    }

    /// `https://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.addr)
    }

    /// Answers the next requests with these statuses, in order (then as before).
    pub fn script(&self, statuses: &[u16]) {
        self.lock().script.extend(statuses);
    }

    /// Answers `status` to every request whose body contains `text`.
    pub fn refuse_containing(&self, text: &str, status: u16) {
        self.lock().refuse.push((text.to_string(), status));
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
    let status = {
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
        });
        status
    };
    let text = if status < 300 {
        "{\"text\":\"Success\",\"code\":0}".to_string()
    } else {
        let auth = headers
            .iter()
            .find(|(n, _)| n == "authorization")
            .map_or("", |(_, v)| v.as_str());
        format!("{{\"text\":\"refused\",\"authorization\":\"{auth}\",\"path\":\"{path}\"}}")
    };
    let response = Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(text)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())));
    Ok(response)
}

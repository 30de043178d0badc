//! A generic HTTP or HTTPS receiver on 127.0.0.1 for the end-to-end tests of the HTTP sinks:
//! hyper (HTTP/1.1) over tokio-rustls with ring, a server certificate for `127.0.0.1`, `::1` and
//! `localhost` signed by a test CA made by rcgen ([`Certificates`]), on a port the OS chooses.
//!
//! The receiver knows nothing of any vendor: a handler closure, called once per request, decides
//! the [`Action`] (answer now, answer after a delay, or drop the connection without an answer).
//! A vendor receiver (Splunk HEC, Elasticsearch `_bulk`, Loki push, Azure Monitor) is a struct
//! holding its state behind `Arc<Mutex<..>>` whose handler implements the vendor's documented
//! behaviour and its fault switches. Every request is recorded with what it was answered.
//!
//! ```no_run
//! use broker_tests::http_receiver::{Action, HttpReceiver, Reply};
//! let receiver = HttpReceiver::start_tls(|request| {
//!     if request.header("authorization") == Some("Bearer t0ken") {
//!         Action::Reply(Reply::json(200, &serde_json::json!({"ok": true})))
//!     } else {
//!         Action::Reply(Reply::status(401))
//!     }
//! });
//! let url = receiver.url("/ingest"); // https://127.0.0.1:PORT/ingest
//! let ca = receiver.ca_path();       // the `CA =` of the pipe
//! # let _ = (url, ca);
//! ```

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::Response;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::rsyslog::Certificates;

/// One request as the receiver read it.
#[derive(Clone, Debug)]
pub struct Request {
    /// The method (`POST`).
    pub method: String,
    /// The path with its query (`/hook?x=1`).
    pub path: String,
    /// The headers, names in lower case, in the order received.
    pub headers: Vec<(String, String)>,
    /// The body, whole.
    pub body: Vec<u8>,
    /// When the request's head arrived.
    pub at: Instant,
    /// The same, by the wall clock (to compare with an HTTP-date).
    pub wall: SystemTime,
}

impl Request {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.header_values(name).into_iter().next()
    }

    /// Every value of header `name` (any case), in order.
    pub fn header_values(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON, `None` when it is not.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// An answer to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// Headers besides `content-length` (which hyper sets).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Reply {
    /// `status` with an empty body.
    pub fn status(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// `status` with `body` as `application/json`.
    pub fn json(status: u16, body: &serde_json::Value) -> Reply {
        Reply::status(status)
            .header("content-type", "application/json")
            .body(body.to_string())
    }

    /// `status` with `body` as `text/plain`.
    pub fn text(status: u16, body: &str) -> Reply {
        Reply::status(status)
            .header("content-type", "text/plain; charset=utf-8")
            .body(body)
    }

    /// The same reply with one more header.
    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// The same reply with this body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Reply {
        self.body = body.into();
        self
    }
}

/// What the receiver does with a request.
#[derive(Clone, Debug)]
pub enum Action {
    /// Answer at once.
    Reply(Reply),
    /// Answer after a wait (a slow receiver; a client's timeout).
    Delay(Duration, Reply),
    /// Read the whole request, then close the connection without an answer.
    Drop,
}

impl Action {
    /// The status it answers, `None` for [`Action::Drop`].
    fn status(&self) -> Option<u16> {
        match self {
            Action::Reply(reply) | Action::Delay(_, reply) => Some(reply.status),
            Action::Drop => None,
        }
    }
}

/// The handler of a receiver: the vendor's behaviour.
type Handler = Box<dyn FnMut(&Request) -> Action + Send>;

/// What the connections share: the handler and the record of requests.
struct Shared {
    handler: Mutex<Handler>,
    requests: Mutex<Vec<(Request, Option<u16>)>>,
}

/// A running receiver, served by a thread of its own (so it may be started and dropped in async
/// code too); it stops (and its certificate files go) when dropped.
pub struct HttpReceiver {
    certs: Certificates,
    addr: SocketAddr,
    /// `https` or `http`.
    scheme: &'static str,
    shared: Arc<Shared>,
    /// Stops the server's thread (and with its runtime every connection) when sent or dropped.
    stop: Option<(
        tokio::sync::oneshot::Sender<()>,
        std::thread::JoinHandle<()>,
    )>,
    _dir: tempfile::TempDir,
}

impl Drop for HttpReceiver {
    /// Stops listening and closes every connection before returning.
    fn drop(&mut self) {
        if let Some((stop, thread)) = self.stop.take() {
            let _ = stop.send(());
            let _ = thread.join();
        }
    }
}

impl HttpReceiver {
    /// A plain HTTP receiver (`http://127.0.0.1:PORT`) answering with `handler`.
    pub fn start(handler: impl FnMut(&Request) -> Action + Send + 'static) -> HttpReceiver {
        Self::listen(false, Box::new(handler))
    }

    /// An HTTPS receiver (`https://127.0.0.1:PORT`, certificate by [`HttpReceiver::ca_path`])
    /// answering with `handler`.
    pub fn start_tls(handler: impl FnMut(&Request) -> Action + Send + 'static) -> HttpReceiver {
        Self::listen(true, Box::new(handler))
    }

    fn listen(tls: bool, handler: Handler) -> HttpReceiver {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().expect("temp dir for the certificates");
        let certs = Certificates::generate(dir.path());
        let acceptor = tls.then(|| acceptor(&certs));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the receiver");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let addr = listener.local_addr().expect("receiver address");
        let shared = Arc::new(Shared {
            handler: Mutex::new(handler),
            requests: Mutex::new(Vec::new()),
        });
        // Its own thread and runtime: a receiver starts and stops in a test's async code too.
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = shared.clone();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("receiver runtime");
            runtime.block_on(async move {
                let listener = TcpListener::from_std(listener).expect("tokio listener");
                tokio::select! {
                    () = accept_loop(listener, acceptor, serving) => {}
                    _ = stopped => {}
                }
            });
        });
        HttpReceiver {
            certs,
            addr,
            scheme: if tls { "https" } else { "http" },
            shared,
            stop: Some((stop, thread)),
            _dir: dir,
        }
    }

    /// `https://127.0.0.1:PORT{path}` (`http://` for a plain receiver).
    pub fn url(&self, path: &str) -> String {
        format!("{}://{}{path}", self.scheme, self.addr)
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The PEM file of the CA that signed its certificate: a pipe's `CA =`.
    pub fn ca_path(&self) -> &Path {
        &self.certs.ca
    }

    /// The CA and server certificate (a plain receiver has them too, unused).
    pub fn certs(&self) -> &Certificates {
        &self.certs
    }

    /// Every request so far, in order, with the status it was answered (`None`: dropped).
    pub fn requests(&self) -> Vec<(Request, Option<u16>)> {
        lock(&self.shared.requests).clone()
    }

    /// The requests to `path` (with its query) so far, in order, with their statuses.
    pub fn requests_at(&self, path: &str) -> Vec<(Request, Option<u16>)> {
        self.requests()
            .into_iter()
            .filter(|(r, _)| r.path == path)
            .collect()
    }

    /// Waits at most `limit` until `done` holds for the requests so far; returns them either way.
    pub fn wait_until(
        &self,
        limit: Duration,
        done: impl Fn(&[(Request, Option<u16>)]) -> bool,
    ) -> Vec<(Request, Option<u16>)> {
        let start = Instant::now();
        loop {
            let requests = self.requests();
            if done(&requests) || start.elapsed() > limit {
                return requests;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Locks a mutex, whatever a panicking handler left in it.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// The TLS acceptor of the server certificate in `certs`.
fn acceptor(certs: &Certificates) -> TlsAcceptor {
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
    TlsAcceptor::from(Arc::new(config))
}

/// Serves each connection in its own task, over TLS when there is an acceptor.
async fn accept_loop(listener: TcpListener, acceptor: Option<TlsAcceptor>, shared: Arc<Shared>) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let (acceptor, shared) = (acceptor.clone(), shared.clone());
        tokio::spawn(async move {
            let service = service_fn(move |request| answer(shared.clone(), request));
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
}

/// The error that makes hyper close a connection without an answer ([`Action::Drop`]).
#[derive(Debug)]
struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("dropped without an answer, as the test asked")
    }
}

impl std::error::Error for Dropped {}

/// Reads a request whole, asks the handler, records both and acts.
async fn answer(
    shared: Arc<Shared>,
    request: hyper::Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Dropped> {
    let (at, wall) = (Instant::now(), SystemTime::now());
    let method = request.method().as_str().to_string();
    let path = request
        .uri()
        .path_and_query()
        .map_or("/".to_string(), |p| p.to_string());
    let headers = request
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
        Ok(collected) => collected.to_bytes().to_vec(),
        Err(_) => return Err(Dropped),
    };
    let request = Request {
        method,
        path,
        headers,
        body,
        at,
        wall,
    };
    let action = (lock(&shared.handler))(&request);
    lock(&shared.requests).push((request, action.status()));
    let reply = match action {
        Action::Reply(reply) => reply,
        Action::Delay(wait, reply) => {
            tokio::time::sleep(wait).await;
            reply
        }
        Action::Drop => return Err(Dropped),
    };
    Ok(response(reply))
}

/// The hyper response of a reply (a reply that hyper refuses becomes a bare 500).
fn response(reply: Reply) -> Response<Full<Bytes>> {
    let mut response = Response::builder().status(reply.status);
    for (name, value) in &reply.headers {
        response = response.header(name, value);
    }
    response
        .body(Full::new(Bytes::from(reply.body)))
        .unwrap_or_else(|_| {
            let mut bare = Response::new(Full::new(Bytes::new()));
            *bare.status_mut() = hyper::StatusCode::INTERNAL_SERVER_ERROR;
            bare
        })
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpStream;

    use super::*;

    /// Sends one raw HTTP/1.1 request and reads until the server closes; returns what came.
    fn raw(addr: SocketAddr, request: &str) -> String {
        let mut socket = TcpStream::connect(addr).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        socket.write_all(request.as_bytes()).unwrap();
        let mut answer = Vec::new();
        let _ = socket.read_to_end(&mut answer);
        String::from_utf8_lossy(&answer).into_owned()
    }

    fn post(path: &str, body: &str) -> String {
        format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nX-Token: abc\r\nConnection: close\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
    }

    #[test]
    fn records_the_request_and_answers_what_the_handler_says() {
        let receiver = HttpReceiver::start(|request| {
            let status = if request.text().contains("bad") {
                400
            } else {
                201
            };
            Action::Reply(
                Reply::json(status, &serde_json::json!({"seen": request.path}))
                    .header("retry-after", "3"),
            )
        });
        assert!(receiver.url("/a").starts_with("http://127.0.0.1:"));
        let answer = raw(receiver.addr(), &post("/in?x=1", "{\"good\":1}"));
        assert!(answer.starts_with("HTTP/1.1 201 Created\r\n"), "{answer}");
        assert!(answer.contains("retry-after: 3\r\n"), "{answer}");
        assert!(answer.ends_with("{\"seen\":\"/in?x=1\"}"), "{answer}");
        let answer = raw(receiver.addr(), &post("/in", "bad"));
        assert!(
            answer.starts_with("HTTP/1.1 400 Bad Request\r\n"),
            "{answer}"
        );

        let requests = receiver.requests();
        assert_eq!(requests.len(), 2);
        let (first, status) = &requests[0];
        assert_eq!(*status, Some(201));
        assert_eq!(first.method, "POST");
        assert_eq!(first.path, "/in?x=1");
        assert_eq!(first.header("X-TOKEN"), Some("abc"));
        assert_eq!(first.json(), Some(serde_json::json!({"good": 1})));
        assert_eq!(requests[1].1, Some(400));
        assert!(requests[1].0.at >= first.at);
    }

    #[test]
    fn drop_closes_without_an_answer_and_delay_waits() {
        let mut n = 0;
        let receiver = HttpReceiver::start(move |_| {
            n += 1;
            match n {
                1 => Action::Drop,
                _ => Action::Delay(Duration::from_millis(300), Reply::status(204)),
            }
        });
        assert_eq!(raw(receiver.addr(), &post("/x", "one")), "");
        let start = Instant::now();
        let answer = raw(receiver.addr(), &post("/x", "two"));
        assert!(
            answer.starts_with("HTTP/1.1 204 No Content\r\n"),
            "{answer}"
        );
        assert!(start.elapsed() >= Duration::from_millis(300));
        let statuses: Vec<_> = receiver
            .requests()
            .into_iter()
            .map(|(r, s)| (r.text(), s))
            .collect();
        assert_eq!(
            statuses,
            [("one".to_string(), None), ("two".to_string(), Some(204))]
        );
        let all = receiver.wait_until(Duration::from_secs(1), |r| r.len() == 2);
        assert_eq!(all.len(), 2);
        assert_eq!(receiver.requests_at("/x").len(), 2);
        assert!(receiver.requests_at("/y").is_empty());
    }

    /// Also: a receiver starts and stops inside a test's runtime.
    #[tokio::test]
    async fn tls_with_the_test_ca_and_only_with_it() {
        let receiver = HttpReceiver::start_tls(|_| Action::Reply(Reply::text(200, "ok")));
        assert!(receiver.url("/").starts_with("https://127.0.0.1:"));
        let (code, body) = get(client(receiver.ca_path()), receiver.addr())
            .await
            .unwrap();
        assert_eq!((code.as_str(), body.as_str()), ("200", "ok"));
        // The CA of another receiver is refused.
        let other = HttpReceiver::start_tls(|_| Action::Reply(Reply::status(200)));
        assert!(get(client(other.ca_path()), receiver.addr()).await.is_err());
        assert_eq!(receiver.requests().len(), 1);
        let addr = receiver.addr();
        drop(receiver);
        assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    }

    /// A TLS connector trusting the CA in `ca` only.
    fn client(ca: &Path) -> tokio_rustls::TlsConnector {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(ca).unwrap() {
            roots.add(cert.unwrap()).unwrap();
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        tokio_rustls::TlsConnector::from(Arc::new(config))
    }

    /// A GET / over TLS: the status code and the body.
    async fn get(
        connector: tokio_rustls::TlsConnector,
        addr: SocketAddr,
    ) -> std::io::Result<(String, String)> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let tcp = tokio::net::TcpStream::connect(addr).await?;
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let mut tls = connector.connect(name, tcp).await?;
        tls.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await?;
        let mut answer = Vec::new();
        let _ = tls.read_to_end(&mut answer).await;
        let answer = String::from_utf8_lossy(&answer).into_owned();
        let code = answer.split(' ').nth(1).unwrap_or_default().to_string();
        let body = answer
            .split("\r\n\r\n")
            .nth(1)
            .unwrap_or_default()
            .to_string();
        Ok((code, body))
    }
}

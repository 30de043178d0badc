//! The HTTP server: accepts connections on the loopback listener, applies injected faults, and
//! hands each request to the API routes or the admin routes.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::AUTHORIZATION;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::admin;
use crate::api::{self, ApiRequest};
use crate::error::SimError;
use crate::faults::Fault;
use crate::records::RequestRecord;
use crate::response::{self, Body};
use crate::state::{pull_max, State};

/// Largest request body read (admin enqueue calls can be big).
const MAX_BODY: usize = 64 * 1024 * 1024;

/// The body a [`Fault::MalformedJson`] answers.
const MALFORMED_BODY: &str = r#"{"data": ["#;

/// The state shared by the handle and every connection.
pub(crate) type SharedState = Arc<Mutex<State>>;

/// Lock the state, carrying on after a panic elsewhere (the state stays usable).
pub(crate) fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Bind 127.0.0.1:`port` (0 for any free port), ready to hand to a tokio runtime.
pub(crate) fn bind(port: u16) -> Result<std::net::TcpListener, SimError> {
    let listener = std::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
        .map_err(|source| SimError::Bind { port, source })?;
    listener
        .set_nonblocking(true)
        .map_err(|source| SimError::Bind { port, source })?;
    Ok(listener)
}

/// Serve connections until `shutdown` turns true or its sender is dropped; then close the
/// listener and every open connection.
pub(crate) async fn serve(
    listener: std::net::TcpListener,
    state: SharedState,
    mut shutdown: watch::Receiver<bool>,
) {
    let listener = match TcpListener::from_std(listener) {
        Ok(listener) => listener,
        Err(err) => {
            tracing::error!("simulator cannot use its listener: {err}");
            return;
        }
    };
    let mut connections = JoinSet::new();
    while !*shutdown.borrow() {
        tokio::select! {
            changed = shutdown.changed() => {
                if changed.is_err() {
                    break;
                }
            }
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(serve_connection(stream, Arc::clone(&state)));
                }
                Err(err) => {
                    tracing::warn!("simulator accept failed: {err}");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    connections.shutdown().await;
}

async fn serve_connection(stream: TcpStream, state: SharedState) {
    let _ = stream.set_nodelay(true);
    let (stream, peer) = match with_peer_probe(stream) {
        Ok(pair) => pair,
        Err(err) => {
            tracing::warn!("simulator cannot set up a connection: {err}");
            return;
        }
    };
    let peer = Arc::new(peer);
    let service = service_fn(move |request| handle(Arc::clone(&state), Arc::clone(&peer), request));
    // An error here is a client hanging up or an injected drop: nothing to report.
    let _ = http1::Builder::new()
        .timer(TokioTimer::new())
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

/// A second handle on a connection's socket (a duplicated descriptor), used only to peek at
/// whether the client is still there after a slow answer. It lives exactly as long as the
/// connection's service, so it never keeps a socket open after hyper is done with it.
#[derive(Debug)]
struct PeerProbe(std::net::TcpStream);

impl PeerProbe {
    /// Whether the client has closed its side (or the socket failed): a non-blocking peek
    /// that reads end-of-file or an error other than "would block".
    fn client_gone(&self) -> bool {
        let mut byte = [0u8; 1];
        match self.0.peek(&mut byte) {
            Ok(0) => true,
            Ok(_) => false,
            Err(err) => err.kind() != std::io::ErrorKind::WouldBlock,
        }
    }
}

/// Split off a [`PeerProbe`] from a connection (the stream stays non-blocking and registered
/// with the runtime).
fn with_peer_probe(stream: TcpStream) -> std::io::Result<(TcpStream, PeerProbe)> {
    let std_stream = stream.into_std()?;
    let probe = std_stream.try_clone()?;
    Ok((TcpStream::from_std(std_stream)?, PeerProbe(probe)))
}

/// Records a faulted or slow API request when it ends: with the status answered, or with
/// [`CLIENT_GONE`] when it ends without an answer because the client went away (hyper drops
/// the request's future when the client closes the connection mid-request).
struct PendingRecord<'a> {
    state: &'a Mutex<State>,
    record: Option<RequestRecord>,
}

impl PendingRecord<'_> {
    fn finish(mut self, status: u16) {
        if let Some(mut record) = self.record.take() {
            record.status = status;
            push_record(self.state, record);
        }
    }
}

impl Drop for PendingRecord<'_> {
    fn drop(&mut self) {
        if let Some(mut record) = self.record.take() {
            record.status = CLIENT_GONE;
            push_record(self.state, record);
        }
    }
}

/// The status recorded for a request whose client went away before it was answered (as in
/// nginx's logs); nothing was handled for it.
pub(crate) const CLIENT_GONE: u16 = 499;

/// The service error that makes hyper close the connection without answering.
#[derive(Debug, thiserror::Error)]
#[error("connection dropped by an injected fault")]
struct DropConnection;

async fn handle(
    state: SharedState,
    peer: Arc<PeerProbe>,
    request: Request<Incoming>,
) -> Result<Response<Body>, DropConnection> {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path();
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(err) => {
            return Ok(response::error(
                413,
                &format!("request body unreadable or over {MAX_BODY} bytes: {err}"),
            ))
        }
    };

    if path.starts_with("/_admin/") {
        let mut state = lock(&state);
        return Ok(admin::handle(
            &mut state,
            &parts.method,
            path,
            parts.uri.query(),
            &body,
        ));
    }

    let api_request = ApiRequest {
        method: &parts.method,
        path,
        authorization: parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok()),
        body: &body,
    };
    let is_pull = path.starts_with("/queues/") && path.ends_with("/next");
    let max = if is_pull { pull_max(&body) } else { None };
    let pending = PendingRecord {
        state: &state,
        record: Some(RequestRecord {
            method: api_request.method.to_string(),
            path: api_request.path.to_string(),
            max,
            status: 0,
        }),
    };
    if is_pull {
        wait_while_held(&state).await;
    }
    let fault = lock(&state).faults.take(path);
    let response = match fault {
        Some(Fault::Drop) => {
            pending.finish(0);
            return Err(DropConnection);
        }
        Some(Fault::Status(status)) => response::error(status, "simulated failure"),
        Some(Fault::MalformedJson) => response::json(200, MALFORMED_BODY),
        Some(Fault::Unauthorized) => response::error(401, "invalid session (simulated)"),
        Some(Fault::Delay(delay)) => {
            tokio::time::sleep(delay).await;
            // A transaction whose client left is rolled back: nothing is handled.
            if peer.client_gone() {
                pending.finish(CLIENT_GONE);
                return Err(DropConnection);
            }
            api::handle(&mut lock(&state), &api_request)
        }
        Some(Fault::SlowAnswer(delay)) => {
            let response = api::handle(&mut lock(&state), &api_request);
            tokio::time::sleep(delay).await;
            response
        }
        Some(Fault::BrokenAnswer(breakage)) => match api::answer(&mut lock(&state), &api_request) {
            Ok(body) => breakage.response(body.as_bytes()),
            Err(err) => response::error(err.status, &err.detail),
        },
        Some(Fault::OversizedAnswer(extra)) => {
            let asked = max.map(|m| format!(r#"{{"max":{}}}"#, m.saturating_add(extra)));
            let request = ApiRequest {
                body: asked.as_ref().map_or(api_request.body, |b| b.as_bytes()),
                ..api_request
            };
            api::handle(&mut lock(&state), &request)
        }
        Some(Fault::Stall(delay)) => {
            tokio::time::sleep(delay).await;
            response::error(504, "simulated gateway timeout: nothing was handled")
        }
        None => api::handle(&mut lock(&state), &api_request),
    };
    tracing::debug!("{} {} -> {}", parts.method, path, response.status());
    pending.finish(response.status().as_u16());
    Ok(response)
}

/// Waits while pulls are held (see `Simulator::hold_pulls`), counted as a held pull meanwhile.
/// A client that leaves while held gets nothing (the future is dropped here).
async fn wait_while_held(state: &Mutex<State>) {
    let mut gate = lock(state).pull_gate.subscribe();
    if !*gate.borrow_and_update() {
        return;
    }
    struct Held<'a>(&'a Mutex<State>);
    impl Drop for Held<'_> {
        fn drop(&mut self) {
            let mut state = lock(self.0);
            state.held_pulls = state.held_pulls.saturating_sub(1);
        }
    }
    lock(state).held_pulls += 1;
    let _held = Held(state);
    // An error means the sender is gone, i.e. the simulator is shutting down: go on.
    let _ = gate.wait_for(|held| !*held).await;
}

fn push_record(state: &Mutex<State>, record: RequestRecord) {
    lock(state).requests.push(record);
}

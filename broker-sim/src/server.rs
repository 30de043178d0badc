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
    let service = service_fn(move |request| handle(Arc::clone(&state), request));
    // An error here is a client hanging up or an injected drop: nothing to report.
    let _ = http1::Builder::new()
        .timer(TokioTimer::new())
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

/// The service error that makes hyper close the connection without answering.
#[derive(Debug, thiserror::Error)]
#[error("connection dropped by an injected fault")]
struct DropConnection;

async fn handle(
    state: SharedState,
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
    let max = if path.starts_with("/queues/") && path.ends_with("/next") {
        pull_max(&body)
    } else {
        None
    };
    let fault = lock(&state).faults.take(path);
    let response = match fault {
        Some(Fault::Drop) => {
            record(&state, &api_request, max, 0);
            return Err(DropConnection);
        }
        Some(Fault::Status(status)) => response::error(status, "simulated failure"),
        Some(Fault::MalformedJson) => response::json(200, MALFORMED_BODY),
        Some(Fault::Unauthorized) => response::error(401, "invalid session (simulated)"),
        Some(Fault::Delay(delay)) => {
            tokio::time::sleep(delay).await;
            api::handle(&mut lock(&state), &api_request)
        }
        None => api::handle(&mut lock(&state), &api_request),
    };
    record(&state, &api_request, max, response.status().as_u16());
    Ok(response)
}

fn record(state: &Mutex<State>, request: &ApiRequest<'_>, max: Option<u32>, status: u16) {
    tracing::debug!("{} {} -> {}", request.method, request.path, status);
    lock(state).requests.push(RequestRecord {
        method: request.method.to_string(),
        path: request.path.to_string(),
        max,
        status,
    });
}

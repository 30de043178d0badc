//! The opt-in metrics and health endpoints (`Metrics = ADDR:PORT` in `[Broker]`): a small HTTP
//! server beside a `--loop` run that answers `GET /metrics` (the Prometheus text format, drawn
//! from the [`StatusBoard`] at each scrape, so the metrics and `--status` never disagree),
//! `GET /healthz` (200 while the poll loop turns) and `GET /readyz` (200 or 503 with the same
//! verdict and reasons as `--status`, as JSON). Other paths are 404, other methods 405.
//! Without `Metrics =` nothing listens.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use broker_core::status::{assess, now, StatusBoard};
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, ALLOW, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::{Registry, Unit};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// The namespace of every metric.
pub const PREFIX: &str = "procustodibus_broker";
/// The kinds of pull failure shown at 0 before they happen (see `SourceError::class`).
const PULL_FAILURE_REASONS: [&str; 5] =
    ["malformed", "spool", "status", "transport", "unauthorized"];
/// How long a client may take to send its request headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one connection is served (a scraper that keeps it alive connects again).
const CONNECTION_LIFETIME: Duration = Duration::from_secs(60);
/// Connections served at once; more wait to be accepted.
const MAX_CONNECTIONS: usize = 16;

type Body = Full<Bytes>;

/// Binds `addr` (an error names it) and serves the endpoints from `board` in a task of its own,
/// for as long as the process runs.
pub async fn serve(addr: SocketAddr, board: Arc<StatusBoard>) -> Result<(), String> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| format!("Metrics = {addr}: cannot listen: {e}"))?;
    let mut registry = Registry::with_prefix(PREFIX);
    registry.register_collector(Box::new(BoardCollector(board.clone())));
    let shared = Arc::new((board, registry));
    tracing::info!("metrics at http://{addr}/metrics (and /healthz, /readyz)");
    if !addr.ip().is_loopback() {
        tracing::warn!(
            "Metrics = {addr} listens beyond loopback: whoever reaches it reads the broker's pipes, queues and errors (no authentication)"
        );
    }
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    tokio::spawn(async move {
        loop {
            let Ok(slot) = slots.clone().acquire_owned().await else {
                return;
            };
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!("metrics: cannot accept a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let shared = shared.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request| {
                    let shared = shared.clone();
                    async move { Ok::<_, Infallible>(answer(&shared.0, &shared.1, &request)) }
                });
                let connection = http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_TIMEOUT)
                    .serve_connection(TokioIo::new(stream), service);
                // An error is a client that hung up or was too slow: nothing to report. A kept
                // alive connection is closed after a while, so that idle ones free their slots.
                let _ = tokio::time::timeout(CONNECTION_LIFETIME, connection).await;
                drop(slot);
            });
        }
    });
    Ok(())
}

/// The answer to one request.
fn answer<B>(board: &StatusBoard, registry: &Registry, request: &Request<B>) -> Response<Body> {
    let path = request.uri().path();
    if !matches!(path, "/metrics" | "/healthz" | "/readyz") {
        return reply(StatusCode::NOT_FOUND, "text/plain", "not found\n".into());
    }
    if request.method() != Method::GET {
        let mut response = reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "only GET\n".into(),
        );
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET"));
        return response;
    }
    match path {
        "/metrics" => {
            let mut text = String::new();
            match prometheus_client::encoding::prometheus_text::encode(&mut text, registry) {
                Ok(()) => reply(
                    StatusCode::OK,
                    "text/plain; version=0.0.4; charset=utf-8",
                    text,
                ),
                Err(_) => reply(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "text/plain",
                    "cannot encode the metrics\n".into(),
                ),
            }
        }
        "/healthz" if board.turning() => reply(StatusCode::OK, "text/plain", "ok\n".into()),
        "/healthz" => reply(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            "the poll loop is stuck\n".into(),
        ),
        _ => {
            // The daemon is this process: it runs, and its status is the board's.
            let assessment = assess(Ok(Some(board.snapshot())), Ok(()), now());
            let code = if assessment.healthy {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            reply(code, "application/json", assessment.to_json() + "\n")
        }
    }
}

fn reply(code: StatusCode, content_type: &'static str, body: String) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = code;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// Draws the metrics from the status board at each scrape.
struct BoardCollector(Arc<StatusBoard>);

impl std::fmt::Debug for BoardCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BoardCollector")
    }
}

/// One metric family: its name (without the prefix and the `_total` or unit suffix the
/// encoder adds), help, unit, and one value per label set.
struct Family<'a, M> {
    name: &'a str,
    help: &'a str,
    unit: Option<Unit>,
    rows: Vec<(Vec<(&'a str, &'a str)>, M)>,
}

impl<M: EncodeMetric> Family<'_, M> {
    fn encode(&self, encoder: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some((_, first)) = self.rows.first() else {
            return Ok(());
        };
        let mut family = encoder.encode_descriptor(
            self.name,
            self.help,
            self.unit.as_ref(),
            first.metric_type(),
        )?;
        for (labels, value) in &self.rows {
            value.encode(family.encode_family(labels)?)?;
        }
        Ok(())
    }
}

fn counter<'a>(
    name: &'a str,
    help: &'a str,
    rows: Vec<(Vec<(&'a str, &'a str)>, u64)>,
) -> Family<'a, ConstCounter<u64>> {
    Family {
        name,
        help,
        unit: None,
        rows: rows
            .into_iter()
            .map(|(l, v)| (l, ConstCounter::new(v)))
            .collect(),
    }
}

fn gauge<'a, N>(
    name: &'a str,
    help: &'a str,
    unit: Option<Unit>,
    rows: Vec<(Vec<(&'a str, &'a str)>, N)>,
) -> Family<'a, ConstGauge<N>> {
    Family {
        name,
        help,
        unit,
        rows: rows
            .into_iter()
            .map(|(l, v)| (l, ConstGauge::new(v)))
            .collect(),
    }
}

impl Collector for BoardCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let status = self.0.snapshot();
        let e = &mut encoder;
        gauge(
            "build_info",
            "The broker's version (always 1)",
            None,
            vec![(vec![("version", broker_core::VERSION)], 1i64)],
        )
        .encode(e)?;
        let healthy = assess(Ok(Some(status.clone())), Ok(()), now()).healthy;
        gauge(
            "healthy",
            "Whether /readyz and --status call the broker healthy (1) or not (0)",
            None,
            vec![(vec![], i64::from(healthy))],
        )
        .encode(e)?;

        let queues = &status.queues;
        counter(
            "events_pulled",
            "Events pulled from the API per queue since the start",
            queues.iter().map(|q| (queue(&q.name), q.pulled)).collect(),
        )
        .encode(e)?;
        counter(
            "pull_failures",
            "Failed pulls per queue and reason (transport, status, unauthorized, malformed, spool) since the start",
            queues
                .iter()
                .flat_map(|q| {
                    // The known reasons from the start (at 0), so a rate() has a series.
                    let known = PULL_FAILURE_REASONS
                        .iter()
                        .filter(|r| !q.failures.contains_key(**r))
                        .map(|r| (*r, 0));
                    let seen = q.failures.iter().map(|(r, n)| (r.as_str(), *n));
                    let mut all: Vec<(&str, u64)> = known.chain(seen).collect();
                    all.sort();
                    all.into_iter()
                        .map(|(reason, n)| (vec![("queue", q.name.as_str()), ("reason", reason)], n))
                })
                .collect(),
        )
        .encode(e)?;
        gauge(
            "pulling_paused",
            "Whether pulling the queue waits for room in the full spool (1) or not (0)",
            None,
            queues
                .iter()
                .map(|q| (queue(&q.name), i64::from(q.paused)))
                .collect(),
        )
        .encode(e)?;
        gauge(
            "last_pull_success_timestamp",
            "When the last successful pull of the queue ended (Unix time)",
            Some(Unit::Seconds),
            queues
                .iter()
                .filter_map(|q| Some((queue(&q.name), q.last_success?)))
                .collect(),
        )
        .encode(e)?;
        let (logins_ok, logins_failed) = broker_core::api::login_counts();
        counter(
            "api_logins",
            "API logins since the start, by result (ok, failed)",
            vec![
                (vec![("result", "ok")], logins_ok),
                (vec![("result", "failed")], logins_failed),
            ],
        )
        .encode(e)?;

        let pipes = &status.pipes;
        counter(
            "events_delivered",
            "Events the pipe's sink took since the start",
            pipes
                .iter()
                .map(|p| {
                    (
                        vec![("pipe", p.name.as_str()), ("sink", p.sink.as_str())],
                        p.delivered,
                    )
                })
                .collect(),
        )
        .encode(e)?;
        counter(
            "delivery_failures",
            "Failed deliveries per pipe and kind since the start: retry (an attempt to be retried), permanent (an event rejected for good)",
            pipes
                .iter()
                .flat_map(|p| {
                    [
                        (vec![("pipe", p.name.as_str()), ("kind", "retry")], p.retry_failures),
                        (
                            vec![("pipe", p.name.as_str()), ("kind", "permanent")],
                            p.permanent_failures,
                        ),
                    ]
                })
                .collect(),
        )
        .encode(e)?;
        counter(
            "events_dead_lettered",
            "Events the pipe sent to the dead-letter file since the start",
            pipes
                .iter()
                .map(|p| (pipe(&p.name), p.dead_lettered))
                .collect(),
        )
        .encode(e)?;
        gauge(
            "backlog_events",
            "Events waiting in the spool for the pipe",
            None,
            pipes
                .iter()
                .map(|p| (pipe(&p.name), p.backlog_events))
                .collect(),
        )
        .encode(e)?;
        gauge(
            "backlog",
            "Bytes waiting in the spool for the pipe",
            Some(Unit::Bytes),
            pipes
                .iter()
                .map(|p| (pipe(&p.name), p.backlog_bytes))
                .collect(),
        )
        .encode(e)?;
        gauge(
            "pipe_failing",
            "Whether the pipe's deliveries are failing now (1) or not (0)",
            None,
            pipes
                .iter()
                .map(|p| (pipe(&p.name), i64::from(p.failing_since.is_some())))
                .collect(),
        )
        .encode(e)?;
        gauge(
            "last_delivery_success_timestamp",
            "When the pipe's last successful delivery ended (Unix time)",
            Some(Unit::Seconds),
            pipes
                .iter()
                .filter_map(|p| Some((pipe(&p.name), p.last_success?)))
                .collect(),
        )
        .encode(e)?;
        gauge(
            "spool",
            "Bytes in the spool's segment files",
            Some(Unit::Bytes),
            vec![(vec![], status.spool_bytes)],
        )
        .encode(e)?;
        gauge(
            "spool_max",
            "The bound on the spool's size (SpoolMax)",
            Some(Unit::Bytes),
            vec![(vec![], status.spool_max_bytes)],
        )
        .encode(e)?;
        Ok(())
    }
}

/// The label set of one queue.
fn queue(name: &str) -> Vec<(&str, &str)> {
    vec![("queue", name)]
}

/// The label set of one pipe.
fn pipe(name: &str) -> Vec<(&str, &str)> {
    vec![("pipe", name)]
}

//! Pulling queues into the spool: once each (a run without `--loop`), or until each returns
//! less than a full batch (a `--loop` round), all queues at the same time.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;

use super::PollReport;
use crate::backoff::Backoff;
use crate::event::{Event, EventType};
use crate::source::Source;
use crate::spool::{Spool, SpoolError};
use crate::status::StatusBoard;

/// What the pulls share.
#[derive(Clone)]
pub(crate) struct Puller {
    pub(crate) source: Arc<dyn Source>,
    pub(crate) spool: Arc<Spool>,
    pub(crate) stop: watch::Receiver<bool>,
    /// Where each pull's outcome is recorded (a `--loop` run).
    pub(crate) status: Option<Arc<StatusBoard>>,
    /// Whether pulling is paused because the spool is full (so that is logged once).
    pub(crate) paused: Arc<AtomicBool>,
    /// Bumped whenever a pull ends or a wait goes round (see `Running::pull_progress`).
    pub(crate) progress: Arc<AtomicU64>,
}

impl Puller {
    /// Notes that the pulls moved on.
    fn moved(&self) {
        self.progress.fetch_add(1, Ordering::Relaxed);
    }
}

/// Pulls each queue once, concurrently; a full spool skips the pull.
pub(crate) async fn pull_each_once(
    source: Arc<dyn Source>,
    queues: &[(EventType, u32)],
    spool: &Arc<Spool>,
    stop: &watch::Receiver<bool>,
) -> PollReport {
    let puller = Puller {
        source,
        spool: spool.clone(),
        stop: stop.clone(),
        status: None,
        paused: Arc::new(AtomicBool::new(false)),
        progress: Arc::new(AtomicU64::new(0)),
    };
    pull_all(puller, queues, false).await
}

/// Pulls every queue concurrently, each again and again while it returns full batches.
pub(crate) async fn pull_all(
    puller: Puller,
    queues: &[(EventType, u32)],
    repeat: bool,
) -> PollReport {
    let mut tasks = JoinSet::new();
    for &(queue, max) in queues {
        let puller = puller.clone();
        tasks.spawn(async move { pull_queue(puller, queue, max, repeat).await });
    }
    let mut report = PollReport::default();
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok(r) => report.merge(r),
            Err(e) => report.failures.push(format!("pull task failed: {e}")),
        }
    }
    report
}

async fn pull_queue(mut p: Puller, queue: EventType, max: u32, repeat: bool) -> PollReport {
    let mut report = PollReport::default();
    loop {
        if *p.stop.borrow() || !room(&mut p, queue, repeat).await {
            break;
        }
        let pulled = p.source.pull(queue, max).await;
        p.moved();
        match pulled {
            Err(e) => {
                let line = match e.unread_answer {
                    Some(answer) => keep_unread_answer(&p.spool, queue, answer, e.message).await,
                    None => format!("cannot pull {queue}: {e}"),
                };
                tracing::error!("{line}");
                record(&p, queue, 0, Err((e.class, &line)));
                report.failures.push(line);
                break;
            }
            Ok(events) => {
                let n = events.len();
                tracing::debug!("pulled {n} {queue} events");
                report.pulled += n;
                let spooled = spool_events(&mut p, queue, events).await;
                let outcome = spooled
                    .as_ref()
                    .map(|_| ())
                    .map_err(|l| ("spool", l.as_str()));
                record(&p, queue, n, outcome);
                if let Err(line) = spooled {
                    report.failures.push(line);
                    break;
                }
                if !repeat || n < max as usize {
                    break;
                }
            }
        }
    }
    report
}

/// Records the outcome of a pull of `queue` that brought `events` events (and their spooling)
/// on the status board, if any.
fn record(p: &Puller, queue: EventType, events: usize, outcome: Result<(), (&'static str, &str)>) {
    if let Some(status) = &p.status {
        status.pulled(queue, events, outcome);
    }
}

/// Whether there is room in the spool to pull `queue` into; when it is full, logs that once,
/// and (with `wait`) waits for room or a stop.
async fn room(p: &mut Puller, queue: EventType, wait: bool) -> bool {
    let mut freed = p.spool.watch_freed();
    loop {
        freed.borrow_and_update();
        let full = p.spool.is_full();
        if let Some(status) = &p.status {
            if status.paused(queue, full) {
                status.publish().await;
            }
        }
        if !full {
            if p.paused.swap(false, Ordering::SeqCst) {
                tracing::info!("spool has room again: pulling resumed");
            }
            return true;
        }
        if !p.paused.swap(true, Ordering::SeqCst) {
            tracing::warn!(
                "spool full ({} of {} bytes): pulling paused until the pipes catch up",
                p.spool.bytes(),
                p.spool.max_bytes()
            );
        }
        if !wait {
            return false;
        }
        tokio::select! {
            _ = freed.changed() => {}
            _ = p.stop.changed() => return false,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        p.moved();
    }
}

/// Appends pulled events to the spool, retrying with backoff while it cannot (say, the disk
/// is full): they are gone from the API, so they are held until they are spooled or the broker
/// is told to stop, when they go to the dead-letter file instead (see [`set_aside`]).
async fn spool_events(
    p: &mut Puller,
    queue: EventType,
    mut events: Vec<Event>,
) -> Result<(), String> {
    let mut backoff = Backoff::for_sink();
    loop {
        let spool = p.spool.clone();
        let (result, back) = tokio::task::spawn_blocking(move || {
            let result = spool.append(queue, &events);
            (result, events)
        })
        .await
        .map_err(|e| format!("spool task failed: {e}"))?;
        events = back;
        let Err((appended, e)) = result else {
            return Ok(());
        };
        events.drain(..appended.min(events.len()));
        if *p.stop.borrow() {
            return Err(set_aside(&p.spool, queue, events, &e.to_string()).await);
        }
        let delay = backoff.next_delay();
        tracing::error!(
            "{e} ({} pulled events held in memory; retrying in {:.1} s)",
            events.len(),
            delay.as_secs_f64()
        );
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = p.stop.changed() => {}
        }
        p.moved();
    }
}

/// Writes `events`, pulled from `queue` but not spooled because of `error`, to the dead-letter
/// file as the broker stops; if even that fails, logs every event's JSON line so that none is
/// lost without a trace. Returns the failure line for the report.
async fn set_aside(
    spool: &Arc<Spool>,
    queue: EventType,
    events: Vec<Event>,
    error: &str,
) -> String {
    let n = events.len();
    let spool = spool.clone();
    let reason = error.to_string();
    let (written, events) = tokio::task::spawn_blocking(move || {
        let written = spool.dead_letter_unspooled(queue, &events, &reason);
        (written, events)
    })
    .await
    .unwrap_or_else(|e| {
        (
            Err(SpoolError(format!("spool task failed: {e}"))),
            Vec::new(),
        )
    });
    let line = match written {
        Ok(place) => format!(
            "stopping with {n} pulled {queue} events that cannot be spooled ({error}): written to {place}"
        ),
        Err(e) => {
            for event in &events {
                tracing::error!("not spooled, pulled from {queue}: {}", event.line());
            }
            format!(
                "stopping with {n} pulled {queue} events that cannot be spooled ({error}) nor set aside ({e}): their lines are in this log"
            )
        }
    };
    tracing::error!("{line}");
    line
}

/// Writes the raw `answer` of a pull of `queue` that could not be read (`error` says why) to
/// the dead-letter file: the API has already taken its events off the queue, so it is their
/// only copy. If even that fails, its dead-letter line goes to the log. Returns the failure
/// line.
async fn keep_unread_answer(
    spool: &Arc<Spool>,
    queue: EventType,
    answer: bytes::Bytes,
    error: String,
) -> String {
    let n = answer.len();
    let spool = spool.clone();
    let reason = error.clone();
    let written =
        tokio::task::spawn_blocking(move || spool.dead_letter_answer(queue, &answer, &reason))
            .await
            .unwrap_or_else(|e| Err(SpoolError(format!("spool task failed: {e}"))));
    match written {
        Ok(place) => format!(
            "cannot pull {queue}: {error}; the answer ({n} bytes, holding events already taken off the API's queue) was written to {place}"
        ),
        Err(e) => format!(
            "cannot pull {queue}: {error}; the answer ({n} bytes, holding events already taken off the API's queue) cannot be set aside ({e}): its dead-letter line is in this log"
        ),
    }
}

//! Handing one pipe's spooled events to its sink, a batch at a time.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::{PipeRun, PollReport};
use crate::event::Event;
use crate::sink::SinkErrorKind;
use crate::spool::{Spool, SpoolError};

/// What one delivery attempt came to.
pub(crate) enum Outcome {
    /// Nothing was waiting for the pipe.
    Idle,
    /// Events went out (or to the dead-letter file): go on at once. Holds how many the sink
    /// took (an event sent to the dead-letter file is not counted).
    Progress(usize),
    /// The sink (or the spool) failed in a way worth retrying later; the line to log.
    Retry(String),
    /// As `Retry`, and the sink asked to wait at least this long (`SinkError::retry_after`).
    RetryAfter(String, Duration),
}

/// Runs `f` on the spool in a blocking thread (spool calls read, write and flush files).
pub(crate) async fn blocking<T: Send + 'static>(
    spool: &Arc<Spool>,
    f: impl FnOnce(&Spool) -> Result<T, SpoolError> + Send + 'static,
) -> Result<T, SpoolError> {
    let spool = spool.clone();
    tokio::task::spawn_blocking(move || f(&spool))
        .await
        .unwrap_or_else(|e| Err(SpoolError(format!("spool task failed: {e}"))))
}

/// Loads the dead letters put back for the pipes (see [`Spool::import_redeliveries`]); a
/// failure is logged and tried again next time.
pub(crate) async fn import_redeliveries(spool: &Arc<Spool>) {
    if let Err(e) = blocking(spool, |s| s.import_redeliveries()).await {
        tracing::error!("{e} (tried again next round)");
    }
}

/// Reads the next batch of pipe `index` (up to its `Max` per queue) and hands it to its sink:
/// moves the pipe's position past what the sink took, and sends an event the sink rejects
/// for good to the dead-letter file.
async fn attempt_batch(index: usize, pipe: &mut PipeRun, spool: &Arc<Spool>) -> Outcome {
    let name = pipe.config.name.clone();
    let max = pipe.config.max as usize;
    let batch = match blocking(spool, move |s| s.read(index, max)).await {
        Ok(batch) if batch.is_empty() => return Outcome::Idle,
        Ok(batch) => batch,
        Err(e) => return Outcome::Retry(format!("pipe {name}: {e}")),
    };
    let (done, failure) = match pipe.sink.deliver(&batch).await {
        Ok(()) => (batch.len(), None),
        Err(e) => (e.delivered.min(batch.len()), Some(e)),
    };
    if let Err(e) = advance(spool, index, &batch[..done]).await {
        return Outcome::Retry(format!("pipe {name}: {e}"));
    }
    if done > 0 {
        tracing::info!("pipe {name}: delivered {done} events");
    }
    let Some(failure) = failure else {
        return Outcome::Progress(done);
    };
    if done == batch.len() {
        return Outcome::Progress(done);
    }
    if failure.kind == SinkErrorKind::Retry {
        let line = format!("pipe {name}: {failure}");
        return match failure.retry_after {
            Some(delay) => Outcome::RetryAfter(line, delay),
            None => Outcome::Retry(line),
        };
    }
    let rejected = batch[done].clone();
    let letter = rejected.clone();
    let reason = failure.message.clone();
    match blocking(spool, move |s| s.dead_letter(index, &letter, &reason)).await {
        Ok(place) => {
            let id = rejected.id().unwrap_or_else(|| "(without id)".to_string());
            tracing::error!("pipe {name}: event {id} written to {place}: {failure}");
            match advance(spool, index, std::slice::from_ref(&rejected)).await {
                Ok(()) => Outcome::Progress(done),
                Err(e) => Outcome::Retry(format!("pipe {name}: {e}")),
            }
        }
        Err(e) => Outcome::Retry(format!("pipe {name}: {failure}; {e}")),
    }
}

async fn advance(spool: &Arc<Spool>, index: usize, events: &[Event]) -> Result<(), SpoolError> {
    if events.is_empty() {
        return Ok(());
    }
    let events = events.to_vec();
    blocking(spool, move |s| s.advance(index, &events)).await
}

/// Delivers the next batch of pipe `index` (see [`attempt_batch`]) and records the outcome on
/// the pipe's status board, if it has one, writing the status file when the pipe starts or
/// stops failing.
pub(crate) async fn deliver_batch(index: usize, pipe: &mut PipeRun, spool: &Arc<Spool>) -> Outcome {
    let outcome = attempt_batch(index, pipe, spool).await;
    if let Some(status) = &pipe.status {
        let changed = match &outcome {
            Outcome::Idle => false,
            Outcome::Retry(line) => status.delivered(index, Err(line)),
            _ => status.delivered(index, Ok(())),
        };
        if changed {
            status.publish().await;
        }
    }
    outcome
}

/// Delivers everything pipe `index` has in the spool, stopping at the first failure worth
/// retrying or when `stop` turns true (the rest stays in the spool for the next run).
pub(crate) async fn deliver_once(
    index: usize,
    pipe: &mut PipeRun,
    spool: &Arc<Spool>,
    stop: &watch::Receiver<bool>,
) -> PollReport {
    let mut report = PollReport::default();
    let before = spool.pending(index);
    while !*stop.borrow() {
        match deliver_batch(index, pipe, spool).await {
            Outcome::Idle => break,
            Outcome::Progress(_) => {}
            Outcome::Retry(line) | Outcome::RetryAfter(line, _) => {
                tracing::error!("{line}");
                report.failures.push(line);
                break;
            }
        }
    }
    let left = spool.pending(index);
    report.delivered = before.saturating_sub(left) as usize;
    if left > 0 {
        tracing::warn!(
            "pipe {}: {left} events kept in the spool for the next run",
            pipe.config.name
        );
    }
    report
}

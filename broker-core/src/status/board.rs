//! The daemon's live status: updated in memory by every pull and delivery, written to the status
//! file at the end of every round and when a pipe starts or stops failing (never per event).

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use super::{file, now, result_text, PipeStatus, QueueStatus, Status};
use crate::config::BrokerConfig;
use crate::event::EventType;
use crate::pipeline::gather_queues;
use crate::spool::Spool;

/// The status of a running daemon, shared by the poll loop and the delivery tasks.
pub struct StatusBoard {
    spool: Arc<Spool>,
    /// Where the status file goes (`None` for an in-memory spool: nothing is written).
    dir: Option<PathBuf>,
    state: Mutex<Status>,
    /// Held while writing (one temporary file); the last write error, logged once.
    writing: Mutex<Option<String>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl StatusBoard {
    /// The status of a daemon polling every `every` with `config`'s pipes, spooling to `spool`.
    pub fn new(spool: Arc<Spool>, config: &BrokerConfig, every: Duration) -> Arc<StatusBoard> {
        let started = now();
        let status = Status {
            version: crate::VERSION.to_string(),
            pid: std::process::id(),
            started,
            updated: started,
            loop_seconds: every.as_secs_f64(),
            timeout_seconds: config.timeout.as_secs_f64(),
            grace_seconds: config.status_grace,
            spool_bytes: 0,
            spool_max_bytes: spool.max_bytes(),
            pipes: config
                .pipes
                .iter()
                .map(|p| PipeStatus {
                    name: p.name.clone(),
                    sink: p.to.clone(),
                    ..Default::default()
                })
                .collect(),
            queues: gather_queues(&config.pipes)
                .into_iter()
                .map(|(q, _)| QueueStatus {
                    name: q.as_str().to_string(),
                    ..Default::default()
                })
                .collect(),
        };
        Arc::new(StatusBoard {
            dir: spool.dir().map(PathBuf::from),
            spool,
            state: Mutex::new(status),
            writing: Mutex::new(None),
        })
    }

    /// Records the end of a pull of `queue`.
    pub(crate) fn pulled(&self, queue: EventType, outcome: Result<(), &str>) {
        let time = now();
        self.with_queue(queue, |q| {
            q.last_pull = Some(time);
            q.last_result = Some(result_text(outcome));
            if outcome.is_ok() {
                q.last_success = Some(time);
            }
        });
    }

    /// Records whether pulling `queue` waits for room in the spool, and returns whether that
    /// changed (the file is then due: a paused round may not end for a long time).
    pub(crate) fn paused(&self, queue: EventType, paused: bool) -> bool {
        let mut changed = false;
        self.with_queue(queue, |q| {
            changed = q.paused != paused;
            q.paused = paused;
        });
        changed
    }

    /// Records the end of a delivery attempt of pipe `pipe` (an index in config order), and
    /// returns whether the pipe started or stopped failing with it (the file is then due).
    pub(crate) fn delivered(&self, pipe: usize, outcome: Result<(), &str>) -> bool {
        let time = now();
        let mut state = lock(&self.state);
        let Some(p) = state.pipes.get_mut(pipe) else {
            return false;
        };
        p.last_delivery = Some(time);
        match outcome {
            // Kept as it is after every batch that went out: no allocation per batch.
            Ok(()) if p.last_result.as_deref() == Some("ok") => {}
            Ok(()) => p.last_result = Some(result_text(Ok(()))),
            Err(e) => {
                // The log line names the pipe; its status line does already.
                let prefix = format!("pipe {}: ", p.name);
                p.last_result = Some(result_text(Err(e.strip_prefix(&prefix).unwrap_or(e))));
            }
        }
        match (outcome.is_ok(), p.failing_since.is_some()) {
            (false, false) => {
                p.failing_since = Some(time);
                true
            }
            (true, true) => {
                p.failing_since = None;
                true
            }
            _ => false,
        }
    }

    /// A copy of the current status, with the backlogs as the spool has them now.
    pub fn snapshot(&self) -> Status {
        let pipes = lock(&self.state).pipes.len();
        let backlogs: Vec<(u64, u64)> = (0..pipes).map(|i| self.spool.backlog(i)).collect();
        let mut state = lock(&self.state);
        for (i, (p, (events, bytes))) in state.pipes.iter_mut().zip(backlogs).enumerate() {
            p.backlog_events = events;
            p.backlog_bytes = bytes;
            p.dead_lettered = self.spool.dead_lettered(i);
        }
        state.spool_bytes = self.spool.bytes();
        state.updated = now();
        state.clone()
    }

    /// Writes the status file now (blocking I/O); a failure is logged once until it changes.
    pub fn write(&self) {
        let Some(dir) = &self.dir else {
            return;
        };
        let mut last_error = lock(&self.writing);
        let status = self.snapshot();
        match file::write(dir, &status) {
            Ok(()) => {
                if last_error.take().is_some() {
                    tracing::info!("status file {} written again", dir.display());
                }
            }
            Err(e) => {
                let line = format!(
                    "cannot write the status file in {}: {e} (--status shows an old state)",
                    dir.display()
                );
                if last_error.as_deref() != Some(line.as_str()) {
                    tracing::warn!("{line}");
                    *last_error = Some(line);
                }
            }
        }
    }

    /// [`StatusBoard::write`] in a blocking thread, waited for.
    pub async fn publish(self: &Arc<Self>) {
        let board = self.clone();
        let _ = tokio::task::spawn_blocking(move || board.write()).await;
    }

    fn with_queue(&self, queue: EventType, f: impl FnOnce(&mut QueueStatus)) {
        let mut state = lock(&self.state);
        if let Some(q) = state.queues.iter_mut().find(|q| q.name == queue.as_str()) {
            f(q);
        }
    }
}

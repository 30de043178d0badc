//! `--loop` mode: one task per pipe delivers what reaches the spool, retrying a failing sink
//! with backoff while the other pipes go on.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::delivery::{self, deliver_batch, Outcome};
use super::drain::{pull_all, Puller};
use super::{PipeRun, PollReport};
use crate::backoff::Backoff;
use crate::event::EventType;
use crate::source::Source;
use crate::spool::Spool;
use crate::status::StatusBoard;

/// What the delivery tasks can be told.
enum Command {
    Reopen,
}

/// The delivery tasks of a started pipeline.
pub struct Running {
    tasks: Vec<JoinHandle<()>>,
    /// Where each round's pulls are recorded, and published after the round.
    status: Option<Arc<StatusBoard>>,
    commands: Vec<mpsc::UnboundedSender<Command>>,
    stop: watch::Sender<bool>,
    spool: Arc<Spool>,
    queues: Vec<(EventType, u32)>,
    paused: Arc<AtomicBool>,
    /// Events the sinks took since the start (see [`Running::delivered`]).
    delivered: Arc<AtomicU64>,
    /// Moves as the pulls of a round move on (see [`Running::pull_progress`]).
    pull_progress: Arc<AtomicU64>,
}

pub(crate) fn start(
    pipes: Vec<PipeRun>,
    queues: Vec<(EventType, u32)>,
    spool: Arc<Spool>,
) -> Running {
    let (stop, stopped) = watch::channel(false);
    let mut tasks = Vec::new();
    let mut commands = Vec::new();
    let delivered = Arc::new(AtomicU64::new(0));
    for (index, pipe) in pipes.into_iter().enumerate() {
        let (tx, rx) = mpsc::unbounded_channel();
        commands.push(tx);
        tasks.push(tokio::spawn(work(
            index,
            pipe,
            spool.clone(),
            rx,
            stopped.clone(),
            delivered.clone(),
        )));
    }
    Running {
        tasks,
        status: None,
        commands,
        stop,
        spool,
        queues,
        paused: Arc::new(AtomicBool::new(false)),
        delivered,
        pull_progress: Arc::new(AtomicU64::new(0)),
    }
}

impl Running {
    /// Records each round's pulls on `status` and writes the status file after each round.
    pub(crate) fn with_status(mut self, status: Arc<StatusBoard>) -> Running {
        self.status = Some(status);
        self
    }

    /// The spool the pipes deliver from.
    pub fn spool(&self) -> &Arc<Spool> {
        &self.spool
    }

    /// One round: loads the dead letters put back since the last round (see
    /// [`Spool::import_redeliveries`]), then pulls every queue concurrently, each until it returns less than a full
    /// batch, into the spool (pausing while the spool is full). Stops pulling when `stop`
    /// turns true; a pull already under way is finished and spooled.
    pub async fn drain(&self, source: Arc<dyn Source>, stop: &watch::Receiver<bool>) -> PollReport {
        delivery::import_redeliveries(&self.spool).await;
        let puller = Puller {
            source,
            spool: self.spool.clone(),
            stop: stop.clone(),
            status: self.status.clone(),
            paused: self.paused.clone(),
            progress: self.pull_progress.clone(),
        };
        let report = pull_all(puller, &self.queues, true).await;
        if let Some(status) = &self.status {
            status.publish().await;
        }
        report
    }

    /// Events the sinks took since the pipes started, summed over pipes (events sent to the
    /// dead-letter file are not counted).
    pub fn delivered(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed)
    }

    /// Events waiting in the spool, summed over pipes (an event two pipes still need counts
    /// twice).
    pub fn backlog(&self) -> u64 {
        (0..self.tasks.len()).map(|i| self.spool.pending(i)).sum()
    }

    /// A count that moves whenever a pull of a [`Running::drain`] ends (answered or failed)
    /// and whenever a wait inside a drain goes round (for room in a full spool, before retrying
    /// a spool write); it stands still while a pull is in flight. A watchdog fed only while it
    /// moves catches a drain stuck on one pull.
    pub fn pull_progress(&self) -> u64 {
        self.pull_progress.load(Ordering::Relaxed)
    }

    /// Tells every sink to reopen (after log rotation).
    pub fn reopen(&self) {
        for tx in &self.commands {
            let _ = tx.send(Command::Reopen);
        }
    }

    /// Stops the delivery tasks: each finishes the delivery under way and closes its sink.
    /// Tasks still busy after `grace` are abandoned (their events stay in the spool).
    pub async fn shutdown(self, grace: Duration) {
        let _ = self.stop.send(true);
        let deadline = tokio::time::Instant::now() + grace;
        for task in self.tasks {
            let abort = task.abort_handle();
            if tokio::time::timeout_at(deadline, task).await.is_err() {
                abort.abort();
            }
        }
    }
}

async fn work(
    index: usize,
    mut pipe: PipeRun,
    spool: Arc<Spool>,
    mut commands: mpsc::UnboundedReceiver<Command>,
    mut stop: watch::Receiver<bool>,
    delivered: Arc<AtomicU64>,
) {
    let mut appended = spool.watch_appended();
    let mut backoff = Backoff::for_sink();
    loop {
        while let Ok(command) = commands.try_recv() {
            handle(&mut pipe, command).await;
        }
        if *stop.borrow() {
            break;
        }
        appended.borrow_and_update();
        let wait = match deliver_batch(index, &mut pipe, &spool).await {
            Outcome::Progress(n) => {
                delivered.fetch_add(n as u64, Ordering::Relaxed);
                backoff.reset();
                continue;
            }
            Outcome::Idle => None,
            Outcome::Retry(line) => Some(retry_delay(&line, backoff.next_delay(), &spool, index)),
            // The sink's least wait (a `Retry-After`), or the backoff's delay if longer.
            Outcome::RetryAfter(line, asked) => Some(retry_delay(
                &line,
                backoff.next_delay().max(asked),
                &spool,
                index,
            )),
        };
        let sleep = tokio::time::sleep(wait.unwrap_or(Duration::from_secs(86_400)));
        tokio::select! {
            changed = appended.changed(), if wait.is_none() => {
                if changed.is_err() {
                    break;
                }
            }
            _ = sleep => {}
            command = commands.recv() => {
                match command {
                    Some(command) => handle(&mut pipe, command).await,
                    None => break,
                }
            }
            changed = stop.changed() => {
                if changed.is_err() {
                    break;
                }
            }
        }
    }
    if let Err(e) = pipe.sink.close().await {
        tracing::error!("pipe {}: cannot close: {e}", pipe.config.name);
    }
}

/// Logs a failed delivery worth retrying with the pipe's backlog and `delay`; returns `delay`.
fn retry_delay(line: &str, delay: Duration, spool: &Spool, index: usize) -> Duration {
    tracing::error!(
        "{line} ({} events waiting; retrying in {:.1} s)",
        spool.pending(index),
        delay.as_secs_f64()
    );
    delay
}

async fn handle(pipe: &mut PipeRun, command: Command) {
    match command {
        Command::Reopen => {
            if let Err(e) = pipe.sink.reopen().await {
                tracing::error!("pipe {}: cannot reopen: {e}", pipe.config.name);
            }
        }
    }
}

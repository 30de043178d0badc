//! `--loop` mode: one task per pipe delivers what reaches the spool, retrying a failing sink
//! with backoff while the other pipes go on.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::delivery::{deliver_batch, Outcome};
use super::drain::{pull_all, Puller};
use super::{PipeRun, PollReport};
use crate::backoff::Backoff;
use crate::event::EventType;
use crate::source::Source;
use crate::spool::Spool;

/// What the delivery tasks can be told.
enum Command {
    Reopen,
}

/// The delivery tasks of a started pipeline.
pub struct Running {
    tasks: Vec<JoinHandle<()>>,
    commands: Vec<mpsc::UnboundedSender<Command>>,
    stop: watch::Sender<bool>,
    spool: Arc<Spool>,
    queues: Vec<(EventType, u32)>,
    paused: Arc<AtomicBool>,
}

pub(crate) fn start(
    pipes: Vec<PipeRun>,
    queues: Vec<(EventType, u32)>,
    spool: Arc<Spool>,
) -> Running {
    let (stop, stopped) = watch::channel(false);
    let mut tasks = Vec::new();
    let mut commands = Vec::new();
    for (index, pipe) in pipes.into_iter().enumerate() {
        let (tx, rx) = mpsc::unbounded_channel();
        commands.push(tx);
        tasks.push(tokio::spawn(work(
            index,
            pipe,
            spool.clone(),
            rx,
            stopped.clone(),
        )));
    }
    Running {
        tasks,
        commands,
        stop,
        spool,
        queues,
        paused: Arc::new(AtomicBool::new(false)),
    }
}

impl Running {
    /// The spool the pipes deliver from.
    pub fn spool(&self) -> &Arc<Spool> {
        &self.spool
    }

    /// One round of pulls: every queue concurrently, each until it returns less than a full
    /// batch, into the spool (pausing while the spool is full). Stops pulling when `stop`
    /// turns true; a pull already under way is finished and spooled.
    pub async fn drain(&self, source: Arc<dyn Source>, stop: &watch::Receiver<bool>) -> PollReport {
        let puller = Puller {
            source,
            spool: self.spool.clone(),
            stop: stop.clone(),
            paused: self.paused.clone(),
        };
        pull_all(puller, &self.queues, true).await
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
            Outcome::Progress => {
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

//! The signals a looping broker listens to: SIGTERM and SIGINT stop it, SIGHUP reopens sinks.

use std::time::Duration;

use broker_core::pipeline::Running;
use tokio::signal::unix::{signal, Signal, SignalKind};

/// What a signal asks for.
pub enum Wake {
    /// The wait ran out.
    Timer,
    /// SIGHUP: reopen the sinks.
    Reopen,
    /// SIGTERM or SIGINT: stop.
    Stop,
}

/// The installed signal handlers.
pub struct Signals {
    term: Signal,
    int: Signal,
    hup: Signal,
}

impl Signals {
    /// Installs the handlers (from then on these signals no longer kill the process).
    pub fn new() -> std::io::Result<Self> {
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    /// The next signal.
    pub async fn next(&mut self) -> Wake {
        tokio::select! {
            _ = self.term.recv() => Wake::Stop,
            _ = self.int.recv() => Wake::Stop,
            _ = self.hup.recv() => Wake::Reopen,
        }
    }

    /// Waits `duration`, reopening the sinks on SIGHUP; true when told to stop.
    pub async fn wait(&mut self, duration: Duration, running: &Running) -> bool {
        let deadline = tokio::time::Instant::now() + duration;
        loop {
            let wake = tokio::select! {
                _ = tokio::time::sleep_until(deadline) => Wake::Timer,
                wake = self.next() => wake,
            };
            match wake {
                Wake::Timer => return false,
                Wake::Stop => return true,
                Wake::Reopen => {
                    tracing::info!("SIGHUP: reopening sinks");
                    running.reopen();
                }
            }
        }
    }
}

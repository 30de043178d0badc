//! The signals the broker listens to, in every mode: SIGTERM and SIGINT stop it (after the pull
//! under way is spooled), SIGHUP reopens the sinks of a looping broker and never kills any mode.
//! Both are told to systemd (`STOPPING=1`; `RELOADING=1` then `READY=1`) by a looping broker's
//! [`Notifier`].

use std::future::Future;
use std::time::Duration;

use broker_core::pipeline::Running;
use tokio::signal::unix::{signal, Signal, SignalKind};

use crate::notify::Notifier;

/// What a signal asks for.
pub enum Wake {
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
    notify: Notifier,
}

/// Makes SIGHUP harmless for the whole process (a signal nobody listens to is dropped), so
/// that a logrotate hook reaching the wrong process, a `--test` or the credentials tool,
/// kills nothing. Call it inside the runtime, before anything else.
pub fn keep_hangup_harmless() {
    if let Err(e) = signal(SignalKind::hangup()) {
        tracing::warn!("cannot listen for SIGHUP: {e}");
    }
}

impl Signals {
    /// Installs the handlers (from then on these signals no longer kill the process); `notify`
    /// tells the service manager about stops and reloads.
    pub fn new(notify: Notifier) -> std::io::Result<Self> {
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
            notify,
        })
    }

    /// The next signal (a stop is told to the service manager at once).
    pub async fn next(&mut self) -> Wake {
        let wake = tokio::select! {
            _ = self.term.recv() => Wake::Stop,
            _ = self.int.recv() => Wake::Stop,
            _ = self.hup.recv() => Wake::Reopen,
        };
        if let Wake::Stop = wake {
            self.notify.stopping();
        }
        wake
    }

    /// Runs `work` until it ends (`Some`) or SIGTERM or SIGINT arrives (`None`: `work` is
    /// abandoned, so use it only for work that takes nothing off a queue: health checks,
    /// setup, waits). SIGHUP meanwhile reopens the sinks of `running`, if any.
    pub async fn race<T>(
        &mut self,
        work: impl Future<Output = T>,
        running: Option<&Running>,
    ) -> Option<T> {
        tokio::pin!(work);
        loop {
            tokio::select! {
                out = &mut work => return Some(out),
                wake = self.next() => match wake {
                    Wake::Stop => return None,
                    Wake::Reopen => self.reopen(running),
                },
            }
        }
    }

    /// Waits `duration`, reopening the sinks on SIGHUP and feeding systemd's watchdog (a
    /// wait of the loop); true when told to stop.
    pub async fn wait(&mut self, duration: Duration, running: &Running) -> bool {
        let notify = self.notify.clone();
        self.race(notify.idle(duration), Some(running))
            .await
            .is_none()
    }

    /// The notifier that tells the service manager about this run.
    pub fn notifier(&self) -> Notifier {
        self.notify.clone()
    }

    /// What SIGHUP does: reopens the sinks of a looping broker (between `RELOADING=1` and
    /// `READY=1`: every pipe is told to reopen before its next batch); a one-shot run, whose
    /// sinks are opened for this run only, just logs it and goes on.
    pub fn reopen(&self, running: Option<&Running>) {
        match running {
            Some(running) => {
                tracing::info!("SIGHUP: reopening sinks");
                self.notify.reload(|| running.reopen());
            }
            None => tracing::info!("SIGHUP: ignored by a run without --loop (it goes on)"),
        }
    }
}

//! systemd's service notifications (`sd_notify(3)`) for a `--loop` broker in a `Type=notify`
//! unit: `READY=1` once config, credentials and spool are ready, a `STATUS=` line after every
//! round (shown by `systemctl status`), `WATCHDOG=1` from the poll loop, `RELOADING=1` then
//! `READY=1` around a SIGHUP, and `STOPPING=1` at SIGTERM or SIGINT.
//!
//! Where `NOTIFY_SOCKET` is not set (OpenRC, sysvinit, FreeBSD, a shell) nothing is sent. A run
//! without `--loop` sends nothing either: it belongs in a `Type=oneshot` unit (a timer), whose
//! manager takes the process's exit as its end.
//!
//! The watchdog (`WATCHDOG_USEC`, from the unit's `WatchdogSec=`) has no timer of its own: the
//! loop feeds it at the end of each round, while it waits between rounds, and during a round
//! each time its pulls moved on since the last look ([`Running::pull_progress`]: a pull ended,
//! or a wait for spool room or for a spool write retry went round). A pull in flight does not
//! feed it, however long: each API call is bounded by `Timeout`, so `WatchdogSec` above the
//! longest legitimate pull (see `docs/reliability.md`, "systemd notify and watchdog") only
//! ever runs out when the loop is stuck.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use broker_core::pipeline::{PollReport, Running};
use sd_notify::NotifyState;

/// The longest failure text a `STATUS=` line carries.
const STATUS_FAILURE_MAX: usize = 200;

/// Sends systemd's notifications, or nothing at all when off.
#[derive(Clone, Default)]
pub struct Notifier {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    /// How often the loop looks whether to feed the watchdog; `None` without a watchdog.
    feed_every: Option<Duration>,
    /// What [`Running::delivered`] said at the last `STATUS=` line.
    delivered: AtomicU64,
    /// Whether `READY=1` was sent: reloads and the watchdog begin there.
    ready: AtomicBool,
    /// Whether a failed send was logged (once is enough).
    warned: AtomicBool,
}

impl Notifier {
    /// A notifier that sends nothing (a run without `--loop`, or no service manager).
    pub fn off() -> Self {
        Notifier::default()
    }

    /// A notifier for a `--loop` run: on when `NOTIFY_SOCKET` is set, with the watchdog when
    /// `WATCHDOG_USEC` is set (and `WATCHDOG_PID`, if set, is this process).
    pub fn from_env() -> Self {
        if std::env::var_os("NOTIFY_SOCKET").is_none() {
            return Notifier::off();
        }
        let feed_every = sd_notify::watchdog_enabled()
            .filter(|period| !period.is_zero())
            // Four looks per period: a loop that moves is never more than a quarter late.
            .map(|period| (period / 4).max(Duration::from_millis(50)));
        Notifier {
            inner: Some(Arc::new(Inner {
                feed_every,
                delivered: AtomicU64::new(0),
                ready: AtomicBool::new(false),
                warned: AtomicBool::new(false),
            })),
        }
    }

    /// `READY=1`: config, credentials and spool are ready. Reloads and the watchdog start here.
    pub fn ready(&self) {
        if let Some(inner) = &self.inner {
            inner.ready.store(true, Ordering::Relaxed);
        }
        self.send(&[NotifyState::Ready]);
    }

    /// Whether `READY=1` was sent.
    fn is_ready(&self) -> bool {
        self.inner
            .as_ref()
            .is_some_and(|inner| inner.ready.load(Ordering::Relaxed))
    }

    /// Runs `reload` between `RELOADING=1` (with the monotonic time systemd asks for) and
    /// `READY=1`; before the broker is ready, just runs it.
    pub fn reload(&self, reload: impl FnOnce()) {
        if !self.is_ready() {
            return reload();
        }
        match NotifyState::monotonic_usec_now() {
            Ok(now) => self.send(&[NotifyState::Reloading, now]),
            Err(_) => self.send(&[NotifyState::Reloading]),
        }
        reload();
        self.send(&[NotifyState::Ready]);
    }

    /// `STOPPING=1`: a stop signal came; the pulls under way are finished and spooled.
    pub fn stopping(&self) {
        self.send(&[
            NotifyState::Stopping,
            NotifyState::Status("stopping: finishing the pulls under way"),
        ]);
    }

    /// After a round: a `STATUS=` line (`pulled N, delivered M, backlog K`, led by the first
    /// failure when the round had one), and a watchdog feed, since the loop turned.
    pub fn round(&self, report: &PollReport, running: &Running) {
        let Some(inner) = &self.inner else {
            return;
        };
        let total = running.delivered();
        let delivered = total.saturating_sub(inner.delivered.swap(total, Ordering::Relaxed));
        let text = status_line(report, delivered, running.backlog());
        self.send(&[NotifyState::Status(&text)]);
        self.feed();
    }

    /// `WATCHDOG=1`, when the watchdog is on.
    fn feed(&self) {
        if self.feed_every().is_some() {
            self.send(&[NotifyState::Watchdog]);
        }
    }

    /// How often the loop looks whether to feed the watchdog, once the broker is ready and when
    /// the watchdog is on.
    fn feed_every(&self) -> Option<Duration> {
        let inner = self.inner.as_ref()?;
        inner.feed_every.filter(|_| self.is_ready())
    }

    /// A wait of the loop (between rounds, before retrying the API): `delay`, feeding the
    /// watchdog all along.
    pub async fn idle(&self, delay: Duration) {
        let Some(every) = self.feed_every() else {
            return tokio::time::sleep(delay).await;
        };
        let end = tokio::time::Instant::now() + delay;
        loop {
            self.feed();
            let now = tokio::time::Instant::now();
            if now >= end {
                return;
            }
            tokio::time::sleep_until(end.min(now + every)).await;
        }
    }

    /// Runs `drain`, a round of `running`'s pulls, feeding the watchdog at its start and then
    /// at each look where the pulls moved on since the last one.
    pub async fn while_pulling<T>(&self, drain: impl Future<Output = T>, running: &Running) -> T {
        let Some(every) = self.feed_every() else {
            return drain.await;
        };
        tokio::pin!(drain);
        self.feed();
        let mut seen = running.pull_progress();
        loop {
            tokio::select! {
                out = &mut drain => return out,
                _ = tokio::time::sleep(every) => {
                    let now = running.pull_progress();
                    if now != seen {
                        seen = now;
                        self.feed();
                    }
                }
            }
        }
    }

    fn send(&self, states: &[NotifyState]) {
        let Some(inner) = &self.inner else {
            return;
        };
        if let Err(e) = sd_notify::notify(states) {
            if !inner.warned.swap(true, Ordering::Relaxed) {
                tracing::warn!("cannot notify the service manager at NOTIFY_SOCKET: {e}");
            }
        }
    }
}

/// The `STATUS=` text of a round: `pulled N, delivered M, backlog K`, led by the round's first
/// failure (one line, at most [`STATUS_FAILURE_MAX`] characters, the user, password and query of
/// any URL in it masked).
fn status_line(report: &PollReport, delivered: u64, backlog: u64) -> String {
    let counts = format!(
        "pulled {}, delivered {delivered}, backlog {backlog}",
        report.pulled
    );
    let Some(first) = report.failures.first() else {
        return counts;
    };
    let first = mask_url_secrets(first);
    let mut failure: String = first
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(STATUS_FAILURE_MAX)
        .collect();
    if first.chars().count() > STATUS_FAILURE_MAX {
        failure.push_str("...");
    }
    let more = match report.failures.len() - 1 {
        0 => String::new(),
        n => format!(" (and {n} more)"),
    };
    format!("failing: {failure}{more}; {counts}")
}

/// `text` with the user and password (before `@`) and the query (after `?`) of every URL in it
/// replaced by `***`: a `STATUS=` line is readable by every local user (`systemctl status`).
fn mask_url_secrets(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        let end = tail.find(char::is_whitespace).unwrap_or(tail.len());
        let (url, after) = tail.split_at(end);
        let authority_end = url.find(['/', '?', '#']).unwrap_or(url.len());
        let (authority, path) = url.split_at(authority_end);
        match authority.rfind('@') {
            Some(i) => {
                out.push_str("***");
                out.push_str(&authority[i..]);
            }
            None => out.push_str(authority),
        }
        match path.find('?') {
            Some(i) => {
                out.push_str(&path[..=i]);
                out.push_str("***");
            }
            None => out.push_str(path),
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(pulled: usize, failures: &[&str]) -> PollReport {
        PollReport {
            pulled,
            delivered: 0,
            failures: failures.iter().map(|f| f.to_string()).collect(),
        }
    }

    #[test]
    fn status_line_gives_the_counts() {
        assert_eq!(
            status_line(&report(7, &[]), 5, 2),
            "pulled 7, delivered 5, backlog 2"
        );
    }

    #[test]
    fn status_line_leads_with_the_first_failure_on_one_line() {
        let line = status_line(
            &report(
                0,
                &[
                    "cannot pull alerts: 503\nService Unavailable",
                    "cannot pull log_authn: 503",
                ],
            ),
            0,
            4,
        );
        assert_eq!(
            line,
            "failing: cannot pull alerts: 503 Service Unavailable (and 1 more); pulled 0, delivered 0, backlog 4"
        );
    }

    #[test]
    fn status_line_cuts_a_long_failure() {
        let long = "x".repeat(500);
        let line = status_line(&report(0, &[&long]), 0, 0);
        assert_eq!(
            line,
            format!(
                "failing: {}...; pulled 0, delivered 0, backlog 0",
                "x".repeat(200)
            )
        );
    }

    #[test]
    fn url_users_passwords_and_queries_are_masked() {
        assert_eq!(
            mask_url_secrets(
                "POST https://bob:hunter2@api.example.com/queues/alerts/next?token=abc: server answered 503"
            ),
            "POST https://***@api.example.com/queues/alerts/next?*** server answered 503"
        );
        assert_eq!(
            mask_url_secrets("GET http://u@127.0.0.1:8080/healthz: timed out; GET http://h/x ok"),
            "GET http://***@127.0.0.1:8080/healthz: timed out; GET http://h/x ok"
        );
        assert_eq!(mask_url_secrets("no url here"), "no url here");
    }
}

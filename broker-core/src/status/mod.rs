//! What the running daemon publishes about itself, and the health verdict drawn from it.
//!
//! A `--loop` run keeps a [`StatusBoard`] that records each queue's pulls and each pipe's
//! deliveries, and replaces `status.json` in the spool directory ([`mod@file`]) after every round
//! and every delivery failure or recovery. `procustodibus-broker --status` reads it back,
//! checks that the daemon holding the spool is the one that wrote it, and [`assess`]es it: the
//! same verdict serves any other health check (a metrics `/readyz`).
//!
//! Healthy means: the daemon runs, the last successful pull of every queue is no older than two
//! `--loop` intervals plus `Timeout`, and no pipe has been failing for longer than
//! `StatusGrace`. Times are Unix seconds.

mod board;
pub mod file;

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::spool::{lock_holder, LockHolder};

pub use board::StatusBoard;

/// The name of the status file in the spool directory.
pub const FILE_NAME: &str = "status.json";
/// The default `StatusGrace`: how long a pipe may fail before the broker is unhealthy.
pub const DEFAULT_GRACE_SECS: u64 = 300;
/// The longest error text kept for one pipe or queue.
const MAX_RESULT_CHARS: usize = 400;

/// The content of the status file.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// The broker's version.
    pub version: String,
    /// The daemon's process id.
    pub pid: u32,
    /// When the daemon started.
    pub started: f64,
    /// When this status was written.
    pub updated: f64,
    /// The `--loop` interval, in seconds.
    pub loop_seconds: f64,
    /// `Timeout` of `[Broker]`, in seconds.
    pub timeout_seconds: f64,
    /// `StatusGrace` of `[Broker]`, in seconds.
    pub grace_seconds: u64,
    /// Bytes in the spool's segment files.
    pub spool_bytes: u64,
    /// `SpoolMax`.
    pub spool_max_bytes: u64,
    /// Each pipe, in config order.
    pub pipes: Vec<PipeStatus>,
    /// Each queue pulled.
    pub queues: Vec<QueueStatus>,
}

/// One pipe's state.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PipeStatus {
    /// The pipe's name (`[Pipe.NAME]`).
    pub name: String,
    /// Its sink (`To =`).
    pub sink: String,
    /// Events waiting in the spool for it.
    pub backlog_events: u64,
    /// Their size in the spool.
    pub backlog_bytes: u64,
    /// When the last delivery attempt ended, if one did.
    pub last_delivery: Option<f64>,
    /// `ok`, or the error of the last delivery attempt.
    pub last_result: Option<String>,
    /// When the failing deliveries began (none while it delivers).
    pub failing_since: Option<f64>,
    /// Events it sent to the dead-letter file since the daemon started.
    pub dead_lettered: u64,
}

/// One queue's state.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct QueueStatus {
    /// The queue (`alerts`, `log_authn` ...).
    pub name: String,
    /// When the last pull ended, if one did.
    pub last_pull: Option<f64>,
    /// `ok`, or the error of the last pull.
    pub last_result: Option<String>,
    /// When the last pull that succeeded ended.
    pub last_success: Option<f64>,
    /// Whether pulling is paused because the spool is full.
    pub paused: bool,
}

/// The result text kept for an outcome: `ok`, or the error cut to a bounded length.
pub(crate) fn result_text(outcome: Result<(), &str>) -> String {
    match outcome {
        Ok(()) => "ok".to_string(),
        Err(e) if e.chars().count() > MAX_RESULT_CHARS => {
            let cut: String = e.chars().take(MAX_RESULT_CHARS).collect();
            format!("{cut}...")
        }
        Err(e) => e.to_string(),
    }
}

/// The verdict of a health check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Running and delivering.
    Healthy,
    /// Running, but a queue is not pulled or a pipe fails for too long.
    Unhealthy,
    /// No daemon holds the spool (or it is not the one that wrote the status).
    NotRunning,
}

impl Verdict {
    /// The verdict as the last line of `--status` shows it.
    pub fn word(self) -> &'static str {
        match self {
            Verdict::Healthy => "HEALTHY",
            Verdict::Unhealthy => "UNHEALTHY",
            Verdict::NotRunning => "NOT RUNNING",
        }
    }
}

/// A verdict with its reasons, and the status it was drawn from.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Assessment {
    /// The verdict.
    pub verdict: Verdict,
    /// Whether it is [`Verdict::Healthy`].
    pub healthy: bool,
    /// One line per reason it is not healthy.
    pub reasons: Vec<String>,
    /// When the verdict was drawn.
    pub checked: f64,
    /// What the daemon published last, if anything.
    pub status: Option<Status>,
}

impl Assessment {
    /// The assessment as one JSON object (what `--status --json` prints, and a `/readyz` body).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| {
            format!("{{\"verdict\":\"unhealthy\",\"healthy\":false,\"reasons\":[\"cannot print the status: {e}\"]}}")
        })
    }
}

/// Draws the verdict at time `now` from `status` (what the daemon published, if anything, or
/// why it cannot be read) and `running` (`Err` says why the daemon is not running).
pub fn assess(
    status: Result<Option<Status>, String>,
    running: Result<(), String>,
    now: f64,
) -> Assessment {
    let mut reasons = Vec::new();
    let verdict = match (&running, &status) {
        (Err(why), _) => {
            reasons.push(why.clone());
            Verdict::NotRunning
        }
        (Ok(()), Err(e)) => {
            reasons.push(e.clone());
            Verdict::Unhealthy
        }
        (Ok(()), Ok(None)) => {
            reasons.push("the daemon has not published its status yet".to_string());
            Verdict::Unhealthy
        }
        (Ok(()), Ok(Some(status))) => {
            reasons.extend(queue_problems(status, now));
            reasons.extend(pipe_problems(status, now));
            if reasons.is_empty() {
                Verdict::Healthy
            } else {
                Verdict::Unhealthy
            }
        }
    };
    Assessment {
        verdict,
        healthy: verdict == Verdict::Healthy,
        reasons,
        checked: now,
        status: status.ok().flatten(),
    }
}

/// Whether the daemon that wrote `status` runs on the spool in `dir`: the process holding the
/// spool's lock must be the one that wrote it (no process is signalled; see
/// [`crate::spool::lock_holder`]). `Err` says why not.
pub fn check_daemon(dir: &Path, status: Option<&Status>) -> Result<(), String> {
    let spool = dir.display();
    match (lock_holder(dir), status) {
        (LockHolder::Nobody, _) => Err(format!(
            "no procustodibus-broker runs on spool {spool} (its lock is free)"
        )),
        (LockHolder::Process(pid), Some(s)) if s.pid == pid => Ok(()),
        (LockHolder::Process(pid), Some(s)) => Err(format!(
            "spool {spool} is held by process {pid}, not by the daemon that wrote its status (pid {}): a run without --loop, or a daemon starting",
            s.pid
        )),
        (LockHolder::Process(pid), None) => Err(format!(
            "spool {spool} is held by process {pid}, which publishes no status: a run without --loop, or a daemon starting"
        )),
        (LockHolder::Unknown, _) => Ok(()),
    }
}

/// How long a queue may go without a successful pull: two intervals plus `Timeout`.
pub fn pull_limit(status: &Status) -> f64 {
    2.0 * status.loop_seconds + status.timeout_seconds
}

fn queue_problems(status: &Status, now: f64) -> Vec<String> {
    let limit = pull_limit(status);
    status
        .queues
        .iter()
        .filter_map(|q| {
            // Before its first success, the queue's age counts from the daemon's start.
            let since = q.last_success.unwrap_or(status.started);
            // Shown rounded up, so that it shows above the limit it passed.
            let age = (now - since).ceil();
            if now - since <= limit {
                return None;
            }
            let why = if q.paused {
                "pulling paused: spool full".to_string()
            } else {
                match &q.last_result {
                    Some(r) if r != "ok" => r.clone(),
                    _ => "no pull finished".to_string(),
                }
            };
            let last = match q.last_success {
                Some(_) => format!("no successful pull for {age:.0} s"),
                None => format!("no successful pull since the start {age:.0} s ago"),
            };
            Some(format!(
                "queue {}: {last} (limit {limit:.0} s: two intervals plus Timeout): {why}",
                q.name
            ))
        })
        .collect()
}

fn pipe_problems(status: &Status, now: f64) -> Vec<String> {
    let grace = status.grace_seconds as f64;
    status
        .pipes
        .iter()
        .filter_map(|p| {
            let failing = now - p.failing_since?;
            if failing <= grace {
                return None;
            }
            let age = failing.ceil();
            Some(format!(
                "pipe {}: failing for {age:.0} s (StatusGrace {grace:.0} s): {}",
                p.name,
                p.last_result.as_deref().unwrap_or("unknown error")
            ))
        })
        .collect()
}

/// The current time in Unix seconds.
pub fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status() -> Status {
        Status {
            pid: 7,
            started: 1000.0,
            updated: 1000.0,
            loop_seconds: 10.0,
            timeout_seconds: 5.0,
            grace_seconds: 60,
            pipes: vec![PipeStatus {
                name: "P".into(),
                sink: "file".into(),
                ..Default::default()
            }],
            queues: vec![QueueStatus {
                name: "alerts".into(),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn a_fresh_daemon_is_healthy_until_its_first_pull_is_late() {
        let s = status();
        assert_eq!(
            assess(Ok(Some(s.clone())), Ok(()), 1025.0).verdict,
            Verdict::Healthy
        );
        let late = assess(Ok(Some(s)), Ok(()), 1026.0);
        assert_eq!(late.verdict, Verdict::Unhealthy);
        assert!(late.reasons[0].starts_with("queue alerts: no successful pull since the start"));
    }

    #[test]
    fn a_failing_pull_names_the_queue_and_its_error() {
        let mut s = status();
        s.queues[0].last_success = Some(1000.0);
        s.queues[0].last_result = Some("cannot pull alerts: 503".into());
        let a = assess(Ok(Some(s)), Ok(()), 1030.0);
        assert_eq!(a.verdict, Verdict::Unhealthy);
        assert!(
            a.reasons[0].ends_with(": cannot pull alerts: 503"),
            "{:?}",
            a.reasons
        );
    }

    #[test]
    fn a_pipe_failing_past_the_grace_names_the_pipe() {
        let mut s = status();
        s.queues[0].last_success = Some(1100.0);
        s.pipes[0].failing_since = Some(1040.0);
        s.pipes[0].last_result = Some("refused".into());
        assert!(assess(Ok(Some(s.clone())), Ok(()), 1100.0).healthy);
        let a = assess(Ok(Some(s)), Ok(()), 1101.0);
        assert_eq!(
            a.reasons,
            ["pipe P: failing for 61 s (StatusGrace 60 s): refused"]
        );
    }

    #[test]
    fn the_daemon_is_the_lock_holder_that_wrote_the_status() {
        let dir = tempfile::tempdir().unwrap();
        let me = std::process::id();
        let mine = Status {
            pid: me,
            ..Default::default()
        };
        let e = check_daemon(dir.path(), Some(&mine)).unwrap_err();
        assert!(e.ends_with("(its lock is free)"), "{e}");
        let _spool = crate::spool::Spool::open(dir.path(), 1 << 20, &[]).unwrap();
        assert_eq!(check_daemon(dir.path(), Some(&mine)), Ok(()));
        let other = Status {
            pid: 1,
            ..Default::default()
        };
        let e = check_daemon(dir.path(), Some(&other)).unwrap_err();
        assert!(
            e.contains(&format!(
                "is held by process {me}, not by the daemon that wrote its status (pid 1)"
            )),
            "{e}"
        );
        let e = check_daemon(dir.path(), None).unwrap_err();
        assert!(e.contains("which publishes no status"), "{e}");
    }

    #[test]
    fn not_running_wins() {
        let a = assess(Ok(Some(status())), Err("no daemon".into()), 1000.0);
        assert_eq!(a.verdict, Verdict::NotRunning);
        assert_eq!(a.reasons, ["no daemon"]);
    }

    #[test]
    fn long_errors_are_cut() {
        assert_eq!(result_text(Ok(())), "ok");
        assert_eq!(result_text(Err(&"x".repeat(500))).len(), 403);
    }
}

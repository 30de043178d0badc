//! `--status`: what the running daemon published in its spool directory, one line per pipe and
//! per queue, then the verdict; `--status --json` prints the same as one JSON object.
//!
//! Read-only and safe as root: the status file is opened without following links, the spool's
//! lock is looked up, never taken, and no process is signalled. When no daemon runs, each
//! pipe's backlog is read from the spool's files (see [`census`]), not from the last status.

use std::path::Path;
use std::process::ExitCode;

use broker_core::config::BrokerConfig;
use broker_core::spool::census;
use broker_core::status::{
    assess, check_daemon, file, now, pull_limit, Assessment, PipeStatus, QueueStatus, Status,
    Verdict,
};

/// Exit status when the daemon runs but is not healthy (also: the config cannot be read).
pub const EXIT_UNHEALTHY: u8 = 1;
/// Exit status when no daemon runs on the spool.
pub const EXIT_NOT_RUNNING: u8 = 3;

/// Prints the status of the daemon of `config`'s spool and returns the exit status of its
/// verdict: 0 healthy, [`EXIT_UNHEALTHY`], [`EXIT_NOT_RUNNING`].
pub fn run(config: &BrokerConfig, json: bool) -> ExitCode {
    let state_directory = std::env::var("STATE_DIRECTORY").ok();
    let dir = config.spool_dir(state_directory.as_deref());
    let mut status = file::read(&dir);
    let running = check_daemon(&dir, status.as_ref().ok().and_then(Option::as_ref));
    if let (Err(_), Ok(Some(status))) = (&running, &mut status) {
        // No daemon keeps the published backlog current: the spool's files say what waits.
        backlog_from_spool(&dir, config, status);
    }
    let assessment = assess(status, running, now());
    if json {
        println!("{}", assessment.to_json());
    } else {
        print!("{}", text(&assessment));
    }
    ExitCode::from(match assessment.verdict {
        Verdict::Healthy => 0,
        Verdict::Unhealthy => EXIT_UNHEALTHY,
        Verdict::NotRunning => EXIT_NOT_RUNNING,
    })
}

/// Replaces each pipe's backlog in `status` with what the spool in `dir` holds for it now (read
/// without opening or locking the spool); a spool that cannot be read leaves it as published,
/// with a line on standard error.
fn backlog_from_spool(dir: &Path, config: &BrokerConfig, status: &mut Status) {
    let backlogs = match census(dir, &config.pipes) {
        Ok(backlogs) => backlogs,
        Err(e) => {
            eprintln!("backlog as last published: {e}");
            return;
        }
    };
    for pipe in &mut status.pipes {
        let counted = config
            .pipes
            .iter()
            .position(|p| p.name.eq_ignore_ascii_case(&pipe.name))
            .and_then(|i| backlogs.get(i));
        if let Some((events, bytes)) = counted {
            pipe.backlog_events = *events;
            pipe.backlog_bytes = *bytes;
        }
    }
}

/// The text form: a line per pipe, per queue and for the daemon, then the verdict line.
pub fn text(assessment: &Assessment) -> String {
    let mut out = String::new();
    let at = assessment.checked;
    if let Some(status) = &assessment.status {
        for pipe in &status.pipes {
            out.push_str(&pipe_line(pipe, at));
            out.push('\n');
        }
        for queue in &status.queues {
            out.push_str(&queue_line(queue, at));
            out.push('\n');
        }
        out.push_str(&daemon_line(status, at));
        out.push('\n');
    }
    out.push_str(assessment.verdict.word());
    if !assessment.reasons.is_empty() {
        out.push_str(": ");
        out.push_str(&assessment.reasons.join("; "));
    }
    out.push('\n');
    out
}

fn pipe_line(pipe: &PipeStatus, at: f64) -> String {
    let mut line = format!(
        "pipe {} ({}): backlog {} events, {} bytes; last delivery {}",
        pipe.name,
        pipe.sink,
        pipe.backlog_events,
        pipe.backlog_bytes,
        outcome(pipe.last_delivery, pipe.last_result.as_deref(), at)
    );
    if let Some(since) = pipe.failing_since {
        line.push_str(&format!("; failing since {}", when(since, at)));
    }
    line.push_str(&format!(
        "; dead-lettered {} since start",
        pipe.dead_lettered
    ));
    line
}

fn queue_line(queue: &QueueStatus, at: f64) -> String {
    let mut line = format!(
        "queue {}: last pull {}",
        queue.name,
        outcome(queue.last_pull, queue.last_result.as_deref(), at)
    );
    if queue.last_result.as_deref() != Some("ok") {
        if let Some(success) = queue.last_success {
            line.push_str(&format!("; last success {}", when(success, at)));
        }
    }
    if queue.paused {
        line.push_str("; paused: spool full");
    }
    line
}

fn daemon_line(status: &Status, at: f64) -> String {
    format!(
        "daemon: pid {}, version {}, started {}, status written {}, loop {} s, Timeout {} s (queue limit {} s), StatusGrace {} s, spool {} of {} bytes",
        status.pid,
        status.version,
        when(status.started, at),
        when(status.updated, at),
        status.loop_seconds,
        status.timeout_seconds,
        pull_limit(status),
        status.grace_seconds,
        status.spool_bytes,
        status.spool_max_bytes
    )
}

/// `never`, or `TIME (N s ago): RESULT`.
fn outcome(time: Option<f64>, result: Option<&str>, at: f64) -> String {
    match time {
        None => "never".to_string(),
        Some(time) => format!("{}: {}", when(time, at), result.unwrap_or("?")),
    }
}

/// `2026-01-02T03:04:05Z (12 s ago)`.
fn when(time: f64, at: f64) -> String {
    let stamp = chrono::DateTime::from_timestamp(time.floor() as i64, 0)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|| format!("{time}"));
    format!("{stamp} ({:.0} s ago)", (at - time).max(0.0))
}

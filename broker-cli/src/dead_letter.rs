//! `--dead-letter` and `--redeliver-dead-letter`: the operator's view of the spool's
//! dead-letter file, and putting its events back for their pipes (see
//! [`broker_core::spool::redeliver`] and docs/reliability.md).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use broker_core::config::BrokerConfig;
use broker_core::spool::redeliver::{self, DeadLetterSummary, LetterOwner};

use crate::fail;

/// Prints the summary of the dead-letter file: one line per pipe (or queue) and reason with the
/// count and the oldest and newest times, then what waits for redelivery. Exit 0, or 1 when the
/// file cannot be read.
pub fn summary(config: &BrokerConfig) -> ExitCode {
    let dir = spool_dir(config);
    match redeliver::summarize(&dir) {
        Ok(summary) => {
            print!("{}", render(&redeliver::dead_letter_path(&dir), &summary));
            ExitCode::SUCCESS
        }
        Err(e) => fail(&format!("cannot read the dead letters: {e}")),
    }
}

/// Puts the dead letters of every pipe, or of `pipe`, back in the spool and prints what it did.
/// As root, refuses a spool another user owns (run it as the daemon user instead).
pub fn redeliver(config: &BrokerConfig, pipe: Option<&str>) -> ExitCode {
    if let Some(name) = pipe {
        if config.pipe(name).is_none() {
            return fail(&format!(
                "--redeliver-dead-letter: no pipe {name} in {}",
                config.path.display()
            ));
        }
    }
    let dir = spool_dir(config);
    if let Err(e) = refuse_foreign_spool_as_root(&dir) {
        return fail(&e);
    }
    match redeliver::redeliver(&dir, &config.pipes, pipe) {
        Ok(report) => {
            if report.redelivered.is_empty() {
                println!("nothing to redeliver");
            }
            for (pipe, count) in &report.redelivered {
                println!(
                    "pipe {pipe}: {count} dead letters put back in the spool (the running broker delivers them at its next round, or the next run does)"
                );
            }
            for (why, count) in &report.kept {
                println!("kept {count} dead letters: {why}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(&format!("cannot redeliver the dead letters: {e}")),
    }
}

/// The summary as text, one line each.
fn render(path: &Path, summary: &DeadLetterSummary) -> String {
    let mut out = format!("{}: {} dead letters\n", path.display(), summary.total());
    for ((owner, reason), group) in &summary.groups {
        let who = match owner {
            LetterOwner::Pipe(pipe) => format!("pipe {pipe}"),
            LetterOwner::Unspooled(queue) => format!("queue {queue} (unspooled, every pipe)"),
            LetterOwner::Bytes(queue) => format!("queue {queue} (raw bytes, by hand)"),
        };
        out.push_str(&format!(
            "{who}: {} events from {} to {}: {reason}\n",
            group.count, group.oldest, group.newest
        ));
    }
    if !summary.unreadable.is_empty() {
        let numbers: Vec<String> = summary.unreadable.iter().map(usize::to_string).collect();
        out.push_str(&format!(
            "{} lines that are not dead letters: line {}\n",
            summary.unreadable.len(),
            numbers.join(", ")
        ));
    }
    for (pipe, count) in &summary.waiting {
        out.push_str(&format!(
            "pipe {pipe}: {count} events put back, waiting for redelivery\n"
        ));
    }
    if summary.interrupted > 0 {
        out.push_str(&format!(
            "{} batches of an interrupted redelivery: the broker's next start or --redeliver-dead-letter finishes it\n",
            summary.interrupted
        ));
    }
    out
}

fn spool_dir(config: &BrokerConfig) -> PathBuf {
    let state_directory = std::env::var("STATE_DIRECTORY").ok();
    config.spool_dir(state_directory.as_deref())
}

/// As root, the spool directory must be root's: files root creates in a spool the daemon user
/// owns would be root's, and the daemon could no longer delete them; and that user could lead
/// root's writes elsewhere.
fn refuse_foreign_spool_as_root(dir: &Path) -> Result<(), String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(());
    }
    match std::fs::symlink_metadata(dir) {
        Ok(meta) if meta.is_dir() && meta.uid() == 0 => Ok(()),
        Ok(meta) => Err(format!(
            "refusing to redeliver as root: the spool {} is {} of uid {}; run it as the daemon user (sudo -u procustodibus-broker procustodibus-broker --redeliver-dead-letter)",
            dir.display(),
            if meta.is_dir() { "a directory" } else { "not a directory but a link or file" },
            meta.uid()
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("cannot read the spool {}: {e}", dir.display())),
    }
}

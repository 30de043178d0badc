//! Reading the dead-letter file back: its summary (`--dead-letter`) and putting its events back
//! in the spool for their pipes (`--redeliver-dead-letter`), safe while the broker runs and if
//! killed at any point.
//!
//! A redelivery holds `SPOOL/redeliver/lock` (one redelivery at a time) and the dead-letter
//! file's own lock (which every append takes, see `dead_letter::open_locked`), and then:
//!
//! 1. writes the dead-letter file without the chosen lines to `dead-letter.jsonl.redeliver-tmp`,
//!    flushed; call its inode number N;
//! 2. writes each pipe's chosen lines to `redeliver/PIPE/ID-N.staged`, flushed (the broker
//!    ignores staged files);
//! 3. renames the temp file over `dead-letter.jsonl`: the commit point;
//! 4. renames each staged file to `redeliver/PIPE/ID.jsonl`, where the broker loads it.
//!
//! Killed before step 3, the dead-letter file is as it was; after it, the lines are in staged
//! files that name the dead-letter file now in place. So whoever next takes the redelivery lock
//! (the next redelivery, the broker when it opens the spool) finishes the job: a staged file
//! whose N is the inode of `dead-letter.jsonl` is renamed into place, any other is deleted
//! (with the temp file). Each line ends up either in the dead-letter file or in a batch,
//! exactly once.

use std::collections::BTreeMap;
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::dead_letter::{self, Letter};
use super::redeliveries::{self, batch_files, read_no_follow, sync_parent, write_batch, DIR};
use super::SpoolError;
use crate::config::PipeConfig;

/// Where the dead-letter file without the redelivered lines is written before it replaces it.
const TEMP_NAME: &str = "dead-letter.jsonl.redeliver-tmp";
/// How a staged batch's file name ends.
const STAGED_SUFFIX: &str = ".staged";

/// What one group of dead letters is about.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum LetterOwner {
    /// Rejected by this pipe (as the dead-letter line spells it).
    Pipe(String),
    /// Pulled from this queue but never spooled (no pipe saw them): redelivered to every pipe
    /// that reads the queue.
    Unspooled(String),
    /// Raw bytes of this queue that hold no readable event (a damaged spool record, an API
    /// answer that could not be read): never redelivered, recovered by hand.
    Bytes(String),
}

/// Dead letters of one owner and reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LetterGroup {
    /// How many.
    pub count: usize,
    /// The oldest one's time.
    pub oldest: String,
    /// The newest one's time.
    pub newest: String,
}

/// What the dead-letter file and the waiting redeliveries hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeadLetterSummary {
    /// The groups, by owner then reason (the event's own id in a reason shown as `<id>`).
    pub groups: BTreeMap<(LetterOwner, String), LetterGroup>,
    /// Line numbers of lines that are not dead letters.
    pub unreadable: Vec<usize>,
    /// Events put back but not yet delivered, per pipe directory (lower-case pipe name).
    pub waiting: BTreeMap<String, usize>,
    /// Staged batches of a redelivery that was killed halfway (finished or undone by the next
    /// redelivery or the broker's next start).
    pub interrupted: usize,
}

impl DeadLetterSummary {
    /// Every dead letter counted.
    pub fn total(&self) -> usize {
        self.groups.values().map(|g| g.count).sum()
    }
}

/// What a redelivery did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RedeliveryReport {
    /// Events put back, per pipe (as configured).
    pub redelivered: BTreeMap<String, usize>,
    /// Dead letters kept in the file, with why, one line per reason.
    pub kept: BTreeMap<String, usize>,
}

/// Summarizes the dead-letter file and the waiting redeliveries of the spool in `dir` (read
/// only; nothing is followed through a link).
pub fn summarize(dir: &Path) -> Result<DeadLetterSummary, SpoolError> {
    let path = dir.join(dead_letter::FILE_NAME);
    let mut summary = DeadLetterSummary::default();
    let text = match read_no_follow(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(io_error(&path, "cannot read", e)),
    };
    for (number, line) in complete_lines(&text) {
        let Some(letter) = Letter::parse(line) else {
            summary.unreadable.push(number);
            continue;
        };
        let owner = owner(&letter);
        let group = summary
            .groups
            .entry((owner, letter.reason_of_any_event()))
            .or_insert_with(|| LetterGroup {
                count: 0,
                oldest: letter.time.clone(),
                newest: letter.time.clone(),
            });
        group.count += 1;
        group.oldest = group.oldest.clone().min(letter.time.clone());
        group.newest = group.newest.clone().max(letter.time);
    }
    let redeliver = dir.join(DIR);
    for pipe in subdirectories(&redeliver)? {
        let mut count = 0;
        for file in batch_files(&redeliver.join(&pipe))
            .map_err(|e| io_error(&redeliver, "cannot list", e))?
        {
            let text = read_no_follow(&file).map_err(|e| io_error(&file, "cannot read", e))?;
            let done =
                redeliveries::done_of(&file).map_err(|e| io_error(&file, "cannot read", e))?;
            count += redeliveries::batch_lines(&text)
                .count()
                .saturating_sub(done);
        }
        let entries = std::fs::read_dir(redeliver.join(&pipe))
            .map_err(|e| io_error(&redeliver, "cannot list", e))?;
        summary.interrupted += entries
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(STAGED_SUFFIX))
            .count();
        if count > 0 {
            summary.waiting.insert(pipe, count);
        }
    }
    Ok(summary)
}

/// Puts the dead letters of `pipes` (all of them, or only the pipe named `only`, compared
/// ignoring case) back in the spool in `dir` for their pipes, and removes them from the
/// dead-letter file (see the module doc for the steps and the guarantee). A dead letter of a
/// pipe no longer configured, or of raw bytes, stays in the file.
pub fn redeliver(
    dir: &Path,
    pipes: &[PipeConfig],
    only: Option<&str>,
) -> Result<RedeliveryReport, SpoolError> {
    let mut report = RedeliveryReport::default();
    if std::fs::symlink_metadata(dir).is_err() {
        return Ok(report);
    }
    let _lock = lock_redeliveries(dir)?;
    finish_interrupted_locked(dir)?;
    let path = dir.join(dead_letter::FILE_NAME);
    match std::fs::symlink_metadata(&path) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(report),
        Err(e) => return Err(io_error(&path, "cannot read", e)),
    }
    let mut file =
        dead_letter::open_locked(&path).map_err(|e| io_error(&path, "cannot open", e))?;
    let mut text = String::new();
    file.rewind()
        .and_then(|()| file.read_to_string(&mut text))
        .map_err(|e| io_error(&path, "cannot read", e))?;

    let mut kept = String::new();
    let mut chosen: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    for (_, line) in all_lines(&text) {
        let targets = targets(line, pipes, only, &mut report);
        if targets.is_empty() {
            kept.push_str(line);
            kept.push('\n');
        }
        for index in targets {
            chosen.entry(index).or_default().push(line.to_string());
        }
    }
    if chosen.is_empty() {
        return Ok(report);
    }

    // 1. The dead-letter file without the chosen lines.
    let temp = dir.join(TEMP_NAME);
    let inode =
        write_new(&temp, kept.as_bytes()).map_err(|e| io_error(&temp, "cannot write", e))?;
    // 2. Each pipe's staged batch.
    let id = batch_id();
    let mut staged = Vec::new();
    for (index, lines) in &chosen {
        let pipe = &pipes[*index].name;
        let pipe_dir = dir.join(DIR).join(pipe.to_ascii_lowercase());
        create_private_dir(&pipe_dir).map_err(|e| io_error(&pipe_dir, "cannot create", e))?;
        let path = pipe_dir.join(format!("{id}-{inode}{STAGED_SUFFIX}"));
        write_batch(&path, lines.iter()).map_err(|e| io_error(&path, "cannot write", e))?;
        staged.push((
            path,
            pipe_dir.join(format!("{id}{}", redeliveries::BATCH_SUFFIX)),
        ));
        report.redelivered.insert(pipe.clone(), lines.len());
    }
    // 3. The commit point.
    std::fs::rename(&temp, &path)
        .and_then(|()| sync_parent(&path))
        .map_err(|e| io_error(&path, "cannot replace", e))?;
    drop(file);
    // 4. Into place for the broker.
    for (from, to) in staged {
        activate(&from, &to)?;
    }
    Ok(report)
}

/// Finishes a redelivery that was killed halfway (see the module doc), under the redelivery
/// lock of the spool in `dir`.
pub(crate) fn finish_interrupted(dir: &Path) -> Result<(), SpoolError> {
    if !dir.join(DIR).is_dir() {
        return Ok(());
    }
    let _lock = lock_redeliveries(dir)?;
    finish_interrupted_locked(dir)
}

fn finish_interrupted_locked(dir: &Path) -> Result<(), SpoolError> {
    let path = dir.join(dead_letter::FILE_NAME);
    let current = match std::fs::symlink_metadata(&path) {
        Ok(meta) => Some(meta.ino()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(io_error(&path, "cannot read", e)),
    };
    let redeliver = dir.join(DIR);
    for pipe in subdirectories(&redeliver)? {
        let pipe_dir = redeliver.join(&pipe);
        let entries =
            std::fs::read_dir(&pipe_dir).map_err(|e| io_error(&pipe_dir, "cannot list", e))?;
        for entry in entries {
            let entry = entry.map_err(|e| io_error(&pipe_dir, "cannot list", e))?;
            let name = entry.file_name().to_string_lossy().to_string();
            if let Some(batch) = name.strip_suffix(".done") {
                // The count of a batch deleted by a broker killed before it deleted the count.
                if !pipe_dir.join(batch).exists() {
                    std::fs::remove_file(entry.path())
                        .map_err(|e| io_error(&entry.path(), "cannot delete", e))?;
                }
                continue;
            }
            let Some(stem) = name.strip_suffix(STAGED_SUFFIX) else {
                continue;
            };
            let Some((id, inode)) = stem.rsplit_once('-') else {
                continue;
            };
            let staged = entry.path();
            if inode.parse::<u64>().ok() == current {
                let batch = pipe_dir.join(format!("{id}{}", redeliveries::BATCH_SUFFIX));
                tracing::warn!("finishing an interrupted redelivery: {}", batch.display());
                activate(&staged, &batch)?;
            } else {
                tracing::warn!(
                    "dropping {} of an interrupted redelivery: its lines are still in {}",
                    staged.display(),
                    path.display()
                );
                std::fs::remove_file(&staged).map_err(|e| io_error(&staged, "cannot delete", e))?;
            }
        }
    }
    let temp = dir.join(TEMP_NAME);
    match std::fs::remove_file(&temp) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_error(&temp, "cannot delete", e)),
    }
}

/// The pipes (indexes into `pipes`) the dead letter on `line` goes back to; none when it stays,
/// counted in `report.kept` with why.
fn targets(
    line: &str,
    pipes: &[PipeConfig],
    only: Option<&str>,
    report: &mut RedeliveryReport,
) -> Vec<usize> {
    let mut keep = |why: String| {
        *report.kept.entry(why).or_default() += 1;
        Vec::new()
    };
    let Some(letter) = Letter::parse(line) else {
        return keep("not a dead letter".to_string());
    };
    let Some(event) = letter.event() else {
        return keep(format!(
            "{} bytes that hold no readable event (recover them by hand)",
            letter.event_type
        ));
    };
    let wanted = |p: &PipeConfig| only.is_none_or(|o| p.name.eq_ignore_ascii_case(o));
    if letter.pipe.is_empty() {
        if only.is_some() {
            return keep(format!(
                "unspooled {} events (redelivered only with no PIPE named)",
                letter.event_type
            ));
        }
        let readers: Vec<usize> = (0..pipes.len())
            .filter(|i| pipes[*i].from.contains(&event.event_type()))
            .collect();
        if readers.is_empty() {
            return keep(format!(
                "unspooled {} events (no pipe reads {0})",
                letter.event_type
            ));
        }
        return readers;
    }
    match pipes
        .iter()
        .position(|p| p.name.eq_ignore_ascii_case(&letter.pipe))
    {
        Some(index) if wanted(&pipes[index]) => vec![index],
        Some(_) => Vec::new(),
        None => keep(format!("pipe {} (not in the config)", letter.pipe)),
    }
}

/// What a dead letter is about.
fn owner(letter: &Letter) -> LetterOwner {
    let queue = letter.event_type.clone();
    match (letter.pipe.is_empty(), letter.event().is_some()) {
        (false, _) => LetterOwner::Pipe(letter.pipe.clone()),
        (true, true) => LetterOwner::Unspooled(queue),
        (true, false) => LetterOwner::Bytes(queue),
    }
}

/// The lines of `text` with their numbers (from 1), the last one too even without a newline.
fn all_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.split_terminator('\n')
        .enumerate()
        .map(|(i, l)| (i + 1, l))
        .filter(|(_, l)| !l.trim().is_empty())
}

/// The lines of `text` that end with a newline (a last line without one is still being
/// written), with their numbers.
fn complete_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let complete = match text.rfind('\n') {
        Some(end) => &text[..end + 1],
        None => "",
    };
    all_lines(complete)
}

/// Takes `SPOOL/redeliver/lock` (creating the directory, mode 0700), waiting for another
/// redelivery to finish.
fn lock_redeliveries(dir: &Path) -> Result<std::fs::File, SpoolError> {
    let redeliver = dir.join(DIR);
    create_private_dir(&redeliver).map_err(|e| io_error(&redeliver, "cannot create", e))?;
    let path = redeliver.join("lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
        .map_err(|e| io_error(&path, "cannot open", e))?;
    dead_letter::flock_exclusive(&file).map_err(|e| io_error(&path, "cannot lock", e))?;
    Ok(file)
}

/// Renames a staged batch into place and flushes its directory.
fn activate(staged: &Path, batch: &Path) -> Result<(), SpoolError> {
    std::fs::rename(staged, batch)
        .and_then(|()| sync_parent(batch))
        .map_err(|e| io_error(batch, "cannot create", e))
}

/// Writes `bytes` to a new file at `path` (replacing a stale one; mode 0600, never through a
/// link), flushed; returns its inode number.
fn write_new(path: &Path, bytes: &[u8]) -> std::io::Result<u64> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    Ok(file.metadata()?.ino())
}

/// Creates `dir` (mode 0700) unless it is there; a link there is an error.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => sync_parent(dir),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            if std::fs::symlink_metadata(dir)?.is_dir() {
                Ok(())
            } else {
                Err(std::io::Error::other("not a directory (or a link)"))
            }
        }
        Err(e) => Err(e),
    }
}

/// The names of the directories in `dir` (none when it does not exist or is a link; links in
/// it are skipped).
fn subdirectories(dir: &Path) -> Result<Vec<String>, SpoolError> {
    if !std::fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir()) {
        return Ok(Vec::new());
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_error(dir, "cannot list", e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| io_error(dir, "cannot list", e))?;
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            names.push(entry.file_name().to_string_lossy().to_string());
        }
    }
    names.sort();
    Ok(names)
}

/// A batch name that sorts in the order batches were made.
fn batch_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{nanos:024}{:010}", std::process::id())
}

fn io_error(path: &Path, what: &str, e: std::io::Error) -> SpoolError {
    SpoolError(format!("{what} {}: {e}", path.display()))
}

/// The path of the dead-letter file of the spool in `dir`.
pub fn dead_letter_path(dir: &Path) -> PathBuf {
    dir.join(dead_letter::FILE_NAME)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BrokerConfig;
    use crate::event::{Event, EventType};
    use crate::spool::Spool;

    fn pipes() -> Vec<PipeConfig> {
        let text = "[Broker]\nBroker = b\n[Pipe.A]\nFrom = alerts\nTo = recording\n";
        BrokerConfig::parse(text, Path::new("b.conf"))
            .unwrap()
            .pipes
    }

    fn alert(id: usize) -> Event {
        Event::from_encoded_line(EventType::Alerts, format!("{{\"id\":\"a{id}\"}}"))
    }

    /// The lines of every batch waiting for pipe `pipe`.
    fn batched(dir: &Path, pipe: &str) -> Vec<String> {
        batch_files(&dir.join(DIR).join(pipe))
            .unwrap()
            .iter()
            .flat_map(|f| {
                let text = std::fs::read_to_string(f).unwrap();
                text.lines().map(str::to_string).collect::<Vec<_>>()
            })
            .collect()
    }

    #[test]
    fn letters_appended_during_redeliveries_are_never_lost() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(dead_letter::FILE_NAME);
        let config = pipes();
        let writer = {
            let path = path.clone();
            std::thread::spawn(move || {
                for i in 0..600 {
                    // Pipe B is not configured: its letters stay in the file.
                    let pipe = if i % 2 == 0 { "A" } else { "B" };
                    dead_letter::append(&path, &dead_letter::line(pipe, &alert(i), "r")).unwrap();
                }
            })
        };
        let mut redelivered = 0;
        while !writer.is_finished() {
            let report = redeliver(dir.path(), &config, None).unwrap();
            redelivered += report.redelivered.get("A").copied().unwrap_or(0);
        }
        writer.join().unwrap();
        redelivered += redeliver(dir.path(), &config, None)
            .unwrap()
            .redelivered
            .get("A")
            .copied()
            .unwrap_or(0);
        let kept = std::fs::read_to_string(&path).unwrap();
        assert_eq!(kept.lines().count(), 300);
        assert!(kept.lines().all(|l| l.contains(r#""pipe":"B""#)));
        let batched = batched(dir.path(), "a");
        assert_eq!(redelivered, 300);
        let ids: Vec<String> = batched
            .iter()
            .map(|l| Letter::parse(l).unwrap().event().unwrap().id().unwrap())
            .collect();
        let want: Vec<String> = (0..600).step_by(2).map(|i| format!("a{i}")).collect();
        assert_eq!(ids, want, "every one once, in order");
    }

    #[test]
    fn redeliveries_come_after_the_queues_and_go_once_delivered() {
        let dir = tempfile::tempdir().unwrap();
        let config = pipes();
        let path = dir.path().join(dead_letter::FILE_NAME);
        for i in 0..3 {
            dead_letter::append(&path, &dead_letter::line("a", &alert(i), "r")).unwrap();
        }
        // Raw bytes stay; an unspooled event goes to every pipe reading its queue.
        let bytes = dead_letter::damaged_line(EventType::Alerts, b"{\"da", "torn");
        dead_letter::append(&path, &bytes).unwrap();
        dead_letter::append(&path, &dead_letter::line("", &alert(3), "not spooled")).unwrap();
        let summary = summarize(dir.path()).unwrap();
        let owners: Vec<(&LetterOwner, usize)> = summary
            .groups
            .iter()
            .map(|((o, _), g)| (o, g.count))
            .collect();
        assert_eq!(
            owners,
            [
                (&LetterOwner::Pipe("a".into()), 3),
                (&LetterOwner::Unspooled("alerts".into()), 1),
                (&LetterOwner::Bytes("alerts".into()), 1)
            ]
        );

        let report = redeliver(dir.path(), &config, None).unwrap();
        assert_eq!(report.redelivered.get("A"), Some(&4));
        assert_eq!(report.kept.values().sum::<usize>(), 1, "{report:?}");
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("{bytes}\n")
        );

        let open = || Spool::open(dir.path(), crate::spool::DEFAULT_MAX_BYTES, &config).unwrap();
        let spool = open();
        spool.append(EventType::Alerts, &[alert(10)]).unwrap();
        assert_eq!(spool.pending(0), 5);
        let first = spool.read(0, 10).unwrap();
        assert_eq!(first, [alert(10)], "the queue first");
        spool.advance(0, &first).unwrap();
        let second = spool.read(0, 2).unwrap();
        assert_eq!(second, [alert(0), alert(1)]);
        spool.advance(0, &second[..1]).unwrap();
        assert_eq!(summarize(dir.path()).unwrap().waiting.get("a"), Some(&3));

        // What was delivered stays done after a restart.
        drop(spool);
        let spool = open();
        assert_eq!(spool.pending(0), 3);
        let rest = spool.read(0, 10).unwrap();
        assert_eq!(rest, [alert(1), alert(2), alert(3)]);
        spool.advance(0, &rest).unwrap();
        assert_eq!(spool.pending(0), 0);
        assert!(spool.read(0, 10).unwrap().is_empty());
        let pipe_dir = dir.path().join(DIR).join("a");
        assert_eq!(
            std::fs::read_dir(&pipe_dir).unwrap().count(),
            0,
            "batch and count gone"
        );
    }
}

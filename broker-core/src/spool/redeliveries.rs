//! Redeliveries: dead letters put back for their pipes by `--redeliver-dead-letter`
//! ([`super::redeliver`]), waiting in `SPOOL/redeliver/PIPE/` until the pipe delivers them.
//!
//! Each `*.jsonl` file there is one batch: dead-letter lines, in the order they had in the
//! dead-letter file, for the pipe the directory is named after (in lower case). A batch is
//! written elsewhere and renamed into place complete, so the broker loads only whole batches: at
//! open and at the start of every round. A pipe gets its redeliveries once it has delivered
//! what its queues hold (they go ahead of nothing), batch after batch. As its sink takes them,
//! how many lines of the batch are done is saved beside it (`ID.jsonl.done`, replaced
//! atomically: a few bytes, however large the batch), and the batch is deleted once all are.

use std::collections::{BTreeSet, VecDeque};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::dead_letter::{self, Letter};
use crate::event::Event;

/// The directory of redeliveries in the spool directory.
pub(crate) const DIR: &str = "redeliver";
/// How a batch's file name ends once it is complete.
pub(crate) const BATCH_SUFFIX: &str = ".jsonl";

/// One batch file, loaded: the events not yet delivered, each with the count of the batch's
/// lines done once it is.
struct Batch {
    path: PathBuf,
    events: VecDeque<(Event, usize)>,
}

/// The loaded redeliveries of every pipe.
pub(crate) struct Redeliveries {
    /// The spool directory (`None` for an in-memory spool: nothing to redeliver).
    dir: Option<PathBuf>,
    /// Each pipe's name in lower case (its directory), in config order.
    pipes: Vec<String>,
    /// Each pipe's loaded batches, oldest first.
    batches: Vec<VecDeque<Batch>>,
    /// The batch files loaded so far (and not yet done).
    loaded: BTreeSet<PathBuf>,
}

impl Redeliveries {
    /// No redeliveries yet for `pipes` (names) of the spool in `dir`.
    pub(crate) fn new(dir: Option<&Path>, pipes: &[String]) -> Redeliveries {
        Redeliveries {
            dir: dir.map(Path::to_path_buf),
            pipes: pipes.iter().map(|p| p.to_ascii_lowercase()).collect(),
            batches: pipes.iter().map(|_| VecDeque::new()).collect(),
            loaded: BTreeSet::new(),
        }
    }

    /// Loads the batches that appeared since the last call; returns how many events they hold,
    /// per pipe (index, count), for pipes that got any.
    pub(crate) fn import(&mut self) -> std::io::Result<Vec<(usize, usize)>> {
        let Some(dir) = self.dir.clone() else {
            return Ok(Vec::new());
        };
        let mut imported = Vec::new();
        for (index, pipe) in self.pipes.clone().iter().enumerate() {
            let mut count = 0;
            for path in batch_files(&dir.join(DIR).join(pipe))? {
                if self.loaded.contains(&path) {
                    continue;
                }
                let batch = load(&dir, &path)?;
                count += batch.events.len();
                self.loaded.insert(path);
                self.batches[index].push_back(batch);
            }
            if count > 0 {
                imported.push((index, count));
            }
        }
        Ok(imported)
    }

    /// Up to `max` events at the front of pipe `pipe`'s oldest batch, marked as redelivered.
    pub(crate) fn take(&self, pipe: usize, max: usize) -> Vec<Event> {
        let Some(batch) = self.batches.get(pipe).and_then(VecDeque::front) else {
            return Vec::new();
        };
        batch
            .events
            .iter()
            .take(max.max(1))
            .map(|(e, _)| e.clone().into_redelivered())
            .collect()
    }

    /// How many events wait for redelivery to pipe `pipe`.
    pub(crate) fn pending(&self, pipe: usize) -> u64 {
        self.batches.get(pipe).map_or(0, |batches| {
            batches.iter().map(|b| b.events.len() as u64).sum()
        })
    }

    /// Marks the first `count` redeliveries of pipe `pipe` as done: saves how many lines of
    /// their batch are done, or deletes the batch once all are, before returning.
    pub(crate) fn advance(&mut self, pipe: usize, mut count: usize) -> std::io::Result<()> {
        let Some(batches) = self.batches.get_mut(pipe) else {
            return Ok(());
        };
        while count > 0 {
            let Some(batch) = batches.front_mut() else {
                return Ok(());
            };
            let n = count.min(batch.events.len());
            let done = batch
                .events
                .drain(..n)
                .next_back()
                .map_or(0, |(_, done)| done);
            count -= n;
            if batch.events.is_empty() {
                // The batch first: a count left without its batch is only cleared later.
                std::fs::remove_file(&batch.path)?;
                remove_if_there(&done_path(&batch.path))?;
                sync_parent(&batch.path)?;
                self.loaded.remove(&batch.path);
                batches.pop_front();
            } else {
                write_batch(&done_path(&batch.path), std::iter::once(&done.to_string()))?;
            }
        }
        Ok(())
    }
}

/// The complete batch files in `dir`, oldest first (their names start with the time they were
/// made); none when `dir` does not exist.
pub(crate) fn batch_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !name.starts_with('.') && name.ends_with(BATCH_SUFFIX) && entry.file_type()?.is_file() {
            files.push(entry.path());
        }
    }
    files.sort();
    Ok(files)
}

/// The file that holds how many lines of the batch at `batch` are done.
pub(crate) fn done_path(batch: &Path) -> PathBuf {
    let mut name = batch.file_name().unwrap_or_default().to_os_string();
    name.push(".done");
    batch.with_file_name(name)
}

/// How many lines of the batch at `batch` are done (0 when nothing was saved).
pub(crate) fn done_of(batch: &Path) -> std::io::Result<usize> {
    match read_no_follow(&done_path(batch)) {
        Ok(text) => Ok(text.trim().parse().unwrap_or(0)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(e),
    }
}

/// The lines of a batch's text that hold something.
pub(crate) fn batch_lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines().filter(|l| !l.trim().is_empty())
}

/// Reads the batch at `path`, without the lines done: a line that holds no event (which the
/// broker never writes there) goes back to the dead-letter file of `spool` rather than being
/// dropped.
fn load(spool: &Path, path: &Path) -> std::io::Result<Batch> {
    let text = read_no_follow(path)?;
    let done = done_of(path)?;
    let mut batch = Batch {
        path: path.to_path_buf(),
        events: VecDeque::new(),
    };
    for (index, line) in batch_lines(&text).enumerate().skip(done) {
        match Letter::parse(line).and_then(|l| l.event()) {
            Some(event) => batch.events.push_back((event, index + 1)),
            None => {
                let dead_letters = spool.join(dead_letter::FILE_NAME);
                tracing::error!(
                    "{}: a line that holds no event: put back in {}",
                    path.display(),
                    dead_letters.display()
                );
                dead_letter::append(&dead_letters, line)?;
            }
        }
    }
    Ok(batch)
}

/// Deletes the file at `path` if it is there.
fn remove_if_there(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// The text of the file at `path`, not followed if it is a link.
pub(crate) fn read_no_follow(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    let mut text = String::new();
    std::io::Read::read_to_string(&mut file, &mut text)?;
    Ok(text)
}

/// Writes `lines` to `path` durably and atomically: to a temp file beside it (mode 0600, never
/// through a link), flushed, renamed over `path`, and the directory flushed.
pub(crate) fn write_batch<'a>(
    path: &Path,
    lines: impl Iterator<Item = &'a String>,
) -> std::io::Result<()> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let temp = path.with_file_name(format!(".{name}.tmp"));
    let mut text = String::new();
    for line in lines {
        text.push_str(line);
        text.push('\n');
    }
    let _ = std::fs::remove_file(&temp);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&temp)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&temp, path)?;
    sync_parent(path)
}

/// Flushes the directory of `path`, so that a new, renamed or deleted name there is durable.
pub(crate) fn sync_parent(path: &Path) -> std::io::Result<()> {
    match path.parent() {
        Some(parent) => std::fs::File::open(parent)?.sync_all(),
        None => Ok(()),
    }
}

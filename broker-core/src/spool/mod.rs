//! The spool: a durable local buffer of everything pulled and not yet delivered by every pipe.
//!
//! Each queue has an append-only log of segment files (`queue.rs`); each pipe has, for each queue
//! it reads, the sequence number of the next event it has not delivered (`positions.rs`). Events
//! are flushed to the disk before any pipe can read them, a position moves only when the pipe's
//! sink said `Ok`, and a segment is deleted once every pipe reading its queue is past it. See
//! `docs/reliability.md` for the operator's view.

mod census;
mod dead_letter;
mod lock;
mod positions;
mod queue;
mod record;
pub mod redeliver;
pub mod redeliveries;
mod segment;

use std::collections::BTreeMap;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use tokio::sync::watch;

use crate::config::PipeConfig;
use crate::event::{Event, EventType};
pub use census::census;
pub use dead_letter::FILE_NAME as DEAD_LETTER_FILE;
pub use lock::{lock_holder, LockHolder};
use positions::Positions;
use queue::QueueLog;
use redeliveries::Redeliveries;

/// The default bound on the spool's size: 256 MiB.
pub const DEFAULT_MAX_BYTES: u64 = 256 * 1024 * 1024;
/// The largest segment file.
const SEGMENT_MAX: u64 = 8 * 1024 * 1024;

/// A spool failure: one line naming the file and the reason.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SpoolError(pub String);

/// The durable buffer between the pulls and the pipes.
pub struct Spool {
    dir: Option<PathBuf>,
    max_bytes: u64,
    queues: BTreeMap<EventType, Mutex<QueueLog>>,
    /// Held for a whole append of a queue (write, flush, publish), one appender at a time.
    appending: BTreeMap<EventType, Mutex<()>>,
    /// Bytes in all segment files (kept apart so checking for room takes no queue's lock).
    bytes: AtomicU64,
    cursors: Mutex<Cursors>,
    /// The open positions file, rewritten in place after each delivery.
    positions_file: Mutex<Option<std::fs::File>>,
    /// Dead letters put back for the pipes, delivered once a pipe's queues are done.
    redeliveries: Mutex<Redeliveries>,
    appended: watch::Sender<u64>,
    freed: watch::Sender<u64>,
    /// Events each pipe sent to the dead-letter file since the spool was opened.
    dead_lettered: Vec<AtomicU64>,
    _lock: Option<lock::DirLock>,
}

/// Each pipe's positions.
struct Cursors {
    /// Pipe names and the queues they read, in config order.
    pipes: Vec<(String, Vec<EventType>)>,
    /// Next undelivered sequence number, per pipe (same order) and queue.
    next: Vec<BTreeMap<EventType, u64>>,
}

impl Cursors {
    fn as_positions(&self) -> Positions {
        self.pipes
            .iter()
            .zip(&self.next)
            .map(|((name, _), next)| (name.clone(), next.clone()))
            .collect()
    }

    /// The smallest position among the pipes reading `queue`, if any reads it.
    fn low_water(&self, queue: EventType) -> Option<u64> {
        self.next
            .iter()
            .filter_map(|n| n.get(&queue))
            .min()
            .copied()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Spool {
    /// Opens (creating it if needed) and locks the spool in `dir` for `pipes`, recovering what
    /// an earlier run left: undelivered events stay, positions of pipes no longer configured
    /// are dropped (logged with the count of undelivered events), a torn record at the end of
    /// a queue is cut off, damaged records elsewhere are skipped (their bytes go to the
    /// dead-letter file) and missing segments are logged with the count of events lost.
    pub fn open(dir: &Path, max_bytes: u64, pipes: &[PipeConfig]) -> Result<Spool, SpoolError> {
        let err = |what: &str, e: std::io::Error| {
            SpoolError(format!("spool {}: {what}: {e}", dir.display()))
        };
        create_dir_durably(dir).map_err(|e| err("cannot create the directory", e))?;
        let dir_lock = lock::DirLock::acquire(dir)?;
        let segment_max = segment_max(max_bytes);
        let mut queues = BTreeMap::new();
        for queue in EventType::ALL {
            let queue_dir = dir.join("queues").join(queue.as_str());
            let (log, warnings, damages) = QueueLog::open(&queue_dir, queue, segment_max)
                .map_err(|e| err(&format!("cannot open {}", queue_dir.display()), e))?;
            for warning in warnings {
                tracing::warn!("{warning}");
            }
            for damage in damages {
                keep_damaged(dir, queue, &damage);
            }
            queues.insert(queue, log);
        }
        let positions_path = dir.join("positions");
        let saved = match positions::read(&positions_path) {
            Ok(saved) => saved,
            Err(e) => {
                tracing::warn!("spool: {e}: every pipe starts at the oldest spooled event");
                None
            }
        };
        let cursors = recover_cursors(&mut queues, saved.as_ref(), pipes);
        redeliver::finish_interrupted(dir)?;
        let spool = Spool::assemble(
            Some(dir.to_path_buf()),
            Some(dir_lock),
            max_bytes,
            queues,
            cursors,
        );
        spool.save_and_reclaim_all()?;
        spool.import_redeliveries()?;
        Ok(spool)
    }

    /// A spool that keeps everything in memory (nothing survives the process): for tests,
    /// benchmarks and embedding.
    pub fn in_memory(max_bytes: u64, pipes: &[PipeConfig]) -> Spool {
        let mut queues: BTreeMap<EventType, QueueLog> = EventType::ALL
            .into_iter()
            .map(|q| (q, QueueLog::in_memory(q, segment_max(max_bytes))))
            .collect();
        let cursors = recover_cursors(&mut queues, Some(&Positions::new()), pipes);
        Spool::assemble(None, None, max_bytes, queues, cursors)
    }

    fn assemble(
        dir: Option<PathBuf>,
        dir_lock: Option<lock::DirLock>,
        max_bytes: u64,
        queues: BTreeMap<EventType, QueueLog>,
        cursors: Cursors,
    ) -> Spool {
        let bytes = queues.values().map(QueueLog::bytes).sum();
        let names: Vec<String> = cursors.pipes.iter().map(|(n, _)| n.clone()).collect();
        Spool {
            redeliveries: Mutex::new(Redeliveries::new(dir.as_deref(), &names)),
            dir,
            max_bytes,
            appending: queues.keys().map(|q| (*q, Mutex::new(()))).collect(),
            queues: queues
                .into_iter()
                .map(|(q, l)| (q, Mutex::new(l)))
                .collect(),
            bytes: AtomicU64::new(bytes),
            dead_lettered: cursors.pipes.iter().map(|_| AtomicU64::new(0)).collect(),
            cursors: Mutex::new(cursors),
            positions_file: Mutex::new(None),
            appended: watch::channel(0).0,
            freed: watch::channel(0).0,
            _lock: dir_lock,
        }
    }

    /// The spool directory (`None` for an in-memory spool).
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// The size bound, in bytes.
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// Bytes in the segment files.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::SeqCst)
    }

    /// Whether the spool reached its bound (pulling should pause).
    pub fn is_full(&self) -> bool {
        self.bytes() >= self.max_bytes
    }

    /// Appends events pulled from `queue` and flushes them to the disk; only then can pipes
    /// read them. On failure, the events at the front that were appended are readable and the
    /// error says how many there were.
    pub fn append(&self, queue: EventType, events: &[Event]) -> Result<(), (usize, SpoolError)> {
        if events.is_empty() {
            return Ok(());
        }
        let (Some(log), Some(appending)) = (self.queues.get(&queue), self.appending.get(&queue))
        else {
            return Err((0, SpoolError(format!("spool has no queue {queue}"))));
        };
        let fail = |e: std::io::Error| {
            SpoolError(format!(
                "{}: cannot append {queue} events: {e}",
                self.name()
            ))
        };
        let _appending = lock(appending);
        let written = {
            let mut log = lock(log);
            let before = log.bytes();
            let written = log.write(events);
            self.bytes.fetch_add(log.bytes() - before, Ordering::SeqCst);
            written
        };
        // Flushed without the log's lock, so pipes go on reading what is already visible. If
        // the flush fails, nothing is published now: the events are appended again by the
        // caller's retry (a later flush may publish both copies: a duplicate, never a loss).
        written.sync().map_err(|e| (0, fail(e)))?;
        lock(log).publish(written.end);
        self.appended.send_modify(|n| *n += 1);
        match written.error {
            None => Ok(()),
            Some(e) => Err((written.count, fail(e))),
        }
    }

    /// Up to `max_per_queue` undelivered events of each queue pipe `pipe` (an index into the
    /// pipes given at open) reads, queue after queue in its `From` order.
    pub fn read(&self, pipe: usize, max_per_queue: usize) -> Result<Vec<Event>, SpoolError> {
        let wanted: Vec<(EventType, u64)> = {
            let cursors = lock(&self.cursors);
            let Some(next) = cursors.next.get(pipe) else {
                return Ok(Vec::new());
            };
            cursors.pipes[pipe]
                .1
                .iter()
                .filter_map(|q| next.get(q).map(|n| (*q, *n)))
                .collect()
        };
        let mut events = Vec::new();
        let mut skipped = Vec::new();
        for (queue, mut from) in wanted {
            let Some(log) = self.queues.get(&queue) else {
                continue;
            };
            loop {
                let (got, end) = lock(log).read(from, max_per_queue).map_err(|e| {
                    SpoolError(format!("{}: cannot read {queue} events: {e}", self.name()))
                })?;
                if !got.is_empty() || end <= from {
                    events.extend(got);
                    break;
                }
                // Only damaged records or missing ones there: the pipe moves past them.
                from = end;
                skipped.push((queue, end));
            }
        }
        if !skipped.is_empty() {
            let mut cursors = lock(&self.cursors);
            if let Some(next) = cursors.next.get_mut(pipe) {
                for (queue, end) in &skipped {
                    if let Some(position) = next.get_mut(queue) {
                        *position = (*position).max(*end);
                    }
                }
            }
            self.save(&cursors)?;
            self.reclaim_after_moving(&cursors, skipped.iter().map(|(q, _)| *q));
        }
        if events.is_empty() {
            // The pipe's queues are done: its redeliveries, if any.
            events = lock(&self.redeliveries).take(pipe, max_per_queue);
        }
        Ok(events)
    }

    /// Loads the dead letters put back for the pipes since the last call (by
    /// `--redeliver-dead-letter`, see [`redeliver`]), logs how many each pipe got, and wakes
    /// the pipes; returns how many events were loaded.
    pub fn import_redeliveries(&self) -> Result<usize, SpoolError> {
        let imported = lock(&self.redeliveries)
            .import()
            .map_err(|e| SpoolError(format!("{}: cannot load redeliveries: {e}", self.name())))?;
        let names = lock(&self.cursors).pipes.clone();
        let mut total = 0;
        for (index, count) in imported {
            let name = names.get(index).map_or("", |(n, _)| n.as_str());
            tracing::info!("pipe {name}: {count} dead letters to redeliver");
            total += count;
        }
        if total > 0 {
            self.appended.send_modify(|n| *n += 1);
        }
        Ok(total)
    }

    /// How many events pipe `pipe` has not delivered.
    pub fn pending(&self, pipe: usize) -> u64 {
        let redeliveries = lock(&self.redeliveries).pending(pipe);
        let cursors = lock(&self.cursors);
        let Some(next) = cursors.next.get(pipe) else {
            return 0;
        };
        let spooled: u64 = next
            .iter()
            .map(|(q, n)| {
                self.queues
                    .get(q)
                    .map_or(0, |l| lock(l).end().saturating_sub(*n))
            })
            .sum();
        spooled + redeliveries
    }

    /// How many events pipe `pipe` has not delivered, and their bytes in the spool.
    pub fn backlog(&self, pipe: usize) -> (u64, u64) {
        let cursors = lock(&self.cursors);
        let Some(next) = cursors.next.get(pipe) else {
            return (0, 0);
        };
        next.iter()
            .filter_map(|(q, n)| self.queues.get(q).map(|l| (lock(l), *n)))
            .fold((0, 0), |(events, bytes), (log, n)| {
                (
                    events + log.end().saturating_sub(n),
                    bytes + log.bytes_from(n),
                )
            })
    }

    /// Marks `delivered`, a front part of what [`Spool::read`] last returned for `pipe`, as
    /// delivered: moves the pipe's positions, saves them, and reclaims space no pipe needs.
    pub fn advance(&self, pipe: usize, delivered: &[Event]) -> Result<(), SpoolError> {
        let redelivered = delivered.iter().filter(|e| e.is_redelivered()).count();
        if redelivered > 0 {
            lock(&self.redeliveries)
                .advance(pipe, redelivered)
                .map_err(|e| {
                    SpoolError(format!("{}: cannot update redeliveries: {e}", self.name()))
                })?;
        }
        if redelivered == delivered.len() {
            return Ok(());
        }
        let delivered = delivered.iter().filter(|e| !e.is_redelivered());
        let was_full = self.is_full();
        let mut cursors = lock(&self.cursors);
        let mut queues = std::collections::BTreeSet::new();
        if let Some(next) = cursors.next.get_mut(pipe) {
            for event in delivered {
                queues.insert(event.event_type());
                if let Some(position) = next.get_mut(&event.event_type()) {
                    // By sequence number: damaged records and gaps hold no event.
                    *position = match event.spool_seq() {
                        Some(seq) => (*position).max(seq + 1),
                        None => *position + 1,
                    };
                }
            }
        }
        self.save(&cursors)?;
        self.reclaim_after_moving(&cursors, queues);
        drop(cursors);
        if was_full && !self.is_full() {
            self.freed.send_modify(|n| *n += 1);
        }
        Ok(())
    }

    /// Appends `event`, which pipe `pipe` rejected for good, to the dead-letter file, and
    /// returns where it went (for an in-memory spool, the log: there is no file).
    pub fn dead_letter(
        &self,
        pipe: usize,
        event: &Event,
        reason: &str,
    ) -> Result<String, SpoolError> {
        let name = lock(&self.cursors)
            .pipes
            .get(pipe)
            .map(|(n, _)| n.clone())
            .unwrap_or_default();
        let line = dead_letter::line(&name, event, reason);
        let place = match &self.dir {
            Some(dir) => {
                let path = dir.join(DEAD_LETTER_FILE);
                dead_letter::append(&path, &line).map_err(|e| {
                    SpoolError(format!(
                        "cannot write the dead letter to {}: {e}",
                        path.display()
                    ))
                })?;
                path.display().to_string()
            }
            None => {
                tracing::error!("dead letter: {line}");
                "the log".to_string()
            }
        };
        if let Some(count) = self.dead_lettered.get(pipe) {
            count.fetch_add(1, Ordering::Relaxed);
        }
        Ok(place)
    }

    /// How many events pipe `pipe` sent to the dead-letter file since the spool was opened.
    pub fn dead_lettered(&self, pipe: usize) -> u64 {
        self.dead_lettered
            .get(pipe)
            .map_or(0, |count| count.load(Ordering::Relaxed))
    }

    /// Appends `events`, pulled from `queue` but never spooled (the broker is stopping and the
    /// spool cannot be written), to the dead-letter file with `reason` and an empty pipe name,
    /// and returns where they went (for an in-memory spool, the log).
    pub fn dead_letter_unspooled(
        &self,
        queue: EventType,
        events: &[Event],
        reason: &str,
    ) -> Result<String, SpoolError> {
        let reason = format!("pulled from {queue} but not spooled: {reason}");
        let lines: Vec<String> = events
            .iter()
            .map(|e| dead_letter::line("", e, &reason))
            .collect();
        self.append_dead_letters(&lines)
    }

    /// Appends the raw `answer` of a pull of `queue` that cannot be read (see
    /// docs/reliability.md, "API answers"), with `reason`, to the dead-letter file as one line,
    /// and returns where it went (for an in-memory spool, the log). The events in it are gone
    /// from the API's queue: this line is the only copy, so when the file cannot be written the
    /// line goes to the log instead, in ASCII with every other character escaped (the log
    /// escapes control characters its own way, which would change the JSON).
    pub fn dead_letter_answer(
        &self,
        queue: EventType,
        answer: &[u8],
        reason: &str,
    ) -> Result<String, SpoolError> {
        let line = dead_letter::damaged_line(queue, answer, reason);
        self.append_dead_letters(std::slice::from_ref(&line))
            .inspect_err(|_| {
                let ascii = crate::encode::encode_python_compact(&line).unwrap_or(line);
                tracing::error!("dead letter not written: {ascii}");
            })
    }

    /// Appends `lines` to the dead-letter file in one write, or logs them for an in-memory
    /// spool; returns where they went.
    fn append_dead_letters(&self, lines: &[String]) -> Result<String, SpoolError> {
        match &self.dir {
            Some(dir) => {
                let path = dir.join(DEAD_LETTER_FILE);
                let text = match lines {
                    [one] => std::borrow::Cow::Borrowed(one.as_str()),
                    _ => std::borrow::Cow::Owned(lines.join("\n")),
                };
                dead_letter::append(&path, &text).map_err(|e| {
                    SpoolError(format!(
                        "cannot write the dead letters to {}: {e}",
                        path.display()
                    ))
                })?;
                Ok(path.display().to_string())
            }
            None => {
                for line in lines {
                    tracing::error!("dead letter: {line}");
                }
                Ok("the log".to_string())
            }
        }
    }

    /// A receiver that changes whenever events are appended.
    pub fn watch_appended(&self) -> watch::Receiver<u64> {
        self.appended.subscribe()
    }

    /// A receiver that changes whenever a full spool got room again.
    pub fn watch_freed(&self) -> watch::Receiver<u64> {
        self.freed.subscribe()
    }

    fn name(&self) -> String {
        match &self.dir {
            Some(dir) => format!("spool {}", dir.display()),
            None => "in-memory spool".to_string(),
        }
    }

    fn save(&self, cursors: &Cursors) -> Result<(), SpoolError> {
        let Some(dir) = &self.dir else {
            return Ok(());
        };
        let path = dir.join("positions");
        let mut file = lock(&self.positions_file);
        let result = match &mut *file {
            Some(file) => positions::overwrite(file, &cursors.as_positions()),
            None => std::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .and_then(|mut opened| {
                    positions::overwrite(&mut opened, &cursors.as_positions())?;
                    *file = Some(opened);
                    Ok(())
                }),
        };
        if result.is_err() {
            *file = None;
        }
        result.map_err(|e| SpoolError(format!("cannot save {}: {e}", path.display())))
    }

    /// Reclaims what `queues` no longer need once positions moved and were saved: a segment
    /// that cannot be deleted now is only logged (the delivery is done), stays counted in the
    /// spool's size, and is tried again after the next delivery.
    fn reclaim_after_moving(&self, cursors: &Cursors, queues: impl IntoIterator<Item = EventType>) {
        for queue in queues {
            if let Err(e) = self.reclaim(cursors, queue) {
                tracing::warn!("{e} (tried again after the next delivery)");
            }
        }
    }

    fn reclaim(&self, cursors: &Cursors, queue: EventType) -> Result<(), SpoolError> {
        let Some(log) = self.queues.get(&queue) else {
            return Ok(());
        };
        let mut log = lock(log);
        let upto = cursors.low_water(queue).unwrap_or(log.end());
        let before = log.bytes();
        let result = log.reclaim(upto);
        self.bytes.fetch_sub(before - log.bytes(), Ordering::SeqCst);
        result.map_err(|e| {
            SpoolError(format!(
                "{}: cannot reclaim {queue} segments: {e}",
                self.name()
            ))
        })
    }

    fn save_and_reclaim_all(&self) -> Result<(), SpoolError> {
        let cursors = lock(&self.cursors);
        if let Some(dir) = &self.dir {
            let path = dir.join("positions");
            positions::write(&path, &cursors.as_positions(), true)
                .map_err(|e| SpoolError(format!("cannot save {}: {e}", path.display())))?;
        }
        for queue in EventType::ALL {
            self.reclaim(&cursors, queue)?;
        }
        Ok(())
    }
}

/// Writes the bytes of a damaged record found at open to the dead-letter file, so they can be
/// recovered by hand, and logs what happened.
fn keep_damaged(dir: &Path, queue: EventType, damage: &segment::Damage) {
    if damage.bytes.is_empty() {
        tracing::warn!("{}", damage.reason);
        return;
    }
    let path = dir.join(DEAD_LETTER_FILE);
    let line = dead_letter::damaged_line(queue, &damage.bytes, &damage.reason);
    match dead_letter::append(&path, &line) {
        Ok(()) => tracing::error!(
            "{}: its bytes were written to {}",
            damage.reason,
            path.display()
        ),
        Err(e) => tracing::error!(
            "{}: cannot write its bytes to {}: {e}",
            damage.reason,
            path.display()
        ),
    }
}

/// Creates `dir` (and missing parents, mode 0700), flushing the parent of each new directory
/// so that the new name survives a power loss.
fn create_dir_durably(dir: &Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    create_dir_durably(parent)?;
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => return Ok(()),
        Err(e) => return Err(e),
    }
    std::fs::File::open(parent)?.sync_all()
}

/// The segment size for a spool bound: small enough that a small spool can reclaim space.
fn segment_max(max_bytes: u64) -> u64 {
    (max_bytes / 8).clamp(4096, SEGMENT_MAX)
}

/// Each configured pipe's positions, from what was saved: a pipe or queue not saved starts at
/// the end (it gets what is pulled from now on), unless nothing was saved at all, when every
/// pipe starts at the oldest spooled event. Positions of pipes no longer configured are dropped
/// with a log line.
fn recover_cursors(
    queues: &mut BTreeMap<EventType, QueueLog>,
    saved: Option<&Positions>,
    pipes: &[PipeConfig],
) -> Cursors {
    if let Some(saved) = saved {
        for next in saved.values().flat_map(|q| q.iter()) {
            if let Some(log) = queues.get_mut(next.0) {
                log.raise_end(*next.1);
            }
        }
    }
    let spooled: u64 = queues.values().map(|l| l.end() - l.start()).sum();
    if saved.is_none() && spooled > 0 {
        tracing::warn!(
            "spool: no saved positions: every pipe starts at the oldest of {spooled} spooled events"
        );
    }
    let mut cursors = Cursors {
        pipes: Vec::new(),
        next: Vec::new(),
    };
    for pipe in pipes {
        let saved_pipe = saved.and_then(|s| positions::of_pipe(s, &pipe.name));
        let mut next = BTreeMap::new();
        for queue in &pipe.from {
            let Some(log) = queues.get(queue) else {
                continue;
            };
            let position = match (saved, saved_pipe.and_then(|p| p.get(queue))) {
                (_, Some(n)) => (*n).clamp(log.start(), log.end()),
                (None, None) => log.start(),
                (Some(_), None) => log.end(),
            };
            next.insert(*queue, position);
        }
        cursors.pipes.push((pipe.name.clone(), pipe.from.clone()));
        cursors.next.push(next);
    }
    if let Some(saved) = saved {
        for (name, next) in saved {
            if pipes.iter().any(|p| p.name.eq_ignore_ascii_case(name)) {
                continue;
            }
            let dropped: u64 = next
                .iter()
                .filter_map(|(q, n)| {
                    queues
                        .get(q)
                        .map(|l| l.end().saturating_sub((*n).max(l.start())))
                })
                .sum();
            tracing::warn!(
                "pipe {name} is no longer in the config: dropped its spool position and {dropped} undelivered events"
            );
        }
    }
    cursors
}

#[cfg(test)]
mod tests;

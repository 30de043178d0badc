//! A spool on [redb](https://www.redb.org), to compare with the broker's segment files
//! (`broker_core::spool::Spool`) in `spool-choice`. Measurement code only: a prototype of the
//! other choice, doing the same work with the same durability.
//!
//! - Table `events`: key `(queue, sequence number)`, value the event's output line.
//! - Table `positions`: key `(pipe, queue)`, value the next sequence number the pipe has not
//!   delivered.
//! - Table `ends`: key `queue`, value the sequence number the next appended event gets.
//!
//! [`RedbSpool::append`] is one write transaction per batch with [`Durability::Immediate`]
//! (flushed to the disk before it returns, like the segment spool's `fdatasync`).
//! [`RedbSpool::advance`] moves a pipe's positions and deletes the events every pipe is past in
//! one write transaction with the durability given at open: the segment spool rewrites its
//! `positions` file without flushing it (a crash can only repeat events), which
//! [`Durability::None`] matches; [`Durability::Immediate`] flushes each advance.

use std::path::{Path, PathBuf};

use broker_core::{Event, EventType};
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};

const EVENTS: TableDefinition<(u8, u64), &str> = TableDefinition::new("events");
const POSITIONS: TableDefinition<(&str, u8), u64> = TableDefinition::new("positions");
const ENDS: TableDefinition<u8, u64> = TableDefinition::new("ends");

/// A redb error of any kind.
pub type Error = redb::Error;

/// The spool on redb: one database file.
pub struct RedbSpool {
    db: Database,
    path: PathBuf,
    /// Pipe names and the queues they read.
    pipes: Vec<(String, Vec<EventType>)>,
    /// The next sequence number of each queue (a copy of table `ends`).
    next: [u64; 4],
    /// The oldest sequence number still stored, per queue.
    start: [u64; 4],
    /// Each pipe's positions (a copy of table `positions`).
    positions: Vec<[u64; 4]>,
    advance_durability: Durability,
}

/// The index of a queue in [`EventType::ALL`] (its key in the tables).
fn index(queue: EventType) -> u8 {
    EventType::ALL
        .iter()
        .position(|q| *q == queue)
        .expect("one of the four queues") as u8
}

impl RedbSpool {
    /// Creates (or opens) the database at `path` for `pipes` (name and queues read), with a page
    /// cache of `cache_bytes`; advances commit with `advance_durability`. A pipe without a saved
    /// position starts at the end of each queue (and that position is saved).
    pub fn open(
        path: &Path,
        pipes: &[(String, Vec<EventType>)],
        cache_bytes: usize,
        advance_durability: Durability,
    ) -> Result<RedbSpool, Error> {
        let db = Database::builder()
            .set_cache_size(cache_bytes)
            .create(path)?;
        let mut next = [0u64; 4];
        let mut positions = Vec::new();
        let txn = db.begin_write()?;
        {
            let ends = txn.open_table(ENDS)?;
            for (i, n) in next.iter_mut().enumerate() {
                *n = ends.get(i as u8)?.map_or(0, |v| v.value());
            }
            let mut saved = txn.open_table(POSITIONS)?;
            for (name, _) in pipes {
                let mut pipe = next;
                for (i, p) in pipe.iter_mut().enumerate() {
                    let key = (name.as_str(), i as u8);
                    let found = saved.get(key)?.map(|v| v.value());
                    match found {
                        Some(v) => *p = v,
                        None => {
                            saved.insert(key, *p)?;
                        }
                    }
                }
                positions.push(pipe);
            }
            txn.open_table(EVENTS)?;
        }
        txn.commit()?;
        let start = std::array::from_fn(|q| {
            pipes
                .iter()
                .zip(&positions)
                .filter(|((_, from), _)| from.iter().any(|t| index(*t) as usize == q))
                .map(|(_, p)| p[q])
                .min()
                .unwrap_or(next[q])
        });
        Ok(RedbSpool {
            db,
            path: path.to_path_buf(),
            pipes: pipes.to_vec(),
            next,
            start,
            positions,
            advance_durability,
        })
    }

    /// Appends `events` of `queue` in one write transaction, flushed to the disk on return.
    pub fn append(&mut self, queue: EventType, events: &[Event]) -> Result<(), Error> {
        let q = index(queue);
        let mut txn = self.db.begin_write()?;
        txn.set_durability(Durability::Immediate)?;
        let mut seq = self.next[q as usize];
        {
            let mut table = txn.open_table(EVENTS)?;
            for event in events {
                table.insert((q, seq), event.line())?;
                seq += 1;
            }
            txn.open_table(ENDS)?.insert(q, seq)?;
        }
        txn.commit()?;
        self.next[q as usize] = seq;
        Ok(())
    }

    /// Up to `max_per_queue` undelivered events of each queue pipe `pipe` reads, queue after
    /// queue.
    pub fn read(&self, pipe: usize, max_per_queue: usize) -> Result<Vec<Event>, Error> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(EVENTS)?;
        let mut events = Vec::new();
        for queue in &self.pipes[pipe].1 {
            let q = index(*queue);
            let from = self.positions[pipe][q as usize];
            for entry in table.range((q, from)..(q, u64::MAX))?.take(max_per_queue) {
                let (_, line) = entry?;
                events.push(Event::from_encoded_line(*queue, line.value()));
            }
        }
        Ok(events)
    }

    /// Marks `delivered` (a front part of what [`RedbSpool::read`] returned for `pipe`) as
    /// delivered: saves the pipe's positions and deletes the events no pipe still needs, in one
    /// write transaction.
    pub fn advance(&mut self, pipe: usize, delivered: &[Event]) -> Result<(), Error> {
        if delivered.is_empty() {
            return Ok(());
        }
        let mut counts = [0u64; 4];
        for event in delivered {
            counts[index(event.event_type()) as usize] += 1;
        }
        let mut txn = self.db.begin_write()?;
        txn.set_durability(self.advance_durability)?;
        {
            let mut positions = txn.open_table(POSITIONS)?;
            let mut events = txn.open_table(EVENTS)?;
            for (q, count) in counts.iter().enumerate().filter(|(_, c)| **c > 0) {
                self.positions[pipe][q] += count;
                positions.insert(
                    (self.pipes[pipe].0.as_str(), q as u8),
                    self.positions[pipe][q],
                )?;
                let low = self
                    .pipes
                    .iter()
                    .zip(&self.positions)
                    .filter(|((_, from), _)| from.iter().any(|t| index(*t) as usize == q))
                    .map(|(_, p)| p[q])
                    .min()
                    .unwrap_or(self.next[q]);
                if low > self.start[q] {
                    let q8 = q as u8;
                    events.retain_in((q8, self.start[q])..(q8, low), |_, _| false)?;
                    self.start[q] = low;
                }
            }
        }
        txn.commit()?;
        Ok(())
    }

    /// Makes every earlier commit durable (an empty transaction with
    /// [`Durability::Immediate`]), as a shutdown would.
    pub fn sync(&mut self) -> Result<(), Error> {
        let mut txn = self.db.begin_write()?;
        txn.set_durability(Durability::Immediate)?;
        txn.commit()?;
        Ok(())
    }

    /// Gives free space at the end of the file back to the file system; returns whether it
    /// changed anything.
    pub fn compact(&mut self) -> Result<bool, Error> {
        Ok(self.db.compact()?)
    }

    /// How many events pipe `pipe` has not delivered.
    pub fn pending(&self, pipe: usize) -> u64 {
        self.pipes[pipe]
            .1
            .iter()
            .map(|t| {
                let q = index(*t) as usize;
                self.next[q] - self.positions[pipe][q]
            })
            .sum()
    }

    /// The database file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

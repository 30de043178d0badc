//! One queue's log: its segments, oldest first, and the next sequence number.

use std::collections::VecDeque;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::record;
use super::segment::{self, Damage, Segment};
use crate::event::{Event, EventType};

/// What [`QueueLog::write`] wrote: how many events, up to which sequence number, the files to
/// flush, and the error that stopped it early, if one did.
pub(crate) struct Written {
    pub(crate) count: usize,
    pub(crate) end: u64,
    files: Vec<Arc<std::fs::File>>,
    pub(crate) error: Option<io::Error>,
}

impl Written {
    /// Flushes the written records to the disk.
    pub(crate) fn sync(&self) -> io::Result<()> {
        for file in &self.files {
            file.sync_data()?;
        }
        Ok(())
    }
}

/// The append-only log of one queue's events.
pub(crate) struct QueueLog {
    queue: EventType,
    /// `None` for an in-memory spool.
    dir: Option<PathBuf>,
    segments: VecDeque<Segment>,
    /// The sequence number after the last record written.
    next: u64,
    /// The sequence number after the last record flushed to the disk: readers see no further.
    visible: u64,
    segment_max: u64,
    bytes: u64,
}

impl QueueLog {
    /// An empty in-memory log.
    pub(crate) fn in_memory(queue: EventType, segment_max: u64) -> QueueLog {
        QueueLog {
            queue,
            dir: None,
            segments: VecDeque::new(),
            next: 0,
            visible: 0,
            segment_max,
            bytes: 0,
        }
    }

    /// Opens (creating the directory if needed) the log in `dir`. Returns warnings about files
    /// that were repaired or ignored.
    pub(crate) fn open(
        dir: &Path,
        queue: EventType,
        segment_max: u64,
    ) -> io::Result<(QueueLog, Vec<String>, Vec<Damage>)> {
        super::create_dir_durably(dir)?;
        let mut warnings = Vec::new();
        let mut firsts = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name();
            match name.to_str().and_then(segment::parse_file_name) {
                Some(first) => firsts.push(first),
                None => warnings.push(format!(
                    "spool: ignoring {}, which is not a segment file",
                    entry.path().display()
                )),
            }
        }
        firsts.sort_unstable();
        firsts.dedup();
        let mut segments = VecDeque::new();
        let mut damages = Vec::new();
        let mut next = 0;
        let mut bytes = 0;
        for (i, &first) in firsts.iter().enumerate() {
            let path = dir.join(segment::file_name(first));
            if first < next {
                warnings.push(format!(
                    "spool: ignoring {}, which overlaps the segment before it",
                    path.display()
                ));
                continue;
            }
            if first > next && !segments.is_empty() {
                warnings.push(format!(
                    "spool: {} {queue} events are missing before {} (sequence numbers {next} to {}: a segment file is gone); reading goes on after them",
                    first - next,
                    path.display(),
                    first - 1
                ));
            }
            let (seg, damage) = Segment::open(&path, first, firsts.get(i + 1).copied())?;
            damages.extend(damage);
            next = seg.end();
            bytes += seg.len();
            segments.push_back(seg);
        }
        Ok((
            QueueLog {
                queue,
                dir: Some(dir.to_path_buf()),
                segments,
                next,
                visible: next,
                segment_max,
                bytes,
            },
            warnings,
            damages,
        ))
    }

    /// The oldest sequence number still kept (the end when the log is empty).
    pub(crate) fn start(&self) -> u64 {
        self.segments.front().map_or(self.next, Segment::first)
    }

    /// The sequence number after the last event readers may see.
    pub(crate) fn end(&self) -> u64 {
        self.visible
    }

    /// Makes sure numbering goes on at least from `floor` (a position saved before the segments
    /// holding it were reclaimed).
    pub(crate) fn raise_end(&mut self, floor: u64) {
        if self.segments.is_empty() {
            self.next = self.next.max(floor);
            self.visible = self.next;
        }
    }

    /// Bytes in the log's segments.
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Bytes of the records from sequence number `from` on.
    pub(crate) fn bytes_from(&self, from: u64) -> u64 {
        self.segments.iter().map(|s| s.len_from(from)).sum()
    }

    /// Writes `events` at the end of the log, not yet flushed nor visible to readers: flush
    /// the [`Written`] files (without this log's lock), then [`QueueLog::publish`] its end.
    pub(crate) fn write(&mut self, events: &[Event]) -> Written {
        let mut written = Written {
            count: 0,
            end: self.next,
            files: Vec::new(),
            error: None,
        };
        let mut buf = Vec::new();
        let mut sizes = Vec::new();
        let mut rest = events;
        while !rest.is_empty() {
            let room = match self.segments.back() {
                Some(seg) if seg.len() < self.segment_max => self.segment_max - seg.len(),
                _ => {
                    let seg = match &self.dir {
                        Some(dir) => match Segment::create(dir, self.next) {
                            Ok(seg) => seg,
                            Err(e) => {
                                written.error = Some(e);
                                return written;
                            }
                        },
                        None => Segment::in_memory(self.next),
                    };
                    self.segments.push_back(seg);
                    self.segment_max
                }
            };
            buf.clear();
            sizes.clear();
            let mut taken = 0;
            for event in rest {
                let size = (record::HEADER + event.line().len()) as u64;
                if !sizes.is_empty() && buf.len() as u64 + size > room {
                    break;
                }
                sizes.push(record::encode(event.line(), &mut buf));
                taken += 1;
            }
            let Some(seg) = self.segments.back_mut() else {
                break;
            };
            if let Err(e) = seg.append(&buf, &sizes) {
                written.error = Some(e);
                return written;
            }
            if let Some(file) = seg.file() {
                if !written.files.iter().any(|f| Arc::ptr_eq(f, &file)) {
                    written.files.push(file);
                }
            }
            self.next = seg.end();
            self.bytes += buf.len() as u64;
            written.count += taken;
            written.end = self.next;
            rest = &rest[taken..];
        }
        written
    }

    /// Lets readers see the events written up to `end` (once they are on the disk).
    pub(crate) fn publish(&mut self, end: u64) {
        self.visible = self.visible.max(end.min(self.next));
    }

    /// Writes, flushes and publishes `events` (for callers that hold the lock anyway).
    #[cfg(test)]
    pub(crate) fn append(&mut self, events: &[Event]) -> Result<(), (usize, io::Error)> {
        let written = self.write(events);
        written.sync().map_err(|e| (0, e))?;
        self.publish(written.end);
        match written.error {
            None => Ok(()),
            Some(e) => Err((written.count, e)),
        }
    }

    /// The intact events among the sequence numbers `from..from + max`, each marked with its
    /// sequence number, and the sequence number after the range looked at. A gap between
    /// segments is passed over, so the range starts at the first number still held.
    pub(crate) fn read(&self, from: u64, max: usize) -> io::Result<(Vec<Event>, u64)> {
        let from = match self.segments.iter().find(|seg| seg.end() > from) {
            Some(seg) => from.max(seg.first()),
            None => from.max(self.visible),
        };
        let to = from.saturating_add(max as u64).min(self.visible).max(from);
        let mut events = Vec::new();
        for seg in &self.segments {
            if seg.end() <= from || seg.first() >= to {
                continue;
            }
            let lines = seg.read(from, to)?;
            events.extend(
                lines.into_iter().map(|(seq, line)| {
                    Event::from_encoded_line(self.queue, line).at_spool_seq(seq)
                }),
            );
        }
        Ok((events, to))
    }

    /// Deletes the segments whose every record is before `upto` (at most the visible end).
    /// A segment is forgotten (and its bytes no longer counted) only once its file is gone: on
    /// failure it stays, for the next reclaim to try again.
    pub(crate) fn reclaim(&mut self, upto: u64) -> io::Result<()> {
        let upto = upto.min(self.visible);
        while let Some(seg) = self.segments.front() {
            if seg.end() > upto {
                break;
            }
            seg.remove()
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", seg.describe())))?;
            self.bytes -= seg.len();
            self.segments.pop_front();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(queue: EventType, range: std::ops::Range<u32>) -> Vec<Event> {
        range
            .map(|i| Event::from_encoded_line(queue, format!("{{\"id\":{i}}}")))
            .collect()
    }

    fn ids(events: &[Event]) -> Vec<String> {
        events.iter().map(|e| e.id().unwrap()).collect()
    }

    #[test]
    fn rolls_segments_reads_across_them_and_reclaims() {
        let dir = tempfile::tempdir().unwrap();
        let q = EventType::Alerts;
        let (mut log, warnings, _) = QueueLog::open(dir.path(), q, 64).unwrap();
        assert!(warnings.is_empty());
        log.append(&events(q, 0..10)).unwrap();
        log.append(&events(q, 10..12)).unwrap();
        assert_eq!((log.start(), log.end()), (0, 12));
        let files = std::fs::read_dir(dir.path()).unwrap().count();
        assert!(files > 1, "{files} segment files");
        assert_eq!(
            ids(&log.read(3, 6).unwrap().0),
            ["3", "4", "5", "6", "7", "8"]
        );
        assert_eq!(ids(&log.read(11, 6).unwrap().0), ["11"]);

        log.reclaim(7).unwrap();
        assert!(log.start() > 0 && log.start() <= 7);
        let (reopened, warnings, _) = QueueLog::open(dir.path(), q, 64).unwrap();
        assert!(warnings.is_empty());
        assert_eq!((reopened.start(), reopened.end()), (log.start(), 12));
        assert_eq!(reopened.bytes(), log.bytes());

        log.reclaim(12).unwrap();
        assert_eq!((log.start(), log.end(), log.bytes()), (12, 12, 0));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        let (mut empty, _, _) = QueueLog::open(dir.path(), q, 64).unwrap();
        empty.raise_end(12);
        empty.append(&events(q, 12..13)).unwrap();
        assert_eq!(ids(&empty.read(12, 5).unwrap().0), ["12"]);
    }

    #[test]
    fn a_missing_middle_segment_is_logged_and_read_over() {
        let dir = tempfile::tempdir().unwrap();
        let q = EventType::Alerts;
        let (mut log, _, _) = QueueLog::open(dir.path(), q, 64).unwrap();
        log.append(&events(q, 0..12)).unwrap();
        let firsts: Vec<u64> = log.segments.iter().map(Segment::first).collect();
        assert!(firsts.len() >= 3, "{firsts:?}");
        std::fs::remove_file(dir.path().join(segment::file_name(firsts[1]))).unwrap();
        let (log, warnings, _) = QueueLog::open(dir.path(), q, 64).unwrap();
        let missing = firsts[2] - firsts[1];
        assert_eq!(warnings.len(), 1);
        assert!(
            warnings[0].contains(&format!("{missing} alerts events are missing")),
            "{warnings:?}"
        );
        // A read from inside the gap starts after it, each event with its own number.
        let (got, end) = log.read(firsts[1], 3).unwrap();
        assert_eq!(got[0].spool_seq(), Some(firsts[2]));
        assert_eq!(ids(&got)[0], firsts[2].to_string());
        assert_eq!(end, firsts[2] + 3);
    }

    #[test]
    fn in_memory_log_behaves_the_same() {
        let q = EventType::LogAuthn;
        let mut log = QueueLog::in_memory(q, 64);
        log.append(&events(q, 0..10)).unwrap();
        assert_eq!(ids(&log.read(8, 5).unwrap().0), ["8", "9"]);
        log.reclaim(10).unwrap();
        assert_eq!((log.start(), log.end(), log.bytes()), (10, 10, 0));
    }
}

//! One segment of a queue's log: consecutive records in one append-only file (or, for an
//! in-memory spool, one buffer).

use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::record::{self, Decoded};

/// Where a segment's bytes live.
enum Backing {
    File { file: Arc<File>, path: PathBuf },
    Memory(Vec<u8>),
}

/// Consecutive records, numbered from `first`.
pub(crate) struct Segment {
    first: u64,
    /// Offset of each record; record `first + i` starts at `offsets[i]`.
    offsets: Vec<u32>,
    /// Sequence numbers whose record is damaged: they hold no event.
    holes: BTreeSet<u64>,
    len: u64,
    backing: Backing,
}

/// The file name of the segment whose first record is `first`.
pub(crate) fn file_name(first: u64) -> String {
    format!("{first:020}.seg")
}

/// The first sequence number named by a segment file name, if it is one.
pub(crate) fn parse_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".seg")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

impl Segment {
    /// An empty segment kept in memory.
    pub(crate) fn in_memory(first: u64) -> Segment {
        Segment {
            first,
            offsets: Vec::new(),
            holes: BTreeSet::new(),
            len: 0,
            backing: Backing::Memory(Vec::new()),
        }
    }

    /// Creates the file of a new, empty segment in `dir` and makes its name durable.
    pub(crate) fn create(dir: &Path, first: u64) -> io::Result<Segment> {
        let path = dir.join(file_name(first));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)?;
        File::open(dir)?.sync_all()?;
        Ok(Segment {
            first,
            offsets: Vec::new(),
            holes: BTreeSet::new(),
            len: 0,
            backing: Backing::File {
                file: Arc::new(file),
                path,
            },
        })
    }

    /// Opens an existing segment file and indexes its records. `expected_end` is the first
    /// sequence number of the next segment (`None` for the last one).
    ///
    /// A damaged record is kept as a hole (its sequence number is never read) and every intact
    /// record after it is kept; its bytes are returned in a [`Damage`] for the dead-letter file.
    /// Only a torn record at the end of the last segment (a write that never finished) is cut.
    pub(crate) fn open(
        path: &Path,
        first: u64,
        expected_end: Option<u64>,
    ) -> io::Result<(Segment, Vec<Damage>)> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        let bytes = std::fs::read(path)?;
        let scan = scan(&bytes, first, expected_end);
        let mut damages = scan.damages;
        for damage in &mut damages {
            damage.reason = format!("spool segment {}: {}", path.display(), damage.reason);
        }
        if scan.len < bytes.len() as u64 {
            file.set_len(scan.len)?;
            file.sync_all()?;
        }
        Ok((
            Segment {
                first,
                offsets: scan.offsets,
                holes: scan.holes,
                len: scan.len,
                backing: Backing::File {
                    file: Arc::new(file),
                    path: path.to_path_buf(),
                },
            },
            damages,
        ))
    }

    /// The sequence number of the first record.
    pub(crate) fn first(&self) -> u64 {
        self.first
    }

    /// The sequence number after the last record.
    pub(crate) fn end(&self) -> u64 {
        self.first + self.offsets.len() as u64
    }

    /// Size in bytes.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// Bytes of the records from sequence number `from` to the end of the segment.
    pub(crate) fn len_from(&self, from: u64) -> u64 {
        let index = from.saturating_sub(self.first);
        match self.offsets.get(index as usize) {
            Some(offset) => self.len - u64::from(*offset),
            None if from > self.first => 0,
            None => self.len,
        }
    }

    /// Appends already encoded records (`sizes` gives each one's size). Not yet durable: see
    /// [`Segment::sync`]. On failure nothing is appended.
    pub(crate) fn append(&mut self, bytes: &[u8], sizes: &[usize]) -> io::Result<()> {
        match &mut self.backing {
            Backing::File { file, .. } => {
                if let Err(e) = file.write_all_at(bytes, self.len) {
                    let _ = file.set_len(self.len);
                    return Err(e);
                }
            }
            Backing::Memory(buf) => buf.extend_from_slice(bytes),
        }
        let mut at = self.len;
        for size in sizes {
            self.offsets.push(at as u32);
            at += *size as u64;
        }
        self.len = at;
        Ok(())
    }

    /// The file to flush appended records to the disk with (none for an in-memory segment),
    /// so the flush can run without holding the log's lock.
    pub(crate) fn file(&self) -> Option<Arc<File>> {
        match &self.backing {
            Backing::File { file, .. } => Some(file.clone()),
            Backing::Memory(_) => None,
        }
    }

    /// The sequence numbers and lines of the intact records `from..to` (within this segment).
    pub(crate) fn read(&self, from: u64, to: u64) -> io::Result<Vec<(u64, Arc<str>)>> {
        let from = from.max(self.first);
        let to = to.min(self.end());
        if from >= to {
            return Ok(Vec::new());
        }
        let bound = |seq: u64| match self.offsets.get((seq - self.first) as usize) {
            Some(offset) => *offset as u64,
            None => self.len,
        };
        let start = bound(from);
        let owned;
        let bytes: &[u8] = match &self.backing {
            Backing::File { file, .. } => {
                let mut buf = vec![0; (bound(to) - start) as usize];
                file.read_exact_at(&mut buf, start)?;
                owned = buf;
                &owned
            }
            Backing::Memory(buf) => &buf[start as usize..bound(to) as usize],
        };
        let mut lines = Vec::with_capacity((to - from) as usize);
        for seq in from..to {
            if self.holes.contains(&seq) {
                continue;
            }
            let at = (bound(seq) - start) as usize;
            // Checksums were checked when the segment was opened or written by this process.
            match record::split(&bytes[at..]) {
                Some((line, _)) => lines.push((seq, Arc::from(line))),
                None => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("{}: a record changed on disk", self.describe()),
                    ))
                }
            }
        }
        Ok(lines)
    }

    /// Deletes the segment's file; a file already gone counts as deleted.
    pub(crate) fn remove(&self) -> io::Result<()> {
        match &self.backing {
            Backing::File { path, .. } => match std::fs::remove_file(path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            },
            Backing::Memory(_) => Ok(()),
        }
    }

    /// The file's path, or a name for an in-memory segment (for messages).
    pub(crate) fn describe(&self) -> String {
        match &self.backing {
            Backing::File { path, .. } => path.display().to_string(),
            Backing::Memory(_) => format!("in-memory segment {}", self.first),
        }
    }
}

/// A damaged part of a segment, for the dead-letter file.
#[derive(Debug)]
pub(crate) struct Damage {
    /// What was found and what was done, in one line.
    pub(crate) reason: String,
    /// The damaged bytes (the record's line when its length field is intact).
    pub(crate) bytes: Vec<u8>,
}

/// What [`scan`] found in a segment's bytes.
pub(crate) struct Scan {
    /// Offset of each sequence number's record (or damaged bytes).
    pub(crate) offsets: Vec<u32>,
    /// Sequence numbers of damaged records.
    pub(crate) holes: BTreeSet<u64>,
    /// Bytes kept (less than the file's size when a torn tail is cut).
    pub(crate) len: u64,
    /// Damaged parts worth a dead letter.
    pub(crate) damages: Vec<Damage>,
}

/// Where the damaged record at `at` ends: its own length when the bytes after it are a record
/// (or the end) and no intact record starts inside it, else the next offset that holds an
/// intact record (or the end). The flag says whether the length field was trusted.
fn damaged_extent(bytes: &[u8], at: usize) -> (usize, bool) {
    let intact_at = |pos: usize| {
        pos == bytes.len() || matches!(record::decode(&bytes[pos..]), Decoded::Record(..))
    };
    let next_intact = (at + 1..bytes.len())
        .find(|&pos| intact_at(pos))
        .unwrap_or(bytes.len());
    if let Some(len) = bytes.get(at..at + 4) {
        let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
        let stop = at.saturating_add(record::HEADER).saturating_add(len);
        if len > 0 && stop <= next_intact && intact_at(stop) {
            return (stop, true);
        }
    }
    (next_intact, false)
}

/// How many record headers chain back from `stop` inside the damaged record at `at`: a header
/// at `p` whose length ends exactly at `stop` (or at the previous such header) is one more
/// record the damaged length field swallowed.
fn inner_headers(bytes: &[u8], at: usize, stop: usize) -> usize {
    let ends_at = |p: usize, end: usize| {
        bytes.get(p..p + 4).is_some_and(|len| {
            let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
            len > 0 && p.saturating_add(record::HEADER).saturating_add(len) == end
        })
    };
    let mut count = 0;
    let mut end = stop;
    while let Some(p) = (at + record::HEADER..end.saturating_sub(record::HEADER))
        .rev()
        .find(|&p| ends_at(p, end))
    {
        count += 1;
        end = p;
    }
    count
}

/// Indexes the records of a segment starting at sequence number `first` (see
/// [`Segment::open`]). Never panics, whatever the bytes.
pub(crate) fn scan(bytes: &[u8], first: u64, expected_end: Option<u64>) -> Scan {
    let mut offsets = Vec::new();
    let mut holes = BTreeSet::new();
    let mut damages = Vec::new();
    let mut at = 0usize;
    let mut len = bytes.len() as u64;
    // Where the holes of the first damage whose record count is unknown were put: numbers the
    // damage hid go there, so that a record after it is never numbered below its place.
    let mut unknown_count_at = None;
    // Where the first damage of any kind is: with the end known, numbers hidden by a damage
    // whose count looked certain go there (a record after it may then replay, never skip).
    let mut first_damage_at = None;
    while at < bytes.len() {
        if let Decoded::Record(_, size) = record::decode(&bytes[at..]) {
            offsets.push(at as u32);
            at += size;
            continue;
        }
        let (stop, exact) = damaged_extent(bytes, at);
        let seq = first + offsets.len() as u64;
        if !exact && stop == bytes.len() && expected_end.is_none() {
            // A write that never finished (never acknowledged): cut it off.
            damages.push(Damage {
                reason: format!("cut off a torn record at its end ({} bytes)", stop - at),
                bytes: Vec::new(),
            });
            len = at as u64;
            break;
        }
        // When the length field cannot be trusted the damaged bytes may have held several
        // records: count as many as could fit (the smallest event is `{}`), so that positions
        // saved past them err towards delivering twice, never towards skipping.
        // In a segment followed by another, the next one's name gives the count (below).
        // A trusted length may still span a second damaged record whose own header lies
        // inside: each inner header whose length ends where the next one starts counts too.
        first_damage_at.get_or_insert(offsets.len());
        let count = if exact {
            1 + inner_headers(bytes, at, stop)
        } else {
            unknown_count_at.get_or_insert(offsets.len());
            match expected_end {
                Some(_) => 1,
                None => ((stop - at) / (record::HEADER + 2)).max(1),
            }
        };
        for i in 0..count {
            holes.insert(seq + i as u64);
            offsets.push(at as u32);
        }
        let line = if exact {
            &bytes[at + record::HEADER..stop]
        } else {
            &bytes[at..stop]
        };
        damages.push(Damage {
            reason: format!(
                "skipped a damaged record at byte {at} ({} bytes, sequence number {seq}{}); the records after it are kept",
                stop - at,
                if count > 1 { format!(" and {} after it", count - 1) } else { String::new() }
            ),
            bytes: line.to_vec(),
        });
        at = stop;
    }
    // The next segment says where this one ends: numbers the damage hid are holes.
    if let (Some(expected), Some(index)) = (expected_end, unknown_count_at.or(first_damage_at)) {
        let end = first + offsets.len() as u64;
        if expected > end {
            let missing = (expected - end) as usize;
            let offset = offsets[index];
            offsets.splice(index..index, std::iter::repeat_n(offset, missing));
            holes = holes
                .into_iter()
                .map(|h| {
                    if h >= first + index as u64 {
                        h + missing as u64
                    } else {
                        h
                    }
                })
                .collect();
            for i in 0..missing {
                holes.insert(first + (index + i) as u64);
            }
        }
    }
    Scan {
        offsets,
        holes,
        len,
        damages,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(lines: &[&str]) -> (Vec<u8>, Vec<usize>) {
        let mut bytes = Vec::new();
        let sizes = lines
            .iter()
            .map(|l| record::encode(l, &mut bytes))
            .collect();
        (bytes, sizes)
    }

    #[test]
    fn append_read_reopen_and_cut_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let mut seg = Segment::create(dir.path(), 7).unwrap();
        let (bytes, sizes) = records(&["{\"a\":1}", "{\"b\":2}", "{\"c\":3}"]);
        seg.append(&bytes, &sizes).unwrap();
        seg.file().unwrap().sync_data().unwrap();
        assert_eq!((seg.first(), seg.end()), (7, 10));
        let got = seg.read(8, 100).unwrap();
        assert_eq!(
            got.iter().map(|(n, l)| (*n, &**l)).collect::<Vec<_>>(),
            [(8, "{\"b\":2}"), (9, "{\"c\":3}")]
        );
        assert!(seg.read(10, 12).unwrap().is_empty());

        // A torn write: half a record at the end.
        let path = dir.path().join(file_name(7));
        let (more, _) = records(&["{\"d\":4}"]);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        std::io::Write::write_all(&mut f, &more[..5]).unwrap();
        let (seg, damage) = Segment::open(&path, 7, None).unwrap();
        assert_eq!(seg.end(), 10);
        assert!(damage[0].reason.contains("torn record"));
        assert_eq!(std::fs::metadata(&path).unwrap().len(), seg.len());
        assert_eq!(&*seg.read(9, 10).unwrap()[0].1, "{\"c\":3}");
    }

    fn lines(seg: &Segment) -> Vec<(u64, String)> {
        let got = seg.read(seg.first(), seg.end()).unwrap();
        got.into_iter().map(|(n, l)| (n, l.to_string())).collect()
    }

    #[test]
    fn a_damaged_record_in_the_middle_is_a_hole_and_the_rest_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(file_name(0));
        let (mut bytes, sizes) = records(&["{\"a\":1}", "{\"b\":2}", "{\"c\":3}", "{\"d\":4}"]);
        bytes[sizes[0] + record::HEADER + 2] ^= 0x40; // in the line of record 1
        std::fs::write(&path, &bytes).unwrap();
        for expected_end in [None, Some(4)] {
            let (seg, damage) = Segment::open(&path, 0, expected_end).unwrap();
            assert_eq!(seg.end(), 4);
            assert_eq!(damage.len(), 1);
            assert!(
                damage[0].reason.contains("damaged record"),
                "{}",
                damage[0].reason
            );
            assert_eq!(damage[0].bytes.len(), 7);
            assert_eq!(
                lines(&seg),
                [
                    (0, "{\"a\":1}".into()),
                    (2, "{\"c\":3}".into()),
                    (3, "{\"d\":4}".into())
                ]
            );
            assert_eq!(std::fs::metadata(&path).unwrap().len(), bytes.len() as u64);
        }

        // A damaged length field: the count is unknown; the next segment says it.
        let mut bytes2 = records(&["{\"a\":1}", "{\"b\":2}", "{\"c\":3}", "{\"d\":4}"]).0;
        bytes2[sizes[0]] = 0xff;
        std::fs::write(&path, &bytes2).unwrap();
        let (seg, _) = Segment::open(&path, 0, Some(4)).unwrap();
        assert_eq!(seg.end(), 4);
        assert_eq!(
            lines(&seg),
            [
                (0, "{\"a\":1}".into()),
                (2, "{\"c\":3}".into()),
                (3, "{\"d\":4}".into())
            ]
        );
        // In the last segment, as many as could fit: later numbers only ever move up.
        let (seg, _) = Segment::open(&path, 0, None).unwrap();
        let got = lines(&seg);
        assert_eq!(got.len(), 3);
        assert!(got[1].0 >= 2 && got[2].0 == got[1].0 + 1);
    }

    #[test]
    fn names() {
        assert_eq!(file_name(42), "00000000000000000042.seg");
        assert_eq!(parse_file_name("00000000000000000042.seg"), Some(42));
        assert_eq!(parse_file_name("42.seg"), None);
        assert_eq!(parse_file_name("00000000000000000042.tmp"), None);
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    fn line() -> impl Strategy<Value = String> {
        "[a-z0-9]{0,40}".prop_map(|s| format!("{{\"id\":\"{s}\"}}"))
    }

    /// The segment bytes of `lines` and each record's offset.
    fn segment(lines: &[String]) -> (Vec<u8>, Vec<usize>) {
        let mut bytes = Vec::new();
        let mut offsets = Vec::new();
        for line in lines {
            offsets.push(bytes.len());
            record::encode(line, &mut bytes);
        }
        (bytes, offsets)
    }

    /// Flips bytes at `flips` (positions scaled to the segment) and returns which records
    /// were touched.
    fn damage(bytes: &mut [u8], offsets: &[usize], flips: &[(f64, u8)]) -> BTreeSet<usize> {
        let mut touched = BTreeSet::new();
        for (at, mask) in flips {
            let at = ((*at * bytes.len() as f64) as usize).min(bytes.len() - 1);
            bytes[at] ^= *mask;
            touched.insert(offsets.partition_point(|o| *o <= at) - 1);
        }
        touched
    }

    /// The intact records read from `bytes` as (sequence number, line).
    fn read_back(bytes: &[u8], expected_end: Option<u64>) -> Vec<(u64, String)> {
        let scan = scan(bytes, 0, expected_end);
        let kept = &bytes[..scan.len as usize];
        let seg = Segment {
            first: 0,
            offsets: scan.offsets,
            holes: scan.holes,
            len: scan.len,
            backing: Backing::Memory(kept.to_vec()),
        };
        let got = seg.read(0, seg.end()).unwrap();
        got.into_iter().map(|(n, l)| (n, l.to_string())).collect()
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics_nor_yields_a_bad_record(
            bytes in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            if let Decoded::Record(line, size) = record::decode(&bytes) {
                let crc = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
                prop_assert_eq!(crc32fast::hash(line.as_bytes()), crc);
                prop_assert_eq!(size, record::HEADER + line.len());
            }
            let _ = scan(&bytes, 0, None);
            let _ = scan(&bytes, 0, Some(3));
        }

        #[test]
        fn every_intact_record_survives_random_damage(
            lines in proptest::collection::vec(line(), 1..30),
            flips in proptest::collection::vec((0.0..1.0f64, 1..=255u8), 1..4),
            last in any::<bool>(),
        ) {
            let (mut bytes, offsets) = segment(&lines);
            let touched = damage(&mut bytes, &offsets, &flips);
            let expected_end = (!last).then_some(lines.len() as u64);
            let got = read_back(&bytes, expected_end);
            let intact: Vec<(usize, &String)> = lines
                .iter()
                .enumerate()
                .filter(|(i, _)| !touched.contains(i))
                .collect();
            // Every intact record, in order, never numbered below its place (positions saved
            // past damage can only replay), and exactly at its place with one damaged record
            // in a segment whose end the next one gives.
            let got_lines: Vec<&String> = got.iter().map(|(_, l)| l).collect();
            let want_lines: Vec<&String> = intact.iter().map(|(_, l)| *l).collect();
            prop_assert_eq!(got_lines, want_lines);
            for ((seq, _), (i, _)) in got.iter().zip(&intact) {
                prop_assert!(*seq >= *i as u64, "record {} numbered {}", i, seq);
                if touched.len() == 1 && !last {
                    prop_assert_eq!(*seq, *i as u64);
                }
            }
            prop_assert!(got.windows(2).all(|w| w[0].0 < w[1].0));
        }
    }
}

//! One segment of a queue's log: consecutive records in one append-only file (or, for an
//! in-memory spool, one buffer).

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
            len: 0,
            backing: Backing::File {
                file: Arc::new(file),
                path,
            },
        })
    }

    /// Opens an existing segment file and indexes its records. A torn or corrupt tail is cut
    /// off; the returned string says how many bytes were dropped, if any.
    pub(crate) fn open(path: &Path, first: u64) -> io::Result<(Segment, Option<String>)> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        let bytes = std::fs::read(path)?;
        let mut offsets = Vec::new();
        let mut at = 0usize;
        let mut damage = None;
        while at < bytes.len() {
            match record::decode(&bytes[at..]) {
                Decoded::Record(_, size) => {
                    offsets.push(at as u32);
                    at += size;
                }
                bad => {
                    let what = if bad == Decoded::Incomplete {
                        "a torn record"
                    } else {
                        "a corrupt record"
                    };
                    damage = Some(format!(
                        "spool segment {}: cut off {what} at its end ({} bytes)",
                        path.display(),
                        bytes.len() - at
                    ));
                    file.set_len(at as u64)?;
                    file.sync_all()?;
                    break;
                }
            }
        }
        Ok((
            Segment {
                first,
                offsets,
                len: at as u64,
                backing: Backing::File {
                    file: Arc::new(file),
                    path: path.to_path_buf(),
                },
            },
            damage,
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

    /// The lines of records `from..to` (within this segment).
    pub(crate) fn read(&self, from: u64, to: u64) -> io::Result<Vec<Arc<str>>> {
        let to = to.min(self.end());
        if from >= to {
            return Ok(Vec::new());
        }
        let start = self.offsets[(from - self.first) as usize] as u64;
        let stop = match self.offsets.get((to - self.first) as usize) {
            Some(offset) => *offset as u64,
            None => self.len,
        };
        let owned;
        let bytes: &[u8] = match &self.backing {
            Backing::File { file, .. } => {
                let mut buf = vec![0; (stop - start) as usize];
                file.read_exact_at(&mut buf, start)?;
                owned = buf;
                &owned
            }
            Backing::Memory(buf) => &buf[start as usize..stop as usize],
        };
        let mut lines = Vec::with_capacity((to - from) as usize);
        let mut at = 0;
        while at < bytes.len() {
            // Checksums were checked when the segment was opened or written by this process.
            match record::split(&bytes[at..]) {
                Some((line, size)) => {
                    lines.push(Arc::from(line));
                    at += size;
                }
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

    /// Deletes the segment's file.
    pub(crate) fn remove(self) -> io::Result<()> {
        match self.backing {
            Backing::File { path, .. } => std::fs::remove_file(path),
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
            got.iter().map(|l| &**l).collect::<Vec<_>>(),
            ["{\"b\":2}", "{\"c\":3}"]
        );
        assert!(seg.read(10, 12).unwrap().is_empty());

        // A torn write: half a record at the end.
        let path = dir.path().join(file_name(7));
        let (more, _) = records(&["{\"d\":4}"]);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        std::io::Write::write_all(&mut f, &more[..5]).unwrap();
        let (seg, damage) = Segment::open(&path, 7).unwrap();
        assert_eq!(seg.end(), 10);
        assert!(damage.unwrap().contains("torn record"));
        assert_eq!(std::fs::metadata(&path).unwrap().len(), seg.len());
        assert_eq!(&*seg.read(9, 10).unwrap()[0], "{\"c\":3}");
    }

    #[test]
    fn names() {
        assert_eq!(file_name(42), "00000000000000000042.seg");
        assert_eq!(parse_file_name("00000000000000000042.seg"), Some(42));
        assert_eq!(parse_file_name("42.seg"), None);
        assert_eq!(parse_file_name("00000000000000000042.tmp"), None);
    }
}

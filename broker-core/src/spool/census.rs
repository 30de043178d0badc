//! Each pipe's backlog read straight from a spool directory, without opening, locking, repairing
//! or writing it: for `--status` when no daemon runs. Safe as root on a directory the daemon
//! user can write: no link is followed, only regular files are read.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::{positions, segment};
use crate::config::PipeConfig;
use crate::event::EventType;

/// A segment file: its first sequence number, path and size.
struct SegmentFile {
    first: u64,
    path: PathBuf,
    len: u64,
}

/// One queue's segment files, oldest first, and the sequence number after its last record.
struct QueueFiles {
    segments: Vec<SegmentFile>,
    end: u64,
}

/// The backlog, in events and bytes, of each of `pipes` (in their order) in the spool at `dir`
/// as its files are now. A pipe the saved positions do not name has none (it starts at the
/// end); without a positions file, every pipe starts at the oldest spooled event.
pub fn census(dir: &Path, pipes: &[PipeConfig]) -> Result<Vec<(u64, u64)>, String> {
    let saved = match read_regular(&dir.join("positions"))? {
        None => None,
        Some(bytes) => Some(positions::parse(
            &String::from_utf8_lossy(&bytes),
            &dir.join("positions"),
        )?),
    };
    let mut queues: BTreeMap<EventType, QueueFiles> = BTreeMap::new();
    let mut backlogs = Vec::with_capacity(pipes.len());
    for pipe in pipes {
        let mut total = (0, 0);
        for queue in &pipe.from {
            if !queues.contains_key(queue) {
                let files = queue_files(&dir.join("queues").join(queue.as_str()))?;
                queues.insert(*queue, files);
            }
            let files = &queues[queue];
            let Some(start) = files.segments.first().map(|s| s.first) else {
                continue;
            };
            let position = match &saved {
                None => start,
                Some(saved) => {
                    match positions::of_pipe(saved, &pipe.name).and_then(|p| p.get(queue)) {
                        Some(next) => (*next).max(start),
                        None => continue,
                    }
                }
            };
            total.0 += files.end.saturating_sub(position);
            total.1 += bytes_from(files, position)?;
        }
        backlogs.push(total);
    }
    Ok(backlogs)
}

/// The segment files of the queue directory `dir` (none if it is missing or not a directory).
fn queue_files(dir: &Path) -> Result<QueueFiles, String> {
    let empty = QueueFiles {
        segments: Vec::new(),
        end: 0,
    };
    match std::fs::symlink_metadata(dir) {
        Ok(meta) if meta.is_dir() => {}
        _ => return Ok(empty),
    }
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    let mut segments = Vec::new();
    for entry in entries.flatten() {
        let Some(first) = entry
            .file_name()
            .to_str()
            .and_then(segment::parse_file_name)
        else {
            continue;
        };
        // The entry itself, not what a link leads to.
        match entry.metadata() {
            Ok(meta) if meta.is_file() => segments.push(SegmentFile {
                first,
                path: entry.path(),
                len: meta.len(),
            }),
            _ => continue,
        }
    }
    segments.sort_by_key(|s| s.first);
    let Some(last) = segments.last() else {
        return Ok(empty);
    };
    let records = match read_regular(&last.path)? {
        Some(bytes) => segment::scan(&bytes, last.first, None).offsets.len() as u64,
        None => 0,
    };
    let end = last.first + records;
    Ok(QueueFiles { segments, end })
}

/// Bytes of the records of `files` from sequence number `from` on.
fn bytes_from(files: &QueueFiles, from: u64) -> Result<u64, String> {
    let mut bytes = 0;
    for (i, seg) in files.segments.iter().enumerate() {
        let end = files
            .segments
            .get(i + 1)
            .map_or(files.end, |next| next.first);
        if end <= from {
            continue;
        }
        if from <= seg.first {
            bytes += seg.len;
            continue;
        }
        // The position is inside this segment: where its record starts.
        if let Some(content) = read_regular(&seg.path)? {
            let scan = segment::scan(&content, seg.first, None);
            let offset = scan
                .offsets
                .get((from - seg.first) as usize)
                .map_or(scan.len, |o| u64::from(*o));
            bytes += scan.len.saturating_sub(offset);
        }
    }
    Ok(bytes)
}

/// The content of the regular file at `path`, not following a link; `None` if it is missing
/// (or, as it may be while the spool is in use, replaced by something else).
fn read_regular(path: &Path) -> Result<Option<Vec<u8>>, String> {
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let fail = |e: std::io::Error| format!("cannot read {}: {e}", path.display());
    if !file.metadata().map_err(fail)?.is_file() {
        return Err(format!("{} is not a regular file", path.display()));
    }
    let mut bytes = Vec::new();
    file.take(super::SEGMENT_MAX * 2)
        .read_to_end(&mut bytes)
        .map_err(fail)?;
    Ok(Some(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BrokerConfig;
    use crate::event::Event;
    use crate::spool::Spool;

    #[test]
    fn the_census_matches_the_open_spool_and_follows_no_link() {
        let text = "[Broker]\nBroker = b\n[Pipe.A]\nFrom = log_authn, alerts\nTo = recording\n\
                    [Pipe.B]\nFrom = alerts\nTo = recording\n";
        let pipes = BrokerConfig::parse(text, Path::new("b.conf"))
            .unwrap()
            .pipes;
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(census(dir.path(), &pipes), Ok(vec![(0, 0), (0, 0)]));
        // A small bound: several segments per queue.
        let spool = Spool::open(dir.path(), 64 * 1024, &pipes).unwrap();
        let events: Vec<Event> = (0..200)
            .map(|i| {
                Event::from_encoded_line(EventType::Alerts, format!("{{\"id\":\"a{i:0>40}\"}}"))
            })
            .collect();
        spool.append(EventType::Alerts, &events).unwrap();
        let authn = [Event::from_encoded_line(
            EventType::LogAuthn,
            "{\"id\":\"l\"}".to_string(),
        )];
        spool.append(EventType::LogAuthn, &authn).unwrap();
        let delivered = spool.read(1, 70).unwrap();
        spool.advance(1, &delivered).unwrap();
        let live = vec![spool.backlog(0), spool.backlog(1)];
        assert_eq!(live[0].0, 201);
        assert_eq!(live[1].0, 130);
        assert_eq!(census(dir.path(), &pipes), Ok(live.clone()));
        drop(spool);
        assert_eq!(census(dir.path(), &pipes), Ok(live));

        // A positions file that is a link is not followed.
        let elsewhere = tempfile::tempdir().unwrap();
        std::fs::rename(dir.path().join("positions"), elsewhere.path().join("p")).unwrap();
        std::os::unix::fs::symlink(elsewhere.path().join("p"), dir.path().join("positions"))
            .unwrap();
        let e = census(dir.path(), &pipes).unwrap_err();
        assert!(e.starts_with("cannot read "), "{e}");
    }
}

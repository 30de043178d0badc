//! The `positions` file: for each pipe and queue, the next sequence number it has not delivered.
//!
//! One line per pipe and queue, `PIPE<TAB>QUEUE<TAB>NEXT`; lines starting with `#` are comments.
//! Rewritten whole through a temporary file and a rename, so a reader sees the old or the new
//! file, never half of one.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::Path;

use crate::event::EventType;

/// Positions by pipe name, then queue.
pub(crate) type Positions = BTreeMap<String, BTreeMap<EventType, u64>>;

/// Reads `path`: `Ok(None)` when it does not exist, an error naming the line when it is damaged.
pub(crate) fn read(path: &Path) -> Result<Option<Positions>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let mut positions = Positions::new();
    for (n, line) in text.lines().enumerate() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let parsed = (|| {
            let mut fields = line.split('\t');
            let pipe = fields.next()?;
            let queue = fields.next()?.parse::<EventType>().ok()?;
            let next = fields.next()?.parse::<u64>().ok()?;
            if fields.next().is_some() || pipe.is_empty() {
                return None;
            }
            Some((pipe, queue, next))
        })();
        let Some((pipe, queue, next)) = parsed else {
            return Err(format!(
                "{} line {}: not PIPE<TAB>QUEUE<TAB>NUMBER",
                path.display(),
                n + 1
            ));
        };
        positions
            .entry(pipe.to_string())
            .or_default()
            .insert(queue, next);
    }
    Ok(Some(positions))
}

/// Replaces `path` with `positions`. With `durable`, also flushes the file and the directory.
pub(crate) fn write(path: &Path, positions: &Positions, durable: bool) -> io::Result<()> {
    let mut text =
        String::from("# procustodibus-broker spool positions: PIPE<TAB>QUEUE<TAB>NEXT\n");
    for (pipe, queues) in positions {
        for (queue, next) in queues {
            text.push_str(&format!("{pipe}\t{queue}\t{next}\n"));
        }
    }
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(text.as_bytes())?;
    if durable {
        file.sync_data()?;
    }
    std::fs::rename(&tmp, path)?;
    if durable {
        if let Some(dir) = path.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_missing_and_damaged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("positions");
        assert_eq!(read(&path), Ok(None));
        let mut p = Positions::new();
        p.entry("My Pipe".into())
            .or_default()
            .insert(EventType::Alerts, 42);
        p.entry("b".into())
            .or_default()
            .insert(EventType::LogChanges, 0);
        write(&path, &p, true).unwrap();
        assert_eq!(read(&path), Ok(Some(p)));
        std::fs::write(&path, "a\talerts\tx\n").unwrap();
        assert!(read(&path).unwrap_err().contains("line 1"));
    }
}

//! The `positions` file: for each pipe and queue, the next sequence number it has not delivered.
//!
//! One line per pipe and queue, `PIPE<TAB>QUEUE<TAB>NEXT`; lines starting with `#` are comments;
//! the last line is `# end crc32=XXXXXXXX`, the CRC-32 of every byte before it. At start the
//! file is replaced whole (a temporary file, flushed and renamed); after each delivery it is
//! overwritten in place, which is cheap. A file cut short or torn by a crash (new lines in front
//! of old ones) fails its checksum and counts as damaged: every pipe then starts at the oldest
//! spooled event (duplicates, never a loss). A file of an earlier version, whose last line is a
//! plain `# end`, is still read (and rewritten in the new form at start).

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
    parse(&text, path).map(Some)
}

/// The positions in `text`, the content of the file at `path` (named in errors).
pub(crate) fn parse(text: &str, path: &Path) -> Result<Positions, String> {
    let mut positions = Positions::new();
    let body = text.strip_suffix('\n').unwrap_or(text);
    let (body, last) = match body.rfind('\n') {
        Some(at) => (&text[..at + 1], &body[at + 1..]),
        None => ("", body),
    };
    if last == END {
        // The form before checksums: trusted as it is.
    } else if let Some(crc) = last.strip_prefix(END_CRC) {
        if crc != format!("{:08x}", crc32fast::hash(body.as_bytes())) {
            return Err(format!(
                "{}: its checksum does not match (a torn write)",
                path.display()
            ));
        }
    } else {
        return Err(format!("{}: cut short (no `{END}` line)", path.display()));
    }
    for (n, line) in body.lines().enumerate() {
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
    Ok(positions)
}

/// The last line of a whole positions file of the first version.
const END: &str = "# end";
/// The start of the last line of a whole positions file, before the checksum in hex.
const END_CRC: &str = "# end crc32=";

fn text(positions: &Positions) -> String {
    let mut text =
        String::from("# procustodibus-broker spool positions: PIPE<TAB>QUEUE<TAB>NEXT\n");
    for (pipe, queues) in positions {
        for (queue, next) in queues {
            text.push_str(&format!("{pipe}\t{queue}\t{next}\n"));
        }
    }
    let crc = crc32fast::hash(text.as_bytes());
    text.push_str(&format!("{END_CRC}{crc:08x}\n"));
    text
}

/// The saved positions of the pipe named `name`, compared without case as the config compares
/// pipe names.
pub(crate) fn of_pipe<'a>(
    positions: &'a Positions,
    name: &str,
) -> Option<&'a BTreeMap<EventType, u64>> {
    positions
        .iter()
        .find(|(saved, _)| saved.eq_ignore_ascii_case(name))
        .map(|(_, queues)| queues)
}

/// Overwrites the open positions file in place (not flushed: a crash of the process keeps it;
/// a power loss may cut it short, which [`read`] notices).
pub(crate) fn overwrite(file: &mut std::fs::File, positions: &Positions) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    let text = text(positions);
    file.write_all_at(text.as_bytes(), 0)?;
    file.set_len(text.len() as u64)
}

/// Replaces `path` with `positions`. With `durable`, also flushes the file and the directory.
pub(crate) fn write(path: &Path, positions: &Positions, durable: bool) -> io::Result<()> {
    let text = text(positions);
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
        let mut file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        let mut fewer = Positions::new();
        fewer
            .entry("b".into())
            .or_default()
            .insert(EventType::Alerts, 7);
        overwrite(&mut file, &fewer).unwrap();
        assert_eq!(read(&path), Ok(Some(fewer)));
        std::fs::write(&path, "a\talerts\tx\n# end\n").unwrap();
        assert!(read(&path).unwrap_err().contains("line 1"));
        std::fs::write(&path, "# procustodibus-broker\na\talerts\t5\n").unwrap();
        assert!(read(&path).unwrap_err().contains("cut short"));
        std::fs::write(&path, "").unwrap();
        assert!(read(&path).unwrap_err().contains("cut short"));
    }

    #[test]
    fn a_torn_overwrite_is_detected_and_the_old_form_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("positions");
        let mut old = Positions::new();
        old.entry("a".into())
            .or_default()
            .insert(EventType::Alerts, 5);
        old.entry("b".into())
            .or_default()
            .insert(EventType::Alerts, 9);
        let mut new = old.clone();
        new.get_mut("a").unwrap().insert(EventType::Alerts, 7);
        new.get_mut("b").unwrap().insert(EventType::Alerts, 12);
        // A torn in-place overwrite: the new text's first lines over the old text.
        let (old_text, new_text) = (text(&old), text(&new));
        let cut = new_text.find("b\t").unwrap();
        let torn = format!("{}{}", &new_text[..cut], &old_text[cut..]);
        assert!(torn.contains("a\talerts\t7\nb\talerts\t9\n"), "{torn}");
        std::fs::write(&path, &torn).unwrap();
        assert!(read(&path).unwrap_err().contains("checksum"));
        std::fs::write(&path, &new_text).unwrap();
        assert_eq!(read(&path), Ok(Some(new.clone())));
        // The form before checksums.
        std::fs::write(
            &path,
            "# procustodibus-broker\na\talerts\t7\nb\talerts\t12\n# end\n",
        )
        .unwrap();
        assert_eq!(read(&path), Ok(Some(new.clone())));
        assert_eq!(of_pipe(&new, "A").unwrap()[&EventType::Alerts], 7);
        assert!(of_pipe(&new, "c").is_none());
    }
}

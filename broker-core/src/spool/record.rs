//! The spool's record format: a 4-byte little-endian length, a 4-byte little-endian CRC-32 of
//! the line, then the event's output line (ASCII, no newline).

/// Bytes before the line.
pub(crate) const HEADER: usize = 8;

/// Appends the record of `line` to `out` and returns its size in bytes.
pub(crate) fn encode(line: &str, out: &mut Vec<u8>) -> usize {
    let bytes = line.as_bytes();
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(bytes).to_le_bytes());
    out.extend_from_slice(bytes);
    HEADER + bytes.len()
}

/// What the front of a buffer holds.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Decoded<'a> {
    /// A whole, intact record: its line and its size in bytes.
    Record(&'a str, usize),
    /// The buffer ends inside a record (a torn write at the end of a segment).
    Incomplete,
    /// The bytes are not a record (a bad checksum or a line that is not text).
    Corrupt,
}

/// Decodes the record at the front of `buf`, checking its checksum.
pub(crate) fn decode(buf: &[u8]) -> Decoded<'_> {
    if buf.len() < HEADER {
        return Decoded::Incomplete;
    }
    let len = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    let crc = u32::from_le_bytes([buf[4], buf[5], buf[6], buf[7]]);
    if len == 0 {
        // Never written (every event is a JSON text); zeros after a power loss look like this.
        return Decoded::Corrupt;
    }
    let Some(bytes) = buf.get(HEADER..HEADER + len) else {
        return Decoded::Incomplete;
    };
    if crc32fast::hash(bytes) != crc {
        return Decoded::Corrupt;
    }
    match std::str::from_utf8(bytes) {
        Ok(line) => Decoded::Record(line, HEADER + len),
        Err(_) => Decoded::Corrupt,
    }
}

/// Splits the record at the front of `buf` by its length alone, without the checksum (for
/// records already checked): its line and its size in bytes.
pub(crate) fn split(buf: &[u8]) -> Option<(&str, usize)> {
    let len = u32::from_le_bytes(buf.get(..4)?.try_into().ok()?) as usize;
    let bytes = buf.get(HEADER..HEADER + len)?;
    Some((std::str::from_utf8(bytes).ok()?, HEADER + len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_torn_and_corrupt() {
        let mut buf = Vec::new();
        assert_eq!(encode(r#"{"id":"a"}"#, &mut buf), 18);
        encode("1", &mut buf);
        assert_eq!(decode(&buf), Decoded::Record(r#"{"id":"a"}"#, 18));
        assert_eq!(decode(&buf[18..]), Decoded::Record("1", 9));
        assert_eq!(decode(&buf[..17]), Decoded::Incomplete);
        assert_eq!(decode(&buf[..5]), Decoded::Incomplete);
        assert_eq!(split(&buf), Some((r#"{"id":"a"}"#, 18)));
        assert_eq!(split(&buf[..17]), None);
        buf[10] ^= 1;
        assert_eq!(decode(&buf), Decoded::Corrupt);
        assert_eq!(decode(&[0; 8]), Decoded::Corrupt);
    }
}

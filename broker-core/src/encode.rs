//! The output encoding of an event: compact JSON as Python's `json.dumps(separators=(",", ":"))`
//! writes it with its default `ensure_ascii`, but with numbers kept exactly as received.
//!
//! The encoder re-writes valid JSON text token by token: white space between tokens is dropped,
//! object keys stay in the order received, numbers, `true`, `false` and `null` are copied as they
//! are, and strings are decoded and escaped again the Python way: `\"` `\\` `\n` `\r` `\t` `\b`
//! `\f` in short form, every other character outside printable ASCII (space to `~`) as `\uXXXX` in
//! lower-case hex, with UTF-16 surrogate pairs above U+FFFF. `/` is not escaped.
//!
//! It does so in one scan that validates the text and copies lazily: every byte that comes out
//! unchanged is left in place, and only where the output differs from the input (white space to
//! drop, a character or an escape to write another way) is the unchanged stretch before it copied
//! in one block, followed by the replacement. A text that is already in the output form (what the
//! API sends most of the time) is thus checked once and copied once, as a whole.

use std::cell::Cell;
use std::sync::Arc;

/// Why a text could not be encoded: it is not valid JSON.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid JSON at byte {offset}: {reason}")]
pub struct EncodeError {
    /// Byte offset of the problem in the input.
    pub offset: usize,
    /// What was wrong there.
    pub reason: &'static str,
}

/// Encodes one JSON value (object, array, string, number or literal) into the output form.
pub fn encode_python_compact(json: &str) -> Result<String, EncodeError> {
    let mut out = String::new();
    let (start, end, rewritten) = encode_document(json, &mut out)?;
    if !rewritten {
        out.push_str(&json[start..end]);
    }
    Ok(out)
}

/// Like [`encode_python_compact`], straight into the shared line of an [`crate::Event`]: the
/// rewritten text goes through a buffer kept per thread, and a text already in the output form is
/// copied once from the input.
pub(crate) fn encode_shared(json: &str) -> Result<Arc<str>, EncodeError> {
    with_scratch(|out| {
        let (start, end, rewritten) = encode_document(json, out)?;
        Ok(if rewritten {
            Arc::from(out.as_str())
        } else {
            Arc::from(&json[start..end])
        })
    })
}

/// Escapes one already-decoded string into `out` the Python way, with the surrounding quotes.
pub fn push_python_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        push_unit(out, c as u32);
    }
    out.push('"');
}

/// Splits a pull answer, `{"data":[event, ...]}`, and hands `each` the output line of every
/// event, in order, in one scan of the answer.
///
/// Only the plain shape is taken: an object whose keys have no escapes, with exactly one `data`
/// member that is an array, every value in it valid JSON. For anything else (invalid JSON, no or
/// two `data` members, a `data` that is not an array, an escaped key) it returns `None` having
/// possibly called `each` already; the caller then starts again with a full JSON parser, which
/// either accepts the answer with the same events or says what is wrong with it.
pub(crate) fn for_each_data_line(body: &str, mut each: impl FnMut(&str)) -> Option<()> {
    with_scratch(|out| {
        let b = body.as_bytes();
        let mut pos = skip_ws(b, 0);
        if b.get(pos) != Some(&b'{') {
            return None;
        }
        pos = skip_ws(b, pos + 1);
        let mut seen_data = false;
        loop {
            if b.get(pos) != Some(&b'"') {
                return None;
            }
            let key_start = pos + 1;
            let key_end = plain_end(b, key_start);
            if b.get(key_end) != Some(&b'"') {
                return None;
            }
            pos = skip_ws(b, key_end + 1);
            if b.get(pos) != Some(&b':') {
                return None;
            }
            pos = skip_ws(b, pos + 1);
            if &b[key_start..key_end] == b"data" {
                if seen_data || b.get(pos) != Some(&b'[') {
                    return None;
                }
                seen_data = true;
                pos = skip_ws(b, pos + 1);
                if b.get(pos) == Some(&b']') {
                    pos += 1;
                } else {
                    loop {
                        out.clear();
                        let (end, rewritten) = encode_value(body, pos, out).ok()?;
                        each(if rewritten { out } else { &body[pos..end] });
                        pos = skip_ws(b, end);
                        match b.get(pos) {
                            Some(b',') => pos = skip_ws(b, pos + 1),
                            Some(b']') => {
                                pos += 1;
                                break;
                            }
                            _ => return None,
                        }
                    }
                }
            } else {
                // Any other member is only checked.
                out.clear();
                pos = encode_value(body, pos, out).ok()?.0;
            }
            pos = skip_ws(b, pos);
            match b.get(pos) {
                Some(b',') => pos = skip_ws(b, pos + 1),
                Some(b'}') => {
                    pos += 1;
                    break;
                }
                _ => return None,
            }
        }
        (seen_data && skip_ws(b, pos) == b.len()).then_some(())
    })
}

/// Runs `f` with this thread's (empty) output buffer, so that encoding does not allocate one per
/// event. A buffer grown by a very large event is not kept.
fn with_scratch<T>(f: impl FnOnce(&mut String) -> T) -> T {
    const KEEP: usize = 1 << 16;
    thread_local! {
        static SCRATCH: Cell<String> = const { Cell::new(String::new()) };
    }
    let mut out = SCRATCH.take();
    out.clear();
    let result = f(&mut out);
    if out.capacity() <= KEEP {
        SCRATCH.set(out);
    }
    result
}

/// Encodes a whole text holding one value, with white space around it. Returns where the value
/// starts and ends in `json` and whether its output differs from `json[start..end]`; if it does,
/// the output is in `out`.
fn encode_document(json: &str, out: &mut String) -> Result<(usize, usize, bool), EncodeError> {
    let bytes = json.as_bytes();
    let start = skip_ws(bytes, 0);
    let (end, rewritten) = encode_value(json, start, out)?;
    let rest = skip_ws(bytes, end);
    if rest != bytes.len() {
        return Err(EncodeError {
            offset: rest,
            reason: "trailing characters after the value",
        });
    }
    Ok((start, end, rewritten))
}

/// Encodes the value that starts at byte `start` of `text` (not at white space). Returns where it
/// ends and whether its output differs from `text[start..end]`; if it does, the output has been
/// appended to `out` (which must be empty for the output to be the value's alone).
fn encode_value(text: &str, start: usize, out: &mut String) -> Result<(usize, bool), EncodeError> {
    let mut enc = Encoder {
        text,
        bytes: text.as_bytes(),
        pos: start,
        done: start,
        out,
    };
    enc.value(0)?;
    let rewritten = enc.done != start;
    if rewritten {
        enc.flush();
    }
    Ok((enc.pos, rewritten))
}

/// The first position from `pos` that is not JSON white space.
fn skip_ws(bytes: &[u8], mut pos: usize) -> usize {
    while let Some(b' ' | b'\t' | b'\n' | b'\r') = bytes.get(pos) {
        pos += 1;
    }
    pos
}

const MAX_DEPTH: usize = 512;

const ONES: u64 = u64::MAX / 255;
const HIGHS: u64 = ONES << 7;

/// The high bit of the first byte of `w` (in memory order) that is not plain, that is not
/// printable ASCII other than `"` and `\`, is set, and no high bit below it is (bits above it may
/// be set too). Zero if all eight bytes are plain.
///
/// Each test is exact at its lowest flagged byte: a false flag only appears above a true one,
/// where the borrow or carry of the true one spills over.
#[inline]
fn special_mask(w: u64) -> u64 {
    let control = w.wrapping_sub(ONES * 0x20) & !w;
    let q = w ^ (ONES * u64::from(b'"'));
    let quote = q.wrapping_sub(ONES) & !q;
    let s = w ^ (ONES * u64::from(b'\\'));
    let backslash = s.wrapping_sub(ONES) & !s;
    // DEL becomes 0x80; bytes of 0x80 and above have the high bit already.
    let high = w.wrapping_add(ONES) | w;
    (control | quote | backslash | high) & HIGHS
}

/// Whether a string byte is copied as it is: printable ASCII other than `"` and `\`.
#[inline]
fn is_plain(b: u8) -> bool {
    (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\'
}

/// The first position from `pos` whose byte is not plain (see [`is_plain`]), or the length.
#[inline]
fn plain_end(bytes: &[u8], mut pos: usize) -> usize {
    while let Some(chunk) = bytes.get(pos..pos + 8) {
        let word = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
        let mask = special_mask(word);
        if mask != 0 {
            return pos + (mask.trailing_zeros() / 8) as usize;
        }
        pos += 8;
    }
    while bytes.get(pos).is_some_and(|&b| is_plain(b)) {
        pos += 1;
    }
    pos
}

struct Encoder<'a> {
    text: &'a str,
    bytes: &'a [u8],
    /// The next byte to read.
    pos: usize,
    /// Input before this position is in `out` already (or, while it is still the start, the
    /// output so far is the input itself).
    done: usize,
    out: &'a mut String,
}

impl Encoder<'_> {
    fn err(&self, reason: &'static str) -> EncodeError {
        EncodeError {
            offset: self.pos,
            reason,
        }
    }

    /// Copies the input not yet in `out`, up to the current position.
    fn flush(&mut self) {
        self.out.push_str(&self.text[self.done..self.pos]);
    }

    /// Drops the white space at the current position, if any (checked inline: mostly there is
    /// none).
    #[inline(always)]
    fn skip_ws(&mut self) {
        if let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes.get(self.pos) {
            self.drop_ws();
        }
    }

    #[inline(never)]
    fn drop_ws(&mut self) {
        self.flush();
        self.pos = skip_ws(self.bytes, self.pos + 1);
        self.done = self.pos;
    }

    fn value(&mut self, depth: usize) -> Result<(), EncodeError> {
        if depth > MAX_DEPTH {
            return Err(self.err("nested too deeply"));
        }
        match self.bytes.get(self.pos) {
            Some(b'{') => self.object(depth),
            Some(b'[') => self.array(depth),
            Some(b'"') => self.string(),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(b't') => self.literal("true"),
            Some(b'f') => self.literal("false"),
            Some(b'n') => self.literal("null"),
            Some(_) => Err(self.err("expected a value")),
            None => Err(self.err("unexpected end of input")),
        }
    }

    fn object(&mut self, depth: usize) -> Result<(), EncodeError> {
        self.pos += 1;
        self.skip_ws();
        if self.bytes.get(self.pos) == Some(&b'}') {
            self.pos += 1;
            return Ok(());
        }
        loop {
            self.skip_ws();
            if self.bytes.get(self.pos) != Some(&b'"') {
                return Err(self.err("expected a string key"));
            }
            self.string()?;
            self.skip_ws();
            if self.bytes.get(self.pos) != Some(&b':') {
                return Err(self.err("expected ':'"));
            }
            self.pos += 1;
            self.skip_ws();
            self.value(depth + 1)?;
            self.skip_ws();
            match self.bytes.get(self.pos) {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return Err(self.err("expected ',' or '}'")),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<(), EncodeError> {
        self.pos += 1;
        self.skip_ws();
        if self.bytes.get(self.pos) == Some(&b']') {
            self.pos += 1;
            return Ok(());
        }
        loop {
            self.skip_ws();
            self.value(depth + 1)?;
            self.skip_ws();
            match self.bytes.get(self.pos) {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return Err(self.err("expected ',' or ']'")),
            }
        }
    }

    fn literal(&mut self, word: &'static str) -> Result<(), EncodeError> {
        if self.bytes[self.pos..].starts_with(word.as_bytes()) {
            self.pos += word.len();
            Ok(())
        } else {
            Err(self.err("invalid literal"))
        }
    }

    fn number(&mut self) -> Result<(), EncodeError> {
        if self.bytes.get(self.pos) == Some(&b'-') {
            self.pos += 1;
        }
        match self.bytes.get(self.pos) {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(self.err("invalid number")),
        }
        if self.bytes.get(self.pos) == Some(&b'.') {
            self.pos += 1;
            if !matches!(self.bytes.get(self.pos), Some(b'0'..=b'9')) {
                return Err(self.err("invalid number"));
            }
            self.digits();
        }
        if let Some(b'e' | b'E') = self.bytes.get(self.pos) {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.bytes.get(self.pos) {
                self.pos += 1;
            }
            if !matches!(self.bytes.get(self.pos), Some(b'0'..=b'9')) {
                return Err(self.err("invalid number"));
            }
            self.digits();
        }
        Ok(())
    }

    fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.bytes.get(self.pos) {
            self.pos += 1;
        }
    }

    fn string(&mut self) -> Result<(), EncodeError> {
        self.pos += 1;
        loop {
            self.pos = plain_end(self.bytes, self.pos);
            match self.bytes.get(self.pos) {
                None => return Err(self.err("unterminated string")),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(());
                }
                Some(b'\\') => self.escape()?,
                Some(&b) if b < 0x20 => return Err(self.err("control character in string")),
                Some(0x7f) => {
                    self.flush();
                    self.out.push_str("\\u007f");
                    self.pos += 1;
                    self.done = self.pos;
                }
                Some(_) => {
                    // A run of multi-byte characters: the input is a &str, so it is valid UTF-8
                    // and the run ends at a character boundary.
                    let start = self.pos;
                    let mut end = start + 1;
                    while self.bytes.get(end).is_some_and(|&b| b >= 0x80) {
                        end += 1;
                    }
                    self.flush();
                    for c in self.text[start..end].chars() {
                        push_unit(self.out, c as u32);
                    }
                    self.pos = end;
                    self.done = end;
                }
            }
        }
    }

    fn escape(&mut self) -> Result<(), EncodeError> {
        match self.bytes.get(self.pos + 1) {
            // Written the same way by Python.
            Some(b'"' | b'\\' | b'b' | b'f' | b'n' | b'r' | b't') => self.pos += 2,
            Some(b'/') => {
                self.flush();
                self.out.push('/');
                self.pos += 2;
                self.done = self.pos;
            }
            Some(b'u') => {
                let end = self.pos + 6;
                // Where the input ends, or (as `str::get` says) a character does not, first.
                if end > self.bytes.len() || !self.text.is_char_boundary(end) {
                    return Err(self.err("short \\u escape"));
                }
                let mut unit = 0;
                let mut upper = false;
                for &b in &self.bytes[self.pos + 2..end] {
                    let digit = match b {
                        b'0'..=b'9' => b - b'0',
                        b'a'..=b'f' => b - b'a' + 10,
                        b'A'..=b'F' => {
                            upper = true;
                            b - b'A' + 10
                        }
                        _ => return Err(self.err("invalid \\u escape")),
                    };
                    unit = unit << 4 | u32::from(digit);
                }
                // A UTF-16 code unit: surrogates come out as they went in, which is what Python
                // does both for valid pairs and for lone surrogates. Python writes `\u` (in lower
                // case) exactly for what is neither printable ASCII nor has a short form.
                let same = !upper
                    && (unit >= 0x7f
                        || (unit < 0x20 && !matches!(unit, 0x08..=0x0a | 0x0c | 0x0d)));
                if !same {
                    self.flush();
                    push_unit(self.out, unit);
                    self.done = end;
                }
                self.pos = end;
            }
            _ => return Err(self.err("invalid escape")),
        }
        Ok(())
    }
}

/// Writes one character (or one UTF-16 code unit, for surrogates) the Python way.
fn push_unit(out: &mut String, code: u32) {
    match code {
        0x22 => out.push_str("\\\""),
        0x5c => out.push_str("\\\\"),
        0x0a => out.push_str("\\n"),
        0x0d => out.push_str("\\r"),
        0x09 => out.push_str("\\t"),
        0x08 => out.push_str("\\b"),
        0x0c => out.push_str("\\f"),
        0x20..=0x7e => out.push(char::from(code as u8)),
        0x10000.. => {
            let v = code - 0x10000;
            push_u_escape(out, 0xd800 + (v >> 10));
            push_u_escape(out, 0xdc00 + (v & 0x3ff));
        }
        _ => push_u_escape(out, code),
    }
}

/// Writes `\u` and the four lower-case hex digits of a UTF-16 code unit.
fn push_u_escape(out: &mut String, unit: u32) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digit = |shift: u32| char::from(HEX[((unit >> shift) & 0xf) as usize]);
    out.push('\\');
    out.push('u');
    out.push(digit(12));
    out.push(digit(8));
    out.push(digit(4));
    out.push(digit(0));
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The encoder as it was before the lazy-copy rewrite (token by token, every byte through
    /// the output), kept verbatim as the oracle of the tests below. The end-to-end tests compared
    /// it with Python's own `json.dumps`.
    mod reference {
        use std::fmt::Write as _;

        use crate::encode::EncodeError;

        pub(crate) fn encode(json: &str) -> Result<String, EncodeError> {
            let mut out = String::with_capacity(json.len() + json.len() / 8);
            let mut enc = Encoder {
                bytes: json.as_bytes(),
                text: json,
                pos: 0,
                out: &mut out,
            };
            enc.skip_ws();
            enc.value(0)?;
            enc.skip_ws();
            if enc.pos != enc.bytes.len() {
                return Err(enc.err("trailing characters after the value"));
            }
            Ok(out)
        }

        const MAX_DEPTH: usize = 512;

        struct Encoder<'a> {
            bytes: &'a [u8],
            text: &'a str,
            pos: usize,
            out: &'a mut String,
        }

        impl Encoder<'_> {
            fn err(&self, reason: &'static str) -> EncodeError {
                EncodeError {
                    offset: self.pos,
                    reason,
                }
            }

            fn skip_ws(&mut self) {
                while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes.get(self.pos) {
                    self.pos += 1;
                }
            }

            fn value(&mut self, depth: usize) -> Result<(), EncodeError> {
                if depth > MAX_DEPTH {
                    return Err(self.err("nested too deeply"));
                }
                match self.bytes.get(self.pos) {
                    Some(b'{') => self.object(depth),
                    Some(b'[') => self.array(depth),
                    Some(b'"') => self.string(),
                    Some(b'-' | b'0'..=b'9') => self.number(),
                    Some(b't') => self.literal("true"),
                    Some(b'f') => self.literal("false"),
                    Some(b'n') => self.literal("null"),
                    Some(_) => Err(self.err("expected a value")),
                    None => Err(self.err("unexpected end of input")),
                }
            }

            fn object(&mut self, depth: usize) -> Result<(), EncodeError> {
                self.pos += 1;
                self.out.push('{');
                self.skip_ws();
                if self.bytes.get(self.pos) == Some(&b'}') {
                    self.pos += 1;
                    self.out.push('}');
                    return Ok(());
                }
                loop {
                    self.skip_ws();
                    if self.bytes.get(self.pos) != Some(&b'"') {
                        return Err(self.err("expected a string key"));
                    }
                    self.string()?;
                    self.skip_ws();
                    if self.bytes.get(self.pos) != Some(&b':') {
                        return Err(self.err("expected ':'"));
                    }
                    self.pos += 1;
                    self.out.push(':');
                    self.skip_ws();
                    self.value(depth + 1)?;
                    self.skip_ws();
                    match self.bytes.get(self.pos) {
                        Some(b',') => {
                            self.pos += 1;
                            self.out.push(',');
                        }
                        Some(b'}') => {
                            self.pos += 1;
                            self.out.push('}');
                            return Ok(());
                        }
                        _ => return Err(self.err("expected ',' or '}'")),
                    }
                }
            }

            fn array(&mut self, depth: usize) -> Result<(), EncodeError> {
                self.pos += 1;
                self.out.push('[');
                self.skip_ws();
                if self.bytes.get(self.pos) == Some(&b']') {
                    self.pos += 1;
                    self.out.push(']');
                    return Ok(());
                }
                loop {
                    self.skip_ws();
                    self.value(depth + 1)?;
                    self.skip_ws();
                    match self.bytes.get(self.pos) {
                        Some(b',') => {
                            self.pos += 1;
                            self.out.push(',');
                        }
                        Some(b']') => {
                            self.pos += 1;
                            self.out.push(']');
                            return Ok(());
                        }
                        _ => return Err(self.err("expected ',' or ']'")),
                    }
                }
            }

            fn literal(&mut self, word: &'static str) -> Result<(), EncodeError> {
                if self.bytes[self.pos..].starts_with(word.as_bytes()) {
                    self.pos += word.len();
                    self.out.push_str(word);
                    Ok(())
                } else {
                    Err(self.err("invalid literal"))
                }
            }

            fn number(&mut self) -> Result<(), EncodeError> {
                let start = self.pos;
                if self.bytes.get(self.pos) == Some(&b'-') {
                    self.pos += 1;
                }
                match self.bytes.get(self.pos) {
                    Some(b'0') => self.pos += 1,
                    Some(b'1'..=b'9') => self.digits(),
                    _ => return Err(self.err("invalid number")),
                }
                if self.bytes.get(self.pos) == Some(&b'.') {
                    self.pos += 1;
                    if !matches!(self.bytes.get(self.pos), Some(b'0'..=b'9')) {
                        return Err(self.err("invalid number"));
                    }
                    self.digits();
                }
                if let Some(b'e' | b'E') = self.bytes.get(self.pos) {
                    self.pos += 1;
                    if let Some(b'+' | b'-') = self.bytes.get(self.pos) {
                        self.pos += 1;
                    }
                    if !matches!(self.bytes.get(self.pos), Some(b'0'..=b'9')) {
                        return Err(self.err("invalid number"));
                    }
                    self.digits();
                }
                self.out.push_str(&self.text[start..self.pos]);
                Ok(())
            }

            fn digits(&mut self) {
                while let Some(b'0'..=b'9') = self.bytes.get(self.pos) {
                    self.pos += 1;
                }
            }

            fn string(&mut self) -> Result<(), EncodeError> {
                self.pos += 1;
                self.out.push('"');
                loop {
                    // Copy the longest run of bytes that need no escaping in one go.
                    let run_start = self.pos;
                    while let Some(&b) = self.bytes.get(self.pos) {
                        if (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\' {
                            self.pos += 1;
                        } else {
                            break;
                        }
                    }
                    self.out.push_str(&self.text[run_start..self.pos]);
                    match self.bytes.get(self.pos) {
                        None => return Err(self.err("unterminated string")),
                        Some(b'"') => {
                            self.pos += 1;
                            self.out.push('"');
                            return Ok(());
                        }
                        Some(b'\\') => self.escape()?,
                        Some(&b) if b < 0x20 => return Err(self.err("control character in string")),
                        Some(_) => {
                            // DEL or a multi-byte character: the input is a &str, so it is valid UTF-8.
                            let c = self.text[self.pos..]
                                .chars()
                                .next()
                                .ok_or_else(|| self.err("unterminated string"))?;
                            self.pos += c.len_utf8();
                            push_char(self.out, c as u32);
                        }
                    }
                }
            }

            fn escape(&mut self) -> Result<(), EncodeError> {
                let code = match self.bytes.get(self.pos + 1) {
                    Some(b'"') => u32::from(b'"'),
                    Some(b'\\') => u32::from(b'\\'),
                    Some(b'/') => u32::from(b'/'),
                    Some(b'b') => 0x08,
                    Some(b'f') => 0x0c,
                    Some(b'n') => 0x0a,
                    Some(b'r') => 0x0d,
                    Some(b't') => 0x09,
                    Some(b'u') => {
                        let hex = self
                            .text
                            .get(self.pos + 2..self.pos + 6)
                            .ok_or_else(|| self.err("short \\u escape"))?;
                        if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                            return Err(self.err("invalid \\u escape"));
                        }
                        let unit = u32::from_str_radix(hex, 16)
                            .map_err(|_| self.err("invalid \\u escape"))?;
                        self.pos += 6;
                        // A UTF-16 code unit: surrogates come out as they went in, which is what Python
                        // does both for valid pairs and for lone surrogates.
                        push_char(self.out, unit);
                        return Ok(());
                    }
                    _ => return Err(self.err("invalid escape")),
                };
                self.pos += 2;
                push_char(self.out, code);
                Ok(())
            }
        }

        /// Writes one character (or one UTF-16 code unit, for surrogates) the Python way.
        fn push_char(out: &mut String, code: u32) {
            match code {
                0x22 => out.push_str("\\\""),
                0x5c => out.push_str("\\\\"),
                0x0a => out.push_str("\\n"),
                0x0d => out.push_str("\\r"),
                0x09 => out.push_str("\\t"),
                0x08 => out.push_str("\\b"),
                0x0c => out.push_str("\\f"),
                0x20..=0x7e => out.push(char::from(code as u8)),
                0x10000.. => {
                    let v = code - 0x10000;
                    let _ = write!(
                        out,
                        "\\u{:04x}\\u{:04x}",
                        0xd800 + (v >> 10),
                        0xdc00 + (v & 0x3ff)
                    );
                }
                _ => {
                    let _ = write!(out, "\\u{code:04x}");
                }
            }
        }
    }

    /// The output and whether it was taken as it is from the input (the fast path).
    fn encode_with_path(json: &str) -> Result<(String, bool), EncodeError> {
        let mut out = String::new();
        let (start, end, rewritten) = encode_document(json, &mut out)?;
        Ok(if rewritten {
            (out, false)
        } else {
            (json[start..end].to_string(), true)
        })
    }

    /// The new encoder and the reference agree on `json`, errors included, and the input is
    /// taken as it is exactly when the reference's output equals it (without outer white space).
    pub(crate) fn check_against_reference(json: &str) {
        let expected = reference::encode(json);
        let got = encode_with_path(json);
        match (&expected, &got) {
            (Ok(want), Ok((line, same))) => {
                assert_eq!(line, want, "input {json:?}");
                assert_eq!(
                    *same,
                    json.trim_matches([' ', '\t', '\n', '\r']) == want,
                    "{json:?}"
                );
            }
            (Err(want), Err(err)) => assert_eq!(err, want, "input {json:?}"),
            _ => panic!("input {json:?}: reference {expected:?}, new {got:?}"),
        }
        assert_eq!(encode_python_compact(json), expected, "input {json:?}");
        assert_eq!(
            encode_shared(json).map(|line| line.to_string()),
            expected,
            "input {json:?}"
        );
    }

    #[test]
    fn matches_protocol_example() {
        let input = "{\"a\": \"\u{e9}\u{1f600}\\/\u{7f}\\u001F\\t\"}";
        assert_eq!(
            encode_python_compact(input).unwrap(),
            r#"{"a":"\u00e9\ud83d\ude00/\u007f\u001f\t"}"#
        );
    }

    #[test]
    fn keeps_numbers_key_order_and_nesting() {
        let input = r#"{ "z" : 1.50, "a" : [ 1e5, -0, 123456789012345678901234567890 ], "n": {"t": true, "f": false, "x": null} }"#;
        assert_eq!(
            encode_python_compact(input).unwrap(),
            r#"{"z":1.50,"a":[1e5,-0,123456789012345678901234567890],"n":{"t":true,"f":false,"x":null}}"#
        );
    }

    #[test]
    fn short_escapes_and_surrogates() {
        let input = r#""\"\\\n\r\t\b\f\u00E9\uD83D\uDE00\ud800 \u0041""#;
        assert_eq!(
            encode_python_compact(input).unwrap(),
            r#""\"\\\n\r\t\b\f\u00e9\ud83d\ude00\ud800 A""#
        );
    }

    #[test]
    fn rejects_invalid_json() {
        for bad in [
            "",
            "{",
            "{\"a\" 1}",
            "[1,]",
            "01",
            "\"a",
            "tru",
            "{} x",
            "\"\u{1}\"",
        ] {
            assert!(encode_python_compact(bad).is_err(), "{bad:?}");
            check_against_reference(bad);
        }
    }

    #[test]
    fn push_python_string_escapes() {
        let mut s = String::new();
        push_python_string(&mut s, "a\"é\u{7f}\u{1f600}\n\u{1}/");
        assert_eq!(s, r#""a\"\u00e9\u007f\ud83d\ude00\n\u0001/""#);
    }

    #[test]
    fn fast_path_only_for_the_output_form() {
        // Already what Python writes: taken as it is.
        for same in [
            r#"{"a":"b","c":[1,-0,1.50,1e5,1E+05,true,false,null],"d":{}}"#,
            r#""\"\\\n\r\t\b\f\u0000\u001f\u007f\u0080\u00e9\ud83d\ude00\ud800\uffff/~ ""#,
            r#"[[],[[]],{"":""}]"#,
            "123456789012345678901234567890",
        ] {
            assert_eq!(encode_with_path(same).unwrap(), (same.to_string(), true));
            check_against_reference(same);
        }
        // White space around the value is left out of the copy.
        assert_eq!(
            encode_with_path(" [1]\n").unwrap(),
            ("[1]".to_string(), true)
        );
        // Anything Python writes another way: rewritten.
        for (input, output) in [
            (r#""\/""#, r#""/""#),
            (r#""\u00E9""#, r#""\u00e9""#),
            (r#""\u0041""#, r#""A""#),
            (r#""\u0022\u005c""#, r#""\"\\""#),
            (r#""\u000a\u0008\u0009\u000c\u000d""#, r#""\n\b\t\f\r""#),
            ("\"\u{e9}\"", r#""\u00e9""#),
            ("\"\u{7f}\"", r#""\u007f""#),
            ("\"a\u{1f600}b\"", r#""a\ud83d\ude00b""#),
            ("[1, 2]", "[1,2]"),
            ("{\"a\":\n1}", "{\"a\":1}"),
        ] {
            assert_eq!(
                encode_with_path(input).unwrap(),
                (output.to_string(), false),
                "{input:?}"
            );
            check_against_reference(input);
        }
    }

    #[test]
    fn plain_end_matches_a_byte_by_byte_scan() {
        let naive = |bytes: &[u8], pos: usize| {
            (pos..bytes.len())
                .find(|&i| !is_plain(bytes[i]))
                .unwrap_or(bytes.len())
        };
        // Every byte value at every place of buffers around the word size, alone and after
        // another special byte.
        for len in 0..20 {
            for at in 0..len {
                for v in 0..=255u8 {
                    let mut buf = vec![b'a'; len];
                    buf[at] = v;
                    for start in 0..=len {
                        assert_eq!(
                            plain_end(&buf, start),
                            naive(&buf, start),
                            "{buf:?} {start}"
                        );
                    }
                    if at + 1 < len {
                        buf[at + 1] = 0xff;
                        assert_eq!(plain_end(&buf, 0), naive(&buf, 0), "{buf:?}");
                    }
                }
            }
        }
        let mut rng = Rng::new(7);
        for _ in 0..20_000 {
            let len = rng.below(40) as usize;
            let buf: Vec<u8> = (0..len)
                .map(|_| {
                    if rng.below(8) == 0 {
                        rng.below(256) as u8
                    } else {
                        b' ' + rng.below(95) as u8
                    }
                })
                .collect();
            let start = rng.below(len as u64 + 1) as usize;
            assert_eq!(
                plain_end(&buf, start),
                naive(&buf, start),
                "{buf:?} {start}"
            );
        }
    }

    #[test]
    fn nesting_limit_as_before() {
        for depth in [511, 512, 513, 514] {
            let arrays = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
            check_against_reference(&arrays);
            let objects = format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth));
            check_against_reference(&objects);
            check_against_reference(&format!("{} {}", "[".repeat(depth), "]".repeat(depth)));
        }
    }

    #[test]
    fn randomized_against_reference() {
        let mut rng = Rng::new(0x5eed);
        let mut same = 0;
        for _ in 0..30_000 {
            let doc = random_document(&mut rng);
            check_against_reference(&doc);
            same += usize::from(encode_with_path(&doc).unwrap().1);
        }
        // Both paths were taken many times.
        assert!((3_000..27_000).contains(&same), "{same} fast");
    }

    #[test]
    fn randomized_invalid_against_reference() {
        let mut rng = Rng::new(0xbad);
        let mut errors = 0;
        for _ in 0..30_000 {
            let doc = mutate(&random_document(&mut rng), &mut rng);
            check_against_reference(&doc);
            errors += usize::from(reference::encode(&doc).is_err());
        }
        assert!(errors > 10_000, "{errors} errors");
    }

    /// splitmix64: a small deterministic PRNG for the tests.
    pub(crate) struct Rng(u64);

    impl Rng {
        pub(crate) fn new(seed: u64) -> Rng {
            Rng(seed)
        }

        pub(crate) fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }

        /// A number below `n` (n > 0).
        pub(crate) fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }

        fn pick<T: Copy>(&mut self, items: &[T]) -> T {
            items[self.below(items.len() as u64) as usize]
        }
    }

    /// How a document is written: white space and string escapes, from the output form itself
    /// (no white space, Python's escapes) to anything valid.
    struct Style {
        /// In 8ths: how likely white space is between two tokens.
        ws: u64,
        /// In 8ths: how likely a character is written some other way than Python's.
        odd: u64,
    }

    /// A random valid JSON text: nested objects and arrays, strings with every kind of character
    /// and escape, numbers of every form, white space anywhere between tokens.
    pub(crate) fn random_document(rng: &mut Rng) -> String {
        let style = Style {
            ws: [0, 0, 0, 1, 4][rng.below(5) as usize],
            odd: [0, 0, 0, 1, 4][rng.below(5) as usize],
        };
        let mut out = String::new();
        ws(rng, &style, &mut out);
        value(rng, &style, 0, &mut out);
        ws(rng, &style, &mut out);
        out
    }

    fn ws(rng: &mut Rng, style: &Style, out: &mut String) {
        if rng.below(8) < style.ws {
            out.push_str(rng.pick(&[" ", "\n", "\t", "\r\n  ", "  ", "\n\t\t"]));
        }
    }

    fn value(rng: &mut Rng, style: &Style, depth: usize, out: &mut String) {
        let kind = if depth > 4 {
            rng.below(5)
        } else {
            rng.below(8)
        };
        match kind {
            0 => out.push_str(rng.pick(&["true", "false", "null"])),
            1 | 2 => number(rng, out),
            3 | 4 => string(rng, style, out),
            5 | 6 => {
                out.push('{');
                let n = rng.below(5);
                for i in 0..n {
                    if i > 0 {
                        ws(rng, style, out);
                        out.push(',');
                    }
                    ws(rng, style, out);
                    string(rng, style, out);
                    ws(rng, style, out);
                    out.push(':');
                    ws(rng, style, out);
                    value(rng, style, depth + 1, out);
                }
                ws(rng, style, out);
                out.push('}');
            }
            _ => {
                out.push('[');
                let n = rng.below(5);
                for i in 0..n {
                    if i > 0 {
                        ws(rng, style, out);
                        out.push(',');
                    }
                    ws(rng, style, out);
                    value(rng, style, depth + 1, out);
                }
                ws(rng, style, out);
                out.push(']');
            }
        }
    }

    fn number(rng: &mut Rng, out: &mut String) {
        if rng.below(2) == 0 {
            out.push_str(rng.pick(&[
                "0",
                "-0",
                "1.50",
                "1e5",
                "1E+05",
                "-1.25e-7",
                "2E+300",
                "0.0",
                "100.000",
                "18446744073709551615",
                "123456789012345678901234567890",
                "-98765432109876543210.000000000000000001",
            ]));
            return;
        }
        if rng.below(2) == 0 {
            out.push('-');
        }
        if rng.below(4) == 0 {
            out.push('0');
        } else {
            out.push(char::from(b'1' + rng.below(9) as u8));
            for _ in 0..rng.below(25) {
                out.push(char::from(b'0' + rng.below(10) as u8));
            }
        }
        if rng.below(2) == 0 {
            out.push('.');
            for _ in 0..=rng.below(6) {
                out.push(char::from(b'0' + rng.below(10) as u8));
            }
        }
        if rng.below(3) == 0 {
            out.push_str(rng.pick(&["e", "E", "e+", "E-", "e-", "E+"]));
            for _ in 0..=rng.below(3) {
                out.push(char::from(b'0' + rng.below(10) as u8));
            }
        }
    }

    /// Characters a re-encoder must get right.
    const TRICKY: &[char] = &[
        'a',
        'Z',
        '0',
        ' ',
        '~',
        '/',
        '"',
        '\\',
        '\u{0}',
        '\u{1}',
        '\u{8}',
        '\t',
        '\n',
        '\u{b}',
        '\u{c}',
        '\r',
        '\u{1b}',
        '\u{1f}',
        '\u{7f}',
        '\u{80}',
        '\u{9f}',
        '\u{a0}',
        'é',
        'ÿ',
        '\u{100}',
        'κ',
        '数',
        'ש',
        '\u{200d}',
        '\u{2028}',
        '\u{feff}',
        '\u{fffd}',
        '\u{ffff}',
        '😀',
        '🚀',
        '𝄞',
        '\u{10000}',
        '\u{10ffff}',
    ];

    fn string(rng: &mut Rng, style: &Style, out: &mut String) {
        out.push('"');
        for _ in 0..rng.below(12) {
            if rng.below(4) == 0 {
                // A run of plain text, to cross the 8-byte words of the scan.
                let n = rng.below(20);
                for _ in 0..n {
                    let c = char::from(b' ' + rng.below(95) as u8);
                    out.push(if c == '"' || c == '\\' { '_' } else { c });
                }
                continue;
            }
            if rng.below(40) == 0 {
                // A lone surrogate: only as an escape.
                let unit = 0xd800 + rng.below(0x800) as u32;
                push_escape(rng, out, unit);
                continue;
            }
            let c = if rng.below(6) == 0 {
                // Any character at all.
                loop {
                    let code = match rng.below(3) {
                        0 => rng.below(0x80),
                        1 => rng.below(0x800),
                        _ => rng.below(0x11_0000),
                    } as u32;
                    if let Some(c) = char::from_u32(code) {
                        break c;
                    }
                }
            } else {
                rng.pick(TRICKY)
            };
            if rng.below(8) < style.odd {
                odd_char(rng, out, c);
            } else {
                push_unit(out, c as u32);
            }
        }
        out.push('"');
    }

    /// One character written some valid way, not necessarily Python's.
    fn odd_char(rng: &mut Rng, out: &mut String, c: char) {
        let code = c as u32;
        match rng.below(4) {
            // Raw, where JSON allows it.
            0 if code >= 0x20 && c != '"' && c != '\\' => out.push(c),
            1 if c == '/' => out.push_str("\\/"),
            1 if code < 0x10000 => push_escape(rng, out, code),
            1 => {
                let v = code - 0x10000;
                push_escape(rng, out, 0xd800 + (v >> 10));
                push_escape(rng, out, 0xdc00 + (v & 0x3ff));
            }
            _ => push_unit(out, code),
        }
    }

    /// `\u` and four hex digits, each digit in either case.
    fn push_escape(rng: &mut Rng, out: &mut String, unit: u32) {
        out.push_str("\\u");
        for shift in [12, 8, 4, 0] {
            let digit = char::from_digit((unit >> shift) & 0xf, 16).expect("a hex digit");
            out.push(if rng.below(2) == 0 {
                digit.to_ascii_uppercase()
            } else {
                digit
            });
        }
    }

    /// `doc` with a few characters deleted, inserted or replaced: mostly invalid JSON.
    pub(crate) fn mutate(doc: &str, rng: &mut Rng) -> String {
        const SPICE: &[char] = &[
            '{', '}', '[', ']', '"', ',', ':', '\\', ' ', '\n', '0', '1', '-', '+', '.', 'e', 'E',
            'a', 'u', 't', 'f', 'n', '/', '\u{0}', '\u{1f}', '\u{7f}', 'é', '😀',
        ];
        let mut chars: Vec<char> = doc.chars().collect();
        for _ in 0..=rng.below(2) {
            let at = rng.below(chars.len() as u64 + 1) as usize;
            match rng.below(3) {
                0 if at < chars.len() => {
                    chars.remove(at);
                }
                1 if at < chars.len() => chars[at] = rng.pick(SPICE),
                _ => chars.insert(at, rng.pick(SPICE)),
            }
        }
        if rng.below(10) == 0 {
            chars.truncate(rng.below(chars.len() as u64 + 1) as usize);
        }
        chars.into_iter().collect()
    }
}

//! The output encoding of an event: compact JSON as Python's `json.dumps(separators=(",", ":"))`
//! writes it with its default `ensure_ascii`, but with numbers kept exactly as received.
//!
//! The encoder re-writes valid JSON text token by token: white space between tokens is dropped,
//! object keys stay in the order received, numbers, `true`, `false` and `null` are copied as they
//! are, and strings are decoded and escaped again the Python way: `\"` `\\` `\n` `\r` `\t` `\b`
//! `\f` in short form, every other character outside printable ASCII (space to `~`) as `\uXXXX` in
//! lower-case hex, with UTF-16 surrogate pairs above U+FFFF. `/` is not escaped.

use std::fmt::Write as _;

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

/// Escapes one already-decoded string into `out` the Python way, with the surrounding quotes.
pub fn push_python_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        push_char(out, c as u32);
    }
    out.push('"');
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
                let unit =
                    u32::from_str_radix(hex, 16).map_err(|_| self.err("invalid \\u escape"))?;
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

#[cfg(test)]
mod tests {
    use super::*;

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
        }
    }

    #[test]
    fn push_python_string_escapes() {
        let mut s = String::new();
        push_python_string(&mut s, "a\"é");
        assert_eq!(s, r#""a\"\u00e9""#);
    }
}

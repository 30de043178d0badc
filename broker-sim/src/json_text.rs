//! Writing JSON text with deliberately varied formatting.
//!
//! The broker must re-encode every event compactly and with its own escaping, whatever the API
//! sent. So generated events come in several layouts (compact, spaced, pretty-printed) and their
//! strings in several escape styles (raw UTF-8, `\uXXXX` for everything outside ASCII with
//! surrogate pairs, `\/` for slashes), all valid JSON.

use std::fmt::Write as _;

use crate::rng::Rng;

/// A JSON value whose numbers keep their exact text and whose objects keep their key order.
#[derive(Debug, Clone)]
pub(crate) enum Json {
    /// `null`
    Null,
    /// `true` / `false`
    Bool(bool),
    /// A number, written exactly as given (e.g. `1.50`, `18446744073709551615`).
    Num(String),
    /// A string.
    Str(String),
    /// An array.
    Arr(Vec<Json>),
    /// An object, keys in this order.
    Obj(Vec<(String, Json)>),
}

impl Json {
    /// An object from `(key, value)` pairs.
    pub(crate) fn obj<const N: usize>(pairs: [(&str, Json); N]) -> Json {
        Json::Obj(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
    }

    /// A string value.
    pub(crate) fn s(text: impl Into<String>) -> Json {
        Json::Str(text.into())
    }

    /// A number value from anything that displays as a JSON number.
    pub(crate) fn n(number: impl ToString) -> Json {
        Json::Num(number.to_string())
    }
}

/// Where white space goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Layout {
    /// No white space at all.
    Compact,
    /// A space after every `,` and `:`.
    Spaced,
    /// One member per line, indented by this text per level.
    Pretty(&'static str),
}

/// How one string is escaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Escapes {
    /// Only what JSON requires; everything else as raw UTF-8 (DEL included).
    Minimal,
    /// Everything outside printable ASCII as `\uXXXX`, surrogate pairs above U+FFFF.
    AsciiOnly { upper_hex: bool },
    /// Like `Minimal`, but `/` written as `\/`.
    Slashes,
}

/// Write `value` as JSON text in `layout`, picking each string's escape style with `rng`.
pub(crate) fn write(value: &Json, layout: Layout, rng: &mut Rng) -> String {
    let mut writer = Writer {
        out: String::new(),
        layout,
        rng,
    };
    writer.value(value, 0);
    writer.out
}

struct Writer<'a> {
    out: String,
    layout: Layout,
    rng: &'a mut Rng,
}

impl Writer<'_> {
    fn value(&mut self, value: &Json, depth: usize) {
        match value {
            Json::Null => self.out.push_str("null"),
            Json::Bool(b) => self.out.push_str(if *b { "true" } else { "false" }),
            Json::Num(n) => self.out.push_str(n),
            Json::Str(s) => self.string(s),
            Json::Arr(items) => {
                self.out.push('[');
                for (i, item) in items.iter().enumerate() {
                    self.separator(i, depth + 1);
                    self.value(item, depth + 1);
                }
                self.close(items.is_empty(), depth);
                self.out.push(']');
            }
            Json::Obj(members) => {
                self.out.push('{');
                for (i, (key, item)) in members.iter().enumerate() {
                    self.separator(i, depth + 1);
                    self.string(key);
                    self.out.push(':');
                    if self.layout != Layout::Compact {
                        self.out.push(' ');
                    }
                    self.value(item, depth + 1);
                }
                self.close(members.is_empty(), depth);
                self.out.push('}');
            }
        }
    }

    /// What goes before the member at `index` of a container whose members sit at `depth`.
    fn separator(&mut self, index: usize, depth: usize) {
        if index > 0 {
            self.out.push(',');
        }
        match self.layout {
            Layout::Compact => {}
            Layout::Spaced => {
                if index > 0 {
                    self.out.push(' ');
                }
            }
            Layout::Pretty(indent) => self.newline(indent, depth),
        }
    }

    /// What goes before the closing bracket of a container at `depth`.
    fn close(&mut self, empty: bool, depth: usize) {
        if let Layout::Pretty(indent) = self.layout {
            if !empty {
                self.newline(indent, depth);
            }
        }
    }

    fn newline(&mut self, indent: &str, depth: usize) {
        self.out.push('\n');
        for _ in 0..depth {
            self.out.push_str(indent);
        }
    }

    fn string(&mut self, s: &str) {
        let style = match self.rng.below(20) {
            0..=13 => Escapes::Minimal,
            14..=16 => Escapes::AsciiOnly {
                upper_hex: self.rng.one_in(2),
            },
            _ => Escapes::Slashes,
        };
        self.out.push('"');
        for c in s.chars() {
            match (c, style) {
                ('"', _) => self.out.push_str("\\\""),
                ('\\', _) => self.out.push_str("\\\\"),
                ('/', Escapes::Slashes) => self.out.push_str("\\/"),
                ('\n', Escapes::Minimal | Escapes::Slashes) => self.out.push_str("\\n"),
                ('\r', Escapes::Minimal | Escapes::Slashes) => self.out.push_str("\\r"),
                ('\t', Escapes::Minimal | Escapes::Slashes) => self.out.push_str("\\t"),
                ('\u{8}', Escapes::Minimal | Escapes::Slashes) => self.out.push_str("\\b"),
                ('\u{c}', Escapes::Minimal | Escapes::Slashes) => self.out.push_str("\\f"),
                (c, Escapes::AsciiOnly { upper_hex }) if !(' '..='~').contains(&c) => {
                    let mut units = [0u16; 2];
                    for unit in c.encode_utf16(&mut units) {
                        self.unicode_escape(*unit, upper_hex);
                    }
                }
                (c, _) if (c as u32) < 0x20 => self.unicode_escape(c as u16, false),
                (c, _) => self.out.push(c),
            }
        }
        self.out.push('"');
    }

    fn unicode_escape(&mut self, unit: u16, upper_hex: bool) {
        // Writing to a String cannot fail.
        let _ = if upper_hex {
            write!(self.out, "\\u{unit:04X}")
        } else {
            write!(self.out, "\\u{unit:04x}")
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Json {
        Json::obj([
            ("a", Json::s("é😀/\u{7f}\u{1}\t\"\\ 中文 שלום")),
            ("n", Json::n("1.50")),
            ("big", Json::n("18446744073709551615")),
            (
                "list",
                Json::Arr(vec![Json::Null, Json::Bool(true), Json::Arr(vec![])]),
            ),
            ("empty", Json::Obj(vec![])),
        ])
    }

    #[test]
    fn every_layout_and_escape_style_is_valid_json_with_the_same_content() {
        let mut rng = Rng::new(7);
        let expected: serde_json::Value =
            serde_json::from_str(&write(&sample(), Layout::Compact, &mut rng)).unwrap();
        assert_eq!(expected["a"], "é😀/\u{7f}\u{1}\t\"\\ 中文 שלום");
        for layout in [
            Layout::Compact,
            Layout::Spaced,
            Layout::Pretty("  "),
            Layout::Pretty("\t"),
        ] {
            for _ in 0..40 {
                let text = write(&sample(), layout, &mut rng);
                let value: serde_json::Value = serde_json::from_str(&text).unwrap();
                assert_eq!(value, expected, "{text}");
                assert!(text.contains("1.50"));
            }
        }
    }

    #[test]
    fn ascii_style_uses_surrogate_pairs() {
        let mut rng = Rng::new(3);
        let texts: Vec<String> = (0..200)
            .map(|_| write(&Json::s("😀"), Layout::Compact, &mut rng))
            .collect();
        assert!(texts.iter().any(|t| t == "\"\\ud83d\\ude00\""));
        assert!(texts.iter().any(|t| t == "\"\\uD83D\\uDE00\""));
        assert!(texts.iter().any(|t| t == "\"😀\""));
    }
}

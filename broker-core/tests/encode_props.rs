//! Property tests of the event encoder (docs/protocol.md, "output line") with serde_json as the
//! oracle: a generated JSON document, written with any white space and any valid escapes, comes
//! out exactly as Python's compact `json.dumps` would write it (numbers and key order as
//! received, duplicate keys kept), parses with serde_json to the same value as the input, and
//! keeps the byte rules (printable ASCII, no white space, Python's escapes only). Arbitrary text
//! never panics: whatever serde_json accepts, the encoder accepts with the same value; what it
//! refuses gets a one-line error with an offset inside the text.
//! The case count comes from `PROPTEST_CASES` (scripts/test sets it).

use broker_core::encode::encode_python_compact;
use proptest::prelude::*;
use serde_json::Value;

/// One piece of a string: a character with how to write it (a selector for the style), or a
/// lone UTF-16 surrogate, which JSON text can only hold as a `\u` escape.
#[derive(Clone, Debug)]
enum Piece {
    Char(char, u8),
    Lone(u16),
}

/// A JSON document as generated: numbers as their text, objects as lists (keys may repeat).
#[derive(Clone, Debug)]
enum Node {
    Null,
    Bool(bool),
    Number(String),
    Str(Vec<Piece>),
    Array(Vec<Node>),
    Object(Vec<(Vec<Piece>, Node)>),
}

/// Characters an encoder must get right, besides any character at all.
const TRICKY: &[char] = &[
    '"',
    '\\',
    '/',
    ' ',
    '~',
    '\u{0}',
    '\u{8}',
    '\t',
    '\n',
    '\u{b}',
    '\u{c}',
    '\r',
    '\u{1f}',
    '\u{7f}',
    '\u{80}',
    '\u{a0}',
    'é',
    '\u{2028}',
    '\u{feff}',
    '\u{ffff}',
    '😀',
    '\u{10ffff}',
];

fn piece() -> impl Strategy<Value = Piece> {
    prop_oneof![
        10 => (any::<char>(), any::<u8>()).prop_map(|(c, s)| Piece::Char(c, s)),
        10 => (proptest::sample::select(TRICKY), any::<u8>()).prop_map(|(c, s)| Piece::Char(c, s)),
        10 => ("[ -~]", any::<u8>()).prop_map(|(c, s)| Piece::Char(c.chars().next().unwrap(), s)),
        1 => (0xd800u16..0xe000).prop_map(Piece::Lone),
    ]
}

fn pieces() -> impl Strategy<Value = Vec<Piece>> {
    proptest::collection::vec(piece(), 0..12)
}

/// Keys from a small set, so that objects often repeat one.
fn key() -> impl Strategy<Value = Vec<Piece>> {
    prop_oneof![
        3 => "[a-c]{1}".prop_map(|k| k.chars().map(|c| Piece::Char(c, 0)).collect()),
        1 => pieces(),
    ]
}

/// Numbers of every form JSON allows: big integers, many decimals, large and small exponents.
fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        "-?(0|[1-9][0-9]{0,30})(\\.[0-9]{1,20})?([eE][+-]?[0-9]{1,3})?",
        proptest::sample::select(vec![
            "0",
            "-0",
            "1.50",
            "1E+05",
            "2e308",
            "1e-400",
            "18446744073709551616",
            "-9223372036854775809",
            "4.9e-324",
            "1.7976931348623157e308",
        ])
        .prop_map(String::from),
    ]
}

fn node() -> impl Strategy<Value = Node> {
    let leaf = prop_oneof![
        Just(Node::Null),
        any::<bool>().prop_map(Node::Bool),
        number().prop_map(Node::Number),
        pieces().prop_map(Node::Str),
    ];
    leaf.prop_recursive(8, 96, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Node::Array),
            proptest::collection::vec((key(), inner), 0..6).prop_map(Node::Object),
        ]
    })
}

/// Writes a document either in the output form (`pad` empty: no white space, Python's escapes)
/// or in some other valid way (white space picked from `pad`, each character's escape from its
/// style).
struct Writer<'a> {
    out: String,
    pad: &'a [u8],
    at: usize,
    canonical: bool,
}

impl Writer<'_> {
    fn ws(&mut self) {
        if self.canonical || self.pad.is_empty() {
            return;
        }
        self.at += 1;
        let ws = [" ", "", "\n", "", "\t", "\r\n  ", "", "  "];
        self.out
            .push_str(ws[usize::from(self.pad[self.at % self.pad.len()]) % ws.len()]);
    }

    fn node(&mut self, node: &Node) {
        self.ws();
        match node {
            Node::Null => self.out.push_str("null"),
            Node::Bool(b) => self.out.push_str(if *b { "true" } else { "false" }),
            Node::Number(n) => self.out.push_str(n),
            Node::Str(s) => self.string(s),
            Node::Array(items) => {
                self.out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        self.ws();
                        self.out.push(',');
                    }
                    self.node(item);
                }
                self.ws();
                self.out.push(']');
            }
            Node::Object(members) => {
                self.out.push('{');
                for (i, (k, v)) in members.iter().enumerate() {
                    if i > 0 {
                        self.ws();
                        self.out.push(',');
                    }
                    self.ws();
                    self.string(k);
                    self.ws();
                    self.out.push(':');
                    self.node(v);
                }
                self.ws();
                self.out.push('}');
            }
        }
        self.ws();
    }

    fn string(&mut self, pieces: &[Piece]) {
        self.out.push('"');
        for piece in pieces {
            match *piece {
                Piece::Lone(unit) => self.u_escape(unit, 0),
                Piece::Char(c, style) if self.canonical => self.python_char(c, style),
                Piece::Char(c, style) => self.some_char(c, style),
            }
        }
        self.out.push('"');
    }

    /// `\u` and four hex digits, upper case where the style's bits say so (none in the output
    /// form).
    fn u_escape(&mut self, unit: u16, style: u8) {
        self.out.push_str("\\u");
        for (i, shift) in [12, 8, 4, 0].into_iter().enumerate() {
            let digit = char::from_digit(u32::from(unit >> shift) & 0xf, 16).unwrap();
            let upper = !self.canonical && style & (1 << (i + 2)) != 0;
            self.out.push(if upper {
                digit.to_ascii_uppercase()
            } else {
                digit
            });
        }
    }

    fn u_escapes(&mut self, c: char, style: u8) {
        let mut units = [0u16; 2];
        for unit in c.encode_utf16(&mut units) {
            self.u_escape(*unit, style);
        }
    }

    /// The character as docs/protocol.md writes it, independently of the encoder's own code.
    fn python_char(&mut self, c: char, style: u8) {
        match c {
            '"' => self.out.push_str("\\\""),
            '\\' => self.out.push_str("\\\\"),
            '\n' => self.out.push_str("\\n"),
            '\r' => self.out.push_str("\\r"),
            '\t' => self.out.push_str("\\t"),
            '\u{8}' => self.out.push_str("\\b"),
            '\u{c}' => self.out.push_str("\\f"),
            ' '..='~' => self.out.push(c),
            _ => self.u_escapes(c, style),
        }
    }

    /// The character in one of the valid ways of writing it, picked by `style`.
    fn some_char(&mut self, c: char, style: u8) {
        match style % 4 {
            0 if c >= ' ' && c != '"' && c != '\\' => self.out.push(c),
            1 => self.u_escapes(c, style),
            2 if c == '/' => self.out.push_str("\\/"),
            _ => self.python_char(c, style),
        }
    }
}

fn write(node: &Node, pad: &[u8], canonical: bool) -> String {
    let mut w = Writer {
        out: String::new(),
        pad,
        at: 0,
        canonical,
    };
    w.node(node);
    w.out
}

/// Checks the byte rules of docs/protocol.md on an output line: printable ASCII only, no white
/// space between tokens, and inside strings only Python's escapes (short forms where there is
/// one, `\u` in lower-case hex only for what is not printable ASCII, `/` never escaped).
fn check_byte_rules(line: &str) -> Result<(), String> {
    let b = line.as_bytes();
    let mut in_string = false;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if !(0x20..0x7f).contains(&c) {
            return Err(format!("byte {c:#x} at {i} is not printable ASCII"));
        }
        if !in_string {
            if c == b' ' {
                return Err(format!("white space at {i}"));
            }
            in_string = c == b'"';
            i += 1;
            continue;
        }
        match c {
            b'"' => in_string = false,
            b'\\' => {
                match b.get(i + 1) {
                    Some(b'"' | b'\\' | b'n' | b'r' | b't' | b'b' | b'f') => {}
                    Some(b'u') => {
                        let hex = line.get(i + 2..i + 6).ok_or("short \\u")?;
                        if !hex.bytes().all(|h| matches!(h, b'0'..=b'9' | b'a'..=b'f')) {
                            return Err(format!("\\u{hex} at {i} is not lower-case hex"));
                        }
                        let unit = u32::from_str_radix(hex, 16).unwrap();
                        let short = matches!(unit, 0x08..=0x0a | 0x0c | 0x0d);
                        if short || (0x20..0x7f).contains(&unit) {
                            return Err(format!("\\u{hex} at {i} has a shorter form"));
                        }
                        i += 4;
                    }
                    other => return Err(format!("escape {other:?} at {i} is not Python's")),
                }
                i += 1;
            }
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

/// serde_json's reading of a text, or `None` where it refuses it (a lone surrogate, a number
/// out of `f64`'s range).
fn serde_value(text: &str) -> Option<Value> {
    serde_json::from_str(text).ok()
}

proptest! {
    #[test]
    fn a_document_comes_out_in_the_output_form_with_the_same_value(
        doc in node(),
        pad in proptest::collection::vec(any::<u8>(), 0..16),
    ) {
        let input = write(&doc, &pad, false);
        let want = write(&doc, &[], true);
        let got = encode_python_compact(&input).map_err(|e| TestCaseError::fail(format!("{e}: {input:?}")))?;
        prop_assert_eq!(&got, &want, "input {:?}", input);
        if let Err(e) = check_byte_rules(&got) {
            return Err(TestCaseError::fail(format!("{e}: {got:?}")));
        }
        // serde_json reads the output as it reads the input (both or neither, for a lone
        // surrogate or a number out of range).
        prop_assert_eq!(serde_value(&got), serde_value(&input), "input {:?}", input);
        // The output form is a fixed point.
        prop_assert_eq!(encode_python_compact(&got).unwrap(), got);
    }

    #[test]
    fn whatever_serde_json_reads_is_encoded_to_the_same_value(
        doc in node(),
        pad in proptest::collection::vec(any::<u8>(), 1..16),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), 0u8..4, proptest::sample::select(
            vec!['{', '}', '[', ']', '"', ',', ':', '\\', ' ', '0', '-', '.', 'e', 'u', '/', '\u{0}', '\u{7f}', 'é', '😀']
        )), 1..4),
    ) {
        let mut chars: Vec<char> = write(&doc, &pad, false).chars().collect();
        for (at, how, c) in edits {
            let i = at.index(chars.len() + 1);
            match how {
                0 if i < chars.len() => { chars.remove(i); }
                1 if i < chars.len() => chars[i] = c,
                2 => chars.truncate(i),
                _ => chars.insert(i, c),
            }
        }
        let text: String = chars.into_iter().collect();
        check_text(&text)?;
    }

    #[test]
    fn arbitrary_text_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        check_text(&String::from_utf8_lossy(&bytes))?;
    }

    #[test]
    fn deep_nesting_is_encoded_up_to_the_limit_and_refused_beyond(
        depth in 1usize..700,
        objects in any::<bool>(),
    ) {
        let (open, close) = if objects { ("{\"k\" : ", "}") } else { ("[ ", "]") };
        let text = format!("{}0{}", open.repeat(depth), close.repeat(depth));
        let got = encode_python_compact(&text);
        // The innermost value may be 512 levels deep.
        if depth <= 512 {
            prop_assert_eq!(got.unwrap(), text.replace(' ', ""));
        } else {
            prop_assert_eq!(got.unwrap_err().reason, "nested too deeply");
        }
    }
}

/// The properties of any text: no panic; an error is one line at an offset inside the text;
/// what serde_json reads is encoded to the same value, in the output form.
fn check_text(text: &str) -> Result<(), TestCaseError> {
    match encode_python_compact(text) {
        Ok(line) => {
            if let Err(e) = check_byte_rules(&line) {
                return Err(TestCaseError::fail(format!("{e}: {line:?} from {text:?}")));
            }
            if let Some(value) = serde_value(text) {
                prop_assert_eq!(serde_value(&line), Some(value), "{:?}", text);
            }
        }
        Err(e) => {
            prop_assert!(e.offset <= text.len(), "{e} in {text:?}");
            prop_assert!(!e.to_string().contains('\n'), "{e}");
            prop_assert!(
                serde_value(text).is_none(),
                "serde_json reads {text:?}, the encoder refuses it: {e}"
            );
        }
    }
    Ok(())
}

//! Property tests of the INI pre-pass and the config loader against hostile input: arbitrary
//! bytes, invalid UTF-8, very long lines, NUL bytes and duplicate sections never panic and give a
//! one-line error naming the file; a generated valid file parses back to exactly what was written
//! (nothing valid is dropped); a secret on any malformed line never reaches an error message.
//! The case count comes from `PROPTEST_CASES` (scripts/test sets it).

use std::path::Path;

use broker_core::config::ini::{parse_ini, parse_secret_ini};
use broker_core::config::secret::CREDENTIALS_FORM;
use broker_core::config::BrokerConfig;
use proptest::prelude::*;

const PATH: &str = "/etc/b.conf";

/// Checks that an error is one line naming the file.
fn assert_clear(message: &str) {
    assert!(!message.contains('\n'), "{message:?}");
    assert!(message.starts_with(PATH), "{message:?}");
}

/// One generated `key = value` line: the key, the value (`None`: a bare key, read as `true`).
type Entry = (String, Option<String>);

fn key() -> impl Strategy<Value = String> {
    "[A-Za-z][A-Za-z0-9_]{0,15}"
}

fn value() -> impl Strategy<Value = Option<String>> {
    proptest::option::weighted(
        0.9,
        "[A-Za-z0-9._/,=:@-]([A-Za-z0-9 ._/,=:@-]{0,30}[A-Za-z0-9._/,=:@-])?",
    )
}

fn section() -> impl Strategy<Value = (String, Vec<Entry>)> {
    (
        prop_oneof![
            "[A-Za-z][A-Za-z0-9_]{0,10}",
            "Pipe\\.[A-Za-z][A-Za-z0-9_-]{0,10}"
        ],
        proptest::collection::vec((key(), value()), 1..6),
    )
}

/// Renders sections with random blank lines, comments and spacing; returns the text and, per
/// section, its header line and its entries' lines.
fn render(sections: &[(String, Vec<Entry>)], pad: &[u8]) -> (String, Vec<(usize, Vec<usize>)>) {
    let mut text = String::new();
    let mut line = 0;
    let mut lines = Vec::new();
    let mut pads = pad.iter().cycle();
    let mut filler =
        |text: &mut String, line: &mut usize| match pads.next().copied().unwrap_or(0) % 4 {
            1 => {
                text.push('\n');
                *line += 1;
            }
            2 => {
                text.push_str("# a comment = [x]\n");
                *line += 1;
            }
            3 => {
                text.push_str("; another\n");
                *line += 1;
            }
            _ => {}
        };
    for (name, entries) in sections {
        filler(&mut text, &mut line);
        line += 1;
        text.push_str(&format!("[ {name} ]  # header\n"));
        let header = line;
        let mut at = Vec::new();
        for (k, v) in entries {
            filler(&mut text, &mut line);
            line += 1;
            match v {
                Some(v) => text.push_str(&format!("  {k}\t=  {v} # trailing\n")),
                None => text.push_str(&format!("{k}\n")),
            }
            at.push(line);
        }
        lines.push((header, at));
    }
    (text, lines)
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let text = String::from_utf8_lossy(&bytes);
        if let Err(e) = parse_ini(&text, Path::new(PATH)) {
            assert_clear(&e.message);
        }
        if let Err(e) = BrokerConfig::parse(&text, Path::new(PATH)) {
            assert_clear(&e.message);
        }
    }

    #[test]
    fn arbitrary_files_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..1024)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.conf");
        std::fs::write(&path, &bytes).unwrap();
        if let Err(e) = BrokerConfig::load(&path) {
            assert!(!e.message.contains('\n'), "{:?}", e.message);
            assert!(e.message.starts_with(&path.display().to_string()), "{:?}", e.message);
            if std::str::from_utf8(&bytes).is_err() {
                assert!(e.message.ends_with("is not UTF-8 text"), "{:?}", e.message);
            }
        }
    }

    #[test]
    fn a_generated_file_parses_back_whole(
        sections in proptest::collection::vec(section(), 1..6),
        pad in proptest::collection::vec(any::<u8>(), 1..16),
    ) {
        // Duplicate section names are allowed and stay apart.
        let (text, lines) = render(&sections, &pad);
        let parsed = parse_ini(&text, Path::new(PATH)).unwrap();
        prop_assert_eq!(parsed.len(), sections.len());
        for ((s, (name, entries)), (header, at)) in parsed.iter().zip(&sections).zip(&lines) {
            prop_assert_eq!(&s.name, name);
            prop_assert_eq!(s.line, *header);
            let got: Vec<_> = s.entries.iter().map(|e| (e.key.clone(), e.value.clone(), e.line)).collect();
            let want: Vec<_> = entries
                .iter()
                .zip(at)
                .map(|((k, v), l)| (k.clone(), v.clone().unwrap_or_else(|| "true".into()), *l))
                .collect();
            prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn very_long_lines_and_nul_bytes_give_a_clear_error(
        long in 1usize..200_000,
        nul_at in 0usize..64,
        sections in proptest::collection::vec(section(), 1..4),
    ) {
        let (text, _) = render(&sections, &[0]);
        let long_line = format!("Key = {}\n", "v".repeat(long));
        let text = format!("{text}{long_line}");
        let parsed = parse_ini(&text, Path::new(PATH)).unwrap();
        prop_assert_eq!(parsed.last().unwrap().entries.last().unwrap().value.len(), long);
        let mut bytes = text.into_bytes();
        let at = nul_at.min(bytes.len() - 1);
        bytes[at] = 0;
        let line = bytes[..at].iter().filter(|b| **b == b'\n').count() + 1;
        let text = String::from_utf8(bytes).unwrap();
        let e = parse_ini(&text, Path::new(PATH)).unwrap_err();
        prop_assert!(e.message.starts_with(&format!("{PATH} line {line}: has a NUL byte")), "{}", e.message);
    }

    #[test]
    fn a_generated_broker_section_keeps_every_key(
        broker in "[A-Za-z0-9_-]{1,20}",
        host in "[a-z][a-z0-9-]{0,10}(\\.[a-z][a-z0-9-]{0,10}){0,3}",
        timeout in 1u32..100,
        spool in "/[a-z0-9_/.-]{1,30}",
        spool_max_k in 4u64..1_000_000,
        upper in any::<bool>(),
    ) {
        // Keys are compared without case and underscores: `spool_max` is `SpoolMax`.
        let key = |k: &str| if upper { k.to_ascii_uppercase() } else { k.to_string() };
        let text = format!(
            "[Broker]\n{} = {broker}\n{} = https://{host}/\n{} = {timeout}\n{} = {spool}\n{} = {spool_max_k}K\n",
            key("Broker"), key("Api"), key("Timeout"), key("Spool"), key("Spool_Max"),
        );
        let config = BrokerConfig::parse(&text, Path::new(PATH)).unwrap();
        prop_assert_eq!(config.broker, broker);
        prop_assert_eq!(config.api, format!("https://{host}"));
        prop_assert_eq!(config.timeout.as_secs(), u64::from(timeout));
        prop_assert_eq!(config.spool, Some(std::path::PathBuf::from(spool)));
        prop_assert_eq!(config.spool_max, spool_max_k << 10);
        prop_assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    }

    #[test]
    fn a_secret_on_any_line_of_a_credentials_file_is_never_shown(
        before in "[ -~]{0,12}",
        after in "[ -~]{0,12}",
    ) {
        let secret = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXh5eg";
        let text = format!("[Broker.Credentials]\n{before}{secret}{after}\n");
        if let Err(e) = parse_secret_ini(&text, Path::new(PATH), CREDENTIALS_FORM) {
            assert_clear(&e.message);
            prop_assert!(!e.message.contains(secret), "{}", e.message);
        }
        let text = format!("[Broker]\nBroker = b\n[Broker.Credentials]\n{before}{secret}{after}\n");
        if let Err(e) = BrokerConfig::parse(&text, Path::new(PATH)) {
            assert_clear(&e.message);
            prop_assert!(!e.message.contains(secret), "{}", e.message);
        }
    }
}

//! Keeping secrets out of config errors.
//!
//! The credentials file holds the private key and the setup file the one-time code, so an error
//! about one of their lines (or about a line of an inline `[Broker.Credentials]` or
//! `[Broker.Setup]` section in broker.conf) never quotes the line: it names the file, the line and
//! the form expected there. Everywhere else a key is quoted only up to its first character that
//! cannot be in a key, and at most [`MAX_SHOWN_KEY`] characters of it, so a value written after
//! a colon or a space (`Token: s3cret`, `Url https://x/?token=s3cret`) stays out of the message.

use super::ini::canonical_key;

/// The longest key an error message shows.
pub const MAX_SHOWN_KEY: usize = 40;

/// The expected form of a line in the credentials file or a `[Broker.Credentials]` section.
pub const CREDENTIALS_FORM: &str =
    "`PrivateKey = <base64 key>` or `PublicKey = <base64 key>` under [Broker.Credentials]";

/// The expected form of a line in the setup file or a `[Broker.Setup]` section.
pub const SETUP_FORM: &str =
    "`Code = <setup code>`, `Expires = <UTC time>` or `KeepOthers = true` under [Broker.Setup]";

/// Whether `c` can be part of a key as error messages show it.
fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')
}

/// The part of `key` an error message may show: up to the first character that cannot be in a
/// key, at most [`MAX_SHOWN_KEY`] characters, with `...` when something was cut.
pub fn shown_key(key: &str) -> String {
    let kept: String = key
        .chars()
        .take_while(|c| is_key_char(*c))
        .take(MAX_SHOWN_KEY)
        .collect();
    if kept.len() == key.len() {
        kept
    } else {
        format!("{kept}...")
    }
}

/// The expected form of a line of section `name` when that section holds secrets
/// (`[Broker.Credentials]`, `[Broker.Setup]`), else `None`.
pub fn secret_section_form(name: &str) -> Option<&'static str> {
    let (head, rest) = name.split_once('.')?;
    if canonical_key(head.trim()) != "broker" {
        return None;
    }
    match canonical_key(rest.trim()).as_str() {
        "credentials" => Some(CREDENTIALS_FORM),
        "setup" => Some(SETUP_FORM),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_cut_at_the_first_character_a_key_cannot_have() {
        assert_eq!(shown_key("Token"), "Token");
        assert_eq!(shown_key("Token: s3cret"), "Token...");
        assert_eq!(shown_key("Url https://x/?token"), "Url...");
        assert_eq!(
            shown_key(&"k".repeat(100)),
            format!("{}...", "k".repeat(40))
        );
        assert_eq!(shown_key(": s3cret"), "...");
    }

    #[test]
    fn secret_sections() {
        assert_eq!(
            secret_section_form("Broker.Credentials"),
            Some(CREDENTIALS_FORM)
        );
        assert_eq!(secret_section_form("broker . setup"), Some(SETUP_FORM));
        assert_eq!(secret_section_form("Broker"), None);
        assert_eq!(secret_section_form("Pipe.Setup"), None);
    }
}

//! Text from outside (API answers, event ids) that the broker shows in a log line or an error
//! message: made one line, with control characters written as escapes, so that it can neither
//! split a log line in two nor send terminal escapes.

/// `text` with every control character written as its escape (`\n`, `\u{1b}`); any other text
/// as it is.
pub fn one_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(
            one_line("a\nb\r\u{1b}[2J\u{85}é 😀"),
            r"a\nb\r\u{1b}[2J\u{85}é 😀"
        );
        assert_eq!(one_line("plain text"), "plain text");
    }
}

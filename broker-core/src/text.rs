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

/// An error and its causes on one line: each `source()` after the error's own text, joined
/// with `: `, leaving out a cause whose text an earlier one already holds (many errors repeat
/// their source's text), control characters escaped ([`one_line`]).
pub fn error_causes(error: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = vec![error.to_string()];
    let mut source = error.source();
    while let Some(e) = source {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = e.source();
    }
    one_line(&parts.join(": "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Chain(&'static str, Option<Box<Chain>>);

    impl std::fmt::Display for Chain {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for Chain {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|e| e as _)
        }
    }

    #[test]
    fn causes_on_one_line_without_repeats() {
        let inner = Chain("connection refused\n", None);
        let middle = Chain(
            "tcp connect error: connection refused\n",
            Some(Box::new(inner)),
        );
        let outer = Chain("client error (Connect)", Some(Box::new(middle)));
        assert_eq!(
            error_causes(&outer),
            "client error (Connect): tcp connect error: connection refused\\n"
        );
        assert_eq!(error_causes(&Chain("alone", None)), "alone");
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(
            one_line("a\nb\r\u{1b}[2J\u{85}é 😀"),
            r"a\nb\r\u{1b}[2J\u{85}é 😀"
        );
        assert_eq!(one_line("plain text"), "plain text");
    }
}

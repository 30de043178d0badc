//! Turns an [`std::io::Error`] into the short reason that ends a sink's one-line messages:
//! `cannot connect to logs:514: connection refused`, never `Connection refused (os error 111)`.

use std::io;

/// The error's description in lower case, without Rust's ` (os error N)` suffix:
/// `No such file or directory (os error 2)` becomes `no such file or directory`.
pub fn reason(error: &io::Error) -> String {
    let text = error.to_string();
    let text = match text.rfind(" (os error ") {
        Some(at) if text.ends_with(')') => &text[..at],
        _ => text.as_str(),
    };
    let mut chars = text.chars();
    match (chars.next(), chars.next()) {
        (Some(first), Some(second)) if first.is_ascii_uppercase() && !second.is_uppercase() => {
            let mut lowered = String::with_capacity(text.len());
            lowered.push(first.to_ascii_lowercase());
            lowered.push_str(&text[first.len_utf8()..]);
            lowered
        }
        _ => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_os_error_suffix_and_capital() {
        let e = io::Error::from_raw_os_error(libc::ENOENT);
        assert_eq!(reason(&e), "no such file or directory");
        let e = io::Error::other("DNS failure");
        assert_eq!(reason(&e), "DNS failure");
    }
}

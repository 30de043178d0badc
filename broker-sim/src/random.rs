//! Unpredictable identifiers: challenge ids and values, session tokens, credential ids.
//!
//! They come from the operating system's generator (`getrandom`), never from the seeded event
//! generator, so that a broker cannot guess them.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// `bytes` random bytes as URL-safe base64 text without padding.
pub(crate) fn token(bytes: usize) -> Result<String, getrandom::Error> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf)?;
    Ok(URL_SAFE_NO_PAD.encode(buf))
}

/// `bytes` random bytes as lower-case hex text.
pub(crate) fn hex_id(bytes: usize) -> Result<String, getrandom::Error> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf)?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_differ_and_have_the_right_length() {
        let a = token(32).unwrap_or_default();
        let b = token(32).unwrap_or_default();
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
        assert_eq!(hex_id(8).unwrap_or_default().len(), 16);
    }
}

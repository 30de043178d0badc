//! [`Secrets`]: the texts a message must never show, masked in every form a receiver may echo.
//!
//! A sink adds its secrets: a token, password or API key ([`Secrets::add`]), a header value with
//! its credentials ([`Secrets::add_credential`]), a URL's path and query ([`Secrets::add_url`]:
//! a webhook URL often carries its secret there). From each it also masks:
//!
//! - for a header value, the credential alone: every word after the first (`Splunk TOKEN` gives
//!   `TOKEN`, `Basic dXNlcjpwYXNz` gives `dXNlcjpwYXNz`), and for `Basic` the decoded
//!   `user:password` and the password alone;
//! - the percent-decoded form of each secret that holds `%XX`;
//! - the base64 form of each secret (standard alphabet, padded), as a receiver echoes a
//!   credential it decoded or a `Basic` header it built.
//!
//! A text is matched against each secret through the escapes a receiver may have applied when
//! it echoed the secret, in any mix and any hex case: JSON (`\"`, `\\`, `\/`, `\u002B`),
//! percent-encoding (`%2B`, `%2b`) and `+` for a space (a form-encoded echo). Each match is
//! replaced by `***`.

use base64::Engine as _;
use reqwest::Url;

use super::secret::Secret;

/// What replaces a secret.
pub const MASK: &str = "***";

/// Secrets shorter than this are not masked on their own (a word like `a` would garble every
/// message); they are still masked as part of the longer texts they are in.
const SHORTEST: usize = 4;

/// The texts to mask, longest first (a secret that contains another is masked whole).
#[derive(Clone, Debug, Default)]
pub struct Secrets {
    texts: Vec<Vec<u8>>,
}

impl Secrets {
    /// No secret yet.
    pub fn new() -> Self {
        Secrets::default()
    }

    /// Masks a secret read from a key or a file ([`Secret`]).
    pub fn add_secret(&mut self, secret: &Secret) {
        self.add(secret.expose());
    }

    /// Masks a URL's path (unless it is `/`) and its query.
    pub fn add_url(&mut self, url: &Url) {
        if url.path().len() > 1 {
            self.add(url.path());
        }
        if let Some(query) = url.query() {
            self.add(query);
        }
    }

    /// The length of the longest secret, in bytes.
    pub fn longest(&self) -> usize {
        self.texts.first().map_or(0, Vec::len)
    }

    /// `text` with every secret, in any of the forms of the module docs, replaced by `***`.
    pub fn mask(&self, text: &str) -> String {
        if self.texts.is_empty() {
            return text.to_string();
        }
        let bytes = text.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut at = 0;
        while at < bytes.len() {
            match self.texts.iter().find_map(|s| match_at(bytes, at, s)) {
                Some(end) => {
                    out.extend_from_slice(MASK.as_bytes());
                    at = end;
                }
                None => {
                    out.push(bytes[at]);
                    at += 1;
                }
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Masks a header value (`Bearer TOKEN`), its credential words and, for `Basic`, the
    /// decoded `user:password` and the password.
    pub fn add_credential(&mut self, value: &str) {
        self.add(value);
        let mut words = value.split_whitespace();
        let scheme = words.next().unwrap_or_default();
        for word in words {
            self.add(word);
            if scheme.eq_ignore_ascii_case("basic") {
                let decoded = base64::engine::general_purpose::STANDARD.decode(word);
                if let Some(pair) = decoded.ok().and_then(|d| String::from_utf8(d).ok()) {
                    if let Some((_, password)) = pair.split_once(':') {
                        self.add(password);
                    }
                    self.add(&pair);
                }
            }
        }
    }

    /// Masks a secret, its percent-decoded form if it holds `%XX`, and its base64 form.
    pub fn add(&mut self, secret: &str) {
        if secret.len() < SHORTEST {
            return;
        }
        let base64 = base64::engine::general_purpose::STANDARD.encode(secret);
        for text in [
            secret.as_bytes().to_vec(),
            percent_decode(secret.as_bytes()),
            base64.into_bytes(),
        ] {
            if text.len() >= SHORTEST && !self.texts.contains(&text) {
                self.texts.push(text);
            }
        }
        // Longest first: a secret that contains another is masked whole.
        self.texts.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }
}

/// `%XX` sequences decoded; anything else as it is.
fn percent_decode(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut at = 0;
    while at < text.len() {
        match percent_escape(text, at) {
            Some(byte) => {
                out.push(byte);
                at += 3;
            }
            None => {
                out.push(text[at]);
                at += 1;
            }
        }
    }
    out
}

/// Where a match of `secret` starting at `text[at]` ends, reading escapes as the bytes they
/// stand for (see the module docs).
fn match_at(text: &[u8], at: usize, secret: &[u8]) -> Option<usize> {
    let Some((&want, rest)) = secret.split_first() else {
        return Some(at);
    };
    let here = *text.get(at)?;
    // The byte as it is, then each escape that stands for it (a secret may hold `%` or `\`).
    if here == want {
        if let Some(end) = match_at(text, at + 1, rest) {
            return Some(end);
        }
    }
    let (byte, len) = escape(text, at)?;
    if byte == want {
        return match_at(text, at + len, rest);
    }
    None
}

/// The byte an escape at `text[at]` stands for, and its length.
fn escape(text: &[u8], at: usize) -> Option<(u8, usize)> {
    match text[at] {
        b'%' => percent_escape(text, at).map(|b| (b, 3)),
        b'+' => Some((b' ', 1)),
        b'\\' => match *text.get(at + 1)? {
            b @ (b'"' | b'\\' | b'/') => Some((b, 2)),
            b'u' => {
                let hex = std::str::from_utf8(text.get(at + 2..at + 6)?).ok()?;
                let code = u16::from_str_radix(hex, 16).ok()?;
                u8::try_from(code).ok().filter(u8::is_ascii).map(|b| (b, 6))
            }
            _ => None,
        },
        _ => None,
    }
}

/// The byte of a `%XX` at `text[at]` (hex digits of any case).
fn percent_escape(text: &[u8], at: usize) -> Option<u8> {
    if text.get(at) != Some(&b'%') {
        return None;
    }
    let hex = std::str::from_utf8(text.get(at + 1..at + 3)?).ok()?;
    if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u8::from_str_radix(hex, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets(url: &str, headers: &[&str]) -> Secrets {
        let mut secrets = Secrets::new();
        secrets.add_url(&Url::parse(url).unwrap());
        for header in headers {
            let (_, value) = header.split_once(':').unwrap();
            secrets.add_credential(value.trim());
        }
        secrets
    }

    #[test]
    fn every_echoed_form_of_a_token_is_masked() {
        let s = secrets(
            "https://h.example/",
            &["Authorization: Splunk 6f1c+SECRET/TOKEN=7d2e"],
        );
        for echo in [
            "Splunk 6f1c+SECRET/TOKEN=7d2e",
            "6f1c+SECRET/TOKEN=7d2e",
            "6f1c+SECRET\\/TOKEN=7d2e",
            "6f1c\\u002bSECRET\\u002FTOKEN\\u003d7d2e",
            "6f1c%2BSECRET%2FTOKEN%3D7d2e",
            "6f1c%2bSECRET%2fTOKEN%3d7d2e",
            "Splunk+6f1c%2BSECRET%2FTOKEN%3D7d2e",
            "Splunk%206f1c+SECRET/TOKEN=7d2e",
        ] {
            let text = format!("{{\"echo\":\"{echo}\",\"after\":1}}");
            let masked = s.mask(&text);
            assert_eq!(masked, "{\"echo\":\"***\",\"after\":1}", "{echo}");
        }
        assert_eq!(s.mask("no secret here"), "no secret here");
    }

    #[test]
    fn basic_credentials_are_masked_encoded_and_decoded() {
        // base64("admin:pa55word+x") = YWRtaW46cGE1NXdvcmQreA==
        let s = secrets(
            "https://h.example/",
            &["Authorization: Basic YWRtaW46cGE1NXdvcmQreA=="],
        );
        for echo in [
            "Basic YWRtaW46cGE1NXdvcmQreA==",
            "YWRtaW46cGE1NXdvcmQreA%3D%3D",
            "admin:pa55word+x",
            "admin%3Apa55word%2Bx",
            "pa55word+x",
        ] {
            assert_eq!(s.mask(&format!("<{echo}>")), "<***>", "{echo}");
        }
    }

    #[test]
    fn url_path_and_query_are_masked_encoded_and_decoded() {
        let s = secrets("https://h.example/hook/a%20b-SECRET?k=v%2Fw", &[]);
        assert_eq!(s.mask("p=/hook/a%20b-SECRET"), "p=***");
        assert_eq!(s.mask("p=/hook/a b-SECRET"), "p=***");
        assert_eq!(s.mask("p=\\/hook\\/a b-SECRET"), "p=***");
        assert_eq!(s.mask("q=k=v/w!"), "q=***!");
    }

    #[test]
    fn a_short_word_alone_is_not_masked_and_a_secret_with_escapes_matches_as_is() {
        let s = secrets("https://h.example/", &["X-Key: a b%41c\\d"]);
        // `a` alone is too short to mask; the value and `b%41c\d` (and `bAc\d`) are masked.
        assert_eq!(s.mask("a b%41c\\d"), "***");
        assert_eq!(s.mask("x b%41c\\d y"), "x *** y");
        assert_eq!(s.mask("bAc\\\\d"), "***");
        assert_eq!(s.mask("a cat"), "a cat");
    }

    #[test]
    fn a_token_is_masked_in_base64_too_and_the_longest_first() {
        let mut s = Secrets::new();
        s.add("s3cret-token");
        s.add_secret(&Secret::new("s3cret-token-and-more".to_string()));
        let b64 = base64::engine::general_purpose::STANDARD.encode("s3cret-token");
        assert_eq!(s.mask(&format!("[{b64}]")), "[***]");
        assert_eq!(s.mask("a s3cret-token-and-more b"), "a *** b");
        // base64 of the 21-byte secret: 28 bytes.
        assert_eq!(s.longest(), 28);
        assert_eq!(Secrets::new().mask("as is"), "as is");
    }
}

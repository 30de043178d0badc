//! Parsing of the API's `authorization: X-Custos ...` header.
//!
//! The header is the scheme `X-Custos` followed by `key=value` parameters separated by commas
//! and/or white space, in any order: `X-Custos user=^abc, session=^tok`. Setup leaves out the
//! comma (`user=^abc broker_setup=^code`); login and session calls put one in, with or without a
//! following space. Identifiers carry a literal `^` before their value; the login signature does
//! not. Parsing is strict about that caret so that a broker that forgets it fails here too.

/// The parameters of one `X-Custos` authorization header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CustosAuth {
    params: Vec<(String, String)>,
}

impl CustosAuth {
    /// Parse a header value; `None` when the scheme is not `X-Custos` (case-insensitive), a
    /// parameter has no `=`, or a parameter repeats.
    pub(crate) fn parse(header: &str) -> Option<CustosAuth> {
        let header = header.trim();
        let (scheme, rest) = header.split_once(|c: char| c.is_ascii_whitespace())?;
        if !scheme.eq_ignore_ascii_case("X-Custos") {
            return None;
        }
        let mut params: Vec<(String, String)> = Vec::new();
        for part in rest
            .split(|c: char| c == ',' || c.is_ascii_whitespace())
            .filter(|p| !p.is_empty())
        {
            let (key, value) = part.split_once('=')?;
            if key.is_empty() || params.iter().any(|(k, _)| k == key) {
                return None;
            }
            params.push((key.to_string(), value.to_string()));
        }
        Some(CustosAuth { params })
    }

    /// The value of an identifier parameter (`user`, `session`, `challenge`, `broker_setup`)
    /// without its leading `^`; `None` when absent, without the caret, or empty.
    pub(crate) fn caret(&self, key: &str) -> Option<&str> {
        let value = self.plain(key)?.strip_prefix('^')?;
        (!value.is_empty()).then_some(value)
    }

    /// The value of a parameter exactly as sent; `None` when absent.
    pub(crate) fn plain(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_setup_login_and_session_headers() {
        let setup = CustosAuth::parse("X-Custos user=^abc broker_setup=^c0de").unwrap();
        assert_eq!(setup.caret("user"), Some("abc"));
        assert_eq!(setup.caret("broker_setup"), Some("c0de"));

        let login =
            CustosAuth::parse("X-Custos user=^abc,challenge=^ch1, signature=s-_ig").unwrap();
        assert_eq!(login.caret("challenge"), Some("ch1"));
        assert_eq!(login.plain("signature"), Some("s-_ig"));

        let session = CustosAuth::parse("x-custos   user=^abc ,  session=^t0k  ").unwrap();
        assert_eq!(session.caret("session"), Some("t0k"));
    }

    #[test]
    fn rejects_malformed_headers() {
        assert_eq!(CustosAuth::parse("Bearer user=^abc"), None);
        assert_eq!(CustosAuth::parse("X-Custos"), None);
        assert_eq!(CustosAuth::parse("X-Custos user"), None);
        assert_eq!(CustosAuth::parse("X-Custos user=^a, user=^b"), None);
        let no_caret = CustosAuth::parse("X-Custos user=abc").unwrap();
        assert_eq!(no_caret.caret("user"), None);
        let empty = CustosAuth::parse("X-Custos user=^").unwrap();
        assert_eq!(empty.caret("user"), None);
    }
}

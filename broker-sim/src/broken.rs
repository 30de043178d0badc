//! [`Breakage`]: the ways a [`Fault::BrokenAnswer`](crate::Fault::BrokenAnswer) breaks the body
//! of an answer the API has already handled (for a pull: after it took the events off the
//! queue), as a proxy, a bug or a damaged link might.

/// How a 200 answer's body is broken. Every kind keeps the answer's own text whole (every
/// event of a pull is in it, byte for byte), except where said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Breakage {
    /// An element `"\xff\xfe"`, not valid UTF-8, added first to the first list (for a pull,
    /// an extra event before the real ones).
    BadUtf8,
    /// An element nested 10,000 arrays deep added first to the first list (for a pull, an
    /// extra event before the real ones): past the broker's nesting limit.
    DeepNesting,
    /// The last two bytes cut off (a pull's `]}`): every event is whole, the JSON is not.
    Truncated,
    /// Only the first half of the body is sent, under a `Content-Length` that promises all of
    /// it, and the connection closes: an answer cut off by a dropped connection.
    CutOff,
    /// White space added before the last two bytes until the body has this many bytes (a
    /// pull's events come first, so they are in any prefix longer than the plain answer).
    Padded(usize),
}

use hyper::Response;

use crate::response::{self, Body};

/// How deep [`Breakage::DeepNesting`] nests.
const DEEP: usize = 10_000;

impl Breakage {
    /// The 200 response with `body` broken this way.
    pub(crate) fn response(&self, body: &[u8]) -> Response<Body> {
        let broken = self.apply(body);
        match self {
            Breakage::CutOff => response::cut_off(broken.into(), body.len()),
            _ => response::json(200, broken),
        }
    }

    /// `body`, broken this way (for [`Breakage::CutOff`], the part that is sent).
    pub(crate) fn apply(&self, body: &[u8]) -> Vec<u8> {
        match self {
            Breakage::CutOff => body[..body.len() / 2].to_vec(),
            Breakage::BadUtf8 => insert_first(body, b"\"\xff\xfe\""),
            Breakage::DeepNesting => {
                let mut deep = "[".repeat(DEEP).into_bytes();
                deep.extend_from_slice("]".repeat(DEEP).as_bytes());
                insert_first(body, &deep)
            }
            Breakage::Truncated => body[..body.len().saturating_sub(2)].to_vec(),
            Breakage::Padded(size) => {
                let cut = body.len().saturating_sub(2);
                let mut out = Vec::with_capacity((*size).max(body.len()));
                out.extend_from_slice(&body[..cut]);
                out.resize(size.saturating_sub(body.len() - cut).max(cut), b' ');
                out.extend_from_slice(&body[cut..]);
                out
            }
        }
    }
}

/// `body` with `value` as the first element of its first list (or the whole body when it has
/// no list).
fn insert_first(body: &[u8], value: &[u8]) -> Vec<u8> {
    let Some(open) = body.iter().position(|b| *b == b'[') else {
        return value.to_vec();
    };
    let (head, rest) = body.split_at(open + 1);
    let mut out = Vec::with_capacity(body.len() + value.len() + 1);
    out.extend_from_slice(head);
    out.extend_from_slice(value);
    if rest.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b']') {
        out.push(b',');
    }
    out.extend_from_slice(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const PULL: &[u8] = br#"{"data":[{"id":"a"},{"id":"b"}]}"#;

    #[test]
    fn breakages_keep_the_events() {
        assert_eq!(
            Breakage::BadUtf8.apply(PULL),
            b"{\"data\":[\"\xff\xfe\",{\"id\":\"a\"},{\"id\":\"b\"}]}"
        );
        assert_eq!(Breakage::BadUtf8.apply(b"[]"), b"[\"\xff\xfe\"]");
        let deep = Breakage::DeepNesting.apply(br#"{"data":[]}"#);
        assert_eq!(deep.len(), 11 + 2 * DEEP);
        assert!(serde_json::from_slice::<serde_json::Value>(&deep).is_err());
        assert_eq!(
            Breakage::Truncated.apply(PULL),
            br#"{"data":[{"id":"a"},{"id":"b"}"#
        );
        let padded = Breakage::Padded(100).apply(PULL);
        assert_eq!(padded.len(), 100);
        assert!(padded.starts_with(&PULL[..PULL.len() - 2]));
        let value: serde_json::Value = serde_json::from_slice(&padded).unwrap();
        assert_eq!(value["data"][1]["id"], "b");
        assert_eq!(Breakage::Padded(3).apply(PULL), PULL);
    }
}

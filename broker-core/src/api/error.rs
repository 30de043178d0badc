//! [`ApiError`]: why an API call failed, in one line that names the call and never a secret.

/// A failed API call. Messages name the method and URL; they never contain a token, a setup code
/// or a signature (the URLs of this API carry none).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// The API answered 401: the session, setup code or signature was not accepted.
    #[error("{call}: not authorized (401){}", detail_suffix(.detail))]
    Unauthorized {
        /// `METHOD URL`.
        call: String,
        /// The API's own explanation, if it gave one.
        detail: String,
    },
    /// The API answered another non-2xx status.
    #[error("{call}: server answered {status}{}", detail_suffix(.detail))]
    Status {
        /// `METHOD URL`.
        call: String,
        /// The HTTP status code.
        status: u16,
        /// The API's own explanation, if it gave one.
        detail: String,
    },
    /// No answer: refused connection, timeout, TLS failure, dropped connection.
    #[error("{call}: {reason}")]
    Transport {
        /// `METHOD URL`.
        call: String,
        /// What the network layer said.
        reason: String,
    },
    /// A 2xx pull answer that could not be read whole (larger than [`MAX_ANSWER_BYTES`], cut
    /// short) or not decoded: `body` holds the bytes that arrived (events already gone from the
    /// API's queue), never shown in the message. Other calls never give it (their answers may
    /// hold a secret): they fail with [`ApiError::Malformed`].
    ///
    /// [`MAX_ANSWER_BYTES`]: super::client::MAX_ANSWER_BYTES
    #[error("{call}: malformed answer: {reason}")]
    Unreadable {
        /// `METHOD URL`.
        call: String,
        /// What was wrong with it.
        reason: String,
        /// The bytes of the answer that arrived.
        body: bytes::Bytes,
    },
    /// An answer that is not what the API documents.
    #[error("{call}: malformed answer: {reason}")]
    Malformed {
        /// `METHOD URL`.
        call: String,
        /// What was wrong with it.
        reason: String,
    },
}

fn detail_suffix(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(": {detail}")
    }
}

impl ApiError {
    /// The kind of failure in one word, for metrics: `unauthorized`, `status`, `transport` or
    /// `malformed` (an answer not as documented, or one that could not be read whole).
    pub fn class(&self) -> &'static str {
        match self {
            ApiError::Unauthorized { .. } => "unauthorized",
            ApiError::Status { .. } => "status",
            ApiError::Transport { .. } => "transport",
            ApiError::Malformed { .. } | ApiError::Unreadable { .. } => "malformed",
        }
    }

    /// Whether this is a 401 answer.
    pub fn is_unauthorized(&self) -> bool {
        matches!(self, ApiError::Unauthorized { .. })
    }
}

//! Building HTTP responses: JSON bodies and JSON:API error documents.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Response, StatusCode};

/// The body type of every response the simulator sends.
pub(crate) type Body = Full<Bytes>;

/// A response with `status` and a JSON `body` sent byte-for-byte as given.
pub(crate) fn json(status: u16, body: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// A JSON:API error document: `{"errors":[{"status":"401","title":"Unauthorized","detail":..}]}`.
pub(crate) fn error(status: u16, detail: &str) -> Response<Body> {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = error_body(code, detail);
    let mut response = json(code.as_u16(), body);
    *response.status_mut() = code;
    response
}

/// The text of a JSON:API error document for `status`.
fn error_body(status: StatusCode, detail: &str) -> String {
    format!(
        r#"{{"errors":[{{"status":{},"title":{},"detail":{}}}]}}"#,
        quote(status.as_str()),
        quote(status.canonical_reason().unwrap_or("Error")),
        quote(detail)
    )
}

/// `text` as a JSON string literal.
pub(crate) fn quote(text: &str) -> String {
    // Serialising a str cannot fail.
    serde_json::to_string(text).unwrap_or_else(|_| String::from("\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_follow_json_api() {
        let body = error_body(StatusCode::UNAUTHORIZED, "setup code expired");
        assert_eq!(
            body,
            r#"{"errors":[{"status":"401","title":"Unauthorized","detail":"setup code expired"}]}"#
        );
        assert_eq!(error(1000, "x").status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(error(599, "x").status().as_u16(), 599);
    }
}

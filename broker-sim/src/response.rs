//! Building HTTP responses: JSON bodies and JSON:API error documents.

use bytes::Bytes;
use http_body_util::Full;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use http_body_util::Either;
use hyper::body::Frame;
use hyper::header::{HeaderValue, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Response, StatusCode};

/// The body type of every response the simulator sends: whole, or cut off (see
/// [`CutOffBody`]).
pub(crate) type Body = Either<Full<Bytes>, CutOffBody>;

/// A response with `status` and a JSON `body` sent byte-for-byte as given.
pub(crate) fn json(status: u16, body: impl Into<Bytes>) -> Response<Body> {
    with_body(status, Either::Left(Full::new(body.into())))
}

/// A 200 response that promises `promised` bytes of JSON in its `Content-Length`, sends `sent`
/// and then closes the connection.
pub(crate) fn cut_off(sent: Bytes, promised: usize) -> Response<Body> {
    let mut response = with_body(200, Either::Right(CutOffBody::new(sent)));
    response
        .headers_mut()
        .insert(CONTENT_LENGTH, HeaderValue::from(promised));
    response
}

fn with_body(status: u16, body: Body) -> Response<Body> {
    let mut response = Response::new(body);
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// A body that sends its bytes, waits a moment (so they leave the server), then fails, so that
/// the connection closes before the length its `Content-Length` promised.
pub(crate) struct CutOffBody {
    sent: Option<Bytes>,
    pause: Pin<Box<tokio::time::Sleep>>,
}

impl CutOffBody {
    fn new(sent: Bytes) -> Self {
        CutOffBody {
            sent: Some(sent),
            pause: Box::pin(tokio::time::sleep(Duration::from_millis(100))),
        }
    }
}

impl hyper::body::Body for CutOffBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        if let Some(sent) = self.sent.take() {
            return Poll::Ready(Some(Ok(Frame::data(sent))));
        }
        match self.pause.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(()) => Poll::Ready(Some(Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionAborted,
                "answer cut off (simulated)",
            )))),
        }
    }
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

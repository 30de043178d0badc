//! Routing of the Pro Custodibus API paths (docs/protocol.md's table) to the simulated state.

use std::time::Instant;

use chrono::Utc;
use hyper::{Method, Response};

use crate::event_type::EventType;
use crate::response::{self, Body};
use crate::state::{ApiError, State};

/// The parts of an HTTP request the API looks at.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ApiRequest<'a> {
    /// HTTP method.
    pub(crate) method: &'a Method,
    /// Path without query.
    pub(crate) path: &'a str,
    /// The `authorization` header, if any and if it is valid text.
    pub(crate) authorization: Option<&'a str>,
    /// The whole request body.
    pub(crate) body: &'a [u8],
}

/// Answer one API request.
pub(crate) fn handle(state: &mut State, request: &ApiRequest<'_>) -> Response<Body> {
    match answer(state, request) {
        Ok(body) => response::json(200, body),
        Err(err) => response::error(err.status, &err.detail),
    }
}

/// Handle one API request: the body of its 200 answer, or the refusal.
pub(crate) fn answer(state: &mut State, request: &ApiRequest<'_>) -> Result<String, ApiError> {
    let segments: Vec<&str> = request.path.trim_start_matches('/').split('/').collect();
    let method = request.method;
    let now = Instant::now();
    match segments.as_slice() {
        ["health"] => only(method, &Method::GET).and_then(|()| state.health_body()),
        ["users", broker, "credentials", "signature"] => only(method, &Method::POST)
            .and_then(|()| state.setup(broker, request.authorization, request.body, Utc::now())),
        ["sessions", "challenge"] => only(method, &Method::GET).and_then(|()| state.challenge(now)),
        ["sessions"] => {
            only(method, &Method::POST).and_then(|()| state.login(request.authorization, now))
        }
        ["queues", version, "hello"] => only(method, &Method::GET)
            .and_then(|()| state.hello(version, request.authorization, now)),
        ["queues", name, "next"] => match name.parse::<EventType>() {
            Ok(event_type) => only(method, &Method::POST)
                .and_then(|()| state.pull(event_type, request.authorization, request.body, now)),
            Err(_) => Err(not_found()),
        },
        _ => Err(not_found()),
    }
}

fn only(method: &Method, allowed: &Method) -> Result<(), ApiError> {
    if method == allowed {
        Ok(())
    } else {
        Err(ApiError {
            status: 405,
            detail: format!("use {allowed} on this path"),
        })
    }
}

fn not_found() -> ApiError {
    ApiError {
        status: 404,
        detail: "no such resource".to_string(),
    }
}

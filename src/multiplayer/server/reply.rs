//! The few kinds of answer the HTTP endpoints give: plain text, JSON, a JSON error, and a
//! retryable 503.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

pub fn text(status: StatusCode, body: impl Into<String>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body.into(),
    )
        .into_response()
}

pub fn not_found() -> Response {
    text(StatusCode::NOT_FOUND, "not found\n")
}

/// The stock client retries an upgrade answered with 503 and `Retry-After`.
pub fn busy(why: &str) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, "1")],
        format!("{why}; try again\n"),
    )
        .into_response()
}

pub fn json(status: StatusCode, v: serde_json::Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        v.to_string(),
    )
        .into_response()
}

pub fn json_error(status: StatusCode, msg: &str) -> Response {
    json(status, serde_json::json!({ "error": msg }))
}

//! The HTTP routes of `serve`. JSON in and out; every `/v1` route needs a bearer token with its
//! scope (401 without a known token, 403 without the scope). Redis down is 503 with
//! `Retry-After`, so N8n's retry waits and tries again.

use crate::builder::api::app::App;
use crate::builder::api::artifacts;
use crate::builder::api::auth::{authorize, Denied};
use crate::builder::clock::now_ms;
use crate::builder::config::{Config, Scope};
use crate::builder::id::BuildId;
use crate::builder::queue::error::QueueError;
use crate::builder::queue::exposition;
use crate::builder::queue::job::{BuildSpec, Job};
use crate::builder::queue::log_stream::FROM_START;
use crate::builder::queue::submit::valid_idempotency_key;
use crate::builder::store::ObjectStore;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

/// The longest a log request waits for new lines.
const MAX_WAIT: Duration = Duration::from_secs(30);
const MAX_LIST: usize = 500;
/// A build request is small; anything bigger is refused before it is parsed.
pub const MAX_BODY: usize = 64 * 1024;

type Shared<S> = Arc<App<S>>;

fn reply(status: StatusCode, body: Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        format!("{body}\n"),
    )
        .into_response()
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    reply(status, json!({ "error": message.into() }))
}

fn queue_error(e: QueueError) -> Response {
    let m = e.to_string();
    match e {
        QueueError::NotFound(_) => error(StatusCode::NOT_FOUND, m),
        QueueError::Refused(..) | QueueError::IdempotencyConflict(_) => {
            error(StatusCode::CONFLICT, m)
        }
        QueueError::UnknownTarget(..) | QueueError::BadRequest(_) => {
            error(StatusCode::BAD_REQUEST, m)
        }
        QueueError::Redis(_) => {
            let mut r = error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the build queue is unavailable; try again",
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("5"));
            r
        }
        QueueError::Corrupt(_) => error(StatusCode::INTERNAL_SERVER_ERROR, m),
    }
}

/// `Some(answer)` when the request may not go on.
fn check(app: &Config, headers: &HeaderMap, scope: Scope) -> Option<Response> {
    let h = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match authorize(&app.tokens, h, scope) {
        Ok(_) => None,
        Err(Denied::Unauthenticated) => {
            let mut r = error(StatusCode::UNAUTHORIZED, "a valid bearer token is required");
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
            Some(r)
        }
        Err(Denied::Forbidden { token, scope }) => Some(error(
            StatusCode::FORBIDDEN,
            format!("token {token:?} does not have the {scope:?} scope").to_lowercase(),
        )),
    }
}

fn view(job: &Job) -> Value {
    serde_json::to_value(job).unwrap_or(Value::Null)
}

fn no_such_build(id: &str) -> Response {
    error(StatusCode::NOT_FOUND, format!("{id:?} is not a build id"))
}

async fn submit<S: ObjectStore + 'static>(
    State(app): State<Shared<S>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(r) = check(&app.config, &headers, Scope::Submit) {
        return r;
    }
    if body.len() > MAX_BODY {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "a build request is at most 64 KiB",
        );
    }
    let spec: BuildSpec = match serde_json::from_slice(&body) {
        Ok(s) => s,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("not a build request: {e}")),
    };
    let key = match headers.get("idempotency-key").map(|v| v.to_str()) {
        None => None,
        Some(Ok(k)) if valid_idempotency_key(k) => Some(k.to_string()),
        Some(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "Idempotency-Key must be 1 to 255 visible ASCII characters",
            )
        }
    };
    match app.queue.submit(spec, key.as_deref()).await {
        Ok(s) => reply(
            if s.created {
                StatusCode::ACCEPTED
            } else {
                StatusCode::OK
            },
            view(&s.job),
        ),
        Err(e) => queue_error(e),
    }
}

#[derive(Deserialize)]
struct ListQuery {
    limit: Option<usize>,
}

async fn list<S: ObjectStore + 'static>(
    State(app): State<Shared<S>>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Response {
    if let Some(r) = check(&app.config, &headers, Scope::Read) {
        return r;
    }
    match app.queue.list(q.limit.unwrap_or(50).min(MAX_LIST)).await {
        Ok(jobs) => reply(
            StatusCode::OK,
            json!({ "builds": jobs.iter().map(view).collect::<Vec<_>>() }),
        ),
        Err(e) => queue_error(e),
    }
}

async fn status<S: ObjectStore + 'static>(
    State(app): State<Shared<S>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Some(r) = check(&app.config, &headers, Scope::Read) {
        return r;
    }
    let Ok(id) = BuildId::parse(&id) else {
        return no_such_build(&id);
    };
    match app.queue.get(&id).await {
        Ok(job) => reply(StatusCode::OK, view(&job)),
        Err(e) => queue_error(e),
    }
}

async fn cancel<S: ObjectStore + 'static>(
    State(app): State<Shared<S>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Some(r) = check(&app.config, &headers, Scope::Cancel) {
        return r;
    }
    let Ok(id) = BuildId::parse(&id) else {
        return no_such_build(&id);
    };
    match app.queue.cancel(&id).await {
        Ok(job) => reply(StatusCode::ACCEPTED, view(&job)),
        Err(e) => queue_error(e),
    }
}

#[derive(Deserialize)]
struct LogQuery {
    /// The last chunk's `entry` the caller has; the next chunks follow it.
    after: Option<String>,
    /// Seconds to wait for new chunks when there are none yet.
    wait: Option<u64>,
}

/// Chunks after `after`: `{chunks, next, state, done}`. `done` is true once the build has ended
/// and no chunk is left, so `logs -f` knows when to stop; `next` is where to resume.
async fn logs<S: ObjectStore + 'static>(
    State(app): State<Shared<S>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<LogQuery>,
) -> Response {
    if let Some(r) = check(&app.config, &headers, Scope::Read) {
        return r;
    }
    let Ok(id) = BuildId::parse(&id) else {
        return no_such_build(&id);
    };
    let after = q
        .after
        .filter(|a| !a.is_empty())
        .unwrap_or_else(|| FROM_START.to_string());
    if !after.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
        return error(StatusCode::BAD_REQUEST, "after must be a chunk's entry id");
    }
    // Read the state first: a build that had ended before the read has written its last chunk.
    let job = match app.queue.get(&id).await {
        Ok(j) => j,
        Err(e) => return queue_error(e),
    };
    let wait = Duration::from_secs(q.wait.unwrap_or(0)).min(MAX_WAIT);
    let block = (!wait.is_zero() && !job.status.state.is_final()).then_some(wait);
    match app.queue.read_log(&id, &after, 1000, block).await {
        Ok(chunks) => {
            let next = chunks.last().map(|c| c.entry.clone()).unwrap_or(after);
            let done = job.status.state.is_final() && chunks.is_empty();
            let chunks: Vec<Value> = chunks
                .iter()
                .map(|c| json!({"entry": c.entry, "attempt": c.attempt, "seq": c.seq, "data": c.data}))
                .collect();
            reply(
                StatusCode::OK,
                json!({"chunks": chunks, "next": next, "state": job.status.state, "done": done}),
            )
        }
        Err(e) => queue_error(e),
    }
}

async fn healthz() -> Response {
    (StatusCode::OK, "ok\n").into_response()
}

async fn readyz<S: ObjectStore + 'static>(State(app): State<Shared<S>>) -> Response {
    let redis = app
        .queue
        .pending_all()
        .await
        .map(|_| ())
        .map_err(|e| e.to_string());
    let store = app.store.ready().await.map_err(|e| e.to_string());
    match (redis, store) {
        (Ok(()), Ok(())) => (StatusCode::OK, "ready\n").into_response(),
        (r, s) => {
            let mut text = String::new();
            if let Err(e) = r {
                text.push_str(&format!("redis: {e}\n"));
            }
            if let Err(e) = s {
                text.push_str(&format!("object store: {e}\n"));
            }
            (StatusCode::SERVICE_UNAVAILABLE, text).into_response()
        }
    }
}

/// The queue's gauges (read from the streams, so `builder_pending_jobs` exists with no worker)
/// and the counters the transitions recorded in Redis (workers are other processes).
async fn metrics<S: ObjectStore + 'static>(State(app): State<Shared<S>>) -> Response {
    let read = async {
        let gauges = app.queue.gauges(now_ms()).await?;
        let counters = app.queue.counters().await?;
        Ok::<_, QueueError>((gauges, counters))
    };
    match read.await {
        Ok((gauges, counters)) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, exposition::CONTENT_TYPE)],
            exposition::render(app.queue.workspace().as_str(), &gauges, &counters),
        )
            .into_response(),
        Err(e) => queue_error(e),
    }
}

pub fn router<S: ObjectStore + 'static>(app: Shared<S>) -> Router {
    Router::new()
        .route("/v1/builds", post(submit::<S>).get(list::<S>))
        .route("/v1/builds/{id}", get(status::<S>))
        .route("/v1/builds/{id}/cancel", post(cancel::<S>))
        .route("/v1/builds/{id}/logs", get(logs::<S>))
        .route("/v1/builds/{id}/artifacts", get(artifacts::list::<S>))
        .route(
            "/v1/builds/{id}/artifacts/{*path}",
            get(artifacts::download::<S>),
        )
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz::<S>))
        .route("/metrics", get(metrics::<S>))
        .with_state(app)
}

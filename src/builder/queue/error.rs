//! What a queue operation can answer besides success, so the API can tell 404, 409 and 503
//! apart and a worker can tell "my lease is gone" from "Redis is down".

use crate::builder::id::BuildId;
use crate::builder::state::Refusal;
use crate::core::error::Error;
use std::fmt;

#[derive(Debug)]
pub enum QueueError {
    NotFound(BuildId),
    /// The state machine refused the change; nothing was written.
    Refused(BuildId, Refusal),
    UnknownTarget(String, Vec<String>),
    /// The request itself is not acceptable (e.g. an Idempotency-Key that is too long).
    BadRequest(String),
    /// The same Idempotency-Key came with a different request.
    IdempotencyConflict(BuildId),
    /// Redis failed or is unreachable.
    Redis(String),
    /// A build's record could not be read (written by something else).
    Corrupt(String),
}

impl fmt::Display for QueueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueueError::NotFound(id) => write!(f, "no build {id}"),
            QueueError::Refused(id, r) => write!(f, "build {id}: {r}"),
            QueueError::UnknownTarget(t, _) => write!(f, "no target named {t:?}"),
            QueueError::BadRequest(m) => f.write_str(m),
            QueueError::IdempotencyConflict(id) => write!(
                f,
                "this Idempotency-Key was already used for build {id} with a different request"
            ),
            QueueError::Redis(m) => write!(f, "Redis: {m}"),
            QueueError::Corrupt(m) => write!(f, "unreadable build record: {m}"),
        }
    }
}

impl std::error::Error for QueueError {}

impl From<redis::RedisError> for QueueError {
    fn from(e: redis::RedisError) -> Self {
        QueueError::Redis(e.to_string())
    }
}

impl From<QueueError> for Error {
    fn from(e: QueueError) -> Error {
        let message = e.to_string();
        match e {
            QueueError::NotFound(_) => {
                Error::bad_input(message).hint("list the builds with `appgear builder list`")
            }
            QueueError::Refused(..) => Error::check_failed(message)
                .hint("see where the build is with `appgear builder status <id>`"),
            QueueError::UnknownTarget(_, known) => Error::bad_input(message)
                .hint(format!("the builder config has: {}", known.join(", "))),
            QueueError::BadRequest(_) => Error::bad_input(message)
                .hint("see docs/builder.md for what a build request may hold"),
            QueueError::IdempotencyConflict(_) => {
                Error::bad_input(message).hint("use a new Idempotency-Key for a different request")
            }
            QueueError::Redis(_) => Error::not_ready(message)
                .hint("check that Redis is running and REDIS_URL points at it"),
            QueueError::Corrupt(_) => Error::internal(message)
                .hint("another program may be writing the builder's keys; check BUILD_QUEUE"),
        }
    }
}

//! The one error type. Every variant says what went wrong and how to fix it, and maps to a
//! documented exit code (see README "Exit codes").

use std::fmt;

/// What kind of failure this is; decides the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A check ran and found problems (status not healthy, doctor failures, verify findings).
    CheckFailed,
    /// The user gave something invalid: a flag, a `.env` value, a file that does not parse.
    BadInput,
    /// The machine is not ready: Docker not reachable, a port in use, a home not writable.
    NotReady,
    /// A service was started but did not become healthy.
    Unhealthy,
    /// Another appgear holds the home's lock.
    Busy,
    /// Ctrl-C.
    Interrupted,
    /// Anything else (a bug or an unexpected answer from Docker/Kubernetes).
    Internal,
}

impl Kind {
    pub fn exit_code(self) -> i32 {
        match self {
            Kind::CheckFailed | Kind::Internal => 1,
            Kind::BadInput => 2,
            Kind::NotReady => 3,
            Kind::Unhealthy => 4,
            Kind::Busy => 5,
            Kind::Interrupted => 130,
        }
    }
}

/// An error a user can act on: one line of message, an optional fix hint, optional detail lines
/// (for example a container's last log lines) and an optional cause chain for `--verbose`.
#[derive(Debug)]
pub struct Error {
    pub kind: Kind,
    pub message: String,
    pub hint: Option<String>,
    pub detail: Vec<String>,
    pub source: Option<anyhow::Error>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            hint: None,
            detail: Vec::new(),
            source: None,
        }
    }
    pub fn bad_input(message: impl Into<String>) -> Self {
        Self::new(Kind::BadInput, message)
    }
    pub fn not_ready(message: impl Into<String>) -> Self {
        Self::new(Kind::NotReady, message)
    }
    pub fn unhealthy(message: impl Into<String>) -> Self {
        Self::new(Kind::Unhealthy, message)
    }
    pub fn check_failed(message: impl Into<String>) -> Self {
        Self::new(Kind::CheckFailed, message)
    }
    pub fn busy(message: impl Into<String>) -> Self {
        Self::new(Kind::Busy, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(Kind::Internal, message)
    }
    pub fn interrupted() -> Self {
        Self::new(Kind::Interrupted, "interrupted").hint(
            "nothing is lost; run the same command again and it carries on from where it stopped",
        )
    }
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
    pub fn detail(mut self, lines: Vec<String>) -> Self {
        self.detail = lines;
        self
    }
    pub fn cause(mut self, source: impl Into<anyhow::Error>) -> Self {
        self.source = Some(source.into());
        self
    }
    pub fn exit_code(&self) -> i32 {
        self.kind.exit_code()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// Unexpected failures become `Internal` with the cause kept for `--verbose`.
impl From<anyhow::Error> for Error {
    fn from(e: anyhow::Error) -> Self {
        Error::internal(e.to_string()).cause(e)
    }
}

/// Attach a user-facing message (and kind) to any lower-level error.
pub trait Context<T> {
    fn or_err(self, kind: Kind, message: impl FnOnce() -> String) -> Result<T>;
}

impl<T, E: Into<anyhow::Error>> Context<T> for std::result::Result<T, E> {
    fn or_err(self, kind: Kind, message: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| {
            let e: anyhow::Error = e.into();
            Error::new(kind, format!("{}: {e}", message())).cause(e)
        })
    }
}

//! The build queue on Redis Streams: one stream per target with the consumer group `builders`,
//! a hash per build, and every state change a compare-and-set in a Lua script, fenced by the
//! attempt number (`state::Status::apply` decides, the script only checks nothing moved since).
//!
//! Who does what: the API submits, cancels and reads; a worker claims (`XREADGROUP >`),
//! heartbeats (`XCLAIM … JUSTID` keeps its entry's idle time at 0), moves through phases and
//! finishes (`XACK`); the reaper in `serve` re-queues entries idle past the lease as the next
//! attempt, expires builds that waited too long, and skips entries of builds that already ended
//! so the group's lag, which KEDA scales on, counts only real work.

pub mod change;
pub mod counters;
pub mod error;
pub mod exposition;
pub mod job;
pub mod lag;
pub mod lease;
pub mod log_stream;
pub mod names;
pub mod reaper;
pub mod reply;
pub mod scripts;
pub mod submit;
pub mod transition;

use crate::builder::queue::names::Names;
use crate::core::names::WorkspaceId;
use crate::core::redis::RedisLink;
use std::sync::Arc;
use std::time::Duration;

/// The queue's limits (from the builder config's `limits`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Counted attempts before a build ends `error`.
    pub max_attempts: u32,
    /// Idle time of a running build's entry after which its worker counts as lost.
    pub lease: Duration,
    /// How long a build may wait in the queue.
    pub queue_ttl: Duration,
    /// How long an Idempotency-Key keeps giving the same build (N8n retries within minutes).
    pub idempotency_ttl: Duration,
    /// How long Redis keeps an ended build's record and log (its objects stay in the store).
    pub retention: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            max_attempts: 3,
            lease: Duration::from_secs(60),
            queue_ttl: Duration::from_secs(24 * 3600),
            idempotency_ttl: Duration::from_secs(24 * 3600),
            retention: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// One workspace's queue.
#[derive(Clone)]
pub struct Queue {
    pub(crate) link: Arc<RedisLink>,
    pub(crate) names: Names,
    pub(crate) workspace: WorkspaceId,
    pub(crate) targets: Vec<String>,
    pub(crate) settings: Settings,
}

impl Queue {
    /// `prefix` is `BUILD_QUEUE` (default `names::DEFAULT_PREFIX`); `targets` are the config's.
    pub fn new(
        link: Arc<RedisLink>,
        prefix: &str,
        workspace: WorkspaceId,
        targets: Vec<String>,
        settings: Settings,
    ) -> Queue {
        Queue {
            link,
            names: Names::new(prefix, &workspace),
            workspace,
            targets,
            settings,
        }
    }

    pub fn names(&self) -> &Names {
        &self.names
    }

    pub fn workspace(&self) -> &WorkspaceId {
        &self.workspace
    }

    pub fn targets(&self) -> &[String] {
        &self.targets
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }
}

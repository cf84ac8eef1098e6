//! Redis key names of one workspace's queue. Pure.
//!
//! ```text
//! <prefix>-<ws>:<target>        stream, consumer group `builders` (what KEDA's redis-streams
//!                               trigger reads: stream + consumerGroup + lagCount)
//! <prefix>-<ws>:job:<id>        hash: the build's state, attempt, times
//! <prefix>-<ws>:log:<id>        stream: numbered log chunks
//! <prefix>-<ws>:idem:<sha256>   the build id an Idempotency-Key gave (expires)
//! <prefix>-<ws>:index:builds    sorted set: build ids by submit time
//! <prefix>-<ws>:metrics:v1      hash: counters and histogram buckets of every transition
//! ```
//! Target names are DNS labels (no `:`) and every other key has a `:` after the base, so no
//! target's stream can be another key; build ids are hex and idempotency keys are hashed.

use crate::builder::id::BuildId;
use crate::core::digest::sha256_hex;
use crate::core::names::WorkspaceId;

/// The consumer group every worker of a target joins.
pub const GROUP: &str = "builders";
/// The default `BUILD_QUEUE` prefix, as the rendered ScaledJob names the streams.
pub const DEFAULT_PREFIX: &str = "factory-builds";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    base: String,
}

impl Names {
    pub fn new(prefix: &str, workspace: &WorkspaceId) -> Names {
        Names {
            base: format!("{prefix}-{}", workspace.as_str()),
        }
    }

    /// The stream of a target: the name to give KEDA's `stream` field.
    pub fn stream(&self, target: &str) -> String {
        format!("{}:{target}", self.base)
    }

    pub fn job(&self, id: &BuildId) -> String {
        format!("{}:job:{}", self.base, id.as_str())
    }

    pub fn log(&self, id: &BuildId) -> String {
        format!("{}:log:{}", self.base, id.as_str())
    }

    pub fn idempotency(&self, key: &str) -> String {
        format!("{}:idem:{}", self.base, sha256_hex(key.as_bytes()))
    }

    pub fn index(&self) -> String {
        format!("{}:index:builds", self.base)
    }

    /// The counters `/metrics` reads (`counters`); never expires, as Prometheus counters only grow.
    pub fn counters(&self) -> String {
        format!("{}:metrics:v1", self.base)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_distinct_and_named_as_keda_reads_them() {
        let n = Names::new(DEFAULT_PREFIX, &WorkspaceId::parse("demo").unwrap());
        let id = BuildId::parse("b0123456789abcdef01234567").unwrap();
        assert_eq!(n.stream("tauri-linux"), "factory-builds-demo:tauri-linux");
        let all = [
            n.stream("job"),
            n.stream("log"),
            n.stream("index"),
            n.job(&id),
            n.log(&id),
            n.idempotency("job"),
            n.index(),
            n.counters(),
            n.stream("metrics"),
        ];
        let set: std::collections::BTreeSet<_> = all.iter().collect();
        assert_eq!(set.len(), all.len());
        assert!(
            !n.idempotency("a:b").contains("a:b"),
            "client keys are hashed"
        );
    }
}

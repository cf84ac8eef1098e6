//! What the builder's integration tests share: a workspace's queue on a test Redis, and reading
//! back what an attempt stored.

use crate::redis_server::RedisServer;
use appgear::builder::config::Config;
use appgear::builder::id::BuildId;
use appgear::builder::keys::AttemptKeys;
use appgear::builder::manifest::Manifest;
use appgear::builder::queue::{Queue, Settings};
use appgear::builder::store::ObjectStore;
use appgear::core::names::WorkspaceId;
use appgear::core::redis::RedisLink;
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

/// The queue of `workspace` with the config's targets, three attempts and a `lease`.
pub fn queue(redis: &RedisServer, config: &Config, workspace: &str, lease: Duration) -> Queue {
    Queue::new(
        Arc::new(RedisLink::new(&redis.url).unwrap()),
        "factory-builds",
        WorkspaceId::parse(workspace).unwrap(),
        config.targets.keys().cloned().collect(),
        Settings {
            max_attempts: 3,
            lease,
            queue_ttl: Duration::from_secs(3600),
            idempotency_ttl: Duration::from_secs(60),
            retention: Duration::from_secs(3600),
        },
    )
}

/// The keys of an attempt of workspace `demo`.
pub fn keys(id: &BuildId, attempt: u32) -> AttemptKeys {
    AttemptKeys::new(&WorkspaceId::parse("demo").unwrap(), id, attempt)
}

/// The manifest an attempt committed.
pub async fn manifest<S: ObjectStore>(store: &S, id: &BuildId, attempt: u32) -> Manifest {
    let (bytes, _) = store.get(&keys(id, attempt).manifest()).await.unwrap();
    Manifest::parse(&bytes).unwrap()
}

/// The attempt's stored log, unpacked by the system's gzip (not appgear's own code).
pub async fn stored_log<S: ObjectStore>(store: &S, id: &BuildId, attempt: u32) -> String {
    gunzip(&store.get(&keys(id, attempt).log()).await.unwrap().0)
}

pub fn gunzip(bytes: &[u8]) -> String {
    let mut child = Command::new("gzip")
        .arg("-dc")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = bytes.to_vec();
    let w = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().unwrap();
    w.join().unwrap().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

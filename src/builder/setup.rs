//! What `serve` and `run` both start from: the config file, the workspace, the queue on Redis,
//! and a stop signal on SIGTERM/Ctrl-C, so the command-line layer only passes flags through.

use crate::builder::config::{Config, Limits};
use crate::builder::queue::{Queue, Settings};
use crate::core::error::{Error, Result};
use crate::core::names::WorkspaceId;
use crate::core::redis::{redact, RedisLink};
use std::path::Path;
use std::sync::Arc;
use tokio::sync::watch;

/// The queue settings the config's limits give.
pub fn settings(limits: &Limits) -> Settings {
    Settings {
        max_attempts: limits.max_attempts,
        lease: limits.lease,
        queue_ttl: limits.queue_ttl,
        retention: limits.retention,
        ..Settings::default()
    }
}

/// The config and the workspace's queue. `prefix` is `BUILD_QUEUE` (`names::DEFAULT_PREFIX`).
pub fn open(
    config_path: &Path,
    workspace: &str,
    redis_url: &str,
    prefix: &str,
) -> Result<(Config, Queue)> {
    let config = Config::load(config_path)?;
    let workspace = WorkspaceId::parse(workspace).map_err(|e| {
        Error::bad_input(format!("BUILDER_WORKSPACE_ID: {}", e.message))
            .hint(e.hint.unwrap_or_default())
    })?;
    if prefix.is_empty() || prefix.contains(':') || prefix.chars().any(char::is_whitespace) {
        return Err(
            Error::bad_input(format!("BUILD_QUEUE {prefix:?} cannot prefix Redis keys"))
                .hint("use letters, digits and '-', e.g. factory-builds"),
        );
    }
    let link = RedisLink::new(redis_url).map_err(|e| {
        Error::bad_input(format!(
            "REDIS_URL {} is not a Redis URL: {e}",
            redact(redis_url)
        ))
        .hint("use redis://host:port/ (redis://:password@host:port/ with a password)")
    })?;
    let targets = config.targets.keys().cloned().collect();
    let queue = Queue::new(
        Arc::new(link),
        prefix,
        workspace,
        targets,
        settings(&config.limits),
    );
    Ok((config, queue))
}

/// A stop flag that turns true on SIGTERM or Ctrl-C: the worker stops its recipe within the
/// grace period and gives the build back; `serve` drains and exits.
pub fn stop_on_signals() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = term => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        let _ = tx.send(true);
        // Keep the sender so receivers see `true`, not a closed channel.
        std::future::pending::<()>().await;
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_with_checks() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("builder-config");
        std::fs::write(
            &p,
            format!(
                "targets:\n  web:\n    image: sha256:{}\n    command: [\"true\"]\n    output_dir: dist\n    artifacts: [\"**\"]\n    timeout: 1m\n    cpus: 1\n    memory: 64Mi\nlimits:\n  max_attempts: 2\n",
                "e".repeat(64)
            ),
        )
        .unwrap();
        let (c, q) = open(&p, "demo", "redis://127.0.0.1:1/", "factory-builds").unwrap();
        assert_eq!(q.targets(), ["web".to_string()]);
        assert_eq!(q.settings().max_attempts, 2);
        assert_eq!(c.limits.max_attempts, 2);
        assert!(open(&p, "Demo", "redis://127.0.0.1:1/", "factory-builds").is_err());
        assert!(open(&p, "demo", "nope://", "factory-builds").is_err());
        assert!(open(&p, "demo", "redis://127.0.0.1:1/", "a:b").is_err());
        assert!(open(
            &d.path().join("missing"),
            "demo",
            "redis://127.0.0.1:1/",
            "x"
        )
        .is_err());
    }
}

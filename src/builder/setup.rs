//! What `serve` and `run` both start from: the config file, the workspace, the queue on Redis,
//! the object store, and a stop signal on SIGTERM/Ctrl-C, so the command-line layer only
//! passes flags through.

use crate::builder::config::{Config, Limits};
use crate::builder::queue::{Queue, Settings};
use crate::builder::store::s3::{S3Settings, S3Store, BUCKET, ENDPOINT};
use crate::builder::store::Store;
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

/// The environment variable naming the folder store.
pub const STORE_DIR: &str = "BUILDER_STORE_DIR";

/// Which store the settings ask for: S3 when `S3_ENDPOINT` or `S3_BUCKET` is set, the folder
/// store when `BUILDER_STORE_DIR` (`--store-dir`) is; exactly one of the two. Pure: `env` reads
/// the environment, `read` the credentials file.
pub fn choose_store(
    store_dir: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
    read: &dyn Fn(&Path) -> std::io::Result<String>,
) -> Result<Store> {
    let dir = store_dir.filter(|d| !d.as_os_str().is_empty());
    match (S3Settings::wanted(env), dir) {
        (true, Some(d)) => Err(Error::bad_input(format!(
            "both S3 ({ENDPOINT}/{BUCKET}) and a folder store ({STORE_DIR}={}) are set",
            d.display()
        ))
        .hint(format!(
            "keep one: {ENDPOINT} and {BUCKET} for S3, or {STORE_DIR} (--store-dir) for a folder"
        ))),
        (false, None) => Err(Error::bad_input("no object store for artifacts is set").hint(
            format!(
                "set {ENDPOINT} and {BUCKET} (with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY) for S3, or {STORE_DIR} (--store-dir) for a local folder"
            ),
        )),
        (true, None) => Ok(Store::S3(S3Store::new(&S3Settings::from_env(env, read)?)?)),
        (false, Some(d)) => Ok(Store::folder(d)),
    }
}

/// `choose_store` with the process environment.
pub fn store(store_dir: Option<&Path>) -> Result<Store> {
    choose_store(store_dir, &|k| std::env::var(k).ok(), &|p| {
        std::fs::read_to_string(p)
    })
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

    #[test]
    fn one_store_exactly() {
        let none = |_: &str| None;
        let no_file = |_: &Path| Err(std::io::Error::from(std::io::ErrorKind::NotFound));
        let s3 = |k: &str| {
            match k {
                "S3_ENDPOINT" => Some("http://127.0.0.1:7480"),
                "S3_BUCKET" => Some("factory-artifacts"),
                "AWS_ACCESS_KEY_ID" => Some("AK"),
                "AWS_SECRET_ACCESS_KEY" => Some("SK-secret"),
                _ => None,
            }
            .map(str::to_string)
        };
        let dir = Path::new("/tmp/appgear-store");
        let folder = choose_store(Some(dir), &none, &no_file).unwrap();
        assert_eq!(folder.describe(), "folder /tmp/appgear-store");
        let on_s3 = choose_store(None, &s3, &no_file).unwrap();
        assert_eq!(
            on_s3.describe(),
            "s3 http://127.0.0.1:7480/factory-artifacts"
        );
        let both = choose_store(Some(dir), &s3, &no_file).err().unwrap();
        assert!(both.message.contains("both S3"), "{}", both.message);
        assert!(!both.message.contains("SK-secret"));
        let neither = choose_store(None, &none, &no_file).err().unwrap();
        assert!(
            neither.message.contains("no object store"),
            "{}",
            neither.message
        );
    }
}

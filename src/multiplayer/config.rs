//! Gateway settings: validated once at start from flags and environment, then read-only.

use crate::core::error::{Error, Result};
use crate::core::names::WorkspaceId;
use crate::core::redis::redact;
use crate::multiplayer::token::MIN_SECRET_LEN;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where a Vault agent sidecar writes the per-workspace secret.
pub const DEFAULT_SECRET_FILE: &str = "/vault/secrets/multiplayer-token";
pub const DEFAULT_LISTEN: &str = "0.0.0.0:8080";
pub const DEFAULT_PREFIX: &str = "/multiplayer";
/// The stock client drops a connection that saw no data frame for 30 s.
pub const CLIENT_SILENCE_LIMIT: Duration = Duration::from_secs(30);
pub const DEFAULT_MAX_PENDING_CONNECTIONS: usize = 1024;
pub const DEFAULT_HEADER_TIMEOUT: &str = "10s";
/// A stock client announces one client id; a few more leave room for custom clients.
pub const DEFAULT_MAX_CLIENT_IDS: usize = 4;
pub const DEFAULT_MAX_LOCKS_PER_ROOM: usize = 256;
pub const DEFAULT_MAX_LOCKS_PER_OWNER: usize = 32;

/// Settings as given (flags, with environment fallbacks already applied by the command line).
#[derive(Debug, Clone, Default)]
pub struct RawSettings {
    pub listen: String,
    pub workspace: Option<String>,
    pub redis: Option<String>,
    /// `REDIS_HOST` from the environment, used when `--redis`/`REDIS_URL` is absent.
    pub redis_host_env: Option<String>,
    pub redpanda_broker: Option<String>,
    pub path_prefix: String,
    pub token_secret_file: Option<PathBuf>,
    /// `MULTIPLAYER_TOKEN_SECRET` from the environment.
    pub token_secret_env: Option<String>,
    pub max_message_size: String,
    pub max_connections: usize,
    pub send_queue: usize,
    pub unload_grace: String,
    pub lock_ttl: String,
    pub keepalive: String,
    pub idle_timeout: String,
    pub max_pending_connections: usize,
    pub header_timeout: String,
    pub max_client_ids: usize,
    pub max_locks_per_room: usize,
    pub max_locks_per_owner: usize,
}

/// The per-workspace signing secret. Never printed: `Debug` is redacted.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl Secret {
    pub fn new(bytes: Vec<u8>) -> Self {
        Secret(bytes)
    }
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

#[derive(Debug, Clone)]
pub struct GatewayConfig {
    pub listen: SocketAddr,
    pub workspace: WorkspaceId,
    pub redis_url: String,
    pub redpanda_broker: Option<String>,
    /// Normalised: empty (rooms at the root) or `/segment[/segment...]` without a trailing slash.
    pub path_prefix: String,
    pub secret: Secret,
    pub max_message_size: usize,
    pub max_connections: usize,
    pub send_queue: usize,
    pub unload_grace: Duration,
    pub lock_ttl: Duration,
    pub keepalive: Duration,
    /// A connection with no inbound frame for this long is closed (its peer is gone).
    pub idle_timeout: Duration,
    /// Connections that are not editor sessions (before the upgrade, plain HTTP, refusals).
    pub max_pending_connections: usize,
    /// A connection must deliver a whole request head within this long.
    pub header_timeout: Duration,
    pub limits: Limits,
}

/// What one connection, one room and one lock holder may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Client ids one connection may announce presence for (a stock client announces one).
    pub client_ids_per_connection: usize,
    /// Locks held in one room at once.
    pub locks_per_room: usize,
    /// Locks one holder (an editor's client id, or an HTTP caller) holds in one room at once.
    pub locks_per_owner: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            client_ids_per_connection: DEFAULT_MAX_CLIENT_IDS,
            locks_per_room: DEFAULT_MAX_LOCKS_PER_ROOM,
            locks_per_owner: DEFAULT_MAX_LOCKS_PER_OWNER,
        }
    }
}

impl GatewayConfig {
    pub fn from_raw(raw: RawSettings) -> Result<Self> {
        let listen: SocketAddr = raw.listen.parse().map_err(|_| {
            Error::bad_input(format!("--listen {:?} is not an address", raw.listen))
                .hint("give host:port, for example 0.0.0.0:8080 or 127.0.0.1:9000")
        })?;
        let workspace = workspace_id(raw.workspace.as_deref())?;
        let redis_url = redis_url(raw.redis.as_deref(), raw.redis_host_env.as_deref())?;
        let path_prefix = normalize_prefix(&raw.path_prefix)?;
        let secret = load_secret(raw.token_secret_file.as_deref(), raw.token_secret_env)?;
        let max_message_size = parse_size(&raw.max_message_size).ok_or_else(|| {
            Error::bad_input(format!(
                "--max-message-size {:?} is not a size",
                raw.max_message_size
            ))
            .hint("give bytes, optionally with KiB or MiB, for example 16MiB")
        })?;
        if max_message_size < 1024 {
            return Err(Error::bad_input("--max-message-size is below 1KiB")
                .hint("editor updates need room: use at least 64KiB, default 16MiB"));
        }
        if raw.max_connections == 0 || raw.send_queue == 0 || raw.max_pending_connections == 0 {
            return Err(Error::bad_input(
                "--max-connections, --max-pending-connections and --send-queue must be above 0",
            )
            .hint("leave them out to use the defaults"));
        }
        if raw.max_client_ids == 0 || raw.max_locks_per_room == 0 || raw.max_locks_per_owner == 0 {
            return Err(Error::bad_input(
                "--max-client-ids, --max-locks-per-room and --max-locks-per-owner must be above 0",
            )
            .hint(format!(
                "a stock client announces one client id; defaults {DEFAULT_MAX_CLIENT_IDS}, \
                 {DEFAULT_MAX_LOCKS_PER_ROOM} and {DEFAULT_MAX_LOCKS_PER_OWNER}"
            )));
        }
        let header_timeout = parse_duration("--header-timeout", &raw.header_timeout)?;
        if header_timeout < Duration::from_secs(1) {
            return Err(
                Error::bad_input("--header-timeout is below 1s").hint(format!(
                    "a client on a slow network needs time to send its request; default \
                 {DEFAULT_HEADER_TIMEOUT}"
                )),
            );
        }
        let unload_grace = parse_duration("--unload-grace", &raw.unload_grace)?;
        let lock_ttl = parse_duration("--lock-ttl", &raw.lock_ttl)?;
        if lock_ttl < Duration::from_millis(500) {
            return Err(Error::bad_input("--lock-ttl is below 500ms")
                .hint("a lease must outlive its renewal round trip; default 30s"));
        }
        let keepalive = parse_duration("--keepalive", &raw.keepalive)?;
        if keepalive.is_zero() || keepalive >= CLIENT_SILENCE_LIMIT / 2 {
            return Err(
                Error::bad_input("--keepalive must be above 0 and below 15s")
                    .hint("the stock client drops a connection silent for 30 s; default 10s"),
            );
        }
        let idle_timeout = parse_duration("--idle-timeout", &raw.idle_timeout)?;
        if idle_timeout < Duration::from_secs(1) {
            return Err(Error::bad_input("--idle-timeout is below 1s").hint(
                "the stock client renews its presence every 15 s: keep it above 30s; default 45s",
            ));
        }
        Ok(GatewayConfig {
            listen,
            workspace,
            redis_url,
            redpanda_broker: raw.redpanda_broker.filter(|s| !s.trim().is_empty()),
            path_prefix,
            secret,
            max_message_size,
            max_connections: raw.max_connections,
            send_queue: raw.send_queue,
            unload_grace,
            lock_ttl,
            keepalive,
            idle_timeout,
            max_pending_connections: raw.max_pending_connections,
            header_timeout,
            limits: Limits {
                client_ids_per_connection: raw.max_client_ids,
                locks_per_room: raw.max_locks_per_room,
                locks_per_owner: raw.max_locks_per_owner,
            },
        })
    }

    /// The Redis address without any password, for messages.
    pub fn redis_display(&self) -> String {
        redact(&self.redis_url)
    }
}

/// The workspace served. A missing one gets its own message; a given one must pass the crate's
/// one workspace-id rule, so that an id refused anywhere else is refused here with the same words.
pub fn workspace_id(ws: Option<&str>) -> Result<WorkspaceId> {
    let ws = ws.map(str::trim).filter(|s| !s.is_empty()).ok_or_else(|| {
        Error::bad_input("no workspace id given").hint(
            "set WORKSPACE_ID or --workspace to the workspace id (lowercase letters, digits, '-')",
        )
    })?;
    WorkspaceId::parse(ws)
}

fn redis_url(redis: Option<&str>, host_env: Option<&str>) -> Result<String> {
    let hint = "give --redis redis://host:6379 (or set REDIS_URL, or REDIS_HOST=host[:port])";
    let given = redis
        .or(host_env)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Error::bad_input("no Redis address given").hint(hint))?;
    let url = if given.contains("://") {
        given.to_string()
    } else if given.contains(':') {
        format!("redis://{given}/")
    } else {
        format!("redis://{given}:6379/")
    };
    if url.starts_with("rediss://") {
        return Err(
            Error::bad_input("TLS Redis (rediss://) is not supported by this build")
                .hint("reach Redis over the mesh (mTLS by the sidecar) with redis://"),
        );
    }
    if !url.starts_with("redis://") {
        return Err(
            Error::bad_input(format!("{:?} is not a Redis address", redact(&url))).hint(hint),
        );
    }
    redis::Client::open(url.as_str()).map_err(|e| {
        Error::bad_input(format!(
            "Redis address {:?} does not parse: {e}",
            redact(&url)
        ))
        .hint(hint)
    })?;
    Ok(url)
}

pub fn normalize_prefix(p: &str) -> Result<String> {
    let trimmed = p.trim().trim_end_matches('/');
    if trimmed.is_empty() {
        return Ok(String::new());
    }
    if !trimmed.starts_with('/') || trimmed.contains("//") || trimmed.contains(['?', '#', ' ']) {
        return Err(
            Error::bad_input(format!("--path-prefix {p:?} is not a URL path"))
                .hint("give a path such as /multiplayer, or / to serve rooms at the root"),
        );
    }
    Ok(trimmed.to_string())
}

fn load_secret(file: Option<&Path>, env: Option<String>) -> Result<Secret> {
    let hint = format!(
        "write the workspace secret (at least {MIN_SECRET_LEN} bytes) to a file and give \
         --token-secret-file (default {DEFAULT_SECRET_FILE}), or set MULTIPLAYER_TOKEN_SECRET"
    );
    let bytes = match (file, env.filter(|s| !s.trim().is_empty())) {
        (Some(path), _) => read_secret_file(path, &hint)?,
        (None, Some(value)) => value.into_bytes(),
        (None, None) => {
            let default = Path::new(DEFAULT_SECRET_FILE);
            if !default.exists() {
                return Err(Error::bad_input("no token secret found").hint(hint));
            }
            read_secret_file(default, &hint)?
        }
    };
    let bytes = trim_ascii_whitespace(bytes);
    if bytes.len() < MIN_SECRET_LEN {
        return Err(Error::bad_input(format!(
            "the token secret is shorter than {MIN_SECRET_LEN} bytes"
        ))
        .hint(hint));
    }
    Ok(Secret(bytes))
}

fn read_secret_file(path: &Path, hint: &str) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| {
        Error::bad_input(format!(
            "cannot read the token secret file {}: {e}",
            path.display()
        ))
        .hint(hint.to_string())
    })
}

/// Secret files written by editors or `echo` end with a newline that is not part of the secret.
fn trim_ascii_whitespace(mut b: Vec<u8>) -> Vec<u8> {
    while b.last().is_some_and(|c| c.is_ascii_whitespace()) {
        b.pop();
    }
    let start = b.iter().take_while(|c| c.is_ascii_whitespace()).count();
    b.drain(..start);
    b
}

pub fn load_secret_for_token(file: Option<&Path>, env: Option<String>) -> Result<Secret> {
    load_secret(file, env)
}

fn parse_duration(flag: &str, s: &str) -> Result<Duration> {
    humantime::parse_duration(s.trim()).map_err(|_| {
        Error::bad_input(format!("{flag} {s:?} is not a duration"))
            .hint("give a duration such as 500ms, 10s or 2m")
    })
}

/// `16MiB`, `512KiB`, `2MB`, `1048576`.
pub fn parse_size(s: &str) -> Option<usize> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: usize = num.parse().ok()?;
    let mult: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(mult)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("16MiB"), Some(16 << 20));
        assert_eq!(parse_size("512 KiB"), Some(512 << 10));
        assert_eq!(parse_size("1000"), Some(1000));
        assert_eq!(parse_size("2MB"), Some(2_000_000));
        assert_eq!(parse_size("MiB"), None);
        assert_eq!(parse_size("3 parsecs"), None);
    }

    #[test]
    fn prefixes() {
        assert_eq!(normalize_prefix("/multiplayer/").unwrap(), "/multiplayer");
        assert_eq!(normalize_prefix("/").unwrap(), "");
        assert!(normalize_prefix("multiplayer").is_err());
        assert!(normalize_prefix("/a//b").is_err());
    }

    #[test]
    fn redis_addresses() {
        assert_eq!(
            redis_url(None, Some("core-redis")).unwrap(),
            "redis://core-redis:6379/"
        );
        assert_eq!(redis_url(None, Some("h:7000")).unwrap(), "redis://h:7000/");
        assert_eq!(
            redis_url(Some("redis://127.0.0.1:1/"), Some("ignored")).unwrap(),
            "redis://127.0.0.1:1/"
        );
        assert!(redis_url(None, None).is_err());
        assert!(redis_url(Some("http://x"), None).is_err());
        assert_eq!(redact("redis://u:p@h:1/0"), "redis://***@h:1/0");
    }

    #[test]
    fn workspaces() {
        assert_eq!(workspace_id(Some(" ws-1 ")).unwrap().as_str(), "ws-1");
        assert!(workspace_id(Some("WS")).is_err());
        assert!(workspace_id(Some("-a")).is_err());
        let missing = workspace_id(None).unwrap_err().to_string();
        assert!(missing.contains("no workspace id given"), "{missing}");
        assert!(workspace_id(Some("  ")).is_err());
    }

    #[test]
    fn a_53_character_workspace_id_is_refused_with_the_crates_one_message() {
        let id = "a".repeat(53);
        let ours = workspace_id(Some(&id)).unwrap_err();
        let the_rule = WorkspaceId::parse(&id).unwrap_err();
        assert_eq!(
            (ours.kind, &ours.message, &ours.hint),
            (the_rule.kind, &the_rule.message, &the_rule.hint)
        );
        assert!(ours.message.contains("is too long"), "{}", ours.message);
        assert!(workspace_id(Some(&"a".repeat(52))).is_ok());
    }

    #[test]
    fn secret_is_trimmed_and_redacted() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("s");
        std::fs::write(&f, "0123456789abcdef\n").unwrap();
        let s = load_secret(Some(&f), None).unwrap();
        assert_eq!(s.bytes(), b"0123456789abcdef");
        assert!(!format!("{s:?}").contains("0123"));
        std::fs::write(&f, "short\n").unwrap();
        assert!(load_secret(Some(&f), None).is_err());
        assert!(load_secret(None, Some("0123456789abcdefXYZ".into())).is_ok());
    }
}

//! The builder config: the file Vault injects (`/vault/secrets/builder-config`), YAML. It names
//! the targets (a pinned toolchain image and a recipe each), the API tokens and the queue's
//! limits. Unknown keys are an error, so a typo is refused instead of silently ignored.
//!
//! Parsing is pure (`Config::parse`); `Config::load` only reads the file first.

use crate::builder::glob::Pattern;
use crate::core::error::{Error, Result};
use crate::core::names::is_label;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

/// No recipe may run longer (EAS's ceiling too): a longer build belongs in a different tool.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(2 * 3600);
/// Docker refuses memory limits under 6 MB.
pub const MIN_MEMORY: u64 = 6 * 1024 * 1024;

/// A builder config for the three documented targets on published toolchain images, each
/// pinned by the digest of its multi-platform index (what `docker pull name@sha256:…` takes):
/// - web: the official `node:24.15.0-bookworm-slim` (Node 24 LTS on Debian 12);
/// - tauri-linux: the official `rust:1.96.1-slim` (Debian 13, whose apt has WebKitGTK 4.1 and
///   Node 20: the recipe installs them, so it needs `network: bridge`; an image built FROM
///   this one with them preinstalled makes builds faster and offline);
/// - android-apk: `reactnativecommunity/react-native-android:v21.0` (Android SDK and build
///   tools, NDK, JDK 17, Node; the React Native community's CI image).
///
/// The same references are in the rendered ScaledJobs (`gitops` templates; a test keeps them
/// equal), since the `process` executor runs the recipe in the Job's own image. Renew a digest by reading the tag's index digest again
/// (`docker buildx imagetools inspect IMAGE:TAG`) and changing it in both places.
pub const EXAMPLE: &str = r#"targets:
  web:
    image: node:24.15.0-bookworm-slim@sha256:4e6b70dd6cbfc88c8157ba19aa3d9f9cce6ba4703576d55459e45efcbc9c5f5d
    command: ["sh", "-c", "npm ci && npm run build"]
    output_dir: dist
    artifacts: ["**"]
    timeout: 15m
    cpus: 2
    memory: 4Gi
    network: bridge
  tauri-linux:
    image: rust:1.96.1-slim@sha256:31ee7fc65186be7e0e0ccb3f2ca305f14e4739e7642a1ae65753aa5d7b874523
    command:
      - sh
      - -c
      - >-
        apt-get update &&
        apt-get install -y --no-install-recommends nodejs npm pkg-config file
        libwebkit2gtk-4.1-dev libxdo-dev libayatana-appindicator3-dev librsvg2-dev libssl-dev &&
        npm ci && npx tauri build --bundles deb,rpm
    output_dir: src-tauri/target/release/bundle
    artifacts: ["deb/*.deb", "rpm/*.rpm"]
    timeout: 60m
    cpus: 4
    memory: 8Gi
    network: bridge
  android-apk:
    image: reactnativecommunity/react-native-android:v21.0@sha256:24ca7ab5a70ec0b78a81bdc5eeea5924c2531531d53971b6f2321aff08446c36
    command: ["sh", "-c", "npm ci && cd android && ./gradlew assembleRelease --no-daemon"]
    output_dir: android/app/build/outputs/apk
    artifacts: ["**/*.apk"]
    timeout: 60m
    cpus: 4
    memory: 8Gi
    network: bridge
"#;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    targets: BTreeMap<String, RawTarget>,
    #[serde(default)]
    api_tokens: Vec<RawToken>,
    #[serde(default)]
    limits: RawLimits,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTarget {
    image: String,
    command: Vec<String>,
    output_dir: String,
    artifacts: Vec<String>,
    timeout: String,
    cpus: f64,
    memory: String,
    #[serde(default)]
    network: Option<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawToken {
    name: String,
    sha256: String,
    scopes: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    max_attempts: Option<u32>,
    heartbeat: Option<String>,
    lease: Option<String>,
    queue_ttl: Option<String>,
    grace: Option<String>,
    log_max: Option<String>,
    retention: Option<String>,
}

/// The network a recipe gets. `none` unless the target says otherwise: a recipe that needs
/// npm or crates.io says `bridge`, and nothing else reaches the network by accident.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    None,
    Bridge,
}

impl Network {
    pub fn as_str(self) -> &'static str {
        match self {
            Network::None => "none",
            Network::Bridge => "bridge",
        }
    }
}

/// One build target: what runs, where its outputs are, and what it may use.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub name: String,
    /// `name@sha256:<64 hex>` or a local image id `sha256:<64 hex>`: always content-addressed.
    pub image: String,
    /// The 64 hex digits of the image's digest, as recorded in the manifest.
    pub image_digest: String,
    pub command: Vec<String>,
    /// Where the recipe leaves its outputs: relative to the source folder, or absolute.
    pub output_dir: String,
    pub artifacts: Vec<Pattern>,
    pub timeout: Duration,
    pub cpus: f64,
    pub memory_bytes: u64,
    pub network: Network,
    pub env: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    Submit,
    Read,
    Cancel,
}

impl Scope {
    pub fn parse(s: &str) -> Option<Scope> {
        match s {
            "submit" => Some(Scope::Submit),
            "read" => Some(Scope::Read),
            "cancel" => Some(Scope::Cancel),
            _ => None,
        }
    }
}

/// An API token, known only by the SHA-256 of its secret: the config never holds the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub name: String,
    pub sha256: String,
    pub scopes: BTreeSet<Scope>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Counted attempts (lost worker, failed upload) before a build ends `error`.
    pub max_attempts: u32,
    /// How often a worker renews its lease.
    pub heartbeat: Duration,
    /// How long a worker may go without a heartbeat before the reaper re-queues its build.
    pub lease: Duration,
    /// How long a build may wait in the queue before it ends `expired`.
    pub queue_ttl: Duration,
    /// How long a recipe gets to stop after SIGTERM before it is killed.
    pub grace: Duration,
    /// The most log a build keeps.
    pub log_max_bytes: u64,
    /// How long Redis keeps an ended build's record and log.
    pub retention: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_attempts: 3,
            heartbeat: Duration::from_secs(10),
            lease: Duration::from_secs(60),
            queue_ttl: Duration::from_secs(24 * 3600),
            grace: Duration::from_secs(10),
            log_max_bytes: 50 * 1024 * 1024,
            retention: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub targets: BTreeMap<String, Target>,
    pub tokens: Vec<Token>,
    pub limits: Limits,
}

fn invalid(what: &str, message: String) -> Error {
    Error::bad_input(format!("builder config: {what}: {message}")).hint(
        "fix the builder config (the file Vault injects, see docs/builder.md) and start again",
    )
}

fn duration(what: &str, s: &str) -> Result<Duration> {
    humantime::parse_duration(s.trim()).map_err(|_| {
        invalid(
            what,
            format!("{s:?} is not a duration (examples: 30s, 10m, 1h)"),
        )
    })
}

/// `6Gi`, `512Mi`, `16MiB`, `1G`, or plain bytes.
pub fn parse_bytes(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().ok()?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "K" | "KB" => 1000,
        "M" | "MB" => 1000_u64.pow(2),
        "G" | "GB" => 1000_u64.pow(3),
        "Ki" | "KiB" => 1 << 10,
        "Mi" | "MiB" => 1 << 20,
        "Gi" | "GiB" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(mult)
}

/// The 64 hex digits of a content-addressed image reference, or `None` for a tag.
pub fn image_digest(image: &str) -> Option<&str> {
    let hex = match image.rsplit_once("@sha256:") {
        Some((name, hex)) if !name.is_empty() => hex,
        Some(_) => return None,
        None => image.strip_prefix("sha256:")?,
    };
    (hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
    .then_some(hex)
}

/// A name a process environment can carry: letters, digits and `_`, not starting with a digit.
pub fn is_env_name(s: &str) -> bool {
    let mut b = s.bytes();
    b.next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

fn target(name: &str, raw: RawTarget) -> Result<Target> {
    let at = |key: &str| format!("targets.{name}.{key}");
    if !is_label(name) {
        return Err(invalid(
            &format!("targets.{name}"),
            "a target name must be a DNS-1123 label (lower-case letters, digits, '-'): it names \
             a queue stream and a ScaledJob"
                .into(),
        ));
    }
    let Some(digest) = image_digest(&raw.image) else {
        return Err(invalid(
            &at("image"),
            format!(
                "{:?} is not pinned by digest; use name@sha256:<64 hex digits> (or a local image \
                 id sha256:<64 hex digits>): tags move, and the builder never pulls",
                raw.image
            ),
        ));
    };
    if raw.command.is_empty() || raw.command[0].trim().is_empty() {
        return Err(invalid(&at("command"), "the command is empty".into()));
    }
    let out = raw.output_dir.trim_end_matches('/');
    let rel = out.strip_prefix('/').unwrap_or(out);
    if !crate::builder::glob::is_safe_relative(rel) {
        return Err(invalid(
            &at("output_dir"),
            format!(
                "{:?} must name a folder below the source (or an absolute one other than /), \
                 without '.', '..' or '//'",
                raw.output_dir
            ),
        ));
    }
    if raw.artifacts.is_empty() {
        return Err(invalid(
            &at("artifacts"),
            "no artifact globs: list what the recipe produces, e.g. [\"deb/*.deb\"]".into(),
        ));
    }
    let artifacts = raw
        .artifacts
        .iter()
        .map(|g| Pattern::parse(g).map_err(|m| invalid(&at("artifacts"), m)))
        .collect::<Result<Vec<_>>>()?;
    let timeout = duration(&at("timeout"), &raw.timeout)?;
    if timeout.is_zero() || timeout > MAX_TIMEOUT {
        return Err(invalid(
            &at("timeout"),
            format!("{} must be more than 0 and at most 2h", raw.timeout),
        ));
    }
    if !(raw.cpus.is_finite() && raw.cpus >= 0.01) {
        return Err(invalid(
            &at("cpus"),
            format!("{} must be a number of CPUs of at least 0.01", raw.cpus),
        ));
    }
    let memory_bytes = parse_bytes(&raw.memory).ok_or_else(|| {
        invalid(
            &at("memory"),
            format!("{:?} is not a size (examples: 512Mi, 6Gi)", raw.memory),
        )
    })?;
    if memory_bytes < MIN_MEMORY {
        return Err(invalid(
            &at("memory"),
            format!("{} is under the 6Mi Docker accepts", raw.memory),
        ));
    }
    let network = match raw.network.as_deref() {
        None | Some("none") => Network::None,
        Some("bridge") => Network::Bridge,
        Some(other) => {
            return Err(invalid(
                &at("network"),
                format!("{other:?} is not none or bridge"),
            ))
        }
    };
    if let Some(bad) = raw.env.keys().find(|k| !is_env_name(k)) {
        return Err(invalid(
            &at("env"),
            format!("{bad:?} is not a variable name (letters, digits, '_')"),
        ));
    }
    Ok(Target {
        name: name.to_string(),
        image_digest: digest.to_string(),
        image: raw.image,
        command: raw.command,
        output_dir: raw.output_dir,
        artifacts,
        timeout,
        cpus: raw.cpus,
        memory_bytes,
        network,
        env: raw.env,
    })
}

fn limits(raw: RawLimits) -> Result<Limits> {
    let d = Limits::default();
    let opt = |key: &str, v: &Option<String>, default: Duration| -> Result<Duration> {
        let d = match v {
            Some(s) => duration(&format!("limits.{key}"), s)?,
            None => default,
        };
        if d.is_zero() {
            return Err(invalid(
                &format!("limits.{key}"),
                "must be more than 0".into(),
            ));
        }
        Ok(d)
    };
    let l = Limits {
        max_attempts: raw.max_attempts.unwrap_or(d.max_attempts),
        heartbeat: opt("heartbeat", &raw.heartbeat, d.heartbeat)?,
        lease: opt("lease", &raw.lease, d.lease)?,
        queue_ttl: opt("queue_ttl", &raw.queue_ttl, d.queue_ttl)?,
        grace: opt("grace", &raw.grace, d.grace)?,
        retention: opt("retention", &raw.retention, d.retention)?,
        log_max_bytes: match &raw.log_max {
            Some(s) => parse_bytes(s).ok_or_else(|| {
                invalid("limits.log_max", format!("{s:?} is not a size (e.g. 50Mi)"))
            })?,
            None => d.log_max_bytes,
        },
    };
    if !(1..=10).contains(&l.max_attempts) {
        return Err(invalid(
            "limits.max_attempts",
            format!("{} must be between 1 and 10", l.max_attempts),
        ));
    }
    // A heartbeat delayed by a busy machine must not lose the lease (GitHub runner #3539).
    if l.lease < l.heartbeat * 6 {
        return Err(invalid(
            "limits.lease",
            format!(
                "{} must be at least 6 heartbeats ({}), so a slow heartbeat does not lose a live build",
                humantime::format_duration(l.lease),
                humantime::format_duration(l.heartbeat * 6)
            ),
        ));
    }
    Ok(l)
}

fn token(i: usize, raw: RawToken) -> Result<Token> {
    let at = format!("api_tokens[{i}]");
    if raw.name.trim().is_empty() {
        return Err(invalid(&at, "the token has no name".into()));
    }
    let hex_ok = raw.sha256.len() == 64
        && raw
            .sha256
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !hex_ok {
        return Err(invalid(
            &format!("{at}.sha256"),
            "must be the SHA-256 of the token as 64 lower-case hex digits (printf %s TOKEN | sha256sum)"
                .into(),
        ));
    }
    let mut scopes = BTreeSet::new();
    for s in &raw.scopes {
        scopes.insert(Scope::parse(s).ok_or_else(|| {
            invalid(
                &format!("{at}.scopes"),
                format!("{s:?} is not submit, read or cancel"),
            )
        })?);
    }
    if scopes.is_empty() {
        return Err(invalid(&format!("{at}.scopes"), "no scopes".into()));
    }
    Ok(Token {
        name: raw.name,
        sha256: raw.sha256,
        scopes,
    })
}

impl Config {
    /// Parse and check the YAML text of a builder config.
    pub fn parse(text: &str) -> Result<Config> {
        let raw: RawConfig = serde_norway::from_str(text).map_err(|e| {
            Error::bad_input(format!("builder config: {e}")).hint(
                "the keys are targets, api_tokens and limits; see docs/builder.md for the format",
            )
        })?;
        if raw.targets.is_empty() {
            return Err(invalid(
                "targets",
                "no targets: the builder would have nothing to build".into(),
            ));
        }
        let targets = raw
            .targets
            .into_iter()
            .map(|(name, t)| Ok((name.clone(), target(&name, t)?)))
            .collect::<Result<BTreeMap<_, _>>>()?;
        let tokens = raw
            .api_tokens
            .into_iter()
            .enumerate()
            .map(|(i, t)| token(i, t))
            .collect::<Result<Vec<_>>>()?;
        let mut names = BTreeSet::new();
        let mut hashes = BTreeSet::new();
        for t in &tokens {
            if !names.insert(t.name.as_str()) || !hashes.insert(t.sha256.as_str()) {
                return Err(invalid(
                    "api_tokens",
                    format!(
                        "token {:?} repeats a name or a hash of another token",
                        t.name
                    ),
                ));
            }
        }
        Ok(Config {
            targets,
            tokens,
            limits: limits(raw.limits)?,
        })
    }

    /// Read and parse the config file.
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::bad_input(format!(
                "cannot read the builder config {}: {e}",
                path.display()
            ))
            .hint("pass the file Vault injects (e.g. /vault/secrets/builder-config) with --config")
            .cause(e)
        })?;
        Config::parse(&text)
    }

    pub fn target(&self, name: &str) -> Result<&Target> {
        self.targets.get(name).ok_or_else(|| {
            Error::bad_input(format!("no target named {name:?}")).hint(format!(
                "the builder config has: {}",
                self.targets.keys().cloned().collect::<Vec<_>>().join(", ")
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn example() -> String {
        format!(
            r#"
targets:
  tauri-linux:
    image: registry.local/appgear/builder-tauri@sha256:{DIGEST}
    command: ["sh", "-c", "npm ci && npx tauri build --bundles deb,rpm"]
    output_dir: src-tauri/target/release/bundle
    artifacts: ["deb/*.deb", "rpm/*.rpm"]
    timeout: 60m
    cpus: 1.5
    memory: 6Gi
    network: bridge
  web:
    image: sha256:{DIGEST}
    command: ["sh", "-c", "npm ci && npm run build"]
    output_dir: dist
    artifacts: ["**"]
    timeout: 15m
    cpus: 1
    memory: 2Gi
api_tokens:
  - name: n8n
    sha256: {DIGEST}
    scopes: [submit, read]
limits:
  heartbeat: 5s
  lease: 30s
  retention: 2d
"#
        )
    }

    fn with(find: &str, replace: &str) -> Result<Config> {
        let text = example();
        assert!(text.contains(find), "{find}");
        Config::parse(&text.replacen(find, replace, 1))
    }

    fn message(r: Result<Config>) -> String {
        match r {
            Ok(_) => panic!("accepted"),
            Err(e) => e.message,
        }
    }

    #[test]
    fn the_example_parses_with_defaults_filled_in() {
        let c = Config::parse(&example()).unwrap();
        let t = c.target("tauri-linux").unwrap();
        assert_eq!(t.image_digest, DIGEST);
        assert_eq!(t.timeout, Duration::from_secs(3600));
        assert_eq!(t.memory_bytes, 6 << 30);
        assert_eq!(t.network, Network::Bridge);
        assert_eq!(c.target("web").unwrap().network, Network::None);
        assert_eq!(c.limits.heartbeat, Duration::from_secs(5));
        assert_eq!(c.limits.max_attempts, 3);
        assert_eq!(c.limits.retention, Duration::from_secs(2 * 24 * 3600));
        assert_eq!(
            c.tokens[0].scopes,
            [Scope::Submit, Scope::Read].into_iter().collect()
        );
        assert!(c.target("android").is_err());
    }

    #[test]
    fn unknown_keys_are_refused() {
        let m = message(with("    cpus: 1.5\n", "    cpus: 1.5\n    cpu: 2\n"));
        assert!(m.contains("unknown field `cpu`"), "{m}");
        let m = message(with("limits:\n", "limit:\n"));
        assert!(m.contains("unknown field"), "{m}");
    }

    #[test]
    fn images_must_be_pinned_by_digest() {
        let m = message(with(
            &format!("builder-tauri@sha256:{DIGEST}"),
            "builder-tauri:2",
        ));
        assert!(
            m.contains("targets.tauri-linux.image") && m.contains("not pinned"),
            "{m}"
        );
        assert_eq!(image_digest("sha256:abc"), None);
        assert_eq!(image_digest(&format!("sha256:{DIGEST}")), Some(DIGEST));
        assert_eq!(image_digest(&format!("@sha256:{DIGEST}")), None);
    }

    #[test]
    fn bad_values_name_their_key() {
        for (find, replace, key) in [
            ("timeout: 60m", "timeout: 3h", "targets.tauri-linux.timeout"),
            (
                "timeout: 60m",
                "timeout: soon",
                "targets.tauri-linux.timeout",
            ),
            ("memory: 6Gi", "memory: 1Mi", "targets.tauri-linux.memory"),
            ("memory: 6Gi", "memory: lots", "targets.tauri-linux.memory"),
            ("cpus: 1.5", "cpus: 0", "targets.tauri-linux.cpus"),
            (
                "network: bridge",
                "network: host",
                "targets.tauri-linux.network",
            ),
            (
                "\"deb/*.deb\"",
                "\"../deb/*.deb\"",
                "targets.tauri-linux.artifacts",
            ),
            (
                "output_dir: dist",
                "output_dir: ../dist",
                "targets.web.output_dir",
            ),
            (
                "scopes: [submit, read]",
                "scopes: [admin]",
                "api_tokens[0].scopes",
            ),
            (
                &format!("sha256: {DIGEST}"),
                "sha256: secret",
                "api_tokens[0].sha256",
            ),
            ("lease: 30s", "lease: 20s", "limits.lease"),
            ("  tauri-linux:", "  Tauri_Linux:", "targets.Tauri_Linux"),
        ] {
            let m = message(with(find, replace));
            assert!(m.contains(key), "{replace}: {m}");
        }
    }

    #[test]
    fn the_published_example_names_every_target_by_digest() {
        let c = Config::parse(EXAMPLE).unwrap();
        let names: Vec<&str> = c.targets.keys().map(String::as_str).collect();
        assert_eq!(names, ["android-apk", "tauri-linux", "web"]);
        for t in c.targets.values() {
            assert!(t.image.contains("@sha256:"), "{}", t.image);
            assert_eq!(image_digest(&t.image), Some(t.image_digest.as_str()));
        }
        let tauri = c.target("tauri-linux").unwrap();
        assert!(tauri.command[2].starts_with("apt-get update && apt-get install"));
        assert!(tauri.command[2].ends_with("npx tauri build --bundles deb,rpm"));
    }

    #[test]
    fn a_tag_alone_is_refused_and_a_local_image_id_is_the_only_escape() {
        for (image, ok) in [
            ("node:24-bookworm-slim", false),
            ("node@sha256:4e6b", false),
            ("sha256:4e6b", false),
            (
                "sha256:4e6b70dd6cbfc88c8157ba19aa3d9f9cce6ba4703576d55459e45efcbc9c5f5d",
                true,
            ),
        ] {
            let text = EXAMPLE.replacen(
                "node:24.15.0-bookworm-slim@sha256:4e6b70dd6cbfc88c8157ba19aa3d9f9cce6ba4703576d55459e45efcbc9c5f5d",
                image,
                1,
            );
            assert_eq!(Config::parse(&text).is_ok(), ok, "{image}");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("16Mi"), Some(16 << 20));
        assert_eq!(parse_bytes("16MiB"), Some(16 << 20));
        assert_eq!(parse_bytes("1G"), Some(1_000_000_000));
        assert_eq!(parse_bytes("42"), Some(42));
        assert_eq!(parse_bytes("1.5Gi"), None);
        assert_eq!(parse_bytes("99999999999999999999Gi"), None);
    }
}

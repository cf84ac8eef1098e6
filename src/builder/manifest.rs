//! What an attempt leaves beside its artifacts: `manifest.json` (written last, the commit marker
//! that says the attempt is complete) and `SHA256SUMS` (checkable with `sha256sum -c` from the
//! attempt's folder). Pure: the worker fills the structs, these functions give the bytes.

use crate::builder::config::Target;
use crate::builder::glob::is_safe_relative;
use crate::builder::keys::ARTIFACTS_DIR;
use crate::builder::state::{Reason, State};
use crate::core::digest::sha256_hex;
use serde::{Deserialize, Serialize};

/// Bumped when a field changes meaning; readers refuse schemas they do not know.
pub const SCHEMA: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Artifact {
    /// The path under the target's output directory, e.g. `deb/app_1.0_amd64.deb`.
    pub name: String,
    /// The object key it was stored under.
    pub key: String,
    pub size: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogInfo {
    pub key: String,
    pub bytes: u64,
    /// False when lines were dropped (the log went over its limit, or a chunk was lost).
    pub complete: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Times {
    pub queued: String,
    pub started: String,
    pub finished: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub schema: u32,
    pub workspace: String,
    pub build: String,
    pub attempt: u32,
    pub target: String,
    pub image: String,
    pub image_digest: String,
    pub recipe_hash: String,
    pub source_sha256: Option<String>,
    pub times: Times,
    pub exit_code: Option<i64>,
    pub state: State,
    pub reason: Option<Reason>,
    pub artifacts: Vec<Artifact>,
    pub log: LogInfo,
}

impl Manifest {
    /// Pretty JSON with a final newline: humans open these files too.
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec_pretty(self).unwrap_or_default();
        out.push(b'\n');
        out
    }

    pub fn parse(bytes: &[u8]) -> Result<Manifest, String> {
        let m: Manifest =
            serde_json::from_slice(bytes).map_err(|e| format!("not a build manifest: {e}"))?;
        if m.schema != SCHEMA {
            return Err(format!(
                "manifest schema {} is not {SCHEMA}: written by another appgear version",
                m.schema
            ));
        }
        Ok(m)
    }
}

/// The SHA-256 of everything that decides what a target's recipe does, so two builds with the
/// same recipe hash ran the same recipe (and a cache key can include it later).
pub fn recipe_hash(t: &Target) -> String {
    let v = serde_json::json!({
        "image": t.image,
        "command": t.command,
        "output_dir": t.output_dir,
        "artifacts": t.artifacts.iter().map(|p| p.as_str()).collect::<Vec<_>>(),
        "timeout_s": t.timeout.as_secs(),
        "cpus": t.cpus,
        "memory": t.memory_bytes,
        "network": t.network.as_str(),
        "env": t.env,
    });
    sha256_hex(v.to_string().as_bytes())
}

/// `SHA256SUMS` in the format `sha256sum -c` reads: `<hex>  artifacts/<name>` per line, names
/// relative to the attempt's folder. A name `sha256sum` would have to escape (backslash, line
/// break) is refused: such a name never passes the glob rules anyway.
pub fn sha256sums(artifacts: &[Artifact]) -> Result<String, String> {
    let mut out = String::new();
    for a in artifacts {
        if !is_safe_relative(&a.name) {
            return Err(format!("artifact name {:?} cannot be listed", a.name));
        }
        out.push_str(&format!("{}  {ARTIFACTS_DIR}{}\n", a.sha256, a.name));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builder::clock::rfc3339;
    use crate::builder::config::Config;

    fn sample() -> Manifest {
        Manifest {
            schema: SCHEMA,
            workspace: "demo".into(),
            build: "b0123456789abcdef01234567".into(),
            attempt: 2,
            target: "web".into(),
            image: "sha256:00".into(),
            image_digest: "00".into(),
            recipe_hash: "11".into(),
            source_sha256: None,
            times: Times {
                queued: rfc3339(0),
                started: rfc3339(1_000),
                finished: rfc3339(61_500),
            },
            exit_code: Some(0),
            state: State::Succeeded,
            reason: None,
            artifacts: vec![Artifact {
                name: "index.html".into(),
                key: "ws-demo/builds/b0123456789abcdef01234567/attempt-2/artifacts/index.html"
                    .into(),
                size: 3,
                sha256: sha256_hex(b"hi\n"),
            }],
            log: LogInfo {
                key: "k".into(),
                bytes: 10,
                complete: true,
            },
        }
    }

    #[test]
    fn manifest_round_trips_with_stable_names() {
        let m = sample();
        let bytes = m.to_json();
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["state"], "succeeded");
        assert_eq!(v["reason"], serde_json::Value::Null);
        assert_eq!(v["times"]["finished"], "1970-01-01T00:01:01.500Z");
        assert_eq!(v["artifacts"][0]["size"], 3);
        assert_eq!(Manifest::parse(&bytes).unwrap(), m);
        let mut other = v.clone();
        other["schema"] = 2.into();
        assert!(Manifest::parse(other.to_string().as_bytes()).is_err());
        let mut failed = m.clone();
        failed.state = State::Failed;
        failed.reason = Some(Reason::NoArtifacts);
        let v: serde_json::Value = serde_json::from_slice(&failed.to_json()).unwrap();
        assert_eq!(
            (v["state"].as_str(), v["reason"].as_str()),
            (Some("failed"), Some("no_artifacts"))
        );
    }

    #[test]
    fn sums_use_the_sha256sum_text_format() {
        let m = sample();
        assert_eq!(
            sha256sums(&m.artifacts).unwrap(),
            format!("{}  artifacts/index.html\n", sha256_hex(b"hi\n"))
        );
        let mut bad = m.artifacts.clone();
        bad[0].name = "a\nb".into();
        assert!(sha256sums(&bad).is_err());
    }

    #[test]
    fn recipe_hash_follows_the_recipe() {
        let text = |cmd: &str| {
            format!(
                "targets:\n  web:\n    image: sha256:{}\n    command: [\"sh\", \"-c\", \"{cmd}\"]\n    output_dir: dist\n    artifacts: [\"**\"]\n    timeout: 1m\n    cpus: 1\n    memory: 64Mi\n",
                "a".repeat(64)
            )
        };
        let a = Config::parse(&text("make")).unwrap();
        let b = Config::parse(&text("make all")).unwrap();
        let h = |c: &Config| recipe_hash(c.target("web").unwrap());
        assert_eq!(h(&a), h(&a.clone()));
        assert_ne!(h(&a), h(&b));
        assert_eq!(h(&a).len(), 64);
    }
}

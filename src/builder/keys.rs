//! Object keys of a build's outputs. Every attempt writes under its own prefix,
//! `ws-<ws>/builds/<id>/attempt-<n>/`, so a retry never overwrites (or is refused by) what an
//! earlier attempt left, and a zombie's uploads sit where no manifest points at them. Pure.
//!
//! ```text
//! ws-<ws>/builds/<id>/attempt-<n>/artifacts/<path under output_dir>
//!                                 logs/build.log.gz
//!                                 SHA256SUMS
//!                                 manifest.json        written last: the commit marker
//! ```

use crate::builder::glob::is_safe_relative;
use crate::builder::id::BuildId;
use crate::core::names::WorkspaceId;

pub const ARTIFACTS_DIR: &str = "artifacts/";
pub const LOG: &str = "logs/build.log.gz";
pub const SUMS: &str = "SHA256SUMS";
pub const MANIFEST: &str = "manifest.json";

/// The keys of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptKeys {
    prefix: String,
}

impl AttemptKeys {
    pub fn new(workspace: &WorkspaceId, build: &BuildId, attempt: u32) -> AttemptKeys {
        AttemptKeys {
            prefix: format!("{}attempt-{attempt}/", build_prefix(workspace, build)),
        }
    }

    /// `ws-<ws>/builds/<id>/attempt-<n>/`
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The key of an artifact, by its path under the output directory; `None` for a path that
    /// could escape its folder.
    pub fn artifact(&self, rel: &str) -> Option<String> {
        is_safe_relative(rel).then(|| format!("{}{ARTIFACTS_DIR}{rel}", self.prefix))
    }

    pub fn log(&self) -> String {
        format!("{}{LOG}", self.prefix)
    }

    pub fn sums(&self) -> String {
        format!("{}{SUMS}", self.prefix)
    }

    pub fn manifest(&self) -> String {
        format!("{}{MANIFEST}", self.prefix)
    }
}

/// `ws-<ws>/sources/`: where a workspace's callers upload sources. A build may only name a
/// source under its own workspace's prefix, so no request can make a worker read another
/// workspace's objects.
pub fn sources_prefix(workspace: &WorkspaceId) -> String {
    format!("ws-{}/sources/", workspace.as_str())
}

/// `ws-<ws>/builds/<id>/`: every attempt of a build.
pub fn build_prefix(workspace: &WorkspaceId, build: &BuildId) -> String {
    format!("ws-{}/builds/{}/", workspace.as_str(), build.as_str())
}

/// The attempt number in a key under `build_prefix`, e.g. for listing a build's attempts.
pub fn attempt_of(build_prefix: &str, key: &str) -> Option<u32> {
    let rest = key.strip_prefix(build_prefix)?.strip_prefix("attempt-")?;
    let (n, _) = rest.split_once('/')?;
    if n.starts_with('0') {
        return None;
    }
    n.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(attempt: u32) -> AttemptKeys {
        AttemptKeys::new(
            &WorkspaceId::parse("demo").unwrap(),
            &BuildId::parse("b0123456789abcdef01234567").unwrap(),
            attempt,
        )
    }

    #[test]
    fn layout() {
        let k = keys(2);
        assert_eq!(
            k.prefix(),
            "ws-demo/builds/b0123456789abcdef01234567/attempt-2/"
        );
        assert_eq!(
            k.artifact("deb/app_1.0_amd64.deb").unwrap(),
            "ws-demo/builds/b0123456789abcdef01234567/attempt-2/artifacts/deb/app_1.0_amd64.deb"
        );
        assert!(k.log().ends_with("/attempt-2/logs/build.log.gz"));
        assert!(k.sums().ends_with("/attempt-2/SHA256SUMS"));
        assert!(k.manifest().ends_with("/attempt-2/manifest.json"));
    }

    #[test]
    fn attempts_never_share_a_key() {
        let all: Vec<String> = (1..=12)
            .flat_map(|n| {
                let k = keys(n);
                vec![k.artifact("a").unwrap(), k.log(), k.sums(), k.manifest()]
            })
            .collect();
        let unique: std::collections::BTreeSet<&String> = all.iter().collect();
        assert_eq!(unique.len(), all.len());
        let bp = build_prefix(
            &WorkspaceId::parse("demo").unwrap(),
            &BuildId::parse("b0123456789abcdef01234567").unwrap(),
        );
        assert_eq!(attempt_of(&bp, &keys(11).manifest()), Some(11));
        assert_eq!(attempt_of(&bp, &format!("{bp}attempt-01/x")), None);
    }

    #[test]
    fn sources_have_their_own_prefix() {
        let ws = WorkspaceId::parse("demo").unwrap();
        assert_eq!(sources_prefix(&ws), "ws-demo/sources/");
        assert!(!keys(1).prefix().starts_with(&sources_prefix(&ws)));
    }

    #[test]
    fn escaping_artifact_paths_get_no_key() {
        let k = keys(1);
        for bad in ["../manifest.json", "/etc/passwd", "a/../../x", ""] {
            assert_eq!(k.artifact(bad), None, "{bad}");
        }
    }
}

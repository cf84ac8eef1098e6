//! A Helm chart repository's `index.yaml`: where the package of a chart version is and the
//! SHA-256 the repository publishes for it (`digest`), which the downloaded bytes must match.

use serde::Deserialize;
use std::collections::BTreeMap;

/// Chart repositories' indexes grow with every release (Airbyte's lists thousands of versions);
/// this is well above the largest, and far below what could hurt.
pub const MAX_INDEX_BYTES: u64 = 64 << 20;

#[derive(Deserialize)]
struct Index {
    #[serde(default)]
    entries: BTreeMap<String, Vec<ChartVersion>>,
}

#[derive(Deserialize)]
struct ChartVersion {
    #[serde(default)]
    version: String,
    #[serde(default)]
    digest: Option<String>,
    #[serde(default)]
    urls: Vec<String>,
}

/// The package of one chart version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    /// Absolute: a relative URL in the index is relative to the repository.
    pub url: String,
    /// 64 lower-case hex digits.
    pub digest: String,
}

/// The `index.yaml` of `repo` (its URL, for relative package URLs) → `chart` at `version`.
/// The error says what is wrong, for a message that names the repository.
pub fn find(text: &str, repo: &str, chart: &str, version: &str) -> Result<Package, String> {
    let index: Index =
        serde_norway::from_str(text).map_err(|e| format!("its index.yaml does not parse: {e}"))?;
    let versions = index
        .entries
        .get(chart)
        .ok_or_else(|| format!("its index.yaml lists no chart {chart}"))?;
    let entry = versions
        .iter()
        .find(|v| v.version == version || v.version.strip_prefix('v') == Some(version))
        .ok_or_else(|| format!("its index.yaml lists no version {version} of chart {chart}"))?;
    let url = entry
        .urls
        .first()
        .ok_or_else(|| format!("its index.yaml gives no URL for {chart} {version}"))?;
    let digest = entry
        .digest
        .as_deref()
        .map(|d| d.trim().to_ascii_lowercase())
        .filter(|d| crate::topology_b::pins::is_sha256_hex(d))
        .ok_or_else(|| {
            format!("its index.yaml gives no SHA-256 digest for {chart} {version}, so the package cannot be checked")
        })?;
    Ok(Package {
        url: absolute(repo, url),
        digest,
    })
}

fn absolute(repo: &str, url: &str) -> String {
    let lower = url.to_ascii_lowercase();
    if lower.starts_with("https://") || lower.starts_with("http://") {
        url.to_string()
    } else {
        format!(
            "{}/{}",
            repo.trim_end_matches('/'),
            url.trim_start_matches('/')
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INDEX: &str = "apiVersion: v1\nentries:\n  airbyte:\n  - version: 2.3.0\n    digest: 1111111111111111111111111111111111111111111111111111111111111111\n    urls: [airbyte-2.3.0.tgz]\n  - version: 2.2.0\n    digest: 2DA7F32D2FDBB5E00FED4635CFBE51C8D7533C9D57966BED301A362BE441FA9F\n    urls: [airbyte-2.2.0.tgz]\n    appVersion: 2.2.0\n  ingress:\n  - version: 0.24.0\n    urls: [https://github.com/Kong/charts/releases/download/ingress-0.24.0/ingress-0.24.0.tgz]\n    digest: 2da7f32d2fdbb5e00fed4635cfbe51c8d7533c9d57966bed301a362be441fa9f\ngenerated: 2026-01-01T00:00:00Z\n";

    #[test]
    fn finds_the_pinned_version_with_its_digest() {
        let p = find(
            INDEX,
            "https://airbytehq.github.io/charts/",
            "airbyte",
            "2.2.0",
        )
        .unwrap();
        assert_eq!(
            p.url,
            "https://airbytehq.github.io/charts/airbyte-2.2.0.tgz"
        );
        assert_eq!(
            p.digest,
            "2da7f32d2fdbb5e00fed4635cfbe51c8d7533c9d57966bed301a362be441fa9f"
        );
        let k = find(INDEX, "https://charts.konghq.com", "ingress", "0.24.0").unwrap();
        assert_eq!(
            k.url,
            "https://github.com/Kong/charts/releases/download/ingress-0.24.0/ingress-0.24.0.tgz"
        );
    }

    #[test]
    fn says_what_is_missing() {
        let repo = "https://r";
        assert_eq!(
            find(INDEX, repo, "kong", "1").unwrap_err(),
            "its index.yaml lists no chart kong"
        );
        assert_eq!(
            find(INDEX, repo, "airbyte", "9.9.9").unwrap_err(),
            "its index.yaml lists no version 9.9.9 of chart airbyte"
        );
        let no_digest = "entries:\n  a:\n  - version: '1'\n    urls: [a-1.tgz]\n";
        assert!(find(no_digest, repo, "a", "1")
            .unwrap_err()
            .contains("no SHA-256 digest"));
        assert!(find("entries: [", repo, "a", "1")
            .unwrap_err()
            .starts_with("its index.yaml does not parse"));
    }
}

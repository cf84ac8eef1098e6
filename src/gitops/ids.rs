//! The names a render is made of that only GitOps needs (cluster, repository, revision), each
//! validated before it reaches a template. The names every product shares are in `core::names`.

use crate::core::error::{Error, Result};
use crate::core::names::{is_label as is_dns_label, is_subdomain as is_dns_subdomain};
use crate::core::quote::quoted;

/// A cluster name of the form `ag-<region>-core-<env>` (spec, "Pré-requisitos").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterName(String);

impl ClusterName {
    pub fn parse(s: &str) -> Result<Self> {
        let bad = || {
            Error::bad_input(format!(
                "cluster name {} does not match ag-<region>-core-<env>",
                quoted(s, 64)
            ))
            .hint("use lower-case letters and digits, e.g. ag-br-core-dev or ag-us-east-core-prod")
        };
        if !is_dns_label(s) {
            return Err(bad());
        }
        let rest = s.strip_prefix("ag-").ok_or_else(bad)?;
        let (region, env) = rest.rsplit_once("-core-").ok_or_else(bad)?;
        let part_ok = |p: &str| is_dns_label(p);
        if !part_ok(region) || env.is_empty() || !env.bytes().all(|c| c.is_ascii_alphanumeric()) {
            return Err(bad());
        }
        Ok(ClusterName(s.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The Git URL Argo CD pulls the tree from: `https://`, `http://`, `ssh://` or scp-like
/// `git@host:path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoUrl(String);

impl RepoUrl {
    pub fn parse(s: &str) -> Result<Self> {
        let bad = || {
            Error::bad_input(format!(
                "repository URL {} is not a Git URL",
                quoted(s, 200)
            ))
                .hint("use https://host/path/appgear-gitops-suites.git or git@host:path/appgear-gitops-suites.git")
        };
        // Anything that could break out of a YAML scalar or a URL is refused outright.
        if s.is_empty()
            || s.len() > 2048
            || s.chars()
                .any(|c| c.is_whitespace() || c.is_control() || "\"'#<>{}\\`".contains(c))
        {
            return Err(bad());
        }
        let host_and_path = if let Some((scheme, rest)) = s.split_once("://") {
            if !matches!(scheme, "https" | "http" | "ssh" | "git") {
                return Err(bad());
            }
            rest
        } else if let Some((user_host, path)) = s.split_once(':') {
            // scp-like: user@host:path
            if !user_host.contains('@') || path.is_empty() {
                return Err(bad());
            }
            user_host.rsplit_once('@').map(|(_, h)| h).unwrap_or("")
        } else {
            return Err(bad());
        };
        let host = host_and_path
            .split('/')
            .next()
            .unwrap_or("")
            .rsplit('@')
            .next()
            .unwrap_or("");
        let host = host.split(':').next().unwrap_or("");
        if !is_dns_subdomain(&host.to_ascii_lowercase()) {
            return Err(bad());
        }
        Ok(RepoUrl(s.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A Git revision Argo CD tracks: a branch, tag or commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revision(String);

impl Revision {
    pub fn parse(s: &str) -> Result<Self> {
        let ok = !s.is_empty()
            && s.len() <= 255
            && !s.starts_with('-')
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
            && !s.contains("..");
        if !ok {
            return Err(Error::bad_input(format!(
                "revision {} is not a Git branch, tag or commit",
                quoted(s, 64)
            ))
            .hint("use a name such as main or v1.2.0"));
        }
        Ok(Revision(s.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_names() {
        for ok in ["ag-br-core-dev", "ag-us-east-core-prod", "ag-eu1-core-stg2"] {
            assert!(ClusterName::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "br-core-dev",
            "ag-br-dev",
            "ag--core-dev",
            "ag-br-core-",
            "ag-BR-core-dev",
            "ag-br-core-dev-x",
        ] {
            assert!(ClusterName::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn repo_urls() {
        for ok in [
            "https://git.example.com/appgear-gitops-suites.git",
            "ssh://git@git.example.com:22/org/repo.git",
            "git@github.com:org/appgear-gitops-suites.git",
        ] {
            assert!(RepoUrl::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "git.example.com/repo",
            "ftp://x/y",
            "https://",
            "https://exa mple.com/x",
            "https://x.com/\"; rm",
            "https://x.com/<tenant_id>",
        ] {
            assert!(RepoUrl::parse(bad).is_err(), "{bad}");
        }
    }
}

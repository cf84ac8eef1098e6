//! The suite to render: validated settings, built once from the command line (or a workspaces
//! file) and read by the renderer.

use super::ids::{ClusterName, RepoUrl, Revision};
use crate::core::error::{Context, Error, Kind, Result};
use crate::core::names::{Domain, TenantId, WorkspaceId};
use serde::Deserialize;
use std::collections::BTreeSet;
use std::path::Path;

/// One workspace instance of the Factory suite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workspace {
    pub id: WorkspaceId,
    pub tenant: TenantId,
}

/// Everything a render needs.
#[derive(Debug, Clone)]
pub struct Suite {
    pub cluster: ClusterName,
    pub repo: RepoUrl,
    pub revision: Revision,
    pub domain: Domain,
    /// Sorted by id, so the output does not depend on the order of the flags.
    pub workspaces: Vec<Workspace>,
}

/// Raw, unvalidated workspace entries as the user wrote them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceEntry {
    pub id: String,
    pub tenant: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WorkspacesFile {
    workspaces: Vec<WorkspaceEntry>,
}

/// Read a workspaces file: `workspaces: [{id: demo, tenant: acme}, ...]`.
pub fn read_workspaces_file(path: &Path) -> Result<Vec<WorkspaceEntry>> {
    let text = std::fs::read_to_string(path).or_err(Kind::BadInput, || {
        format!("cannot read workspaces file {}", path.display())
    })?;
    let file: WorkspacesFile = serde_norway::from_str(&text).map_err(|e| {
        Error::bad_input(format!(
            "workspaces file {} is not valid: {e}",
            path.display()
        ))
        .hint("write it as `workspaces: [{id: demo, tenant: acme}]` (or the same as a YAML list)")
    })?;
    Ok(file.workspaces)
}

impl Suite {
    /// Validate every value; refuse duplicate workspaces.
    pub fn new(
        cluster: &str,
        repo: &str,
        revision: &str,
        domain: &str,
        entries: &[WorkspaceEntry],
    ) -> Result<Suite> {
        let cluster = ClusterName::parse(cluster)?;
        let repo = RepoUrl::parse(repo)?;
        let revision = Revision::parse(revision)?;
        let domain = Domain::parse(domain)?;
        let mut seen = BTreeSet::new();
        let mut workspaces = Vec::with_capacity(entries.len());
        for e in entries {
            let id = WorkspaceId::parse(&e.id)?;
            let tenant = TenantId::parse(&e.tenant)?;
            if !seen.insert(id.clone()) {
                return Err(Error::bad_input(format!(
                    "workspace {:?} is given more than once",
                    e.id
                ))
                .hint("list each workspace once; one workspace belongs to one tenant"));
            }
            workspaces.push(Workspace { id, tenant });
        }
        workspaces.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(Suite {
            cluster,
            repo,
            revision,
            domain,
            workspaces,
        })
    }
}

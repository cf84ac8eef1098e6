//! The suite to render: validated settings, built once from the command line (or a workspaces
//! file) and read by the renderer.

use super::ids::{ClusterName, RepoUrl, Revision};
use crate::core::error::{Error, Result};
use crate::core::names::{Domain, TenantId, WorkspaceId};
use crate::core::quote;
use crate::core::yaml::{self, Budget, Links, ReadError, YamlError};
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

/// A workspaces file lists ids, so 1 MiB holds tens of thousands of workspaces.
const WORKSPACES_FILE_MAX: u64 = 1 << 20;

/// The longest id quoted back in full; anything longer is cut in messages. No valid id comes
/// near it (a DNS label has at most 63 characters).
const QUOTE_MAX: usize = 64;

/// Read a workspaces file: `workspaces: [{id: demo, tenant: acme}, ...]`.
///
/// The file is bounded before it is parsed: at most 1 MiB, and no YAML anchors or aliases (a
/// list of ids has no use for them, and an alias is how a small file expands to gigabytes).
pub fn read_workspaces_file(path: &Path) -> Result<Vec<WorkspaceEntry>> {
    let hint = "write it as `workspaces: [{id: demo, tenant: acme}]` (or the same as a YAML list)";
    // The file is named by the user on the command line: a link to it is their choice.
    let read = yaml::read_text(path, WORKSPACES_FILE_MAX, Links::Follow).map_err(|e| {
        let message = match e {
            ReadError::TooBig(_) => {
                format!("workspaces file {} is larger than 1 MiB", path.display())
            }
            e => format!("cannot read workspaces file {}: {e}", path.display()),
        };
        Error::bad_input(message).hint(hint)
    })?;
    let Some(text) = read else {
        return Err(Error::bad_input(format!(
            "cannot read workspaces file {}: it does not exist",
            path.display()
        ))
        .hint(hint));
    };
    if let Some(yaml::Found { line, .. }) = yaml::first_anchor_or_alias(&text) {
        return Err(Error::bad_input(format!(
            "workspaces file {} uses a YAML anchor or alias (line {line}); a list of workspaces has no use for them",
            path.display()
        ))
        .hint("write each workspace out in full, e.g. `- {id: demo, tenant: acme}`, without &name or *name"));
    }
    // No aliases, so the values cannot outgrow the text; the budget holds that anyway.
    let mut budget = Budget {
        nodes: text.len() as u64 + 16,
        bytes: 2 * text.len() as u64 + 16,
    };
    let file: WorkspacesFile = yaml::document(&text, &mut budget).map_err(|e| {
        let why = match e {
            YamlError::Syntax(m) => m,
            YamlError::TooLarge => "it expands beyond its own size".to_string(),
        };
        Error::bad_input(format!(
            "workspaces file {} is not valid: {why}",
            path.display()
        ))
        .hint(hint)
    })?;
    Ok(file.workspaces)
}

/// Refuse an id far longer than any valid one before it is validated, so that the message
/// quotes it cut instead of in full.
fn not_absurdly_long(what: &str, s: &str) -> Result<()> {
    if s.chars().count() <= QUOTE_MAX {
        return Ok(());
    }
    Err(Error::bad_input(format!(
        "{what} {} is not a DNS-1123 label",
        quote::quoted(s, 10)
    ))
    .hint("use lower-case letters, digits and '-', at most 63 characters, e.g. demo or acme"))
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
            not_absurdly_long("workspace id", &e.id)?;
            not_absurdly_long("tenant id", &e.tenant)?;
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

//! The local cluster's workspaces, recorded in the home (`config/cluster/workspaces.yaml`) so
//! that `cluster up` after `cluster down` brings them back with their data. `workspace add` and
//! `workspace remove` edit it; the stage plan and the suite render read it.
//!
//! It is data, not a generated file: appgear rewrites it whole (atomically, sorted by id) on
//! every change, and a hand edit is welcome as long as it stays valid. The format is the one
//! `appgear gitops render --workspaces-file` reads, so the same file renders the same suite for
//! a real cluster.

use crate::core::error::{Error, Kind, Result};
use crate::core::files;
use crate::core::names::{TenantId, WorkspaceId};
use crate::gitops::model::{Workspace, WorkspaceEntry};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The file, relative to the home.
pub const FILE: &str = "config/cluster/workspaces.yaml";
/// A laptop cluster holds a handful of workspaces; the bound only keeps a damaged file from
/// costing memory.
pub const MAX_BYTES: u64 = 1 << 20;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileFormat {
    workspaces: Vec<WorkspaceEntry>,
}

/// The recorded workspaces, sorted by id.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Workspaces {
    list: Vec<Workspace>,
}

/// What `add` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Added,
    /// Already recorded with the same tenant.
    Unchanged,
}

pub fn path(home: &Path) -> PathBuf {
    home.join(FILE)
}

impl Workspaces {
    /// Read the home's file; a missing file is no workspace yet.
    pub fn load(home: &Path) -> Result<Workspaces> {
        let p = path(home);
        match super::addons::read_file(&p, MAX_BYTES)? {
            None => Ok(Workspaces::default()),
            Some(bytes) => {
                let text = String::from_utf8(bytes).map_err(|_| invalid(&p, "it is not UTF-8"))?;
                Workspaces::parse(&text, &p)
            }
        }
    }

    /// Parse and validate the file's text (`origin` names it in errors).
    pub fn parse(text: &str, origin: &Path) -> Result<Workspaces> {
        let only_comments = text
            .lines()
            .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'));
        if only_comments {
            return Ok(Workspaces::default());
        }
        if let Some(found) = crate::core::yaml::first_anchor_or_alias(text) {
            return Err(invalid(
                origin,
                &format!("line {} uses a YAML {}", found.line, found.what),
            ));
        }
        let file: FileFormat =
            serde_norway::from_str(text).map_err(|e| invalid(origin, &e.to_string()))?;
        let mut out = Workspaces::default();
        for e in file.workspaces {
            let at = |err: Error| {
                let message = format!("{} in {}", err.message, origin.display());
                Error { message, ..err }
            };
            let id = WorkspaceId::parse(&e.id).map_err(at)?;
            let tenant = TenantId::parse(&e.tenant).map_err(at)?;
            if out.get(id.as_str()).is_some() {
                return Err(invalid(
                    origin,
                    &format!("workspace {} is listed twice", id.as_str()),
                ));
            }
            out.list.push(Workspace { id, tenant });
        }
        out.list.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    /// The file's text: a comment saying what it is, then the workspaces sorted by id.
    pub fn render(&self) -> String {
        let mut out = String::from(
            "# The workspaces of appgear's local cluster: `appgear workspace add|remove` rewrites this file,\n\
             # and `appgear cluster up` brings them back after `cluster down`. It is also a valid\n\
             # `appgear gitops render --workspaces-file`.\n",
        );
        if self.list.is_empty() {
            out.push_str("workspaces: []\n");
            return out;
        }
        out.push_str("workspaces:\n");
        for w in &self.list {
            // Both are DNS-1123 labels: plain YAML scalars, no quoting needed.
            out.push_str(&format!(
                "- id: {}\n  tenant: {}\n",
                w.id.as_str(),
                w.tenant.as_str()
            ));
        }
        out
    }

    /// Write the file atomically (creating `config/cluster/`).
    pub fn save(&self, home: &Path) -> Result<()> {
        let p = path(home);
        let fail = |at: &Path, e: std::io::Error| {
            Error::new(
                Kind::NotReady,
                format!("cannot write {}: {e}", at.display()),
            )
            .hint("check that you own the home folder and that the disk is not full")
            .cause(e)
        };
        if let Some(dir) = p.parent() {
            files::create_dir_all(dir).map_err(|e| fail(dir, e))?;
        }
        files::write_atomic(&p, self.render().as_bytes(), None).map_err(|e| fail(&p, e))
    }

    /// Record a workspace. The same id with the same tenant changes nothing; with another tenant
    /// it is refused: a workspace's costs and labels belong to one tenant.
    pub fn add(&mut self, id: &str, tenant: &str) -> Result<Change> {
        let id = WorkspaceId::parse(id)?;
        let tenant = TenantId::parse(tenant)?;
        if let Some(w) = self.get(id.as_str()) {
            if w.tenant == tenant {
                return Ok(Change::Unchanged);
            }
            return Err(Error::bad_input(format!(
                "workspace {} belongs to tenant {}, not {}",
                id.as_str(),
                w.tenant.as_str(),
                tenant.as_str()
            ))
            .hint(format!(
                "a workspace keeps its tenant; remove it first (`appgear workspace remove {}`), or pick another id",
                id.as_str()
            )));
        }
        let at = self.list.partition_point(|w| w.id < id);
        self.list.insert(at, Workspace { id, tenant });
        Ok(Change::Added)
    }

    /// Forget a workspace, returning it; an id that is not recorded is an error naming those
    /// that are.
    pub fn remove(&mut self, id: &str) -> Result<Workspace> {
        match self.list.iter().position(|w| w.id.as_str() == id) {
            Some(i) => Ok(self.list.remove(i)),
            None => {
                let known: Vec<&str> = self.list.iter().map(|w| w.id.as_str()).collect();
                Err(Error::bad_input(format!("no workspace {id:?} is recorded"))
                    .hint(if known.is_empty() {
                        "there are no workspaces yet; `appgear workspace add ID --tenant T` adds one".to_string()
                    } else {
                        format!("recorded workspaces: {}", known.join(", "))
                    }))
            }
        }
    }

    pub fn get(&self, id: &str) -> Option<&Workspace> {
        self.list.iter().find(|w| w.id.as_str() == id)
    }

    pub fn list(&self) -> &[Workspace] {
        &self.list
    }

    /// As the gitops model takes them, to render the suite.
    pub fn entries(&self) -> Vec<WorkspaceEntry> {
        self.list
            .iter()
            .map(|w| WorkspaceEntry {
                id: w.id.as_str().to_string(),
                tenant: w.tenant.as_str().to_string(),
            })
            .collect()
    }
}

fn invalid(origin: &Path, why: &str) -> Error {
    Error::bad_input(format!("{} is not valid: {why}", origin.display())).hint(
        "fix it (`workspaces: [{id: demo, tenant: acme}]`), or delete it and add the workspaces again with `appgear workspace add`",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_remove_list_and_round_trip() {
        let home = tempfile::tempdir().unwrap();
        let mut w = Workspaces::load(home.path()).unwrap();
        assert!(w.list().is_empty());
        assert_eq!(w.add("team-b", "globex").unwrap(), Change::Added);
        assert_eq!(w.add("demo", "acme").unwrap(), Change::Added);
        assert_eq!(w.add("demo", "acme").unwrap(), Change::Unchanged);
        w.save(home.path()).unwrap();
        let text = std::fs::read_to_string(home.path().join(FILE)).unwrap();
        assert!(
            text.ends_with(
                "workspaces:\n- id: demo\n  tenant: acme\n- id: team-b\n  tenant: globex\n"
            ),
            "{text}"
        );
        let back = Workspaces::load(home.path()).unwrap();
        assert_eq!(back, w);
        let ids: Vec<&str> = back.list().iter().map(|w| w.id.as_str()).collect();
        assert_eq!(ids, ["demo", "team-b"]);

        let mut w = back;
        assert_eq!(w.remove("demo").unwrap().tenant.as_str(), "acme");
        let e = w.remove("demo").unwrap_err();
        assert_eq!(e.hint.as_deref(), Some("recorded workspaces: team-b"));
        w.remove("team-b").unwrap();
        w.save(home.path()).unwrap();
        assert_eq!(
            Workspaces::load(home.path()).unwrap(),
            Workspaces::default()
        );
    }

    #[test]
    fn the_file_is_a_gitops_workspaces_file() {
        let home = tempfile::tempdir().unwrap();
        let mut w = Workspaces::default();
        w.add("demo", "acme").unwrap();
        w.save(home.path()).unwrap();
        let entries = crate::gitops::model::read_workspaces_file(&path(home.path())).unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(
            (entries[0].id.as_str(), entries[0].tenant.as_str()),
            ("demo", "acme")
        );
    }

    #[test]
    fn ids_tenants_and_the_file_are_validated() {
        let mut w = Workspaces::default();
        assert!(w.add("Demo", "acme").is_err());
        assert!(w.add("demo", "global").is_err());
        assert!(w.add(&"a".repeat(53), "acme").is_err());
        w.add("demo", "acme").unwrap();
        let e = w.add("demo", "globex").unwrap_err();
        assert_eq!(e.kind, Kind::BadInput);
        assert_eq!(
            e.message,
            "workspace demo belongs to tenant acme, not globex"
        );

        let p = Path::new("/h/config/cluster/workspaces.yaml");
        for (text, says) in [
            (
                "workspaces:\n- {id: a, tenant: t}\n- {id: a, tenant: u}\n",
                "workspace a is listed twice",
            ),
            (
                "workspaces:\n- {id: A, tenant: t}\n",
                "is not a DNS-1123 label in /h/config",
            ),
            (
                "workspaces:\n- {id: a, tenant: t, extra: 1}\n",
                "is not valid",
            ),
            (
                "base: &b {id: a, tenant: t}\nworkspaces: [*b]\n",
                "uses a YAML anchor",
            ),
        ] {
            let e = Workspaces::parse(text, p).unwrap_err();
            assert!(e.message.contains(says), "{text:?}: {}", e.message);
        }
        assert_eq!(
            Workspaces::parse("# nothing yet\n", p).unwrap(),
            Workspaces::default()
        );
    }

    #[test]
    fn a_link_in_place_of_the_file_is_refused() {
        let home = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(home.path().join("config/cluster")).unwrap();
        let target = home.path().join("elsewhere.yaml");
        std::fs::write(&target, "workspaces: []\n").unwrap();
        std::os::unix::fs::symlink(&target, path(home.path())).unwrap();
        assert!(Workspaces::load(home.path()).is_err());
    }
}

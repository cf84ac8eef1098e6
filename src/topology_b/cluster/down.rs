//! `cluster down`: delete the kind cluster. The workspaces' data (`data/cluster`), their record
//! and the kind config stay, so `cluster up` brings everything back; `--purge` (confirmed) also
//! removes `data/cluster`.

use super::super::kind::KindCli;
use super::context::Context;
use crate::core::error::{Error, Result};
use crate::topology_a::home::Home;
use std::path::PathBuf;

pub struct DownReport {
    pub deleted: bool,
    pub name: String,
    /// The data folder, and whether it was removed.
    pub storage: PathBuf,
    pub purged: bool,
}

pub fn down(home: &Home, purge: bool) -> Result<DownReport> {
    let ctx = Context::load(home)?;
    let kind = KindCli::find()?;
    let deleted = if kind.clusters()?.iter().any(|c| c == ctx.name()) {
        kind.delete(ctx.name(), &ctx.kubeconfig())?;
        true
    } else {
        false
    };
    let storage = ctx.storage();
    let mut purged = false;
    if purge {
        match std::fs::symlink_metadata(&storage) {
            Ok(m) if m.is_dir() => {
                // remove_dir_all removes a link found inside, never what it points to.
                std::fs::remove_dir_all(&storage).map_err(|e| {
                    Error::not_ready(format!("cannot remove {}: {e}", storage.display()))
                        .hint("volumes written by containers may belong to root: `sudo rm -rf` it yourself")
                })?;
                purged = true;
            }
            Ok(_) => {
                return Err(crate::core::files::refuse_not_folder(&storage));
            }
            Err(_) => {}
        }
    }
    Ok(DownReport {
        deleted,
        name: ctx.name().to_string(),
        storage,
        purged,
    })
}

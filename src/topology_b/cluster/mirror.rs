//! `cluster mirror --out DIR`: a mirror folder (the layout `APPGEAR_ADDONS_MIRROR` reads) of
//! every pinned add-on, from the configured mirror (folder or http(s)), else the cache, else
//! upstream (then cached), for a laptop that will be offline. Each add-on passes the same checks
//! as at install before it is written: pinned checksums, a chart repository's digest, and the
//! pinned images of rendered manifests. A chart package is written as it is and rendered at
//! install.

use super::super::addons::Addon;
use super::super::fetch::client::Client;
use super::super::mirror::Found;
use super::super::supply::Origin;
use super::context::Context;
use super::render::supply_one;
use crate::core::error::{Error, Kind, Result};
use crate::core::files;
use std::path::Path;

/// The add-ons written, as `name version (from where)`.
pub fn write(ctx: &Context, out: &Path) -> Result<Vec<String>> {
    write_with(ctx, out, &Client::new())
}

/// As `write`, with `client` for the network and an http mirror. An add-on that cannot be had
/// (not in the mirror, upstream unreachable) does not stop the others: every one that can is
/// written, then the error lists those that could not. A file that fails its checks stops
/// everything, since the source itself is then not to be trusted.
pub fn write_with(ctx: &Context, out: &Path, client: &Client) -> Result<Vec<String>> {
    let mut written = Vec::new();
    let mut missing: Vec<(Addon, Error)> = Vec::new();
    for addon in Addon::all() {
        let supplied = match supply_one(ctx, addon, client) {
            Ok(s) => s,
            Err(e) if e.kind == Kind::NotReady => {
                missing.push((addon, e));
                continue;
            }
            Err(e) => return Err(e),
        };
        let files = match supplied.found {
            Found::Manifests(f) => f,
            Found::Package(p) => vec![p],
            Found::Absent => continue,
        };
        let dir = out.join(addon.name());
        files::create_dir_all(&dir).map_err(|e| files::not_writable(&dir, e))?;
        for f in files {
            let path = dir.join(&f.name);
            files::write_atomic(&path, &f.bytes, Some(0o644))
                .map_err(|e| files::not_writable(&path, e))?;
        }
        let from = match supplied.origin {
            Origin::Mirror(m) => m,
            Origin::Cache(_) => "the cache".to_string(),
            Origin::Upstream => "upstream".to_string(),
        };
        written.push(format!("{} (from {from})", addon.describe()));
    }
    let Some((_, first)) = missing.first() else {
        return Ok(written);
    };
    let names: Vec<String> = missing.iter().map(|(a, _)| a.describe()).collect();
    let hint = first.hint.clone().unwrap_or_default();
    Err(Error::not_ready(format!(
        "{}: wrote {} add-ons, but could not get {}",
        out.display(),
        written.len(),
        names.join(", ")
    ))
    .hint(hint)
    .detail(
        missing
            .into_iter()
            .map(|(_, e)| e.message)
            .chain(written.iter().map(|w| format!("wrote {w}")))
            .collect(),
    ))
}

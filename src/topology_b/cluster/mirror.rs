//! `cluster mirror --out DIR`: a mirror folder (the layout `APPGEAR_ADDONS_MIRROR` reads) of
//! every pinned add-on, from the configured mirror or the cache, for a laptop that will be
//! offline. Each add-on passes the same checks as at install (checksums, pinned images) before
//! it is written.

use super::super::addons::{Addon, ADDONS};
use super::super::cache::Cache;
use super::super::mirror::{FileSource, Folder, Found, Location};
use super::super::supply::{self, Offline};
use super::context::Context;
use crate::core::error::{Error, Result};
use std::path::Path;

/// The add-ons written, as `name version`.
pub fn write(ctx: &Context, out: &Path) -> Result<Vec<String>> {
    let folder;
    let mirror: Option<&dyn FileSource> = match &ctx.settings.addons_mirror {
        Some(Location::Folder(p)) => {
            folder = Folder(p.clone());
            Some(&folder)
        }
        _ => None,
    };
    let cache = Cache::in_home(&ctx.root);
    let mut written = Vec::new();
    for pin in ADDONS {
        let addon = Addon(pin);
        let supplied = supply::supply(addon, mirror, &cache, &Offline)?;
        let files = match supplied.found {
            Found::Manifests(f) => f,
            Found::Package(p) => vec![p],
            Found::Absent => continue,
        };
        let dir = out.join(addon.name());
        for f in files {
            let path = dir.join(&f.name);
            crate::core::files::create_dir_all(&dir)
                .map_err(|e| crate::core::files::not_writable(&dir, e))?;
            crate::core::files::write_atomic(&path, &f.bytes, Some(0o644))
                .map_err(|e| crate::core::files::not_writable(&path, e))?;
        }
        written.push(format!("{} {}", addon.name(), pin.version));
    }
    if written.is_empty() {
        return Err(
            Error::not_ready("no add-on was found in the mirror or the cache")
                .hint("set APPGEAR_ADDONS_MIRROR to a mirror folder"),
        );
    }
    Ok(written)
}

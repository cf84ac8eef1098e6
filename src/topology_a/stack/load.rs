//! The home's stack as Docker should run it: settings → compose file → `Project`.

use super::project::{self, Mount, Project, Service};
use crate::core::error::{Error, Result};
use crate::topology_a::home::Home;
use crate::topology_a::settings::Settings;
use std::path::{Path, PathBuf};

/// Load and validate `.env`, then read the home's compose file with `${VAR}` resolved from the
/// process environment first and `.env` second, as Docker Compose does.
pub fn load(home: &Home) -> Result<(Settings, Project)> {
    let settings = home.settings()?;
    let path = home.compose_path();
    let text = std::fs::read_to_string(&path).map_err(|e| {
        Error::bad_input(format!("cannot read {}: {e}", path.display()))
            .hint("run `appgear init` to write it")
    })?;
    let values = settings.values().clone();
    let lookup = move |k: &str| std::env::var(k).ok().or_else(|| values.get(k).cloned());
    let project = project::load(&text, &path, &lookup, settings.project()).map_err(|e| {
        Error::bad_input(format!("{}: {e}", path.display()))
            .hint("fix the file, or delete it and run `appgear init` to get appgear's version back")
    })?;
    let mut project = project;
    for svc in &mut project.services {
        svc.mounted_config = read_only_digest(svc);
    }
    Ok((settings, project))
}

/// A digest of every file under the service's read-only bind mounts. Traefik reads its static
/// configuration and certificates only at start, so a change in them must recreate it.
fn read_only_digest(svc: &Service) -> String {
    let mut hasher = crate::core::digest::Sha256Hex::default();
    for m in &svc.mounts {
        if let Mount::Bind {
            source,
            read_only: true,
            ..
        } = m
        {
            let mut files = Vec::new();
            collect_files(source, &mut files, 0);
            files.sort();
            for f in files {
                hasher.update(f.to_string_lossy().as_bytes());
                hasher.update(&std::fs::read(&f).unwrap_or_default());
            }
        }
    }
    hasher.finish()
}

/// Files below `path` (or `path` itself), a few levels deep: configuration folders are shallow.
fn collect_files(path: &Path, out: &mut Vec<PathBuf>, depth: usize) {
    if path.is_file() {
        out.push(path.to_path_buf());
    } else if depth < 4 {
        for entry in std::fs::read_dir(path).into_iter().flatten().flatten() {
            collect_files(&entry.path(), out, depth + 1);
        }
    }
}

//! The home's stack as Docker should run it: settings → compose file → `Project`.

use crate::core::error::{Error, Result};
use crate::core::files;
use crate::topology_a::home::{Home, COMPOSE_FILE};
use crate::topology_a::settings::Settings;
use crate::topology_a::stack::project::{self, Mount, Project, Service};
use std::path::{Path, PathBuf};

/// Read the home's compose file with `${VAR}` resolved from the shell first and `.env` second,
/// as Docker Compose does, from settings already read and checked.
pub fn load(home: &Home, settings: &Settings) -> Result<Project> {
    mountable(home.root())?;
    let path = home.compose_path();
    let text = home.dir()?.read_text(COMPOSE_FILE).map_err(|e| {
        files::refusal(&e).unwrap_or_else(|| {
            Error::bad_input(format!("cannot read {}: {e}", path.display()))
                .hint("run `appgear init` to write it")
        })
    })?;
    let lookup = |k: &str| settings.lookup(k).map(str::to_string);
    let mut project = project::load(&text, &path, &lookup, &settings.project).map_err(|e| {
        Error::bad_input(format!("{}: {e}", path.display()))
            .hint("fix the file, or delete it and run `appgear init` to get appgear's version back")
    })?;
    for svc in &mut project.services {
        for m in &svc.mounts {
            if let Mount::Bind { source, .. } = m {
                mountable(source)?;
            }
        }
        svc.mounted_config = read_only_digest(svc);
    }
    Ok(project)
}

/// Docker names a bind mount `SOURCE:TARGET[:MODE]`, so a ':' in a host path cannot be mounted;
/// Docker would find out only after the network and volumes were made. Refused up front.
pub fn mountable(path: &Path) -> Result<()> {
    if !path.as_os_str().to_string_lossy().contains(':') {
        return Ok(());
    }
    Err(Error::bad_input(format!(
        "{} contains ':', which Docker cannot mount (':' separates a mount's source from its target)",
        path.display()
    ))
    .hint("use a home without ':' in its path, for example `--home ~/appgear` (move the folder there first to keep it)"))
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
                // Never blocks on a FIFO swapped in since the walk, never follows a link.
                hasher.update(&files::read_nofollow(&f).unwrap_or_default());
            }
        }
    }
    hasher.finish()
}

/// Regular files below `path` (or `path` itself), a few levels deep: configuration folders are
/// shallow. Links and special files are skipped, never followed or opened (a FIFO would block).
fn collect_files(path: &Path, out: &mut Vec<PathBuf>, depth: usize) {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return;
    };
    if meta.is_file() {
        out.push(path.to_path_buf());
    } else if meta.is_dir() && depth < 4 {
        for entry in std::fs::read_dir(path).into_iter().flatten().flatten() {
            collect_files(&entry.path(), out, depth + 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_colon_in_a_host_path_is_refused_with_the_path() {
        assert!(mountable(Path::new("/opt/appgear")).is_ok());
        let e = mountable(Path::new("/home/me/my:home")).unwrap_err();
        assert_eq!(e.kind, crate::core::error::Kind::BadInput);
        assert!(
            e.message.starts_with("/home/me/my:home contains ':'"),
            "{}",
            e.message
        );
    }
}

//! Paths → parsed YAML documents. Directories are walked for `*.yaml` / `*.yml`, hidden folders
//! (such as `.git`) skipped, links that lead out of a given folder not followed; files are read
//! in a stable order so findings come out the same way every time, each within size bounds.

use crate::core::error::{Error, Result};
use crate::core::yaml::{self, Budget, Links, ReadError, YamlError};
use serde_norway::Value;
use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// One YAML document of one file.
#[derive(Debug, Clone)]
pub struct Doc {
    /// The file as the user would name it (their path joined with the walked part).
    pub file: String,
    /// The file's absolute path, for layout checks.
    pub abs: PathBuf,
    /// Position of the document in its file, from 0.
    pub index: usize,
    pub value: Value,
}

fn is_yaml(p: &Path) -> bool {
    matches!(
        p.extension().and_then(|e| e.to_str()),
        Some("yaml") | Some("yml")
    )
}

/// The YAML files to check, and the links a walk did not follow.
#[derive(Debug, Default)]
pub struct Found {
    pub files: Vec<PathBuf>,
    pub skipped: Vec<Skipped>,
}

/// A link inside a given folder that leads out of it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Skipped {
    pub link: PathBuf,
    pub target: PathBuf,
    pub root: PathBuf,
}

/// A walk of the folders given on the command line. It never leaves a given folder (a link to
/// /usr would otherwise walk all of /usr) and enters each folder and reads each file once,
/// known by device and inode, so a link back up (`current -> .`) is no cycle and a file
/// reached by two paths gives its findings once.
struct Walk {
    seen: HashSet<(u64, u64)>,
    found: Found,
}

impl Walk {
    /// The first visit of the object at `meta`?
    fn first_visit(&mut self, meta: &std::fs::Metadata) -> bool {
        self.seen.insert((meta.dev(), meta.ino()))
    }

    fn dir(&mut self, root: &Path, dir: &Path) -> Result<()> {
        let entries = std::fs::read_dir(dir).map_err(|e| {
            Error::bad_input(format!("cannot read folder {}: {e}", dir.display()))
                .hint("give appgear verify a readable folder or YAML file")
        })?;
        let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for p in paths {
            let hidden = p
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('.'));
            if hidden {
                continue;
            }
            let Ok(link_meta) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            if link_meta.file_type().is_symlink() {
                match std::fs::canonicalize(&p) {
                    // A dangling link names nothing to check.
                    Err(_) => continue,
                    Ok(target) if !target.starts_with(root) => {
                        self.found.skipped.push(Skipped {
                            link: p,
                            target,
                            root: root.to_path_buf(),
                        });
                        continue;
                    }
                    Ok(_) => {}
                }
            }
            let Ok(meta) = std::fs::metadata(&p) else {
                continue;
            };
            if !(meta.is_dir() || (meta.is_file() && is_yaml(&p))) || !self.first_visit(&meta) {
                continue;
            }
            if meta.is_dir() {
                self.dir(root, &p)?;
            } else {
                self.found.files.push(p);
            }
        }
        Ok(())
    }
}

/// Every YAML file named by `paths` (files as given, folders walked without leaving them).
pub fn files(paths: &[PathBuf]) -> Result<Found> {
    let mut walk = Walk {
        seen: HashSet::new(),
        found: Found::default(),
    };
    for p in paths {
        let meta = std::fs::metadata(p).ok();
        match meta {
            Some(m) if m.is_dir() => {
                let root = std::fs::canonicalize(p).map_err(|e| {
                    Error::bad_input(format!("cannot read folder {}: {e}", p.display()))
                        .hint("give appgear verify a readable folder or YAML file")
                })?;
                let before = walk.found.files.len();
                if walk.first_visit(&m) {
                    walk.dir(&root, p)?;
                }
                if walk.found.files.len() == before {
                    return Err(
                        Error::bad_input(format!("{} holds no YAML files", p.display()))
                            .hint("point appgear verify at a rendered tree (appgear gitops render --out DIR) or at *.yaml files"),
                    );
                }
            }
            Some(m) if m.is_file() => {
                if walk.first_visit(&m) {
                    walk.found.files.push(p.clone());
                }
            }
            _ => {
                return Err(Error::bad_input(format!("{} does not exist", p.display()))
                    .hint("give appgear verify an existing folder or YAML file"))
            }
        }
    }
    Ok(walk.found)
}

/// What `verify` reads at most: no Kubernetes object comes near 16 MiB (etcd stores at most
/// 1.5 MiB), and 2 million nodes / 64 MiB of scalars once aliases are expanded bound what the
/// documents of one run hold in memory (a few hundred MB), whatever the YAML's aliases repeat.
const FILE_MAX: u64 = 16 << 20;
const EXPANDED: Budget = Budget {
    nodes: 2_000_000,
    bytes: 64 << 20,
};

/// Parse every document of every file; a file that does not parse, or that is too large with
/// its aliases expanded, stops the check.
pub fn docs(files: &[PathBuf]) -> Result<Vec<Doc>> {
    let mut budget = EXPANDED;
    let mut out = Vec::new();
    for f in files {
        // Links here were given by name or checked by the walk to stay inside their tree.
        let read = yaml::read_text(f, FILE_MAX, Links::Follow).map_err(|e| match e {
            ReadError::TooBig(_) => {
                Error::bad_input(format!("{} is larger than 16 MiB", f.display()))
                    .hint("appgear verify reads YAML files of at most 16 MiB; split the file")
            }
            e => Error::bad_input(format!("cannot read {}: {e}", f.display()))
                .hint("give appgear verify readable UTF-8 YAML files"),
        })?;
        let Some(text) = read else {
            return Err(Error::bad_input(format!(
                "cannot read {}: it no longer exists",
                f.display()
            ))
            .hint("give appgear verify readable UTF-8 YAML files"));
        };
        let abs = std::fs::canonicalize(f).unwrap_or_else(|_| f.clone());
        let values = yaml::documents(&text, &mut budget).map_err(|e| match e {
            YamlError::Syntax(m) => {
                Error::bad_input(format!("{} is not valid YAML: {m}", f.display())).hint(
                    "fix the file's syntax (every *.yaml / *.yml file given or found is read)",
                )
            }
            YamlError::TooLarge => Error::bad_input(format!(
                "{} is too large once its YAML aliases are expanded (with the files before it: more than 2 million nodes or 64 MiB)",
                f.display()
            ))
            .hint("write the repeated parts out, or check fewer files at once; an alias that repeats a large node is how a small file stands for gigabytes"),
        })?;
        for (index, value) in values.into_iter().enumerate() {
            out.push(Doc {
                file: f.display().to_string(),
                abs: abs.clone(),
                index,
                value,
            });
        }
    }
    Ok(out)
}

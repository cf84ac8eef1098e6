//! Paths → parsed YAML documents. Directories are walked for `*.yaml` / `*.yml`, hidden folders
//! (such as `.git`) skipped; files are read in a stable order so findings come out the same way
//! every time.

use crate::core::error::{Error, Result};
use crate::gitops::bounded_yaml::{self, Budget, ReadError, YamlError};
use serde_norway::Value;
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

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
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
        if p.is_dir() {
            walk(&p, out)?;
        } else if p.is_file() && is_yaml(&p) {
            out.push(p);
        }
    }
    Ok(())
}

/// Every YAML file named by `paths` (files as given, folders walked).
pub fn files(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let before = out.len();
            walk(p, &mut out)?;
            if out.len() == before {
                return Err(
                    Error::bad_input(format!("{} holds no YAML files", p.display()))
                        .hint("point appgear verify at a rendered tree (appgear gitops render --out DIR) or at *.yaml files"),
                );
            }
        } else if p.is_file() {
            out.push(p.clone());
        } else {
            return Err(Error::bad_input(format!("{} does not exist", p.display()))
                .hint("give appgear verify an existing folder or YAML file"));
        }
    }
    Ok(out)
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
        let text = bounded_yaml::read_text_at_most(f, FILE_MAX).map_err(|e| match e {
            ReadError::TooBig => Error::bad_input(format!("{} is larger than 16 MiB", f.display()))
                .hint("appgear verify reads YAML files of at most 16 MiB; split the file"),
            e => Error::bad_input(format!("cannot read {}: {e}", f.display()))
                .hint("give appgear verify readable UTF-8 YAML files"),
        })?;
        let abs = std::fs::canonicalize(f).unwrap_or_else(|_| f.clone());
        let values = bounded_yaml::documents(&text, &mut budget).map_err(|e| match e {
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

//! Rendered files → disk. First a plan (what to create, update, keep or remove), then its
//! application. A file that still carries appgear's marker is appgear's to rewrite or remove; a file
//! without it is the user's and is never touched.

use super::render::{RenderedFile, MARKER_PREFIX};
use crate::core::error::{Error, Kind, Result};
use std::collections::BTreeSet;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Create,
    Update,
    Unchanged,
    /// The file exists without appgear's marker: it is the user's.
    KeepUsers,
    /// Written by an earlier render, no longer part of the tree.
    RemoveStale,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Step {
    pub path: String,
    pub action: Action,
}

#[derive(Debug)]
pub struct Plan {
    pub root: PathBuf,
    pub steps: Vec<Step>,
    files: Vec<RenderedFile>,
}

/// The folders a render owns inside the tree: `apps/factory` and the folder of the cluster it
/// renders for. Other folders (README, .git, other suites, other clusters' Applications) are never
/// touched, so one repository can hold the Applications of several clusters.
fn owned_dirs(files: &[RenderedFile]) -> BTreeSet<String> {
    let mut dirs = BTreeSet::from(["apps/factory".to_string()]);
    for f in files {
        let parts: Vec<&str> = f.path.splitn(3, '/').collect();
        if let ["clusters", cluster, _] = parts.as_slice() {
            dirs.insert(format!("clusters/{cluster}"));
        }
    }
    dirs
}

fn has_marker(path: &Path) -> bool {
    std::fs::read_to_string(path)
        .map(|t| t.starts_with(MARKER_PREFIX))
        .unwrap_or(false)
}

fn not_writable(root: &Path, e: std::io::Error) -> Error {
    Error::new(
        Kind::NotReady,
        format!("output folder {} is not writable: {e}", root.display()),
    )
    .hint("choose a folder you can write to (--out), or fix its permissions")
    .cause(e)
}

/// Every regular file under `dir`, as paths relative to `root` with '/' separators.
fn files_under(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(not_writable(root, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| not_writable(root, e))?;
        let path = entry.path();
        let ft = entry.file_type().map_err(|e| not_writable(root, e))?;
        if ft.is_dir() {
            files_under(root, &path, out)?;
        } else if ft.is_file() {
            if let Ok(rel) = path.strip_prefix(root) {
                let rel: Vec<String> = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                out.push(rel.join("/"));
            }
        }
    }
    Ok(())
}

/// Decide what writing `files` into `root` means, without changing anything.
pub fn plan(root: &Path, files: Vec<RenderedFile>, force: bool) -> Result<Plan> {
    match std::fs::metadata(root) {
        Ok(m) if !m.is_dir() => {
            return Err(Error::bad_input(format!(
                "output path {} is a file, not a folder",
                root.display()
            ))
            .hint("give --out a folder (it is created if missing)"));
        }
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(not_writable(root, e)),
    }

    let mut earlier = Vec::new();
    for d in owned_dirs(&files) {
        files_under(root, &root.join(d), &mut earlier)?;
    }
    let earlier_marked: BTreeSet<String> = earlier
        .into_iter()
        .filter(|p| has_marker(&root.join(p)))
        .collect();

    let non_empty = match std::fs::read_dir(root) {
        Ok(mut it) => it.next().is_some(),
        Err(e) if e.kind() == ErrorKind::NotFound => false,
        Err(e) => return Err(not_writable(root, e)),
    };
    // Another cluster's render in the same repository also makes it an earlier render.
    let mut any_render = Vec::new();
    files_under(root, &root.join("clusters"), &mut any_render)?;
    let earlier_render =
        !earlier_marked.is_empty() || any_render.iter().any(|p| has_marker(&root.join(p)));
    if non_empty && !earlier_render && !force {
        return Err(Error::bad_input(format!(
            "output folder {} is not empty and holds no earlier appgear render",
            root.display()
        ))
        .hint("choose an empty or new folder, or pass --force to render into it (files without appgear's marker are never overwritten)"));
    }

    let mut steps = Vec::new();
    let wanted: BTreeSet<&str> = files.iter().map(|f| f.path.as_str()).collect();
    for f in &files {
        let path = root.join(&f.path);
        let action = match std::fs::read_to_string(&path) {
            Ok(existing) if existing == f.text => Action::Unchanged,
            Ok(existing) if existing.starts_with(MARKER_PREFIX) => Action::Update,
            Ok(_) => Action::KeepUsers,
            Err(e) if e.kind() == ErrorKind::NotFound => Action::Create,
            // Present but unreadable (not UTF-8, no permission): not ours to overwrite.
            Err(_) if path.exists() => Action::KeepUsers,
            Err(e) => return Err(not_writable(root, e)),
        };
        steps.push(Step {
            path: f.path.clone(),
            action,
        });
    }
    for stale in earlier_marked
        .iter()
        .filter(|p| !wanted.contains(p.as_str()))
    {
        steps.push(Step {
            path: stale.clone(),
            action: Action::RemoveStale,
        });
    }
    Ok(Plan {
        root: root.to_path_buf(),
        steps,
        files,
    })
}

/// Carry out a plan. Files are written through a temporary name and renamed, so an interrupted
/// render never leaves a half-written manifest.
pub fn apply(plan: &Plan) -> Result<()> {
    let root = &plan.root;
    std::fs::create_dir_all(root).map_err(|e| not_writable(root, e))?;
    for (step, file) in plan.steps.iter().zip(plan.files.iter()) {
        if !matches!(step.action, Action::Create | Action::Update) {
            continue;
        }
        let path = root.join(&file.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| not_writable(root, e))?;
        }
        crate::core::files::write_atomic(&path, file.text.as_bytes(), None)
            .map_err(|e| not_writable(root, e))?;
    }
    for step in plan
        .steps
        .iter()
        .filter(|s| s.action == Action::RemoveStale)
    {
        let path = root.join(&step.path);
        std::fs::remove_file(&path).map_err(|e| not_writable(root, e))?;
        // Drop folders the removal emptied (a workspace that left the suite); stop at the first
        // folder that still holds something.
        let mut dir = path.parent();
        while let Some(d) = dir {
            if d == root.as_path() || std::fs::remove_dir(d).is_err() {
                break;
            }
            dir = d.parent();
        }
    }
    Ok(())
}

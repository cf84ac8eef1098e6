//! Rendered files → disk, under the one owned-file policy of `core::owned_files`: a marked file
//! the user has not edited is rewritten (or removed once no longer rendered), an edited one is
//! kept, one whose marker was removed is the user's. What is gitops' own: which folders a render
//! owns, and the refusal to render into a foreign folder.

use super::render::RenderedFile;
use crate::core::error::{Error, Kind, Result};
use crate::core::owned_files::{self, has_marker, Ledger, OwnedFile, Plan};
use std::collections::BTreeSet;
use std::io::ErrorKind;
use std::path::Path;

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

fn marked(path: &Path) -> bool {
    crate::core::files::read_text_nofollow(path)
        .map(|t| has_marker(&t))
        .unwrap_or(false)
}

fn not_writable(root: &Path, e: std::io::Error) -> Error {
    if let Some(refused) = crate::core::files::refusal(&e) {
        return refused;
    }
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
        .filter(|p| marked(&root.join(p)))
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
        !earlier_marked.is_empty() || any_render.iter().any(|p| marked(&root.join(p)));
    if non_empty && !earlier_render && !force {
        return Err(Error::bad_input(format!(
            "output folder {} is not empty and holds no earlier appgear render",
            root.display()
        ))
        .hint("choose an empty or new folder, or pass --force to render into it (files without appgear's marker are never overwritten)"));
    }

    let wanted = files
        .into_iter()
        .map(|f| OwnedFile {
            path: f.path,
            text: f.text,
        })
        .collect();
    let earlier: Vec<String> = earlier_marked.into_iter().collect();
    owned_files::plan(root, wanted, &earlier, &Ledger::load(root))
}

/// Carry out a plan; the tree's ledger records what was written.
pub fn apply(plan: &Plan) -> Result<()> {
    let mut ledger = Ledger::load(&plan.root);
    owned_files::apply(plan, &mut ledger)
}

//! Finding the artifacts: list what the recipe actually left in its output directory and keep
//! what matches the target's globs (never predict file names: tauri-action's history). Links
//! are not followed, so an artifact is always a file inside the output directory.

use crate::builder::glob::{select, Pattern};
use crate::core::digest::Sha256Hex;
use std::io::Read;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The path under the output directory.
    pub name: String,
    pub path: PathBuf,
    pub size: u64,
    pub sha256: String,
}

fn walk(dir: &Path, rel: &str, out: &mut Vec<String>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            continue; // a name that is not UTF-8 cannot be an object key
        };
        let path = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        let ft = entry.file_type()?; // does not follow links
        if ft.is_dir() {
            walk(&entry.path(), &path, out)?;
        } else if ft.is_file() {
            out.push(path);
        }
    }
    Ok(())
}

fn hash_file(path: &Path) -> std::io::Result<(u64, String)> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256Hex::default();
    let mut buf = vec![0u8; 1 << 16];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok((size, h.finish()));
        }
        size += n as u64;
        h.update(&buf[..n]);
    }
}

/// The files under `out_dir` that match `patterns`, sorted, with size and SHA-256. A missing
/// output directory is no artifacts, not an error.
pub fn collect(out_dir: &Path, patterns: &[Pattern]) -> std::io::Result<Vec<Found>> {
    let mut files = Vec::new();
    match walk(out_dir, "", &mut files) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    }
    let mut found = Vec::new();
    for name in select(patterns, files.iter().map(String::as_str)) {
        let path = out_dir.join(&name);
        let (size, sha256) = hash_file(&path)?;
        found.push(Found {
            name,
            path,
            size,
            sha256,
        });
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::digest::sha256_hex;

    #[test]
    fn lists_matches_hashes_and_ignores_links() {
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("out");
        std::fs::create_dir_all(out.join("deb")).unwrap();
        std::fs::write(out.join("deb/app.deb"), b"deb").unwrap();
        std::fs::write(out.join("deb/notes.txt"), b"x").unwrap();
        std::fs::write(d.path().join("secret"), b"s").unwrap();
        std::os::unix::fs::symlink(d.path().join("secret"), out.join("deb/link.deb")).unwrap();
        let found = collect(&out, &[Pattern::parse("deb/*.deb").unwrap()]).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!((found[0].name.as_str(), found[0].size), ("deb/app.deb", 3));
        assert_eq!(found[0].sha256, sha256_hex(b"deb"));
        assert!(
            collect(&d.path().join("none"), &[Pattern::parse("**").unwrap()])
                .unwrap()
                .is_empty()
        );
    }
}

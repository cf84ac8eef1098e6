//! Unpacking the outputs a recipe left in its container (the tar `download_from_container`
//! gives) into the attempt's folder, where the glob collection reads them as it reads the
//! `process` executor's. The tar comes from a container the recipe controlled, so it is read
//! as hostile: only plain files and folders are written, each strictly below the folder (no
//! absolute path, no `..`), links are skipped and never followed, and the whole is capped.

use std::io::Read;
use std::path::{Component, Path, PathBuf};

/// How much of a recipe's outputs the worker takes at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    /// File contents, summed.
    pub max_bytes: u64,
    /// Tar entries of any kind.
    pub max_entries: usize,
}

impl Default for Caps {
    fn default() -> Self {
        Caps {
            // Well above a Tauri bundle or an Android APK set, well below a full disk.
            max_bytes: 8 << 30,
            max_entries: 100_000,
        }
    }
}

/// What was unpacked, and what was left out and why (for the build log).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Unpacked {
    pub files: usize,
    pub bytes: u64,
    pub skipped: Vec<String>,
}

/// The path below the output folder: Docker names every entry after the folder it archived
/// (`out/dist/app.bin` for `/out`), so the first component goes. `None` for anything that is
/// not a plain relative path.
fn below_root(path: &Path) -> Option<PathBuf> {
    let mut parts = path.components();
    match parts.next() {
        Some(Component::Normal(_)) => {}
        _ => return None,
    }
    let mut rel = PathBuf::new();
    for c in parts {
        match c {
            Component::Normal(p) => rel.push(p),
            Component::CurDir => {}
            _ => return None,
        }
    }
    Some(rel)
}

/// Unpack `tar` into `dest` (which must exist and hold no links: the worker makes it fresh).
/// An entry that is not a plain file or folder, or whose path leaves `dest`, is skipped and
/// named in `skipped`; going over `caps` is an error, and the caller keeps none of it.
pub fn unpack_outputs(tar: impl Read, dest: &Path, caps: Caps) -> Result<Unpacked, String> {
    let mut archive = tar::Archive::new(tar);
    let mut done = Unpacked::default();
    let entries = archive
        .entries()
        .map_err(|e| format!("the outputs are not a tar: {e}"))?;
    for (n, entry) in entries.enumerate() {
        if n >= caps.max_entries {
            return Err(format!(
                "the outputs hold more than {} entries",
                caps.max_entries
            ));
        }
        let mut entry = entry.map_err(|e| format!("the outputs are not a tar: {e}"))?;
        let kind = entry.header().entry_type();
        let raw = entry
            .path()
            .map(|p| p.into_owned())
            .map_err(|e| format!("an output's name cannot be read: {e}"))?;
        let shown = raw.display().to_string();
        let Some(rel) = below_root(&raw) else {
            done.skipped
                .push(format!("{shown}: a path outside the output folder"));
            continue;
        };
        if rel.as_os_str().is_empty() {
            continue; // the output folder itself
        }
        let to = dest.join(&rel);
        if kind.is_dir() {
            std::fs::create_dir_all(&to).map_err(|e| format!("{shown}: {e}"))?;
        } else if kind.is_file() {
            let size = entry.header().size().unwrap_or(u64::MAX);
            if done.bytes.saturating_add(size) > caps.max_bytes {
                return Err(format!(
                    "the outputs are larger than {} bytes",
                    caps.max_bytes
                ));
            }
            if let Some(parent) = to.parent() {
                std::fs::create_dir_all(parent).map_err(|e| format!("{shown}: {e}"))?;
            }
            let mut file = std::fs::File::create(&to).map_err(|e| format!("{shown}: {e}"))?;
            // The header's size is the recipe's word: copy no more than what is left of the cap.
            let left = caps.max_bytes - done.bytes;
            let copied = std::io::copy(&mut (&mut entry).take(left + 1), &mut file)
                .map_err(|e| format!("{shown}: {e}"))?;
            if copied > left {
                return Err(format!(
                    "the outputs are larger than {} bytes",
                    caps.max_bytes
                ));
            }
            done.bytes += copied;
            done.files += 1;
        } else {
            done.skipped
                .push(format!("{shown}: not a plain file or folder (a link?)"));
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tar::{EntryType, Header};

    /// A tar with entries written byte for byte, so hostile names reach the reader unchanged.
    fn hostile_tar(entries: &[(&str, EntryType, &[u8], Option<&str>)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, kind, data, link) in entries {
            let mut h = Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            // set_path refuses `..`; the raw name field does not.
            let field = &mut h.as_old_mut().name;
            field[..name.len()].copy_from_slice(name.as_bytes());
            if let Some(l) = link {
                h.set_link_name(l).unwrap();
            }
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn files_and_folders_land_below_the_folder_and_nothing_else_is_written() {
        let outside = tempfile::tempdir().unwrap();
        let dest = outside.path().join("out");
        std::fs::create_dir(&dest).unwrap();
        let tar = hostile_tar(&[
            ("out/", EntryType::Directory, b"", None),
            ("out/dist/app.bin", EntryType::Regular, b"app", None),
            ("out/../escaped.txt", EntryType::Regular, b"x", None),
            ("/etc/appgear-escaped", EntryType::Regular, b"x", None),
            ("out/passwd", EntryType::Symlink, b"", Some("/etc/passwd")),
            ("out/hard", EntryType::Link, b"", Some("/etc/passwd")),
        ]);
        let done = unpack_outputs(&tar[..], &dest, Caps::default()).unwrap();
        assert_eq!((done.files, done.bytes), (1, 3));
        assert_eq!(
            std::fs::read(dest.join("dist/app.bin")).unwrap(),
            b"app".to_vec()
        );
        assert_eq!(done.skipped.len(), 4, "{:?}", done.skipped);
        assert!(!outside.path().join("escaped.txt").exists());
        assert!(!Path::new("/etc/appgear-escaped").exists());
        assert!(std::fs::symlink_metadata(dest.join("passwd")).is_err());
        assert!(std::fs::symlink_metadata(dest.join("hard")).is_err());
    }

    #[test]
    fn outputs_over_the_caps_are_refused() {
        let dest = tempfile::tempdir().unwrap();
        let tar = hostile_tar(&[
            ("out/a", EntryType::Regular, &[7u8; 600], None),
            ("out/b", EntryType::Regular, &[7u8; 600], None),
        ]);
        let caps = Caps {
            max_bytes: 1000,
            max_entries: 10,
        };
        let e = unpack_outputs(&tar[..], dest.path(), caps).unwrap_err();
        assert!(e.contains("larger than 1000 bytes"), "{e}");
        let caps = Caps {
            max_bytes: 10_000,
            max_entries: 1,
        };
        let e = unpack_outputs(&tar[..], dest.path(), caps).unwrap_err();
        assert!(e.contains("more than 1 entries"), "{e}");
    }

    #[test]
    fn only_plain_relative_paths_pass() {
        assert_eq!(
            below_root(Path::new("out/dist/a")),
            Some(PathBuf::from("dist/a"))
        );
        assert_eq!(below_root(Path::new("out")), Some(PathBuf::new()));
        assert_eq!(below_root(Path::new("out/../a")), None);
        assert_eq!(below_root(Path::new("/out/a")), None);
        assert_eq!(below_root(Path::new("../a")), None);
    }
}

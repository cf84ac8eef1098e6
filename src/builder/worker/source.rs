//! Putting the build's source in the attempt's folder: the tar the caller uploaded under the
//! workspace's `sources/`, checked against the SHA-256 the request named before anything is
//! unpacked. Only files and folders are unpacked, each inside the folder: a link or a path
//! that leaves it makes the source invalid.

use crate::builder::queue::job::Source;
use crate::builder::store::ObjectStore;
use crate::core::digest::sha256_hex;
use std::io::Cursor;
use std::path::{Path, PathBuf};

/// Unpack a tar into `dir`.
pub fn unpack(bytes: &[u8], dir: &Path) -> Result<usize, String> {
    let mut archive = tar::Archive::new(Cursor::new(bytes));
    let mut files = 0;
    let entries = archive.entries().map_err(|e| format!("not a tar: {e}"))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| format!("not a tar: {e}"))?;
        let kind = entry.header().entry_type();
        let path = entry
            .path()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| "?".into());
        if !(kind.is_file() || kind.is_dir()) {
            return Err(format!(
                "{path}: only files and folders are unpacked, not links or devices"
            ));
        }
        match entry.unpack_in(dir) {
            Ok(true) => files += usize::from(kind.is_file()),
            Ok(false) => return Err(format!("{path} would land outside the source folder")),
            Err(e) => return Err(format!("{path}: {e}")),
        }
    }
    Ok(files)
}

/// Fetch and unpack `source` into `dir`; the SHA-256 of what was fetched, or why it cannot be
/// used (the build then ends `failed/source_invalid`).
pub async fn fetch<S: ObjectStore>(
    store: &S,
    source: &Source,
    dir: &Path,
) -> Result<String, String> {
    match source {
        Source::Git { .. } => {
            Err("git sources are not supported yet: upload a tar and name it with s3_key".into())
        }
        Source::Object { s3_key, sha256 } => {
            let (bytes, _) = store
                .get(s3_key)
                .await
                .map_err(|e| format!("cannot fetch the source {s3_key}: {e}"))?;
            let got = sha256_hex(&bytes);
            if !got.eq_ignore_ascii_case(sha256) {
                return Err(format!(
                    "the source {s3_key} has SHA-256 {got}, not {sha256}"
                ));
            }
            let dir: PathBuf = dir.to_path_buf();
            tokio::task::spawn_blocking(move || {
                std::fs::create_dir_all(&dir)
                    .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
                unpack(&bytes, &dir)
            })
            .await
            .map_err(|e| e.to_string())??;
            Ok(got)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_of(entries: &[(&str, &[u8], tar::EntryType)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, data, kind) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_size(data.len() as u64);
            h.set_mode(0o755);
            if *kind == tar::EntryType::Symlink {
                h.set_link_name("/etc/passwd").unwrap();
            }
            // set_path refuses '..'; write the raw name to test what a hostile tar can hold
            let name = path.as_bytes();
            h.as_old_mut().name[..name.len()].copy_from_slice(name);
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn unpacks_files_and_refuses_escapes_and_links() {
        let d = tempfile::tempdir().unwrap();
        let ok = tar_of(&[("a/run.sh", b"echo hi\n", tar::EntryType::Regular)]);
        assert_eq!(unpack(&ok, d.path()), Ok(1));
        assert_eq!(
            std::fs::read(d.path().join("a/run.sh")).unwrap(),
            b"echo hi\n"
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(d.path().join("a/run.sh"))
            .unwrap()
            .permissions()
            .mode();
        assert!(mode & 0o100 != 0, "executable bits are kept: {mode:o}");
        let escape = tar_of(&[("../evil", b"x", tar::EntryType::Regular)]);
        assert!(unpack(&escape, d.path()).is_err());
        assert!(!d.path().parent().unwrap().join("evil").exists());
        let link = tar_of(&[("l", b"", tar::EntryType::Symlink)]);
        assert!(unpack(&link, d.path()).unwrap_err().contains("links"));
        assert!(unpack(b"not a tar at all, clearly", d.path()).is_err());
    }
}

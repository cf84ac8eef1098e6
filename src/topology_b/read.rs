//! Reading add-on files from a mirror folder or the cache: never through a link, never a FIFO or
//! device, never more than a bound. A mirror is a folder someone handed the user (a USB stick, a
//! share), so it is read like untrusted input.

use crate::core::error::{Error, Kind, Result};
use std::io::Read;
use std::path::Path;

/// No add-on file comes near this (KEDA's manifest, the largest, is under 1 MiB; Airbyte's chart
/// package is 60 KiB); anything bigger is not what appgear pinned.
pub const MAX_FILE_BYTES: u64 = 32 << 20;

/// The file's bytes, or `None` when it does not exist. A link, folder or special file, a file
/// over `max` bytes, or one that cannot be read is an error naming the path.
pub fn bounded(path: &Path, max: u64) -> Result<Option<Vec<u8>>> {
    use std::os::unix::fs::OpenOptionsExt;
    let open = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path);
    let file = match open {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Err(not_regular(path)),
        Err(e) => return Err(unreadable(path, e)),
    };
    let meta = file.metadata().map_err(|e| unreadable(path, e))?;
    if !meta.is_file() {
        return Err(not_regular(path));
    }
    if meta.len() > max {
        return Err(too_large(path, max));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // take() bounds a file that grows while it is read.
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| unreadable(path, e))?;
    if bytes.len() as u64 > max {
        return Err(too_large(path, max));
    }
    Ok(Some(bytes))
}

fn not_regular(path: &Path) -> Error {
    Error::bad_input(format!(
        "{} is a link or not a regular file; appgear reads add-on files only as regular files",
        path.display()
    ))
    .hint("replace it with the file itself (cp -L), or remove it")
}

fn too_large(path: &Path, max: u64) -> Error {
    Error::bad_input(format!(
        "{} is larger than {} MiB, more than any pinned add-on file",
        path.display(),
        max >> 20
    ))
    .hint("the folder does not hold what appgear pinned; write it again with `appgear cluster mirror --out DIR`")
}

fn unreadable(path: &Path, e: std::io::Error) -> Error {
    Error::new(
        Kind::NotReady,
        format!("cannot read {}: {e}", path.display()),
    )
    .hint("check that the folder is readable by you")
    .cause(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_regular_files_only_and_within_the_bound() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a.yaml");
        std::fs::write(&f, "kind: x\n").unwrap();
        assert_eq!(bounded(&f, 100).unwrap().unwrap(), b"kind: x\n");
        assert_eq!(bounded(&dir.path().join("none"), 100).unwrap(), None);

        let e = bounded(&f, 3).unwrap_err();
        assert_eq!(e.kind, Kind::BadInput);
        assert!(e.message.contains("larger than"), "{}", e.message);

        let link = dir.path().join("link.yaml");
        std::os::unix::fs::symlink(&f, &link).unwrap();
        let e = bounded(&link, 100).unwrap_err();
        assert!(e.message.contains("link"), "{}", e.message);

        let e = bounded(dir.path(), 100).unwrap_err();
        assert!(e.message.contains("not a regular file"), "{}", e.message);
    }
}

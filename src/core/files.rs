//! Files on disk, the careful way: writes are atomic (a temporary file next to the target,
//! flushed, then renamed over it), secrets are created private, and reads of appgear's own files
//! never follow a link (a home may belong to another user than the one running appgear).

use crate::core::error::{Error, Kind, Result};
use std::io::{Read, Write};
use std::path::Path;

/// Read a text file without following a symlink in its last component; a FIFO, device or
/// folder is refused instead of blocking or misreading (see [`is_not_regular`]).
pub fn read_text_nofollow(path: &Path) -> std::io::Result<String> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                not_regular()
            } else {
                e
            }
        })?;
    if !f.metadata()?.is_file() {
        return Err(not_regular());
    }
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes)?;
    String::from_utf8(bytes).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

const NOT_REGULAR: &str = "not a regular file";

fn not_regular() -> std::io::Error {
    std::io::Error::other(NOT_REGULAR)
}

/// True for the error [`read_text_nofollow`] gives for a link, folder, FIFO or device.
pub fn is_not_regular(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::Other && e.to_string() == NOT_REGULAR
}

/// The refusal for a link or special file where appgear expects a file of its own.
pub fn refuse_not_regular(path: &Path) -> Error {
    Error::bad_input(format!(
        "{} is a link or not a regular file; appgear does not follow or overwrite it",
        path.display()
    ))
    .hint("remove it (appgear writes its own file there), or replace it with a regular file")
}

/// `create_dir_all`, named here so every product creates folders one way.
pub fn create_dir_all(path: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(path)
}

/// Write a file atomically, readable only by its owner (it may hold a secret).
pub fn write_private(path: &Path, text: &str) -> Result<()> {
    let fail = |e: std::io::Error| {
        Error::new(
            Kind::NotReady,
            format!("cannot write {}: {e}", path.display()),
        )
        .hint("check that you own the folder and that the disk is not full")
    };
    write_atomic(path, text.as_bytes(), Some(0o600)).map_err(fail)?;
    restrict_mode(path)
}

/// Make a file readable only by its owner.
pub fn restrict_mode(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(|e| {
        Error::new(
            Kind::NotReady,
            format!("cannot set permissions of {}: {e}", path.display()),
        )
        .hint("check that you own the file")
    })
}

/// Write `bytes` to `path` atomically; `mode` (for example 0o600 for secrets) is set before any
/// byte is written, so a secret is never readable by others, not even briefly.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: Option<u32>) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".appgear-tmp");
    let tmp = path.with_file_name(name);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    if let Some(m) = mode {
        opts.mode(m);
    }
    let result = (|| {
        let mut f = opts.open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn replaces_content_and_sets_mode() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("secret.env");
        std::fs::write(&p, "old").unwrap();
        write_atomic(&p, b"new", Some(0o600)).unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "new");
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary file is left"
        );
    }
}

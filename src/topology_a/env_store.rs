//! The home's `.env` on disk: read without following a link or waiting on a FIFO, written
//! atomically and readable by its owner only (it holds the code-server password).

use crate::core::error::{Error, Result};
use crate::core::files::{self, Dir};
use crate::topology_a::env_file::EnvFile;
use crate::topology_a::home::Home;
use crate::topology_a::settings::{Settings, Shell};
use std::io::ErrorKind;
use std::path::Path;

pub const ENV_FILE: &str = ".env";

/// `.env`, or `None` when the home has none yet.
pub fn read(home: &Dir) -> Result<Option<EnvFile>> {
    let path = home.join(ENV_FILE);
    let text = match home.read_text(ENV_FILE) {
        Ok(t) => t,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(read_error(&path, e)),
    };
    EnvFile::parse(&text).map(Some).map_err(|e| {
        Error::bad_input(format!("{}: {e}", path.display()))
            .hint("each line must be KEY=VALUE or a # comment")
    })
}

/// `.env`, which must exist.
pub fn load(home: &Home) -> Result<EnvFile> {
    let missing = || {
        Error::bad_input(format!("{} does not exist", home.env_path().display())).hint(format!(
            "run `appgear init --home {}` first",
            home.root().display()
        ))
    };
    if !home.root().exists() {
        return Err(missing());
    }
    read(&home.dir()?)?.ok_or_else(missing)
}

/// The home's settings: `.env` read once and checked, with the shell's variables over it.
pub fn settings(home: &Home) -> Result<Settings> {
    Settings::resolve(&load(home)?, &home.env_path(), Shell::current())
}

/// A link, FIFO or folder is refused (exit 2), text that is not UTF-8 is bad input too; only a
/// file that cannot be read at all is the machine's problem.
fn read_error(path: &Path, e: std::io::Error) -> Error {
    if let Some(refused) = files::refusal(&e) {
        return refused;
    }
    if e.kind() == ErrorKind::InvalidData {
        return Error::bad_input(format!("{} is not UTF-8 text", path.display()))
            .hint("save it as UTF-8 (appgear and Compose read .env as UTF-8), or fix the value with the odd character");
    }
    Error::not_ready(format!("cannot read {}: {e}", path.display())).hint("check its permissions")
}

/// Write `.env` atomically with mode 0600.
pub fn save(home: &Dir, env: &EnvFile) -> Result<()> {
    home.write_atomic(ENV_FILE, env.render().as_bytes(), Some(0o600))
        .map_err(|e| files::not_writable(&home.join(ENV_FILE), e))
}

/// Make `.env` readable by its owner only (an older or hand-made one may be readable by all).
pub fn make_private(home: &Dir) -> Result<()> {
    home.set_mode(ENV_FILE, 0o600)
        .map_err(|e| files::not_writable(&home.join(ENV_FILE), e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::error::Kind;

    #[test]
    fn odd_files_are_bad_input_and_a_missing_one_is_none() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = Dir::open(tmp.path()).unwrap();
        assert!(read(&dir).unwrap().is_none());
        std::fs::write(tmp.path().join(ENV_FILE), b"A=caf\xe9\n").unwrap();
        let e = read(&dir).unwrap_err();
        assert_eq!(
            (e.kind, e.message.contains("not UTF-8")),
            (Kind::BadInput, true)
        );
        std::fs::remove_file(tmp.path().join(ENV_FILE)).unwrap();
        let fifo = std::ffi::CString::new(tmp.path().join(ENV_FILE).to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        let e = read(&dir).unwrap_err();
        assert_eq!(e.kind, Kind::BadInput, "{}", e.message);
        assert!(
            e.message.contains(".env is a link or not a regular file"),
            "{}",
            e.message
        );
    }
}

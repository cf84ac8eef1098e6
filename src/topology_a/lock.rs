//! One appgear at a time per home: an OS file lock (released by the kernel when the process dies,
//! so a crash or Ctrl-C never leaves a stale lock) plus a note of who holds it.
//!
//! The lock file is opened relative to the home's folder without following a link, created with
//! `O_EXCL` when absent, and otherwise used only when it is a regular file with no other hard link
//! that holds nothing but a note of ours: a file appgear did not make is never truncated.

use crate::core::error::{Context, Error, Kind, Result};
use crate::core::files::{self, Dir};
use std::fs::{File, TryLockError};
use std::io::{Read, Seek, Write};

pub const LOCK_FILE: &str = ".appgear.lock";
/// Every note starts so (`appgear up (pid 42)`); a note is one short line.
const NOTE_PREFIX: &str = "appgear ";
const NOTE_MAX: u64 = 4096;

/// Held for as long as the value lives.
pub struct HomeLock {
    _file: File,
}

/// True for what an earlier appgear left in its lock file: nothing, or one of its notes.
fn is_our_note(text: &str) -> bool {
    text.is_empty() || text.starts_with(NOTE_PREFIX)
}

fn read_note(file: &mut File) -> std::io::Result<String> {
    let mut bytes = Vec::new();
    file.rewind()?;
    Read::by_ref(file).take(NOTE_MAX).read_to_end(&mut bytes)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

impl HomeLock {
    pub fn acquire(home: &Dir, command: &str) -> Result<Self> {
        let path = home.join(LOCK_FILE);
        let (mut file, created) = home.open_rw(LOCK_FILE, 0o644).map_err(|e| {
            files::refusal(&e).unwrap_or_else(|| {
                Error::not_ready(format!("cannot open {}: {e}", path.display())).hint(
                    "the home folder must be writable by you: use --home DIR or fix its owner",
                )
            })
        })?;
        if !created {
            let note = read_note(&mut file)
                .or_err(Kind::NotReady, || format!("cannot read {}", path.display()))?;
            if !is_our_note(&note) {
                return Err(Error::bad_input(format!(
                    "{} is not appgear's lock file; appgear does not truncate a file it did not make",
                    path.display()
                ))
                .hint("move it out of the home; appgear makes its own"));
            }
        }
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let holder = read_note(&mut file).unwrap_or_default();
                let holder = holder.trim();
                let who = if holder.is_empty() {
                    "another appgear".to_string()
                } else {
                    holder.to_string()
                };
                return Err(Error::busy(format!("{who} is working on {}", home.path().display()))
                    .hint("wait for it to finish (or stop it); the lock is released as soon as that process ends"));
            }
            Err(TryLockError::Error(e)) => {
                return Err(Error::not_ready(format!(
                    "cannot lock {}: {e}",
                    path.display()
                )));
            }
        }
        let note = format!("{NOTE_PREFIX}{command} (pid {})\n", std::process::id());
        file.set_len(0)
            .and_then(|_| file.rewind())
            .and_then(|_| file.write_all(note.as_bytes()))
            .or_err(Kind::NotReady, || {
                format!("cannot write {}", path.display())
            })?;
        Ok(HomeLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_is_told_who_holds_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let home = Dir::open(dir.path()).unwrap();
        let first = HomeLock::acquire(&home, "up").unwrap();
        let err = HomeLock::acquire(&home, "down").err().unwrap();
        assert_eq!(err.kind, Kind::Busy);
        assert!(err.message.contains("appgear up (pid"), "{}", err.message);
        drop(first);
        assert!(HomeLock::acquire(&home, "down").is_ok());
    }

    #[test]
    fn a_file_that_is_not_a_note_of_ours_is_refused_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let home = Dir::open(dir.path()).unwrap();
        std::fs::write(dir.path().join(LOCK_FILE), "root:x:0:0\n").unwrap();
        let err = HomeLock::acquire(&home, "up").err().unwrap();
        assert_eq!(err.kind, Kind::BadInput);
        assert_eq!(
            std::fs::read_to_string(dir.path().join(LOCK_FILE)).unwrap(),
            "root:x:0:0\n"
        );
        let target = dir.path().join("shadow");
        std::fs::write(&target, "secret\n").unwrap();
        std::fs::remove_file(dir.path().join(LOCK_FILE)).unwrap();
        std::os::unix::fs::symlink(&target, dir.path().join(LOCK_FILE)).unwrap();
        let err = HomeLock::acquire(&home, "up").err().unwrap();
        assert_eq!(err.kind, Kind::BadInput);
        assert!(err.message.contains(LOCK_FILE), "{}", err.message);
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "secret\n");
    }
}

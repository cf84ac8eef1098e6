//! One appgear at a time per home: an OS file lock (released by the kernel when the process dies,
//! so a crash or Ctrl-C never leaves a stale lock) plus a note of who holds it.

use crate::core::error::{Context, Error, Kind, Result};
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::Path;

const LOCK_FILE: &str = ".appgear.lock";

/// Held for as long as the value lives.
pub struct HomeLock {
    _file: File,
}

impl HomeLock {
    pub fn acquire(home: &Path, command: &str) -> Result<Self> {
        let path = home.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| {
                Error::not_ready(format!("cannot open {}: {e}", path.display())).hint(
                    "the home folder must be writable by you: use --home DIR or fix its owner",
                )
            })?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                let who = if holder.is_empty() {
                    "another appgear".to_string()
                } else {
                    holder.to_string()
                };
                return Err(Error::busy(format!("{who} is working on {}", home.display()))
                    .hint("wait for it to finish (or stop it); the lock is released as soon as that process ends"));
            }
            Err(TryLockError::Error(e)) => {
                return Err(Error::not_ready(format!(
                    "cannot lock {}: {e}",
                    path.display()
                )));
            }
        }
        let note = format!("appgear {command} (pid {})\n", std::process::id());
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
        let first = HomeLock::acquire(dir.path(), "up").unwrap();
        let err = HomeLock::acquire(dir.path(), "down").err().unwrap();
        assert_eq!(err.kind, Kind::Busy);
        assert!(err.message.contains("appgear up (pid"), "{}", err.message);
        drop(first);
        assert!(HomeLock::acquire(dir.path(), "down").is_ok());
    }
}

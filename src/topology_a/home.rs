//! The home folder (`/opt/appgear` by default): where its files are, its open folder (through
//! which everything below it is reached without following a link), and its lock.

use crate::core::error::{Error, Result};
use crate::core::files::{self, Dir};
use crate::topology_a::lock;
use std::path::{Component, Path, PathBuf};

#[derive(Debug, Clone)]
pub struct Home {
    root: PathBuf,
}

impl Home {
    /// The root is made absolute and resolved to its real path once, here: bind mounts, labels
    /// and messages need one name for one folder (the same home through a link and through its
    /// real path must not look like two stacks). A part that does not exist yet (`init` creates
    /// it) is appended as written.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        let abs = std::path::absolute(&root).unwrap_or(root);
        Home {
            root: real_path(&abs),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn env_path(&self) -> PathBuf {
        self.root.join(".env")
    }
    pub fn compose_path(&self) -> PathBuf {
        self.root.join(COMPOSE_FILE)
    }
    pub fn cde_dir(&self) -> PathBuf {
        self.root.join(CDE_DIR)
    }
    pub fn tls_dir(&self) -> PathBuf {
        self.root.join(TLS_DIR)
    }

    /// Create the home folder itself, with a clear error when that is not allowed.
    pub fn ensure_root(&self) -> Result<()> {
        files::create_dir_all(&self.root).map_err(|e| cannot_create(&self.root, e))
    }

    /// The home's open folder: every file below it is reached through it, never through a link.
    pub fn dir(&self) -> Result<Dir> {
        Dir::open(&self.root).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::bad_input(format!(
                "the home folder {} does not exist",
                self.root.display()
            ))
            .hint(format!(
                "run `appgear init --home {}` first",
                self.root.display()
            )),
            _ => Error::not_ready(format!(
                "cannot open the home folder {}: {e}",
                self.root.display()
            ))
            .hint("check its owner and permissions"),
        })
    }

    /// A home is initialised once it has both `.env` and the compose file.
    pub fn is_initialised(&self) -> bool {
        self.env_path().exists() && self.compose_path().exists()
    }

    pub fn lock(&self, command: &str) -> Result<lock::HomeLock> {
        lock::HomeLock::acquire(&self.dir()?, command)
    }
}

/// Paths inside the home, relative to it.
pub const COMPOSE_FILE: &str = "docker-compose.yml";
pub const CDE_DIR: &str = "config/cde";
pub const TLS_DIR: &str = "config/tls";

/// `p` with links and `..` resolved for the part that exists; the rest appended as written.
fn real_path(p: &Path) -> PathBuf {
    let mut existing = p.to_path_buf();
    let mut rest: Vec<std::ffi::OsString> = Vec::new();
    loop {
        if let Ok(real) = existing.canonicalize() {
            let mut out = real;
            for part in rest.iter().rev() {
                if part == ".." {
                    out.pop();
                } else if part != "." {
                    out.push(part);
                }
            }
            return out;
        }
        match existing.components().next_back() {
            Some(Component::Normal(name)) => {
                rest.push(name.to_os_string());
                existing.pop();
            }
            Some(Component::ParentDir) => {
                rest.push("..".into());
                existing.pop();
            }
            _ => return p.to_path_buf(),
        }
    }
}

fn cannot_create(root: &Path, e: std::io::Error) -> Error {
    Error::not_ready(format!("cannot create the home folder {}: {e}", root.display())).hint(format!(
        "run ./install.sh (it creates /opt/appgear owned by you), use `--home ~/appgear`, or create it with `sudo mkdir -p {0} && sudo chown $USER {0}`",
        root.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_home_has_one_path_whichever_way_it_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().canonicalize().unwrap().join("real");
        std::fs::create_dir(&real).unwrap();
        std::os::unix::fs::symlink(&real, dir.path().join("link")).unwrap();
        assert_eq!(Home::new(dir.path().join("link")).root(), real);
        assert_eq!(Home::new(real.join("../real/.")).root(), real);
        // Not created yet: the existing part is resolved, the rest kept.
        assert_eq!(
            Home::new(dir.path().join("link/new/home")).root(),
            real.join("new/home")
        );
    }
}

//! The home folder (`/opt/appgear` by default). `Home` is the one owner of its files: it lays out
//! the folders, reads and writes `.env`, renders the generated files and holds the lock.

use crate::core::error::{Context, Error, Kind, Result};
use crate::core::{files, owned_files};
use crate::topology_a::env_file::EnvFile;
use crate::topology_a::settings::{self, Settings};
use crate::topology_a::{generated, lock};
use std::path::{Path, PathBuf};

/// The user id code-server runs as in its official image.
pub const CDE_DEFAULT_UID: u32 = 1000;

#[derive(Debug, Clone)]
pub struct Home {
    root: PathBuf,
}

/// What `init` did, for the user to read.
#[derive(Debug, Default)]
pub struct InitReport {
    pub created_env: bool,
    pub added_keys: Vec<String>,
    /// What happened to each generated file.
    pub files: Vec<owned_files::Step>,
    pub tls_issued: bool,
    /// Set when config/cde belongs to someone code-server does not run as.
    pub cde_owner_warning: Option<String>,
}

impl Home {
    /// The root is made absolute: bind mounts and messages need full paths.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        Home {
            root: std::path::absolute(&root).unwrap_or(root),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn env_path(&self) -> PathBuf {
        self.root.join(".env")
    }
    pub fn compose_path(&self) -> PathBuf {
        self.root.join("docker-compose.yml")
    }
    pub fn cde_dir(&self) -> PathBuf {
        self.root.join("config/cde")
    }
    pub fn tls_dir(&self) -> PathBuf {
        self.root.join("config/tls")
    }

    /// Create the home folder itself, with a clear error when that is not allowed.
    pub fn ensure_root(&self) -> Result<()> {
        std::fs::create_dir_all(&self.root).map_err(|e| not_writable(&self.root, e))
    }

    /// A home is initialised once it has both `.env` and the compose file.
    pub fn is_initialised(&self) -> bool {
        self.env_path().exists() && self.compose_path().exists()
    }

    /// Create or complete the home. Never changes a value the user set, never removes a key, never
    /// overwrites a generated file whose marker the user removed.
    pub fn init(&self) -> Result<InitReport> {
        let mut report = InitReport::default();
        for dir in [
            "config/cde",
            "config/traefik/dynamic",
            "config/tls",
            "data",
            "logs/traefik",
        ] {
            std::fs::create_dir_all(self.root.join(dir))
                .map_err(|e| not_writable(&self.root, e))?;
        }
        let (env, created, added) = self.complete_env()?;
        report.created_env = created;
        report.added_keys = added;
        let settings = Settings::from_env_file(&env, &self.env_path())?;
        report.cde_owner_warning = give_to_cde_user(&self.cde_dir(), &settings)?;
        report.tls_issued = crate::topology_a::tls::ensure(&self.tls_dir(), &tls_names(&settings))?
            == crate::topology_a::tls::Outcome::Issued;
        let mut ledger = owned_files::Ledger::load(&self.root);
        let plan = owned_files::plan(&self.root, generated::files(&settings)?, &[], &ledger)?;
        owned_files::apply(&plan, &mut ledger)?;
        report.files = plan.steps;
        Ok(report)
    }

    /// Read `.env`, add the keys it lacks (generating the password), write it back only if it
    /// changed, and make sure only its owner can read it.
    fn complete_env(&self) -> Result<(EnvFile, bool, Vec<String>)> {
        let path = self.env_path();
        let created = !path.exists();
        let mut env = if created {
            EnvFile::default()
        } else {
            self.load_env()?
        };
        let mut added = Vec::new();
        for key in settings::KEYS {
            if env.contains(key.name) {
                continue;
            }
            let value = match (key.default, key.name) {
                (Some(v), _) => v.to_string(),
                (None, "CDE_UID") => cde_default_id(effective_uid()),
                (None, "CDE_GID") => cde_default_id(effective_gid()),
                (None, _) => generate_password()?,
            };
            if added.is_empty() && !created {
                env.blank();
                env.comment("added by appgear init");
            }
            env.comment(key.help);
            env.set(key.name, &value);
            added.push(key.name.to_string());
        }
        if !added.is_empty() {
            self.save_env(&env)?;
        } else {
            files::restrict_mode(&path)?;
        }
        Ok((env, created, added))
    }

    pub fn load_env(&self) -> Result<EnvFile> {
        let path = self.env_path();
        let text = std::fs::read_to_string(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                Error::bad_input(format!("{} does not exist", path.display())).hint(format!(
                    "run `appgear init --home {}` first",
                    self.root.display()
                ))
            }
            _ => Error::not_ready(format!("cannot read {}: {e}", path.display()))
                .hint("check its permissions"),
        })?;
        EnvFile::parse(&text).map_err(|e| {
            Error::bad_input(format!("{}: {e}", path.display()))
                .hint("each line must be KEY=VALUE or a # comment")
        })
    }

    /// Write `.env` atomically with mode 0600: it holds the code-server password.
    pub fn save_env(&self, env: &EnvFile) -> Result<()> {
        files::write_private(&self.env_path(), &env.render())
    }

    /// Load and validate the settings.
    pub fn settings(&self) -> Result<Settings> {
        Settings::from_env_file(&self.load_env()?, &self.env_path())
    }

    pub fn lock(&self, command: &str) -> Result<lock::HomeLock> {
        lock::HomeLock::acquire(&self.root, command)
    }
}

/// Names the TLS certificate covers: localhost everywhere, plus the configured domain.
pub fn tls_names(settings: &Settings) -> Vec<String> {
    let mut names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    let domain = settings.get("FACTORY_DOMAIN");
    if !domain.is_empty() && domain != "localhost" {
        names.push(domain.to_string());
    }
    names
}

fn not_writable(root: &Path, e: std::io::Error) -> Error {
    Error::not_ready(format!("cannot create the home folder {}: {e}", root.display())).hint(format!(
        "run ./install.sh (it creates /opt/appgear owned by you), use `--home ~/appgear`, or create it with `sudo mkdir -p {0} && sudo chown $USER {0}`",
        root.display()
    ))
}

/// code-server must own the project folder. Run as a user, appgear makes code-server run as that
/// user, who already owns the folder; run as root, it hands a root-owned folder (for example one
/// made by `sudo mkdir`) to code-server's user. Returns a warning when the owner still differs.
fn give_to_cde_user(path: &Path, settings: &Settings) -> Result<Option<String>> {
    use std::os::unix::fs::MetadataExt;
    let uid: u32 = settings.get("CDE_UID").parse().unwrap_or(CDE_DEFAULT_UID);
    let gid: u32 = settings.get("CDE_GID").parse().unwrap_or(CDE_DEFAULT_UID);
    let meta = std::fs::metadata(path)
        .or_err(Kind::NotReady, || format!("cannot read {}", path.display()))?;
    if meta.uid() == uid {
        return Ok(None);
    }
    if meta.uid() == 0 && effective_uid() == 0 {
        std::os::unix::fs::chown(path, Some(uid), Some(gid)).or_err(Kind::NotReady, || {
            format!("cannot hand {} to uid {uid}", path.display())
        })?;
        return Ok(None);
    }
    Ok(Some(format!(
        "{} belongs to uid {} but code-server runs as uid {uid} (CDE_UID) and cannot write it; run `sudo chown -R {uid}:{gid} {}` or `appgear config set CDE_UID {}`",
        path.display(),
        meta.uid(),
        path.display(),
        meta.uid()
    )))
}

/// The invoking user's id, or code-server's own 1000 when that is root.
fn cde_default_id(id: u32) -> String {
    if id == 0 { CDE_DEFAULT_UID } else { id }.to_string()
}

fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

fn effective_gid() -> u32 {
    // SAFETY: getegid has no preconditions and cannot fail.
    unsafe { libc::getegid() }
}

/// 24 random letters and digits: strong, and safe in `.env`, YAML and shells without quoting.
fn generate_password() -> Result<String> {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut out = String::with_capacity(24);
    let mut buf = [0u8; 64];
    while out.len() < 24 {
        getrandom::fill(&mut buf)
            .map_err(|e| Error::internal(format!("no randomness available: {e}")))?;
        // Rejection sampling keeps every character equally likely.
        let limit = 256 - 256 % ALPHABET.len();
        for b in buf.iter().filter(|b| (**b as usize) < limit) {
            if out.len() == 24 {
                break;
            }
            out.push(ALPHABET[*b as usize % ALPHABET.len()] as char);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_random_and_plain() {
        let a = generate_password().unwrap();
        let b = generate_password().unwrap();
        assert_eq!(a.len(), 24);
        assert_ne!(a, b);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
    }

    #[test]
    fn init_keeps_user_values_and_unknown_keys_and_only_adds_missing_ones() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path().join("h"));
        std::fs::create_dir_all(home.root()).unwrap();
        std::fs::write(
            home.env_path(),
            "# my notes\nFACTORY_VSCODE_PORT=9443\nMY_KEY=mine\n",
        )
        .unwrap();
        let report = home.init().unwrap();
        assert!(!report.created_env);
        assert!(report
            .added_keys
            .contains(&"CODE_SERVER_PASSWORD".to_string()));
        let env = home.load_env().unwrap();
        assert_eq!(env.get("FACTORY_VSCODE_PORT"), Some("9443"));
        assert_eq!(env.get("MY_KEY"), Some("mine"));
        let text = std::fs::read_to_string(home.env_path()).unwrap();
        assert!(text.starts_with("# my notes\nFACTORY_VSCODE_PORT=9443\nMY_KEY=mine\n"));
        let password = env.get("CODE_SERVER_PASSWORD").unwrap().to_string();
        let again = home.init().unwrap();
        assert!(again.added_keys.is_empty());
        assert_eq!(
            home.load_env().unwrap().get("CODE_SERVER_PASSWORD"),
            Some(password.as_str())
        );
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(home.env_path())
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o600
        );
        for dir in ["config/cde", "data", "logs", "config/tls"] {
            assert!(home.root().join(dir).is_dir(), "{dir}");
        }
        // The secret never lands in a generated file.
        for step in &again.files {
            let file = &step.path;
            let text = std::fs::read_to_string(home.root().join(file)).unwrap();
            assert!(!text.contains(&password), "{file} holds the password");
        }
    }
}

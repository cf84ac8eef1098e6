//! `init`: create or complete the home — its folders, `.env` (missing keys added, the password
//! generated once), code-server's ownership of `config/cde`, the local CA and certificate, and
//! the generated files. Never changes a value the user set, never removes a key, never
//! overwrites a generated file the user took over; every path below the home is reached through
//! its open folder, so a link planted there is refused rather than followed, chowned or written.

use crate::core::error::{Error, Result};
use crate::core::files::{self, Dir};
use crate::core::owned_files;
use crate::topology_a::env_file::EnvFile;
use crate::topology_a::env_store::{self, ENV_FILE};
use crate::topology_a::home::{Home, CDE_DIR, TLS_DIR};
use crate::topology_a::keys::{self, Invoker};
use crate::topology_a::settings::{Settings, Shell};
use crate::topology_a::{generated, tls};
use std::os::unix::fs::MetadataExt;

/// The folders of a home, created by `init` (their parents with them).
pub const FOLDERS: &[&str] = &[
    CDE_DIR,
    "config/traefik/dynamic",
    TLS_DIR,
    "data",
    "logs/traefik",
];

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

/// The home after `init`: its settings, read and checked once, and what was done.
pub struct Provisioned {
    pub settings: Settings,
    pub report: InitReport,
}

/// Create or complete the home, also writing `others` (keys other products read from the same
/// `.env`) into it when missing, after Topology A's own, with their help as comments. The caller
/// holds the home's lock.
pub fn init_with(home: &Home, others: &[keys::OtherKey]) -> Result<Provisioned> {
    let dir = home.dir()?;
    let mut report = InitReport::default();
    for folder in FOLDERS {
        dir.create_dir_all(folder, 0o755)
            .map_err(|e| files::not_writable(&dir.join(folder), e))?;
    }
    let (env, created, added) = complete_env(&dir, others)?;
    report.created_env = created;
    report.added_keys = added;
    let settings = Settings::resolve(&env, &dir.join(ENV_FILE), Shell::current())?;
    let cde = open_folder(&dir, CDE_DIR)?;
    report.cde_owner_warning = give_to_cde_user(&cde, &settings, Invoker::current())?;
    let tls_dir = open_folder(&dir, TLS_DIR)?;
    report.tls_issued = tls::ensure(&tls_dir, &tls_names(&settings))? == tls::Outcome::Issued;
    let wanted = generated::files(&settings)?;
    // owned_files works from paths: check here, through the folder, that nothing it will write
    // (nor a folder above it) is a link, so a planted link is refused up front with its name.
    for rel in
        std::iter::once(owned_files::Ledger::FILE).chain(wanted.iter().map(|f| f.path.as_str()))
    {
        dir.check_file(rel)
            .map_err(|e| files::not_writable(&dir.join(rel), e))?;
    }
    let mut ledger = owned_files::Ledger::load(home.root());
    let plan = owned_files::plan(home.root(), wanted, &[], &ledger)?;
    owned_files::apply(&plan, &mut ledger)?;
    report.files = plan.steps;
    Ok(Provisioned { settings, report })
}

fn open_folder(dir: &Dir, rel: &str) -> Result<Dir> {
    dir.open_dir(rel)
        .map_err(|e| files::not_writable(&dir.join(rel), e))
}

/// Read `.env`, add the keys it lacks (generating the password), write it back only if it
/// changed, and make sure only its owner can read it.
fn complete_env(dir: &Dir, others: &[keys::OtherKey]) -> Result<(EnvFile, bool, Vec<String>)> {
    let existing = env_store::read(dir)?;
    let created = existing.is_none();
    let mut env = existing.unwrap_or_default();
    let by = Invoker::current();
    let mut added = Vec::new();
    for key in keys::KEYS {
        if env.contains(key.name) {
            continue;
        }
        let value = match keys::default_value(key, by) {
            Some(v) => v,
            None => generate_password()?,
        };
        if added.is_empty() && !created {
            env.blank();
            env.comment("added by appgear init");
        }
        env.comment(key.help);
        env.set(key.name, &value);
        added.push(key.name.to_string());
    }
    // One definition per key: a key of Topology A's table is never written twice.
    for key in others.iter().filter(|k| keys::key(k.name).is_none()) {
        if env.contains(key.name) {
            continue;
        }
        if added.is_empty() && !created {
            env.blank();
            env.comment("added by appgear init");
        }
        env.comment(key.help);
        env.set(key.name, key.default);
        added.push(key.name.to_string());
    }
    if !added.is_empty() {
        env_store::save(dir, &env)?;
    } else {
        env_store::make_private(dir)?;
    }
    Ok((env, created, added))
}

/// Names the TLS certificate covers: localhost everywhere, plus the configured domain.
pub fn tls_names(settings: &Settings) -> Vec<String> {
    let mut names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    let domain = settings.domain.as_str();
    if domain != "localhost" {
        names.push(domain.to_string());
    }
    names
}

/// What to do about who owns config/cde.
#[derive(Debug, PartialEq, Eq)]
enum CdeOwner {
    /// It belongs to code-server's user already.
    Fine,
    /// Root made it (for example `sudo mkdir`) and root runs appgear: hand it over.
    HandOver,
    /// Someone else's: say so, change nothing.
    Warn,
}

fn cde_owner(owner: u32, cde_uid: u32, invoker_uid: u32) -> CdeOwner {
    if owner == cde_uid {
        CdeOwner::Fine
    } else if owner == 0 && invoker_uid == 0 {
        CdeOwner::HandOver
    } else {
        CdeOwner::Warn
    }
}

/// code-server must own the project folder. Run as a user, appgear makes code-server run as that
/// user, who already owns the folder; run as root, it hands a root-owned folder to code-server's
/// user. The folder is the one opened without following links: a link there was refused before.
/// Returns a warning when the owner still differs.
fn give_to_cde_user(cde: &Dir, settings: &Settings, by: Invoker) -> Result<Option<String>> {
    let (uid, gid) = (settings.cde_uid, settings.cde_gid);
    let path = cde.path();
    let owner = cde
        .metadata()
        .map_err(|e| Error::not_ready(format!("cannot read {}: {e}", path.display())))?
        .uid();
    match cde_owner(owner, uid, by.uid) {
        CdeOwner::Fine => Ok(None),
        CdeOwner::HandOver => {
            cde.chown(uid, gid).map_err(|e| {
                Error::not_ready(format!("cannot hand {} to uid {uid}: {e}", path.display()))
            })?;
            Ok(None)
        }
        CdeOwner::Warn => Ok(Some(format!(
            "{} belongs to uid {owner} but code-server runs as uid {uid} (CDE_UID) and cannot write it; run `sudo chown -R {uid}:{gid} {}` or `appgear config set CDE_UID {owner}`",
            path.display(),
            path.display(),
        ))),
    }
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
    fn only_a_folder_root_made_is_handed_over_and_only_by_root() {
        assert_eq!(cde_owner(1000, 1000, 0), CdeOwner::Fine);
        assert_eq!(cde_owner(0, 1000, 0), CdeOwner::HandOver);
        assert_eq!(cde_owner(0, 1000, 1000), CdeOwner::Warn);
        assert_eq!(
            cde_owner(1234, 1000, 0),
            CdeOwner::Warn,
            "another user's folder is theirs"
        );
    }

    #[test]
    fn other_products_keys_are_written_once_with_their_help_and_never_changed() {
        const OTHERS: &[keys::OtherKey] = &[
            keys::OtherKey {
                name: "OTHER_PORT",
                default: "9080",
                help: "another product's port",
            },
            keys::OtherKey {
                name: "OTHER_EMPTY",
                default: "",
                help: "another product's optional setting",
            },
            // Topology A's own key: its table's definition wins, it is not written twice.
            keys::OtherKey {
                name: "FACTORY_HTTP_PORT",
                default: "1",
                help: "a second definition",
            },
        ];
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path().join("h"));
        std::fs::create_dir_all(home.root()).unwrap();
        let report = init_with(&home, OTHERS).unwrap().report;
        assert!(report.created_env);
        let text = std::fs::read_to_string(home.env_path()).unwrap();
        assert!(
            text.contains("# another product's port\nOTHER_PORT=9080\n"),
            "{text}"
        );
        assert!(text.contains("OTHER_EMPTY=''\n"), "{text}");
        assert_eq!(text.matches("FACTORY_HTTP_PORT=").count(), 1, "{text}");
        assert!(text.contains("FACTORY_HTTP_PORT=8080\n"), "{text}");
        assert!(!text.contains("a second definition"), "{text}");

        // A value the user changed is kept, and nothing is added twice.
        std::fs::write(
            home.env_path(),
            text.replace("OTHER_PORT=9080", "OTHER_PORT=7000"),
        )
        .unwrap();
        let before = std::fs::read_to_string(home.env_path()).unwrap();
        let again = init_with(&home, OTHERS).unwrap().report;
        assert!(again.added_keys.is_empty(), "{:?}", again.added_keys);
        assert_eq!(std::fs::read_to_string(home.env_path()).unwrap(), before);
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
        let report = init_with(&home, &[]).unwrap().report;
        assert!(!report.created_env);
        assert!(report
            .added_keys
            .contains(&"CODE_SERVER_PASSWORD".to_string()));
        let env = env_store::load(&home).unwrap();
        assert_eq!(env.get("FACTORY_VSCODE_PORT"), Some("9443"));
        assert_eq!(env.get("MY_KEY"), Some("mine"));
        let text = std::fs::read_to_string(home.env_path()).unwrap();
        assert!(text.starts_with("# my notes\nFACTORY_VSCODE_PORT=9443\nMY_KEY=mine\n"));
        let password = env.get("CODE_SERVER_PASSWORD").unwrap().to_string();
        let again = init_with(&home, &[]).unwrap().report;
        assert!(again.added_keys.is_empty());
        assert_eq!(
            env_store::load(&home).unwrap().get("CODE_SERVER_PASSWORD"),
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

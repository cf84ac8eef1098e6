//! `Settings`: the values appgear runs with, typed, each knowing where it came from (appgear's
//! default, the home's `.env`, or the shell, which wins over `.env` as in Compose). Pure: the
//! file's text and the environment are handed in; nothing here reads the disk.

use crate::core::error::{Error, Result};
use crate::core::names::{Domain, TenantId, WorkspaceId};
use crate::core::ports::Fix;
use crate::topology_a::env_file::EnvFile;
use crate::topology_a::keys::{
    clashes, default_value, validate, Invoker, CDE_DEFAULT_ID, KEYS, REGISTRY_MIRROR,
};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;

/// Topology B and older callers name the key rules through `settings`.
pub use crate::topology_a::keys::{key, split_image, valid_image};

/// Where a value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// appgear's default (only when there is no `.env` yet, for `doctor`).
    Default,
    /// The home's `.env`.
    EnvFile,
    /// The environment appgear was started in, which wins over `.env` as in Compose.
    Shell,
}

/// The environment appgear was started in, read once. Not `Debug`: it may hold secrets.
#[derive(Clone, Default)]
pub struct Shell(BTreeMap<String, String>);

impl Shell {
    pub fn current() -> Shell {
        Shell(
            std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .collect(),
        )
    }
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }
}

impl<const N: usize> From<[(&str, &str); N]> for Shell {
    fn from(pairs: [(&str, &str); N]) -> Self {
        Shell(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }
}

/// Validated settings: the typed values appgear relies on, and every variable Compose
/// interpolation may use, each with its origin.
#[derive(Clone)]
pub struct Settings {
    pub project: String,
    pub vscode_port: u16,
    pub http_port: u16,
    pub bind_address: IpAddr,
    pub domain: Domain,
    pub workspace_id: WorkspaceId,
    pub tenant_id: TenantId,
    pub traefik_image: String,
    pub code_server_image: String,
    pub cde_uid: u32,
    pub cde_gid: u32,
    /// `APPGEAR_REGISTRY_MIRROR`, when set: images are pulled through it.
    pub registry_mirror: Option<String>,
    /// `.env`'s values (or the defaults when there is no `.env`), and their origin.
    file: BTreeMap<String, String>,
    file_origin: Origin,
    shell: Shell,
}

/// The values appgear needs to show; never the variables, which hold the password.
impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("project", &self.project)
            .field("vscode_port", &self.vscode_port)
            .field("http_port", &self.http_port)
            .field("bind_address", &self.bind_address)
            .field("domain", &self.domain)
            .field("workspace_id", &self.workspace_id)
            .field("tenant_id", &self.tenant_id)
            .field("traefik_image", &self.traefik_image)
            .field("code_server_image", &self.code_server_image)
            .field("cde_uid", &self.cde_uid)
            .field("cde_gid", &self.cde_gid)
            .field("registry_mirror", &self.registry_mirror)
            .finish_non_exhaustive()
    }
}

impl Settings {
    /// Check every known key; the first problem becomes a bad-input error naming the key and
    /// where its value came from. As in Docker Compose, a variable set in the shell wins over
    /// `.env`, and it is checked just the same, so `TRAEFIK_IMAGE=x:latest appgear up` is
    /// refused like the file would be.
    pub fn resolve(file: &EnvFile, env_path: &Path, shell: Shell) -> Result<Settings> {
        Self::build(file.values().clone(), Origin::EnvFile, env_path, shell)
    }

    /// appgear's defaults, for checks that run before there is a `.env` (the CDE's ids are the
    /// invoking user's, the password a placeholder).
    pub fn defaults() -> Settings {
        let by = Invoker::current();
        let file: BTreeMap<String, String> = KEYS
            .iter()
            .map(|k| {
                let v = default_value(k, by).unwrap_or_else(|| "placeholder-secret".into());
                (k.name.to_string(), v)
            })
            .collect();
        Self::build(file, Origin::Default, Path::new(".env"), Shell::default()).unwrap_or_else(
            |e| {
                unreachable!(
                    "the built-in defaults are valid (unit-tested): {}",
                    e.message
                )
            },
        )
    }

    fn build(
        file: BTreeMap<String, String>,
        file_origin: Origin,
        env_path: &Path,
        shell: Shell,
    ) -> Result<Settings> {
        let origin_text = |o: Origin| match o {
            Origin::Shell => "your shell environment".to_string(),
            Origin::EnvFile => env_path.display().to_string(),
            Origin::Default => "appgear's defaults".to_string(),
        };
        let mut checked: BTreeMap<&'static str, String> = BTreeMap::new();
        for k in KEYS {
            let (value, origin) = match shell.get(k.name) {
                Some(v) => (v.to_string(), Origin::Shell),
                None => match file.get(k.name) {
                    Some(v) => (v.clone(), file_origin),
                    // A key whose default is empty (optional) may be missing from an older .env.
                    None if k.default == Some("") => (String::new(), file_origin),
                    None => {
                        return Err(Error::bad_input(format!(
                            "{} is missing from {}",
                            k.name,
                            env_path.display()
                        ))
                        .hint("run `appgear init` to add missing keys"))
                    }
                },
            };
            validate(k.name, &value).map_err(|invalid| {
                let fix = if origin == Origin::Shell {
                    format!(
                        "unset {0} or give it a valid value; .env's value is used when it is unset",
                        k.name
                    )
                } else {
                    format!(
                        "fix it with `appgear config set {} VALUE` or edit the file",
                        k.name
                    )
                };
                let hint = match invalid.hint {
                    Some(h) => format!("{h}; {fix}"),
                    None => fix,
                };
                Error::bad_input(format!(
                    "{} in {}: {}",
                    k.name,
                    origin_text(origin),
                    invalid.message
                ))
                .hint(hint)
            })?;
            checked.insert(k.name, value);
        }
        if let Some(clash) = clashes(|k| checked.get(k).cloned()).into_iter().next() {
            let origins: Vec<String> = clash
                .keys
                .iter()
                .map(|k| {
                    let o = if shell.get(k).is_some() {
                        Origin::Shell
                    } else {
                        file_origin
                    };
                    origin_text(o)
                })
                .collect();
            let place = if origins[0] == origins[1] {
                origins[0].clone()
            } else {
                origins.join(" and ")
            };
            return Err(
                Error::bad_input(format!("{} (in {place})", clash.message)).hint(format!(
                    "give one of them another port: `appgear config set {} PORT`",
                    clash.keys[1]
                )),
            );
        }
        // Every value below passed `validate` above, so these conversions cannot fail; the
        // fallbacks only keep the types total.
        let get = |k: &str| checked.get(k).cloned().unwrap_or_default();
        let num = |k: &str| get(k).parse::<u32>().unwrap_or(CDE_DEFAULT_ID);
        let name_err =
            |e: Error| Error::internal(format!("a checked name was refused: {}", e.message));
        Ok(Settings {
            project: get("COMPOSE_PROJECT_NAME"),
            vscode_port: get("FACTORY_VSCODE_PORT").parse().unwrap_or(8443),
            http_port: get("FACTORY_HTTP_PORT").parse().unwrap_or(8080),
            bind_address: get("FACTORY_BIND_ADDRESS")
                .parse()
                .unwrap_or(IpAddr::from([127, 0, 0, 1])),
            domain: Domain::parse(&get("FACTORY_DOMAIN")).map_err(name_err)?,
            workspace_id: WorkspaceId::parse(&get("FACTORY_WORKSPACE_ID")).map_err(name_err)?,
            tenant_id: TenantId::parse(&get("FACTORY_TENANT_ID")).map_err(name_err)?,
            traefik_image: get("TRAEFIK_IMAGE"),
            code_server_image: get("CODE_SERVER_IMAGE"),
            cde_uid: num("CDE_UID"),
            cde_gid: num("CDE_GID"),
            registry_mirror: Some(get(REGISTRY_MIRROR).trim().to_string())
                .filter(|m| !m.is_empty()),
            file,
            file_origin,
            shell,
        })
    }

    /// A variable as Compose interpolation sees it: the shell first, then `.env`.
    pub fn lookup(&self, name: &str) -> Option<&str> {
        self.shell
            .get(name)
            .or_else(|| self.file.get(name).map(String::as_str))
    }

    /// Where the value `lookup` gives for `name` came from; `None` when it has none.
    pub fn origin(&self, name: &str) -> Option<Origin> {
        if self.shell.get(name).is_some() {
            Some(Origin::Shell)
        } else if self.file.contains_key(name) {
            Some(self.file_origin)
        } else {
            None
        }
    }

    /// How the user changes a value that variable `var` gave (`None`: written in the compose
    /// file): its `.env` key, or the shell variable that overrides `.env`.
    pub fn fix_for<'a>(&self, var: Option<&'a str>) -> Fix<'a> {
        match var.map(|v| (v, self.origin(v))) {
            Some((v, Some(Origin::Shell))) => Fix::ShellVar(v),
            Some((v, Some(_))) => Fix::EnvKey(v),
            _ => Fix::ComposeFile,
        }
    }

    /// The address a browser on this machine uses for the published ports.
    pub fn local_address(&self) -> IpAddr {
        if self.bind_address.is_unspecified() {
            IpAddr::from([127, 0, 0, 1])
        } else {
            self.bind_address
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology_a::keys::{default_value, Invoker, KEYS};

    fn env(extra: &str) -> EnvFile {
        let mut text = String::new();
        for k in KEYS {
            let v = default_value(k, Invoker { uid: 0, gid: 0 })
                .unwrap_or_else(|| "a-long-enough-secret".into());
            text.push_str(&format!("{}={v}\n", k.name));
        }
        text.push_str(extra);
        EnvFile::parse(&text).unwrap()
    }

    #[test]
    fn every_value_knows_where_it_came_from_and_the_shell_wins() {
        let s = Settings::resolve(
            &env("MY_OWN=x\n"),
            Path::new("/h/.env"),
            Shell::from([("FACTORY_VSCODE_PORT", "9443"), ("ONLY_SHELL", "y")]),
        )
        .unwrap();
        assert_eq!(s.vscode_port, 9443);
        assert_eq!(s.origin("FACTORY_VSCODE_PORT"), Some(Origin::Shell));
        assert_eq!(s.origin("FACTORY_HTTP_PORT"), Some(Origin::EnvFile));
        assert_eq!(s.lookup("MY_OWN"), Some("x"));
        assert_eq!(s.lookup("ONLY_SHELL"), Some("y"));
        assert_eq!(s.origin("NOWHERE"), None);
        let d = Settings::defaults();
        assert_eq!(d.origin("FACTORY_HTTP_PORT"), Some(Origin::Default));
        assert_eq!(d.project, "appgear");
    }

    #[test]
    fn a_bad_value_names_its_key_and_origin() {
        let err = Settings::resolve(
            &env("FACTORY_WORKSPACE_ID=Not_Valid\n"),
            Path::new("/h/.env"),
            Shell::default(),
        )
        .unwrap_err();
        assert!(
            err.message
                .starts_with("FACTORY_WORKSPACE_ID in /h/.env: workspace id"),
            "{}",
            err.message
        );
        assert!(err
            .hint
            .unwrap()
            .contains("appgear config set FACTORY_WORKSPACE_ID"));
        let err = Settings::resolve(
            &env(""),
            Path::new("/h/.env"),
            Shell::from([("TRAEFIK_IMAGE", "traefik:latest")]),
        )
        .unwrap_err();
        assert!(
            err.message
                .starts_with("TRAEFIK_IMAGE in your shell environment"),
            "{}",
            err.message
        );
        assert!(err.hint.unwrap().starts_with("unset TRAEFIK_IMAGE"));
    }

    #[test]
    fn both_ports_on_one_number_clash() {
        let err = Settings::resolve(
            &env("FACTORY_HTTP_PORT=8443\n"),
            Path::new("/h/.env"),
            Shell::default(),
        )
        .unwrap_err();
        assert_eq!(
            err.message,
            "FACTORY_VSCODE_PORT and FACTORY_HTTP_PORT are both 8443; each needs a port of its own (in /h/.env)"
        );
        let err = Settings::resolve(
            &env(""),
            Path::new("/h/.env"),
            Shell::from([("FACTORY_HTTP_PORT", "8443")]),
        )
        .unwrap_err();
        assert!(
            err.message
                .ends_with("(in /h/.env and your shell environment)"),
            "{}",
            err.message
        );
        assert!(
            clashes(|k| Some(if k == "FACTORY_HTTP_PORT" { "1" } else { "2" }.into())).is_empty()
        );
    }
}

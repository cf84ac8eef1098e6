//! The user's settings: the keys of `.env` that appgear knows, their defaults and their rules.
//! Everything else in appgear reads settings through `Settings`, never the file directly.

use crate::core::error::{Error, Result};
use crate::topology_a::env_file::EnvFile;
use std::collections::BTreeMap;

/// Pinned images: exact versions, never `latest` (the spec's `:latest` is not reproducible and
/// forbidden by its own policy rules).
pub const TRAEFIK_IMAGE: &str = "traefik:v3.6.2";
pub const CODE_SERVER_IMAGE: &str = "codercom/code-server:4.106.3";

/// What a key holds, which decides how its value is checked.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rule {
    Port,
    Ip,
    Domain,
    /// DNS-1123 label (workspace and tenant ids).
    Id,
    /// Compose project name: lowercase letters, digits, `-` and `_`, starting with a letter or digit.
    Project,
    Image,
    Secret,
    Uid,
}

pub struct Key {
    pub name: &'static str,
    pub rule: Rule,
    /// `None` for values `init` computes (the password, the CDE's user).
    pub default: Option<&'static str>,
    pub help: &'static str,
}

pub const KEYS: &[Key] = &[
    Key {
        name: "COMPOSE_PROJECT_NAME",
        rule: Rule::Project,
        default: Some("appgear"),
        help: "Compose project name: prefix of container, network and volume names",
    },
    Key {
        name: "FACTORY_VSCODE_PORT",
        rule: Rule::Port,
        default: Some("8443"),
        help: "HTTPS port published on the host for the CDE",
    },
    Key {
        name: "FACTORY_HTTP_PORT",
        rule: Rule::Port,
        default: Some("8080"),
        help: "plain HTTP port on the host; it only redirects to HTTPS",
    },
    Key {
        name: "FACTORY_BIND_ADDRESS",
        rule: Rule::Ip,
        default: Some("127.0.0.1"),
        help: "host address the ports are published on (0.0.0.0 to share on your network)",
    },
    Key {
        name: "FACTORY_DOMAIN",
        rule: Rule::Domain,
        default: Some("factory.dev.appgear.local"),
        help: "host name served besides localhost",
    },
    Key {
        name: "FACTORY_WORKSPACE_ID",
        rule: Rule::Id,
        default: Some("local"),
        help: "workspace id (DNS-1123 label), set as appgear.io/workspace-id",
    },
    Key {
        name: "FACTORY_TENANT_ID",
        rule: Rule::Id,
        default: Some("local"),
        help: "tenant id (DNS-1123 label), set as appgear.io/tenant-id",
    },
    Key {
        name: "TRAEFIK_IMAGE",
        rule: Rule::Image,
        default: Some(TRAEFIK_IMAGE),
        help: "Traefik image; point it at a mirror if Docker Hub is not reachable",
    },
    Key {
        name: "CODE_SERVER_IMAGE",
        rule: Rule::Image,
        default: Some(CODE_SERVER_IMAGE),
        help: "code-server image; point it at a mirror if Docker Hub is not reachable",
    },
    Key {
        name: "CDE_UID",
        rule: Rule::Uid,
        default: Some("1000"),
        help: "user id code-server runs as; owns config/cde",
    },
    Key {
        name: "CDE_GID",
        rule: Rule::Uid,
        default: Some("1000"),
        help: "group id code-server runs as",
    },
    Key {
        name: "CODE_SERVER_PASSWORD",
        rule: Rule::Secret,
        default: None,
        help: "code-server login password (generated once)",
    },
];

pub fn key(name: &str) -> Option<&'static Key> {
    KEYS.iter().find(|k| k.name == name)
}

/// Check one value against its key's rule; the error says what is wrong and what would be right.
pub fn validate(name: &str, value: &str) -> std::result::Result<(), String> {
    let Some(k) = key(name) else { return Ok(()) };
    match k.rule {
        Rule::Port => match value.parse::<u16>() {
            Ok(p) if p >= 1 => Ok(()),
            _ => Err(format!("`{value}` is not a port number (1-65535)")),
        },
        Rule::Ip => value.parse::<std::net::IpAddr>().map(|_| ()).map_err(|_| {
            format!("`{value}` is not an IP address (for example 127.0.0.1 or 0.0.0.0)")
        }),
        Rule::Domain => valid_domain(value),
        Rule::Id => valid_label(value),
        Rule::Project => valid_project(value),
        Rule::Image => valid_image(value),
        Rule::Secret => {
            if value.len() < 12 {
                Err("must be at least 12 characters".into())
            } else {
                Ok(())
            }
        }
        Rule::Uid => value
            .parse::<u32>()
            .map(|_| ())
            .map_err(|_| format!("`{value}` is not a numeric id")),
    }
}

/// DNS-1123 label (workspace and tenant ids).
pub fn valid_label(v: &str) -> std::result::Result<(), String> {
    if crate::core::names::is_label(v) {
        Ok(())
    } else {
        Err(format!("`{v}` is not a DNS-1123 label (lowercase letters, digits and '-', at most 63, starting and ending with a letter or digit)"))
    }
}

fn valid_domain(v: &str) -> std::result::Result<(), String> {
    if crate::core::names::is_subdomain(v) {
        Ok(())
    } else {
        Err(format!(
            "`{v}` is not a DNS name (dot-separated lowercase labels)"
        ))
    }
}

fn valid_project(v: &str) -> std::result::Result<(), String> {
    let mut chars = v.chars();
    let ok = matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{v}` is not a project name (lowercase letters, digits, '-' and '_')"
        ))
    }
}

/// An image reference with an exact tag or digest; `latest` and untagged are refused because
/// they are not reproducible.
pub fn valid_image(v: &str) -> std::result::Result<(), String> {
    let example = "for example traefik:v3.6.2 or registry.example.com/traefik:v3.6.2";
    if v.is_empty() || v.chars().any(char::is_whitespace) {
        return Err(format!("`{v}` is not an image reference ({example})"));
    }
    let (name, pinned) = match v.split_once("@sha256:") {
        Some((name, digest)) => (name, !digest.is_empty()),
        None => match split_image(v) {
            (_, Some("latest")) => {
                return Err(format!(
                    "`{v}` uses `latest`; pin an exact version so every start gets the same image"
                ))
            }
            (name, tag) => (name, tag.is_some_and(|t| !t.is_empty())),
        },
    };
    if name.is_empty() || name.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(format!(
            "`{v}` is not an image reference: the repository must be lowercase ({example})"
        ));
    }
    if !pinned {
        return Err(format!(
            "`{v}` has no tag; pin an exact version (name:tag or name@sha256:digest)"
        ));
    }
    Ok(())
}

/// `registry:5000/team/name:tag` → (`registry:5000/team/name`, `tag`): the tag follows the last ':'
/// after the last '/' (an earlier ':' is a registry port). A digest reference stays whole.
pub fn split_image(v: &str) -> (&str, Option<&str>) {
    if v.contains('@') {
        return (v, None);
    }
    let slash = v.rfind('/').map_or(0, |i| i + 1);
    match v[slash..].rfind(':') {
        Some(i) => (&v[..slash + i], Some(&v[slash + i + 1..])),
        None => (v, None),
    }
}

/// Validated settings: the `.env` values appgear relies on, plus everything else the user put there
/// (handed to Compose interpolation).
#[derive(Debug, Clone)]
pub struct Settings {
    values: BTreeMap<String, String>,
}

impl Settings {
    /// Check every known key; the first problem becomes a bad-input error naming the key and
    /// where it came from. As in Docker Compose, a variable set in the shell wins over `.env`; it is
    /// checked just the same, so `TRAEFIK_IMAGE=x:latest appgear up` is refused like the file would be.
    pub fn from_env_file(file: &EnvFile, path: &std::path::Path) -> Result<Self> {
        let mut values = file.values().clone();
        for k in KEYS {
            let (value, origin) = match std::env::var(k.name) {
                Ok(v) => (Some(v), "your shell environment".to_string()),
                Err(_) => (
                    file.get(k.name).map(str::to_string),
                    path.display().to_string(),
                ),
            };
            let Some(value) = value else {
                return Err(Error::bad_input(format!(
                    "{} is missing from {}",
                    k.name,
                    path.display()
                ))
                .hint("run `appgear init` to add missing keys"));
            };
            validate(k.name, &value).map_err(|e| {
                let fix = if origin.starts_with("your shell") {
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
                Error::bad_input(format!("{} in {origin}: {e}", k.name)).hint(fix)
            })?;
            values.insert(k.name.to_string(), value);
        }
        Ok(Settings { values })
    }

    /// No values at all: used only to report, when even defaults are unusable.
    pub fn empty() -> Self {
        Settings {
            values: BTreeMap::new(),
        }
    }

    /// Value of a key; known keys are always present once validated.
    pub fn get(&self, name: &str) -> &str {
        self.values
            .get(name)
            .map(String::as_str)
            .unwrap_or_default()
    }

    pub fn port(&self, name: &str) -> u16 {
        self.get(name).parse().unwrap_or_default()
    }

    pub fn values(&self) -> &BTreeMap<String, String> {
        &self.values
    }

    pub fn project(&self) -> &str {
        self.get("COMPOSE_PROJECT_NAME")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_split_at_the_tag_not_the_registry_port() {
        assert_eq!(split_image("traefik:v3.6.2"), ("traefik", Some("v3.6.2")));
        assert_eq!(
            split_image("localhost:5000/a/b:1"),
            ("localhost:5000/a/b", Some("1"))
        );
        assert_eq!(
            split_image("localhost:5000/a/b"),
            ("localhost:5000/a/b", None)
        );
        assert_eq!(split_image("a@sha256:00"), ("a@sha256:00", None));
    }

    #[test]
    fn images_must_be_pinned() {
        assert!(valid_image("traefik:v3.6.2").is_ok());
        assert!(valid_image("localhost:5000/team/code-server:4.106.3").is_ok());
        assert!(valid_image("codercom/code-server@sha256:abc").is_ok());
        assert!(valid_image("codercom/code-server:latest")
            .unwrap_err()
            .contains("latest"));
        assert!(valid_image("codercom/code-server")
            .unwrap_err()
            .contains("no tag"));
        assert!(valid_image("localhost:5000/code-server")
            .unwrap_err()
            .contains("no tag"));
        assert!(valid_image("Bad Image").is_err());
    }

    #[test]
    fn ports_ids_and_addresses() {
        assert!(validate("FACTORY_VSCODE_PORT", "8443").is_ok());
        for bad in ["0", "70000", "http", "-1", ""] {
            assert!(validate("FACTORY_VSCODE_PORT", bad).is_err(), "{bad}");
        }
        assert!(validate("FACTORY_WORKSPACE_ID", "demo-1").is_ok());
        for bad in ["Demo", "-a", "a-", "a_b", "", &"a".repeat(64)] {
            assert!(validate("FACTORY_WORKSPACE_ID", bad).is_err(), "{bad}");
        }
        assert!(validate("FACTORY_BIND_ADDRESS", "0.0.0.0").is_ok());
        assert!(validate("FACTORY_BIND_ADDRESS", "localhost").is_err());
        assert!(validate("FACTORY_DOMAIN", "factory.dev.appgear.local").is_ok());
        assert!(validate("FACTORY_DOMAIN", "bad_domain.local").is_err());
        assert!(validate("COMPOSE_PROJECT_NAME", "appgear-t1").is_ok());
        assert!(validate("COMPOSE_PROJECT_NAME", "AppGear").is_err());
        assert!(validate("UNKNOWN_KEY", "anything").is_ok());
    }
}

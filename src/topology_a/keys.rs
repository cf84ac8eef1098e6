//! The keys of `.env` that appgear knows: their defaults, their rules (names use the one rule of
//! `core::names`), and the rules between keys. Pure: values in, verdicts out.

use crate::core::error::Error;
use crate::core::names::{Domain, TenantId, WorkspaceId};
use std::net::IpAddr;

/// Pinned images: exact versions, never `latest` (the spec's `:latest` is not reproducible and
/// forbidden by its own policy rules).
pub const TRAEFIK_IMAGE: &str = "traefik:v3.6.2";
pub const CODE_SERVER_IMAGE: &str = "codercom/code-server:4.106.3";
/// The user id code-server runs as in its official image; also what root gets by default.
pub const CDE_DEFAULT_ID: u32 = 1000;

/// The registry mirror both topologies pull through (docs/images.md).
pub const REGISTRY_MIRROR: &str = "APPGEAR_REGISTRY_MIRROR";

/// What a key holds, which decides how its value is checked.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rule {
    Port,
    Ip,
    /// `core::names::Domain`, the rule every product shares.
    Domain,
    /// `core::names::WorkspaceId`.
    WorkspaceId,
    /// `core::names::TenantId`.
    TenantId,
    /// Compose project name: lowercase letters, digits, `-` and `_`, starting with a letter or digit.
    Project,
    Image,
    Secret,
    /// A numeric user or group id; its default is the invoking user's (1000 for root).
    Uid,
    /// A registry address (`RegistryMirror`), or empty for none.
    RegistryMirror,
}

pub struct Key {
    pub name: &'static str,
    pub rule: Rule,
    /// `None` for values `init` computes (the password, the CDE's user and group).
    pub default: Option<&'static str>,
    pub help: &'static str,
}

/// A key another product reads from the same `.env` (Topology B's cluster keys): `init` writes
/// it with its default and help, and the product that reads it owns its definition and checks
/// its value. Topology A cannot name those products (they build on it), so their callers hand
/// their tables to `provision::init_with`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OtherKey {
    pub name: &'static str,
    /// Empty for "not set".
    pub default: &'static str,
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
        rule: Rule::WorkspaceId,
        default: Some("local"),
        help: "workspace id (DNS-1123 label), set as appgear.io/workspace-id",
    },
    Key {
        name: "FACTORY_TENANT_ID",
        rule: Rule::TenantId,
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
        default: None,
        help: "user id code-server runs as; owns config/cde",
    },
    Key {
        name: "CDE_GID",
        rule: Rule::Uid,
        default: None,
        help: "group id code-server runs as",
    },
    Key {
        name: REGISTRY_MIRROR,
        rule: Rule::RegistryMirror,
        default: Some(""),
        help: "registry every image is pulled through first (host[:port], http://host[:port] for a plain-HTTP one); empty for none; Topology B reads it too",
    },
    Key {
        name: "CODE_SERVER_PASSWORD",
        rule: Rule::Secret,
        default: None,
        help: "code-server login password (generated once)",
    },
];

/// The two ports published on the same address: they must differ.
const PORT_KEYS: [&str; 2] = ["FACTORY_VSCODE_PORT", "FACTORY_HTTP_PORT"];

pub fn key(name: &str) -> Option<&'static Key> {
    KEYS.iter().find(|k| k.name == name)
}

/// True for keys whose value is never shown unless asked for.
pub fn is_secret(name: &str) -> bool {
    key(name).is_some_and(|k| k.rule == Rule::Secret)
}

/// Who runs appgear, for the defaults that follow them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Invoker {
    pub uid: u32,
    pub gid: u32,
}

impl Invoker {
    pub fn current() -> Invoker {
        // SAFETY: geteuid and getegid have no preconditions and cannot fail.
        unsafe {
            Invoker {
                uid: libc::geteuid(),
                gid: libc::getegid(),
            }
        }
    }
}

/// The value `init` writes for a key `.env` lacks: the documented default; for the CDE's user
/// and group the invoking user's own ids, so code-server can write the folders that user owns
/// (root gets code-server's own 1000, since the CDE should not run as root); `None` for the
/// password, which is generated.
pub fn default_value(key: &Key, by: Invoker) -> Option<String> {
    let own = |id: u32| if by.uid == 0 { CDE_DEFAULT_ID } else { id };
    match (key.default, key.name) {
        (Some(v), _) => Some(v.to_string()),
        (None, "CDE_UID") => Some(own(by.uid).to_string()),
        (None, "CDE_GID") => Some(own(by.gid).to_string()),
        (None, _) => None,
    }
}

/// Why a value is refused, and what would be right.
#[derive(Debug, Clone, PartialEq)]
pub struct Invalid {
    pub message: String,
    pub hint: Option<String>,
}

impl Invalid {
    fn new(message: impl Into<String>) -> Self {
        Invalid {
            message: message.into(),
            hint: None,
        }
    }
    fn from_error(e: Error) -> Self {
        Invalid {
            message: e.message,
            hint: e.hint,
        }
    }
}

/// Check one value against its key's rule. Names use the one rule of `core::names`, so a
/// workspace id appgear accepts here is accepted by every product.
pub fn validate(name: &str, value: &str) -> std::result::Result<(), Invalid> {
    let Some(k) = key(name) else { return Ok(()) };
    match k.rule {
        Rule::Port => port(value).map(|_| ()),
        Rule::Ip => ip(value).map(|_| ()),
        Rule::Domain => Domain::parse(value)
            .map(|_| ())
            .map_err(Invalid::from_error),
        Rule::WorkspaceId => WorkspaceId::parse(value)
            .map(|_| ())
            .map_err(Invalid::from_error),
        Rule::TenantId => TenantId::parse(value)
            .map(|_| ())
            .map_err(Invalid::from_error),
        Rule::Project => valid_project(value).map_err(Invalid::new),
        Rule::Image => valid_image(value).map_err(Invalid::new),
        Rule::Secret => {
            if value.len() < 12 {
                Err(Invalid::new("must be at least 12 characters"))
            } else {
                Ok(())
            }
        }
        Rule::Uid => id(value).map(|_| ()),
        Rule::RegistryMirror if value.trim().is_empty() => Ok(()),
        Rule::RegistryMirror => RegistryMirror::parse(value.trim())
            .map(|_| ())
            .map_err(Invalid::from_error),
    }
}

fn port(value: &str) -> std::result::Result<u16, Invalid> {
    match value.parse::<u16>() {
        Ok(p) if p >= 1 => Ok(p),
        _ => Err(Invalid::new(format!(
            "`{value}` is not a port number (1-65535)"
        ))),
    }
}

fn ip(value: &str) -> std::result::Result<IpAddr, Invalid> {
    value.parse::<IpAddr>().map_err(|_| {
        Invalid::new(format!(
            "`{value}` is not an IP address (for example 127.0.0.1 or 0.0.0.0)"
        ))
    })
}

fn id(value: &str) -> std::result::Result<u32, Invalid> {
    value
        .parse::<u32>()
        .map_err(|_| Invalid::new(format!("`{value}` is not a numeric id")))
}

/// A registry mirror (`APPGEAR_REGISTRY_MIRROR`): where Docker (Topology A) and the cluster's
/// containerd (Topology B) pull images first. One definition for both topologies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryMirror {
    /// `https` unless the value said `http://` (a plain-HTTP local registry).
    pub scheme: &'static str,
    /// `host` or `host:port`.
    pub host: String,
}

impl RegistryMirror {
    pub fn parse(value: &str) -> crate::core::error::Result<RegistryMirror> {
        let bad = || {
            Error::bad_input(format!(
                "{REGISTRY_MIRROR} {value:?} is not a registry address"
            ))
            .hint("write host[:port] (https), or http://host[:port] for a plain-HTTP registry, e.g. registry.local:5000")
        };
        let (scheme, rest) = match value.split_once("://") {
            Some(("https", r)) => ("https", r),
            Some(("http", r)) => ("http", r),
            Some(_) => return Err(bad()),
            None => ("https", value),
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (rest, None),
        };
        let host_ok = crate::core::names::is_subdomain(host) || host.parse::<IpAddr>().is_ok();
        let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok_and(|p| p > 0));
        if !host_ok || !port_ok {
            return Err(bad());
        }
        Ok(RegistryMirror {
            scheme,
            host: rest.to_string(),
        })
    }
    /// `https://host[:port]`.
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.host)
    }
}

/// Two keys whose values clash with each other.
#[derive(Debug, Clone, PartialEq)]
pub struct Clash {
    pub keys: [&'static str; 2],
    pub message: String,
}

/// Rules between keys, on values as a lookup gives them: both ports are published on the same
/// address, so they must differ (the second would fail half-way through `up`).
pub fn clashes(get: impl Fn(&str) -> Option<String>) -> Vec<Clash> {
    let [a, b] = PORT_KEYS;
    match (get(a), get(b)) {
        (Some(x), Some(y)) if x == y && port(&x).is_ok() => vec![Clash {
            keys: PORT_KEYS,
            message: format!("{a} and {b} are both {x}; each needs a port of its own"),
        }],
        _ => Vec::new(),
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
        for bad in ["Demo", "-a", "a-", "a_b", "", "global", &"a".repeat(53)] {
            assert!(validate("FACTORY_WORKSPACE_ID", bad).is_err(), "{bad}");
        }
        assert!(validate("FACTORY_TENANT_ID", "global").is_err());
        assert!(validate("FACTORY_BIND_ADDRESS", "0.0.0.0").is_ok());
        assert!(validate("FACTORY_BIND_ADDRESS", "localhost").is_err());
        assert!(validate("FACTORY_DOMAIN", "factory.dev.appgear.local").is_ok());
        assert!(validate("FACTORY_DOMAIN", "bad_domain.local").is_err());
        assert!(validate("COMPOSE_PROJECT_NAME", "appgear-t1").is_ok());
        assert!(validate("COMPOSE_PROJECT_NAME", "AppGear").is_err());
        assert!(validate("UNKNOWN_KEY", "anything").is_ok());
    }

    #[test]
    fn a_long_workspace_id_gets_the_one_rule_of_core_names_word_for_word() {
        let id = "a".repeat(53);
        let want = WorkspaceId::parse(&id).unwrap_err();
        let got = validate("FACTORY_WORKSPACE_ID", &id).unwrap_err();
        assert_eq!(got.message, want.message);
        assert_eq!(got.hint, want.hint);
    }

    #[test]
    fn the_cde_user_is_the_invoking_user_and_root_gets_1000() {
        let uid = key("CDE_UID").unwrap();
        let gid = key("CDE_GID").unwrap();
        let alice = Invoker {
            uid: 1234,
            gid: 5678,
        };
        let root = Invoker { uid: 0, gid: 0 };
        assert_eq!(default_value(uid, alice).as_deref(), Some("1234"));
        assert_eq!(default_value(gid, alice).as_deref(), Some("5678"));
        assert_eq!(default_value(uid, root).as_deref(), Some("1000"));
        assert_eq!(default_value(gid, root).as_deref(), Some("1000"));
        assert_eq!(
            default_value(key("CODE_SERVER_PASSWORD").unwrap(), alice),
            None
        );
    }
}

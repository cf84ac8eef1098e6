//! Topology B's keys in `.env`, their defaults and their rules, read through a plain lookup (the
//! caller decides where values come from: `.env`, the shell) into `ClusterSettings`.
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `APPGEAR_CLUSTER_NAME` | `appgear` | the kind cluster (`kind-<name>` context, `<name>-control-plane` node) |
//! | `FACTORY_CLUSTER_HTTP_PORT` | `9080` | host port to Kong's HTTP NodePort |
//! | `FACTORY_CLUSTER_HTTPS_PORT` | `9443` | host port to Kong's HTTPS NodePort |
//! | `APPGEAR_REGISTRY_MIRROR` | empty | registry every image is pulled through first (`host[:port]`, `http://` for a plain-HTTP one) |
//! | `APPGEAR_ADDONS_MIRROR` | empty | folder or http(s) URL with the add-ons' rendered YAML |
//!
//! `FACTORY_BIND_ADDRESS` (shared with Topology A) is the host address the cluster ports listen
//! on; Topology A's `FACTORY_VSCODE_PORT` / `FACTORY_HTTP_PORT` are read only so that the
//! cluster's ports can be checked against them (both topologies may run at once).

use super::mirror;
use crate::core::error::{Error, Result};
use crate::topology_a::keys::OtherKey;
use crate::topology_a::settings as a_settings;
use std::net::IpAddr;

pub const CLUSTER_NAME: &str = "APPGEAR_CLUSTER_NAME";
pub const HTTP_PORT: &str = "FACTORY_CLUSTER_HTTP_PORT";
pub const HTTPS_PORT: &str = "FACTORY_CLUSTER_HTTPS_PORT";
pub const ADDONS_MIRROR: &str = "APPGEAR_ADDONS_MIRROR";
const BIND_ADDRESS: &str = "FACTORY_BIND_ADDRESS";
const A_HTTPS_PORT: &str = "FACTORY_VSCODE_PORT";
const A_HTTP_PORT: &str = "FACTORY_HTTP_PORT";

/// Topology B's own keys: their one definition, which `init` writes into `.env` (an empty
/// default means "not set"). `APPGEAR_REGISTRY_MIRROR` is Topology A's key, read here too.
pub const KEYS: &[OtherKey] = &[
    OtherKey {
        name: CLUSTER_NAME,
        default: "appgear",
        help: "Topology B: the kind cluster's name (context kind-<name>); a DNS label of at most 49 characters",
    },
    OtherKey {
        name: HTTP_PORT,
        default: "9080",
        help: "Topology B: host port to Kong's HTTP NodePort in the kind cluster",
    },
    OtherKey {
        name: HTTPS_PORT,
        default: "9443",
        help: "Topology B: host port to Kong's HTTPS NodePort in the kind cluster",
    },
    OtherKey {
        name: ADDONS_MIRROR,
        default: "",
        help: "Topology B: a folder or http(s) URL with the add-ons' rendered YAML (appgear cluster mirror writes one); empty to fetch them upstream",
    },
];

/// The kind cluster's name: a DNS-1123 label (kind itself allows `[a-z0-9.-]+`), short enough
/// that the node's host name `<name>-control-plane` is a label too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterName(String);

impl ClusterName {
    pub const MAX: usize = crate::core::names::LABEL_MAX - "-control-plane".len();

    pub fn parse(s: &str) -> Result<ClusterName> {
        if !crate::core::names::is_label(s) || s.len() > Self::MAX {
            return Err(
                Error::bad_input(format!("{CLUSTER_NAME} {s:?} is not a cluster name")).hint(
                    format!(
                "use lower-case letters, digits and '-', at most {} characters, e.g. appgear",
                Self::MAX
            ),
                ),
            );
        }
        Ok(ClusterName(s.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The kubeconfig context kind creates.
    pub fn context(&self) -> String {
        format!("kind-{}", self.0)
    }
}

/// A registry mirror: one definition, Topology A's key (Topology B reads the same `.env` key).
pub use crate::topology_a::keys::{RegistryMirror, REGISTRY_MIRROR};

/// Everything Topology B reads from `.env`, validated.
#[derive(Debug, Clone)]
pub struct ClusterSettings {
    pub name: ClusterName,
    pub http_port: u16,
    pub https_port: u16,
    pub bind: IpAddr,
    pub registry_mirror: Option<RegistryMirror>,
    pub addons_mirror: Option<mirror::Location>,
    /// Topology A's HTTPS and HTTP ports, which the cluster's must not take.
    pub topology_a_ports: [u16; 2],
}

impl ClusterSettings {
    /// Read and check every key; `get` returns a key's value when set (an empty value counts as
    /// unset). Defaults: `KEYS` here, Topology A's table for its keys.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<ClusterSettings> {
        let value = |key: &str| -> String {
            let default = KEYS
                .iter()
                .find(|k| k.name == key)
                .map(|k| k.default)
                .or_else(|| a_settings::key(key).and_then(|k| k.default))
                .unwrap_or("");
            get(key)
                .filter(|v| !v.trim().is_empty())
                .unwrap_or_else(|| default.to_string())
        };
        let port = |key: &str| -> Result<u16> {
            let v = value(key);
            match v.parse::<u16>() {
                Ok(p) if p > 0 => Ok(p),
                _ => Err(
                    Error::bad_input(format!("{key} `{v}` is not a port number (1-65535)"))
                        .hint(format!("fix it with `appgear config set {key} PORT`")),
                ),
            }
        };
        let bind_text = value(BIND_ADDRESS);
        let bind = bind_text.parse::<IpAddr>().map_err(|_| {
            Error::bad_input(format!("{BIND_ADDRESS} `{bind_text}` is not an IP address"))
                .hint("use 127.0.0.1 (this machine only) or 0.0.0.0 (your network)")
        })?;
        let registry = value(REGISTRY_MIRROR);
        let addons = value(ADDONS_MIRROR);
        Ok(ClusterSettings {
            name: ClusterName::parse(&value(CLUSTER_NAME))?,
            http_port: port(HTTP_PORT)?,
            https_port: port(HTTPS_PORT)?,
            bind,
            registry_mirror: if registry.is_empty() {
                None
            } else {
                Some(RegistryMirror::parse(registry.trim())?)
            },
            addons_mirror: if addons.is_empty() {
                None
            } else {
                Some(mirror::Location::parse(&addons)?)
            },
            topology_a_ports: [port(A_HTTPS_PORT)?, port(A_HTTP_PORT)?],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn settings(pairs: &[(&str, &str)]) -> Result<ClusterSettings> {
        let m: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ClusterSettings::from_lookup(|k| m.get(k).cloned())
    }

    #[test]
    fn defaults() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.name.as_str(), "appgear");
        assert_eq!(s.name.context(), "kind-appgear");
        assert_eq!((s.http_port, s.https_port), (9080, 9443));
        assert_eq!(s.bind.to_string(), "127.0.0.1");
        assert_eq!(s.topology_a_ports, [8443, 8080]);
        assert_eq!(s.registry_mirror, None);
        assert_eq!(s.addons_mirror, None);
    }

    #[test]
    fn values_are_checked() {
        let s = settings(&[
            (CLUSTER_NAME, "demo"),
            (REGISTRY_MIRROR, "http://registry.local:5000"),
            (ADDONS_MIRROR, "/srv/addons"),
            ("FACTORY_BIND_ADDRESS", "0.0.0.0"),
        ])
        .unwrap();
        assert_eq!(s.name.as_str(), "demo");
        assert_eq!(
            s.registry_mirror.unwrap().url(),
            "http://registry.local:5000"
        );
        assert_eq!(
            s.addons_mirror,
            Some(mirror::Location::Folder("/srv/addons".into()))
        );
        for (key, bad) in [
            (CLUSTER_NAME, "Demo"),
            (CLUSTER_NAME, "a".repeat(50).as_str()),
            (HTTP_PORT, "0"),
            (HTTPS_PORT, "99999"),
            (REGISTRY_MIRROR, "ftp://x"),
            (REGISTRY_MIRROR, "reg istry"),
            (REGISTRY_MIRROR, "registry.local:0"),
            ("FACTORY_BIND_ADDRESS", "localhost"),
        ] {
            let e = settings(&[(key, bad)]).unwrap_err();
            assert!(e.message.contains(key), "{key}={bad}: {}", e.message);
            assert!(e.hint.is_some());
        }
        assert_eq!(
            ClusterName::parse(&"a".repeat(49)).unwrap().as_str().len(),
            49
        );
    }

    #[test]
    fn each_key_is_defined_once_with_its_help() {
        for k in KEYS {
            assert!(
                crate::topology_a::keys::key(k.name).is_none(),
                "{} is also Topology A's",
                k.name
            );
            assert!(k.help.starts_with("Topology B: "), "{}", k.name);
            assert!(crate::topology_a::env_file::valid_key(k.name));
        }
        // The defaults `init` writes are the ones the settings read.
        let written: BTreeMap<&str, &str> = KEYS.iter().map(|k| (k.name, k.default)).collect();
        let s = settings(&written.iter().map(|(k, v)| (*k, *v)).collect::<Vec<_>>()).unwrap();
        assert_eq!(s.name.as_str(), "appgear");
        assert_eq!((s.http_port, s.https_port), (9080, 9443));
    }

    #[test]
    fn registry_mirror_forms() {
        assert_eq!(
            RegistryMirror::parse("mirror.example.com").unwrap().url(),
            "https://mirror.example.com"
        );
        assert_eq!(
            RegistryMirror::parse("10.0.0.5:5000").unwrap().url(),
            "https://10.0.0.5:5000"
        );
        assert!(RegistryMirror::parse("https://mirror.example.com/path").is_err());
    }
}

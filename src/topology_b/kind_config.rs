//! The kind cluster's configuration (`kind.x-k8s.io/v1alpha4`), a generated, marked file in the
//! home (`config/kind/cluster.yaml`) that `kind create cluster --config` reads:
//!
//! - one control-plane node running the pinned node image, labelled `ingress-ready=true` through
//!   a kubeadm patch (kind ≤ Kubernetes 1.35 writes kubeadm v1beta3, whose `kubeletExtraArgs`
//!   is a map; from 1.36 it is v1beta4's list of name/value, and this patch must change with the
//!   node image: a unit test holds the two together);
//! - host ports `FACTORY_CLUSTER_HTTP_PORT` / `_HTTPS_PORT` on `FACTORY_BIND_ADDRESS` mapped to
//!   Kong's NodePorts 30080 / 30443;
//! - `<home>/data/cluster` mounted at the node path local-path-provisioner keeps volumes in, so
//!   the workspaces' data lives on the host and survives `cluster down` + `cluster up`;
//! - with `APPGEAR_REGISTRY_MIRROR`, containerd pulls through the mirror first. containerd 2.x
//!   (in the node image) removed the inline `registry.mirrors` configuration, so the mirror is a
//!   `hosts.toml` for every registry (`certs.d/_default`, generated beside the config and mounted
//!   read-only), and `containerdConfigPatches` points containerd's `config_path` at it, as kind's
//!   own registry guide does.
//!
//! The API server stays on 127.0.0.1 whatever the bind address: sharing the suite on the
//! network must not share cluster-admin.

use super::pins;
use super::settings::ClusterSettings;
use crate::core::error::{Error, Result};
use crate::core::owned_files::OwnedFile;
use serde::Serialize;
use std::path::Path;

/// The config, relative to the home.
pub const CONFIG_FILE: &str = "config/kind/cluster.yaml";
/// The registry mirror's containerd host config, relative to the home.
pub const MIRROR_HOSTS_DIR: &str = "config/kind/certs.d/_default";
/// Where the workspaces' volumes live on the host, relative to the home.
pub const STORAGE_DIR: &str = "data/cluster";
/// The node path local-path-provisioner v0.0.37 provisions under (`nodePathMap` of its
/// `local-path-config` ConfigMap); the storage stage keeps ceph-block and ceph-filesystem under it.
pub const NODE_STORAGE_PATH: &str = "/opt/local-path-provisioner";
/// Kong's proxy NodePorts (kong/values-kind.yaml).
pub const KONG_HTTP_NODE_PORT: u16 = 30080;
pub const KONG_HTTPS_NODE_PORT: u16 = 30443;
const CONTAINERD_HOSTS_PATH: &str = "/etc/containerd/certs.d";

// The v1alpha4 types, with kind's field names (pkg/apis/config/v1alpha4/types.go); only the
// fields appgear sets.

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Cluster {
    kind: &'static str,
    api_version: &'static str,
    name: String,
    nodes: Vec<Node>,
    networking: Networking,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    containerd_config_patches: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Networking {
    api_server_address: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Node {
    role: &'static str,
    image: String,
    kubeadm_config_patches: Vec<String>,
    extra_port_mappings: Vec<PortMapping>,
    extra_mounts: Vec<Mount>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PortMapping {
    container_port: u16,
    host_port: u16,
    listen_address: String,
    protocol: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Mount {
    host_path: String,
    container_path: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    read_only: bool,
}

/// Merge patch on kubeadm's InitConfiguration (kubeadm v1beta3): the node label Kong's chart for
/// kind expects, so the proxy runs on the node that has the port mappings.
const INGRESS_READY_PATCH: &str = "kind: InitConfiguration
nodeRegistration:
  kubeletExtraArgs:
    node-labels: \"ingress-ready=true\"
";

/// Points containerd at the hosts.toml folder (kind's registry guide; the default of containerd
/// 2.x in kind ≥ v0.27 node images, set explicitly so the mirror does not hang on a default).
const CONTAINERD_CONFIG_PATH_PATCH: &str = "[plugins.\"io.containerd.grpc.v1.cri\".registry]
  config_path = \"/etc/containerd/certs.d\"
";

/// Check the cluster's host ports: distinct, and not Topology A's (both may run at once).
/// Zero is refused (kind would pick a random port, and the URLs would change every time).
pub fn check_ports(http: u16, https: u16, topology_a: [u16; 2]) -> Result<()> {
    for (key, port) in [
        ("FACTORY_CLUSTER_HTTP_PORT", http),
        ("FACTORY_CLUSTER_HTTPS_PORT", https),
    ] {
        if port == 0 {
            return Err(
                Error::bad_input(format!("{key} is 0; pick a port from 1 to 65535"))
                    .hint(format!("fix it with `appgear config set {key} PORT`")),
            );
        }
        if topology_a.contains(&port) {
            return Err(Error::bad_input(format!(
                "{key} {port} is also one of Topology A's ports (FACTORY_VSCODE_PORT / FACTORY_HTTP_PORT)"
            ))
            .hint(format!("give the cluster its own port: `appgear config set {key} PORT`")));
        }
    }
    if http == https {
        return Err(Error::bad_input(format!(
            "FACTORY_CLUSTER_HTTP_PORT and FACTORY_CLUSTER_HTTPS_PORT are both {http}"
        ))
        .hint("give HTTP and HTTPS different ports, e.g. 9080 and 9443"));
    }
    Ok(())
}

/// The generated files for `home` (absolute), relative to it: the kind config, and the mirror's
/// hosts.toml when a registry mirror is set.
pub fn render(settings: &ClusterSettings, home: &Path) -> Result<Vec<OwnedFile>> {
    check_ports(
        settings.http_port,
        settings.https_port,
        settings.topology_a_ports,
    )?;
    let storage = host_path(home, STORAGE_DIR)?;
    let listen = settings.bind.to_string();
    let port = |container_port, host_port| PortMapping {
        container_port,
        host_port,
        listen_address: listen.clone(),
        protocol: "TCP",
    };
    let mut mounts = vec![Mount {
        host_path: storage,
        container_path: NODE_STORAGE_PATH.to_string(),
        read_only: false,
    }];
    let mut patches = Vec::new();
    let mut files = Vec::new();
    if let Some(m) = &settings.registry_mirror {
        mounts.push(Mount {
            host_path: host_path(home, MIRROR_HOSTS_DIR)?,
            container_path: format!("{CONTAINERD_HOSTS_PATH}/_default"),
            read_only: true,
        });
        patches.push(CONTAINERD_CONFIG_PATH_PATCH.to_string());
        files.push(OwnedFile {
            path: format!("{MIRROR_HOSTS_DIR}/hosts.toml"),
            text: format!(
                "{}\n# containerd pulls every image through APPGEAR_REGISTRY_MIRROR first, then from the image's own registry.\n[host.\"{}\"]\n  capabilities = [\"pull\", \"resolve\"]\n",
                crate::gitops::render::marker(),
                m.url()
            ),
        });
    }
    let cluster = Cluster {
        kind: "Cluster",
        api_version: "kind.x-k8s.io/v1alpha4",
        name: settings.name.as_str().to_string(),
        nodes: vec![Node {
            role: "control-plane",
            image: pins::KIND_NODE.reference(),
            kubeadm_config_patches: vec![INGRESS_READY_PATCH.to_string()],
            extra_port_mappings: vec![
                port(KONG_HTTP_NODE_PORT, settings.http_port),
                port(KONG_HTTPS_NODE_PORT, settings.https_port),
            ],
            extra_mounts: mounts,
        }],
        networking: Networking {
            api_server_address: "127.0.0.1",
        },
        containerd_config_patches: patches,
    };
    let yaml = serde_norway::to_string(&cluster)
        .map_err(|e| Error::internal(format!("cannot write the kind config: {e}")))?;
    files.insert(
        0,
        OwnedFile {
            path: CONFIG_FILE.to_string(),
            text: format!(
                "{}\n# kind {} cluster for appgear's Topology B: `appgear cluster up` creates it from this file.\n{yaml}",
                crate::gitops::render::marker(),
                pins::KIND.version
            ),
        },
    );
    Ok(files)
}

/// `<home>/<rel>` as the absolute path kind hands to Docker. Docker's `--volume` separates its
/// fields with ':' and kind joins options with ',', so a home path holding either is refused.
fn host_path(home: &Path, rel: &str) -> Result<String> {
    if !home.is_absolute() {
        return Err(Error::internal(format!(
            "the home {} is not an absolute path",
            home.display()
        )));
    }
    let p = home.join(rel);
    let s = p.to_str().unwrap_or_default();
    if s.is_empty() || s.contains([':', ',']) || s.chars().any(char::is_control) {
        return Err(Error::bad_input(format!(
            "the home {} cannot be mounted into the kind node: its path has ':', ',' or is not UTF-8",
            home.display()
        ))
        .hint("use a home folder whose path has no ':' or ',' (--home DIR or APPGEAR_HOME)"));
    }
    Ok(s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology_b::settings::{ClusterSettings, RegistryMirror};
    use serde_norway::Value;

    fn settings(mirror: Option<&str>) -> ClusterSettings {
        let mut s = ClusterSettings::from_lookup(|_| None).unwrap();
        s.registry_mirror = mirror.map(|m| RegistryMirror::parse(m).unwrap());
        s
    }

    fn rendered(s: &ClusterSettings) -> (Value, Vec<OwnedFile>) {
        let files = render(s, Path::new("/home/u/appgear")).unwrap();
        let v: Value = serde_norway::from_str(&files[0].text).unwrap();
        (v, files)
    }

    /// The YAML keys of kind's v1alpha4 types (pkg/apis/config/v1alpha4/types.go at
    /// kubernetes-sigs/kind fed26882, the yaml tags of each struct), per level.
    const CLUSTER_KEYS: &[&str] = &[
        "kind",
        "apiVersion",
        "name",
        "nodes",
        "networking",
        "featureGates",
        "runtimeConfig",
        "kubeadmConfigPatches",
        "kubeadmConfigPatchesJSON6902",
        "containerdConfigPatches",
        "containerdConfigPatchesJSON6902",
    ];
    const NODE_KEYS: &[&str] = &[
        "role",
        "image",
        "labels",
        "extraMounts",
        "extraPortMappings",
        "kubeadmConfigPatches",
        "kubeadmConfigPatchesJSON6902",
    ];
    const NETWORKING_KEYS: &[&str] = &[
        "ipFamily",
        "apiServerPort",
        "apiServerAddress",
        "podSubnet",
        "serviceSubnet",
        "disableDefaultCNI",
        "kubeProxyMode",
        "dnsSearch",
    ];
    const MOUNT_KEYS: &[&str] = &[
        "containerPath",
        "hostPath",
        "readOnly",
        "selinuxRelabel",
        "propagation",
    ];
    const PORT_MAPPING_KEYS: &[&str] = &["containerPort", "hostPort", "listenAddress", "protocol"];

    fn keys_within(v: &Value, allowed: &[&str], at: &str) {
        let map = v
            .as_mapping()
            .unwrap_or_else(|| panic!("{at} is not a map"));
        for k in map.keys() {
            let k = k.as_str().unwrap();
            assert!(
                allowed.contains(&k),
                "{at}.{k} is not a field of kind's v1alpha4"
            );
        }
    }

    #[test]
    fn every_key_is_a_v1alpha4_field() {
        let (v, _) = rendered(&settings(Some("registry.local:5000")));
        keys_within(&v, CLUSTER_KEYS, "cluster");
        keys_within(&v["networking"], NETWORKING_KEYS, "networking");
        let nodes = v["nodes"].as_sequence().unwrap();
        assert_eq!(nodes.len(), 1);
        keys_within(&nodes[0], NODE_KEYS, "node");
        for m in nodes[0]["extraMounts"].as_sequence().unwrap() {
            keys_within(m, MOUNT_KEYS, "extraMounts[]");
        }
        for p in nodes[0]["extraPortMappings"].as_sequence().unwrap() {
            keys_within(p, PORT_MAPPING_KEYS, "extraPortMappings[]");
        }
    }

    #[test]
    fn the_node_ports_mounts_and_label() {
        let mut s = settings(None);
        s.bind = "0.0.0.0".parse().unwrap();
        let (v, files) = rendered(&s);
        assert_eq!(files.len(), 1, "no mirror, no hosts.toml");
        assert_eq!(files[0].path, "config/kind/cluster.yaml");
        assert!(files[0].text.starts_with(crate::core::owned_files::MARKER));
        assert_eq!(v["kind"], "Cluster");
        assert_eq!(v["apiVersion"], "kind.x-k8s.io/v1alpha4");
        assert_eq!(v["name"], "appgear");
        assert_eq!(v["networking"]["apiServerAddress"], "127.0.0.1");
        assert!(v.get("containerdConfigPatches").is_none());
        let node = &v["nodes"][0];
        assert_eq!(node["role"], "control-plane");
        assert_eq!(node["image"], pins::KIND_NODE.reference().as_str());
        let ports: Vec<(u64, u64, &str)> = node["extraPortMappings"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["containerPort"].as_u64().unwrap(),
                    p["hostPort"].as_u64().unwrap(),
                    p["listenAddress"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(ports, [(30080, 9080, "0.0.0.0"), (30443, 9443, "0.0.0.0")]);
        assert_eq!(
            node["extraMounts"][0]["hostPath"],
            "/home/u/appgear/data/cluster"
        );
        assert_eq!(node["extraMounts"][0]["containerPath"], NODE_STORAGE_PATH);
        assert!(node["extraMounts"][0].get("readOnly").is_none());
        let patch: Value =
            serde_norway::from_str(node["kubeadmConfigPatches"][0].as_str().unwrap()).unwrap();
        assert_eq!(patch["kind"], "InitConfiguration");
        assert_eq!(
            patch["nodeRegistration"]["kubeletExtraArgs"]["node-labels"],
            "ingress-ready=true"
        );
    }

    #[test]
    fn the_label_patch_matches_the_kubeadm_version_of_the_node_image() {
        // kind writes kubeadm v1beta3 (kubeletExtraArgs as a map) below Kubernetes 1.36 and
        // v1beta4 (a list of name/value) from 1.36 (pkg/cluster/internal/kubeadm/config.go).
        let minor: u32 = pins::KIND_NODE
            .tag
            .trim_start_matches("v1.")
            .split('.')
            .next()
            .and_then(|m| m.parse().ok())
            .unwrap();
        assert!(
            minor < 36,
            "the node image moved to 1.{minor}: write INGRESS_READY_PATCH in kubeadm v1beta4's list form"
        );
    }

    #[test]
    fn a_registry_mirror_is_a_hosts_toml_for_every_registry() {
        let (v, files) = rendered(&settings(Some("http://registry.local:5000")));
        assert_eq!(files.len(), 2);
        assert_eq!(files[1].path, "config/kind/certs.d/_default/hosts.toml");
        assert!(files[1].text.starts_with(crate::core::owned_files::MARKER));
        assert!(files[1].text.contains(
            "[host.\"http://registry.local:5000\"]\n  capabilities = [\"pull\", \"resolve\"]\n"
        ));
        let mount = &v["nodes"][0]["extraMounts"][1];
        assert_eq!(
            mount["hostPath"],
            "/home/u/appgear/config/kind/certs.d/_default"
        );
        assert_eq!(mount["containerPath"], "/etc/containerd/certs.d/_default");
        assert_eq!(mount["readOnly"], true);
        let patch = v["containerdConfigPatches"][0].as_str().unwrap();
        assert!(
            patch.contains(&format!("config_path = \"{CONTAINERD_HOSTS_PATH}\"")),
            "{patch}"
        );
    }

    #[test]
    fn ports_are_checked_against_each_other_and_topology_a() {
        assert!(check_ports(9080, 9443, [8443, 8080]).is_ok());
        let cases = [
            (9080, 9080, "both 9080"),
            (
                8080,
                9443,
                "FACTORY_CLUSTER_HTTP_PORT 8080 is also one of Topology A's ports",
            ),
            (
                9080,
                8443,
                "FACTORY_CLUSTER_HTTPS_PORT 8443 is also one of Topology A's ports",
            ),
            (0, 9443, "FACTORY_CLUSTER_HTTP_PORT is 0"),
        ];
        for (http, https, says) in cases {
            let e = check_ports(http, https, [8443, 8080]).unwrap_err();
            assert_eq!(e.kind, crate::core::error::Kind::BadInput);
            assert!(e.message.contains(says), "{}", e.message);
        }
        let mut s = settings(None);
        s.https_port = 8443;
        assert!(render(&s, Path::new("/h")).is_err());
    }

    #[test]
    fn a_home_path_docker_cannot_mount_is_refused() {
        let e = render(&settings(None), Path::new("/home/u/a:b")).unwrap_err();
        assert!(e.message.contains("cannot be mounted"), "{}", e.message);
        assert!(render(&settings(None), Path::new("relative")).is_err());
    }

    #[test]
    fn same_settings_same_bytes() {
        let a = render(&settings(Some("m.local")), Path::new("/h")).unwrap();
        let b = render(&settings(Some("m.local")), Path::new("/h")).unwrap();
        assert_eq!(a, b);
    }
}

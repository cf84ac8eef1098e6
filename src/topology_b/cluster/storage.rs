//! local-path-provisioner configured for the suite's two storage classes, as a pure change of
//! the upstream `local-path-config` ConfigMap (v0.0.37):
//!
//! - `ceph-filesystem` is truly ReadWriteMany: its volumes live under a `sharedFileSystemPath`,
//!   a folder every node sees, so the provisioner accepts every access mode and sets no node
//!   affinity. On one kind node that folder is `<node path>/shared`, that is
//!   `<home>/data/cluster/shared` on the host, so the data still survives `cluster down`.
//! - `ceph-block` (and upstream's own `local-path`) keep the node path (ReadWriteOnce).
//! - The helper pod that creates and removes volume folders runs the pinned busybox, not
//!   upstream's untagged (that is `latest`) one.
//!
//! The provisioner's rules (README at v0.0.37, "config.json"): `nodePathMap`,
//! `sharedFileSystemPath` and `storageClassConfigs` are mutually exclusive, the top-level
//! `nodePathMap` must be `[]` once `storageClassConfigs` is used, and a class missing from
//! `storageClassConfigs` is refused, so every class the provisioner serves is listed.

use super::super::kind_config::NODE_STORAGE_PATH;
use super::super::manifests::Object;
use super::super::pins;
use crate::core::error::{Error, Result};
use serde_json::{json, Value};

/// The upstream ConfigMap this configures.
pub const CONFIG_MAP: &str = "local-path-config";
/// The classes on the node path (upstream's own, and the suite's RWO one).
pub const NODE_CLASSES: &[&str] = &["local-path", "ceph-block"];
/// The suite's RWX class.
pub const SHARED_CLASS: &str = "ceph-filesystem";
/// Below the node path, so the host folder `data/cluster` keeps it.
pub fn shared_path() -> String {
    format!("{NODE_STORAGE_PATH}/shared")
}

/// Rewrite the provisioner's ConfigMap in `objects` (see the module comment). Fails when the
/// upstream manifest no longer has it in the shape described, rather than applying a
/// provisioner whose volumes would land outside the home.
pub fn local_path(objects: &mut [Object]) -> Result<()> {
    let changed = |what: String| {
        Error::bad_input(format!(
            "local-path-provisioner {}: {what}",
            pins::LOCAL_PATH.version
        ))
        .hint("the add-on's manifest is not the pinned one: check APPGEAR_ADDONS_MIRROR, or remove data/cache/local-path-provisioner to fetch it again")
    };
    let cm = objects
        .iter_mut()
        .find(|o| o.kind == "ConfigMap" && o.name == CONFIG_MAP)
        .ok_or_else(|| changed(format!("no ConfigMap {CONFIG_MAP}")))?;
    let data = cm
        .value
        .get_mut("data")
        .and_then(Value::as_object_mut)
        .ok_or_else(|| changed(format!("ConfigMap {CONFIG_MAP} has no data")))?;

    let config_text = data
        .get("config.json")
        .and_then(Value::as_str)
        .ok_or_else(|| changed("no config.json".into()))?;
    let config = configure(config_text).map_err(changed)?;
    data.insert("config.json".into(), Value::String(config));

    let pod_text = data
        .get("helperPod.yaml")
        .and_then(Value::as_str)
        .ok_or_else(|| changed("no helperPod.yaml".into()))?;
    let pod = pin_helper_image(pod_text).map_err(changed)?;
    data.insert("helperPod.yaml".into(), Value::String(pod));
    Ok(())
}

/// `config.json` with one entry per class: upstream's node path map for the node classes, the
/// shared path for the RWX class; upstream's other settings (timeouts, commands) kept.
fn configure(text: &str) -> std::result::Result<String, String> {
    let mut config: Value =
        serde_json::from_str(text).map_err(|e| format!("config.json is not JSON: {e}"))?;
    let obj = config
        .as_object_mut()
        .ok_or("config.json is not a JSON object")?;
    let node_map = obj
        .get("nodePathMap")
        .cloned()
        .ok_or("config.json has no nodePathMap")?;
    let default_paths = node_map
        .as_array()
        .and_then(|nodes| {
            nodes
                .iter()
                .find(|n| n["node"] == "DEFAULT_PATH_FOR_NON_LISTED_NODES")
        })
        .and_then(|n| n["paths"].as_array())
        .ok_or("config.json has no default node path")?;
    // The node path is where kind mounts `data/cluster`: anything else would keep the
    // workspaces' files inside the node container, lost with it.
    if !default_paths
        .iter()
        .any(|p| p.as_str() == Some(NODE_STORAGE_PATH))
    {
        return Err(format!(
            "its default node path is {default_paths:?}, not {NODE_STORAGE_PATH}"
        ));
    }
    let mut classes = serde_json::Map::new();
    for class in NODE_CLASSES {
        classes.insert((*class).into(), json!({ "nodePathMap": node_map }));
    }
    classes.insert(
        SHARED_CLASS.into(),
        json!({ "sharedFileSystemPath": shared_path() }),
    );
    obj.insert("nodePathMap".into(), json!([]));
    obj.remove("sharedFileSystemPath");
    obj.insert("storageClassConfigs".into(), Value::Object(classes));
    serde_json::to_string_pretty(&config).map_err(|e| e.to_string())
}

/// The helper pod template with its busybox container on the pinned image.
fn pin_helper_image(text: &str) -> std::result::Result<String, String> {
    let pinned = pins::LOCAL_PATH
        .extra_images
        .first()
        .ok_or("no helper image is pinned")?;
    let mut pod: Value =
        serde_norway::from_str(text).map_err(|e| format!("helperPod.yaml is not YAML: {e}"))?;
    let containers = pod["spec"]["containers"]
        .as_array_mut()
        .ok_or("helperPod.yaml has no containers")?;
    let mut replaced = 0;
    for c in containers.iter_mut() {
        let image = c["image"].as_str().unwrap_or_default();
        let repository = image.split(['@', ':']).next().unwrap_or_default();
        let bare = repository.rsplit('/').next().unwrap_or_default();
        if repository == pinned.repository || bare == "busybox" {
            c["image"] = Value::String(pinned.reference());
            replaced += 1;
        }
    }
    if replaced == 0 {
        return Err("helperPod.yaml runs no busybox container".into());
    }
    serde_norway::to_string(&pod).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::super::super::manifests;
    use super::*;

    /// The verbatim upstream manifest at v0.0.37, as the add-ons mirror holds it.
    fn upstream() -> Vec<Object> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/vendor/local-path-provisioner/local-path-storage.yaml"
        );
        let text = std::fs::read_to_string(path).expect("the vendored manifest");
        manifests::split(&text, "local-path-storage.yaml").expect("it splits")
    }

    fn config_map(objects: &[Object]) -> &Value {
        &objects
            .iter()
            .find(|o| o.name == CONFIG_MAP)
            .expect("the ConfigMap")
            .value
    }

    #[test]
    fn the_rwx_class_gets_the_shared_path_and_the_others_the_node_path() {
        let mut objects = upstream();
        let before = objects.len();
        local_path(&mut objects).unwrap();
        assert_eq!(objects.len(), before);
        let cm = config_map(&objects);
        let config: Value =
            serde_json::from_str(cm["data"]["config.json"].as_str().unwrap()).unwrap();
        assert_eq!(config["nodePathMap"], json!([]));
        let classes = config["storageClassConfigs"].as_object().unwrap();
        assert_eq!(
            classes.keys().collect::<Vec<_>>(),
            ["ceph-block", "ceph-filesystem", "local-path"]
        );
        assert_eq!(
            config["storageClassConfigs"]["ceph-filesystem"],
            json!({"sharedFileSystemPath": "/opt/local-path-provisioner/shared"})
        );
        for class in NODE_CLASSES {
            assert_eq!(
                config["storageClassConfigs"][class]["nodePathMap"],
                json!([{"node": "DEFAULT_PATH_FOR_NON_LISTED_NODES", "paths": ["/opt/local-path-provisioner"]}]),
                "{class}"
            );
            // The provisioner refuses a class with both set.
            assert!(config["storageClassConfigs"][class]
                .get("sharedFileSystemPath")
                .is_none());
        }
        // The scripts are upstream's.
        assert!(cm["data"]["setup"]
            .as_str()
            .unwrap()
            .contains("mkdir -m 0777 -p \"$VOL_DIR\""));
    }

    #[test]
    fn the_helper_pod_runs_the_pinned_busybox() {
        let mut objects = upstream();
        let text = config_map(&objects)["data"]["helperPod.yaml"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            text.contains("image: docker.io/library/busybox\n"),
            "{text}"
        );
        local_path(&mut objects).unwrap();
        let pod: Value = serde_norway::from_str(
            config_map(&objects)["data"]["helperPod.yaml"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            pod["spec"]["containers"][0]["image"],
            "docker.io/library/busybox:1.37.0"
        );
        // Everything else of the template is kept.
        assert_eq!(pod["spec"]["priorityClassName"], "system-node-critical");
        assert_eq!(
            pod["spec"]["containers"][0]["imagePullPolicy"],
            "IfNotPresent"
        );
    }

    #[test]
    fn a_manifest_of_another_shape_is_refused_with_its_reason() {
        let mut none: Vec<Object> = upstream()
            .into_iter()
            .filter(|o| o.kind != "ConfigMap")
            .collect();
        let e = local_path(&mut none).unwrap_err();
        assert!(
            e.message.contains("no ConfigMap local-path-config"),
            "{}",
            e.message
        );
        assert!(e.hint.is_some());

        let mut moved = upstream();
        for o in moved.iter_mut().filter(|o| o.name == CONFIG_MAP) {
            let text = o.value["data"]["config.json"]
                .as_str()
                .unwrap()
                .replace("/opt/local-path-provisioner", "/var/local-path-provisioner");
            o.value["data"]["config.json"] = Value::String(text);
        }
        let e = local_path(&mut moved).unwrap_err();
        assert!(
            e.message.contains("not /opt/local-path-provisioner"),
            "{}",
            e.message
        );
    }
}

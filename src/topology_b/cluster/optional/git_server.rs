//! The in-cluster Git server Argo CD syncs the suite from (`--with-argocd`): the rendered tree
//! (`gitops render` for the recorded workspaces) in a ConfigMap, and a pod that makes a
//! repository of it and serves it with `git daemon` (why git:// is said in the script,
//! `assets/addons/git-server/serve.sh`, which the tests run on the host as the pod does).
//! Pure: the objects from the rendered files.

use super::super::super::addons::{LABEL_ADDON, LABEL_VERSION};
use super::super::super::manifests::{self, Object};
use super::super::super::pins;
use crate::core::error::{Error, Result};
use crate::gitops::render::RenderedFile;
use serde_json::{json, Value};

/// The script the pod runs (and the tests run on the host).
pub const SCRIPT: &str = include_str!("../../../../assets/addons/git-server/serve.sh");

pub const NAMESPACE: &str = "argocd";
pub const NAME: &str = "appgear-git";
const TREE: &str = "appgear-git-tree";
const SCRIPTS: &str = "appgear-git-server";
pub const PORT: u16 = 9418;
/// The repository's name under the server's base path, as the script makes it.
pub const REPOSITORY: &str = "appgear-gitops-suites.git";
/// The branch the script commits to.
pub const REVISION: &str = "main";

/// A ConfigMap holds at most 1 MiB (etcd's object limit); the rest of the object needs room.
const TREE_MAX: usize = 900 * 1024;

/// The URL Argo CD clones: the Service's cluster DNS name, the git protocol's default port.
pub fn url() -> String {
    format!("git://{NAME}.{NAMESPACE}.svc.cluster.local/{REPOSITORY}")
}

/// SHA-256 over the tree's paths and texts: the pod template carries it, so a changed tree
/// restarts the server with the new commit; the record keeps it to see the tree changed.
pub fn tree_digest(files: &[RenderedFile]) -> String {
    let mut all = Vec::new();
    for f in files {
        all.extend_from_slice(f.path.as_bytes());
        all.push(0);
        all.extend_from_slice(f.text.as_bytes());
        all.push(0);
    }
    crate::core::digest::sha256_hex(&all)
}

fn labels() -> Value {
    json!({
        "app.kubernetes.io/name": NAME,
        "app.kubernetes.io/part-of": "appgear",
        LABEL_ADDON: pins::GIT_SERVER.name,
        LABEL_VERSION: pins::GIT_SERVER.version,
    })
}

fn object(value: Value, origin: &str) -> Result<Object> {
    let text = serde_json::to_string(&value).map_err(|e| Error::internal(e.to_string()))?;
    let mut o = manifests::split(&text, origin)?;
    o.pop()
        .ok_or_else(|| Error::internal(format!("{origin}: no object")))
}

/// The server's objects for the rendered `files`: the tree and the script as ConfigMaps, the
/// Deployment and its Service, in namespace `argocd`.
pub fn objects(files: &[RenderedFile]) -> Result<Vec<Object>> {
    let size: usize = files.iter().map(|f| f.path.len() + f.text.len()).sum();
    if size > TREE_MAX {
        return Err(Error::bad_input(format!(
            "the rendered suite is {} KiB, more than the in-cluster Git server's ConfigMap holds ({} KiB)",
            size / 1024,
            TREE_MAX / 1024
        ))
        .hint("remove workspaces with `appgear workspace remove ID`, or run `cluster up` without --with-argocd"));
    }
    // ConfigMap keys cannot hold '/': each file gets a numbered key, and the volume's items
    // put it back at its path.
    let mut data = serde_json::Map::new();
    let mut items = Vec::new();
    for (i, f) in files.iter().enumerate() {
        let key = format!("f{i:04}");
        data.insert(key.clone(), json!(f.text));
        items.push(json!({"key": key, "path": f.path}));
    }
    let digest = tree_digest(files);
    let origin = "appgear's in-cluster Git server";
    let tree = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": TREE, "namespace": NAMESPACE, "labels": labels()},
        "data": data,
    });
    let scripts = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": SCRIPTS, "namespace": NAMESPACE, "labels": labels()},
        "data": {"serve.sh": SCRIPT},
    });
    let selector = json!({"app.kubernetes.io/name": NAME});
    let deployment = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": NAME, "namespace": NAMESPACE, "labels": labels()},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {
                    "labels": selector,
                    "annotations": {"appgear.io/tree-sha256": digest},
                },
                "spec": {
                    "automountServiceAccountToken": false,
                    "securityContext": {
                        "runAsNonRoot": true, "runAsUser": 65532, "runAsGroup": 65532,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [{
                        "name": "git",
                        "image": pins::GIT_SERVER_IMAGE.reference(),
                        "imagePullPolicy": "IfNotPresent",
                        "command": ["sh", "/scripts/serve.sh"],
                        "env": [
                            {"name": "TREE", "value": "/tree"},
                            {"name": "SERVE", "value": "/srv/git"},
                            {"name": "PORT", "value": PORT.to_string()},
                            // git reads (and may write) the user's config under HOME.
                            {"name": "HOME", "value": "/srv"},
                        ],
                        "ports": [{"name": "git", "containerPort": PORT}],
                        // Listening means the repository is made: the script serves last.
                        "readinessProbe": {"tcpSocket": {"port": "git"}, "periodSeconds": 2},
                        "resources": {
                            "requests": {"cpu": "10m", "memory": "16Mi"},
                            "limits": {"memory": "128Mi"},
                        },
                        "securityContext": super::locked_down(),
                        "volumeMounts": [
                            {"name": "tree", "mountPath": "/tree", "readOnly": true},
                            {"name": "scripts", "mountPath": "/scripts", "readOnly": true},
                            {"name": "srv", "mountPath": "/srv"},
                        ],
                    }],
                    "volumes": [
                        {"name": "tree", "configMap": {"name": TREE, "items": items}},
                        {"name": "scripts", "configMap": {"name": SCRIPTS}},
                        {"name": "srv", "emptyDir": {"sizeLimit": "64Mi"}},
                    ],
                },
            },
        },
    });
    let service = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": NAME, "namespace": NAMESPACE, "labels": labels()},
        "spec": {
            "selector": selector,
            "ports": [{"name": "git", "port": PORT, "targetPort": "git"}],
        },
    });
    [tree, scripts, deployment, service]
        .into_iter()
        .map(|v| object(v, origin))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files() -> Vec<RenderedFile> {
        vec![
            RenderedFile {
                path: "apps/factory/kustomization.yaml".into(),
                text: "resources: []\n".into(),
            },
            RenderedFile {
                path: "clusters/c/apps-suites.yaml".into(),
                text: "kind: Application\n".into(),
            },
        ]
    }

    #[test]
    fn every_file_is_in_the_tree_at_its_path_and_the_pod_follows_the_tree() {
        let o = objects(&files()).unwrap();
        let kinds: Vec<String> = o.iter().map(|o| o.describe()).collect();
        assert_eq!(
            kinds,
            [
                "ConfigMap argocd/appgear-git-tree",
                "ConfigMap argocd/appgear-git-server",
                "Deployment argocd/appgear-git",
                "Service argocd/appgear-git"
            ]
        );
        assert_eq!(o[0].value["data"]["f0001"], "kind: Application\n");
        let items = &o[2].value["spec"]["template"]["spec"]["volumes"][0]["configMap"]["items"];
        assert_eq!(items[1]["path"], "clusters/c/apps-suites.yaml");
        assert_eq!(o[1].value["data"]["serve.sh"], SCRIPT);
        assert_eq!(
            manifests::images(&o),
            vec![pins::GIT_SERVER_IMAGE.reference()]
        );
        let before = o[2].value["spec"]["template"]["metadata"]["annotations"].clone();
        let mut changed = files();
        changed[0].text.push_str("# one more line\n");
        let after = objects(&changed).unwrap()[2].value["spec"]["template"]["metadata"]
            ["annotations"]
            .clone();
        assert_ne!(before, after, "a changed tree restarts the server");
    }

    #[test]
    fn a_tree_too_large_for_a_configmap_is_refused_with_the_way_out() {
        let big = vec![RenderedFile {
            path: "a.yaml".into(),
            text: "x".repeat(TREE_MAX + 1),
        }];
        let e = objects(&big).unwrap_err();
        assert!(e.message.contains("KiB"), "{}", e.message);
        assert!(
            url().starts_with("git://appgear-git.argocd.svc"),
            "{}",
            url()
        );
    }
}

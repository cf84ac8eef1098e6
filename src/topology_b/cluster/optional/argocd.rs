//! Argo CD for the suite (`--with-argocd`), the pure part: the core install made ready to apply
//! (its release file names no namespace: it is meant for `kubectl apply -n argocd`), the
//! `default` AppProject, and the suite's root Application from the rendered tree, pointed at
//! the in-cluster Git server.

use super::super::super::addons;
use super::super::super::manifests::{self, ClusterKinds, Object, Phase};
use super::super::render::SUITE_CLUSTER;
use super::git_server;
use crate::core::error::{Error, Result};
use crate::gitops::render::RenderedFile;
use serde_json::{json, Value};

pub const NAMESPACE: &str = "argocd";

/// The core install's objects with their namespace set, the namespace itself, and the
/// `default` project. The core install runs no API server, and only Argo CD's API server
/// creates `default` on start (`initializeDefaultProject`, server/server.go of v3.5.1), so
/// appgear applies the same project itself.
pub fn core(mut objects: Vec<Object>) -> Result<Vec<Object>> {
    let mut cluster = ClusterKinds::default();
    cluster.learn(&objects);
    for o in objects.iter_mut() {
        if manifests::phase(o, &cluster) != Phase::Namespaced || o.namespace.is_some() {
            continue;
        }
        o.namespace = Some(NAMESPACE.into());
        if let Some(meta) = o.value.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.insert("namespace".into(), json!(NAMESPACE));
        }
    }
    if !objects
        .iter()
        .any(|o| o.kind == "Namespace" && o.group().is_empty() && o.name == NAMESPACE)
    {
        objects.insert(
            0,
            addons::namespace_object(NAMESPACE, "argocd core-install"),
        );
    }
    let project = json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "AppProject",
        "metadata": {"name": "default", "namespace": NAMESPACE},
        "spec": {
            "sourceRepos": ["*"],
            "destinations": [{"server": "*", "namespace": "*"}],
            "clusterResourceWhitelist": [{"group": "*", "kind": "*"}],
        },
    });
    let text = serde_json::to_string(&project).map_err(|e| Error::internal(e.to_string()))?;
    objects.extend(manifests::split(&text, "appgear's default AppProject")?);
    Ok(objects)
}

/// The suite's root Application(s), as `gitops render` writes them for the local cluster
/// (`clusters/<cluster>/`), with the tree rendered for the in-cluster Git server's URL.
pub fn root_applications(files: &[RenderedFile]) -> Result<Vec<Object>> {
    let prefix = format!("clusters/{SUITE_CLUSTER}/");
    let mut out = Vec::new();
    for f in files.iter().filter(|f| f.path.starts_with(&prefix)) {
        out.extend(manifests::split(&f.text, &f.path)?);
    }
    let url = git_server::url();
    let apps: Vec<Object> = out
        .into_iter()
        .filter(|o| o.group() == "argoproj.io" && o.kind == "Application")
        .collect();
    if apps.is_empty() {
        return Err(
            Error::internal(format!("the render has no Application under {prefix}"))
                .hint("this is a bug in appgear's templates; please report it"),
        );
    }
    for a in &apps {
        let repo = a
            .value
            .pointer("/spec/source/repoURL")
            .and_then(Value::as_str);
        if repo != Some(url.as_str()) {
            return Err(Error::internal(format!(
                "{} syncs from {repo:?}, not the in-cluster Git server {url}",
                a.describe()
            ))
            .hint("render the tree with the Git server's URL (cluster::optional)"));
        }
    }
    Ok(apps)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gitops::model::{Suite, WorkspaceEntry};

    fn tree(repo: &str) -> Vec<RenderedFile> {
        let s = Suite::new(
            SUITE_CLUSTER,
            repo,
            git_server::REVISION,
            "factory.dev.appgear.local",
            &[WorkspaceEntry {
                id: "demo".into(),
                tenant: "acme".into(),
            }],
        )
        .unwrap();
        crate::gitops::render::render(&s).unwrap()
    }

    #[test]
    fn the_root_application_syncs_from_the_in_cluster_git_server() {
        let apps = root_applications(&tree(&git_server::url())).unwrap();
        assert_eq!(apps.len(), 1);
        assert_eq!(apps[0].describe(), "Application argocd/suite-factory");
        assert_eq!(apps[0].value["spec"]["source"]["targetRevision"], "main");
        let e = root_applications(&tree("https://git.example.com/x.git")).unwrap_err();
        assert!(
            e.message.contains("not the in-cluster Git server"),
            "{}",
            e.message
        );
    }

    #[test]
    fn the_core_install_gets_its_namespace_and_the_default_project() {
        let text = "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: argocd-application-controller}\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: argocd-application-controller}\n";
        let o = core(manifests::split(text, "core-install.yaml").unwrap()).unwrap();
        let d: Vec<String> = o.iter().map(|o| o.describe()).collect();
        assert_eq!(
            d,
            [
                "Namespace argocd",
                "ServiceAccount argocd/argocd-application-controller",
                "ClusterRole argocd-application-controller",
                "AppProject argocd/default"
            ]
        );
        assert_eq!(o[1].value["metadata"]["namespace"], "argocd");
    }
}

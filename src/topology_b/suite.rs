//! The Factory suite as objects for the local cluster, from exactly what `gitops render` writes
//! (one source of truth): the tree's kustomizations are followed from `apps/factory/` the way
//! `kubectl kustomize` builds them. appgear's templates use two kustomize fields only,
//! `resources` (files and folders) and `namespace`; any other field is refused rather than
//! ignored, so a template that starts using one fails a test here instead of applying
//! something else than Argo CD would.

use super::manifests::{self, ClusterKinds, Object};
use crate::core::error::{Error, Result};
use crate::gitops::model::Suite;
use crate::gitops::render::{self, RenderedFile};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// The root the local cluster applies: the suite, without the Argo CD registration in
/// `clusters/` (no Argo CD runs unless `--with-argocd`).
pub const ROOT: &str = "apps/factory";

/// Airbyte's folder: its Argo CD Application installs the chart, so it is applied only with the
/// full profile (by the optional stage).
const AIRBYTE: &str = "apps/factory/airbyte/";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Kustomization {
    #[serde(rename = "apiVersion")]
    _api_version: String,
    #[serde(rename = "kind")]
    _kind: String,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    resources: Vec<String>,
}

/// Every object of the rendered suite, namespaces set as kustomize sets them; Airbyte's only
/// with `airbyte`.
pub fn objects(suite: &Suite, airbyte: bool) -> Result<Vec<Object>> {
    let files = render::render(suite)?;
    from_files(&files, airbyte)
}

/// As `objects`, from rendered files (tests give them directly).
pub fn from_files(files: &[RenderedFile], airbyte: bool) -> Result<Vec<Object>> {
    let by_path: BTreeMap<&str, &str> = files
        .iter()
        .map(|f| (f.path.as_str(), f.text.as_str()))
        .collect();
    let mut out = Vec::new();
    build(&by_path, ROOT, None, airbyte, &mut out, 0)?;
    Ok(out)
}

/// The rendered tree without Airbyte: its folder's files dropped and its entry in the parent
/// kustomization (`apps/factory/kustomization.yaml`) removed, so a tree served to Argo CD
/// installs Airbyte only when it is asked for.
pub fn without_airbyte(files: Vec<RenderedFile>) -> Vec<RenderedFile> {
    let (parent, folder) = AIRBYTE
        .trim_end_matches('/')
        .rsplit_once('/')
        .unwrap_or((ROOT, "airbyte"));
    let parent_kustomization = format!("{parent}/kustomization.yaml");
    files
        .into_iter()
        .filter(|f| !f.path.starts_with(AIRBYTE))
        .map(|mut f| {
            if f.path == parent_kustomization {
                f.text = f
                    .text
                    .lines()
                    .filter(|l| {
                        let entry = l.trim().trim_start_matches('-').trim();
                        !(l.trim_start().starts_with('-') && entry.trim_end_matches('/') == folder)
                    })
                    .map(|l| format!("{l}\n"))
                    .collect();
            }
            f
        })
        .collect()
}

fn build(
    files: &BTreeMap<&str, &str>,
    dir: &str,
    outer_namespace: Option<&str>,
    airbyte: bool,
    out: &mut Vec<Object>,
    depth: usize,
) -> Result<()> {
    let path = format!("{dir}/kustomization.yaml");
    let bug = |m: String| {
        Error::internal(m).hint("this is a bug in appgear's templates; please report it")
    };
    if depth > 8 {
        return Err(bug(format!("{path}: kustomizations nested too deep")));
    }
    let text = files
        .get(path.as_str())
        .ok_or_else(|| bug(format!("{path} is not rendered")))?;
    let k: Kustomization = serde_norway::from_str(text).map_err(|e| bug(format!("{path}: {e}")))?;
    // An outer kustomization's namespace wins over an inner one's, as in kustomize.
    let namespace = outer_namespace.or(k.namespace.as_deref());
    let cluster = ClusterKinds::default();
    for r in &k.resources {
        let target = format!("{dir}/{}", r.trim_end_matches('/'));
        if !airbyte && format!("{target}/").starts_with(AIRBYTE) {
            continue;
        }
        if r.ends_with('/') {
            build(files, &target, namespace, airbyte, out, depth + 1)?;
            continue;
        }
        let text = files
            .get(target.as_str())
            .ok_or_else(|| bug(format!("{path} lists {r}, which is not rendered")))?;
        for mut o in manifests::split(text, &target)? {
            let cluster_scoped = manifests::phase(&o, &cluster) != manifests::Phase::Namespaced
                && manifests::phase(&o, &cluster) != manifests::Phase::Registrations;
            if let (Some(ns), false) = (namespace, cluster_scoped) {
                o.namespace = Some(ns.to_string());
                if let Some(meta) = o.value.get_mut("metadata").and_then(Value::as_object_mut) {
                    meta.insert("namespace".into(), Value::String(ns.to_string()));
                }
            }
            out.push(o);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gitops::model::WorkspaceEntry;

    fn suite(ids: &[(&str, &str)]) -> Suite {
        let entries: Vec<WorkspaceEntry> = ids
            .iter()
            .map(|(i, t)| WorkspaceEntry {
                id: i.to_string(),
                tenant: t.to_string(),
            })
            .collect();
        Suite::new(
            "ag-local-core-dev",
            "https://git.example.com/s.git",
            "main",
            "factory.dev.appgear.local",
            &entries,
        )
        .unwrap()
    }

    #[test]
    fn every_workspace_object_lands_in_its_namespace() {
        let objects = objects(&suite(&[("demo", "acme"), ("team-b", "acme")]), false).unwrap();
        let deployments: Vec<String> = objects
            .iter()
            .filter(|o| o.kind == "Deployment")
            .map(|o| o.describe())
            .collect();
        assert!(
            deployments.contains(&"Deployment ws-demo-factory/addon-factory-vscode".to_string()),
            "{deployments:?}"
        );
        assert!(
            deployments.contains(&"Deployment ws-team-b-factory/addon-factory-vscode".to_string()),
            "{deployments:?}"
        );
        for o in &objects {
            if o.kind == "Namespace" {
                assert!(o.namespace.is_none());
            } else {
                let ns = o
                    .namespace
                    .as_deref()
                    .unwrap_or_else(|| panic!("{} has no namespace", o.describe()));
                assert_eq!(o.value["metadata"]["namespace"], ns);
                assert!(ns.starts_with("ws-"), "{}", o.describe());
            }
            assert!(!o.origin.contains("airbyte"), "{}", o.origin);
        }
    }

    #[test]
    fn airbyte_comes_with_the_full_profile_only() {
        let with = objects(&suite(&[("demo", "acme")]), true).unwrap();
        assert!(with.iter().any(|o| o.origin.starts_with(AIRBYTE)));
    }

    #[test]
    fn the_tree_without_airbyte_has_neither_its_files_nor_its_entry() {
        let files = render::render(&suite(&[("demo", "acme")])).unwrap();
        assert!(files.iter().any(|f| f.path.starts_with(AIRBYTE)));
        let without = without_airbyte(files.clone());
        assert!(!without.iter().any(|f| f.path.starts_with(AIRBYTE)));
        let parent = without
            .iter()
            .find(|f| f.path == "apps/factory/kustomization.yaml")
            .unwrap();
        assert!(!parent.text.contains("- airbyte/"), "{}", parent.text);
        // Everything else is as rendered: the walk with Airbyte asked finds the same objects as
        // the full tree's walk without it (so no entry points at a missing file).
        let names = |v: Vec<Object>| v.iter().map(|o| o.describe()).collect::<Vec<_>>();
        assert_eq!(
            names(from_files(&without, true).unwrap()),
            names(from_files(&files, false).unwrap())
        );
        let airbyte_files = files.iter().filter(|f| f.path.starts_with(AIRBYTE)).count();
        assert_eq!(files.len() - without.len(), airbyte_files);
    }

    #[test]
    fn a_kustomize_field_appgear_does_not_follow_is_refused() {
        let files = vec![RenderedFile {
            path: "apps/factory/kustomization.yaml".into(),
            text: "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\npatches: []\n"
                .into(),
        }];
        let e = from_files(&files, false).unwrap_err();
        assert!(e.message.contains("patches"), "{}", e.message);
    }
}

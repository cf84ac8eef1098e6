//! What `cluster up` finished, recorded in the cluster itself (ConfigMap `appgear-stages` in
//! `kube-system`), so the next plan can say `done`: a stage's pins are written only after the
//! stage applied everything and its waits passed. Labels on the applied objects could not say
//! that: an interrupted stage leaves labelled objects behind (a Deployment without the webhooks
//! registered after it), which would read as installed. The record lives and dies with the
//! cluster, so a recreated cluster starts with none.

use super::super::api::apply::Applier;
use super::super::api::call::api_for;
use super::super::api::resources::Resources;
use super::super::manifests::Object;
use super::super::stages::Observed;
use crate::core::error::Result;
use serde_json::json;
use std::collections::BTreeMap;

pub const NAMESPACE: &str = "kube-system";
pub const NAME: &str = "appgear-stages";
const SUITE: &str = "suite";
const SUITE_IMAGE: &str = "suite-image";
const WORKSPACES: &str = "workspaces";
/// The digest of the tree the in-cluster Git server holds (`--with-argocd`).
pub const GIT_TREE: &str = "git-server-tree";

/// The record's data as the plan reads it: pin name → version, and the suite's entries.
pub fn observed(data: &BTreeMap<String, String>, seen: &mut Observed) {
    for (k, v) in data {
        match k.as_str() {
            SUITE => seen.suite_version = Some(v.clone()),
            SUITE_IMAGE => seen.suite_image = Some(v.clone()),
            WORKSPACES => {
                seen.workspaces = v
                    .split(',')
                    .filter(|w| !w.is_empty())
                    .map(String::from)
                    .collect()
            }
            _ => {
                seen.addons.insert(k.clone(), v.clone());
            }
        }
    }
}

/// The entries a finished stage adds: its pins at their versions, or the suite's.
pub fn entries_for_pins(pins: &[&str]) -> Vec<(String, String)> {
    pins.iter()
        .filter_map(|n| super::super::pins::pin(n))
        .map(|p| (p.name.to_string(), p.version.to_string()))
        .collect()
}

pub fn entries_for_suite(version: &str, workspaces: &[String]) -> Vec<(String, String)> {
    vec![
        (SUITE.into(), version.into()),
        (WORKSPACES.into(), workspaces.join(",")),
    ]
}

/// The tree the Git server was given, so a re-run sees when the rendered tree changed.
pub fn entries_for_git_tree(digest: &str) -> Vec<(String, String)> {
    vec![(GIT_TREE.into(), digest.into())]
}

pub fn entries_for_image(version: &str) -> Vec<(String, String)> {
    vec![(SUITE_IMAGE.into(), version.into())]
}

/// The record's data; empty when there is none (or the API does not answer: the plan then
/// runs every stage, which is safe, each being idempotent).
pub async fn read(client: &kube::Client) -> BTreeMap<String, String> {
    let Some(r) = Resources::default().find("v1", "ConfigMap") else {
        return BTreeMap::new();
    };
    match api_for(client, &r, Some(NAMESPACE)).get_opt(NAME).await {
        Ok(Some(cm)) => serde_json::to_value(&cm)
            .ok()
            .and_then(|v| v.get("data").cloned())
            .and_then(|d| serde_json::from_value(d).ok())
            .unwrap_or_default(),
        _ => BTreeMap::new(),
    }
}

/// Add `entries` to the record. The whole data is applied each time: server-side apply removes
/// the keys a manager stops sending.
pub async fn mark(
    client: &kube::Client,
    applier: &mut Applier,
    entries: Vec<(String, String)>,
) -> Result<()> {
    let mut data = read(client).await;
    data.extend(entries);
    let object = Object {
        api_version: "v1".into(),
        kind: "ConfigMap".into(),
        name: NAME.into(),
        namespace: Some(NAMESPACE.into()),
        value: json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": NAME, "namespace": NAMESPACE},
            "data": data,
        }),
        origin: "appgear's stage record".into(),
    };
    let objects = vec![object];
    applier.apply(objects, &|_| {}).await.map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_reads_back_as_the_plan_expects() {
        let mut data = BTreeMap::new();
        for (k, v) in entries_for_pins(&["keda", "keda-http-add-on"])
            .into_iter()
            .chain(entries_for_suite(
                "0.1.0",
                &["demo".into(), "team-b".into()],
            ))
            .chain(entries_for_image("0.1.0"))
        {
            data.insert(k, v);
        }
        let mut seen = Observed::default();
        observed(&data, &mut seen);
        assert_eq!(seen.addons.get("keda").map(String::as_str), Some("v2.20.2"));
        assert_eq!(
            seen.addons.get("keda-http-add-on").map(String::as_str),
            Some("v0.15.0")
        );
        assert_eq!(seen.suite_version.as_deref(), Some("0.1.0"));
        assert_eq!(seen.suite_image.as_deref(), Some("0.1.0"));
        assert_eq!(
            seen.workspaces
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
            ["demo", "team-b"]
        );
    }
}

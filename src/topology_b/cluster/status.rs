//! `cluster status`: the cluster, each stage's add-on as installed (its version label) and each
//! workload's health, read from the API.

use super::super::addons::{LABEL_ADDON, LABEL_VERSION};
use super::super::api::call::api_for;
use super::super::api::resources::Resources;
use super::super::stages::ClusterState;
use super::super::waits::{self, Readiness};
use super::context::{self, Context};
use crate::core::error::Result;
use crate::topology_a::home::Home;
use kube::api::ListParams;
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Workload {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    /// The add-on it belongs to (its label), or the workspace namespace.
    pub part: String,
    pub ready: bool,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub cluster: String,
    pub state: String,
    pub node_image: Option<String>,
    pub kubeconfig: String,
    /// Add-on → version, from the labels on its workloads.
    pub addons: std::collections::BTreeMap<String, String>,
    pub workloads: Vec<Workload>,
    pub workspaces: Vec<String>,
}

impl Status {
    pub fn healthy(&self) -> bool {
        self.state == "running" && self.workloads.iter().all(|w| w.ready)
    }
}

pub async fn status(home: &Home) -> Result<Status> {
    let ctx = Context::load(home)?;
    let state = context::observe(&ctx).await?;
    let mut s = Status {
        cluster: ctx.name().to_string(),
        state: match &state {
            ClusterState::Absent => "absent",
            ClusterState::Stopped => "stopped",
            ClusterState::Running { .. } => "running",
        }
        .to_string(),
        node_image: match &state {
            ClusterState::Running { node_image } => Some(node_image.clone()),
            _ => None,
        },
        kubeconfig: ctx.kubeconfig().display().to_string(),
        addons: Default::default(),
        workloads: Vec::new(),
        workspaces: ctx
            .workspaces
            .list()
            .iter()
            .map(|w| w.id.namespace())
            .collect(),
    };
    if matches!(state, ClusterState::Running { .. }) {
        let client = ctx.client().await?;
        read_workloads(&client, &mut s).await?;
    }
    Ok(s)
}

/// Every Deployment, StatefulSet and DaemonSet appgear applied (add-on label) or in a workspace
/// namespace, with its readiness.
pub async fn read_workloads(client: &kube::Client, s: &mut Status) -> Result<()> {
    let res = Resources::default();
    let mut addons = std::collections::BTreeMap::new();
    for kind in ["Deployment", "StatefulSet", "DaemonSet"] {
        let Some(r) = res.find("apps/v1", kind) else {
            continue;
        };
        let list = api_for(client, &r, None)
            .list(&ListParams::default())
            .await
            .map_err(|e| {
                crate::core::error::Error::not_ready(format!(
                    "the cluster's API did not answer: {e}"
                ))
                .hint("run `appgear cluster up`")
            })?;
        for item in list.items {
            let v = serde_json::to_value(&item).unwrap_or_default();
            let labels = &v["metadata"]["labels"];
            let ns = item.metadata.namespace.clone().unwrap_or_default();
            let part = match labels[LABEL_ADDON].as_str() {
                Some(a) => {
                    addons.insert(
                        a.to_string(),
                        labels[LABEL_VERSION].as_str().unwrap_or("").to_string(),
                    );
                    a.to_string()
                }
                None if s.workspaces.contains(&ns) => ns.clone(),
                None => continue,
            };
            let mut v = v;
            v["apiVersion"] = "apps/v1".into();
            v["kind"] = kind.into();
            let (ready, detail) = match waits::readiness(&v) {
                Some(Readiness::Ready) | None => (true, "ready".to_string()),
                Some(Readiness::Waiting(w)) => (false, w),
                Some(Readiness::Failed(f)) => (false, format!("failed: {f}")),
            };
            s.workloads.push(Workload {
                kind: kind.to_string(),
                namespace: ns,
                name: item.metadata.name.clone().unwrap_or_default(),
                part,
                ready,
                detail,
            });
        }
    }
    s.addons = addons;
    Ok(())
}

//! `cluster status`: the cluster, each stage's state (from `up`'s record in the cluster and the
//! add-ons' version labels) and each workload's health, read from the API.

use super::super::addons::{LABEL_ADDON, LABEL_VERSION};
use super::super::api::resources::Resources;
use super::super::pins;
use super::super::stages::ClusterState;
use super::super::stages::{StageId, STAGES};
use super::super::waits::{self, Readiness};
use super::context::{self, Context};
use super::record;
use crate::core::error::Result;
use crate::topology_a::home::Home;
use kube::api::ListParams;
use serde::Serialize;
use std::collections::BTreeMap;

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

/// A stage as the cluster shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StageState {
    /// Finished at the pinned version (recorded by `up`).
    Done,
    /// Something of it is there, not all at the pinned version: an interrupted or older `up`.
    Partial,
    /// Nothing of it is there.
    Missing,
    /// Optional parts none of which is installed.
    None,
    /// The cluster's node is stopped: its API cannot say.
    Unknown,
}

impl StageState {
    pub fn word(self) -> &'static str {
        match self {
            StageState::Done => "done",
            StageState::Partial => "partial",
            StageState::Missing => "missing",
            StageState::None => "none",
            StageState::Unknown => "unknown",
        }
    }
}

/// One pin of a stage: the version pinned, the one `up` recorded as finished, and the one the
/// add-on's objects are labelled with (labels are written before the stage finishes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PinState {
    pub name: String,
    pub pinned: String,
    pub installed: Option<String>,
    pub labelled: Option<String>,
}

impl PinState {
    /// `keda v2.20.2`, `keda v2.19.0 (pinned v2.20.2)`, `keda not finished (labelled v2.20.2)`,
    /// `keda not installed (pinned v2.20.2)`.
    pub fn text(&self) -> String {
        match (&self.installed, &self.labelled) {
            (Some(i), _) if *i == self.pinned => format!("{} {i}", self.name),
            (Some(i), _) => format!("{} {i} (pinned {})", self.name, self.pinned),
            (None, Some(l)) => format!("{} not finished (labelled {l})", self.name),
            (None, None) => format!("{} not installed (pinned {})", self.name, self.pinned),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StageRow {
    pub number: u8,
    pub stage: String,
    pub state: StageState,
    pub pins: Vec<PinState>,
    /// What the state rests on, when pins do not say it (the node, the suite's version).
    pub detail: String,
}

impl StageRow {
    pub fn cells(&self) -> Vec<String> {
        let mut what: Vec<String> = self.pins.iter().map(PinState::text).collect();
        if !self.detail.is_empty() {
            what.push(self.detail.clone());
        }
        vec![
            format!("{:>2} {}", self.number, self.stage),
            self.state.word().to_string(),
            what.join(", "),
        ]
    }
}

/// The stages of `cluster up` that leave something in the cluster, as it shows them: from the
/// cluster's state, `up`'s record (`kube-system/appgear-stages`: pin → version, `suite`,
/// `suite-image`) and the add-ons' version labels. Pure.
/// Each pin of a stage: pinned, recorded as installed, and labelled on the objects.
fn pin_states(
    names: &[&str],
    record: &BTreeMap<String, String>,
    labels: &BTreeMap<String, String>,
) -> Vec<PinState> {
    names
        .iter()
        .filter_map(|n| pins::pin(n))
        .map(|p| PinState {
            name: p.name.to_string(),
            pinned: p.version.to_string(),
            installed: record.get(p.name).cloned(),
            labelled: labels.get(p.name).cloned(),
        })
        .collect()
}

pub fn stage_rows(
    state: &ClusterState,
    record: &BTreeMap<String, String>,
    labels: &BTreeMap<String, String>,
    version: &str,
) -> Vec<StageRow> {
    let mut rows = Vec::new();
    for stage in STAGES {
        let (state, pins, detail) = match stage.id {
            // Checks of the machine and of what answers, not something the cluster holds.
            StageId::Preflight | StageId::Smoke => continue,
            StageId::Cluster => {
                let pinned = pins::KIND_NODE.tagged();
                match state {
                    ClusterState::Absent => (StageState::Missing, vec![], "no cluster".into()),
                    ClusterState::Stopped => {
                        (StageState::Partial, vec![], "its node is stopped".into())
                    }
                    ClusterState::Running { node_image } => {
                        let on_pin = node_image.split('@').next() == Some(pinned.as_str());
                        let detail = format!("node {node_image}");
                        if on_pin {
                            (StageState::Done, vec![], detail)
                        } else {
                            (
                                StageState::Partial,
                                vec![],
                                format!("{detail} (pinned {pinned})"),
                            )
                        }
                    }
                }
            }
            // The API of a stopped node cannot say; an absent cluster has nothing (the record
            // and labels are empty, so the rules below say missing, pin by pin).
            _ if matches!(state, ClusterState::Stopped) => {
                (StageState::Unknown, vec![], String::new())
            }
            StageId::SuiteImage | StageId::Suite => {
                let key = if stage.id == StageId::Suite {
                    "suite"
                } else {
                    "suite-image"
                };
                // The suite's stage also installs Vault first: shown as its pin, while the
                // stage's state stays the suite's own (a cluster made `--without-vault` is not
                // partial for lacking it).
                let pins = pin_states(stage.pins, record, labels);
                match record.get(key) {
                    Some(v) if v == version => (StageState::Done, pins, format!("appgear {v}")),
                    Some(v) => (
                        StageState::Partial,
                        pins,
                        format!("appgear {v} (this is {version})"),
                    ),
                    None => (StageState::Missing, pins, String::new()),
                }
            }
            _ => {
                let pins = pin_states(stage.pins, record, labels);
                let done = pins
                    .iter()
                    .filter(|p| p.installed.as_deref() == Some(p.pinned.as_str()))
                    .count();
                let any = pins
                    .iter()
                    .any(|p| p.installed.is_some() || p.labelled.is_some());
                if stage.id == StageId::Optional {
                    // Only what is there: the parts not asked for are not missing.
                    let there: Vec<PinState> = pins
                        .into_iter()
                        .filter(|p| p.installed.is_some() || p.labelled.is_some())
                        .collect();
                    let state = if there.is_empty() {
                        StageState::None
                    } else if there
                        .iter()
                        .all(|p| p.installed.as_deref() == Some(p.pinned.as_str()))
                    {
                        StageState::Done
                    } else {
                        StageState::Partial
                    };
                    (state, there, String::new())
                } else if !pins.is_empty() && done == pins.len() {
                    (StageState::Done, pins, String::new())
                } else if any {
                    (StageState::Partial, pins, String::new())
                } else {
                    (StageState::Missing, pins, String::new())
                }
            }
        };
        rows.push(StageRow {
            number: stage.number,
            stage: stage.name.to_string(),
            state,
            pins,
            detail,
        });
    }
    rows
}

#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub cluster: String,
    pub state: String,
    pub node_image: Option<String>,
    pub kubeconfig: String,
    /// Add-on → version, from the labels on its workloads.
    pub addons: BTreeMap<String, String>,
    /// Each stage of `cluster up` as the cluster shows it.
    pub stages: Vec<StageRow>,
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
        stages: Vec::new(),
        workloads: Vec::new(),
        workspaces: ctx
            .workspaces
            .list()
            .iter()
            .map(|w| w.id.namespace())
            .collect(),
    };
    let mut recorded = BTreeMap::new();
    if matches!(state, ClusterState::Running { .. }) {
        let client = ctx.client().await?;
        read_workloads(&client, &mut s).await?;
        recorded = record::read(&client).await;
    }
    s.stages = stage_rows(&state, &recorded, &s.addons, env!("CARGO_PKG_VERSION"));
    Ok(s)
}

/// Every Deployment, StatefulSet and DaemonSet appgear applied (add-on label) or in a workspace
/// namespace, with its readiness.
pub async fn read_workloads(client: &kube::Client, s: &mut Status) -> Result<()> {
    let res = Resources::default();
    let mut addons = BTreeMap::new();
    for kind in ["Deployment", "StatefulSet", "DaemonSet"] {
        let Some(r) = res.find("apps/v1", kind) else {
            continue;
        };
        // Every namespace: `api_for` without one means the kubeconfig's default namespace.
        let ar = kube::api::ApiResource {
            group: r.group.clone(),
            version: r.version.clone(),
            api_version: r.api_version(),
            kind: r.kind.clone(),
            plural: r.plural.clone(),
        };
        let list = kube::api::Api::<kube::api::DynamicObject>::all_with(client.clone(), &ar)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn running() -> ClusterState {
        ClusterState::Running {
            node_image: pins::KIND_NODE.reference(),
        }
    }

    /// The record `up` writes after the storage, Kong and KEDA stages, and a Prometheus stage
    /// interrupted after its objects were applied (labelled) but before its waits passed.
    #[test]
    fn stages_from_a_recorded_config_map() {
        let record = map(&[
            ("local-path-provisioner", "v0.0.37"),
            ("kong", "0.24.0"),
            ("keda", "v2.20.2"),
            ("keda-http-add-on", "v0.14.0"),
            ("suite-image", "0.1.0"),
            ("suite", "0.0.9"),
            ("workspaces", "demo"),
        ]);
        let labels = map(&[("prometheus", "29.27.0"), ("keda", "v2.20.2")]);
        let rows = stage_rows(&running(), &record, &labels, "0.1.0");
        let table: Vec<Vec<String>> = rows.iter().map(StageRow::cells).collect();
        assert_eq!(
            table,
            [
                [
                    " 1 kind cluster",
                    "done",
                    &format!("node {}", pins::KIND_NODE.reference())
                ],
                [" 2 storage", "done", "local-path-provisioner v0.0.37"],
                [" 3 kong", "done", "kong 0.24.0"],
                [
                    " 4 prometheus",
                    "partial",
                    "prometheus not finished (labelled 29.27.0)"
                ],
                [
                    " 5 keda",
                    "partial",
                    "keda v2.20.2, keda-http-add-on v0.14.0 (pinned v0.15.0)"
                ],
                [
                    " 6 core services",
                    "missing",
                    "core-redis not installed (pinned 8.8.1)"
                ],
                [" 7 suite image", "done", "appgear 0.1.0"],
                [
                    " 8 factory suite",
                    "partial",
                    // Vault is installed at the start of the suite's stage.
                    "vault not installed (pinned 0.34.1), appgear 0.0.9 (this is 0.1.0)"
                ],
                [" 9 optional", "none", ""],
            ]
            .map(|r| r.map(String::from).to_vec())
        );
        // JSON carries the same, per pin.
        let json = serde_json::to_value(&rows).unwrap();
        assert_eq!(json[4]["state"], "partial");
        assert_eq!(json[4]["pins"][1]["installed"], "v0.14.0");
        assert_eq!(json[4]["pins"][1]["pinned"], "v0.15.0");
    }

    #[test]
    fn without_a_running_node_the_cluster_cannot_say() {
        let absent = stage_rows(
            &ClusterState::Absent,
            &BTreeMap::new(),
            &BTreeMap::new(),
            "0.1.0",
        );
        let (optional, required) = absent.split_last().unwrap();
        assert_eq!(optional.state, StageState::None);
        assert!(
            required.iter().all(|r| r.state == StageState::Missing),
            "{absent:?}"
        );
        assert_eq!(
            absent[1].cells()[2],
            "local-path-provisioner not installed (pinned v0.0.37)"
        );
        let stopped = stage_rows(
            &ClusterState::Stopped,
            &BTreeMap::new(),
            &BTreeMap::new(),
            "0.1.0",
        );
        assert_eq!(stopped[0].state, StageState::Partial);
        assert_eq!(stopped[0].detail, "its node is stopped");
        assert!(stopped[1..].iter().all(|r| r.state == StageState::Unknown));
        let other_node = stage_rows(
            &ClusterState::Running {
                node_image: "kindest/node:v1.34.0".into(),
            },
            &BTreeMap::new(),
            &BTreeMap::new(),
            "0.1.0",
        );
        assert_eq!(other_node[0].state, StageState::Partial);
        assert!(other_node[0]
            .detail
            .contains("(pinned kindest/node:v1.35.8)"));
    }
}

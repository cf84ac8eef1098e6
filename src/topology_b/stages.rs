//! The stages of `cluster up`, as data, and the plan: from the options and what the cluster
//! reports, which stages run and which are already done. This is what `cluster up --dry-run`
//! prints; `cluster up` then runs the stages marked `Run`, in order.
//!
//! Every stage is idempotent, so a re-run after Ctrl-C or a failure picks up where it stopped:
//! a stage is `Done` only when the cluster shows its result at the pinned version.

use super::pins;
use crate::core::error::{Error, Result};
use crate::gitops::model::Workspace;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum StageId {
    Preflight,
    Cluster,
    Storage,
    Kong,
    Prometheus,
    Keda,
    CoreServices,
    SuiteImage,
    Suite,
    Optional,
    Smoke,
}

/// One stage of `cluster up`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stage {
    pub id: StageId,
    pub number: u8,
    pub name: &'static str,
    pub does: &'static str,
    /// The pins it installs (add-ons, core-redis).
    pub pins: &'static [&'static str],
    /// How long it usually takes on a laptop with the images at hand, for the progress line.
    pub usually: &'static str,
}

pub const STAGES: &[Stage] = &[
    Stage {
        id: StageId::Preflight,
        number: 0,
        name: "preflight",
        does:
            "Docker, CPUs and memory for the profile, kind/kubectl/helm, host ports, inotify, disk",
        pins: &[],
        usually: "2 s",
    },
    Stage {
        id: StageId::Cluster,
        number: 1,
        name: "kind cluster",
        does:
            "one node labelled ingress-ready, host ports to Kong, data/cluster as its volume path",
        pins: &["kind", "kind-node"],
        usually: "40 s",
    },
    Stage {
        id: StageId::Storage,
        number: 2,
        name: "storage",
        does:
            "local-path-provisioner with storage classes ceph-block (RWO) and ceph-filesystem (RWX)",
        pins: &["local-path-provisioner"],
        usually: "15 s",
    },
    Stage {
        id: StageId::Kong,
        number: 3,
        name: "kong",
        does: "Kong Ingress Controller, IngressClass kong, NodePorts 30080/30443",
        pins: &["kong"],
        usually: "60 s",
    },
    Stage {
        id: StageId::Prometheus,
        number: 4,
        name: "prometheus",
        does: "core-prometheus in observability, scraping Kong and the gateway",
        pins: &["prometheus"],
        usually: "30 s",
    },
    Stage {
        id: StageId::Keda,
        number: 5,
        name: "keda",
        does: "KEDA and its HTTP add-on (the suite's scale-from-zero wake-up)",
        pins: &["keda", "keda-http-add-on"],
        usually: "60 s",
    },
    Stage {
        id: StageId::CoreServices,
        number: 6,
        name: "core services",
        does: "core-redis in appgear-core (gateway storage and backplane, builder queue)",
        pins: &["core-redis"],
        usually: "15 s",
    },
    Stage {
        id: StageId::SuiteImage,
        number: 7,
        name: "suite image",
        does: "ghcr.io/appgear/appgear:<version> loaded into the node (kind load image-archive)",
        pins: &[],
        usually: "10 s",
    },
    Stage {
        id: StageId::Suite,
        number: 8,
        name: "factory suite",
        does: "Vault for the suite's secrets first (unless --without-vault), then the suite from `gitops render`, server-side applied, waited Available",
        pins: &["vault"],
        usually: "60 s (2 min with Vault)",
    },
    Stage {
        id: StageId::Optional,
        number: 9,
        name: "optional",
        does: "Airbyte, Argo CD (with an in-cluster Git server) when asked for",
        pins: &["airbyte", "argocd", "git-server"],
        usually: "3-8 min",
    },
    Stage {
        id: StageId::Smoke,
        number: 10,
        name: "smoke",
        does: "/vscode/ through Kong, a document synced through /multiplayer, a wake from zero",
        pins: &[],
        usually: "20 s",
    },
];

/// How much of the suite runs: `core` without Airbyte (4 CPUs, 8 GiB), `full` with it (16 GiB).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    Core,
    Full,
}

impl Profile {
    pub fn parse(s: &str) -> Result<Profile> {
        match s {
            "core" => Ok(Profile::Core),
            "full" => Ok(Profile::Full),
            _ => Err(Error::bad_input(format!("profile {s:?} is not core or full"))
                .hint("use --profile core (no Airbyte, 8 GiB) or --profile full (with Airbyte, 16 GiB)")),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Profile::Core => "core",
            Profile::Full => "full",
        }
    }
}

/// What `cluster up` was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    pub profile: Profile,
    pub airbyte: bool,
    /// Vault installed and configured before the suite (the default: the suite's pods read
    /// their secrets from its agent); false with `--without-vault`, for a Vault of one's own.
    pub vault: bool,
    pub argocd: bool,
}

impl Options {
    /// `--profile full` means Airbyte; `--with-airbyte` on the core profile is refused, since
    /// the core profile's memory is not enough for it.
    pub fn new(profile: Profile, with_airbyte: bool, vault: bool, argocd: bool) -> Result<Options> {
        if with_airbyte && profile == Profile::Core {
            return Err(Error::bad_input(
                "--with-airbyte needs --profile full: Airbyte does not fit the core profile's 8 GiB",
            )
            .hint("run `appgear cluster up --profile full` (16 GiB of memory for Docker)"));
        }
        Ok(Options {
            profile,
            airbyte: profile == Profile::Full,
            vault,
            argocd,
        })
    }
}

/// The kind cluster, as Docker and kind report it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ClusterState {
    #[default]
    Absent,
    /// Its node container exists but is stopped (the laptop restarted, Docker restarted).
    Stopped,
    Running {
        node_image: String,
    },
}

/// What the cluster reports (read by the IO side: kind, Docker, a label query).
#[derive(Debug, Clone, Default)]
pub struct Observed {
    pub cluster: ClusterState,
    /// Installed pins by name → version, from the `appgear.io/addon-version` labels (add-ons,
    /// `core-redis`, and the optional `airbyte`, `vault`, `argocd`).
    pub addons: BTreeMap<String, String>,
    /// The appgear version of the suite image found in the node, if any.
    pub suite_image: Option<String>,
    /// The appgear version the applied suite was rendered by, if any.
    pub suite_version: Option<String>,
    /// Workspace ids whose `ws-<id>-factory` namespace exists.
    pub workspaces: BTreeSet<String>,
}

/// What happens to a stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Run(String),
    Done(String),
    Skip(String),
}

impl Action {
    pub fn word(&self) -> &'static str {
        match self {
            Action::Run(_) => "run",
            Action::Done(_) => "done",
            Action::Skip(_) => "skip",
        }
    }
    pub fn reason(&self) -> &str {
        match self {
            Action::Run(r) | Action::Done(r) | Action::Skip(r) => r,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub stage: Stage,
    pub action: Action,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub steps: Vec<Step>,
}

impl Plan {
    /// One line per stage, for `cluster up --dry-run`.
    pub fn lines(&self) -> Vec<String> {
        self.steps
            .iter()
            .map(|s| {
                format!(
                    "{:>2}  {:<14} {:<5} {}",
                    s.stage.number,
                    s.stage.name,
                    s.action.word(),
                    s.action.reason()
                )
            })
            .collect()
    }
    pub fn action(&self, id: StageId) -> Option<&Action> {
        self.steps
            .iter()
            .find(|s| s.stage.id == id)
            .map(|s| &s.action)
    }
    /// The stages that will run.
    pub fn to_run(&self) -> Vec<StageId> {
        self.steps
            .iter()
            .filter(|s| matches!(s.action, Action::Run(_)))
            .map(|s| s.stage.id)
            .collect()
    }
}

/// The plan for `cluster up`. `workspaces` are the recorded ones (config/cluster/workspaces.yaml),
/// `version` appgear's own (the suite image and render it brings).
pub fn plan(opts: &Options, workspaces: &[Workspace], seen: &Observed, version: &str) -> Plan {
    // A new or stopped cluster is checked again from the start: what was observed of it may be
    // stale, and every stage is idempotent.
    let fresh = !matches!(seen.cluster, ClusterState::Running { .. });
    let nothing = BTreeMap::new();
    let installed = if fresh { &nothing } else { &seen.addons };
    let mut steps = Vec::new();
    for stage in STAGES {
        let action = match stage.id {
            StageId::Preflight => Action::Run(format!(
                "checks for the {} profile (always run)",
                opts.profile.as_str()
            )),
            StageId::Cluster => cluster_action(&seen.cluster),
            StageId::Optional => optional_action(opts, installed),
            StageId::Smoke => Action::Run("checks what answers (always run)".into()),
            StageId::Suite if fresh => with_vault(
                vault_action(opts, installed),
                Action::Run(fresh_reason(stage, workspaces, version)),
            ),
            _ if fresh => Action::Run(fresh_reason(stage, workspaces, version)),
            StageId::Storage
            | StageId::Kong
            | StageId::Prometheus
            | StageId::Keda
            | StageId::CoreServices => pins_action(stage.pins, &seen.addons),
            StageId::SuiteImage => match &seen.suite_image {
                Some(v) if v == version => {
                    Action::Done(format!("appgear {version} is in the node"))
                }
                Some(v) => Action::Run(format!("load appgear {version} (the node has {v})")),
                None => Action::Run(format!("load appgear {version}")),
            },
            StageId::Suite => with_vault(
                vault_action(opts, installed),
                suite_action(workspaces, seen, version),
            ),
        };
        steps.push(Step {
            stage: *stage,
            action,
        });
    }
    Plan { steps }
}

fn cluster_action(state: &ClusterState) -> Action {
    let pinned = pins::KIND_NODE.reference();
    match state {
        ClusterState::Absent => Action::Run(format!("create it with kindest/node:{}", pins::KIND_NODE.tag)),
        ClusterState::Stopped => Action::Run("start its stopped node".into()),
        ClusterState::Running { node_image } if *node_image == pinned
            || node_image.split('@').next() == Some(pins::KIND_NODE.tagged().as_str()) =>
        {
            Action::Done(format!("running kindest/node:{}", pins::KIND_NODE.tag))
        }
        // Moving Kubernetes under a running cluster is the user's call: the volumes are on the
        // host, so `cluster down` + `cluster up` moves to the pin without losing data.
        ClusterState::Running { node_image } => Action::Done(format!(
            "running {node_image}, not the pinned {pinned}; `appgear cluster down` then `up` moves to the pin (workspace data is kept)"
        )),
    }
}

fn fresh_reason(stage: &Stage, workspaces: &[Workspace], version: &str) -> String {
    match stage.id {
        StageId::SuiteImage => format!("load appgear {version}"),
        StageId::Suite => format!("apply the suite with {}", workspace_list(workspaces)),
        _ => format!("install {}", describe_pins(stage.pins)),
    }
}

fn nothing_asked() -> String {
    "nothing asked (--profile full, --with-argocd)".into()
}

/// What stage 8 does with Vault before the suite: the suite's pods (gateway, builder API and
/// jobs, code-server) read their secrets from files Vault's agent injector writes, and the
/// injector only injects pods created after it runs, so Vault comes first. A Vault recorded at
/// its pin is not redone.
pub fn vault_action(opts: &Options, installed: &BTreeMap<String, String>) -> Action {
    let pinned = pins::pin("vault").map(|p| p.version).unwrap_or("");
    match (opts.vault, installed.get("vault")) {
        (false, _) => Action::Skip(
            "--without-vault: the suite's secrets must come from your own Vault (its agent injector, the roles and kv/appgear paths the suite's annotations name)".into(),
        ),
        (true, Some(v)) if v == pinned => Action::Done(format!("vault {pinned}")),
        (true, Some(v)) => Action::Run(format!("vault {v} → {pinned} before the suite")),
        (true, None) => Action::Run(format!(
            "install vault {pinned} before the suite (its pods read their secrets from Vault's agent)"
        )),
    }
}

/// Stage 8's action: Vault's part, then the suite's; it runs when either has to.
fn with_vault(vault: Action, suite: Action) -> Action {
    let line = format!("{}; {}", vault.reason(), suite.reason());
    match (&vault, &suite) {
        (Action::Run(_), _) | (_, Action::Run(_)) => Action::Run(line),
        (_, Action::Skip(_)) => Action::Skip(line),
        _ => Action::Done(line),
    }
}

fn describe_pins(names: &[&str]) -> String {
    names
        .iter()
        .filter_map(|n| pins::pin(n))
        .map(|p| format!("{} {}", p.name, p.version))
        .collect::<Vec<_>>()
        .join(" and ")
}

fn pins_action(names: &[&str], installed: &BTreeMap<String, String>) -> Action {
    let mut todo = Vec::new();
    for n in names {
        let Some(p) = pins::pin(n) else { continue };
        match installed.get(*n) {
            Some(v) if v == p.version => {}
            Some(v) => todo.push(format!("{n} {v} → {}", p.version)),
            None => todo.push(format!("install {n} {}", p.version)),
        }
    }
    if todo.is_empty() {
        Action::Done(describe_pins(names))
    } else {
        Action::Run(todo.join(", "))
    }
}

fn workspace_list(workspaces: &[Workspace]) -> String {
    match workspaces.len() {
        0 => "no workspace yet (`appgear workspace add ID --tenant T`)".into(),
        _ => format!(
            "workspaces {}",
            workspaces
                .iter()
                .map(|w| w.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn suite_action(workspaces: &[Workspace], seen: &Observed, version: &str) -> Action {
    let wanted: BTreeSet<&str> = workspaces.iter().map(|w| w.id.as_str()).collect();
    let missing: Vec<&str> = wanted
        .iter()
        .filter(|w| !seen.workspaces.contains(**w))
        .copied()
        .collect();
    // A workspace namespace appgear has no record of is left alone: `up` never deletes data.
    let unrecorded: Vec<&str> = seen
        .workspaces
        .iter()
        .map(String::as_str)
        .filter(|w| !wanted.contains(w))
        .collect();
    let mut notes = Vec::new();
    if !unrecorded.is_empty() {
        notes.push(format!(
            "not recorded, left as they are: {} (`kubectl delete namespace ws-<id>-factory` removes one; its files stay in data/cluster)",
            unrecorded.join(", ")
        ));
    }
    let mut todo = Vec::new();
    match &seen.suite_version {
        Some(v) if v == version => {}
        Some(v) => todo.push(format!("update the suite from {v} to {version}")),
        None => todo.push("apply the suite".into()),
    }
    if !missing.is_empty() {
        todo.push(format!("add workspaces {}", missing.join(", ")));
    }
    let join = |mut v: Vec<String>, n: Vec<String>| {
        v.extend(n);
        v.join("; ")
    };
    if todo.is_empty() {
        Action::Done(join(vec![workspace_list(workspaces)], notes))
    } else {
        Action::Run(join(todo, notes))
    }
}

/// The optional parts of stage 9, in the order it installs them, each with its flag. (Vault is
/// not one: stage 8 installs it before the suite, see `vault_action`.)
pub const OPTIONAL_PARTS: &[(&str, &str)] =
    &[("airbyte", "--profile full"), ("argocd", "--with-argocd")];

fn asked(opts: &Options, part: &str) -> bool {
    match part {
        "airbyte" => opts.airbyte,
        "argocd" => opts.argocd,
        _ => false,
    }
}

/// With Argo CD, Airbyte's Application is in the tree Argo CD syncs, so Argo CD installs it
/// as in production; a direct chart install as well would give its objects two owners.
pub const AIRBYTE_THROUGH_ARGOCD: &str =
    "comes through Argo CD (its Application in the synced tree), not installed directly";

/// What stage 9 does with each optional part: `Run` when asked and not recorded at its pin,
/// `Done` when recorded at its pin, `Skip` when not asked (a part installed earlier and not
/// asked for now is left as it is: `up` never removes what a user may be using).
pub fn optional_parts(
    opts: &Options,
    installed: &BTreeMap<String, String>,
) -> Vec<(&'static str, Action)> {
    OPTIONAL_PARTS
        .iter()
        .map(|(name, flag)| {
            let pinned = pins::pin(name).map(|p| p.version).unwrap_or("");
            let action = match (asked(opts, name), installed.get(*name)) {
                (true, _) if *name == "airbyte" && opts.argocd => {
                    Action::Skip(AIRBYTE_THROUGH_ARGOCD.into())
                }
                (false, Some(v)) => {
                    Action::Skip(format!("{v} installed, not asked for, left as it is"))
                }
                (false, None) => Action::Skip(format!("not asked ({flag})")),
                (true, Some(v)) if v == pinned => Action::Done(pinned.to_string()),
                (true, Some(v)) => Action::Run(format!("{v} → {pinned}")),
                (true, None) => Action::Run(format!("install {pinned}")),
            };
            (*name, action)
        })
        .collect()
}

fn optional_action(opts: &Options, installed: &BTreeMap<String, String>) -> Action {
    let parts = optional_parts(opts, installed);
    let line = parts
        .iter()
        .map(|(n, a)| format!("{n} {}: {}", a.word(), a.reason()))
        .collect::<Vec<_>>()
        .join("; ");
    if parts.iter().any(|(_, a)| matches!(a, Action::Run(_))) {
        Action::Run(line)
    } else if parts.iter().any(|(_, a)| matches!(a, Action::Done(_))) {
        Action::Done(line)
    } else {
        Action::Skip(format!("{}; {line}", nothing_asked()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::names::{TenantId, WorkspaceId};

    const V: &str = "0.1.0";

    fn ws(ids: &[&str]) -> Vec<Workspace> {
        ids.iter()
            .map(|i| Workspace {
                id: WorkspaceId::parse(i).unwrap(),
                tenant: TenantId::parse("acme").unwrap(),
            })
            .collect()
    }

    /// `cluster up` with no flag: the core profile, Vault (the default), no Argo CD.
    fn core() -> Options {
        Options::new(Profile::Core, false, true, false).unwrap()
    }

    /// A cluster where `cluster up` ran to the end with this appgear.
    fn converged(workspaces: &[&str]) -> Observed {
        let mut addons = BTreeMap::new();
        for p in pins::PINS
            .iter()
            .filter(|p| p.name != "kind" && p.name != "kind-node")
            .filter(|p| !OPTIONAL_PARTS.iter().any(|(o, _)| *o == p.name) && p.name != "git-server")
        {
            addons.insert(p.name.to_string(), p.version.to_string());
        }
        Observed {
            cluster: ClusterState::Running {
                node_image: pins::KIND_NODE.reference(),
            },
            addons,
            suite_image: Some(V.into()),
            suite_version: Some(V.into()),
            workspaces: workspaces.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn the_stage_list_is_numbered_in_order_and_its_pins_exist() {
        for (i, s) in STAGES.iter().enumerate() {
            assert_eq!(s.number as usize, i, "{}", s.name);
            for p in s.pins {
                assert!(pins::pin(p).is_some(), "{p}");
            }
        }
        let ids: Vec<StageId> = STAGES.iter().map(|s| s.id).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted);
    }

    #[test]
    fn a_fresh_machine_runs_every_stage_but_the_optional_one() {
        let p = plan(&core(), &ws(&["demo"]), &Observed::default(), V);
        assert_eq!(
            p.to_run(),
            [
                StageId::Preflight,
                StageId::Cluster,
                StageId::Storage,
                StageId::Kong,
                StageId::Prometheus,
                StageId::Keda,
                StageId::CoreServices,
                StageId::SuiteImage,
                StageId::Suite,
                StageId::Smoke
            ]
        );
        let lines = p.lines();
        assert_eq!(lines.len(), 11);
        assert_eq!(
            lines[1],
            " 1  kind cluster   run   create it with kindest/node:v1.35.8"
        );
        assert_eq!(
            lines[5],
            " 5  keda           run   install keda v2.20.2 and keda-http-add-on v0.15.0"
        );
        assert_eq!(
            lines[8],
            " 8  factory suite  run   install vault 0.34.1 before the suite (its pods read their secrets from Vault's agent); apply the suite with workspaces demo"
        );
        assert!(
            lines[9].contains("skip") && lines[9].contains("--with-argocd"),
            "{}",
            lines[9]
        );
    }

    #[test]
    fn a_rerun_on_a_converged_cluster_changes_nothing() {
        let p = plan(&core(), &ws(&["demo"]), &converged(&["demo"]), V);
        assert_eq!(p.to_run(), [StageId::Preflight, StageId::Smoke]);
        assert_eq!(
            p.action(StageId::Kong),
            Some(&Action::Done("kong 0.24.0".into()))
        );
    }

    #[test]
    fn only_what_differs_runs() {
        let mut seen = converged(&["demo"]);
        seen.addons.insert("keda".into(), "v2.19.0".into());
        seen.addons.remove("keda-http-add-on");
        seen.suite_image = Some("0.0.9".into());
        let p = plan(&core(), &ws(&["demo", "team-b"]), &seen, V);
        assert_eq!(
            p.action(StageId::Keda),
            Some(&Action::Run(
                "keda v2.19.0 → v2.20.2, install keda-http-add-on v0.15.0".into()
            ))
        );
        assert_eq!(
            p.action(StageId::SuiteImage),
            Some(&Action::Run(
                "load appgear 0.1.0 (the node has 0.0.9)".into()
            ))
        );
        assert_eq!(
            p.action(StageId::Suite),
            Some(&Action::Run("vault 0.34.1; add workspaces team-b".into()))
        );
        assert!(matches!(p.action(StageId::Storage), Some(Action::Done(_))));
    }

    #[test]
    fn a_stopped_node_is_started_and_every_later_stage_checked_again() {
        let mut seen = converged(&["demo"]);
        seen.cluster = ClusterState::Stopped;
        let p = plan(&core(), &ws(&["demo"]), &seen, V);
        assert_eq!(
            p.action(StageId::Cluster),
            Some(&Action::Run("start its stopped node".into()))
        );
        assert!(p.to_run().contains(&StageId::Kong));
    }

    #[test]
    fn another_node_image_is_reported_not_replaced() {
        let mut seen = converged(&[]);
        seen.cluster = ClusterState::Running {
            node_image: "kindest/node:v1.34.11".into(),
        };
        let p = plan(&core(), &[], &seen, V);
        let Some(Action::Done(why)) = p.action(StageId::Cluster) else {
            panic!("{:?}", p.action(StageId::Cluster));
        };
        assert!(
            why.contains("cluster down") && why.contains("kept"),
            "{why}"
        );
    }

    #[test]
    fn unrecorded_workspaces_are_left_alone() {
        let p = plan(&core(), &ws(&["demo"]), &converged(&["demo", "old"]), V);
        let Some(Action::Done(why)) = p.action(StageId::Suite) else {
            panic!("{:?}", p.action(StageId::Suite));
        };
        assert!(why.contains("left as they are: old"), "{why}");
    }

    #[test]
    fn profiles_and_optional_components() {
        assert!(Options::new(Profile::Core, true, false, false).is_err());
        let full = Options::new(Profile::Full, false, true, false).unwrap();
        assert!(full.airbyte);
        let p = plan(&full, &[], &converged(&[]), V);
        assert_eq!(
            p.action(StageId::Optional),
            Some(&Action::Run(
                "airbyte run: install 2.2.0; argocd skip: not asked (--with-argocd)".into()
            ))
        );
        let mut seen = converged(&[]);
        seen.addons.insert("airbyte".into(), "2.2.0".into());
        seen.addons.insert("argocd".into(), "v3".into());
        let p = plan(&core(), &[], &seen, V);
        let Some(Action::Skip(why)) = p.action(StageId::Optional) else {
            panic!("{:?}", p.action(StageId::Optional));
        };
        assert!(why.starts_with("nothing asked"), "{why}");
        assert!(
            why.contains("airbyte skip: 2.2.0 installed, not asked for, left as it is")
                && why.contains("argocd skip: v3 installed, not asked for, left as it is"),
            "{why}"
        );
        assert_eq!(Profile::parse("full").unwrap(), Profile::Full);
        assert!(Profile::parse("big").is_err());
    }

    #[test]
    fn vault_comes_before_the_suite_by_default_and_is_not_redone() {
        // A fresh cluster: stage 8 installs Vault, then the suite; stage 9 has no Vault part.
        let p = plan(&core(), &ws(&["demo"]), &Observed::default(), V);
        let Some(Action::Run(why)) = p.action(StageId::Suite) else {
            panic!("{:?}", p.action(StageId::Suite));
        };
        let vault_at = why.find("install vault 0.34.1 before the suite").unwrap();
        assert!(vault_at < why.find("apply the suite").unwrap(), "{why}");
        assert!(!p.lines()[9].contains("vault"), "{}", p.lines()[9]);
        // Recorded at its pin: not redone, and said so.
        let p = plan(&core(), &ws(&["demo"]), &converged(&["demo"]), V);
        assert_eq!(
            p.action(StageId::Suite),
            Some(&Action::Done("vault 0.34.1; workspaces demo".into()))
        );
        // Recorded at another version: stage 8 runs for Vault alone, the suite is unchanged.
        let mut seen = converged(&["demo"]);
        seen.addons.insert("vault".into(), "0.30.0".into());
        let p = plan(&core(), &ws(&["demo"]), &seen, V);
        assert_eq!(
            p.action(StageId::Suite),
            Some(&Action::Run(
                "vault 0.30.0 → 0.34.1 before the suite; workspaces demo".into()
            ))
        );
        // Lost from the record (an interrupted first run): it runs again.
        let mut seen = converged(&["demo"]);
        seen.addons.remove("vault");
        let p = plan(&core(), &ws(&["demo"]), &seen, V);
        assert_eq!(p.action(StageId::Suite).unwrap().word(), "run");
    }

    #[test]
    fn without_vault_the_plan_says_where_the_secrets_must_come_from() {
        let own = Options::new(Profile::Core, false, false, false).unwrap();
        let p = plan(&own, &ws(&["demo"]), &Observed::default(), V);
        let Some(Action::Run(why)) = p.action(StageId::Suite) else {
            panic!("{:?}", p.action(StageId::Suite));
        };
        assert!(
            why.starts_with("--without-vault: the suite's secrets must come from your own Vault"),
            "{why}"
        );
        assert!(!why.contains("install vault"), "{why}");
        let mut seen = converged(&["demo"]);
        seen.addons.remove("vault");
        let p = plan(&own, &ws(&["demo"]), &seen, V);
        assert_eq!(p.action(StageId::Suite).unwrap().word(), "done");
        assert_eq!(
            vault_action(&own, &BTreeMap::new()).word(),
            "skip",
            "nothing of Vault is installed"
        );
    }

    #[test]
    fn with_argocd_airbyte_has_one_owner() {
        let none = BTreeMap::new();
        let both = Options::new(Profile::Full, false, true, true).unwrap();
        assert_eq!(
            part(&optional_parts(&both, &none), "airbyte"),
            Action::Skip(AIRBYTE_THROUGH_ARGOCD.into())
        );
        let p = plan(&both, &[], &converged(&[]), V);
        assert_eq!(
            p.action(StageId::Optional),
            Some(&Action::Run(format!(
                "airbyte skip: {AIRBYTE_THROUGH_ARGOCD}; argocd run: install v3.5.1"
            )))
        );
        // Without Argo CD the chart is installed directly, as before.
        let direct = Options::new(Profile::Full, false, true, false).unwrap();
        assert_eq!(
            part(&optional_parts(&direct, &none), "airbyte"),
            Action::Run("install 2.2.0".into())
        );
    }

    fn part(parts: &[(&str, Action)], name: &str) -> Action {
        parts.iter().find(|(n, _)| *n == name).unwrap().1.clone()
    }

    #[test]
    fn each_optional_part_runs_is_done_or_is_skipped_on_its_own() {
        let none = BTreeMap::new();
        let mut all = BTreeMap::new();
        for (n, _) in OPTIONAL_PARTS {
            all.insert(n.to_string(), pins::pin(n).unwrap().version.to_string());
        }
        for argocd in [false, true] {
            for profile in [Profile::Core, Profile::Full] {
                let o = Options::new(profile, false, true, argocd).unwrap();
                let fresh = optional_parts(&o, &none);
                let again = optional_parts(&o, &all);
                // With Argo CD, Airbyte is Argo CD's to install (see with_argocd_airbyte_has_one_owner).
                let direct_airbyte = profile == Profile::Full && !argocd;
                for (name, on) in [("airbyte", direct_airbyte), ("argocd", argocd)] {
                    let pinned = pins::pin(name).unwrap().version;
                    match on {
                        true => {
                            assert_eq!(
                                part(&fresh, name),
                                Action::Run(format!("install {pinned}"))
                            );
                            assert_eq!(part(&again, name), Action::Done(pinned.to_string()));
                        }
                        false => {
                            assert!(matches!(part(&fresh, name), Action::Skip(_)));
                            assert!(matches!(part(&again, name), Action::Skip(_)));
                        }
                    }
                }
                let p = plan(&o, &[], &converged(&[]), V);
                let word = p.action(StageId::Optional).unwrap().word();
                let any = argocd || profile == Profile::Full;
                assert_eq!(word, if any { "run" } else { "skip" });
                let mut seen = converged(&[]);
                seen.addons.extend(all.clone());
                let p = plan(&o, &[], &seen, V);
                let word = p.action(StageId::Optional).unwrap().word();
                assert_eq!(word, if any { "done" } else { "skip" });
            }
        }
        let mut old = all.clone();
        old.insert("argocd".into(), "v3.0.0".into());
        let o = Options::new(Profile::Core, false, true, true).unwrap();
        assert_eq!(
            part(&optional_parts(&o, &old), "argocd"),
            Action::Run("v3.0.0 → v3.5.1".into())
        );
        // A cluster that is not running has nothing recorded: every asked part runs.
        let mut stopped = converged(&[]);
        stopped.addons.extend(all);
        stopped.cluster = ClusterState::Stopped;
        let p = plan(&o, &[], &stopped, V);
        assert_eq!(p.action(StageId::Optional).unwrap().word(), "run");
        assert_eq!(p.action(StageId::Suite).unwrap().word(), "run");
    }
}

//! What each stage applies, as objects (shared by `up` and `render`), and `cluster render`:
//! every object `up` would apply, written as one file per stage in apply order, for review or
//! for `kubectl apply -f DIR`, under the owned-file policy of every file appgear writes.

use super::super::addons::Addon;
use super::super::cache::Cache;
use super::super::manifests::{self, ClusterKinds, Object};
use super::super::mirror::{FileSource, Folder, Location};
use super::super::stages::StageId;
use super::super::supply::{self, Offline};
use super::super::workspaces::Workspaces;
use super::context::Context;
use super::extras;
use crate::core::error::{Error, Result};
use crate::core::owned_files::{self, Ledger, OwnedFile, Plan};
use crate::gitops::model::{Suite, WorkspaceEntry};
use std::path::Path;

/// The local cluster's name in the suite's labels and Argo CD registration (the gitops cluster
/// name rule wants `ag-<region>-core-<env>`).
pub const SUITE_CLUSTER: &str = "ag-local-core-dev";
const SUITE_REPO: &str = "https://git.example.com/appgear-gitops-suites.git";

/// Supply one add-on from the mirror (a folder), else the cache. The network fetch is not
/// written yet, so an add-on in neither is an error that says how to set a mirror.
pub fn addon(ctx: &Context, name: &str) -> Result<Vec<Object>> {
    let addon =
        Addon::named(name).ok_or_else(|| Error::internal(format!("no add-on named {name}")))?;
    let folder;
    let mirror: Option<&dyn FileSource> = match &ctx.settings.addons_mirror {
        Some(Location::Folder(p)) => {
            folder = Folder(p.clone());
            Some(&folder)
        }
        Some(Location::Http(url)) => {
            return Err(Error::not_ready(format!(
                "APPGEAR_ADDONS_MIRROR {url} is an http(s) mirror, which appgear cannot read yet"
            ))
            .hint("download the mirror folder and set APPGEAR_ADDONS_MIRROR to its path"))
        }
        None => None,
    };
    Ok(supply::supply(addon, mirror, &Cache::in_home(&ctx.root), &Offline)?.objects)
}

/// The suite for `workspaces` (the recorded ones unless given).
pub fn suite(ctx: &Context, workspaces: &[WorkspaceEntry], airbyte: bool) -> Result<Vec<Object>> {
    let suite = Suite::new(
        SUITE_CLUSTER,
        SUITE_REPO,
        "main",
        ctx.domain.as_str(),
        workspaces,
    )?;
    super::super::suite::objects(&suite, airbyte)
}

/// The objects a stage applies; empty for stages that apply none.
pub fn stage_objects(
    ctx: &Context,
    stage: StageId,
    workspaces: &[WorkspaceEntry],
    airbyte: bool,
) -> Result<Vec<Object>> {
    Ok(match stage {
        StageId::Storage => {
            let mut o = addon(ctx, "local-path-provisioner")?;
            o.extend(extras::storage_classes()?);
            o
        }
        StageId::Kong => addon(ctx, "kong")?,
        StageId::Prometheus => addon(ctx, "prometheus")?,
        StageId::Keda => {
            let mut o = addon(ctx, "keda")?;
            o.extend(addon(ctx, "keda-http-add-on")?);
            o
        }
        StageId::CoreServices => extras::core_redis()?,
        StageId::Suite => suite(ctx, workspaces, airbyte)?,
        _ => Vec::new(),
    })
}

/// The stages that apply objects, with the file `render` writes each into.
pub const RENDERED: &[(StageId, &str)] = &[
    (StageId::Storage, "02-storage.yaml"),
    (StageId::Kong, "03-kong.yaml"),
    (StageId::Prometheus, "04-prometheus.yaml"),
    (StageId::Keda, "05-keda.yaml"),
    (StageId::CoreServices, "06-core-services.yaml"),
    (StageId::Suite, "08-factory-suite.yaml"),
];

const KUSTOMIZATION: &str = "kustomization.yaml";

/// One stage's objects as one multi-document file in apply order, with the marker line.
fn file_text(objects: Vec<Object>, cluster: &mut ClusterKinds) -> Result<String> {
    let ordered = manifests::order(objects, cluster)?;
    let mut text = format!("{}\n", crate::gitops::render::marker());
    for o in ordered {
        // Each document as JSON, which every YAML reader takes alike: a YAML 1.2 writer leaves
        // `no`, `off` or `on` unquoted, and kubectl's YAML 1.1 reader (and PyYAML) turn them
        // into booleans, which is how Kong's `off` and redis' `no` came out as `false`.
        let json = serde_json::to_string_pretty(&o.value)
            .map_err(|e| Error::internal(format!("{}: {e}", o.describe())))?;
        text.push_str("---\n");
        text.push_str(&json);
        text.push('\n');
    }
    Ok(text)
}

/// What `cluster render` wrote.
pub struct Rendered {
    pub plan: Plan,
    pub objects: usize,
}

/// Write every stage's objects into `out`: the recorded workspaces, or `workspaces` when given.
pub fn render(
    ctx: &Context,
    out: &Path,
    workspaces: &[WorkspaceEntry],
    airbyte: bool,
) -> Result<Rendered> {
    let recorded = ctx.workspaces.entries();
    let workspaces = if workspaces.is_empty() {
        &recorded[..]
    } else {
        workspaces
    };
    // Check ids and tenants with the one rule before anything is written.
    let mut check = Workspaces::default();
    for w in workspaces {
        check.add(&w.id, &w.tenant)?;
    }
    let mut cluster = ClusterKinds::default();
    let mut files = Vec::new();
    let mut count = 0;
    for (stage, file) in RENDERED {
        let objects = stage_objects(ctx, *stage, workspaces, airbyte)?;
        count += objects.len();
        files.push(OwnedFile {
            path: file.to_string(),
            text: file_text(objects, &mut cluster)?,
        });
    }
    // A kustomization listing the files in order, so `kubectl kustomize DIR` builds them and
    // `kubectl apply -k DIR` applies them (kustomize orders by kind within one build).
    let mut kustomization = format!(
        "{}\napiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n",
        crate::gitops::render::marker()
    );
    for (_, file) in RENDERED {
        kustomization.push_str(&format!("- {file}\n"));
    }
    files.push(OwnedFile {
        path: KUSTOMIZATION.to_string(),
        text: kustomization,
    });
    let mut earlier: Vec<String> = RENDERED.iter().map(|(_, f)| f.to_string()).collect();
    earlier.push(KUSTOMIZATION.to_string());
    let mut ledger = Ledger::load(out);
    let plan = owned_files::plan(out, files, &earlier, &ledger)?;
    owned_files::apply(&plan, &mut ledger)?;
    Ok(Rendered {
        plan,
        objects: count,
    })
}

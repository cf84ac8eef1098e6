//! `cluster render --out DIR`: every object `up` would apply for the same choices, written as one
//! file per stage in apply order, for review or for `kubectl apply -k DIR`, under the owned-file
//! policy of every file appgear writes.

use super::super::manifests::{self, ClusterKinds, Object};
use super::super::stages::StageId;
use super::super::workspaces::Workspaces;
use super::context::Context;
use super::render::{addon, stage_objects};
use crate::core::error::{Error, Result};
use crate::core::owned_files::{self, Ledger, OwnedFile, Plan};
use crate::gitops::model::WorkspaceEntry;
use std::path::Path;

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

/// The file of Airbyte's chart objects (`--with-airbyte`).
pub const AIRBYTE_FILE: &str = "09-airbyte.yaml";

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

/// The parts `cluster render` adds to the stages every cluster has, as `up` is asked for them.
#[derive(Debug, Clone, Copy)]
pub struct Parts {
    pub airbyte: bool,
    pub vault: bool,
    pub argocd: bool,
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
    parts: Parts,
) -> Result<Rendered> {
    let Parts {
        airbyte,
        vault,
        argocd,
    } = parts;
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
    let mut names: Vec<&str> = Vec::new();
    // Vault and Argo CD, as `up` applies them (the seed Secret excepted: its values are made in
    // the cluster only). Argo CD syncs Airbyte itself when both are asked for.
    let supply = super::optional::FromContext {
        ctx,
        workspaces,
        airbyte,
    };
    let mut extra = super::optional::rendered(&supply, vault, argocd)?;
    let mut take = |name: &str| {
        extra
            .iter()
            .position(|(f, _)| *f == name)
            .map(|i| extra.remove(i))
    };
    let vault_file = take(super::optional::RENDERED_FILES[0]);
    let argocd_file = take(super::optional::RENDERED_FILES[1]);
    for (stage, file) in RENDERED {
        // Vault comes before the suite, whose pods read their secrets from its agent.
        if *stage == StageId::Suite {
            if let Some((name, objects)) = &vault_file {
                count += objects.len();
                files.push(OwnedFile {
                    path: name.to_string(),
                    text: file_text(objects.clone(), &mut cluster)?,
                });
                names.push(name);
            }
        }
        let objects = stage_objects(ctx, *stage, workspaces)?;
        count += objects.len();
        files.push(OwnedFile {
            path: file.to_string(),
            text: file_text(objects, &mut cluster)?,
        });
        names.push(file);
    }
    // Airbyte's chart, rendered as its Application would install it, in a file of its own: it
    // is optional, and `kubectl apply -k` of the rest must not wait for it.
    if let Some((name, objects)) = argocd_file {
        count += objects.len();
        files.push(OwnedFile {
            path: name.to_string(),
            text: file_text(objects, &mut cluster)?,
        });
        names.push(name);
    }
    if airbyte && !argocd {
        let objects = addon(ctx, "airbyte")?;
        count += objects.len();
        files.push(OwnedFile {
            path: AIRBYTE_FILE.to_string(),
            text: file_text(objects, &mut cluster)?,
        });
        names.push(AIRBYTE_FILE);
    }
    // A kustomization listing the files in order, so `kubectl kustomize DIR` builds them and
    // `kubectl apply -k DIR` applies them (kustomize orders by kind within one build).
    let mut kustomization = format!(
        "{}\napiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n",
        crate::gitops::render::marker()
    );
    for file in &names {
        kustomization.push_str(&format!("- {file}\n"));
    }
    files.push(OwnedFile {
        path: KUSTOMIZATION.to_string(),
        text: kustomization,
    });
    let mut earlier: Vec<String> = RENDERED.iter().map(|(_, f)| f.to_string()).collect();
    earlier.push(AIRBYTE_FILE.to_string());
    earlier.extend(
        super::optional::RENDERED_FILES
            .iter()
            .map(|f| f.to_string()),
    );
    earlier.push(KUSTOMIZATION.to_string());
    let mut ledger = Ledger::load(out);
    let plan = owned_files::plan(out, files, &earlier, &ledger)?;
    owned_files::apply(&plan, &mut ledger)?;
    Ok(Rendered {
        plan,
        objects: count,
    })
}

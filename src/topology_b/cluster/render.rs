//! What each stage applies, as objects (shared by `up` and `render`), and `cluster render`:
//! every object `up` would apply, written as one file per stage in apply order, for review or
//! for `kubectl apply -f DIR`, under the owned-file policy of every file appgear writes.

use super::super::addons::Addon;
use super::super::cache::Cache;
use super::super::fetch::chart;
use super::super::fetch::client::Client;
use super::super::fetch::helm;
use super::super::fetch::upstream::Network;
use super::super::manifests::{self, ClusterKinds, Object};
use super::super::mirror::{FileSource, Folder, Found, Http, Location};
use super::super::pins::Source;
use super::super::stages::StageId;
use super::super::supply::{self, Origin, Supplied};
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

/// One add-on's checked objects: from the mirror (a folder or an http(s) URL) when one is
/// set, else the cache, else upstream (then cached). A chart package is rendered with
/// `helm template` and appgear's values; Airbyte's values are those of the suite's Argo CD
/// Application, so the local cluster runs the chart exactly as Argo CD would.
pub fn addon(ctx: &Context, name: &str) -> Result<Vec<Object>> {
    let addon =
        Addon::named(name).ok_or_else(|| Error::internal(format!("no add-on named {name}")))?;
    let client = Client::new();
    let supplied = supply_one(ctx, addon, &client)?;
    let Found::Package(package) = &supplied.found else {
        return Ok(supplied.objects);
    };
    let place = match &supplied.origin {
        Origin::Mirror(m) => m.clone(),
        Origin::Cache(_) => "cache".to_string(),
        Origin::Upstream => "upstream".to_string(),
    };
    let recipe = match suite_application(ctx, addon)? {
        Some(application) => chart::airbyte(addon, &application)?,
        None => chart::recipe(addon)?,
    };
    helm::objects(addon, package, &recipe, &place)
}

/// Supply `addon` with the context's mirror, the home's cache and `client` for the network.
pub fn supply_one(ctx: &Context, addon: Addon, client: &Client) -> Result<Supplied> {
    let cache = Cache::in_home(&ctx.root);
    let network = Network { client };
    match &ctx.settings.addons_mirror {
        Some(Location::Folder(p)) => {
            let m = Folder(p.clone());
            supply::supply(addon, Some(&m as &dyn FileSource), &cache, &network)
        }
        Some(Location::Http(url)) => {
            let m = Http {
                base: url.clone(),
                client,
            };
            supply::supply(addon, Some(&m as &dyn FileSource), &cache, &network)
        }
        None => supply::supply(addon, None, &cache, &network),
    }
}

/// The suite's Argo CD Application that installs `addon`'s chart (Airbyte's), if there is one.
fn suite_application(ctx: &Context, addon: Addon) -> Result<Option<serde_json::Value>> {
    let Source::Chart { repo, chart, .. } = addon.0.source else {
        return Ok(None);
    };
    let objects = suite(ctx, &ctx.workspaces.entries(), true)?;
    Ok(objects
        .into_iter()
        .find(|o| {
            let source = &o.value["spec"]["source"];
            o.kind == "Application"
                && source["chart"].as_str() == Some(chart)
                && source["repoURL"].as_str().map(|r| r.trim_end_matches('/'))
                    == Some(repo.trim_end_matches('/'))
        })
        .map(|o| o.value))
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

/// The objects a stage applies; empty for stages that apply none. The suite goes without its
/// Airbyte Application: only Argo CD serves that kind, and on the local cluster Airbyte's chart
/// is installed directly (stage 9) when asked for.
pub fn stage_objects(
    ctx: &Context,
    stage: StageId,
    workspaces: &[WorkspaceEntry],
) -> Result<Vec<Object>> {
    Ok(match stage {
        StageId::Storage => {
            let mut o = addon(ctx, "local-path-provisioner")?;
            super::storage::local_path(&mut o)?;
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
        StageId::Suite => suite(ctx, workspaces, false)?,
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

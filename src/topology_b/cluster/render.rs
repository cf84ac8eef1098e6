//! What each stage applies, as objects: shared by `up`, stage 9 (`optional`) and
//! `cluster render` (`render_dir`).

use super::super::addons::Addon;
use super::super::cache::Cache;
use super::super::fetch::chart;
use super::super::fetch::client::Client;
use super::super::fetch::helm;
use super::super::fetch::upstream::Network;
use super::super::manifests::Object;
use super::super::mirror::{FileSource, Folder, Found, Http, Location};
use super::super::pins::Source;
use super::super::stages::StageId;
use super::super::supply::{self, Origin, Supplied};
use super::context::Context;
use super::extras;
use crate::core::error::{Error, Result};
use crate::gitops::model::{Suite, WorkspaceEntry};

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

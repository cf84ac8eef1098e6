//! Vault for the suite, applied at the start of stage 8 before any suite object (the default;
//! `--without-vault` leaves it to a Vault of one's own), and stage 9 of `cluster up`: the
//! optional parts, each applied, waited and recorded on its own (`stages::optional_parts` says
//! which run): Airbyte (`--profile full`; through Argo CD when `--with-argocd`), Argo CD syncing
//! the suite from an in-cluster Git server (`--with-argocd`). A part's pins are recorded only
//! once everything of it is applied and ready, so an interrupted part runs again and a
//! finished one is skipped.
//!
//! - `vault`, `argocd`, `git_server`: the pure parts (objects, policies, scripts).
//! - here: the IO, over a `Supply` of objects so the tests can give their own.

pub mod argocd;
pub mod git_server;
pub mod vault;

use super::super::api::apply::{Applier, Outcome};
use super::super::api::call::{api_error, api_for, FIELD_MANAGER};
use super::super::api::resources::Resources;
use super::super::manifests::Object;
use super::super::stages::{self, Action, Observed, Options};
use super::context::Context;
use super::record;
use super::render::{self, SUITE_CLUSTER};
use crate::core::error::{Error, Result};
use crate::core::ui;
use crate::gitops::model::{Suite, WorkspaceEntry};
use crate::gitops::render::RenderedFile;

/// Where stage 9's objects come from.
pub trait Supply {
    /// An add-on's objects, as `cluster::render::addon` supplies them (mirror, cache, upstream).
    fn addon(&self, name: &str) -> Result<Vec<Object>>;
    /// The suite's objects for the recorded workspaces (what stage 8 applied): their Vault
    /// annotations say what Vault must hold.
    fn suite(&self) -> Result<Vec<Object>>;
    /// The gitops tree for the recorded workspaces, rendered for the in-cluster Git server.
    fn tree(&self) -> Result<Vec<RenderedFile>>;
}

/// The container security of every pod stage 9 adds itself (Vault's configuration Job, the Git
/// server): no privilege escalation, a read-only root, no capabilities; what it writes goes to
/// its volumes.
fn locked_down() -> serde_json::Value {
    serde_json::json!({
        "allowPrivilegeEscalation": false,
        "readOnlyRootFilesystem": true,
        "capabilities": {"drop": ["ALL"]},
    })
}

/// The supply of `cluster up`: the home's mirror or cache, and the recorded workspaces.
pub struct FromContext<'a> {
    pub ctx: &'a Context,
    pub workspaces: &'a [WorkspaceEntry],
    pub airbyte: bool,
}

impl Supply for FromContext<'_> {
    fn addon(&self, name: &str) -> Result<Vec<Object>> {
        render::addon(self.ctx, name)
    }
    fn suite(&self) -> Result<Vec<Object>> {
        render::suite(self.ctx, self.workspaces, self.airbyte)
    }
    fn tree(&self) -> Result<Vec<RenderedFile>> {
        tree(self.ctx.domain.as_str(), self.workspaces, self.airbyte)
    }
}

/// `gitops render` of the local cluster's suite with the in-cluster Git server as its
/// repository: the very tree Argo CD syncs. Airbyte's Application is in it only when Airbyte
/// is asked for, since Argo CD installs whatever the tree holds.
pub fn tree(
    domain: &str,
    workspaces: &[WorkspaceEntry],
    airbyte: bool,
) -> Result<Vec<RenderedFile>> {
    let suite = Suite::new(
        SUITE_CLUSTER,
        &git_server::url(),
        git_server::REVISION,
        domain,
        workspaces,
    )?;
    let files = crate::gitops::render::render(&suite)?;
    Ok(match airbyte {
        true => files,
        false => super::super::suite::without_airbyte(files),
    })
}

/// Stage 8 over any supply: Vault first (`stages::vault_action` says whether), applied,
/// configured, waited and recorded, so that the injector is there when the suite's pods are
/// created; then the suite's `objects`, applied and waited, and `entries` recorded.
pub async fn suite_stage(
    supply: &dyn Supply,
    client: &kube::Client,
    applier: &mut Applier,
    opts: &Options,
    objects: Vec<Object>,
    entries: Vec<(String, String)>,
    progress: &dyn Fn(&str),
) -> Result<Vec<(String, String)>> {
    let mut seen = Observed::default();
    record::observed(&record::read(client).await, &mut seen);
    let mut rows = Vec::new();
    let vault = stages::vault_action(opts, &seen.addons);
    let word = vault.word();
    match vault {
        Action::Run(_) => {
            let mut summary = install_vault(supply, client, applier, progress).await?;
            // Recorded only now that Vault is configured: an interrupted part runs again.
            record::mark(client, applier, record::entries_for_pins(&["vault"])).await?;
            // Pods created before the injector have no agent and never get one: those of a
            // suite applied earlier (a cluster from before Vault was the default) are replaced
            // now, so the waits below see pods that read their secrets.
            let restarted = restart_existing(client, &objects, progress).await?;
            if restarted > 0 {
                summary.push_str(&format!(
                    "; {restarted} workloads of the suite restarted to get Vault's agent"
                ));
            }
            rows.push(("vault".to_string(), summary));
        }
        Action::Done(why) | Action::Skip(why) => {
            rows.push(("vault".into(), format!("{word}: {why}")))
        }
    }
    progress("the suite: applying it");
    let summary = apply(applier, objects, progress).await?;
    record::mark(client, applier, entries).await?;
    rows.push(("factory suite".into(), summary));
    Ok(rows)
}

/// Stage 9 for `cluster up`: rows for the closing table, one per optional part.
pub async fn run(
    ctx: &Context,
    client: &kube::Client,
    applier: &mut Applier,
    opts: &Options,
    workspaces: &[WorkspaceEntry],
) -> Result<Vec<(String, String)>> {
    let supply = FromContext {
        ctx,
        workspaces,
        airbyte: opts.airbyte,
    };
    let bar = ui::spinner("optional: reading the stage record");
    let rows = run_with(&supply, client, applier, opts, &|m: &str| {
        bar.set_message(format!("optional: {m}"))
    })
    .await;
    bar.finish_and_clear();
    rows
}

/// Stage 9 over any supply (the tests give theirs).
pub async fn run_with(
    supply: &dyn Supply,
    client: &kube::Client,
    applier: &mut Applier,
    opts: &Options,
    progress: &dyn Fn(&str),
) -> Result<Vec<(String, String)>> {
    let mut seen = Observed::default();
    record::observed(&record::read(client).await, &mut seen);
    let mut rows = Vec::new();
    for (part, action) in stages::optional_parts(opts, &seen.addons) {
        let label = format!("optional {part}");
        let word = action.word();
        match action {
            Action::Run(_) => {}
            Action::Done(why) if part == "argocd" => {
                let note = refresh_tree(supply, client, applier, &seen, progress).await?;
                rows.push((label, format!("done: {why}{note}")));
                continue;
            }
            Action::Done(why) | Action::Skip(why) => {
                rows.push((label, format!("{word}: {why}")));
                continue;
            }
        }
        let (summary, mut entries) = match part {
            "airbyte" => {
                progress("airbyte: applying its chart");
                let n = apply(applier, supply.addon("airbyte")?, progress).await?;
                (n, record::entries_for_pins(&["airbyte"]))
            }
            "argocd" => {
                let (n, digest) = install_argocd(supply, applier, progress).await?;
                let mut e = record::entries_for_pins(&["argocd", "git-server"]);
                e.extend(record::entries_for_git_tree(&digest));
                (n, e)
            }
            other => return Err(Error::internal(format!("no optional part named {other}"))),
        };
        entries.sort();
        // Recorded only now that everything of the part is applied and ready.
        record::mark(client, applier, entries).await?;
        rows.push((label, summary));
    }
    Ok(rows)
}

/// Restart the workloads among `objects` that already run (as `kubectl rollout restart`: a
/// pod-template annotation, merge-patched), so their new pods pass through Vault's injector.
/// Returns how many were restarted.
async fn restart_existing(
    client: &kube::Client,
    objects: &[Object],
    progress: &dyn Fn(&str),
) -> Result<usize> {
    let resources = Resources::default();
    let patch = vault::restart_patch();
    let params = kube::api::PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    };
    let mut restarted = 0;
    for o in objects.iter().filter(|o| vault::restarted_kind(&o.kind)) {
        let api = api_for(client, &resources.of(o)?, o.namespace.as_deref());
        if api
            .get_opt(&o.name)
            .await
            .map_err(|e| api_error(o, e))?
            .is_none()
        {
            continue;
        }
        progress(&format!("vault: restarting {}", o.describe()));
        api.patch(&o.name, &params, &kube::api::Patch::Merge(&patch))
            .await
            .map_err(|e| api_error(o, e))?;
        restarted += 1;
    }
    Ok(restarted)
}

/// Apply and wait; the closing table's line.
async fn apply(
    applier: &mut Applier,
    objects: Vec<Object>,
    progress: &dyn Fn(&str),
) -> Result<String> {
    let applied = applier.apply(objects, progress).await?;
    let count = |w: Outcome| applied.iter().filter(|a| a.outcome == w).count();
    Ok(format!(
        "{} created, {} configured, {} unchanged; ready",
        count(Outcome::Created),
        count(Outcome::Configured),
        count(Outcome::Unchanged)
    ))
}

/// The chart (its root token from the seed Secret), the seed Secret when the cluster has none,
/// then the configuration Job, waited `Complete`.
async fn install_vault(
    supply: &dyn Supply,
    client: &kube::Client,
    applier: &mut Applier,
    progress: &dyn Fn(&str),
) -> Result<String> {
    // Read before anything is applied: a template that lost its annotations fails here.
    let roles = vault::roles(&supply.suite()?)?;
    let mut objects = supply.addon("vault")?;
    vault::use_seed_root_token(&mut objects)?;
    let secret = Resources::default()
        .find("v1", "Secret")
        .ok_or_else(|| Error::internal("no path for Secrets"))?;
    let seed = vault::seed_secret()?;
    let existing = api_for(client, &secret, Some(vault::NAMESPACE))
        .get_opt(vault::SEED)
        .await
        .map_err(|e| api_error(&seed, e))?;
    // The running server holds the root token it started with: an existing seed is kept.
    if existing.is_none() {
        objects.push(seed);
    }
    progress("vault: applying its chart");
    let chart = apply(applier, objects, progress).await?;
    progress("vault: configuring it for the suite");
    apply(applier, vault::config_objects(&roles)?, progress).await?;
    Ok(format!(
        "{chart}; configured: {} roles, secrets seeded (in Secret vault/{})",
        roles.len(),
        vault::SEED
    ))
}

/// The core install, the `default` project and the Git server holding the tree, waited; then
/// the suite's root Application, waited Synced and Healthy. Returns the line and the tree's
/// digest for the record.
async fn install_argocd(
    supply: &dyn Supply,
    applier: &mut Applier,
    progress: &dyn Fn(&str),
) -> Result<(String, String)> {
    let tree = supply.tree()?;
    let apps = argocd::root_applications(&tree)?;
    let mut objects = argocd::core(supply.addon("argocd")?)?;
    objects.extend(git_server::objects(&tree)?);
    progress("argocd: applying the core install and the Git server");
    let core = apply(applier, objects, progress).await?;
    progress("argocd: syncing the suite from the in-cluster Git server");
    apply(applier, apps, progress).await?;
    Ok((
        format!("{core}; the suite synced from {}", git_server::url()),
        git_server::tree_digest(&tree),
    ))
}

/// With Argo CD in place, a tree that changed (a workspace added or removed) goes to the Git
/// server; Argo CD syncs it from there.
async fn refresh_tree(
    supply: &dyn Supply,
    client: &kube::Client,
    applier: &mut Applier,
    seen: &Observed,
    progress: &dyn Fn(&str),
) -> Result<String> {
    let tree = supply.tree()?;
    let digest = git_server::tree_digest(&tree);
    if seen.addons.get(record::GIT_TREE) == Some(&digest) {
        return Ok(String::new());
    }
    progress("argocd: the rendered tree changed; updating the Git server");
    apply(applier, git_server::objects(&tree)?, progress).await?;
    record::mark(client, applier, record::entries_for_git_tree(&digest)).await?;
    Ok("; the Git server's tree updated".into())
}

/// The files `cluster render --with-vault --with-argocd` adds (Airbyte's, `09-airbyte.yaml`,
/// is written by `cluster::render` itself), in the order `up` applies them.
pub const RENDERED_FILES: &[&str] = &["07-vault.yaml", "09-argocd.yaml"];

/// What `cluster render` writes for Vault and Argo CD: everything `up` applies except the seed
/// Secret, whose values are generated in the cluster only and never written into a file (a
/// `kubectl apply` of the render needs the Secret `vault/appgear-vault-seed` made first, see
/// docs/topology-b.md).
pub fn rendered(
    supply: &dyn Supply,
    vault: bool,
    argocd: bool,
) -> Result<Vec<(&'static str, Vec<Object>)>> {
    let mut out = Vec::new();
    if vault {
        let roles = vault::roles(&supply.suite()?)?;
        let mut objects = supply.addon("vault")?;
        vault::use_seed_root_token(&mut objects)?;
        objects.extend(vault::config_objects(&roles)?);
        out.push((RENDERED_FILES[0], objects));
    }
    if argocd {
        let tree = supply.tree()?;
        let mut objects = argocd::core(supply.addon("argocd")?)?;
        objects.extend(git_server::objects(&tree)?);
        objects.extend(argocd::root_applications(&tree)?);
        out.push((RENDERED_FILES[1], objects));
    }
    Ok(out)
}

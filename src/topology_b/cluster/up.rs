//! `cluster up`: the stage plan, then each stage that must run, in order, each with a spinner,
//! its check and a clear failure. Every stage is idempotent, so a re-run after Ctrl-C or a
//! failure carries on; `--dry-run` stops after the plan and writes nothing.

use super::super::api::apply::{Applier, Outcome};
use super::super::api::wait::WaitTimes;
use super::super::kind::KindCli;
use super::super::kind_config;
use super::super::machine;
use super::super::preflight::Finding;
use super::super::stages::{self, Action, ClusterState, Observed, Options, Plan, StageId};
use super::context::{self, Context};
use super::record;
use super::render::stage_objects;
use super::smoke;
use crate::core::error::{Error, Result};
use crate::core::owned_files::{self, Ledger};
use crate::core::ui;
use crate::topology_a::home::Home;

pub struct UpOptions {
    pub options: Options,
    pub dry_run: bool,
    pub merge_kubeconfig: bool,
}

/// What `up` did, stage by stage, for the closing table.
pub struct UpReport {
    pub plan: Plan,
    /// (stage, what happened)
    pub done: Vec<(String, String)>,
    pub warnings: Vec<Finding>,
    /// What answered in the smoke stage, for the table `up` ends with.
    pub smoke: Vec<smoke::Row>,
}

impl UpReport {
    /// The first smoke check that failed, as the error `up` ends with after its table (exit 4).
    pub fn smoke_failure(&self) -> Option<Error> {
        let r = self.smoke.iter().find(|r| !r.ok)?;
        Some(
            Error::unhealthy(format!("smoke {} {}: {}", r.check, r.target, r.result))
                .hint("`appgear cluster status` shows what is not ready; `cluster up` again re-runs the checks"),
        )
    }
}

/// The plan alone: what `--dry-run` prints. Reads kind and Docker, writes nothing.
pub async fn plan(home: &Home, opts: &Options) -> Result<(Context, Observed, Plan)> {
    let ctx = Context::load(home)?;
    let mut seen = Observed {
        cluster: context::observe(&ctx).await?,
        ..Default::default()
    };
    if matches!(seen.cluster, ClusterState::Running { .. }) && ctx.kubeconfig().exists() {
        if let Ok(client) = ctx.client().await {
            record::observed(&record::read(&client).await, &mut seen);
        }
    }
    let plan = stages::plan(
        opts,
        ctx.workspaces.list(),
        &seen,
        env!("CARGO_PKG_VERSION"),
    );
    Ok((ctx, seen, plan))
}

pub async fn up(home: &Home, o: UpOptions) -> Result<UpReport> {
    let (ctx, seen, plan) = plan(home, &o.options).await?;
    let mut report = UpReport {
        plan: plan.clone(),
        done: Vec::new(),
        warnings: Vec::new(),
        smoke: Vec::new(),
    };
    if o.dry_run {
        return Ok(report);
    }
    let exists = !matches!(seen.cluster, ClusterState::Absent);

    // 0: refuse before anything slow starts.
    let bar =
        ui::spinner("preflight: Docker, CPUs, memory, disk, inotify, kind/kubectl/helm, ports");
    let checked = machine::preflight(&ctx.root, o.options.profile, &ctx.settings, exists).await;
    bar.finish_and_clear();
    report.warnings = checked?;
    report.done.push(("preflight".into(), "passed".into()));

    // 1: the kind cluster.
    let kind = KindCli::find()?;
    match &seen.cluster {
        ClusterState::Absent => {
            write_kind_config(&ctx)?;
            let bar = ui::spinner(format!(
                "kind cluster: creating {} (about 40 s)",
                ctx.name()
            ));
            let created = kind.create(ctx.name(), &ctx.kind_config(), &ctx.kubeconfig());
            bar.finish_and_clear();
            created?;
            report
                .done
                .push(("kind cluster".into(), format!("created {}", ctx.name())));
        }
        ClusterState::Stopped => {
            // The laptop or Docker restarted: the node keeps the cluster's state; start it.
            let docker = crate::topology_a::stack::docker::connect().await?;
            docker
                .start_container(&ctx.node(), None::<bollard::query_parameters::StartContainerOptions>)
                .await
                .map_err(|e| {
                    Error::not_ready(format!("cannot start the kind node {}: {e}", ctx.node()))
                        .hint("`docker start` it yourself, or `appgear cluster down` then `cluster up` (the workspaces' data is kept)")
                })?;
            // kubeadm's `init` waited for the API server when the cluster was created; after a
            // restart nothing did, so wait for it here (it takes 10-30 s).
            let client = ctx.client().await?;
            let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(120);
            while let Err(e) = client.apiserver_version().await {
                if tokio::time::Instant::now() >= deadline {
                    return Err(Error::unhealthy(format!("the API server of {} did not answer within 2 minutes of starting its node: {e}", ctx.name()))
                        .hint(format!("see `docker logs {}`; `appgear cluster down` then `cluster up` recreates it (the workspaces' data is kept)", ctx.node())));
                }
                tokio::time::sleep(std::time::Duration::from_secs(2)).await;
            }
            report
                .done
                .push(("kind cluster".into(), format!("started {}", ctx.node())));
        }
        ClusterState::Running { .. } => {
            if !ctx.kubeconfig().exists() {
                // The home's kubeconfig was removed: kind gives it again.
                let text = kind.kubeconfig(ctx.name())?;
                crate::core::files::write_atomic(&ctx.kubeconfig(), text.as_bytes(), Some(0o600))
                    .map_err(|e| crate::core::files::not_writable(&ctx.kubeconfig(), e))?;
            }
            report.done.push(("kind cluster".into(), "running".into()));
        }
    }
    // The images this machine already has, into the node before anything asks for them.
    let bar = ui::spinner("images: loading what this machine's Docker holds into the node");
    let preloaded = super::preload::run(&kind, ctx.name(), o.options.profile).await;
    bar.finish_and_clear();
    match preloaded? {
        names if names.is_empty() => {}
        names => report.done.push((
            "images".into(),
            format!("{} loaded from this machine", names.len()),
        )),
    }
    if o.merge_kubeconfig {
        kind.export_kubeconfig(ctx.name())?;
        report.done.push((
            "kubeconfig".into(),
            format!(
                "merged into your kubeconfig as {}",
                ctx.settings.name.context()
            ),
        ));
    }

    // 2..8: what the API takes.
    let client = ctx.client().await?;
    let mut applier = Applier::new(client.clone(), WaitTimes::default());
    let workspaces = ctx.workspaces.entries();
    let version = env!("CARGO_PKG_VERSION");
    for step in &plan.steps {
        let id = step.stage.id;
        match (&step.action, id) {
            (_, StageId::Preflight | StageId::Cluster) => continue,
            // Each optional part plans itself; also when done, since a changed tree (a
            // workspace added) goes to Argo CD's Git server.
            (Action::Run(_) | Action::Done(_), StageId::Optional) => {
                let rows =
                    super::optional::run(&ctx, &client, &mut applier, &o.options, &workspaces)
                        .await?;
                report.done.extend(rows);
                continue;
            }
            (Action::Done(why) | Action::Skip(why), _) => {
                report.done.push((
                    step.stage.name.into(),
                    format!("{}: {why}", step.action.word()),
                ));
                continue;
            }
            (Action::Run(_), StageId::SuiteImage) => {
                let bar =
                    ui::spinner("suite image: building and loading it into the node (about 10 s)");
                let loaded = load_suite_image(&ctx, &kind).await;
                bar.finish_and_clear();
                let loaded = loaded?;
                record::mark(&client, &mut applier, record::entries_for_image(version)).await?;
                report
                    .done
                    .push((step.stage.name.into(), format!("loaded {loaded}")));
                continue;
            }
            // Vault first (unless --without-vault): the injector only injects pods created
            // after it runs, and the suite's pods read their secrets from its agent.
            (Action::Run(_), StageId::Suite) => {
                let objects = stage_objects(&ctx, id, &workspaces)?;
                let supply = super::optional::FromContext {
                    ctx: &ctx,
                    workspaces: &workspaces,
                    airbyte: o.options.airbyte,
                };
                let entries = record::entries_for_suite(
                    version,
                    &workspaces.iter().map(|w| w.id.clone()).collect::<Vec<_>>(),
                );
                let bar = ui::spinner(format!(
                    "{}: {} objects (usually {})",
                    step.stage.name,
                    objects.len(),
                    step.stage.usually
                ));
                let rows = super::optional::suite_stage(
                    &supply,
                    &client,
                    &mut applier,
                    &o.options,
                    objects,
                    entries,
                    &|m: &str| bar.set_message(format!("{}: {m}", step.stage.name)),
                )
                .await;
                bar.finish_and_clear();
                report.done.extend(rows?);
                continue;
            }
            (Action::Run(_), StageId::Smoke) => {
                let bar = ui::spinner(
                    "smoke: waking each workspace's gateway and code-server, syncing a document",
                );
                report.smoke = smoke_checks(&ctx, &client).await;
                bar.finish_and_clear();
                let failed = report.smoke.iter().filter(|r| !r.ok).count();
                report.done.push((
                    step.stage.name.into(),
                    match failed {
                        0 => format!("{} checks answered", report.smoke.len()),
                        n => format!("{n} of {} checks failed", report.smoke.len()),
                    },
                ));
                continue;
            }
            (Action::Run(_), _) => {}
        }
        let objects = stage_objects(&ctx, id, &workspaces)?;
        let bar = ui::spinner(format!(
            "{}: {} objects (usually {})",
            step.stage.name,
            objects.len(),
            step.stage.usually
        ));
        let applied = applier
            .apply(objects, &|m: &str| {
                bar.set_message(format!("{}: {m}", step.stage.name))
            })
            .await;
        bar.finish_and_clear();
        let applied = applied?;
        // Recorded only now that everything of the stage is applied and waited for.
        record::mark(
            &client,
            &mut applier,
            record::entries_for_pins(step.stage.pins),
        )
        .await?;
        let count = |w: Outcome| applied.iter().filter(|a| a.outcome == w).count();
        report.done.push((
            step.stage.name.into(),
            format!(
                "{} created, {} configured, {} unchanged; ready",
                count(Outcome::Created),
                count(Outcome::Configured),
                count(Outcome::Unchanged)
            ),
        ));
    }
    Ok(report)
}

/// The gateway's token secret lives only in Vault (`kv/appgear/addon-factory-multiplayer/config`,
/// key `token`, written into the pod by Vault's agent). `cluster up` seeds it from the Secret
/// `vault/appgear-vault-seed`, which is what the cluster has: the sync check mints its token
/// (as `appgear multiplayer token` does) from that value, or from `MULTIPLAYER_TOKEN_SECRET`
/// when set (a Vault seeded by hand). Neither: the check is skipped, saying so.
const TOKEN_SECRET: &str = "MULTIPLAYER_TOKEN_SECRET";
/// The seed Secret's key for the gateway's token secret (`optional::vault`'s seed keys).
const SEED_KEY: &str = super::optional::vault::MULTIPLAYER_TOKEN;

async fn token_secret(client: &kube::Client) -> std::result::Result<String, String> {
    use super::optional::vault;
    if let Some(v) = std::env::var(TOKEN_SECRET).ok().filter(|v| !v.is_empty()) {
        return Ok(v);
    }
    let seed = format!("{}/{}", vault::NAMESPACE, vault::SEED);
    let secrets: kube::Api<k8s_openapi::api::core::v1::Secret> =
        kube::Api::namespaced(client.clone(), vault::NAMESPACE);
    match secrets.get_opt(vault::SEED).await {
        Ok(Some(s)) => s
            .data
            .and_then(|d| d.get(SEED_KEY).map(|b| b.0.clone()))
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| format!("the seed Secret {seed} has no text {SEED_KEY}")),
        Ok(None) => Err(format!(
            "the gateway's token secret is in Vault only and this cluster has no Vault seed ({seed}): `cluster up` (without --without-vault) installs it, or set {TOKEN_SECRET}"
        )),
        Err(e) => Err(format!("cannot read the Vault seed {seed}: {e}")),
    }
}

fn smoke_token(
    workspace: &str,
    secret: &std::result::Result<String, String>,
) -> std::result::Result<String, String> {
    let secret = crate::multiplayer::config::load_secret_for_token(None, Some(secret.clone()?))
        .map_err(|e| format!("the gateway's token secret: {}", e.message))?;
    let claims = crate::multiplayer::token::Claims {
        ws: workspace.to_string(),
        ro: false,
        exp: crate::multiplayer::token::now_unix() + 600,
        sub: Some("appgear-smoke".into()),
    };
    Ok(crate::multiplayer::token::mint(&claims, secret.bytes()))
}

/// Every workspace's smoke checks through Kong's host port (on this machine when the ports
/// listen on every address).
async fn smoke_checks(ctx: &Context, client: &kube::Client) -> Vec<smoke::Row> {
    let secret = token_secret(client).await;
    let ip = if ctx.settings.bind.is_unspecified() {
        std::net::IpAddr::from([127, 0, 0, 1])
    } else {
        ctx.settings.bind
    };
    let addr = std::net::SocketAddr::new(ip, ctx.settings.http_port).to_string();
    let mut rows = Vec::new();
    for w in ctx.workspaces.list() {
        let id = w.id.as_str();
        let target = smoke::Target {
            addr: &addr,
            workspace: id,
            host: format!("{id}.{}", ctx.domain.as_str()),
            token: smoke_token(id, &secret),
            bound: smoke::Bound::default(),
        };
        rows.extend(smoke::workspace(&target).await);
    }
    if rows.is_empty() {
        rows.push(smoke::Row {
            check: "workspaces".into(),
            target: "-".into(),
            result: "none recorded, nothing to check (`appgear workspace add ID --tenant T`)"
                .into(),
            time: None,
            ok: true,
        });
    }
    rows
}

/// The suite's own image into the node with no registry: built from this binary
/// (`appgear image build`, reused when nothing changed), saved to an archive in the home's cache,
/// and `kind load image-archive`.
async fn load_suite_image(ctx: &Context, kind: &KindCli) -> Result<String> {
    let built = super::super::image::build::build(None).await?;
    let dir = ctx.root.join("data/cache/images");
    crate::core::files::create_dir_all(&dir)
        .map_err(|e| crate::core::files::not_writable(&dir, e))?;
    let archive = dir.join(format!("appgear-{}.tar", env!("CARGO_PKG_VERSION")));
    super::super::image::archive::save(
        &[super::super::image::archive::Wanted::named(
            &built.reference,
        )],
        &archive,
    )
    .await?;
    kind.load_archive(ctx.name(), &archive)?;
    Ok(built.reference)
}

/// `config/kind/cluster.yaml` (and the registry mirror's hosts.toml) under the owned-file policy,
/// and `data/cluster`, the node's volume path, so Docker does not create it as root.
fn write_kind_config(ctx: &Context) -> Result<()> {
    let files = kind_config::render(&ctx.settings, &ctx.root)?;
    let mut ledger = Ledger::load(&ctx.root);
    let plan = owned_files::plan(&ctx.root, files, &[], &ledger)?;
    for step in &plan.steps {
        if let Some(m) = step.message() {
            ui::warn(&m);
        }
    }
    owned_files::apply(&plan, &mut ledger)?;
    crate::core::files::create_dir_all(&ctx.storage())
        .map_err(|e| crate::core::files::not_writable(&ctx.storage(), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_smoke_token_is_the_gateways_own_kind_of_token() {
        let secret = Ok("seeded-secret-0123456789\n".to_string());
        let token = smoke_token("demo", &secret).unwrap();
        // The gateway trims the file Vault's agent writes the same way.
        let claims = crate::multiplayer::token::verify(
            &token,
            b"seeded-secret-0123456789",
            "demo",
            crate::multiplayer::token::now_unix(),
        )
        .unwrap();
        assert_eq!(claims.sub.as_deref(), Some("appgear-smoke"));
        assert!(!claims.ro);

        let none = Err("no Vault seed".to_string());
        assert_eq!(smoke_token("demo", &none).unwrap_err(), "no Vault seed");
        let short = smoke_token("demo", &Ok("tiny".into())).unwrap_err();
        assert!(short.starts_with("the gateway's token secret: "), "{short}");
        assert!(
            !short.contains("tiny"),
            "the secret is not printed: {short}"
        );
    }
}

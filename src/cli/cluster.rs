//! `appgear cluster up|down|status|render|mirror`: Topology B on a local kind cluster.

use crate::core::error::{Error, Result};
use crate::core::owned_files::Action as FileAction;
use crate::core::ui;
use crate::gitops::model::WorkspaceEntry;
use crate::topology_a::home::Home;
use crate::topology_b::cluster::{context::Context, down, mirror, render_dir, smoke, status, up};
use crate::topology_b::stages::{Options, Profile};
use clap::{Args, Subcommand};
use std::io::IsTerminal;
use std::path::PathBuf;

#[derive(Subcommand, Debug)]
pub enum ClusterCommand {
    /// Create the kind cluster and bring the Factory suite up on it, stage by stage.
    Up(UpArgs),
    /// Delete the kind cluster; keep the workspaces' data (data/cluster) unless --purge --yes.
    Down(DownArgs),
    /// The cluster, its add-ons and each workload's health.
    Status(StatusArgs),
    /// Write every object `cluster up` would apply, as files, for review or `kubectl apply -k`.
    Render(RenderArgs),
    /// Write a mirror folder of every pinned add-on (for APPGEAR_ADDONS_MIRROR on an offline laptop).
    Mirror(MirrorArgs),
}

#[derive(Args, Debug)]
pub struct UpArgs {
    /// core: the suite without Airbyte (4 CPUs, 8 GiB for Docker); full: with Airbyte (16 GiB).
    #[arg(long, default_value = "core")]
    pub profile: String,
    #[arg(long)]
    pub with_airbyte: bool,
    /// Vault (dev mode + agent injector), configured for the suite before it: the default.
    #[arg(long, conflicts_with = "without_vault")]
    pub with_vault: bool,
    /// Leave Vault out: the suite's secrets must then come from your own Vault (its agent
    /// injector, the roles and kv/appgear paths the suite's annotations name).
    #[arg(long)]
    pub without_vault: bool,
    #[arg(long)]
    pub with_argocd: bool,
    /// Print the plan and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Also merge the cluster into your kubeconfig ($KUBECONFIG or ~/.kube/config) and make it current.
    #[arg(long)]
    pub merge_kubeconfig: bool,
}

#[derive(Args, Debug)]
pub struct DownArgs {
    /// Also delete the workspaces' data (data/cluster).
    #[arg(long)]
    pub purge: bool,
    /// Do not ask before --purge.
    #[arg(long, short)]
    pub yes: bool,
}

#[derive(Args, Debug)]
pub struct StatusArgs {
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct RenderArgs {
    #[arg(long)]
    pub out: PathBuf,
    /// A workspace to render (with its --tenant); the recorded workspaces when none is given.
    #[arg(long = "workspace", value_name = "ID")]
    pub workspaces: Vec<String>,
    #[arg(long = "tenant", value_name = "ID")]
    pub tenants: Vec<String>,
    /// Include Airbyte (the full profile).
    #[arg(long)]
    pub with_airbyte: bool,
    /// Leave Vault out, as `cluster up --without-vault` does (Vault is rendered by default).
    #[arg(long)]
    pub without_vault: bool,
    /// Include Argo CD and its Git server, as `cluster up --with-argocd` applies them.
    #[arg(long)]
    pub with_argocd: bool,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct MirrorArgs {
    #[arg(long)]
    pub out: PathBuf,
}

pub async fn run(home: &Home, cmd: ClusterCommand) -> Result<i32> {
    match cmd {
        ClusterCommand::Up(a) => cluster_up(home, a).await,
        ClusterCommand::Down(a) => cluster_down(home, a),
        ClusterCommand::Status(a) => cluster_status(home, a).await,
        ClusterCommand::Render(a) => cluster_render(home, a),
        ClusterCommand::Mirror(a) => cluster_mirror(home, a),
    }
}

async fn cluster_up(home: &Home, a: UpArgs) -> Result<i32> {
    let options = Options::new(
        Profile::parse(&a.profile)?,
        a.with_airbyte,
        // Vault is the suite's secret source, so it is on unless left out on purpose.
        !a.without_vault,
        a.with_argocd,
    )?;
    if a.dry_run {
        let (ctx, _, plan) = up::plan(home, &options).await?;
        // What the plan is for, as read from `.env` (the shell over it).
        ui::out(format!(
            "cluster {} (context {}), Kong on {}:{} (HTTP) and {}:{} (HTTPS)",
            ctx.name(),
            ctx.settings.name.context(),
            ctx.settings.bind,
            ctx.settings.http_port,
            ctx.settings.bind,
            ctx.settings.https_port
        ));
        for line in plan.lines() {
            ui::out(line);
        }
        return Ok(0);
    }
    home.ensure_root()?;
    let _lock = home.lock("cluster up")?;
    let report = up::up(
        home,
        up::UpOptions {
            options,
            dry_run: false,
            merge_kubeconfig: a.merge_kubeconfig,
        },
    )
    .await?;
    for w in &report.warnings {
        ui::warn(&format!("{} ({})", w.message, w.fix));
    }
    let rows: Vec<Vec<String>> = report
        .done
        .iter()
        .map(|(s, d)| vec![s.clone(), d.clone()])
        .collect();
    ui::out(ui::table(&["stage", "result"], &rows));
    if !report.smoke.is_empty() {
        let rows: Vec<Vec<String>> = report.smoke.iter().map(|r| r.cells()).collect();
        ui::out(ui::table(&smoke::HEADER, &rows));
    }
    if let Some(e) = report.smoke_failure() {
        return Err(e);
    }
    let ctx = Context::load(home)?;
    ui::step(&format!(
        "cluster {} is up; kubeconfig: {} (context {})",
        ctx.name(),
        ctx.kubeconfig().display(),
        ctx.settings.name.context()
    ));
    for w in ctx.workspaces.list() {
        ui::out(format!(
            "  {}: https://{}.{}:{}/",
            w.id.as_str(),
            w.id.as_str(),
            ctx.domain.as_str(),
            ctx.settings.https_port
        ));
    }
    Ok(0)
}

fn cluster_down(home: &Home, a: DownArgs) -> Result<i32> {
    if a.purge && !a.yes {
        if !std::io::stdin().is_terminal() {
            return Err(Error::bad_input(
                "--purge deletes the workspaces' files and needs confirmation",
            )
            .hint("run `appgear cluster down --purge --yes` to confirm"));
        }
        ui::err("This deletes the cluster AND every workspace's files (data/cluster). Type yes to go on:");
        let mut answer = String::new();
        let _ = std::io::stdin().read_line(&mut answer);
        if answer.trim() != "yes" {
            return Err(Error::bad_input("not confirmed; nothing was deleted")
                .hint("type yes, or pass --yes"));
        }
    }
    let _lock = home.lock("cluster down")?;
    let r = down::down(home, a.purge)?;
    if r.deleted {
        ui::step(&format!("deleted the kind cluster {}", r.name));
    } else {
        ui::step(&format!("there was no kind cluster {}", r.name));
    }
    if r.purged {
        ui::step(&format!("removed {}", r.storage.display()));
    } else {
        ui::out(format!(
            "  kept the workspaces' data in {} (`cluster up` finds it again)",
            r.storage.display()
        ));
    }
    Ok(0)
}

async fn cluster_status(home: &Home, a: StatusArgs) -> Result<i32> {
    let s = status::status(home).await?;
    let code = if s.healthy() { 0 } else { 1 };
    if a.json {
        ui::print_json(&s)?;
        return Ok(code);
    }
    ui::out(format!(
        "cluster {}: {}{}",
        s.cluster,
        s.state,
        s.node_image
            .as_deref()
            .map(|i| format!(" ({i})"))
            .unwrap_or_default()
    ));
    let stages: Vec<Vec<String>> = s
        .stages
        .iter()
        .map(|r| {
            let mut cells = r.cells();
            cells[1] = match r.state {
                status::StageState::Done => ui::green(&cells[1]),
                status::StageState::None => cells[1].clone(),
                _ => ui::yellow(&cells[1]),
            };
            cells
        })
        .collect();
    if !stages.is_empty() {
        ui::out(ui::table(&["stage", "state", "installed"], &stages));
    }
    let rows: Vec<Vec<String>> = s
        .workloads
        .iter()
        .map(|w| {
            vec![
                w.part.clone(),
                format!("{}/{}", w.namespace, w.name),
                w.kind.clone(),
                if w.ready {
                    ui::green("ready")
                } else {
                    ui::red(&w.detail)
                },
            ]
        })
        .collect();
    if !rows.is_empty() {
        ui::out(ui::table(&["part", "workload", "kind", "health"], &rows));
    }
    Ok(code)
}

fn cluster_render(home: &Home, a: RenderArgs) -> Result<i32> {
    if a.workspaces.len() != a.tenants.len() {
        return Err(Error::bad_input(format!(
            "{} --workspace but {} --tenant given",
            a.workspaces.len(),
            a.tenants.len()
        ))
        .hint("give each --workspace ID its --tenant ID, e.g. --workspace demo --tenant acme"));
    }
    let entries: Vec<WorkspaceEntry> = a
        .workspaces
        .iter()
        .zip(&a.tenants)
        .map(|(id, tenant)| WorkspaceEntry {
            id: id.clone(),
            tenant: tenant.clone(),
        })
        .collect();
    let ctx = Context::load(home)?;
    let parts = render_dir::Parts {
        airbyte: a.with_airbyte,
        vault: !a.without_vault,
        argocd: a.with_argocd,
    };
    let r = render_dir::render(&ctx, &a.out, &entries, parts)?;
    if a.json {
        ui::print_json(
            &serde_json::json!({"out": a.out, "objects": r.objects, "files": r.plan.steps}),
        )?;
        return Ok(0);
    }
    for s in &r.plan.steps {
        if let Some(m) = s.message() {
            ui::warn(&m);
        }
    }
    ui::step(&format!(
        "wrote {} objects into {}: {} created, {} updated, {} unchanged, {} kept",
        r.objects,
        a.out.display(),
        r.plan.count(FileAction::Create),
        r.plan.count(FileAction::Update),
        r.plan.count(FileAction::Unchanged),
        r.plan.count(FileAction::KeepUsers) + r.plan.count(FileAction::KeepEdited),
    ));
    ui::out(format!(
        "next: kubectl apply --server-side --field-manager=appgear -k {}",
        a.out.display()
    ));
    Ok(0)
}

fn cluster_mirror(home: &Home, a: MirrorArgs) -> Result<i32> {
    let ctx = Context::load(home)?;
    let written = mirror::write(&ctx, &a.out)?;
    for w in &written {
        ui::step(&format!("wrote {w}"));
    }
    ui::out(format!(
        "set APPGEAR_ADDONS_MIRROR={} on the offline laptop",
        a.out.display()
    ));
    Ok(0)
}

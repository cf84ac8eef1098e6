//! `appgear gitops ...`: render the appgear-gitops-suites tree.

use crate::core::error::{Error, Result};
use crate::core::owned_files::Action;
use crate::core::ui;
use crate::gitops::model::{read_workspaces_file, Suite, WorkspaceEntry};
use crate::gitops::output;
use crate::gitops::render;
use clap::{Args, Subcommand};
use std::path::PathBuf;

#[derive(Subcommand, Debug)]
pub enum GitopsCommand {
    /// Write the appgear-gitops-suites tree (apps/factory, clusters/<cluster>/apps-suites.yaml).
    Render(RenderArgs),
}

#[derive(Args, Debug)]
pub struct RenderArgs {
    /// The folder to write the tree into (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    /// The cluster that runs the suite, named ag-<region>-core-<env>.
    #[arg(long)]
    pub cluster: String,
    /// A workspace id; pair each with a --tenant, in the same order.
    #[arg(long = "workspace", value_name = "ID")]
    pub workspaces: Vec<String>,
    /// The tenant of the --workspace at the same position.
    #[arg(long = "tenant", value_name = "ID")]
    pub tenants: Vec<String>,
    /// A YAML file listing workspaces: `workspaces: [{id: demo, tenant: acme}]`.
    #[arg(long, value_name = "FILE")]
    pub workspaces_file: Option<PathBuf>,
    /// The Git URL Argo CD pulls this tree from.
    #[arg(
        long,
        default_value = "https://git.example.com/appgear-gitops-suites.git"
    )]
    pub repo: String,
    /// The branch, tag or commit Argo CD tracks.
    #[arg(long, default_value = "main")]
    pub revision: String,
    /// The DNS domain of the Ingress hosts: <workspace>.<domain> and airbyte.<domain>.
    #[arg(long, default_value = "factory.dev.appgear.local")]
    pub domain: String,
    /// Render into a folder that is not empty and holds no earlier render. Files without
    /// appgear's marker are still never overwritten.
    #[arg(long)]
    pub force: bool,
    /// Print what was written as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(cmd: GitopsCommand) -> Result<i32> {
    match cmd {
        GitopsCommand::Render(args) => render_tree(args),
    }
}

fn render_tree(args: RenderArgs) -> Result<i32> {
    if args.workspaces.len() != args.tenants.len() {
        return Err(Error::bad_input(format!(
            "{} --workspace but {} --tenant given",
            args.workspaces.len(),
            args.tenants.len()
        ))
        .hint("give each --workspace ID its --tenant ID, e.g. --workspace demo --tenant acme"));
    }
    let mut entries: Vec<WorkspaceEntry> = args
        .workspaces
        .iter()
        .zip(&args.tenants)
        .map(|(id, tenant)| WorkspaceEntry {
            id: id.clone(),
            tenant: tenant.clone(),
        })
        .collect();
    if let Some(file) = &args.workspaces_file {
        entries.extend(read_workspaces_file(file)?);
    }
    let suite = Suite::new(
        &args.cluster,
        &args.repo,
        &args.revision,
        &args.domain,
        &entries,
    )?;

    let files = render::render(&suite)?;
    let plan = output::plan(&args.out, files, args.force)?;
    output::apply(&plan)?;

    if args.json {
        ui::print_json(&serde_json::json!({
            "out": args.out,
            "cluster": suite.cluster.as_str(),
            "workspaces": suite.workspaces.iter().map(|w| serde_json::json!({
                "id": w.id.as_str(), "tenant": w.tenant.as_str(), "namespace": w.id.namespace(),
            })).collect::<Vec<_>>(),
            "files": plan.steps,
        }))?;
        return Ok(0);
    }

    for s in &plan.steps {
        match (s.action, s.message()) {
            (Action::RemoveStale, Some(m)) => ui::step(&m),
            (_, Some(m)) => ui::warn(&m),
            _ => {}
        }
    }
    ui::step(&format!(
        "rendered the Factory suite for {} ({} workspace{}) into {}: {} created, {} updated, {} unchanged, {} kept, {} removed",
        suite.cluster.as_str(),
        suite.workspaces.len(),
        if suite.workspaces.len() == 1 { "" } else { "s" },
        args.out.display(),
        plan.count(Action::Create),
        plan.count(Action::Update),
        plan.count(Action::Unchanged),
        plan.count(Action::KeepUsers) + plan.count(Action::KeepEdited),
        plan.count(Action::RemoveStale),
    ));
    ui::out(format_args!(
        "next: appgear verify {out}\n      push {out} to {repo} ({rev}), then register it once with Argo CD:\n      kubectl apply -n argocd -f {out}/clusters/{cluster}/apps-suites.yaml",
        out = args.out.display(),
        repo = suite.repo.as_str(),
        rev = suite.revision.as_str(),
        cluster = suite.cluster.as_str(),
    ));
    Ok(0)
}

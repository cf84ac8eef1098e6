//! `appgear workspace add|remove|list`: the local cluster's workspaces.

use crate::core::error::{Error, Result};
use crate::core::ui;
use crate::topology_a::home::Home;
use crate::topology_b::cluster::{context::Context, workspace};
use crate::topology_b::workspaces::Change;
use clap::{Args, Subcommand};

#[derive(Subcommand, Debug)]
pub enum WorkspaceCommand {
    /// Record a workspace and, when the cluster runs, bring up ws-<ID>-factory.
    Add(AddArgs),
    /// Forget a workspace; its namespace runs until `cluster down` unless --purge --yes; its files stay.
    Remove(RemoveArgs),
    /// The recorded workspaces.
    List(ListArgs),
}

#[derive(Args, Debug)]
pub struct AddArgs {
    pub id: String,
    #[arg(long)]
    pub tenant: String,
}

#[derive(Args, Debug)]
pub struct RemoveArgs {
    pub id: String,
    /// Also delete its namespace in the cluster now (its files stay in data/cluster).
    #[arg(long)]
    pub purge: bool,
    #[arg(long, short)]
    pub yes: bool,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    #[arg(long)]
    pub json: bool,
}

pub async fn run(home: &Home, cmd: WorkspaceCommand) -> Result<i32> {
    match cmd {
        WorkspaceCommand::Add(a) => {
            home.ensure_root()?;
            let r = workspace::add(home, &a.id, &a.tenant).await?;
            let what = match r.change {
                Change::Added => "recorded",
                Change::Unchanged => "already recorded",
            };
            ui::step(&format!("workspace {} ({}) {what}", a.id, r.namespace));
            if r.applied {
                ui::out(format!("  {} is up in the cluster", r.namespace));
            } else {
                ui::out("  the cluster is not running: `appgear cluster up` brings it up");
            }
            Ok(0)
        }
        WorkspaceCommand::Remove(a) => {
            if a.purge && !a.yes {
                return Err(Error::bad_input(format!(
                    "--purge deletes workspace {}'s namespace and needs confirmation",
                    a.id
                ))
                .hint(format!(
                    "run `appgear workspace remove {} --purge --yes` to confirm",
                    a.id
                )));
            }
            let r = workspace::remove(home, &a.id, a.purge).await?;
            ui::step(&format!("workspace {} forgotten", a.id));
            if r.deleted_namespace {
                ui::out(format!("  deleted namespace {}; its files stay in data/cluster until `cluster down --purge --yes`", r.namespace));
            } else {
                ui::out(format!("  namespace {} keeps running until `cluster down` (--purge --yes deletes it); its files stay in data/cluster", r.namespace));
            }
            Ok(0)
        }
        WorkspaceCommand::List(a) => {
            let ctx = Context::load(home)?;
            let list = ctx.workspaces.list();
            if a.json {
                let v: Vec<_> = list
                    .iter()
                    .map(|w| serde_json::json!({"id": w.id.as_str(), "tenant": w.tenant.as_str(), "namespace": w.id.namespace()}))
                    .collect();
                ui::print_json(&v)?;
                return Ok(0);
            }
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|w| {
                    vec![
                        w.id.as_str().to_string(),
                        w.tenant.as_str().to_string(),
                        w.id.namespace(),
                    ]
                })
                .collect();
            if rows.is_empty() {
                ui::out("no workspaces; `appgear workspace add ID --tenant T` adds one");
            } else {
                ui::out(ui::table(&["id", "tenant", "namespace"], &rows));
            }
            Ok(0)
        }
    }
}

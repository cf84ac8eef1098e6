//! `up`: check and provision the home, then converge Docker to its compose file. Nothing in
//! Docker changes before the plan is known to be safe (no blocker), and `--dry-run` writes
//! nothing at all.

use crate::core::error::{Error, Result};
use crate::core::ui::Tracker;
use crate::topology_a::env_store;
use crate::topology_a::home::Home;
use crate::topology_a::lock::HomeLock;
use crate::topology_a::provision::{self, InitReport, Provisioned};
use crate::topology_a::settings::Settings;
use crate::topology_a::stack::project::Project;
use crate::topology_a::stack::{apply, docker, load, plan};

/// The home, locked and provisioned, with its settings (read and checked once) and its stack.
pub struct Prepared {
    _lock: HomeLock,
    pub settings: Settings,
    pub report: InitReport,
    pub project: Project,
}

/// Refuse a home Docker cannot mount, then create or complete it (`init`, with `others`: keys
/// other products keep in the same `.env`) under its lock and read its stack. Docker is not
/// touched yet.
pub fn prepare(home: &Home, others: &[crate::topology_a::keys::OtherKey]) -> Result<Prepared> {
    load::mountable(home.root())?;
    home.ensure_root()?;
    let lock = home.lock("up")?;
    let Provisioned { settings, report } = provision::init_with(home, others)?;
    let project = load::load(home, &settings)?;
    Ok(Prepared {
        _lock: lock,
        settings,
        report,
        project,
    })
}

fn container_names(project: &Project) -> Vec<String> {
    project
        .services
        .iter()
        .map(|s| s.container_name.clone())
        .collect()
}

/// Converge Docker to the stack, with progress. Returns notes worth a word that did not stop
/// anything. Ctrl-C stops cleanly; the next `up` carries on.
pub async fn converge(prepared: &Prepared, tracker: &Tracker) -> Result<Vec<String>> {
    let project = &prepared.project;
    let docker = docker::connect().await?;
    let observed = docker::observe(
        &docker,
        &project.name,
        &project.working_dir,
        &container_names(project),
    )
    .await?;
    let plan = plan::plan(project, &observed);
    tokio::select! {
        r = apply::apply(&docker, project, &plan, &prepared.settings, tracker) => r?,
        _ = tokio::signal::ctrl_c() => return Err(Error::interrupted()),
    }
    Ok(plan.notes())
}

/// What `up` would change, from the home as it is; `None` when the home is not initialised.
pub async fn dry_run(home: &Home) -> Result<Option<Vec<String>>> {
    if !home.is_initialised() {
        return Ok(None);
    }
    let settings = env_store::settings(home)?;
    let project = load::load(home, &settings)?;
    let docker = docker::connect().await?;
    let observed = docker::observe(
        &docker,
        &project.name,
        &project.working_dir,
        &container_names(&project),
    )
    .await?;
    let plan = plan::plan(&project, &observed);
    let mut lines = plan.describe(&project.name);
    lines.extend(plan.notes().into_iter().map(|n| format!("note: {n}")));
    Ok(Some(lines))
}

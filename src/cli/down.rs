//! `appgear down`: stop and remove the containers and the network; keep config/, data/ and the
//! volumes. `--purge` also removes appgear's named volumes, after confirmation.

use crate::core::error::{Error, Result};
use crate::core::ui;
use crate::topology_a::home::Home;
use crate::topology_a::stack::down;
use clap::Args;
use std::io::IsTerminal;

#[derive(Args, Debug)]
pub struct DownArgs {
    /// Also remove appgear's named volumes (CDE settings and extensions). config/cde is never removed.
    #[arg(long)]
    pub purge: bool,
    /// Do not ask before --purge.
    #[arg(long, short)]
    pub yes: bool,
}

pub async fn run(home: &Home, args: DownArgs) -> Result<i32> {
    let _lock = home.lock("down")?;
    let survey = down::survey(home).await?;
    let project = survey.project().to_string();
    let volumes = if args.purge {
        survey.volumes()
    } else {
        Vec::new()
    };
    if !volumes.is_empty() && !args.yes {
        confirm_purge(&project, &volumes)?;
    }
    let tracker = ui::Tracker::new();
    let report = down::run(&survey, args.purge, &tracker).await?;
    ui::out(format!(
        "{} {project} is down; kept {} and {}",
        ui::green("✓"),
        home.root().join("config").display(),
        home.root().join("data").display()
    ));
    for other in &report.other_projects {
        ui::out(format!(
            "  also stopped this home's stack left under the project name `{other}` (COMPOSE_PROJECT_NAME changed)"
        ));
    }
    if !report.kept_volumes.is_empty() {
        ui::out(format!(
            "  volumes kept: {}",
            report.kept_volumes.join(", ")
        ));
    }
    Ok(0)
}

/// Removing volumes loses the CDE's settings and extensions: ask at a terminal, refuse otherwise.
fn confirm_purge(project: &str, volumes: &[String]) -> Result<()> {
    let list = volumes.join(", ");
    if !std::io::stdin().is_terminal() {
        return Err(
            Error::bad_input(format!("--purge would remove the volumes {list}"))
                .hint("add --yes to confirm"),
        );
    }
    ui::prompt(format_args!("This removes the volumes {list} (config/cde stays). Type the project name `{project}` to confirm: "));
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer).ok();
    if answer.trim() != project {
        return Err(Error::bad_input("not confirmed; nothing was removed"));
    }
    Ok(())
}

//! `appgear down`: stop and remove the containers and the network; keep config/, data/ and the
//! volumes. `--purge` also removes appgear's named volumes, after confirmation.

use crate::core::error::{Error, Result};
use crate::core::ui;
use crate::topology_a::home::Home;
use crate::topology_a::stack::docker::{self, api_error};
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
    let project = home.settings()?.project().to_string();
    let docker = docker::connect().await?;
    let observed = docker::observe(&docker, &project).await?;
    let volumes: Vec<&String> = if args.purge {
        observed.volumes.iter().collect()
    } else {
        Vec::new()
    };
    if !volumes.is_empty() && !args.yes {
        confirm_purge(&project, &volumes)?;
    }
    let tracker = ui::Tracker::new();
    for c in &observed.containers {
        tracker.say(&c.service, "stopping");
        docker::remove_container(&docker, &c.id).await?;
        tracker.done(&c.service, "removed");
    }
    for net in &observed.networks {
        match docker.remove_network(net).await {
            Ok(()) => ui::step(&format!("removed network {net}")),
            Err(e) if docker::is_not_found(&e) => {}
            Err(e) => return Err(api_error(format!("cannot remove network {net}"), e)),
        }
    }
    for vol in &volumes {
        docker
            .remove_volume(vol, None::<bollard::query_parameters::RemoveVolumeOptions>)
            .await
            .map_err(|e| api_error(format!("cannot remove volume {vol}"), e))?;
        ui::step(&format!("removed volume {vol}"));
    }
    println!(
        "{} {project} is down; kept {} and {}",
        ui::green("✓"),
        home.root().join("config").display(),
        home.root().join("data").display()
    );
    if !args.purge && !observed.volumes.is_empty() {
        println!(
            "  volumes kept: {}",
            observed
                .volumes
                .iter()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(0)
}

/// Removing volumes loses the CDE's settings and extensions: ask at a terminal, refuse otherwise.
fn confirm_purge(project: &str, volumes: &[&String]) -> Result<()> {
    let list = volumes
        .iter()
        .map(|v| v.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    if !std::io::stdin().is_terminal() {
        return Err(
            Error::bad_input(format!("--purge would remove the volumes {list}"))
                .hint("add --yes to confirm"),
        );
    }
    eprint!("This removes the volumes {list} (config/cde stays). Type the project name `{project}` to confirm: ");
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer).ok();
    if answer.trim() != project {
        return Err(Error::bad_input("not confirmed; nothing was removed"));
    }
    Ok(())
}

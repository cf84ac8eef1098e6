//! `appgear status`: per service its state, health, ports, image and uptime.

use crate::core::error::Result;
use crate::core::ui;
use crate::topology_a::home::Home;
use crate::topology_a::stack::{docker, load, status};
use clap::Args;

#[derive(Args, Debug)]
pub struct StatusArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Exit 0 only when every service is running and healthy.
pub async fn run(home: &Home, args: StatusArgs) -> Result<i32> {
    let (_, project) = load::load(home)?;
    let docker = docker::connect().await?;
    let services = status::status(&docker, &project).await?;
    let all_ok = services.iter().all(status::ServiceStatus::is_ok);
    if args.json {
        ui::print_json(
            &serde_json::json!({ "project": project.name, "healthy": all_ok, "services": services }),
        )?;
    } else {
        let rows: Vec<Vec<String>> = services
            .iter()
            .map(|s| {
                let health = match s.health.as_str() {
                    "healthy" => ui::green("healthy"),
                    "unhealthy" => ui::red("unhealthy"),
                    other => other.to_string(),
                };
                vec![
                    s.service.clone(),
                    s.state.clone(),
                    health,
                    s.ports.join(", "),
                    s.image.clone(),
                    s.uptime_seconds
                        .map(status::short_duration)
                        .unwrap_or_else(|| "-".into()),
                ]
            })
            .collect();
        print!(
            "{}",
            ui::table(
                &["SERVICE", "STATE", "HEALTH", "PORTS", "IMAGE", "UPTIME"],
                &rows
            )
        );
        if !all_ok {
            eprintln!("{} not every service is running and healthy; `appgear up` converges, `appgear logs SERVICE` tells why", ui::yellow("hint:"));
        }
    }
    Ok(if all_ok { 0 } else { 1 })
}

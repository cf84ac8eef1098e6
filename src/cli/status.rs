//! `appgear status`: per service its state, health, ports, image and uptime.

use crate::core::error::Result;
use crate::core::ui;
use crate::topology_a::home::Home;
use crate::topology_a::stack::status;
use clap::Args;

#[derive(Args, Debug)]
pub struct StatusArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Exit 0 only when every service is running and healthy.
pub async fn run(home: &Home, args: StatusArgs) -> Result<i32> {
    let (project, services) = status::of_home(home).await?;
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
        ui::out(
            ui::table(
                &["SERVICE", "STATE", "HEALTH", "PORTS", "IMAGE", "UPTIME"],
                &rows,
            )
            .trim_end_matches('\n'),
        );
        if !all_ok {
            ui::err(format_args!("{} not every service is running and healthy; `appgear up` converges, `appgear logs SERVICE` tells why", ui::yellow("hint:")));
        }
    }
    Ok(if all_ok { 0 } else { 1 })
}

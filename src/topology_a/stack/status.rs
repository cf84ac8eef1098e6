//! The state of each service of the project, as `appgear status` shows it.

use crate::core::error::Result;
use crate::topology_a::env_store;
use crate::topology_a::home::Home;
use crate::topology_a::stack::docker::{self, api_error, observe};
use crate::topology_a::stack::load;
use crate::topology_a::stack::plan::pick;
use crate::topology_a::stack::project::Project;
use bollard::models::{ContainerStateStatusEnum, HealthStatusEnum};
use bollard::Docker;
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct ServiceStatus {
    pub service: String,
    pub container: Option<String>,
    pub id: Option<String>,
    /// Docker's state (`running`, `exited`, ...) or `missing` when there is no container.
    pub state: String,
    /// `healthy`, `unhealthy`, `starting`, or `none` without a health check.
    pub health: String,
    pub ports: Vec<String>,
    pub image: String,
    pub started_at: Option<String>,
    pub uptime_seconds: Option<u64>,
}

impl ServiceStatus {
    /// Running, and healthy when it has a health check.
    pub fn is_ok(&self) -> bool {
        self.state == "running" && (self.health == "healthy" || self.health == "none")
    }
}

/// The home's project and the status of each of its services.
pub async fn of_home(home: &Home) -> Result<(Project, Vec<ServiceStatus>)> {
    let settings = env_store::settings(home)?;
    let project = load::load(home, &settings)?;
    let docker = docker::connect().await?;
    let services = status(&docker, &project).await?;
    Ok((project, services))
}

pub async fn status(docker: &Docker, project: &Project) -> Result<Vec<ServiceStatus>> {
    let observed = observe(docker, &project.name, &project.working_dir, &[]).await?;
    let mut out = Vec::new();
    for svc in &project.services {
        let Some(c) = pick(svc, &observed.containers) else {
            out.push(ServiceStatus {
                service: svc.name.clone(),
                container: None,
                id: None,
                state: "missing".into(),
                health: "none".into(),
                ports: Vec::new(),
                image: svc.image.clone(),
                started_at: None,
                uptime_seconds: None,
            });
            continue;
        };
        let info = docker
            .inspect_container(&c.id, None)
            .await
            .map_err(|e| api_error(format!("cannot inspect {}", c.name), e))?;
        let state = info.state.unwrap_or_default();
        let status = state.status.unwrap_or(ContainerStateStatusEnum::EMPTY);
        let health = match state.health.and_then(|h| h.status) {
            Some(HealthStatusEnum::HEALTHY) => "healthy",
            Some(HealthStatusEnum::UNHEALTHY) => "unhealthy",
            Some(HealthStatusEnum::STARTING) => "starting",
            _ => "none",
        };
        let mut ports: Vec<String> = info
            .network_settings
            .and_then(|n| n.ports)
            .unwrap_or_default()
            .into_iter()
            .flat_map(|(container, bindings)| {
                bindings.unwrap_or_default().into_iter().map(move |b| {
                    format!(
                        "{}:{}->{}",
                        b.host_ip.unwrap_or_default(),
                        b.host_port.unwrap_or_default(),
                        container
                    )
                })
            })
            .collect();
        ports.sort();
        let running = status == ContainerStateStatusEnum::RUNNING;
        let started_at = state
            .started_at
            .filter(|s| running && !s.starts_with("0001"));
        let uptime_seconds = started_at.as_deref().and_then(uptime);
        out.push(ServiceStatus {
            service: svc.name.clone(),
            container: Some(c.name.clone()),
            id: Some(c.id.clone()),
            state: status.to_string(),
            health: health.into(),
            ports,
            image: info.config.and_then(|c| c.image).unwrap_or_default(),
            started_at,
            uptime_seconds,
        });
    }
    Ok(out)
}

fn uptime(started_at: &str) -> Option<u64> {
    let started =
        humantime::parse_rfc3339_weak(started_at.split('.').next()?.trim_end_matches('Z')).ok()?;
    std::time::SystemTime::now()
        .duration_since(started)
        .ok()
        .map(|d| d.as_secs())
}

/// `3h12m`, `45s`: short enough for a table.
pub fn short_duration(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{}s", s / 60, s % 60),
        s if s < 86400 => format!("{}h{}m", s / 3600, (s % 3600) / 60),
        s => format!("{}d{}h", s / 86400, (s % 86400) / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uptime_reads_dockers_timestamps() {
        let now = humantime::format_rfc3339_nanos(
            std::time::SystemTime::now() - std::time::Duration::from_secs(90),
        )
        .to_string();
        let secs = uptime(&now).unwrap();
        assert!((89..=92).contains(&secs), "{secs}");
        assert_eq!(short_duration(3725), "1h2m");
    }
}

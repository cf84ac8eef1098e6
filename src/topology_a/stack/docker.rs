//! The one place the Docker client is created, and how the project is read back from Docker
//! through Compose's labels (so `docker compose -p NAME ps` sees the same containers).

use super::plan::{Existing, Observed};
use crate::core::error::{Error, Result};
use bollard::query_parameters::{
    ListContainersOptionsBuilder, ListNetworksOptionsBuilder, ListVolumesOptionsBuilder,
};
use bollard::Docker;
use std::collections::HashMap;

pub const LABEL_PROJECT: &str = "com.docker.compose.project";
pub const LABEL_SERVICE: &str = "com.docker.compose.service";
pub const LABEL_HASH: &str = "com.docker.compose.config-hash";
pub const LABEL_NUMBER: &str = "com.docker.compose.container-number";
pub const LABEL_ONEOFF: &str = "com.docker.compose.oneoff";
pub const LABEL_WORKING_DIR: &str = "com.docker.compose.project.working_dir";
pub const LABEL_CONFIG_FILES: &str = "com.docker.compose.project.config_files";
pub const LABEL_NETWORK: &str = "com.docker.compose.network";
pub const LABEL_VOLUME: &str = "com.docker.compose.volume";
pub const LABEL_IMAGE: &str = "com.docker.compose.image";
pub const LABEL_DEPENDS_ON: &str = "com.docker.compose.depends_on";
/// The version of Docker Compose whose labels we write, so Compose accepts our resources as its own.
pub const LABEL_VERSION: &str = "com.docker.compose.version";
pub const COMPOSE_VERSION: &str = "2.40.0";

/// Where Docker is expected, for messages.
pub fn docker_host() -> String {
    std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".to_string())
}

/// Connect to the Docker Engine (honouring DOCKER_HOST) and check that it answers.
pub async fn connect() -> Result<Docker> {
    let docker = Docker::connect_with_defaults().map_err(|e| unreachable(e.to_string()))?;
    let docker = docker.with_timeout(std::time::Duration::from_secs(120));
    docker
        .ping()
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    Ok(docker)
}

fn unreachable(cause: String) -> Error {
    let host = docker_host();
    let hint = if cause.contains("ermission denied") {
        "add yourself to the docker group (`sudo usermod -aG docker $USER`, then log in again)"
            .to_string()
    } else {
        "start Docker (`sudo systemctl start docker`, or open Docker Desktop), or point DOCKER_HOST at a running engine".to_string()
    };
    Error::not_ready(format!("Docker is not reachable at {host}"))
        .hint(hint)
        .cause(anyhow::anyhow!(cause))
}

/// What the Docker Engine said, without bollard's wrapping.
pub fn message(e: &bollard::errors::Error) -> String {
    match e {
        bollard::errors::Error::DockerResponseServerError { message, .. } => message.clone(),
        bollard::errors::Error::DockerStreamError { error } => error.clone(),
        other => other.to_string(),
    }
}

/// An unexpected error from the Docker API during an operation, as one line and a hint.
pub fn api_error(what: impl std::fmt::Display, e: bollard::errors::Error) -> Error {
    Error::internal(format!("{what}: {}", message(&e)))
        .hint("run `appgear doctor` to check Docker, then run the command again (add --verbose for details)")
        .cause(e)
}

pub fn is_not_found(e: &bollard::errors::Error) -> bool {
    matches!(
        e,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

pub fn project_filter(project: &str) -> HashMap<String, Vec<String>> {
    HashMap::from([(
        "label".to_string(),
        vec![format!("{LABEL_PROJECT}={project}")],
    )])
}

/// Containers, networks and volumes that carry this project's label.
pub async fn observe(docker: &Docker, project: &str) -> Result<Observed> {
    let filters = project_filter(project);
    let containers = docker
        .list_containers(Some(
            ListContainersOptionsBuilder::new()
                .all(true)
                .filters(&filters)
                .build(),
        ))
        .await
        .map_err(|e| api_error("cannot list containers", e))?;
    let networks = docker
        .list_networks(Some(
            ListNetworksOptionsBuilder::new().filters(&filters).build(),
        ))
        .await
        .map_err(|e| api_error("cannot list networks", e))?;
    let volumes = docker
        .list_volumes(Some(
            ListVolumesOptionsBuilder::new().filters(&filters).build(),
        ))
        .await
        .map_err(|e| api_error("cannot list volumes", e))?;
    let containers = containers
        .into_iter()
        .filter_map(|c| {
            let labels = c.labels.unwrap_or_default();
            if labels.get(LABEL_ONEOFF).map(String::as_str) == Some("True") {
                return None;
            }
            Some(Existing {
                id: c.id?,
                name: c
                    .names
                    .and_then(|n| n.first().cloned())
                    .unwrap_or_default()
                    .trim_start_matches('/')
                    .to_string(),
                service: labels.get(LABEL_SERVICE).cloned().unwrap_or_default(),
                config_hash: labels.get(LABEL_HASH).cloned().unwrap_or_default(),
                running: matches!(
                    c.state,
                    Some(bollard::models::ContainerSummaryStateEnum::RUNNING)
                ),
            })
        })
        .collect();
    Ok(Observed {
        containers,
        networks: networks.into_iter().filter_map(|n| n.name).collect(),
        volumes: volumes
            .volumes
            .unwrap_or_default()
            .into_iter()
            .map(|v| v.name)
            .collect(),
    })
}

/// Stop (giving it 10 s to exit cleanly) and remove a container; gone already is fine.
pub async fn remove_container(docker: &Docker, id: &str) -> Result<()> {
    use bollard::query_parameters::{RemoveContainerOptionsBuilder, StopContainerOptionsBuilder};
    let _ = docker
        .stop_container(id, Some(StopContainerOptionsBuilder::new().t(10).build()))
        .await;
    match docker
        .remove_container(
            id,
            Some(RemoveContainerOptionsBuilder::new().force(true).build()),
        )
        .await
    {
        Ok(()) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(api_error("cannot remove container", e)),
    }
}

/// The last `n` lines a container wrote, for error reports.
pub async fn last_log_lines(docker: &Docker, id: &str, n: usize) -> Vec<String> {
    use futures_util::StreamExt;
    let opts = bollard::query_parameters::LogsOptionsBuilder::new()
        .stdout(true)
        .stderr(true)
        .tail(&n.to_string())
        .build();
    let mut stream = docker.logs(id, Some(opts));
    let mut text = String::new();
    while let Some(Ok(chunk)) = stream.next().await {
        text.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
    }
    text.lines().map(str::to_string).collect()
}

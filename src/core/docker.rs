//! The one way appgear reaches the Docker Engine: `DOCKER_HOST` honoured, a ping before use, and
//! one line that says how to fix an engine that does not answer. Topology A's stack, Topology
//! B's preflight and the builder's `docker` executor all connect here.

use crate::core::error::{Error, Result};
use bollard::Docker;

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

//! The one place the Docker client is created, and how the project is read back from Docker
//! through Compose's labels (so `docker compose -p NAME ps` sees the same containers), plus the
//! label appgear adds to find a home's containers whatever project name they were made under.

use crate::core::error::{Error, Result};
use crate::topology_a::stack::plan::{Endpoint, Existing, Observed};
use bollard::query_parameters::{
    ListContainersOptionsBuilder, ListNetworksOptionsBuilder, ListVolumesOptionsBuilder,
};
use bollard::Docker;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

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
/// The home a container, network or volume was made for: the project name can change, the home
/// stays (Compose's working-dir label says the same for containers Compose made in the home).
pub const LABEL_HOME: &str = "io.appgear.home";

// The connection and the Engine's own messages are shared with the builder's executor.
pub use crate::core::docker::{connect, docker_host, message};

/// An unexpected error from the Docker API during an operation, as one line and a hint.
pub fn api_error(what: impl std::fmt::Display, e: bollard::errors::Error) -> Error {
    Error::internal(format!("{what}: {}", message(&e)))
        .hint("run `appgear doctor` to check Docker, then run the command again (add --verbose for details)")
        .cause(e)
}

fn status_is(e: &bollard::errors::Error, code: u16) -> bool {
    matches!(
        e,
        bollard::errors::Error::DockerResponseServerError { status_code, .. } if *status_code == code
    )
}

pub fn is_not_found(e: &bollard::errors::Error) -> bool {
    status_is(e, 404)
}

/// Docker's answer when a name is already taken.
pub fn is_conflict(e: &bollard::errors::Error) -> bool {
    status_is(e, 409)
}

fn label_filter(label: &str, value: &str) -> HashMap<String, Vec<String>> {
    HashMap::from([("label".to_string(), vec![format!("{label}={value}")])])
}

pub fn project_filter(project: &str) -> HashMap<String, Vec<String>> {
    label_filter(LABEL_PROJECT, project)
}

/// Ids of the containers (running or not) that carry `label=value`.
async fn container_ids(docker: &Docker, label: &str, value: &str) -> Result<Vec<String>> {
    let filters = label_filter(label, value);
    let list = docker
        .list_containers(Some(
            ListContainersOptionsBuilder::new()
                .all(true)
                .filters(&filters)
                .build(),
        ))
        .await
        .map_err(|e| api_error("cannot list containers", e))?;
    Ok(list.into_iter().filter_map(|c| c.id).collect())
}

/// One container as the plan sees it, from `docker inspect` (the listing leaves out network
/// aliases); `None` when it is gone or is a one-off (`compose run`).
async fn inspect(docker: &Docker, id_or_name: &str) -> Result<Option<Existing>> {
    let info = match docker.inspect_container(id_or_name, None).await {
        Ok(i) => i,
        Err(e) if is_not_found(&e) => return Ok(None),
        Err(e) => return Err(api_error(format!("cannot inspect {id_or_name}"), e)),
    };
    let labels = info
        .config
        .as_ref()
        .and_then(|c| c.labels.clone())
        .unwrap_or_default();
    if labels.get(LABEL_ONEOFF).map(String::as_str) == Some("True") {
        return Ok(None);
    }
    let networks = info
        .network_settings
        .and_then(|n| n.networks)
        .unwrap_or_default()
        .into_iter()
        .map(|(name, ep)| {
            let ep = Endpoint {
                network_id: ep.network_id.unwrap_or_default(),
                aliases: ep.aliases.unwrap_or_default(),
            };
            (name, ep)
        })
        .collect();
    let label = |k: &str| labels.get(k).cloned().unwrap_or_default();
    Ok(Some(Existing {
        id: info.id.unwrap_or_default(),
        name: info
            .name
            .unwrap_or_default()
            .trim_start_matches('/')
            .to_string(),
        project: label(LABEL_PROJECT),
        service: label(LABEL_SERVICE),
        config_hash: label(LABEL_HASH),
        running: info.state.and_then(|s| s.running).unwrap_or(false),
        networks,
    }))
}

async fn inspect_all(docker: &Docker, ids: &[String]) -> Result<Vec<Existing>> {
    let mut out = Vec::new();
    for id in ids {
        if let Some(c) = inspect(docker, id).await? {
            out.push(c);
        }
    }
    Ok(out)
}

/// Everything the plan needs: the project's containers, networks and volumes; this home's
/// containers under other project names; and foreign containers holding the names of
/// `container_names`.
pub async fn observe(
    docker: &Docker,
    project: &str,
    home: &Path,
    container_names: &[String],
) -> Result<Observed> {
    let filters = project_filter(project);
    let containers = inspect_all(
        docker,
        &container_ids(docker, LABEL_PROJECT, project).await?,
    )
    .await?;
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
    let home = home.display().to_string();
    let mut home_ids = container_ids(docker, LABEL_HOME, &home).await?;
    home_ids.extend(container_ids(docker, LABEL_WORKING_DIR, &home).await?);
    home_ids.sort();
    home_ids.dedup();
    let elsewhere = inspect_all(docker, &home_ids)
        .await?
        .into_iter()
        .filter(|c| c.project != project)
        .collect();
    let mut name_holders = Vec::new();
    for name in container_names {
        if let Some(c) = inspect(docker, name).await? {
            if c.project != project {
                name_holders.push(c);
            }
        }
    }
    Ok(Observed {
        containers,
        networks: networks
            .into_iter()
            .filter_map(|n| Some((n.name?, n.id.unwrap_or_default())))
            .collect::<BTreeMap<_, _>>(),
        volumes: volumes
            .volumes
            .unwrap_or_default()
            .into_iter()
            .map(|v| v.name)
            .collect(),
        elsewhere,
        name_holders,
    })
}

/// The running container that publishes host port `port`, as "container NAME (Compose project
/// P)": a port Docker holds for another stack is that container's, not `docker-proxy`'s.
pub async fn publisher(docker: &Docker, port: u16) -> Option<String> {
    let list = docker
        .list_containers(Some(ListContainersOptionsBuilder::new().build()))
        .await
        .ok()?;
    let c = list.into_iter().find(|c| {
        c.ports
            .iter()
            .flatten()
            .any(|p| p.public_port == Some(port))
    })?;
    let name = c
        .names
        .and_then(|n| n.first().cloned())
        .unwrap_or_default()
        .trim_start_matches('/')
        .to_string();
    match c.labels.and_then(|l| l.get(LABEL_PROJECT).cloned()) {
        Some(p) => Some(format!("container {name} (Compose project {p})")),
        None => Some(format!("container {name}")),
    }
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

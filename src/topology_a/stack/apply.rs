//! Executes a `Plan` against the Docker Engine: images first (nothing is removed before its
//! replacement image is there), then networks and volumes, then network attachments of the
//! containers that stay, then containers in dependency order, then a wait for health that fails
//! fast on a crashed or unhealthy container. A plan with blockers is refused before any of it.

use crate::core::error::{Error, Result};
use crate::core::image_ref::through_mirror;
use crate::core::ports::{self, Busy};
use crate::core::ui::Tracker;
use crate::topology_a::keys::REGISTRY_MIRROR;
use crate::topology_a::settings::{split_image, Settings};
use crate::topology_a::stack::docker::*;
use crate::topology_a::stack::plan::{Attach, Plan, Step};
use crate::topology_a::stack::project::{Condition, Mount, Project, Service};
use bollard::models::{
    ContainerCreateBody, ContainerStateStatusEnum, EndpointSettings, HealthConfig,
    HealthStatusEnum, HostConfig, NetworkConnectRequest, NetworkCreateRequest,
    NetworkDisconnectRequest, NetworkingConfig, PortBinding, RestartPolicy, RestartPolicyNameEnum,
    VolumeCreateRequest,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, CreateImageOptionsBuilder, TagImageOptionsBuilder,
};
use bollard::Docker;
use futures_util::StreamExt;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// `settings` say where each variable came from, so a hint names the key to change.
pub async fn apply(
    docker: &Docker,
    project: &Project,
    plan: &Plan,
    settings: &Settings,
    tracker: &Tracker,
) -> Result<()> {
    if let Some(b) = plan.blockers.first() {
        return Err(b.error(&project.name));
    }
    let touched: Vec<&Service> = project
        .services
        .iter()
        .filter(|s| {
            plan.services
                .iter()
                .any(|p| p.service == s.name && !matches!(p.step, Step::Keep { .. }))
        })
        .collect();
    for svc in &touched {
        ensure_image(docker, svc, settings, tracker).await?;
    }
    for svc in &touched {
        let step = plan
            .services
            .iter()
            .find(|p| p.service == svc.name)
            .map(|p| &p.step);
        if matches!(step, Some(Step::Create | Step::Start { .. })) {
            check_ports(docker, svc, settings).await?;
        }
    }
    for net in &plan.create_networks {
        let req = NetworkCreateRequest {
            name: net.name.clone(),
            driver: Some("bridge".into()),
            labels: Some(resource_labels(project, LABEL_NETWORK, &net.key)),
            ..Default::default()
        };
        docker
            .create_network(req)
            .await
            .map_err(|e| api_error(format!("cannot create network {}", net.name), e))?;
    }
    for vol in &plan.create_volumes {
        let req = VolumeCreateRequest {
            name: Some(vol.name.clone()),
            labels: Some(resource_labels(project, LABEL_VOLUME, &vol.key)),
            ..Default::default()
        };
        docker
            .create_volume(req)
            .await
            .map_err(|e| api_error(format!("cannot create volume {}", vol.name), e))?;
    }
    for old in &plan.remove {
        tracker.say(&old.service, "removing (no longer in the compose file)");
        remove_container(docker, &old.id).await?;
    }
    for a in &plan.attach {
        attach(docker, a, tracker).await?;
    }
    let mut ids: HashMap<String, String> = HashMap::new();
    for svc in &project.services {
        let Some(step) = plan
            .services
            .iter()
            .find(|p| p.service == svc.name)
            .map(|p| &p.step)
        else {
            continue;
        };
        let starts_something = !matches!(step, Step::Keep { .. });
        for dep in &svc.depends_on {
            if starts_something && dep.condition != Condition::Started {
                if let (Some(id), Some(dep_svc)) = (
                    ids.get(&dep.service),
                    project.services.iter().find(|s| s.name == dep.service),
                ) {
                    tracker.say(
                        &svc.name,
                        &format!("waiting for {} to be healthy", dep.service),
                    );
                    wait_ready(docker, dep_svc, id, tracker).await?;
                }
            }
        }
        let id = match step {
            Step::Keep { id } => id.clone(),
            Step::Start { id } => {
                tracker.say(&svc.name, "starting");
                start(docker, svc, id).await?;
                id.clone()
            }
            Step::Create => {
                tracker.say(&svc.name, "creating");
                create_and_start(docker, project, svc).await?
            }
            Step::Recreate { old_id, .. } => {
                tracker.say(&svc.name, "recreating (configuration changed)");
                remove_container(docker, old_id).await?;
                check_ports(docker, svc, settings).await?;
                create_and_start(docker, project, svc).await?
            }
        };
        ids.insert(svc.name.clone(), id);
    }
    for svc in &project.services {
        if let Some(id) = ids.get(&svc.name) {
            wait_ready(docker, svc, id, tracker).await?;
        }
    }
    Ok(())
}

/// Compose's labels on a network or volume (`kind` is the network or volume label), so Compose
/// accepts it as its own, and the home it was made for.
fn resource_labels(project: &Project, kind: &str, key: &str) -> HashMap<String, String> {
    HashMap::from([
        (LABEL_PROJECT.to_string(), project.name.clone()),
        (kind.to_string(), key.to_string()),
        (LABEL_VERSION.to_string(), COMPOSE_VERSION.to_string()),
        (
            LABEL_HOME.to_string(),
            project.working_dir.display().to_string(),
        ),
    ])
}

/// Put a container that stays back on its network, answering to its service's names there.
async fn attach(docker: &Docker, a: &Attach, tracker: &Tracker) -> Result<()> {
    tracker.say(&a.service, &format!("connecting to network {}", a.network));
    if a.reconnect {
        let req = NetworkDisconnectRequest {
            container: a.id.clone(),
            force: Some(true),
        };
        match docker.disconnect_network(&a.network, req).await {
            Ok(()) => {}
            Err(e) if is_not_found(&e) => {}
            Err(e) => {
                return Err(api_error(
                    format!("cannot disconnect {} from {}", a.service, a.network),
                    e,
                ))
            }
        }
    }
    docker
        .connect_network(&a.network, connect_request(&a.id, &a.aliases))
        .await
        .map_err(|e| api_error(format!("cannot connect {} to {}", a.service, a.network), e))
}

fn connect_request(id: &str, aliases: &[String]) -> NetworkConnectRequest {
    NetworkConnectRequest {
        container: id.to_string(),
        endpoint_config: Some(EndpointSettings {
            aliases: Some(aliases.to_vec()),
            ..Default::default()
        }),
    }
}

/// How an image is pulled: the reference asked for, and the name to tag it with afterwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pull {
    pub reference: String,
    /// With a mirror: the compose file's name (repository, tag), so containers and config
    /// hashes keep it.
    pub tag_as: Option<(String, String)>,
}

/// Which reference to pull for `image` with `APPGEAR_REGISTRY_MIRROR` `mirror`: through the
/// mirror (`core::image_ref::through_mirror`), tagged back to `image`'s own name. An image pinned
/// by digest is pulled from its own registry: a digest cannot be given as a tag, and Docker would
/// not find it under its own name afterwards.
pub fn pull_for(image: &str, mirror: Option<&str>) -> Pull {
    let direct = Pull {
        reference: image.to_string(),
        tag_as: None,
    };
    let Some(mirror) = mirror.filter(|m| !m.trim().is_empty()) else {
        return direct;
    };
    if image.contains('@') {
        return direct;
    }
    let reference = through_mirror(image, mirror);
    if reference == image {
        return direct;
    }
    let (repo, tag) = split_image(image);
    Pull {
        reference,
        tag_as: Some((repo.to_string(), tag.unwrap_or("latest").to_string())),
    }
}

/// Pull the image when Docker does not have it, with a progress bar; through the registry mirror
/// when one is set, then tagged with the compose file's name.
async fn ensure_image(
    docker: &Docker,
    svc: &Service,
    settings: &Settings,
    tracker: &Tracker,
) -> Result<()> {
    match docker.inspect_image(&svc.image).await {
        Ok(_) => return Ok(()),
        Err(e) if is_not_found(&e) => {}
        Err(e) => return Err(api_error(format!("cannot inspect image {}", svc.image), e)),
    }
    let pull = pull_for(&svc.image, settings.registry_mirror.as_deref());
    let (repo, tag) = split_image(&pull.reference);
    let mut opts = CreateImageOptionsBuilder::new().from_image(repo);
    if let Some(tag) = tag {
        opts = opts.tag(tag);
    }
    let bar = tracker.pull_bar(&pull.reference);
    let mut layers: HashMap<String, (u64, u64)> = HashMap::new();
    let mut stream = docker.create_image(Some(opts.build()), None, None);
    while let Some(item) = stream.next().await {
        match item {
            Ok(info) => {
                if let (Some(id), Some(detail)) = (info.id, info.progress_detail) {
                    if let (Some(cur), Some(total)) = (detail.current, detail.total) {
                        layers.insert(id, (cur.max(0) as u64, total.max(0) as u64));
                        bar.set_length(layers.values().map(|l| l.1).sum());
                        bar.set_position(layers.values().map(|l| l.0).sum());
                    }
                }
            }
            Err(e) => {
                bar.abandon();
                let image = &svc.image;
                let hint = if pull.tag_as.is_some() {
                    format!(
                        "check that the registry mirror {REGISTRY_MIRROR} ({}) is reachable and holds {}, or empty it with `appgear config set {REGISTRY_MIRROR} \"\"` to pull from the image's own registry",
                        settings.registry_mirror.as_deref().unwrap_or(""),
                        pull.reference
                    )
                } else {
                    match settings.fix_for(svc.image_from.as_deref()) {
                        ports::Fix::EnvKey(k) => format!("check your network, or point {k} in .env at a mirror you can reach: `appgear config set {k} registry.example.com/{image}`"),
                        ports::Fix::ShellVar(k) => format!("check your network, or point {k} at a mirror you can reach: it is set in your shell, which wins over .env (`export {k}=registry.example.com/{image}`)"),
                        ports::Fix::ComposeFile => "check your network, or change the image in docker-compose.yml".to_string(),
                    }
                };
                let msg = match &e {
                    bollard::errors::Error::DockerResponseServerError { message, .. } => {
                        message.clone()
                    }
                    bollard::errors::Error::DockerStreamError { error } => error.clone(),
                    other => other.to_string(),
                };
                return Err(Error::not_ready(format!(
                    "cannot pull image {} for {}: {msg}",
                    pull.reference, svc.name
                ))
                .hint(hint));
            }
        }
    }
    bar.finish_and_clear();
    match &pull.tag_as {
        Some((repo, tag)) => {
            let opts = TagImageOptionsBuilder::new().repo(repo).tag(tag).build();
            docker
                .tag_image(&pull.reference, Some(opts))
                .await
                .map_err(|e| {
                    api_error(format!("cannot tag {} as {}", pull.reference, svc.image), e)
                })?;
            tracker.say(
                &svc.name,
                &format!(
                    "pulled {} through the registry mirror as {}",
                    svc.image, pull.reference
                ),
            );
        }
        None => tracker.say(&svc.name, &format!("pulled {}", svc.image)),
    }
    Ok(())
}

/// Every host port the service publishes must be free; a busy one is named with its holder (the
/// container, when Docker publishes it for another stack) and the key that sets it.
async fn check_ports(docker: &Docker, svc: &Service, settings: &Settings) -> Result<()> {
    for p in &svc.ports {
        let ip = if p.host_ip.is_empty() {
            "0.0.0.0"
        } else {
            p.host_ip.as_str()
        };
        let fix = settings.fix_for(p.host_port_from.as_deref());
        if let Some(mut busy) = ports::busy(ip, p.host_port, fix) {
            if let Some(container) = publisher(docker, p.host_port).await {
                busy = Busy::new(container, ip, p.host_port, fix);
            }
            return Err(Error::not_ready(format!(
                "port {} on {ip} is already in use by {}; {} needs it",
                p.host_port, busy.holder, svc.name
            ))
            .hint(busy.hint));
        }
    }
    Ok(())
}

async fn start(docker: &Docker, svc: &Service, id: &str) -> Result<()> {
    docker
        .start_container(id, None::<bollard::query_parameters::StartContainerOptions>)
        .await
        .map_err(|e| start_error(svc, e))
}

/// A port taken between our check and the start is the machine's problem (3); anything else
/// means the service itself could not start (4).
fn start_error(svc: &Service, e: bollard::errors::Error) -> Error {
    let msg = message(&e);
    if msg.contains("address already in use") || msg.contains("port is already allocated") {
        Error::not_ready(format!(
            "{} could not start: a port it publishes was taken: {msg}",
            svc.name
        ))
        .hint("run `appgear doctor` to see which program holds it")
    } else {
        Error::unhealthy(format!("{} could not start: {msg}", svc.name))
            .hint(format!("`appgear logs {}` may say why", svc.name))
    }
}

/// A container of ours that held the name was removed by the plan before this; one that holds it
/// now is someone else's (the plan refuses those up front; this covers one made meanwhile), and
/// is never removed.
async fn create_and_start(docker: &Docker, project: &Project, svc: &Service) -> Result<String> {
    let opts = CreateContainerOptionsBuilder::new()
        .name(&svc.container_name)
        .build();
    let created = docker
        .create_container(Some(opts), container_body(project, svc))
        .await
        .map_err(|e| {
            if is_conflict(&e) {
                let name = &svc.container_name;
                Error::not_ready(format!(
                    "a container named {name} appeared while appgear worked and is not part of this stack"
                ))
                .hint(format!("appgear does not remove containers it did not make: remove or rename it (`docker rename {name} {name}-old`), then run `appgear up` again"))
            } else {
                api_error(format!("cannot create the container of {}", svc.name), e)
            }
        })?;
    for (net, aliases) in svc.networks.iter().skip(1) {
        docker
            .connect_network(net, connect_request(&created.id, aliases))
            .await
            .map_err(|e| api_error(format!("cannot connect {} to {net}", svc.name), e))?;
    }
    start(docker, svc, &created.id).await?;
    Ok(created.id)
}

/// The Docker API form of a service, with Compose's labels.
pub fn container_body(project: &Project, svc: &Service) -> ContainerCreateBody {
    let mut labels: HashMap<String, String> = svc.labels.clone().into_iter().collect();
    labels.extend([
        (LABEL_PROJECT.to_string(), project.name.clone()),
        (LABEL_SERVICE.to_string(), svc.name.clone()),
        (LABEL_NUMBER.to_string(), "1".to_string()),
        (LABEL_ONEOFF.to_string(), "False".to_string()),
        (LABEL_HASH.to_string(), svc.config_hash()),
        (LABEL_IMAGE.to_string(), svc.image.clone()),
        (LABEL_VERSION.to_string(), COMPOSE_VERSION.to_string()),
        (
            LABEL_WORKING_DIR.to_string(),
            project.working_dir.display().to_string(),
        ),
        (
            LABEL_CONFIG_FILES.to_string(),
            project.config_file.display().to_string(),
        ),
        (
            LABEL_HOME.to_string(),
            project.working_dir.display().to_string(),
        ),
        (
            LABEL_DEPENDS_ON.to_string(),
            svc.depends_on
                .iter()
                .map(|d| {
                    let c = match d.condition {
                        Condition::Started => "service_started",
                        Condition::Healthy => "service_healthy",
                        Condition::CompletedSuccessfully => "service_completed_successfully",
                    };
                    format!("{}:{c}:false", d.service)
                })
                .collect::<Vec<_>>()
                .join(","),
        ),
    ]);
    let binds = svc
        .mounts
        .iter()
        .map(|m| match m {
            Mount::Bind {
                source,
                target,
                read_only,
            } => format!(
                "{}:{target}{}",
                source.display(),
                if *read_only { ":ro" } else { "" }
            ),
            Mount::Volume {
                name,
                target,
                read_only,
            } => format!("{name}:{target}{}", if *read_only { ":ro" } else { "" }),
        })
        .collect();
    let mut port_bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
    for p in &svc.ports {
        port_bindings
            .entry(format!("{}/{}", p.container_port, p.protocol))
            .or_insert_with(|| Some(Vec::new()))
            .get_or_insert_with(Vec::new)
            .push(PortBinding {
                host_ip: Some(p.host_ip.clone()),
                host_port: Some(p.host_port.to_string()),
            });
    }
    // Values were checked when the file was read: no, always, unless-stopped, on-failure[:N].
    let restart = svc.restart.as_deref().map(|r| {
        let (policy, retries) = r.split_once(':').unwrap_or((r, ""));
        RestartPolicy {
            name: Some(match policy {
                "always" => RestartPolicyNameEnum::ALWAYS,
                "unless-stopped" => RestartPolicyNameEnum::UNLESS_STOPPED,
                "on-failure" => RestartPolicyNameEnum::ON_FAILURE,
                _ => RestartPolicyNameEnum::NO,
            }),
            maximum_retry_count: retries.parse().ok(),
        }
    });
    let endpoints = svc.networks.first().map(|(net, aliases)| {
        HashMap::from([(
            net.clone(),
            EndpointSettings {
                aliases: Some(aliases.clone()),
                ..Default::default()
            },
        )])
    });
    ContainerCreateBody {
        image: Some(svc.image.clone()),
        cmd: svc.command.clone(),
        entrypoint: svc.entrypoint.clone(),
        env: Some(
            svc.environment
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect(),
        ),
        user: svc.user.clone(),
        working_dir: svc.working_dir.clone(),
        labels: Some(labels),
        exposed_ports: Some(
            svc.ports
                .iter()
                .map(|p| format!("{}/{}", p.container_port, p.protocol))
                .collect(),
        ),
        healthcheck: svc.healthcheck.as_ref().map(|h| HealthConfig {
            test: Some(h.test.clone()),
            interval: Some(h.interval_ns),
            timeout: Some(h.timeout_ns),
            retries: Some(h.retries),
            start_period: Some(h.start_period_ns),
            start_interval: Some(h.start_interval_ns),
        }),
        host_config: Some(HostConfig {
            binds: Some(binds),
            port_bindings: Some(port_bindings),
            restart_policy: restart,
            ..Default::default()
        }),
        networking_config: endpoints.map(|e| NetworkingConfig {
            endpoints_config: Some(e),
        }),
        ..Default::default()
    }
}

/// Wait until the container runs and, when it has a health check, is healthy. Fails at once when
/// it exits, restarts or turns unhealthy, with its last log lines.
pub async fn wait_ready(docker: &Docker, svc: &Service, id: &str, tracker: &Tracker) -> Result<()> {
    let budget = match svc.healthcheck.as_ref().filter(|_| svc.has_healthcheck()) {
        Some(h) => {
            let per_try = (h.interval_ns + h.timeout_ns).max(0) as u64;
            Duration::from_nanos(
                h.start_period_ns.max(0) as u64 + per_try * (h.retries.max(1) as u64 + 1),
            ) + Duration::from_secs(30)
        }
        None => Duration::from_secs(30),
    };
    let started = Instant::now();
    let mut said = String::new();
    loop {
        let info = docker
            .inspect_container(id, None)
            .await
            .map_err(|e| api_error(format!("cannot inspect {}", svc.name), e))?;
        let state = info.state.unwrap_or_default();
        let health = state.health.as_ref().and_then(|h| h.status);
        let running = state.running.unwrap_or(false);
        let stopped = matches!(
            state.status,
            Some(ContainerStateStatusEnum::EXITED | ContainerStateStatusEnum::DEAD)
        );
        if state.restarting.unwrap_or(false) || (!running && stopped) {
            let code = state.exit_code.unwrap_or_default();
            let lines = last_log_lines(docker, id, 20).await;
            return Err(
                Error::unhealthy(format!("{} exited with code {code}", svc.name))
                    .hint(format!(
                        "its last log lines are below; `appgear logs {}` shows more",
                        svc.name
                    ))
                    .detail(lines),
            );
        }
        match (svc.has_healthcheck(), health) {
            (false, _) if running => {
                tracker.done(&svc.name, "running");
                return Ok(());
            }
            (true, Some(HealthStatusEnum::HEALTHY)) if running => {
                tracker.done(&svc.name, "healthy");
                return Ok(());
            }
            (true, Some(HealthStatusEnum::UNHEALTHY)) => {
                let probe = state
                    .health
                    .and_then(|h| h.log)
                    .and_then(|l| l.last().and_then(|r| r.output.clone()))
                    .unwrap_or_default();
                let mut lines = vec![format!("last health check: {}", probe.trim())];
                lines.extend(last_log_lines(docker, id, 20).await);
                return Err(Error::unhealthy(format!("{} is unhealthy", svc.name))
                    .hint(format!(
                        "its last log lines are below; `appgear logs {}` shows more",
                        svc.name
                    ))
                    .detail(lines));
            }
            _ => {}
        }
        if started.elapsed() > budget {
            let lines = last_log_lines(docker, id, 20).await;
            return Err(Error::unhealthy(format!(
                "{} did not become healthy within {}s",
                svc.name,
                budget.as_secs()
            ))
            .hint(format!(
                "its last log lines are below; `appgear logs {}` shows more",
                svc.name
            ))
            .detail(lines));
        }
        let now = if running {
            "waiting to be healthy"
        } else {
            "starting"
        };
        if now != said {
            tracker.say(&svc.name, now);
            said = now.to_string();
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::{pull_for, Pull};

    #[test]
    fn without_a_mirror_the_image_is_pulled_as_named() {
        for m in [None, Some(""), Some("  ")] {
            assert_eq!(
                pull_for("traefik:v3.6.2", m),
                Pull {
                    reference: "traefik:v3.6.2".into(),
                    tag_as: None
                }
            );
        }
    }

    #[test]
    fn through_a_mirror_the_pull_is_tagged_back_to_the_compose_name() {
        assert_eq!(
            pull_for("traefik:v3.6.2", Some("localhost:5000")),
            Pull {
                reference: "localhost:5000/library/traefik:v3.6.2".into(),
                tag_as: Some(("traefik".into(), "v3.6.2".into())),
            }
        );
        assert_eq!(
            pull_for(
                "codercom/code-server:4.106.3",
                Some("http://10.0.0.5:5000/")
            ),
            Pull {
                reference: "10.0.0.5:5000/codercom/code-server:4.106.3".into(),
                tag_as: Some(("codercom/code-server".into(), "4.106.3".into())),
            }
        );
        assert_eq!(
            pull_for("localhost:5000/team/tool:1", Some("mirror.local")),
            Pull {
                reference: "mirror.local/team/tool:1".into(),
                tag_as: Some(("localhost:5000/team/tool".into(), "1".into())),
            }
        );
    }

    #[test]
    fn digests_and_images_already_on_the_mirror_are_pulled_as_named() {
        let d = "redis@sha256:c88d347edef6249a6d2293f926f1eeb48bd40c57cbcd02c07f52e7f1fd2cb46b";
        assert_eq!(pull_for(d, Some("mirror.local")).reference, d);
        assert_eq!(pull_for(d, Some("mirror.local")).tag_as, None);
        let on = "mirror.local/library/redis:8";
        assert_eq!(pull_for(on, Some("mirror.local")).tag_as, None);
    }
}

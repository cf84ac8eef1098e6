//! `down`: stop and remove this home's containers — under the current project name and under
//! any other the home's stack still runs as (COMPOSE_PROJECT_NAME changed) — and their networks.
//! Volumes go only with `--purge`, and only the current project's; `config/` and `data/` always
//! stay.

use crate::core::error::Result;
use crate::core::ui::{self, Tracker};
use crate::topology_a::env_store;
use crate::topology_a::home::Home;
use crate::topology_a::stack::docker::{self, api_error, project_filter, remove_container};
use crate::topology_a::stack::plan::{Existing, Observed};
use bollard::query_parameters::{
    ListNetworksOptionsBuilder, ListVolumesOptionsBuilder, RemoveVolumeOptions,
};
use bollard::Docker;
use std::collections::BTreeSet;

/// What `down` found, before it removes anything (so `--purge` can ask first).
pub struct Survey {
    docker: Docker,
    project: String,
    observed: Observed,
}

/// What `down` did.
#[derive(Debug, Default)]
pub struct Report {
    /// Other project names this home's containers were found (and removed) under.
    pub other_projects: Vec<String>,
    /// Volumes left in place: the current project's without `--purge`, other projects' always.
    pub kept_volumes: Vec<String>,
}

pub async fn survey(home: &Home) -> Result<Survey> {
    let settings = env_store::settings(home)?;
    let docker = docker::connect().await?;
    let observed = docker::observe(&docker, &settings.project, home.root(), &[]).await?;
    Ok(Survey {
        docker,
        project: settings.project,
        observed,
    })
}

impl Survey {
    pub fn project(&self) -> &str {
        &self.project
    }

    /// The current project's volumes: what `--purge` removes.
    pub fn volumes(&self) -> Vec<String> {
        self.observed.volumes.iter().cloned().collect()
    }

    fn other_projects(&self) -> BTreeSet<String> {
        self.observed
            .elsewhere
            .iter()
            .map(|c| c.project.clone())
            .collect()
    }
}

pub async fn run(survey: &Survey, purge: bool, tracker: &Tracker) -> Result<Report> {
    let docker = &survey.docker;
    let label = |c: &Existing| {
        if c.project == survey.project {
            c.service.clone()
        } else {
            c.name.clone()
        }
    };
    let all: Vec<&Existing> = survey
        .observed
        .containers
        .iter()
        .chain(&survey.observed.elsewhere)
        .collect();
    for c in &all {
        tracker.say(&label(c), "stopping");
        remove_container(docker, &c.id).await?;
        tracker.done(&label(c), "removed");
    }
    let mut networks: Vec<String> = survey.observed.networks.keys().cloned().collect();
    // Another project's networks go only when they are its own (by label) and held this home's
    // containers: a network of the same name made by anyone else stays.
    let mut report = Report::default();
    for project in survey.other_projects() {
        let attached: BTreeSet<&String> = survey
            .observed
            .elsewhere
            .iter()
            .filter(|c| c.project == project)
            .flat_map(|c| c.networks.keys())
            .collect();
        let filters = project_filter(&project);
        let theirs = docker
            .list_networks(Some(
                ListNetworksOptionsBuilder::new().filters(&filters).build(),
            ))
            .await
            .map_err(|e| api_error("cannot list networks", e))?;
        networks.extend(
            theirs
                .into_iter()
                .filter_map(|n| n.name)
                .filter(|n| attached.contains(n)),
        );
        let volumes = docker
            .list_volumes(Some(
                ListVolumesOptionsBuilder::new().filters(&filters).build(),
            ))
            .await
            .map_err(|e| api_error("cannot list volumes", e))?;
        report.kept_volumes.extend(
            volumes
                .volumes
                .unwrap_or_default()
                .into_iter()
                .map(|v| v.name),
        );
        report.other_projects.push(project);
    }
    for net in &networks {
        match docker.remove_network(net).await {
            Ok(()) => ui::step(&format!("removed network {net}")),
            Err(e) if docker::is_not_found(&e) => {}
            Err(e) => return Err(api_error(format!("cannot remove network {net}"), e)),
        }
    }
    if purge {
        for vol in &survey.observed.volumes {
            docker
                .remove_volume(vol, None::<RemoveVolumeOptions>)
                .await
                .map_err(|e| api_error(format!("cannot remove volume {vol}"), e))?;
            ui::step(&format!("removed volume {vol}"));
        }
    } else {
        report.kept_volumes.splice(0..0, survey.volumes());
    }
    Ok(report)
}

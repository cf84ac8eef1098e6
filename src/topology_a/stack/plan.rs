//! What `up` must change: the desired project against what Docker reports, as a pure value.
//! Unit-tested without Docker; `apply` executes it.

use super::project::{Project, Resource, Service};
use serde::Serialize;
use std::collections::BTreeSet;

/// A container of this project as Docker reports it (from Compose's labels).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Existing {
    pub id: String,
    pub name: String,
    pub service: String,
    pub config_hash: String,
    pub running: bool,
}

/// What Docker holds for the project now.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    pub containers: Vec<Existing>,
    pub networks: BTreeSet<String>,
    pub volumes: BTreeSet<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Step {
    /// No container: create and start one.
    Create,
    /// The container differs from the configuration: replace it.
    Recreate { old_id: String },
    /// Same configuration, not running (stopped or killed): start it again.
    Start { id: String },
    /// Same configuration and running: leave it alone.
    Keep { id: String },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceStep {
    pub service: String,
    #[serde(flatten)]
    pub step: Step,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    pub create_networks: Vec<Resource>,
    pub create_volumes: Vec<Resource>,
    /// In dependency order.
    pub services: Vec<ServiceStep>,
    /// Containers labelled with this project that no service (or a duplicate) accounts for.
    pub remove: Vec<Existing>,
}

impl Plan {
    /// True when `up` has nothing to do but check health.
    pub fn is_noop(&self) -> bool {
        self.create_networks.is_empty()
            && self.create_volumes.is_empty()
            && self.remove.is_empty()
            && self
                .services
                .iter()
                .all(|s| matches!(s.step, Step::Keep { .. }))
    }

    /// One line per change, for `--dry-run` and progress.
    pub fn describe(&self) -> Vec<String> {
        let mut out = Vec::new();
        out.extend(
            self.create_networks
                .iter()
                .map(|n| format!("create network {}", n.name)),
        );
        out.extend(
            self.create_volumes
                .iter()
                .map(|v| format!("create volume {}", v.name)),
        );
        out.extend(self.remove.iter().map(|c| {
            format!(
                "remove container {} (no longer in the compose file)",
                c.name
            )
        }));
        for s in &self.services {
            out.push(match &s.step {
                Step::Create => format!("create {}", s.service),
                Step::Recreate { .. } => {
                    format!("recreate {} (its configuration changed)", s.service)
                }
                Step::Start { .. } => format!("start {} (it was stopped)", s.service),
                Step::Keep { .. } => format!("keep {} (unchanged)", s.service),
            });
        }
        out
    }
}

/// The container that stands for a service when there are several (leftovers): the one with the
/// current configuration first, then a running one, then the one with the expected name.
pub fn pick<'a>(svc: &Service, containers: &'a [Existing]) -> Option<&'a Existing> {
    let hash = svc.config_hash();
    containers
        .iter()
        .filter(|c| c.service == svc.name)
        .min_by_key(|c| {
            (
                c.config_hash != hash,
                !c.running,
                c.name != svc.container_name,
            )
        })
}

pub fn plan(project: &Project, observed: &Observed) -> Plan {
    let missing = |wanted: &[Resource], have: &BTreeSet<String>| {
        wanted
            .iter()
            .filter(|r| !have.contains(&r.name))
            .cloned()
            .collect()
    };
    let create_networks = missing(&project.networks, &observed.networks);
    let create_volumes = missing(&project.volumes, &observed.volumes);
    let mut accounted = BTreeSet::new();
    let mut services = Vec::new();
    for svc in &project.services {
        let hash = svc.config_hash();
        let step = match pick(svc, &observed.containers) {
            None => Step::Create,
            Some(c) => {
                accounted.insert(c.id.clone());
                if c.config_hash != hash || c.name != svc.container_name {
                    Step::Recreate {
                        old_id: c.id.clone(),
                    }
                } else if !c.running {
                    Step::Start { id: c.id.clone() }
                } else {
                    Step::Keep { id: c.id.clone() }
                }
            }
        };
        services.push(ServiceStep {
            service: svc.name.clone(),
            step,
        });
    }
    let remove = observed
        .containers
        .iter()
        .filter(|c| !accounted.contains(&c.id))
        .cloned()
        .collect();
    Plan {
        create_networks,
        create_volumes,
        services,
        remove,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology_a::generated::COMPOSE_SOURCE;
    use crate::topology_a::stack::project::load;
    use std::path::Path;

    fn project(code_server: &str) -> Project {
        let cs = code_server.to_string();
        let vars = move |k: &str| match k {
            "TRAEFIK_IMAGE" => Some("traefik:v3.6.2".to_string()),
            "CODE_SERVER_IMAGE" => Some(cs.clone()),
            "CODE_SERVER_PASSWORD" => Some("s3cretpassword".to_string()),
            _ => None,
        };
        load(
            COMPOSE_SOURCE,
            Path::new("/h/docker-compose.yml"),
            &vars,
            "appgear",
        )
        .unwrap()
    }

    fn running(p: &Project) -> Observed {
        Observed {
            containers: p
                .services
                .iter()
                .map(|s| Existing {
                    id: format!("id-{}", s.name),
                    name: s.container_name.clone(),
                    service: s.name.clone(),
                    config_hash: s.config_hash(),
                    running: true,
                })
                .collect(),
            networks: p.networks.iter().map(|n| n.name.clone()).collect(),
            volumes: p.volumes.iter().map(|v| v.name.clone()).collect(),
        }
    }

    #[test]
    fn fresh_docker_creates_everything_in_dependency_order() {
        let p = project("cs:1");
        let plan = plan(&p, &Observed::default());
        let names = |r: &[Resource]| r.iter().map(|r| r.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(&plan.create_networks), ["appgear_factory"]);
        assert_eq!(names(&plan.create_volumes), ["appgear_cde-home"]);
        let order: Vec<_> = plan
            .services
            .iter()
            .map(|s| (s.service.as_str(), s.step.clone()))
            .collect();
        assert_eq!(
            order,
            [
                ("addon-factory-vscode", Step::Create),
                ("core-traefik", Step::Create)
            ]
        );
    }

    #[test]
    fn unchanged_running_stack_is_a_noop() {
        let p = project("cs:1");
        assert!(plan(&p, &running(&p)).is_noop());
    }

    #[test]
    fn changing_one_image_recreates_only_that_service() {
        let before = project("cs:1");
        let observed = running(&before);
        let after = project("cs:2");
        let plan = plan(&after, &observed);
        assert_eq!(
            plan.services[0].step,
            Step::Recreate {
                old_id: "id-addon-factory-vscode".into()
            }
        );
        assert_eq!(
            plan.services[1].step,
            Step::Keep {
                id: "id-core-traefik".into()
            }
        );
        assert!(plan.remove.is_empty());
    }

    #[test]
    fn stopped_container_is_started_and_removed_one_created() {
        let p = project("cs:1");
        let mut observed = running(&p);
        observed.containers[1].running = false;
        observed.containers.remove(0);
        let plan = plan(&p, &observed);
        assert_eq!(plan.services[0].step, Step::Create);
        assert_eq!(
            plan.services[1].step,
            Step::Start {
                id: "id-core-traefik".into()
            }
        );
    }

    #[test]
    fn containers_of_removed_services_and_duplicates_are_removed() {
        let p = project("cs:1");
        let mut observed = running(&p);
        let mut dup = observed.containers[0].clone();
        dup.id = "dup".into();
        dup.running = false;
        observed.containers.push(dup);
        observed.containers.push(Existing {
            id: "old".into(),
            name: "appgear-gone-1".into(),
            service: "gone".into(),
            config_hash: "h".into(),
            running: true,
        });
        let plan = plan(&p, &observed);
        let removed: Vec<_> = plan.remove.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(removed, ["dup", "old"]);
        assert!(matches!(plan.services[0].step, Step::Keep { .. }));
    }
}

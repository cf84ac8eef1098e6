//! What `up` must change: the desired project against what Docker reports, as a pure value.
//! Unit-tested without Docker; `apply` executes it. Besides containers, networks and volumes, it
//! covers each container's place on its networks (a container disconnected by hand is put back,
//! with the names other services reach it by), and what must stop `up` before it changes
//! anything: a foreign container holding a service's name, or this home's stack still running
//! under another project name.

use crate::core::error::Error;
use crate::topology_a::stack::project::{Project, Resource, Service};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// A container's attachment to one network, as Docker reports it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Endpoint {
    pub network_id: String,
    pub aliases: Vec<String>,
}

/// A container as Docker reports it (from Compose's labels).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Existing {
    pub id: String,
    pub name: String,
    /// Its Compose project (empty when it has none).
    pub project: String,
    pub service: String,
    pub config_hash: String,
    pub running: bool,
    /// The networks it is attached to, by name.
    pub networks: BTreeMap<String, Endpoint>,
}

/// What Docker holds for the project now.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// This project's containers.
    pub containers: Vec<Existing>,
    /// This project's networks: name → id.
    pub networks: BTreeMap<String, String>,
    pub volumes: BTreeSet<String>,
    /// This home's containers under another project name (COMPOSE_PROJECT_NAME was changed, or
    /// `docker compose -p OTHER up` was run in the home).
    pub elsewhere: Vec<Existing>,
    /// Containers that are not this project's but hold one of its services' container names.
    pub name_holders: Vec<Existing>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Why {
    /// The service's configuration differs from the container's.
    Changed,
    /// A network the container was on was removed (or removed and made again); Docker cannot
    /// start it any more.
    NetworkGone,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Step {
    /// No container: create and start one.
    Create,
    /// The container cannot stay: replace it.
    Recreate { old_id: String, why: Why },
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

/// Put a kept container (back) on one of its networks.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Attach {
    pub service: String,
    pub id: String,
    pub network: String,
    pub aliases: Vec<String>,
    /// It is on the network but without some of its names: disconnect first.
    pub reconnect: bool,
}

/// Something `up` must not go past: it would destroy what is not its own, or fail half-way.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "blocker", rename_all = "kebab-case")]
pub enum Blocker {
    /// A container appgear did not make holds a service's container name.
    NameTaken {
        name: String,
        project: String,
        running: bool,
    },
    /// This home's stack runs under another project name and holds its ports.
    RunningElsewhere {
        project: String,
        containers: Vec<String>,
    },
}

impl Blocker {
    /// One line and a hint for the user; `project` is the current project name.
    pub fn error(&self, project: &str) -> Error {
        match self {
            Blocker::NameTaken {
                name,
                project: theirs,
                running,
            } => {
                let whose = if theirs.is_empty() {
                    "it belongs to no Compose project".to_string()
                } else {
                    format!("it belongs to the Compose project `{theirs}`")
                };
                let remove = if *running {
                    format!("`docker stop {name} && docker rm {name}`")
                } else {
                    format!("`docker rm {name}`")
                };
                Error::not_ready(format!(
                    "a container named {name} already exists and is not part of this stack ({whose})"
                ))
                .hint(format!(
                    "appgear does not remove containers it did not make: remove it with {remove} if you no longer need it, or rename it (`docker rename {name} {name}-old`)"
                ))
            }
            Blocker::RunningElsewhere {
                project: old,
                containers,
            } => Error::not_ready(format!(
                "this home's stack is still running under the project name `{old}` ({}), but COMPOSE_PROJECT_NAME is now `{project}`",
                containers.join(", ")
            ))
            .hint(format!(
                "run `appgear down` to stop it (it finds the stack under either name and keeps every volume), then `appgear up`; or set COMPOSE_PROJECT_NAME back to {old}"
            )),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    pub create_networks: Vec<Resource>,
    pub create_volumes: Vec<Resource>,
    /// In dependency order.
    pub services: Vec<ServiceStep>,
    /// Containers labelled with this project that no service (or a duplicate) accounts for.
    pub remove: Vec<Existing>,
    /// Network attachments to repair on containers that stay.
    pub attach: Vec<Attach>,
    /// What stops `up` before it changes anything.
    pub blockers: Vec<Blocker>,
    /// This home's stopped containers under other project names, by project: harmless, but
    /// worth a word (`down` removes them).
    pub stopped_elsewhere: BTreeMap<String, Vec<String>>,
}

impl Plan {
    /// True when `up` has nothing to do but check health.
    pub fn is_noop(&self) -> bool {
        self.create_networks.is_empty()
            && self.create_volumes.is_empty()
            && self.remove.is_empty()
            && self.attach.is_empty()
            && self.blockers.is_empty()
            && self
                .services
                .iter()
                .all(|s| matches!(s.step, Step::Keep { .. }))
    }

    /// One line per change, for `--dry-run` and progress.
    pub fn describe(&self, project: &str) -> Vec<String> {
        let mut out = Vec::new();
        out.extend(
            self.blockers
                .iter()
                .map(|b| format!("blocked: {}", b.error(project).message)),
        );
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
        out.extend(self.attach.iter().map(|a| {
            if a.reconnect {
                format!(
                    "reconnect {} to network {} (as {})",
                    a.service,
                    a.network,
                    a.aliases.join(", ")
                )
            } else {
                format!("connect {} to network {}", a.service, a.network)
            }
        }));
        for s in &self.services {
            out.push(match &s.step {
                Step::Create => format!("create {}", s.service),
                Step::Recreate {
                    why: Why::Changed, ..
                } => format!("recreate {} (its configuration changed)", s.service),
                Step::Recreate {
                    why: Why::NetworkGone,
                    ..
                } => format!("recreate {} (a network it was on was removed)", s.service),
                Step::Start { .. } => format!("start {} (it was stopped)", s.service),
                Step::Keep { .. } => format!("keep {} (unchanged)", s.service),
            });
        }
        out
    }

    /// Warnings that do not stop `up`.
    pub fn notes(&self) -> Vec<String> {
        self.stopped_elsewhere
            .iter()
            .map(|(project, names)| {
                format!(
                    "this home also has stopped containers under the old project name `{project}` ({}); `appgear down` removes them",
                    names.join(", ")
                )
            })
            .collect()
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

/// True when a network the service wants the container on was removed since it was attached:
/// the container still names it, but Docker no longer has it under that id.
fn network_gone(svc: &Service, c: &Existing, observed: &Observed) -> bool {
    svc.networks
        .iter()
        .any(|(net, _)| match c.networks.get(net) {
            Some(ep) => observed.networks.get(net) != Some(&ep.network_id),
            None => false,
        })
}

/// The attachments a container that stays lacks: a network it is not on, or one it is on without
/// every name the service answers to there.
fn attachments(svc: &Service, c: &Existing) -> Vec<Attach> {
    svc.networks
        .iter()
        .filter_map(|(net, aliases)| {
            let reconnect = match c.networks.get(net) {
                None => false,
                Some(ep) if aliases.iter().all(|a| ep.aliases.contains(a)) => return None,
                Some(_) => true,
            };
            Some(Attach {
                service: svc.name.clone(),
                id: c.id.clone(),
                network: net.clone(),
                aliases: aliases.clone(),
                reconnect,
            })
        })
        .collect()
}

pub fn plan(project: &Project, observed: &Observed) -> Plan {
    let create_networks = project
        .networks
        .iter()
        .filter(|r| !observed.networks.contains_key(&r.name))
        .cloned()
        .collect();
    let create_volumes = project
        .volumes
        .iter()
        .filter(|r| !observed.volumes.contains(&r.name))
        .cloned()
        .collect();
    let mut accounted = BTreeSet::new();
    let mut services = Vec::new();
    let mut attach = Vec::new();
    for svc in &project.services {
        let hash = svc.config_hash();
        let step = match pick(svc, &observed.containers) {
            None => Step::Create,
            Some(c) => {
                accounted.insert(c.id.clone());
                let recreate = |why| Step::Recreate {
                    old_id: c.id.clone(),
                    why,
                };
                if c.config_hash != hash || c.name != svc.container_name {
                    recreate(Why::Changed)
                } else if network_gone(svc, c, observed) {
                    recreate(Why::NetworkGone)
                } else {
                    attach.extend(attachments(svc, c));
                    if c.running {
                        Step::Keep { id: c.id.clone() }
                    } else {
                        Step::Start { id: c.id.clone() }
                    }
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
    let mut blockers: Vec<Blocker> = observed
        .name_holders
        .iter()
        .filter(|h| h.project != project.name)
        .map(|h| Blocker::NameTaken {
            name: h.name.clone(),
            project: h.project.clone(),
            running: h.running,
        })
        .collect();
    let mut running_elsewhere: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut stopped_elsewhere: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for c in observed
        .elsewhere
        .iter()
        .filter(|c| c.project != project.name)
    {
        let by_project = if c.running {
            &mut running_elsewhere
        } else {
            &mut stopped_elsewhere
        };
        by_project
            .entry(c.project.clone())
            .or_default()
            .push(c.name.clone());
    }
    blockers.extend(running_elsewhere.into_iter().map(|(project, containers)| {
        Blocker::RunningElsewhere {
            project,
            containers,
        }
    }));
    Plan {
        create_networks,
        create_volumes,
        services,
        remove,
        attach,
        blockers,
        stopped_elsewhere,
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

    fn net_id(name: &str) -> String {
        format!("id-of-{name}")
    }

    fn running(p: &Project) -> Observed {
        Observed {
            containers: p
                .services
                .iter()
                .map(|s| Existing {
                    id: format!("id-{}", s.name),
                    name: s.container_name.clone(),
                    project: p.name.clone(),
                    service: s.name.clone(),
                    config_hash: s.config_hash(),
                    running: true,
                    networks: s
                        .networks
                        .iter()
                        .map(|(n, aliases)| {
                            let mut aliases = aliases.clone();
                            aliases.push("0123456789ab".into());
                            let ep = Endpoint {
                                network_id: net_id(n),
                                aliases,
                            };
                            (n.clone(), ep)
                        })
                        .collect(),
                })
                .collect(),
            networks: p
                .networks
                .iter()
                .map(|n| (n.name.clone(), net_id(&n.name)))
                .collect(),
            volumes: p.volumes.iter().map(|v| v.name.clone()).collect(),
            ..Observed::default()
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
        assert!(plan.attach.is_empty() && plan.blockers.is_empty());
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
                old_id: "id-addon-factory-vscode".into(),
                why: Why::Changed,
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
            project: "appgear".into(),
            service: "gone".into(),
            config_hash: "h".into(),
            running: true,
            networks: BTreeMap::new(),
        });
        let plan = plan(&p, &observed);
        let removed: Vec<_> = plan.remove.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(removed, ["dup", "old"]);
        assert!(matches!(plan.services[0].step, Step::Keep { .. }));
    }

    #[test]
    fn a_container_off_its_network_is_reconnected_with_its_names() {
        let p = project("cs:1");
        let mut observed = running(&p);
        observed.containers[0].networks.clear();
        // Put back by hand but without its service name: Traefik cannot find it by name.
        observed.containers[1]
            .networks
            .get_mut("appgear_factory")
            .unwrap()
            .aliases = vec!["0123456789ab".into()];
        let plan = plan(&p, &observed);
        assert_eq!(
            plan.attach,
            [
                Attach {
                    service: "addon-factory-vscode".into(),
                    id: "id-addon-factory-vscode".into(),
                    network: "appgear_factory".into(),
                    aliases: vec!["addon-factory-vscode".into()],
                    reconnect: false,
                },
                Attach {
                    service: "core-traefik".into(),
                    id: "id-core-traefik".into(),
                    network: "appgear_factory".into(),
                    aliases: vec!["core-traefik".into()],
                    reconnect: true,
                }
            ]
        );
        assert!(!plan.is_noop());
        assert!(
            plan.services
                .iter()
                .all(|s| matches!(s.step, Step::Keep { .. })),
            "nothing is recreated"
        );
        assert_eq!(
            plan.describe("appgear")[0],
            "connect addon-factory-vscode to network appgear_factory"
        );
    }

    #[test]
    fn a_stopped_container_whose_network_was_removed_is_recreated() {
        let p = project("cs:1");
        let mut observed = running(&p);
        observed.containers[0].running = false;
        observed.networks.clear();
        let plan = plan(&p, &observed);
        assert_eq!(plan.create_networks.len(), 1);
        assert!(matches!(
            plan.services[0].step,
            Step::Recreate {
                why: Why::NetworkGone,
                ..
            }
        ));
        assert!(plan.attach.is_empty());
    }

    fn foreign(name: &str, project: &str, running: bool) -> Existing {
        Existing {
            id: format!("id-{name}"),
            name: name.into(),
            project: project.into(),
            service: String::new(),
            config_hash: String::new(),
            running,
            networks: BTreeMap::new(),
        }
    }

    #[test]
    fn a_foreign_container_with_a_services_name_blocks_up() {
        let p = project("cs:1");
        let observed = Observed {
            name_holders: vec![foreign("appgear-core-traefik-1", "", false)],
            ..Observed::default()
        };
        let plan = plan(&p, &observed);
        assert_eq!(
            plan.blockers,
            [Blocker::NameTaken {
                name: "appgear-core-traefik-1".into(),
                project: String::new(),
                running: false
            }]
        );
        let e = plan.blockers[0].error("appgear");
        assert!(
            e.message
                .contains("not part of this stack (it belongs to no Compose project)"),
            "{}",
            e.message
        );
        assert!(e
            .hint
            .unwrap()
            .contains("`docker rm appgear-core-traefik-1`"));
        assert!(!plan.is_noop());
    }

    #[test]
    fn this_homes_stack_under_an_old_project_name_blocks_up_while_it_runs() {
        let p = project("cs:1");
        let observed = Observed {
            elsewhere: vec![
                foreign("old-core-traefik-1", "old", true),
                foreign("old-addon-factory-vscode-1", "old", false),
                foreign("older-core-traefik-1", "older", false),
            ],
            ..Observed::default()
        };
        let plan = plan(&p, &observed);
        assert_eq!(
            plan.blockers,
            [Blocker::RunningElsewhere {
                project: "old".into(),
                containers: vec!["old-core-traefik-1".into()]
            }]
        );
        let e = plan.blockers[0].error("appgear");
        assert!(
            e.message.contains("`old`") && e.message.contains("now `appgear`"),
            "{}",
            e.message
        );
        assert!(e.hint.unwrap().contains("appgear down"));
        assert_eq!(plan.notes().len(), 2, "{:?}", plan.notes());
    }
}

//! `appgear doctor` for Topology B: is this machine ready for `appgear cluster up`. The same
//! measurements (`machine`) and rules (`preflight`) as `cluster up`'s preflight, for the core
//! profile, reported one finding per check in `doctor`'s shape instead of stopping at the first
//! failure; and the cluster's host ports, free or held by the cluster's own node.
//!
//! A machine without kind on PATH is not set up for Topology B: its failures are then warnings
//! (what `cluster up` would need), so that `doctor` does not fail a Topology A laptop.

use super::cluster::context::{self, Context};
use super::machine::{self, Facts};
use super::preflight::{self, Severity};
use super::settings::ClusterSettings;
use super::stages::{ClusterState, Profile};
use crate::topology_a::doctor::{Finding, Level};
use crate::topology_a::home::Home;

/// The profile doctor judges Docker's resources against: the smaller one, which `cluster up`
/// uses unless asked for more.
pub const PROFILE: Profile = Profile::Core;

fn finding(check: &str, status: Level, detail: impl Into<String>, hint: Option<String>) -> Finding {
    Finding {
        check: check.into(),
        status,
        detail: detail.into(),
        hint,
    }
}

/// One check: `ok` with what was seen when the rules found nothing, else each finding.
fn judged(
    check: &str,
    found: Vec<preflight::Finding>,
    ok: String,
    set_up: bool,
    out: &mut Vec<Finding>,
) {
    if found.is_empty() {
        out.push(finding(check, Level::Ok, ok, None));
    }
    for f in found {
        let status = match f.severity {
            Severity::Fail if set_up => Level::Fail,
            _ => Level::Warn,
        };
        out.push(finding(check, status, f.message, Some(f.fix)));
    }
}

fn first_line(s: &Option<String>) -> String {
    s.as_deref()
        .and_then(|v| v.lines().find(|l| !l.trim().is_empty()))
        .unwrap_or("")
        .trim()
        .to_string()
}

/// The machine's findings for `facts` (Docker's numbers when Docker answered). Pure.
pub fn machine_findings(facts: &Facts, docker: Option<(u64, u64)>) -> Vec<Finding> {
    let set_up = facts.kind.is_some();
    let mut out = Vec::new();
    judged(
        "kind",
        preflight::kind(facts.kind.as_deref()),
        first_line(&facts.kind),
        set_up,
        &mut out,
    );
    judged(
        "kubectl",
        preflight::kubectl(facts.kubectl.as_deref()),
        first_line(&facts.kubectl),
        set_up,
        &mut out,
    );
    judged(
        "helm",
        preflight::helm(facts.helm.as_deref()),
        first_line(&facts.helm),
        set_up,
        &mut out,
    );
    if let Some((cpus, memory)) = docker {
        judged(
            "cluster resources",
            preflight::resources(PROFILE, cpus, memory),
            format!(
                "Docker has {cpus} CPUs and {:.1} GiB, enough for the {} profile",
                memory as f64 / (1u64 << 30) as f64,
                PROFILE.as_str()
            ),
            set_up,
            &mut out,
        );
    }
    if let Some(free) = facts.disk_free {
        judged(
            "cluster disk",
            preflight::disk(PROFILE, free),
            format!(
                "{} GiB free, enough for the {} profile's images",
                free >> 30,
                PROFILE.as_str()
            ),
            set_up,
            &mut out,
        );
    }
    if let Some((watches, instances)) = facts.inotify {
        judged(
            "inotify",
            preflight::inotify(watches, instances),
            format!("max_user_watches={watches}, max_user_instances={instances}"),
            set_up,
            &mut out,
        );
    }
    out
}

/// The cluster's host ports: free, held by the cluster's own node (fine), or held by someone
/// else (named, with the `.env` key to change).
async fn port_findings(
    settings: &ClusterSettings,
    node: Option<&str>,
    set_up: bool,
    out: &mut Vec<Finding>,
) {
    let docker = crate::topology_a::stack::docker::connect().await.ok();
    for (port, key, busy) in machine::port_holders(settings) {
        let check = format!("port {port} ({key})");
        let Some(busy) = busy else {
            out.push(finding(&check, Level::Ok, "free", None));
            continue;
        };
        let publisher = match &docker {
            Some(d) => crate::topology_a::stack::docker::publisher(d, port).await,
            None => None,
        };
        if let (Some(node), Some(p)) = (node, &publisher) {
            if *p == format!("container {node}") {
                out.push(finding(
                    &check,
                    Level::Ok,
                    format!("held by the kind cluster's own node {node}"),
                    None,
                ));
                continue;
            }
        }
        let holder = publisher.unwrap_or(busy.holder.clone());
        let busy = crate::core::ports::Busy {
            holder,
            hint: busy.hint,
        };
        out.push(finding(
            &check,
            if set_up { Level::Fail } else { Level::Warn },
            machine::busy_port(settings, port, key, &busy),
            Some(busy.hint),
        ));
    }
}

/// Every Topology B check, in the order `cluster up`'s preflight makes them.
pub async fn checks(home: &Home) -> Vec<Finding> {
    let mut out = Vec::new();
    let ctx = match Context::load(home) {
        Ok(ctx) => {
            out.push(finding(
                "cluster settings",
                Level::Ok,
                format!(
                    "cluster {}, Kong on {}:{} and {}:{}",
                    ctx.name(),
                    ctx.settings.bind,
                    ctx.settings.http_port,
                    ctx.settings.bind,
                    ctx.settings.https_port
                ),
                None,
            ));
            Some(ctx)
        }
        Err(e) => {
            out.push(finding(
                "cluster settings",
                Level::Fail,
                e.message.clone(),
                e.hint.clone(),
            ));
            None
        }
    };
    let local = machine::measure_local(home.root());
    let set_up = local.kind.is_some();
    let docker = match machine::docker_resources().await {
        Ok((cpus, memory)) => {
            let f = machine::with_docker(local.clone(), cpus, memory);
            Some((f.cpus, f.memory))
        }
        Err(_) => None,
    };
    out.extend(machine_findings(&local, docker));
    let Some(ctx) = ctx else {
        return out;
    };
    // The node holds the ports of a running cluster; anything else holding them is in the way.
    let node = match context::observe(&ctx).await {
        Ok(ClusterState::Running { .. }) => Some(ctx.node()),
        _ => None,
    };
    port_findings(&ctx.settings, node.as_deref(), set_up, &mut out).await;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(kind: Option<&str>) -> Facts {
        Facts {
            cpus: 0,
            memory: 0,
            disk_free: Some(100 << 30),
            inotify: Some((8192, 128)),
            kind: kind.map(String::from),
            kubectl: Some("Client Version: v1.35.0\n".into()),
            helm: Some("v4.1.4+g2d9d5d5\n".into()),
        }
    }

    fn status(found: &[Finding], check: &str) -> Vec<Level> {
        found
            .iter()
            .filter(|f| f.check == check)
            .map(|f| f.status)
            .collect()
    }

    #[test]
    fn the_preflight_rules_each_give_a_finding() {
        let found = machine_findings(
            &facts(Some("kind v0.33.0 go1.25.1 linux/amd64")),
            Some((2, 4 << 30)),
        );
        assert_eq!(status(&found, "kind"), [Level::Ok]);
        assert_eq!(found[0].detail, "kind v0.33.0 go1.25.1 linux/amd64");
        assert_eq!(status(&found, "kubectl"), [Level::Ok]);
        assert_eq!(status(&found, "helm"), [Level::Ok]);
        // Both the CPUs and the memory, each with its fix.
        assert_eq!(
            status(&found, "cluster resources"),
            [Level::Fail, Level::Fail]
        );
        let cpus = found
            .iter()
            .find(|f| f.check == "cluster resources")
            .unwrap();
        assert_eq!(cpus.detail, "Docker has 2 CPUs; the core profile needs 4");
        assert!(cpus
            .hint
            .as_deref()
            .unwrap()
            .contains("Settings → Resources"));
        assert_eq!(status(&found, "cluster disk"), [Level::Ok]);
        assert_eq!(status(&found, "inotify"), [Level::Fail]);
    }

    #[test]
    fn without_kind_the_machine_is_not_set_up_for_topology_b_and_nothing_fails() {
        let found = machine_findings(&facts(None), None);
        assert_eq!(status(&found, "kind"), [Level::Warn]);
        assert_eq!(found[0].detail, "kind is not on PATH");
        assert_eq!(status(&found, "inotify"), [Level::Warn]);
        assert!(found.iter().all(|f| f.status != Level::Fail));
        // No Docker: no resource finding (doctor's Docker check says why).
        assert!(status(&found, "cluster resources").is_empty());
    }
}

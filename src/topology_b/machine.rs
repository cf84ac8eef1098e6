//! Preflight's IO: what this machine has, measured, for `preflight`'s pure rules. Docker's
//! CPUs and memory (what kind's node gets, not the host's), free disk in the home, inotify
//! limits, the kind/kubectl/helm versions, and the cluster's host ports (with who holds a busy
//! one). Everything here is quick: `cluster up` refuses before anything slow starts.

use super::kind;
use super::preflight::{self, Finding};
use super::settings::{ClusterSettings, HTTPS_PORT, HTTP_PORT};
use super::stages::Profile;
use crate::core::error::{Error, Result};
use crate::core::ports::{self, Busy, Fix};
use std::path::Path;

/// The numbers preflight judges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    pub cpus: u64,
    pub memory: u64,
    pub disk_free: Option<u64>,
    /// (max_user_watches, max_user_instances); `None` off Linux.
    pub inotify: Option<(u64, u64)>,
    pub kind: Option<String>,
    pub kubectl: Option<String>,
    pub helm: Option<String>,
}

/// For tests and stand-ins only: `cpus=4 memory=17179869184 watches=524288 instances=512`
/// replaces those measured numbers (a CI machine with 2 CPUs and default inotify limits can
/// then drive `cluster up` against a stand-in kind). It cannot skip a check.
pub const FACTS_OVERRIDE: &str = "APPGEAR_TEST_MACHINE_FACTS";

/// Docker's CPUs and memory, through Topology A's one Docker client.
pub async fn docker_resources() -> Result<(u64, u64)> {
    let docker = crate::topology_a::stack::docker::connect().await?;
    let info = docker.info().await.map_err(|e| {
        Error::not_ready(format!(
            "Docker did not say how many CPUs and how much memory it has: {e}"
        ))
        .hint("check that `docker info` works")
    })?;
    let cpus = info.ncpu.unwrap_or(0).max(0) as u64;
    let memory = info.mem_total.unwrap_or(0).max(0) as u64;
    Ok((cpus, memory))
}

fn read_number(path: &str) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn free_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    // The home may not exist yet: measure the nearest folder that does.
    let dir = dir.ancestors().find(|d| d.is_dir())?;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `st` a properly sized out-parameter.
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    (rc == 0).then(|| st.f_bavail as u64 * st.f_frsize as u64)
}

/// Measure the machine. Docker unreachable is the error `cluster up` stops with (exit 3).
pub async fn measure(home: &Path) -> Result<Facts> {
    let (cpus, memory) = docker_resources().await?;
    Ok(with_docker(measure_local(home), cpus, memory))
}

/// Everything but Docker's numbers (left 0): the tools, inotify, disk. `doctor` reports these
/// even when Docker does not answer.
pub fn measure_local(home: &Path) -> Facts {
    let inotify = cfg!(target_os = "linux").then(|| {
        (
            read_number("/proc/sys/fs/inotify/max_user_watches").unwrap_or(0),
            read_number("/proc/sys/fs/inotify/max_user_instances").unwrap_or(0),
        )
    });
    let mut facts = Facts {
        cpus: 0,
        memory: 0,
        disk_free: free_bytes(home),
        inotify,
        kind: kind::version_of("kind", &["version"]),
        kubectl: kind::version_of("kubectl", &["version", "--client"]),
        helm: kind::version_of("helm", &["version", "--short"]),
    };
    if let Ok(text) = std::env::var(FACTS_OVERRIDE) {
        apply_override(&mut facts, &text);
    }
    facts
}

/// `facts` with Docker's CPUs and memory (the override, if any, still wins).
pub fn with_docker(mut facts: Facts, cpus: u64, memory: u64) -> Facts {
    facts.cpus = cpus;
    facts.memory = memory;
    if let Ok(text) = std::env::var(FACTS_OVERRIDE) {
        apply_override(&mut facts, &text);
    }
    facts
}

fn apply_override(facts: &mut Facts, text: &str) {
    let mut watches = facts.inotify.map(|i| i.0);
    let mut instances = facts.inotify.map(|i| i.1);
    for (k, v) in text.split_whitespace().filter_map(|kv| kv.split_once('=')) {
        let Ok(n) = v.parse::<u64>() else { continue };
        match k {
            "cpus" => facts.cpus = n,
            "memory" => facts.memory = n,
            "disk" => facts.disk_free = Some(n),
            "watches" => watches = Some(n),
            "instances" => instances = Some(n),
            _ => {}
        }
    }
    if let (Some(w), Some(i)) = (watches, instances) {
        facts.inotify = Some((w, i));
    }
}

/// Every finding for `facts` against `profile`, in the order they are reported.
pub fn findings(facts: &Facts, profile: Profile) -> Vec<Finding> {
    let mut out = preflight::resources(profile, facts.cpus, facts.memory);
    if let Some(free) = facts.disk_free {
        out.extend(preflight::disk(profile, free));
    }
    if let Some((w, i)) = facts.inotify {
        out.extend(preflight::inotify(w, i));
    }
    out.extend(preflight::kind(facts.kind.as_deref()));
    out.extend(preflight::kubectl(facts.kubectl.as_deref()));
    out.extend(preflight::helm(facts.helm.as_deref()));
    out
}

/// Each of the cluster's host ports with its `.env` key, and who holds it when it is busy.
pub fn port_holders(settings: &ClusterSettings) -> Vec<(u16, &'static str, Option<Busy>)> {
    let ip = settings.bind.to_string();
    [
        (settings.http_port, HTTP_PORT),
        (settings.https_port, HTTPS_PORT),
    ]
    .into_iter()
    .map(|(port, key)| (port, key, ports::busy(&ip, port, Fix::EnvKey(key))))
    .collect()
}

/// The line a busy cluster port is refused with.
pub fn busy_port(settings: &ClusterSettings, port: u16, key: &str, busy: &Busy) -> String {
    format!(
        "port {port} ({key}) on {} is in use by {}; the kind cluster publishes Kong there",
        settings.bind, busy.holder
    )
}

/// The cluster's host ports, free or held by someone: checked only when the cluster does not
/// exist yet (a running cluster's node holds them itself).
pub fn ports_free(settings: &ClusterSettings) -> Result<()> {
    for (port, key, busy) in port_holders(settings) {
        if let Some(busy) = busy {
            return Err(Error::not_ready(busy_port(settings, port, key, &busy)).hint(busy.hint));
        }
    }
    Ok(())
}

/// Preflight: measure, judge, and refuse on the first failure (exit 3) with the rest as detail;
/// the warnings when nothing fails.
pub async fn preflight(
    home: &Path,
    profile: Profile,
    settings: &ClusterSettings,
    cluster_exists: bool,
) -> Result<Vec<Finding>> {
    let facts = measure(home).await?;
    let all = findings(&facts, profile);
    let warnings = preflight::verdict(&all)?.into_iter().cloned().collect();
    if !cluster_exists {
        ports_free(settings)?;
    }
    Ok(warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_override_replaces_only_numbers_it_names() {
        let mut f = Facts {
            cpus: 2,
            memory: 1,
            inotify: Some((1, 2)),
            ..Default::default()
        };
        apply_override(
            &mut f,
            "cpus=4 memory=17179869184 watches=524288 bogus=1 instances=x",
        );
        assert_eq!(
            (f.cpus, f.memory, f.inotify),
            (4, 17179869184, Some((524288, 2)))
        );
    }

    #[test]
    fn findings_come_in_the_documented_order() {
        let f = Facts {
            cpus: 2,
            memory: 1 << 30,
            disk_free: Some(100 << 30),
            inotify: Some((524288, 512)),
            kind: None,
            kubectl: Some("Client Version: v1.35.0\n".into()),
            helm: Some("v4.1.4+g2d9d5d5\n".into()),
        };
        let checks: Vec<&str> = findings(&f, Profile::Core)
            .iter()
            .map(|f| f.check)
            .collect();
        assert_eq!(checks.first(), Some(&"cpus"), "{checks:?}");
        assert_eq!(checks.last(), Some(&"kind"), "{checks:?}");
    }
}

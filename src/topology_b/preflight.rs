//! Preflight, the pure part: the numbers a machine reports (Docker's CPUs and memory, free disk,
//! inotify limits, the tools' version lines) → findings, each with its fix. The IO side reads
//! the numbers (Docker's `/info`, `/proc/sys/fs/inotify/*`, `kind version`, ...) and refuses to
//! go on at the first failure, before anything slow starts.

use super::pins;
use super::stages::Profile;
use crate::core::error::{Error, Result};

const GIB: u64 = 1 << 30;

/// What a profile needs from Docker (on macOS and Windows: Docker Desktop's VM).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Requirements {
    pub cpus: u64,
    pub memory: u64,
    pub disk: u64,
}

/// core: the suite without Airbyte; full: with Airbyte, whose chart alone asks for several GiB.
/// Disk is appgear's estimate of the images (node image, add-ons, suite; Airbyte's are many GiB)
/// plus room for the workspaces.
pub fn requirements(profile: Profile) -> Requirements {
    match profile {
        Profile::Core => Requirements {
            cpus: 4,
            memory: 8 * GIB,
            disk: 15 * GIB,
        },
        Profile::Full => Requirements {
            cpus: 4,
            memory: 16 * GIB,
            disk: 30 * GIB,
        },
    }
}

/// An "8 GiB" Docker Desktop VM or laptop reports a little less as total memory (the kernel
/// keeps some): accept 90 % of the requirement so that the machine the user sized is not refused.
const MEMORY_TOLERANCE_PERCENT: u64 = 90;

/// kind's known-issues page ("Pod errors due to too many open files"): the values it recommends.
pub const INOTIFY_MAX_USER_WATCHES: u64 = 524_288;
pub const INOTIFY_MAX_USER_INSTANCES: u64 = 512;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// `cluster up` refuses to start.
    Fail,
    /// Said, and `cluster up` goes on.
    Warn,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub check: &'static str,
    pub severity: Severity,
    pub message: String,
    pub fix: String,
}

fn fail(check: &'static str, message: String, fix: String) -> Finding {
    Finding {
        check,
        severity: Severity::Fail,
        message,
        fix,
    }
}

fn warn(check: &'static str, message: String, fix: String) -> Finding {
    Finding {
        check,
        severity: Severity::Warn,
        message,
        fix,
    }
}

fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / GIB as f64)
}

/// Docker's CPUs and total memory against the profile.
pub fn resources(profile: Profile, cpus: u64, memory: u64) -> Vec<Finding> {
    let need = requirements(profile);
    let mut out = Vec::new();
    let docker_fix = |what: &str| {
        format!(
            "give Docker more {what} (Docker Desktop: Settings → Resources), or use a bigger machine{}",
            if profile == Profile::Full {
                "; --profile core runs without Airbyte in 8 GiB"
            } else {
                ""
            }
        )
    };
    if cpus < need.cpus {
        out.push(fail(
            "cpus",
            format!(
                "Docker has {cpus} CPUs; the {} profile needs {}",
                profile.as_str(),
                need.cpus
            ),
            docker_fix("CPUs"),
        ));
    }
    if memory < need.memory / 100 * MEMORY_TOLERANCE_PERCENT {
        out.push(fail(
            "memory",
            format!(
                "Docker has {} of memory; the {} profile needs {} GiB",
                gib(memory),
                profile.as_str(),
                need.memory / GIB
            ),
            docker_fix("memory"),
        ));
    }
    out
}

/// Free disk where Docker keeps its images.
pub fn disk(profile: Profile, free: u64) -> Vec<Finding> {
    let need = requirements(profile).disk;
    if free >= need {
        return Vec::new();
    }
    vec![fail(
        "disk",
        format!(
            "{} free where Docker keeps images; the {} profile needs about {} GiB",
            gib(free),
            profile.as_str(),
            need / GIB
        ),
        "free disk space (`docker system prune` removes unused images and build cache)".into(),
    )]
}

/// Linux only (Docker Desktop's VM has its own limits). Every container of the node shares the
/// host's inotify limits, which are not namespaced; below kind's values pods fail with "too
/// many open files" and code-server's file watcher stops seeing changes.
pub fn inotify(max_user_watches: u64, max_user_instances: u64) -> Vec<Finding> {
    if max_user_watches >= INOTIFY_MAX_USER_WATCHES
        && max_user_instances >= INOTIFY_MAX_USER_INSTANCES
    {
        return Vec::new();
    }
    vec![fail(
        "inotify",
        format!(
            "inotify limits are fs.inotify.max_user_watches={max_user_watches}, max_user_instances={max_user_instances}; a kind cluster needs at least {INOTIFY_MAX_USER_WATCHES} and {INOTIFY_MAX_USER_INSTANCES}"
        ),
        format!(
            "run `sudo sysctl fs.inotify.max_user_watches={INOTIFY_MAX_USER_WATCHES} fs.inotify.max_user_instances={INOTIFY_MAX_USER_INSTANCES}`, and add both to /etc/sysctl.conf to keep them after a reboot"
        ),
    )]
}

/// `vX.Y.Z` at the start of `s` (after an optional `v`), ignoring what follows the patch number.
fn semver(s: &str) -> Option<(u64, u64, u64)> {
    let s = s.strip_prefix('v').unwrap_or(s);
    let mut parts = s.splitn(3, '.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    let patch: String = parts
        .next()?
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    Some((major, minor, patch.parse().ok()?))
}

fn missing(tool: &'static str, install: &str) -> Finding {
    fail(
        tool,
        format!("{tool} is not on PATH"),
        format!("install {tool} ({install}) and run the command again"),
    )
}

/// `kind version` output (`kind v0.33.0 go1.25.1 linux/amd64`), or `None` when kind is not on
/// PATH. The node image is built for kind v0.33.0: an older kind may not run it.
pub fn kind(output: Option<&str>) -> Vec<Finding> {
    let install = "https://kind.sigs.k8s.io/docs/user/quick-start/#installation, v0.33.0";
    let Some(out) = output else {
        return vec![missing("kind", install)];
    };
    let pinned = semver(pins::KIND.version);
    let found = out.split_whitespace().find_map(semver);
    match (found, pinned) {
        (Some(f), Some(p)) if f < p => vec![fail(
            "kind",
            format!("kind {}.{}.{} is older than v0.33.0, which the pinned node image is built for", f.0, f.1, f.2),
            format!("install kind v0.33.0 ({install})"),
        )],
        (Some(f), Some(p)) if f > p => vec![warn(
            "kind",
            format!("kind {}.{}.{} is newer than the pinned v0.33.0; the node image is built for v0.33.0", f.0, f.1, f.2),
            "if the cluster does not come up, install kind v0.33.0".into(),
        )],
        (Some(_), Some(_)) => Vec::new(),
        _ => vec![warn(
            "kind",
            format!("cannot read kind's version from {:?}", out.trim()),
            format!("check that `kind version` works; appgear expects kind v0.33.0 ({install})"),
        )],
    }
}

/// `kubectl version --client` output (`Client Version: v1.34.5`). Kubernetes supports kubectl
/// within one minor version of the API server (1.35 here).
pub fn kubectl(output: Option<&str>) -> Vec<Finding> {
    let install = "https://kubernetes.io/docs/tasks/tools/, 1.34 to 1.36";
    let Some(out) = output else {
        return vec![missing("kubectl", install)];
    };
    let found = out
        .lines()
        .find(|l| l.trim_start().starts_with("Client Version:"))
        .and_then(|l| l.split(':').nth(1))
        .and_then(|v| semver(v.trim()));
    let server_minor = semver(pins::KIND_NODE.tag).map(|v| v.1).unwrap_or(0);
    match found {
        Some((1, minor, _)) if minor.abs_diff(server_minor) <= 1 => Vec::new(),
        Some((major, minor, patch)) => vec![warn(
            "kubectl",
            format!("kubectl {major}.{minor}.{patch} is more than one minor version from the cluster's 1.{server_minor}"),
            format!("install kubectl 1.{}–1.{} ({install})", server_minor - 1, server_minor + 1),
        )],
        None => vec![warn(
            "kubectl",
            format!("cannot read kubectl's version from {:?}", out.trim()),
            "check that `kubectl version --client` works".into(),
        )],
    }
}

/// `helm version --short` output (`v4.1.4+g2d9d5d5`): Helm 3 or 4 renders the charts.
pub fn helm(output: Option<&str>) -> Vec<Finding> {
    let install = "https://helm.sh/docs/intro/install/, 3.x or 4.x";
    let Some(out) = output else {
        return vec![missing("helm", install)];
    };
    match semver(out.trim()) {
        Some((3 | 4, _, _)) => Vec::new(),
        Some((major, minor, patch)) => vec![fail(
            "helm",
            format!("helm {major}.{minor}.{patch} cannot render the pinned charts"),
            format!("install helm ({install})"),
        )],
        None => vec![warn(
            "helm",
            format!("cannot read helm's version from {:?}", out.trim()),
            "check that `helm version --short` works".into(),
        )],
    }
}

/// The first failure as the error `cluster up` stops with (exit 3), the other findings as its
/// detail lines; `Ok` with the warnings when nothing fails.
pub fn verdict(findings: &[Finding]) -> Result<Vec<&Finding>> {
    let (fails, warns): (Vec<&Finding>, Vec<&Finding>) =
        findings.iter().partition(|f| f.severity == Severity::Fail);
    let Some(first) = fails.first() else {
        return Ok(warns);
    };
    let detail = findings
        .iter()
        .filter(|f| f != first)
        .map(|f| {
            let word = match f.severity {
                Severity::Fail => "also",
                Severity::Warn => "note",
            };
            format!("{word}: {} ({})", f.message, f.fix)
        })
        .collect();
    Err(Error::not_ready(first.message.clone())
        .hint(first.fix.clone())
        .detail(detail))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_need_cpus_and_memory() {
        assert!(resources(Profile::Core, 4, 8 * GIB).is_empty());
        // An 8 GiB Docker Desktop VM reports about 7.7 GiB.
        assert!(resources(Profile::Core, 8, 7_900_000_000).is_empty());
        let f = resources(Profile::Core, 2, 4 * GIB);
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].message, "Docker has 2 CPUs; the core profile needs 4");
        assert_eq!(
            f[1].message,
            "Docker has 4.0 GiB of memory; the core profile needs 8 GiB"
        );
        let f = resources(Profile::Full, 8, 8 * GIB);
        assert_eq!(f.len(), 1);
        assert!(f[0].fix.contains("--profile core"), "{}", f[0].fix);
        assert!(disk(Profile::Full, 40 * GIB).is_empty());
        assert_eq!(disk(Profile::Full, 10 * GIB)[0].check, "disk");
    }

    #[test]
    fn inotify_limits_of_kinds_known_issues() {
        assert!(inotify(524_288, 512).is_empty());
        assert!(inotify(1_048_576, 8192).is_empty());
        // Ubuntu's defaults, as kind's page quotes them.
        let f = inotify(8192, 128);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].severity, Severity::Fail);
        assert!(f[0].fix.contains(
            "sudo sysctl fs.inotify.max_user_watches=524288 fs.inotify.max_user_instances=512"
        ));
        assert_eq!(inotify(524_288, 128).len(), 1);
    }

    #[test]
    fn tool_versions() {
        assert!(kind(Some("kind v0.33.0 go1.25.1 linux/amd64\n")).is_empty());
        let old = kind(Some("kind v0.31.0 go1.24.4 linux/amd64"));
        assert_eq!(old[0].severity, Severity::Fail);
        assert!(old[0].message.contains("older than v0.33.0"));
        assert_eq!(
            kind(Some("kind v0.34.1 go1.26 linux/amd64"))[0].severity,
            Severity::Warn
        );
        assert_eq!(kind(None)[0].message, "kind is not on PATH");

        assert!(kubectl(Some("Client Version: v1.34.5\nKustomize Version: v5.7.1\n")).is_empty());
        assert!(kubectl(Some("Client Version: v1.36.0")).is_empty());
        assert_eq!(
            kubectl(Some("Client Version: v1.31.2"))[0].severity,
            Severity::Warn
        );
        assert_eq!(kubectl(None)[0].severity, Severity::Fail);

        assert!(helm(Some("v4.1.4+g2d9d5d5\n")).is_empty());
        assert!(helm(Some("v3.19.0+g3d8990f")).is_empty());
        assert_eq!(helm(Some("v2.17.0+ga690bad"))[0].severity, Severity::Fail);
        assert_eq!(helm(Some("garbage"))[0].severity, Severity::Warn);
    }

    #[test]
    fn the_first_failure_is_the_error_and_the_rest_its_detail() {
        let mut findings = kind(Some("kind v0.34.0 go1.26 linux/amd64"));
        findings.extend(resources(Profile::Core, 2, 16 * GIB));
        findings.extend(inotify(8192, 128));
        let e = verdict(&findings).unwrap_err();
        assert_eq!(e.exit_code(), 3);
        assert_eq!(e.message, "Docker has 2 CPUs; the core profile needs 4");
        assert!(e.hint.unwrap().contains("Settings → Resources"));
        assert_eq!(e.detail.len(), 2);
        assert!(
            e.detail[0].starts_with("note: kind 0.34.0 is newer"),
            "{:?}",
            e.detail
        );
        assert!(
            e.detail[1].starts_with("also: inotify limits"),
            "{:?}",
            e.detail
        );

        let only_warn = kind(Some("kind v0.34.0"));
        assert_eq!(verdict(&only_warn).unwrap().len(), 1);
        assert!(verdict(&[]).unwrap().is_empty());
    }
}

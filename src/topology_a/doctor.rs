//! `appgear doctor`'s checks: each finding says what it saw and, when it is not fine, how to fix it.

use crate::core::files::Dir;
use crate::core::ports::{self, Busy};
use crate::topology_a::env_store;
use crate::topology_a::home::Home;
use crate::topology_a::settings::Settings;
use crate::topology_a::stack::{docker, load};
use serde::Serialize;
use std::path::Path;
use std::time::Duration;

/// Documented minimums (README "Requirements").
pub const MIN_FREE_DISK_GIB: u64 = 5;
pub const MIN_MEMORY_GIB: u64 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Ok,
    Warn,
    Fail,
}

#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub check: String,
    pub status: Level,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

fn finding(check: &str, status: Level, detail: impl Into<String>, hint: Option<String>) -> Finding {
    Finding {
        check: check.into(),
        status,
        detail: detail.into(),
        hint,
    }
}

pub async fn run_checks(home: &Home) -> Vec<Finding> {
    let mut out = Vec::new();
    let settings = check_settings(home, &mut out);
    let docker = check_docker(&mut out).await;
    check_ports(&settings, docker.as_ref(), &mut out).await;
    out.push(check_home(home.root()));
    out.push(check_mountable(home.root()));
    out.push(check_disk(home.root()));
    out.push(check_memory());
    out.push(check_domain(settings.domain.as_str()));
    out
}

/// The home's settings, or the defaults when there is no valid `.env` yet.
fn check_settings(home: &Home, out: &mut Vec<Finding>) -> Settings {
    let exists = std::fs::symlink_metadata(home.env_path()).is_ok();
    if !exists {
        out.push(finding(
            ".env",
            Level::Ok,
            "not created yet (appgear up creates it)",
            None,
        ));
        return Settings::defaults();
    }
    match env_store::settings(home) {
        Ok(s) => {
            out.push(finding(".env", Level::Ok, "all values valid", None));
            s
        }
        Err(e) => {
            out.push(finding(
                ".env",
                Level::Fail,
                e.message.clone(),
                e.hint.clone(),
            ));
            Settings::defaults()
        }
    }
}

async fn check_docker(out: &mut Vec<Finding>) -> Option<bollard::Docker> {
    match docker::connect().await {
        Ok(d) => {
            let version = d
                .version()
                .await
                .map(|v| {
                    format!(
                        "Docker {} (API {})",
                        v.version.unwrap_or_default(),
                        v.api_version.unwrap_or_default()
                    )
                })
                .unwrap_or_else(|_| "reachable".into());
            out.push(finding("docker", Level::Ok, version, None));
            Some(d)
        }
        Err(e) => {
            out.push(finding(
                "docker",
                Level::Fail,
                e.message.clone(),
                e.hint.clone(),
            ));
            None
        }
    }
}

async fn check_ports(
    settings: &Settings,
    docker: Option<&bollard::Docker>,
    out: &mut Vec<Finding>,
) {
    let ip = settings.bind_address.to_string();
    // Ports our own running stack publishes are in use, and that is fine.
    let ours: Vec<u16> = match docker {
        Some(d) => {
            let filters = docker::project_filter(&settings.project);
            d.list_containers(Some(
                bollard::query_parameters::ListContainersOptionsBuilder::new()
                    .filters(&filters)
                    .build(),
            ))
            .await
            .unwrap_or_default()
            .into_iter()
            .flat_map(|c| {
                c.ports
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|p| p.public_port)
            })
            .collect()
        }
        None => Vec::new(),
    };
    for (key, port) in [
        ("FACTORY_VSCODE_PORT", settings.vscode_port),
        ("FACTORY_HTTP_PORT", settings.http_port),
    ] {
        let check = format!("port {port} ({key})");
        if ours.contains(&port) {
            out.push(finding(
                &check,
                Level::Ok,
                format!("in use by this appgear stack ({})", settings.project),
                None,
            ));
            continue;
        }
        let fix = settings.fix_for(Some(key));
        match ports::busy(&ip, port, fix) {
            None => out.push(finding(&check, Level::Ok, "free", None)),
            Some(mut busy) => {
                // Docker holds it for another stack: name that container, not docker-proxy.
                if let Some(d) = docker {
                    if let Some(container) = docker::publisher(d, port).await {
                        busy = Busy::new(container, &ip, port, fix);
                    }
                }
                out.push(finding(
                    &check,
                    Level::Fail,
                    format!("in use by {}", busy.holder),
                    Some(busy.hint),
                ))
            }
        }
    }
}

/// A home Docker cannot bind-mount fails `up` half-way: say so here.
fn check_mountable(root: &Path) -> Finding {
    match load::mountable(root) {
        Ok(()) => finding("home path", Level::Ok, "Docker can mount it", None),
        Err(e) => finding("home path", Level::Fail, e.message, e.hint),
    }
}

fn check_home(root: &Path) -> Finding {
    // The home, or the nearest folder above it that exists (where init would create it).
    let mut dir = root.to_path_buf();
    while !dir.exists() {
        if !dir.pop() {
            break;
        }
    }
    // A new file, created without following a link or truncating anything, then removed.
    let probe = format!(".appgear-doctor-{}", std::process::id());
    let wrote = Dir::open(&dir).and_then(|d| {
        d.open_rw(&probe, 0o600)?;
        d.remove_file(&probe)
    });
    match wrote {
        Ok(()) => finding("home writable", Level::Ok, root.display().to_string(), None),
        Err(e) => finding(
            "home writable",
            Level::Fail,
            format!("cannot write in {}: {e}", dir.display()),
            Some(format!("run ./install.sh, use --home ~/appgear, or `sudo mkdir -p {0} && sudo chown $USER {0}`", root.display())),
        ),
    }
}

fn check_disk(root: &Path) -> Finding {
    let mut dir = root.to_path_buf();
    while !dir.exists() && dir.pop() {}
    match free_bytes(&dir) {
        Some(bytes) => {
            let gib = bytes / (1 << 30);
            if gib >= MIN_FREE_DISK_GIB {
                finding(
                    "disk",
                    Level::Ok,
                    format!("{gib} GiB free at {}", dir.display()),
                    None,
                )
            } else {
                finding(
                    "disk",
                    Level::Fail,
                    format!("{gib} GiB free at {} (needs {MIN_FREE_DISK_GIB} GiB for images and the CDE)", dir.display()),
                    Some("free some space (`docker system prune` removes unused images) or use --home on a larger disk".into()),
                )
            }
        }
        None => finding("disk", Level::Warn, "could not read free space", None),
    }
}

fn free_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `st` a properly sized out-parameter.
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    (rc == 0).then(|| st.f_bavail as u64 * st.f_frsize as u64)
}

fn check_memory() -> Finding {
    let info = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let kib = |name: &str| {
        info.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
    };
    match (kib("MemTotal:"), kib("MemAvailable:")) {
        (Some(total), Some(avail)) => {
            let total_gib = total as f64 / (1 << 20) as f64;
            let avail_gib = avail as f64 / (1 << 20) as f64;
            let detail = format!("{total_gib:.1} GiB total, {avail_gib:.1} GiB available");
            if total_gib + 0.05 < MIN_MEMORY_GIB as f64 {
                finding(
                    "memory",
                    Level::Fail,
                    format!("{detail} (needs {MIN_MEMORY_GIB} GiB)"),
                    Some("give Docker more memory (Docker Desktop: Settings → Resources)".into()),
                )
            } else if avail_gib < 1.0 {
                finding(
                    "memory",
                    Level::Warn,
                    detail,
                    Some("close some programs: code-server wants about 1 GiB".into()),
                )
            } else {
                finding("memory", Level::Ok, detail, None)
            }
        }
        _ => finding("memory", Level::Warn, "could not read /proc/meminfo", None),
    }
}

fn check_domain(domain: &str) -> Finding {
    if resolves_quickly(domain) {
        finding("domain", Level::Ok, format!("{domain} resolves"), None)
    } else {
        finding(
            "domain",
            Level::Warn,
            format!("{domain} does not resolve (https://localhost works regardless)"),
            Some(format!("add `127.0.0.1 {domain}` to /etc/hosts")),
        )
    }
}

/// True when the name is in the hosts file or resolves within a second. `.local` names can stall
/// for seconds on macOS (mDNS), so we never wait longer than that.
pub fn resolves_quickly(domain: &str) -> bool {
    if domain.is_empty() {
        return false;
    }
    let hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    let in_hosts = hosts.lines().any(|l| {
        let l = l.split('#').next().unwrap_or_default();
        l.split_whitespace()
            .skip(1)
            .any(|name| name.eq_ignore_ascii_case(domain))
    });
    if in_hosts {
        return true;
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let name = format!("{domain}:443");
    std::thread::spawn(move || {
        use std::net::ToSocketAddrs;
        let _ = tx.send(
            name.to_socket_addrs()
                .map(|mut a| a.next().is_some())
                .unwrap_or(false),
        );
    });
    rx.recv_timeout(Duration::from_secs(1)).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn localhost_resolves_and_nonsense_does_not() {
        assert!(resolves_quickly("localhost"));
        assert!(!resolves_quickly("no-such-host.invalid"));
    }

    #[test]
    fn unwritable_home_is_a_failure_with_a_hint() {
        // A home below a regular file cannot be created, not even by root.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, "x").unwrap();
        let f = check_home(&file.join("home"));
        assert_eq!(f.status, Level::Fail);
        assert!(f.hint.unwrap().contains("--home"));
        assert_eq!(check_home(dir.path()).status, Level::Ok);
    }
}

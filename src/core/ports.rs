//! Host ports: is one free, which free one to suggest, and who holds a busy one (Linux tells
//! through /proc; elsewhere we say we do not know).

use std::net::{IpAddr, Ipv4Addr, TcpListener};

/// True when we could listen on `ip:port` now (so Docker can publish it).
pub fn is_free(ip: &str, port: u16) -> bool {
    let ip: IpAddr = ip.parse().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    TcpListener::bind((ip, port)).is_ok()
}

/// The first free port above `port`, to suggest in an error.
pub fn suggest_free(ip: &str, port: u16) -> Option<u16> {
    (port.saturating_add(1)..=port.saturating_add(200)).find(|p| *p > 1024 && is_free(ip, *p))
}

/// How the user changes the port, for the hint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fix<'a> {
    /// A key in the home's `.env`: `appgear config set KEY PORT`.
    EnvKey(&'a str),
    /// A variable set in the shell, which wins over `.env`.
    ShellVar(&'a str),
    /// Written in the compose file itself.
    ComposeFile,
}

/// A port someone else holds: who, and what the user can do about it.
pub struct Busy {
    /// "name (pid N)" when the OS says, "container X" when Docker does, else a plain description.
    pub holder: String,
    pub hint: String,
}

impl Busy {
    /// The hint for `holder` on `ip:port`: stop it, or move to a free port (named when one is).
    pub fn new(holder: String, ip: &str, port: u16, fix: Fix) -> Busy {
        let hint = match (fix, suggest_free(ip, port)) {
            (Fix::EnvKey(k), Some(free)) => {
                format!("stop {holder}, or use another port: `appgear config set {k} {free}`")
            }
            (Fix::EnvKey(k), None) => format!("stop {holder}, or set {k} in .env to a free port"),
            (Fix::ShellVar(k), Some(free)) => format!(
                "stop {holder}, or use another port: {k} is set in your shell (it wins over .env), e.g. `export {k}={free}`"
            ),
            (Fix::ShellVar(k), None) => format!(
                "stop {holder}, or set {k} in your shell (it wins over .env) to a free port"
            ),
            (Fix::ComposeFile, _) => {
                format!("stop {holder}, or change the port in docker-compose.yml")
            }
        };
        Busy { holder, hint }
    }
}

/// `None` when `ip:port` is free; otherwise who holds it and a hint that says how to change the
/// port (the `.env` key, when there is one) and to what.
pub fn busy(ip: &str, port: u16, fix: Fix) -> Option<Busy> {
    if is_free(ip, port) {
        return None;
    }
    let holder =
        holder(port).unwrap_or_else(|| "another program (the OS did not say which)".into());
    Some(Busy::new(holder, ip, port, fix))
}

/// Which process listens on `port`, as "name (pid N)", when the OS lets us see it.
pub fn holder(port: u16) -> Option<String> {
    let inodes = listening_inodes(port);
    if inodes.is_empty() {
        return None;
    }
    let procs = std::fs::read_dir("/proc").ok()?;
    for entry in procs.flatten() {
        let pid = entry.file_name().to_string_lossy().to_string();
        if !pid.chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            let Ok(target) = std::fs::read_link(fd.path()) else {
                continue;
            };
            let target = target.to_string_lossy().to_string();
            if let Some(inode) = target
                .strip_prefix("socket:[")
                .and_then(|s| s.strip_suffix(']'))
            {
                if inodes.iter().any(|i| i == inode) {
                    let name =
                        std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
                    return Some(format!("{} (pid {pid})", name.trim()));
                }
            }
        }
    }
    None
}

/// Socket inodes in LISTEN state on `port`, from /proc/net/tcp and tcp6.
fn listening_inodes(port: u16) -> Vec<String> {
    let mut out = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            // local_address is HEX_IP:HEX_PORT, state 0A is LISTEN, inode is column 9.
            let (Some(local), Some(state), Some(inode)) = (cols.get(1), cols.get(3), cols.get(9))
            else {
                continue;
            };
            let p = local
                .rsplit(':')
                .next()
                .and_then(|h| u16::from_str_radix(h, 16).ok());
            if p == Some(port) && *state == "0A" {
                out.push(inode.to_string());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listening_port_is_busy_and_its_holder_is_named() {
        let l = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let port = l.local_addr().unwrap().port();
        assert!(!is_free("127.0.0.1", port));
        let who = holder(port).expect("this process holds it");
        assert!(
            who.contains(&format!("pid {}", std::process::id())),
            "{who}"
        );
        drop(l);
        assert!(is_free("127.0.0.1", port));
        assert!(suggest_free("127.0.0.1", port).is_some_and(|p| p > port));
    }
}

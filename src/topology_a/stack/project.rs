//! The typed, normalised stack that the plan and the Docker applier work on, built from the
//! compose file after interpolation. Each image and published port remembers the variable it
//! came from (when one gave it whole), so a hint can name the key to change.

use crate::topology_a::stack::file::{
    ComposeFile, DependsOnDef, HealthcheckDef, NetworksDef, ResourceDef, ServiceDef, StringOrList,
};
use crate::topology_a::stack::interpolate::{interpolate_traced, source_of, Lookup, Span};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize)]
pub struct Project {
    pub name: String,
    /// Services in dependency order: every service comes after the ones it depends on.
    pub services: Vec<Service>,
    /// Docker names of the networks and volumes, with their compose keys.
    pub networks: Vec<Resource>,
    pub volumes: Vec<Resource>,
    pub working_dir: PathBuf,
    pub config_file: PathBuf,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Resource {
    pub key: String,
    pub name: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Service {
    pub name: String,
    pub container_name: String,
    pub image: String,
    /// The variable the image reference came from, whole (for example `TRAEFIK_IMAGE`). Not
    /// part of the configuration hash: it says where a value came from, not what runs.
    #[serde(skip)]
    pub image_from: Option<String>,
    pub command: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    pub environment: BTreeMap<String, String>,
    pub ports: Vec<Port>,
    pub mounts: Vec<Mount>,
    /// Docker network names, each with the aliases this service answers to.
    pub networks: Vec<(String, Vec<String>)>,
    pub depends_on: Vec<Dependency>,
    pub healthcheck: Option<Healthcheck>,
    pub restart: Option<String>,
    pub user: Option<String>,
    pub working_dir: Option<String>,
    pub labels: BTreeMap<String, String>,
    /// Digest of what the read-only bind mounts hold (configuration and certificates), so that a
    /// change there also recreates the service. Filled in when the home is loaded.
    pub mounted_config: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Port {
    pub host_ip: String,
    pub host_port: u16,
    pub container_port: u16,
    pub protocol: String,
    /// The variable the host port came from, whole (for example `FACTORY_VSCODE_PORT`).
    #[serde(skip)]
    pub host_port_from: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub enum Mount {
    Bind {
        source: PathBuf,
        target: String,
        read_only: bool,
    },
    Volume {
        name: String,
        target: String,
        read_only: bool,
    },
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Dependency {
    pub service: String,
    pub condition: Condition,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub enum Condition {
    Started,
    Healthy,
    CompletedSuccessfully,
}

/// Durations are in nanoseconds, as the Docker API takes them.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Healthcheck {
    pub test: Vec<String>,
    pub interval_ns: i64,
    pub timeout_ns: i64,
    pub retries: i64,
    pub start_period_ns: i64,
    pub start_interval_ns: i64,
}

impl Service {
    /// True when Docker runs a health check for this service (not when it is turned off).
    pub fn has_healthcheck(&self) -> bool {
        self.healthcheck
            .as_ref()
            .is_some_and(|h| h.test.first().map(String::as_str) != Some("NONE"))
    }

    /// A digest of everything that shapes the container: if it changes, the container is
    /// recreated. Stored as Compose's `com.docker.compose.config-hash` label.
    pub fn config_hash(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        crate::core::digest::sha256_hex(&json)
    }
}

/// Parse and interpolate a compose file; relative paths are resolved against its folder.
/// `project` is COMPOSE_PROJECT_NAME, which in Compose wins over a `name:` in the file (and appgear
/// always has one in `.env`).
pub fn load(text: &str, file: &Path, vars: &impl Lookup, project: &str) -> Result<Project, String> {
    let mut value: serde_norway::Value =
        serde_norway::from_str(text).map_err(|e| format!("not valid YAML: {e}"))?;
    // `<<: *anchor` merge keys, as Compose accepts them.
    value
        .apply_merge()
        .map_err(|e| format!("a YAML merge key (<<) cannot be applied: {e}"))?;
    let mut traces = Traces::new();
    interpolate_value(&mut value, vars, "", &mut traces)?;
    strip_extensions(&mut value);
    let mut parsed: ComposeFile = serde_norway::from_value(value).map_err(|e| e.to_string())?;
    let dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
    let name = project.to_string();
    // As in Compose, a service that names no network joins the project's `default` network.
    let uses_default = parsed
        .services
        .values()
        .any(|v| v.get("networks").is_none());
    if uses_default {
        parsed.networks.entry("default".to_string()).or_insert(None);
    }
    let networks = resources(&parsed.networks, &name);
    let volumes = resources(&parsed.volumes, &name);
    let mut services = Vec::new();
    for (svc_name, raw) in &parsed.services {
        let def: ServiceDef = serde_norway::from_value(raw.clone())
            .map_err(|e| format!("services.{svc_name}: {e}"))?;
        let traced = |field: &str| traces.get(&format!("services.{svc_name}.{field}"));
        services.push(
            service(
                &name, svc_name, def, &dir, &networks, &volumes, vars, &traced,
            )
            .map_err(|e| format!("services.{svc_name}: {e}"))?,
        );
    }
    let services = dependency_order(services)?;
    Ok(Project {
        name,
        services,
        networks,
        volumes,
        working_dir: dir,
        config_file: file.to_path_buf(),
    })
}

/// Docker names of top-level networks or volumes: a fixed `name:`, else `<project>_<key>`.
fn resources(defs: &BTreeMap<String, Option<ResourceDef>>, project: &str) -> Vec<Resource> {
    defs.iter()
        .map(|(k, d)| Resource {
            key: k.clone(),
            name: d
                .as_ref()
                .and_then(|d| d.name.clone())
                .unwrap_or(format!("{project}_{k}")),
        })
        .collect()
}

/// Where variables landed, per string of the file, by its path (`services.web.ports[0]`).
type Traces = BTreeMap<String, Vec<Span>>;

fn interpolate_value(
    v: &mut serde_norway::Value,
    vars: &impl Lookup,
    path: &str,
    traces: &mut Traces,
) -> Result<(), String> {
    use serde_norway::Value;
    match v {
        Value::String(s) => {
            let (text, spans) = interpolate_traced(s, vars).map_err(|e| {
                if path.is_empty() {
                    e
                } else {
                    format!("{path}: {e}")
                }
            })?;
            *s = text;
            if !spans.is_empty() {
                traces.insert(path.to_string(), spans);
            }
        }
        Value::Sequence(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                interpolate_value(item, vars, &format!("{path}[{i}]"), traces)?;
            }
        }
        Value::Mapping(map) => {
            for (k, item) in map.iter_mut() {
                let key = k.as_str().unwrap_or("?");
                let p = if path.is_empty() {
                    key.to_string()
                } else {
                    format!("{path}.{key}")
                };
                interpolate_value(item, vars, &p, traces)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// `x-...` keys are Compose extensions (anchors and shared snippets), never configuration.
fn strip_extensions(v: &mut serde_norway::Value) {
    if let serde_norway::Value::Mapping(map) = v {
        map.retain(|k, _| !k.as_str().is_some_and(|s| s.starts_with("x-")));
        for (_, item) in map.iter_mut() {
            strip_extensions(item);
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn service<'t>(
    project: &str,
    name: &str,
    def: ServiceDef,
    dir: &Path,
    networks: &[Resource],
    volumes: &[Resource],
    vars: &impl Lookup,
    traced: &impl Fn(&str) -> Option<&'t Vec<Span>>,
) -> Result<Service, String> {
    let lookup_net = |key: &str| {
        networks
            .iter()
            .find(|n| n.key == key)
            .map(|n| n.name.clone())
            .ok_or_else(|| {
                format!("network `{key}` is not declared under the top-level `networks:`")
            })
    };
    let nets = match &def.networks {
        None => vec![(lookup_net("default")?, vec![name.to_string()])],
        Some(NetworksDef::List(l)) => l
            .iter()
            .map(|k| Ok((lookup_net(k)?, vec![name.to_string()])))
            .collect::<Result<_, String>>()?,
        Some(NetworksDef::Map(m)) => m
            .iter()
            .map(|(k, d)| {
                let mut aliases = vec![name.to_string()];
                aliases.extend(d.as_ref().map(|d| d.aliases.clone()).unwrap_or_default());
                Ok((lookup_net(k)?, aliases))
            })
            .collect::<Result<_, String>>()?,
    };
    let depends_on = match &def.depends_on {
        None => Vec::new(),
        Some(DependsOnDef::List(l)) => l
            .iter()
            .map(|s| Dependency {
                service: s.clone(),
                condition: Condition::Started,
            })
            .collect(),
        Some(DependsOnDef::Map(m)) => m
            .iter()
            .map(|(s, e)| {
                let condition = match e.condition.as_str() {
                    "service_started" => Condition::Started,
                    "service_healthy" => Condition::Healthy,
                    "service_completed_successfully" => Condition::CompletedSuccessfully,
                    other => return Err(format!("depends_on.{s}: unknown condition `{other}`")),
                };
                Ok(Dependency {
                    service: s.clone(),
                    condition,
                })
            })
            .collect::<Result<_, String>>()?,
    };
    Ok(Service {
        name: name.to_string(),
        container_name: def
            .container_name
            .clone()
            .unwrap_or(format!("{project}-{name}-1")),
        image: def.image.clone(),
        image_from: traced("image")
            .and_then(|spans| source_of(spans, 0..def.image.len()))
            .map(str::to_string),
        command: def.command.as_ref().map(argv).transpose()?,
        entrypoint: def.entrypoint.as_ref().map(argv).transpose()?,
        // A key with no value takes it from the environment (shell, then .env), and is left out
        // when that has none, as in Compose.
        environment: def
            .environment
            .as_ref()
            .map(|e| {
                e.pairs()
                    .into_iter()
                    .filter_map(|(k, v)| v.or_else(|| vars.lookup(&k)).map(|v| (k, v)))
                    .collect()
            })
            .unwrap_or_default(),
        ports: def
            .ports
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let (mut port, host) = port(&p.text())?;
                port.host_port_from = traced(&format!("ports[{i}]"))
                    .and_then(|spans| source_of(spans, host))
                    .map(str::to_string);
                Ok(port)
            })
            .collect::<Result<_, String>>()?,
        mounts: def
            .volumes
            .iter()
            .map(|v| mount(v, dir, volumes))
            .collect::<Result<_, _>>()?,
        networks: nets,
        depends_on,
        healthcheck: def
            .healthcheck
            .as_ref()
            .map(healthcheck)
            .transpose()?
            .flatten(),
        restart: def.restart.as_deref().map(restart).transpose()?,
        user: def.user.as_ref().map(|u| u.text()),
        working_dir: def.working_dir.clone(),
        labels: def
            .labels
            .as_ref()
            .map(|l| {
                l.pairs()
                    .into_iter()
                    .map(|(k, v)| (k, v.unwrap_or_default()))
                    .collect()
            })
            .unwrap_or_default(),
        mounted_config: String::new(),
    })
}

/// A string command is split like a shell would split words (quotes group), as Compose does.
fn argv(c: &StringOrList) -> Result<Vec<String>, String> {
    match c {
        StringOrList::List(l) => Ok(l.clone()),
        StringOrList::String(s) => split_words(s),
    }
}

fn split_words(s: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    for c in s.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err(format!("`{s}` has an unclosed quote"));
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

/// Short port syntax: `[host_ip:]host_port:container_port[/protocol]`. A port with no host side
/// would get a random host port, which a local stack's users cannot find: refused. Also returns
/// where the host port is in `spec`, to trace it to its variable.
fn port(spec: &str) -> Result<(Port, std::ops::Range<usize>), String> {
    let (body, protocol) = match spec.rsplit_once('/') {
        Some((b, p)) if p == "tcp" || p == "udp" => (b, p.to_string()),
        Some(_) => return Err(format!("port `{spec}`: protocol must be tcp or udp")),
        None => (spec, "tcp".to_string()),
    };
    let parts: Vec<&str> = body.rsplitn(3, ':').collect();
    let num = |s: &str, what: &str| -> Result<u16, String> {
        s.parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| format!("port `{spec}`: `{s}` is not a valid {what} port (1-65535)"))
    };
    // rsplitn takes the pieces from the end: the host port ends just before the container's ':'.
    let host_range = |container: &str, host: &str| {
        let end = body.len() - container.len() - 1;
        end - host.len()..end
    };
    match parts.as_slice() {
        [container, host] => Ok((
            Port {
                host_ip: String::new(),
                host_port: num(host, "host")?,
                container_port: num(container, "container")?,
                protocol,
                host_port_from: None,
            },
            host_range(container, host),
        )),
        [container, host, ip] => {
            let ip = ip.trim_start_matches('[').trim_end_matches(']');
            ip.parse::<std::net::IpAddr>()
                .map_err(|_| format!("port `{spec}`: `{ip}` is not an IP address"))?;
            Ok((
                Port {
                    host_ip: ip.to_string(),
                    host_port: num(host, "host")?,
                    container_port: num(container, "container")?,
                    protocol,
                    host_port_from: None,
                },
                host_range(container, host),
            ))
        }
        _ => Err(format!(
            "port `{spec}`: publish it as HOST_PORT:CONTAINER_PORT so it can be found on the host"
        )),
    }
}

/// Short volume syntax: `source:target[:ro|rw]`; a source starting with `.`, `/` or `~` is a folder
/// on the host, anything else a named volume declared at the top level.
fn mount(spec: &str, dir: &Path, volumes: &[Resource]) -> Result<Mount, String> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (source, target, mode) = match parts.as_slice() {
        [s, t] => (*s, *t, ""),
        [s, t, m] => (*s, *t, *m),
        _ => return Err(format!("volume `{spec}`: use SOURCE:TARGET[:ro]")),
    };
    let read_only = match mode {
        "" | "rw" => false,
        "ro" => true,
        other => {
            return Err(format!(
                "volume `{spec}`: mode `{other}` is not supported (use ro or rw)"
            ))
        }
    };
    if !target.starts_with('/') {
        return Err(format!(
            "volume `{spec}`: the target must be an absolute path in the container"
        ));
    }
    if source.starts_with('.') || source.starts_with('/') || source.starts_with('~') {
        let path = if let Some(rest) = source.strip_prefix("~/") {
            std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_default()
                .join(rest)
        } else if source.starts_with('/') {
            PathBuf::from(source)
        } else {
            normalise(&dir.join(source))
        };
        Ok(Mount::Bind {
            source: path,
            target: target.to_string(),
            read_only,
        })
    } else {
        let v = volumes.iter().find(|v| v.key == source).ok_or_else(|| {
            format!("volume `{source}` is not declared under the top-level `volumes:`")
        })?;
        Ok(Mount::Volume {
            name: v.name.clone(),
            target: target.to_string(),
            read_only,
        })
    }
}

/// `a/./b/../c` → `a/c`, without touching the disk (the folder may not exist yet).
fn normalise(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// Compose's restart policies; anything else is refused rather than quietly becoming `no`.
fn restart(r: &str) -> Result<String, String> {
    let ok = matches!(r, "no" | "always" | "unless-stopped" | "on-failure")
        || r.strip_prefix("on-failure:")
            .is_some_and(|n| n.parse::<u32>().is_ok());
    if ok {
        Ok(r.to_string())
    } else {
        Err(format!(
            "restart: `{r}` is not one of no, always, unless-stopped, on-failure[:N]"
        ))
    }
}

/// `disable: true` and `test: ["NONE"]` both turn off the image's own health check.
fn healthcheck(h: &HealthcheckDef) -> Result<Option<Healthcheck>, String> {
    if h.disable {
        return Ok(Some(Healthcheck {
            test: vec!["NONE".into()],
            interval_ns: 0,
            timeout_ns: 0,
            retries: 0,
            start_period_ns: 0,
            start_interval_ns: 0,
        }));
    }
    let test = match &h.test {
        None => return Err("healthcheck: `test` is required".into()),
        Some(StringOrList::String(s)) => vec!["CMD-SHELL".to_string(), s.clone()],
        Some(StringOrList::List(l)) => {
            if !matches!(
                l.first().map(String::as_str),
                Some("CMD" | "CMD-SHELL" | "NONE")
            ) {
                return Err(
                    "healthcheck.test: a list must start with CMD, CMD-SHELL or NONE".into(),
                );
            }
            l.clone()
        }
    };
    let d = |v: &Option<String>, default: i64, what: &str| -> Result<i64, String> {
        match v {
            None => Ok(default),
            Some(s) => duration_ns(s).ok_or_else(|| {
                format!(
                    "healthcheck.{what}: `{s}` is not a duration (for example 5s, 1m30s, 500ms)"
                )
            }),
        }
    };
    const S: i64 = 1_000_000_000;
    Ok(Some(Healthcheck {
        test,
        interval_ns: d(&h.interval, 30 * S, "interval")?,
        timeout_ns: d(&h.timeout, 30 * S, "timeout")?,
        retries: h.retries.map(i64::from).unwrap_or(3),
        start_period_ns: d(&h.start_period, 0, "start_period")?,
        start_interval_ns: d(&h.start_interval, 0, "start_interval")?,
    }))
}

/// Compose durations: a sequence of number+unit (`1h2m3s`, `500ms`, `1.5s`).
pub fn duration_ns(s: &str) -> Option<i64> {
    let mut total = 0f64;
    let mut rest = s.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let n_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let n: f64 = rest[..n_end].parse().ok()?;
        rest = &rest[n_end..];
        let u_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = match &rest[..u_end] {
            "h" => 3.6e12,
            "m" => 6e10,
            "s" => 1e9,
            "ms" => 1e6,
            "us" | "µs" => 1e3,
            "ns" => 1.0,
            _ => return None,
        };
        total += n * unit;
        rest = &rest[u_end..];
    }
    Some(total as i64)
}

/// Order services so dependencies come first; a missing dependency or a cycle is an error.
fn dependency_order(mut services: Vec<Service>) -> Result<Vec<Service>, String> {
    let names: BTreeSet<String> = services.iter().map(|s| s.name.clone()).collect();
    for s in &services {
        for d in &s.depends_on {
            if !names.contains(&d.service) {
                return Err(format!(
                    "services.{}: depends on `{}`, which is not a service",
                    s.name, d.service
                ));
            }
        }
    }
    let mut ordered: Vec<Service> = Vec::new();
    while !services.is_empty() {
        let done: BTreeSet<String> = ordered.iter().map(|s| s.name.clone()).collect();
        let ready = services
            .iter()
            .position(|s| s.depends_on.iter().all(|d| done.contains(&d.service)));
        match ready {
            Some(i) => ordered.push(services.remove(i)),
            None => {
                let names: Vec<_> = services.iter().map(|s| s.name.as_str()).collect();
                return Err(format!(
                    "services {} depend on each other in a cycle",
                    names.join(", ")
                ));
            }
        }
    }
    Ok(ordered)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology_a::generated::COMPOSE_SOURCE;

    fn env() -> impl Lookup {
        |k: &str| match k {
            "TRAEFIK_IMAGE" => Some("traefik:v3.6.2".to_string()),
            "CODE_SERVER_IMAGE" => Some("codercom/code-server:4.106.3".to_string()),
            "CODE_SERVER_PASSWORD" => Some("s3cretpassword".to_string()),
            "FACTORY_VSCODE_PORT" => Some("9443".to_string()),
            _ => None,
        }
    }

    #[test]
    fn topology_a_source_loads_in_dependency_order() {
        let p = load(
            COMPOSE_SOURCE,
            Path::new("/opt/appgear/docker-compose.yml"),
            &env(),
            "appgear",
        )
        .unwrap();
        assert_eq!(p.name, "appgear");
        let names: Vec<_> = p.services.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["addon-factory-vscode", "core-traefik"]);
        let traefik = &p.services[1];
        assert_eq!(traefik.container_name, "appgear-core-traefik-1");
        assert_eq!(
            traefik.ports[0],
            Port {
                host_ip: "127.0.0.1".into(),
                host_port: 9443,
                container_port: 8443,
                protocol: "tcp".into(),
                host_port_from: Some("FACTORY_VSCODE_PORT".into()),
            }
        );
        assert_eq!(traefik.image_from.as_deref(), Some("TRAEFIK_IMAGE"));
        // FACTORY_HTTP_PORT is unset here: the file's own default gave the port.
        assert_eq!(traefik.ports[1].host_port_from, None);
        assert_eq!(traefik.depends_on[0].condition, Condition::Healthy);
        let cde = &p.services[0];
        assert!(cde.mounts.contains(&Mount::Bind {
            source: "/opt/appgear/config/cde".into(),
            target: "/home/coder/project".into(),
            read_only: false
        }));
        assert!(cde.mounts.contains(&Mount::Volume {
            name: "appgear_cde-home".into(),
            target: "/home/coder".into(),
            read_only: false
        }));
        assert_eq!(cde.environment["PASSWORD"], "s3cretpassword");
        assert_eq!(cde.healthcheck.as_ref().unwrap().interval_ns, 3_000_000_000);
        assert_eq!(
            p.networks,
            vec![Resource {
                key: "factory".into(),
                name: "appgear_factory".into()
            }]
        );
    }

    #[test]
    fn missing_required_variable_names_it() {
        let none = |_: &str| None::<String>;
        let err = load(
            COMPOSE_SOURCE,
            Path::new("/h/docker-compose.yml"),
            &none,
            "x",
        )
        .unwrap_err();
        assert!(
            err.contains("TRAEFIK_IMAGE") || err.contains("CODE_SERVER_IMAGE"),
            "{err}"
        );
    }

    #[test]
    fn unknown_keys_are_refused_not_ignored() {
        let text = "services:\n  web:\n    image: a:1\n    build: .\n";
        let err = load(text, Path::new("/h/c.yml"), &env(), "x").unwrap_err();
        assert!(
            err.contains("services.web") && err.contains("unknown field `build`"),
            "{err}"
        );
        let text = "services: {}\nconfigs: {}\n";
        assert!(load(text, Path::new("/h/c.yml"), &env(), "x")
            .unwrap_err()
            .contains("configs"));
        let text =
            "x-common: &c {image: a:1}\nservices:\n  web:\n    image: a:1\n    x-note: fine\n";
        assert!(load(text, Path::new("/h/c.yml"), &env(), "x").is_ok());
    }

    #[test]
    fn hash_changes_only_with_the_service() {
        let p1 = load(
            COMPOSE_SOURCE,
            Path::new("/h/docker-compose.yml"),
            &env(),
            "x",
        )
        .unwrap();
        let other = |k: &str| {
            if k == "CODE_SERVER_IMAGE" {
                Some("codercom/code-server:4.107.0".to_string())
            } else {
                env().lookup(k)
            }
        };
        let p2 = load(
            COMPOSE_SOURCE,
            Path::new("/h/docker-compose.yml"),
            &other,
            "x",
        )
        .unwrap();
        assert_ne!(p1.services[0].config_hash(), p2.services[0].config_hash());
        assert_eq!(p1.services[1].config_hash(), p2.services[1].config_hash());
    }

    #[test]
    fn cycles_and_bad_ports_are_reported() {
        let text =
            "services:\n  a: {image: a:1, depends_on: [b]}\n  b: {image: b:1, depends_on: [a]}\n";
        assert!(load(text, Path::new("/h/c.yml"), &env(), "x")
            .unwrap_err()
            .contains("cycle"));
        let text = "services:\n  a: {image: a:1, ports: ['99999:80']}\n";
        assert!(load(text, Path::new("/h/c.yml"), &env(), "x")
            .unwrap_err()
            .contains("not a valid host port"));
        let text = "services:\n  a: {image: a:1, ports: ['80']}\n";
        assert!(load(text, Path::new("/h/c.yml"), &env(), "x")
            .unwrap_err()
            .contains("HOST_PORT:CONTAINER_PORT"));
    }

    #[test]
    fn durations_and_words() {
        assert_eq!(duration_ns("1m30s"), Some(90_000_000_000));
        assert_eq!(duration_ns("500ms"), Some(500_000_000));
        assert_eq!(duration_ns("5x"), None);
        assert_eq!(split_words("a 'b c' \"d\"").unwrap(), ["a", "b c", "d"]);
    }

    #[test]
    fn compose_forms_that_must_not_be_ignored() {
        let text = "x-base: &base\n  image: a:1\n  restart: on-failure:3\nservices:\n  web:\n    <<: *base\n    environment: [FROM_ENV, MISSING, SET=1]\n    healthcheck: {disable: true}\n";
        let vars = |k: &str| (k == "FROM_ENV").then(|| "shell".to_string());
        let p = load(text, Path::new("/h/c.yml"), &vars, "proj").unwrap();
        let web = &p.services[0];
        assert_eq!(web.image, "a:1", "merge keys apply");
        assert_eq!(web.restart.as_deref(), Some("on-failure:3"));
        assert_eq!(
            web.environment.get("FROM_ENV").map(String::as_str),
            Some("shell")
        );
        assert!(!web.environment.contains_key("MISSING"));
        assert!(
            !web.has_healthcheck(),
            "disable turns the image's check off"
        );
        assert_eq!(web.healthcheck.as_ref().unwrap().test, ["NONE"]);
        assert_eq!(
            web.networks,
            [("proj_default".to_string(), vec!["web".to_string()])],
            "joins the default network"
        );
        assert_eq!(
            p.networks,
            [Resource {
                key: "default".into(),
                name: "proj_default".into()
            }]
        );
        let bad = "services:\n  web: {image: a:1, restart: sometimes}\n";
        assert!(load(bad, Path::new("/h/c.yml"), &vars, "proj")
            .unwrap_err()
            .contains("restart"));
    }
}

//! The rules. Each looks at the parsed objects and returns findings; none changes anything.

use super::airbyte::{self, is_airbyte};
use super::finding::{finding, show};
use super::load::Doc;
use super::object::{containers, get, get_str, scalar_text, Object};
use super::{Finding, Rule};
use crate::core::names::{is_label as is_dns_label, GLOBAL};
use crate::core::quote;
use serde_norway::Value;

const TENANT: &str = "appgear.io/tenant-id";
const WORKSPACE: &str = "appgear.io/workspace-id";
const SUITE: &str = "appgear.io/suite";
const CDE: &str = "addon-factory-vscode";
const MULTIPLAYER: &str = "addon-factory-multiplayer";
const BUILDER: &str = "addon-factory-tauri-builder";
/// Kong's default upstream read/write timeout, in milliseconds.
const KONG_DEFAULT_TIMEOUT_MS: u64 = 60_000;

/// Run every rule over the documents; findings sorted by file, document, then rule.
pub fn check(docs: &[Doc]) -> Vec<Finding> {
    let objects: Vec<Object> = docs.iter().filter_map(Object::from_doc).collect();
    let mut findings = Vec::new();
    for o in &objects {
        kong_only_ingress(o, &mut findings);
        tenant_label(o, &mut findings);
        cde_storage(o, &objects, &mut findings);
        airbyte::check(o, &mut findings);
        multiplayer_websocket(o, &objects, &mut findings);
        policy(o, &mut findings);
        suite_layout(o, &mut findings);
        builder_scaling(o, &mut findings);
    }
    findings.sort_by(|a, b| (&a.file, a.document, a.rule).cmp(&(&b.file, b.document, b.rule)));
    findings
}

/// FACTORY001: traffic to Factory services must pass Traefik → Coraza → Kong; a Traefik CRD
/// (IngressRoute, Middleware...) or an Ingress of another class skips Coraza and Kong.
fn kong_only_ingress(o: &Object, out: &mut Vec<Finding>) {
    let group = o.group();
    if group == "traefik.io" || group == "traefik.containo.us" {
        out.push(finding(
            Rule::KongOnlyIngress,
            o,
            format!("Traefik {} routes around Coraza and Kong (the spec's G05 bypass)", o.kind),
            "expose Factory services only through an Ingress with ingressClassName: kong; Traefik and Coraza belong to M02",
        ));
    }
    if o.kind == "Ingress" {
        let class = get_str(o.v, &["spec", "ingressClassName"]);
        if class != Some("kong") {
            out.push(finding(
                Rule::KongOnlyIngress,
                o,
                format!(
                    "Ingress class is {}, not kong",
                    class.map_or("unset".to_string(), |c| format!("{c:?}"))
                ),
                "set spec.ingressClassName: kong",
            ));
        }
    }
}

fn is_workspace_namespace(ns: &str) -> bool {
    ns.strip_prefix("ws-")
        .and_then(|r| r.strip_suffix("-factory"))
        .is_some_and(is_dns_label)
}

fn is_workspace_object(o: &Object) -> bool {
    o.namespace().is_some_and(is_workspace_namespace)
        || (o.kind == "Namespace" && is_workspace_namespace(o.name()))
        || o.label(WORKSPACE).is_some_and(|w| w != GLOBAL)
}

/// FACTORY002: FinOps attributes cost by `appgear.io/tenant-id`, on objects and on the pods
/// they run: `global` for the shared Airbyte, the real tenant for workspace objects.
fn tenant_label(o: &Object, out: &mut Vec<Finding>) {
    let hint_global = "label the shared Airbyte's objects appgear.io/tenant-id: global";
    let hint_tenant =
        "label every workspace object (and its pod template) appgear.io/tenant-id: <tenant_id>";
    let expect = |tenant: Option<&str>, what: &str, out: &mut Vec<Finding>| {
        if is_airbyte(o) {
            if tenant != Some(GLOBAL) {
                out.push(finding(
                    Rule::TenantLabel,
                    o,
                    format!(
                        "{what} of a shared Airbyte object has {TENANT} {}, not global",
                        show(tenant)
                    ),
                    hint_global,
                ));
            }
        } else if is_workspace_object(o) {
            match tenant {
                Some(t) if t != GLOBAL && is_dns_label(t) => {}
                _ => out.push(finding(
                    Rule::TenantLabel,
                    o,
                    format!(
                        "{what} of a workspace object has {TENANT} {}, not a real tenant",
                        show(tenant)
                    ),
                    hint_tenant,
                )),
            }
        } else if tenant.is_none_or(str::is_empty) {
            out.push(finding(
                Rule::TenantLabel,
                o,
                format!("{what} has no {TENANT} label"),
                hint_tenant,
            ));
        }
    };
    expect(o.label(TENANT), "metadata", out);
    for (meta, _) in o.pod_templates() {
        let t = meta
            .and_then(|m| get(m, &["labels", TENANT]))
            .and_then(Value::as_str);
        expect(t, "pod template", out);
    }
}

fn is_cde(o: &Object) -> bool {
    o.app_name() == Some(CDE)
        || o.pod_templates().iter().any(|(m, _)| {
            m.and_then(|m| get_str(m, &["labels", "app.kubernetes.io/name"])) == Some(CDE)
        })
}

/// FACTORY003: a CDE keeps uncommitted work on its volume; an emptyDir loses it when KEDA
/// scales to zero, and the workspace volume must be CephFS, shareable (RWX).
fn cde_storage(o: &Object, all: &[Object], out: &mut Vec<Finding>) {
    let hint = "mount the workspace from a PersistentVolumeClaim with storageClassName: ceph-filesystem and accessModes [ReadWriteMany]";
    if is_cde(o) {
        for (_, spec) in o.pod_templates() {
            for vol in spec
                .get("volumes")
                .and_then(Value::as_sequence)
                .into_iter()
                .flatten()
            {
                if vol.get("emptyDir").is_some() {
                    out.push(finding(
                        Rule::CdeStorage,
                        o,
                        format!(
                            "CDE volume {} is an emptyDir: uncommitted code is lost when the pod scales to zero",
                            get_str(vol, &["name"]).unwrap_or("?")
                        ),
                        hint,
                    ));
                }
            }
        }
    }
    if o.kind != "PersistentVolumeClaim" {
        return;
    }
    let claimed_by_cde = all.iter().filter(|w| is_cde(w)).any(|w| {
        w.namespace() == o.namespace()
            && w.pod_templates().iter().any(|(_, spec)| {
                spec.get("volumes")
                    .and_then(Value::as_sequence)
                    .into_iter()
                    .flatten()
                    .any(|v| get_str(v, &["persistentVolumeClaim", "claimName"]) == Some(o.name()))
            })
    });
    if o.app_name() != Some(CDE) && !claimed_by_cde {
        return;
    }
    let class = get_str(o.v, &["spec", "storageClassName"]);
    let rwx = get(o.v, &["spec", "accessModes"])
        .and_then(Value::as_sequence)
        .is_some_and(|m| m.iter().any(|x| x.as_str() == Some("ReadWriteMany")));
    if class != Some("ceph-filesystem") || !rwx {
        out.push(finding(
            Rule::CdeStorage,
            o,
            format!(
                "CDE workspace volume has storage class {} and {} ReadWriteMany",
                show(class),
                if rwx { "has" } else { "lacks" }
            ),
            hint,
        ));
    }
}

fn has_limits(resources: Option<&Value>) -> bool {
    let limits = resources.and_then(|r| r.get("limits"));
    ["cpu", "memory"].iter().all(|k| {
        limits
            .and_then(|l| l.get(*k))
            .and_then(scalar_text)
            .is_some()
    })
}

fn timeout_ok(o: &Object, key: &str) -> bool {
    o.annotation(key)
        .and_then(|v| v.trim().parse::<u64>().ok())
        .is_some_and(|ms| ms > KONG_DEFAULT_TIMEOUT_MS)
}

/// FACTORY005: the multiplayer gateway holds WebSockets open; Kong cuts an upstream connection
/// idle for its default 60 s unless the Service raises the read/write timeouts.
fn multiplayer_websocket(o: &Object, all: &[Object], out: &mut Vec<Finding>) {
    let hint = "annotate the Service konghq.com/read-timeout and konghq.com/write-timeout with milliseconds above 60000 (e.g. \"3600000\")";
    if o.kind == "Service" && o.app_name() == Some(MULTIPLAYER) {
        let missing: Vec<&str> = ["konghq.com/read-timeout", "konghq.com/write-timeout"]
            .into_iter()
            .filter(|k| !timeout_ok(o, k))
            .collect();
        if !missing.is_empty() {
            out.push(finding(
                Rule::MultiplayerWebsocket,
                o,
                format!(
                    "multiplayer Service keeps Kong's 60 s default for WebSockets: {} missing or too low",
                    missing.join(", ")
                ),
                hint,
            ));
        }
    }
    if o.kind == "Ingress" && o.app_name() == Some(MULTIPLAYER) {
        let backends = get(o.v, &["spec", "rules"])
            .and_then(Value::as_sequence)
            .into_iter()
            .flatten()
            .filter_map(|r| get(r, &["http", "paths"]).and_then(Value::as_sequence))
            .flatten()
            .filter_map(|p| get_str(p, &["backend", "service", "name"]));
        for svc in backends {
            let found = all
                .iter()
                .find(|s| s.kind == "Service" && s.name() == svc && s.namespace() == o.namespace());
            match found {
                None => out.push(finding(
                    Rule::MultiplayerWebsocket,
                    o,
                    format!("multiplayer Ingress routes to Service {svc}, which is not among the checked files, so its WebSocket timeouts cannot be seen"),
                    "verify the Ingress together with its Services (give verify the whole tree)",
                )),
                // A backend with another name label is checked here; ours is checked above.
                Some(s) if s.app_name() != Some(MULTIPLAYER) => {
                    if !timeout_ok(s, "konghq.com/read-timeout") || !timeout_ok(s, "konghq.com/write-timeout") {
                        out.push(finding(
                            Rule::MultiplayerWebsocket,
                            o,
                            format!("multiplayer Ingress routes to Service {svc}, which keeps Kong's 60 s default timeouts"),
                            hint,
                        ));
                    }
                }
                Some(_) => {}
            }
        }
    }
}

/// Words in an env var name that say it holds a secret.
const SECRET_WORDS: &[&str] = &[
    "SECRET",
    "PASSWORD",
    "PASSWD",
    "PASS",
    "TOKEN",
    "KEY",
    "APIKEY",
    "CREDENTIAL",
    "CREDENTIALS",
];

fn names_a_secret(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    // NAME_FILE / NAME_PATH hold where the secret is mounted, not the secret.
    if upper.ends_with("_FILE") || upper.ends_with("_PATH") {
        return false;
    }
    upper
        .split(|c: char| !c.is_ascii_alphanumeric())
        .any(|w| SECRET_WORDS.contains(&w))
}

/// What is wrong with how an image reference pins its version, if anything. A digest pins it,
/// but only a well-formed one: `nginx@sha256:` names no image at all.
fn image_problem(image: &str) -> Option<String> {
    let shown = quote::cut(image, 200);
    if let Some((_, digest)) = image.split_once('@') {
        return digest_problem(digest).map(|p| format!("image {shown} {p}"));
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.rsplit_once(':') {
        None => Some(format!("image {shown} has no tag (it means latest)")),
        Some((_, "latest")) => Some(format!("image {shown} is tagged latest")),
        Some((_, "")) => Some(format!("image {shown} has an empty tag")),
        Some(_) => None,
    }
}

/// A digest is `<algorithm>:<hex>`, with the hex length the algorithm gives (OCI image spec).
fn digest_problem(digest: &str) -> Option<String> {
    let (algorithm, hex) = digest.split_once(':').unwrap_or((digest, ""));
    let want = match algorithm {
        "sha256" => 64,
        "sha512" => 128,
        _ => {
            return Some(format!(
                "has a digest of unknown algorithm {}",
                quote::quoted(algorithm, 20)
            ))
        }
    };
    let hex_ok = hex.len() == want && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    (!hex_ok).then(|| {
        format!(
            "has a malformed digest: {algorithm} takes {want} lower-case hex digits, not {}",
            hex.chars().count()
        )
    })
}

/// FACTORY006: what M05's OPA policies enforce on workloads.
fn policy(o: &Object, out: &mut Vec<Finding>) {
    for (_, spec) in o.pod_templates() {
        for c in containers(spec) {
            let cname = get_str(c, &["name"]).unwrap_or("?");
            match get_str(c, &["image"]) {
                None => out.push(finding(
                    Rule::Policy,
                    o,
                    format!("container {cname} has no image"),
                    "set an image with an exact version tag or digest",
                )),
                Some(img) => {
                    if let Some(p) = image_problem(img) {
                        out.push(finding(
                            Rule::Policy,
                            o,
                            format!("container {cname}: {p}"),
                            "pin an exact version (or digest) and set imagePullPolicy: IfNotPresent",
                        ));
                    }
                }
            }
            if !has_limits(c.get("resources")) {
                out.push(finding(
                    Rule::Policy,
                    o,
                    format!("container {cname} has no resources.limits for cpu and memory"),
                    "set resources.limits.cpu and resources.limits.memory",
                ));
            }
            for env in c
                .get("env")
                .and_then(Value::as_sequence)
                .into_iter()
                .flatten()
            {
                let name = get_str(env, &["name"]).unwrap_or("");
                if env.get("value").is_some() && names_a_secret(name) {
                    out.push(finding(
                        Rule::Policy,
                        o,
                        format!("container {cname}: env {name} holds a literal value, and its name says it is a secret"),
                        "inject it from Vault (a file under /vault/secrets) or use valueFrom.secretKeyRef; never write secrets into YAML",
                    ));
                }
            }
        }
    }
}

/// FACTORY008: a builder worker takes a build off the stream's lag, so a running build is no
/// longer counted. Only the redis-streams trigger with `lagCount` reads that lag (XINFO GROUPS),
/// and only the `accurate` strategy starts a Job per waiting build whatever runs; the default
/// subtracts the running Jobs and starts none while others run.
fn builder_scaling(o: &Object, out: &mut Vec<Finding>) {
    if o.kind != "ScaledJob" || o.app_name() != Some(BUILDER) {
        return;
    }
    let strategy = get_str(o.v, &["spec", "scalingStrategy", "strategy"]);
    if strategy != Some("accurate") {
        out.push(finding(
            Rule::BuilderScaling,
            o,
            format!(
                "builder ScaledJob has scalingStrategy.strategy {}: a queued build waits until running ones end",
                strategy.map_or("unset (default)".to_string(), |s| format!("{s:?}"))
            ),
            "set spec.scalingStrategy.strategy: accurate",
        ));
    }
    let triggers: Vec<&Value> = get(o.v, &["spec", "triggers"])
        .and_then(Value::as_sequence)
        .into_iter()
        .flatten()
        .collect();
    if triggers.is_empty() {
        out.push(finding(
            Rule::BuilderScaling,
            o,
            "builder ScaledJob has no trigger, so no build ever starts a Job".to_string(),
            "add a redis-streams trigger on the target's stream with consumerGroup and lagCount",
        ));
    }
    for t in triggers {
        let kind = get_str(t, &["type"]).unwrap_or("?");
        if kind != "redis-streams" {
            out.push(finding(
                Rule::BuilderScaling,
                o,
                format!(
                    "builder ScaledJob scales on a {} trigger, not on the build stream",
                    quote::cut(kind, 80)
                ),
                "use type: redis-streams with stream, consumerGroup and lagCount",
            ));
        } else if get(t, &["metadata", "lagCount"])
            .and_then(scalar_text)
            .is_none()
            || get(t, &["metadata", "consumerGroup"])
                .and_then(scalar_text)
                .is_none()
        {
            out.push(finding(
                Rule::BuilderScaling,
                o,
                "builder ScaledJob's redis-streams trigger has no lagCount (with consumerGroup): it counts pending or all entries, not the builds waiting for a worker".to_string(),
                "set metadata.consumerGroup: builders and metadata.lagCount: \"1\"",
            ));
        }
    }
}

/// Where a file sits in the appgear-gitops-suites layout.
fn in_factory_tree(doc: &Doc) -> bool {
    let parts: Vec<String> = doc
        .abs
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    parts
        .windows(2)
        .any(|w| w[0] == "apps" && w[1] == "factory")
}

fn is_cluster_registration(doc: &Doc) -> bool {
    let parts: Vec<String> = doc
        .abs
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let n = parts.len();
    n >= 3 && parts[n - 1] == "apps-suites.yaml" && parts[n - 3] == "clusters"
}

/// FACTORY007: the Factory suite lives only in apps/factory (and its registration in
/// clusters/*/apps-suites.yaml); Core artefacts never mix in.
fn suite_layout(o: &Object, out: &mut Vec<Finding>) {
    let registration = is_cluster_registration(o.doc);
    if !in_factory_tree(o.doc) && !registration {
        out.push(finding(
            Rule::SuiteLayout,
            o,
            "object lies outside apps/factory and clusters/*/apps-suites.yaml".to_string(),
            "keep Factory objects in appgear-gitops-suites under apps/factory; Core objects belong in appgear-gitops-core",
        ));
        return;
    }
    // apps-suites.yaml registers every suite, so other suites' Applications are at home there.
    if registration && o.kind == "Application" {
        return;
    }
    match o.label(SUITE) {
        Some("factory") => {}
        other => out.push(finding(
            Rule::SuiteLayout,
            o,
            format!("object in the Factory tree has {SUITE} {}, not factory", show(other)),
            "move Core or other suites' objects out of apps/factory; Factory objects carry appgear.io/suite: factory",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_names() {
        for s in [
            "DB_PASSWORD",
            "API_KEY",
            "GITHUB_TOKEN",
            "client-secret",
            "KEY",
        ] {
            assert!(names_a_secret(s), "{s}");
        }
        for s in [
            "MONKEY",
            "WORKSPACE_ID",
            "MULTIPLAYER_TOKEN_FILE",
            "KEYCLOAK_URL",
            "TOKENIZER",
        ] {
            assert!(!names_a_secret(s), "{s}");
        }
    }

    #[test]
    fn images() {
        let sha = "0123456789abcdef".repeat(4);
        assert!(image_problem("codercom/code-server:4.106.3").is_none());
        assert!(image_problem("localhost:5000/x:1").is_none());
        assert!(image_problem(&format!("x@sha256:{sha}")).is_none());
        assert!(image_problem(&format!("x:1.2@sha256:{sha}")).is_none());
        assert!(image_problem(&format!("x@sha512:{sha}{sha}")).is_none());
        for bad in [
            "nginx@sha256:".to_string(),
            "nginx@sha256:abcd".to_string(),
            format!("nginx@sha256:{}", sha.to_uppercase()),
            format!("nginx@sha256:{sha}0"),
            format!("nginx@md5:{sha}"),
            "nginx@".to_string(),
        ] {
            assert!(image_problem(&bad).is_some(), "{bad}");
        }
        assert!(image_problem("codercom/code-server").is_some());
        assert!(image_problem("localhost:5000/x").is_some());
        assert!(image_problem("x:latest").is_some());
    }
}

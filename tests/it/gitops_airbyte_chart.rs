//! The Airbyte Application `gitops render` writes, run through the real chart: `helm template`
//! of the package it pins (`vendor/airbyte/airbyte-<version>.tgz` in the shared folder) with the
//! values it carries, the way Argo CD inflates it. Every cross-reference between the tree, the
//! chart's objects and the documented prerequisites is checked: Ingress backends, KEDA and Argo CD
//! targets, the Secrets, keys and ConfigMaps every pod reads, the account pods run as, which
//! objects are Helm hooks (Argo CD re-creates those on every sync), and that no value is a key the
//! chart does not have.
//!
//! Tools: APPGEAR_TEST_HELM (default `helm` on PATH; helm 3 or 4), APPGEAR_SHARED (default
//! `../shared` next to the crate). A missing tool or package fails the test with what to do.

use crate::common::shared;
use serde_norway::{Mapping, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

const BIN: &str = env!("CARGO_BIN_EXE_appgear");

fn helm() -> PathBuf {
    let h = std::env::var_os("APPGEAR_TEST_HELM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("helm"));
    match Command::new(&h).arg("version").output() {
        Ok(o) if o.status.success() => h,
        _ => panic!(
            "helm not found at {}: install helm (scripts/test puts it in .tools/bin) and put it on PATH or set APPGEAR_TEST_HELM",
            h.display()
        ),
    }
}

fn docs(text: &str) -> Vec<Value> {
    serde_norway::Deserializer::from_str(text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .filter(|v: &Value| !v.is_null())
        .collect()
}

fn s<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter()
        .try_fold(v, |cur, k| cur.get(*k))
        .and_then(Value::as_str)
}

fn kind(v: &Value) -> &str {
    s(v, &["kind"]).unwrap_or("")
}

fn name(v: &Value) -> &str {
    s(v, &["metadata", "name"]).unwrap_or("")
}

fn hook(v: &Value) -> Option<&str> {
    s(v, &["metadata", "annotations", "helm.sh/hook"])
}

/// Everything the tests below look at, made once: the rendered tree's Airbyte objects, the
/// Application, and the chart rendered with its values.
struct Setup {
    /// The objects of `apps/factory/airbyte/` in the tree.
    tree: Vec<Value>,
    application: Value,
    values: Value,
    release: String,
    namespace: String,
    package: PathBuf,
    /// What `helm template` renders, hooks included.
    chart: Vec<Value>,
    /// The chart's own values.yaml, and the text of all its templates.
    chart_values: Value,
    chart_templates: String,
    work: PathBuf,
}

fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        let work = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("airbyte-chart-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&work);
        let out = work.join("tree");
        let o = Command::new(BIN)
            .args(["gitops", "render", "--out"])
            .arg(&out)
            .args(["--cluster", "ag-br-core-dev", "--workspace", "demo", "--tenant", "acme"])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

        let dir = out.join("apps/factory/airbyte");
        let mut tree = Vec::new();
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "yaml") {
                tree.extend(docs(&std::fs::read_to_string(&p).unwrap()));
            }
        }
        tree.retain(|v| kind(v) != "Kustomization");
        let application = tree
            .iter()
            .find(|v| kind(v) == "Application")
            .expect("an Application in apps/factory/airbyte")
            .clone();
        let source = &application["spec"]["source"];
        let chart_name = s(source, &["chart"]).unwrap();
        let version = s(source, &["targetRevision"]).unwrap();
        let package = shared()
            .join("vendor/airbyte")
            .join(format!("{chart_name}-{version}.tgz"));
        assert!(
            package.is_file(),
            "the Application pins chart {chart_name} {version}, but {} does not exist: pin a version whose package can be checked (set APPGEAR_SHARED to the shared folder)",
            package.display()
        );
        let release = s(source, &["helm", "releaseName"])
            .expect("spec.source.helm.releaseName")
            .to_string();
        let namespace = s(&application, &["spec", "destination", "namespace"])
            .unwrap()
            .to_string();
        let values = source["helm"]["valuesObject"].clone();
        assert!(values.is_mapping(), "the Application carries valuesObject");

        std::fs::create_dir_all(&work).unwrap();
        let chart = helm_template(&work, &application, &package, &values);

        let show = Command::new(helm())
            .args(["show", "values"])
            .arg(&package)
            .output()
            .unwrap();
        assert!(show.status.success());
        let chart_values: Value = serde_norway::from_slice(&show.stdout).unwrap();
        let tar = Command::new("tar")
            .arg("-xzOf")
            .arg(&package)
            .args(["--wildcards", "*/templates/*"])
            .output()
            .expect("tar (to read the chart's templates)");
        assert!(tar.status.success());
        let chart_templates = String::from_utf8_lossy(&tar.stdout).into_owned();

        Setup {
            tree,
            application,
            values,
            release,
            namespace,
            package,
            chart,
            chart_values,
            chart_templates,
            work,
        }
    })
}

/// The Airbyte section of docs/gitops.md: where a platform engineer reads what must exist
/// before the first sync.
fn airbyte_docs() -> String {
    let guide =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/gitops.md"))
            .unwrap();
    let start = guide
        .find("\n## Airbyte")
        .expect("docs/gitops.md has a section \"## Airbyte\"");
    let rest = &guide[start + 1..];
    let end = rest[3..].find("\n## ").map_or(rest.len(), |i| i + 3);
    rest[..end].to_string()
}

/// `helm template` as Argo CD runs it for this Application.
fn helm_template(work: &Path, app: &Value, package: &Path, values: &Value) -> Vec<Value> {
    let file = work.join("values.yaml");
    std::fs::write(&file, serde_norway::to_string(values).unwrap()).unwrap();
    let mut cmd = Command::new(helm());
    cmd.arg("template")
        .arg(s(app, &["spec", "source", "helm", "releaseName"]).unwrap())
        .arg(package)
        .args([
            "--namespace",
            s(app, &["spec", "destination", "namespace"]).unwrap(),
        ])
        .arg("--values")
        .arg(&file);
    if app["spec"]["source"]["helm"]["skipTests"].as_bool() == Some(true) {
        cmd.arg("--skip-tests");
    }
    let o = cmd.output().unwrap();
    assert!(
        o.status.success(),
        "helm template failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    docs(&String::from_utf8(o.stdout).unwrap())
}

/// Objects the chart creates and Argo CD applies as ordinary resources (not hooks).
fn lasting<'a>(chart: &'a [Value], kind_: &str) -> impl Iterator<Item = &'a Value> + 'a {
    let kind_ = kind_.to_string();
    chart
        .iter()
        .filter(move |v| kind(v) == kind_ && hook(v).is_none())
}

/// Every pod template of an object: (what, template metadata, pod spec).
fn pod_templates(v: &Value) -> Vec<(String, &Value, &Value)> {
    let path: &[&str] = match kind(v) {
        "Deployment" | "StatefulSet" | "DaemonSet" | "Job" => &["spec", "template"],
        "CronJob" => &["spec", "jobTemplate", "spec", "template"],
        "Pod" => &[],
        _ => return Vec::new(),
    };
    let t = path.iter().fold(v, |cur, k| &cur[*k]);
    vec![(
        format!("{} {}", kind(v), name(v)),
        &t["metadata"],
        &t["spec"],
    )]
}

/// What a pod reads from Secrets and ConfigMaps: (kind, name, Some(key) or None for all of it).
fn reads(spec: &Value) -> BTreeSet<(&'static str, String, Option<String>)> {
    let mut out = BTreeSet::new();
    let str_of = |v: &Value| v.as_str().unwrap_or("").to_string();
    let containers = ["initContainers", "containers"]
        .iter()
        .filter_map(|k| spec[*k].as_sequence())
        .flatten();
    for c in containers {
        for e in c["env"].as_sequence().into_iter().flatten() {
            for (field, k) in [("secretKeyRef", "Secret"), ("configMapKeyRef", "ConfigMap")] {
                let r = &e["valueFrom"][field];
                if r.is_mapping() && r["optional"].as_bool() != Some(true) {
                    out.insert((k, str_of(&r["name"]), Some(str_of(&r["key"]))));
                }
            }
        }
        for e in c["envFrom"].as_sequence().into_iter().flatten() {
            for (field, k) in [("secretRef", "Secret"), ("configMapRef", "ConfigMap")] {
                let r = &e[field];
                if r.is_mapping() && r["optional"].as_bool() != Some(true) {
                    out.insert((k, str_of(&r["name"]), None));
                }
            }
        }
    }
    for vol in spec["volumes"].as_sequence().into_iter().flatten() {
        for (field, name_field, k) in [
            ("secret", "secretName", "Secret"),
            ("configMap", "name", "ConfigMap"),
        ] {
            let r = &vol[field];
            if !r.is_mapping() || r["optional"].as_bool() == Some(true) {
                continue;
            }
            let items: Vec<String> = r["items"]
                .as_sequence()
                .into_iter()
                .flatten()
                .map(|i| str_of(&i["key"]))
                .collect();
            if items.is_empty() {
                out.insert((k, str_of(&r[name_field]), None));
            }
            for key in items {
                out.insert((k, str_of(&r[name_field]), Some(key)));
            }
        }
    }
    out
}

/// The keys of a Secret or ConfigMap the chart renders.
fn keys(v: &Value) -> BTreeSet<String> {
    ["data", "stringData", "binaryData"]
        .iter()
        .filter_map(|f| v[*f].as_mapping())
        .flat_map(|m| m.keys().filter_map(Value::as_str).map(str::to_string))
        .collect()
}

/// The Secret the bootloader creates itself at the first sync, if the chart says it does.
fn bootloader_secret(chart: &[Value], release: &str) -> Option<String> {
    let env = chart
        .iter()
        .find(|v| kind(v) == "ConfigMap" && name(v) == format!("{release}-airbyte-env"))?;
    (s(env, &["data", "AB_AUTH_SECRET_CREATION_ENABLED"]) == Some("true"))
        .then(|| s(env, &["data", "AB_KUBERNETES_SECRET_NAME"]).map(str::to_string))
        .flatten()
}

#[test]
fn the_ingress_routes_to_a_service_the_chart_creates_with_pods_behind_it() {
    let st = setup();
    let mut checked = 0;
    for ing in st.tree.iter().filter(|v| kind(v) == "Ingress") {
        for rule in ing["spec"]["rules"].as_sequence().into_iter().flatten() {
            for path in rule["http"]["paths"].as_sequence().into_iter().flatten() {
                let svc_name = s(path, &["backend", "service", "name"]).unwrap();
                let port = path["backend"]["service"]["port"]["number"].as_u64();
                let svc = lasting(&st.chart, "Service")
                    .find(|v| name(v) == svc_name)
                    .unwrap_or_else(|| {
                        panic!("Ingress {} routes to Service {svc_name}, which the chart does not create", name(ing))
                    });
                let ports: Vec<u64> = svc["spec"]["ports"]
                    .as_sequence()
                    .unwrap()
                    .iter()
                    .filter_map(|p| p["port"].as_u64())
                    .collect();
                assert!(
                    port.is_some_and(|p| ports.contains(&p)),
                    "Ingress {} routes to port {port:?} of {svc_name}, which has ports {ports:?}",
                    name(ing)
                );
                let selector = svc["spec"]["selector"].as_mapping().unwrap();
                let backed = st.chart.iter().filter(|v| hook(v).is_none()).any(|v| {
                    pod_templates(v).iter().any(|(_, meta, _)| {
                        selector
                            .iter()
                            .all(|(k, val)| meta["labels"].get(k) == Some(val))
                    })
                });
                assert!(
                    backed,
                    "no pod of the chart matches Service {svc_name}'s selector"
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 0, "the tree has an Airbyte Ingress");
}

#[test]
fn keda_and_argo_cd_point_at_deployments_the_chart_creates() {
    let st = setup();
    let deployments: BTreeSet<&str> = lasting(&st.chart, "Deployment").map(name).collect();
    let mut targets = Vec::new();
    for so in st.tree.iter().filter(|v| kind(v) == "ScaledObject") {
        assert_eq!(
            s(so, &["spec", "scaleTargetRef", "kind"]),
            Some("Deployment")
        );
        targets.push(s(so, &["spec", "scaleTargetRef", "name"]).unwrap());
    }
    assert!(!targets.is_empty(), "the tree scales the Airbyte worker");
    for d in st.application["spec"]["ignoreDifferences"]
        .as_sequence()
        .into_iter()
        .flatten()
    {
        assert_eq!(s(d, &["kind"]), Some("Deployment"));
        targets.push(s(d, &["name"]).unwrap());
    }
    for t in targets {
        assert!(
            deployments.contains(t),
            "{t} is not a Deployment of the chart (it has {deployments:?})"
        );
    }
}

/// Every Secret key and ConfigMap key a pod of the chart reads (PreSync pod included) is
/// rendered by the chart, created by the chart's bootloader, or a prerequisite that
/// docs/gitops.md's Airbyte section names with its key. A key nobody creates keeps the pod in
/// CreateContainerConfigError, and the first sync never gets past PreSync.
#[test]
fn every_secret_and_config_map_a_pod_reads_exists_or_is_a_documented_prerequisite() {
    let st = setup();
    let bootloader = bootloader_secret(&st.chart, &st.release);
    let mut external: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut pods = 0;
    for v in &st.chart {
        for (what, _, spec) in pod_templates(v) {
            pods += 1;
            for (k, obj, key) in reads(spec) {
                let rendered = st.chart.iter().find(|c| kind(c) == k && name(c) == obj);
                match (k, rendered, &key) {
                    (_, Some(c), Some(key)) => assert!(
                        keys(c).contains(key),
                        "{what} reads key {key} of {k} {obj}, which the chart renders without it"
                    ),
                    (_, Some(_), None) => {}
                    ("Secret", None, _) if bootloader.as_deref() == Some(obj.as_str()) => {}
                    ("Secret", None, key) => {
                        let keys = external.entry(obj).or_default();
                        keys.extend(key.clone());
                    }
                    (_, None, _) => panic!("{what} reads {k} {obj}, which nobody creates"),
                }
            }
        }
    }
    assert!(pods >= 8, "the chart runs its pods ({pods} found)");
    let docs = &airbyte_docs();
    for (secret, keys) in &external {
        assert!(
            docs.contains(&format!("`{secret}`")),
            "pods read Secret {secret}, which docs/gitops.md's Airbyte section does not list as a prerequisite"
        );
        for key in keys {
            assert!(
                docs.contains(&format!("`{key}`")),
                "pods read key {key} of Secret {secret}, which docs/gitops.md's Airbyte section does not name"
            );
        }
    }
    if let Some(b) = &bootloader {
        assert!(
            docs.contains(&format!("`{b}`")),
            "docs/gitops.md's Airbyte section should say the bootloader creates {b}"
        );
    }
    // The two Secrets of the tree's prerequisites, and nothing more.
    let names: Vec<&str> = external.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        ["addon-factory-airbyte-db", "addon-factory-airbyte-s3"],
        "{external:?}"
    );
}

/// With an external database the chart makes Temporal connect with TLS (and no switch turns
/// that off); the database must accept TLS, and the docs must say so.
#[test]
fn temporal_s_database_tls_is_a_documented_prerequisite() {
    let st = setup();
    let env = st
        .chart
        .iter()
        .find(|v| kind(v) == "ConfigMap" && name(v) == format!("{}-airbyte-env", st.release))
        .unwrap();
    assert_eq!(s(env, &["data", "SQL_TLS_ENABLED"]), Some("true"));
    let docs = airbyte_docs();
    assert!(
        docs.contains("TLS"),
        "docs/gitops.md's Airbyte section must say Temporal needs TLS to the database"
    );
    let db_host = s(&st.values, &["global", "database", "host"]).unwrap();
    assert!(docs.contains(db_host), "the docs name {db_host}");
}

/// Pods run as airbyte-admin, which the tree creates as a plain object with its Role; the
/// chart creates no account, Role or RoleBinding (it would as Helm hooks).
#[test]
fn every_pod_runs_as_an_account_the_tree_creates_and_binds() {
    let st = setup();
    for k in ["ServiceAccount", "Role", "RoleBinding"] {
        let chart_made: Vec<&str> = st.chart.iter().filter(|v| kind(v) == k).map(name).collect();
        assert!(
            chart_made.is_empty(),
            "the chart renders {k} {chart_made:?}"
        );
    }
    let ours = |k: &str, n: &str| {
        st.tree.iter().find(|v| {
            kind(v) == k && name(v) == n && s(v, &["metadata", "namespace"]) == Some(&st.namespace)
        })
    };
    let env = st
        .chart
        .iter()
        .find(|v| kind(v) == "ConfigMap" && name(v) == format!("{}-airbyte-env", st.release))
        .unwrap();
    let mut accounts: BTreeSet<String> = BTreeSet::new();
    accounts.extend(s(env, &["data", "JOB_KUBE_SERVICEACCOUNT"]).map(str::to_string));
    for v in &st.chart {
        for (what, _, spec) in pod_templates(v) {
            let sa = s(spec, &["serviceAccountName"])
                .unwrap_or_else(|| panic!("{what} runs as the namespace's default account"));
            accounts.insert(sa.to_string());
        }
    }
    for sa in &accounts {
        assert!(
            ours("ServiceAccount", sa).is_some(),
            "pods run as {sa}, which the tree does not create"
        );
        let binding = st
            .tree
            .iter()
            .filter(|v| kind(v) == "RoleBinding")
            .find(|b| {
                b["subjects"].as_sequence().into_iter().flatten().any(|x| {
                    s(x, &["kind"]) == Some("ServiceAccount") && s(x, &["name"]) == Some(sa)
                })
            })
            .unwrap_or_else(|| panic!("no RoleBinding of the tree binds {sa}"));
        let role = s(binding, &["roleRef", "name"]).unwrap();
        let role = ours("Role", role).unwrap_or_else(|| {
            panic!("RoleBinding binds Role {role}, which the tree does not create")
        });
        let grants = |res: &str| {
            role["rules"].as_sequence().into_iter().flatten().any(|r| {
                r["resources"]
                    .as_sequence()
                    .into_iter()
                    .flatten()
                    .any(|x| x.as_str() == Some(res))
                    && r["verbs"]
                        .as_sequence()
                        .into_iter()
                        .flatten()
                        .any(|x| x.as_str() == Some("create"))
            })
        };
        for res in ["pods", "secrets", "jobs"] {
            assert!(grants(res), "Role of {sa} does not let it create {res}");
        }
    }
}

/// Argo CD runs Helm hooks as PreSync hooks and, with no delete policy, deletes and re-creates
/// them on every sync. Only objects that survive that are left as hooks: one-shot pods, and
/// Secrets and ConfigMaps whose content is the same at every render (pods read them when they
/// start; a running pod keeps what it read).
#[test]
fn only_one_shot_pods_and_unchanging_config_are_helm_hooks() {
    let st = setup();
    let again = helm_template(&st.work, &st.application, &st.package, &st.values);
    let mut hooks = 0;
    for v in st.chart.iter().filter(|v| hook(v).is_some()) {
        hooks += 1;
        match kind(v) {
            "Pod" => assert_eq!(s(v, &["spec", "restartPolicy"]), Some("Never"), "{}", name(v)),
            "Secret" | "ConfigMap" => {
                let twin = again
                    .iter()
                    .find(|w| kind(w) == kind(v) && name(w) == name(v))
                    .unwrap();
                assert_eq!(v, twin, "{} {} differs between two renders", kind(v), name(v));
            }
            other => panic!(
                "{other} {} is a Helm hook ({}), so Argo CD would delete and re-create it on every sync",
                name(v),
                hook(v).unwrap()
            ),
        }
    }
    assert!(hooks > 0);
}

/// Every container the chart runs has cpu and memory limits and a pinned image, and carries no
/// literal secret (appgear verify's FACTORY006, as M05's policies would); every pod says it is
/// the shared Airbyte's (appgear.io/tenant-id: global). The chart's own objects carry no appgear
/// labels and do not live in the tree, so FACTORY002 and FACTORY007 are not asked.
#[test]
fn every_container_of_the_chart_passes_verify_s_policy() {
    let st = setup();
    let file = st.work.join("chart.yaml");
    let text: Vec<String> = st
        .chart
        .iter()
        .map(|v| serde_norway::to_string(v).unwrap())
        .collect();
    std::fs::write(&file, text.join("---\n")).unwrap();
    let o = Command::new(BIN)
        .args(["verify", "--skip", "FACTORY002", "--skip", "FACTORY007"])
        .arg(&file)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    for v in &st.chart {
        for (what, meta, _) in pod_templates(v) {
            assert_eq!(
                s(meta, &["labels", "appgear.io/tenant-id"]),
                Some("global"),
                "{what}"
            );
        }
    }
}

/// The leaf key paths of `v` (a sequence or an empty map is a leaf).
fn leaves(v: &Value, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    match v.as_mapping() {
        Some(m) if !m.is_empty() => {
            for (k, child) in m {
                prefix.push(k.as_str().unwrap().to_string());
                leaves(child, prefix, out);
                prefix.pop();
            }
        }
        _ => out.push(prefix.clone()),
    }
}

/// Whether the chart's values.yaml has `path`, counting anything under a map it leaves empty
/// (`podLabels: {}`, `requests: {}`) as its.
fn in_chart_values(defaults: &Value, path: &[String]) -> bool {
    let mut cur = defaults;
    for k in path {
        match cur.as_mapping() {
            Some(m) if m.is_empty() => return true,
            Some(m) => match m.get(k.as_str()) {
                Some(next) => cur = next,
                None => return false,
            },
            None => return false,
        }
    }
    true
}

/// A key Helm does not know is silently ignored, so every key path in the values must be one
/// the chart has: in its values.yaml, or read by its templates (`.Values.<path>`, or a parent
/// the templates read whole). And nothing is set for a component the values leave disabled.
#[test]
fn every_value_is_a_key_the_chart_has() {
    let st = setup();
    let mut paths = Vec::new();
    leaves(&st.values, &mut Vec::new(), &mut paths);
    assert!(paths.len() > 20);
    let read_by_templates = |path: &[String]| {
        (2..=path.len()).any(|n| {
            let needle = format!(".Values.{}", path[..n].join("."));
            st.chart_templates.match_indices(&needle).any(|(i, _)| {
                !st.chart_templates[i + needle.len()..]
                    .starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
            })
        })
    };
    let unknown: Vec<String> = paths
        .iter()
        .filter(|p| !in_chart_values(&st.chart_values, p) && !read_by_templates(p))
        .map(|p| p.join("."))
        .collect();
    assert!(
        unknown.is_empty(),
        "values the chart does not have: {unknown:?}"
    );

    let top = st.values.as_mapping().unwrap();
    for (k, v) in top {
        let k = k.as_str().unwrap();
        let default_on = st.chart_values[k]["enabled"].as_bool();
        let on = v["enabled"].as_bool().or(default_on);
        if on == Some(false) {
            let set: Vec<&str> = v
                .as_mapping()
                .map(Mapping::keys)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .filter(|x| *x != "enabled")
                .collect();
            assert!(
                set.is_empty(),
                "{k} is disabled, so its {set:?} are ignored"
            );
        }
    }
}

//! Vault for the suite (`--with-vault`), the pure part: what the suite's Vault annotations ask
//! for (read from the rendered objects, the one source of truth), the policies and Kubernetes
//! auth roles that give each service account exactly its paths, the secrets appgear generates
//! and seeds, and the Job that configures Vault.
//!
//! Secrets: generated here, they go into ONE object, the Secret `vault/appgear-vault-seed`,
//! created once and never rewritten (Vault's root token is read from it when the server
//! starts). Every other object names the Secret's keys, never their values: the StatefulSet
//! reads the root token with a `secretKeyRef`, the Job mounts the Secret and its script hands
//! each file to `vault kv put key=@file`, so no value appears on a command line or in a log.

use super::super::super::manifests::{self, Object};
use super::super::super::pins;
use crate::core::error::{Error, Result};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

pub const NAMESPACE: &str = "vault";
pub const SEED: &str = "appgear-vault-seed";
const CONFIG: &str = "appgear-vault-config";
/// The chart's Service for release `vault`; dev mode serves plain HTTP.
const ADDR: &str = "http://vault.vault.svc:8200";
const ROLE: &str = "vault.hashicorp.com/role";
const SECRET_PREFIX: &str = "vault.hashicorp.com/agent-inject-secret-";
const TEMPLATE_PREFIX: &str = "vault.hashicorp.com/agent-inject-template-";
const ROOT_TOKEN_ENV: &str = "VAULT_DEV_ROOT_TOKEN_ID";

/// Seed keys: the root token, and one per file the suite's apps read (the file names are the
/// apps' contract: MULTIPLAYER_TOKEN_SECRET_FILE, BUILDER_CONFIG).
const ROOT_TOKEN: &str = "root-token";
pub const MULTIPLAYER_TOKEN: &str = "multiplayer-token";
const BUILDER_CONFIG: &str = "builder-config";
const BUILDER_API_TOKEN: &str = "builder-api-token";
/// Written under a path the suite names but appgear has nothing to put in (code-server's
/// config), so that the injected agent finds the path and the pod starts.
const PLACEHOLDER: &str = "placeholder";

/// One secret file a pod asks the agent for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Wanted {
    /// The KV v2 mount (`kv` of `kv/data/appgear/...`).
    pub mount: String,
    /// The secret's path inside the mount (`appgear/addon-factory-multiplayer/config`).
    pub path: String,
    /// The key the agent's template reads (`.Data.data.<key>`).
    pub key: String,
    /// The file the agent writes (`/vault/secrets/<file>`).
    pub file: String,
}

impl Wanted {
    /// The API path a policy grants (`kv/data/...`).
    pub fn api_path(&self) -> String {
        format!("{}/data/{}", self.mount, self.path)
    }
}

/// A Kubernetes auth role: the service accounts (in the workspaces' namespaces) that may log in
/// as it, and what its policy may read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Role {
    pub service_accounts: BTreeSet<String>,
    pub namespaces: BTreeSet<String>,
    pub wants: BTreeSet<Wanted>,
}

/// Names and paths go into a shell script and HCL: only these characters are let through.
fn plain(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
}

fn bug(m: String) -> Error {
    Error::internal(m).hint("this is a bug in appgear's templates; please report it")
}

/// Every pod template in `v` (a Deployment's, a Job's, a KEDA ScaledJob's, ...): any object
/// with `metadata.annotations` and a `spec.containers`.
fn pod_templates<'a>(v: &'a Value, out: &mut Vec<&'a Value>) {
    match v {
        Value::Object(m) => {
            if m.get("metadata")
                .and_then(|x| x.get("annotations"))
                .is_some()
                && m.get("spec").and_then(|x| x.get("containers")).is_some()
            {
                out.push(v);
            }
            for x in m.values() {
                pod_templates(x, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| pod_templates(x, out)),
        _ => {}
    }
}

/// The key a template reads: `.Data.data.<key>`; `config` when the file has no template.
fn template_key(template: Option<&str>) -> String {
    template
        .and_then(|t| t.split(".Data.data.").nth(1))
        .map(|rest| {
            rest.chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
                .collect::<String>()
        })
        .filter(|k| !k.is_empty())
        .unwrap_or_else(|| "config".to_string())
}

/// The roles the suite's Vault annotations name, from the rendered objects.
pub fn roles(suite: &[Object]) -> Result<BTreeMap<String, Role>> {
    let mut roles: BTreeMap<String, Role> = BTreeMap::new();
    for o in suite {
        let mut templates = Vec::new();
        pod_templates(&o.value, &mut templates);
        for t in templates {
            let Some(ann) = t
                .pointer("/metadata/annotations")
                .and_then(Value::as_object)
            else {
                continue;
            };
            let Some(role) = ann.get(ROLE).and_then(Value::as_str) else {
                continue;
            };
            let sa = t
                .pointer("/spec/serviceAccountName")
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    bug(format!(
                        "{}: a pod with Vault role {role} has no serviceAccountName",
                        o.describe()
                    ))
                })?;
            let ns = o.namespace.clone().ok_or_else(|| {
                bug(format!(
                    "{}: a pod with a Vault role has no namespace",
                    o.describe()
                ))
            })?;
            for name in [role, sa, &ns] {
                if !plain(name) {
                    return Err(bug(format!(
                        "{}: {name:?} is not a plain name",
                        o.describe()
                    )));
                }
            }
            let entry = roles.entry(role.to_string()).or_default();
            entry.service_accounts.insert(sa.to_string());
            entry.namespaces.insert(ns);
            for (k, v) in ann {
                let Some(file) = k.strip_prefix(SECRET_PREFIX) else {
                    continue;
                };
                let full = v.as_str().unwrap_or("");
                let (mount, path) = full.split_once("/data/").ok_or_else(|| {
                    bug(format!(
                        "{}: Vault path {full:?} is not a KV v2 path (<mount>/data/<path>)",
                        o.describe()
                    ))
                })?;
                let template = ann
                    .get(&format!("{TEMPLATE_PREFIX}{file}"))
                    .and_then(Value::as_str);
                let wanted = Wanted {
                    mount: mount.to_string(),
                    path: path.to_string(),
                    key: template_key(template),
                    file: file.to_string(),
                };
                for part in [&wanted.mount, &wanted.path, &wanted.key, &wanted.file] {
                    if !plain(part) {
                        return Err(bug(format!(
                            "{}: {part:?} is not a plain name",
                            o.describe()
                        )));
                    }
                }
                entry.wants.insert(wanted);
            }
        }
    }
    Ok(roles)
}

/// The policy of a role: read on exactly the paths its pods ask for.
pub fn policy(role: &Role) -> String {
    let paths: BTreeSet<String> = role.wants.iter().map(Wanted::api_path).collect();
    paths
        .iter()
        .map(|p| format!("path \"{p}\" {{\n  capabilities = [\"read\"]\n}}\n"))
        .collect()
}

/// The seed key that holds the value of a wanted file.
fn seed_key(w: &Wanted) -> &'static str {
    match w.file.as_str() {
        "multiplayer-token" => MULTIPLAYER_TOKEN,
        "builder-config" => BUILDER_CONFIG,
        _ => PLACEHOLDER,
    }
}

/// The configuration script: idempotent by construction. Enabling the auth method and the KV
/// mount is skipped when they exist; policies and roles are written whole (a rewrite with the
/// same text changes nothing); a secret is seeded only when Vault has none at that path, so a
/// re-run never replaces a value a user changed with `vault kv put`.
pub fn script(roles: &BTreeMap<String, Role>) -> String {
    let mut s = String::from(
        "#!/bin/sh\n# Written by appgear: configures Vault for the suite. Safe to run again.\nset -eu\n\
         # The seed Secret's and the ConfigMap's volumes (other folders in appgear's tests).\n\
         SEED=\"${SEED:-/seed}\"\nCONFIG=\"${CONFIG:-/config}\"\n\
         VAULT_TOKEN=\"$(cat \"$SEED/root-token\")\"\nexport VAULT_TOKEN\n\
         vault auth list -format=json | grep -q '\"kubernetes/\"' || vault auth enable kubernetes\n\
         # Vault runs in the cluster: it reviews tokens with its own service account.\n\
         vault write auth/kubernetes/config kubernetes_host=https://kubernetes.default.svc:443\n",
    );
    let mounts: BTreeSet<&str> = roles
        .values()
        .flat_map(|r| r.wants.iter().map(|w| w.mount.as_str()))
        .collect();
    for m in &mounts {
        s.push_str(&format!(
            "vault secrets list -format=json | grep -q '\"{m}/\"' || vault secrets enable -path='{m}' kv-v2\n"
        ));
    }
    for (name, role) in roles {
        let sas: Vec<&str> = role.service_accounts.iter().map(String::as_str).collect();
        let nss: Vec<&str> = role.namespaces.iter().map(String::as_str).collect();
        s.push_str(&format!(
            "vault policy write '{name}' \"$CONFIG/policy-{name}.hcl\"\n\
             vault write 'auth/kubernetes/role/{name}' bound_service_account_names='{}' bound_service_account_namespaces='{}' policies='{name}' ttl=1h\n",
            sas.join(","),
            nss.join(",")
        ));
    }
    // One `kv put` per secret path, with every key of it, each value read from its file.
    let mut by_path: BTreeMap<(&str, &str), BTreeSet<(&str, &str)>> = BTreeMap::new();
    for w in roles.values().flat_map(|r| &r.wants) {
        by_path
            .entry((&w.mount, &w.path))
            .or_default()
            .insert((&w.key, seed_key(w)));
    }
    for ((mount, path), keys) in by_path {
        let pairs: Vec<String> = keys
            .iter()
            .map(|(k, seed)| format!("\"{k}=@$SEED/{seed}\""))
            .collect();
        s.push_str(&format!(
            "vault kv get -mount='{mount}' '{path}' >/dev/null 2>&1 || vault kv put -mount='{mount}' '{path}' {}\n",
            pairs.join(" ")
        ));
    }
    s.push_str("echo configured\n");
    s
}

/// The ConfigMap (script and policies) and the Job that runs it, named after their content so
/// that a changed configuration (a workspace added) runs a new Job, and the same one is
/// `unchanged` on a re-run.
pub fn config_objects(roles: &BTreeMap<String, Role>) -> Result<Vec<Object>> {
    let mut data = BTreeMap::new();
    data.insert("configure.sh".to_string(), script(roles));
    for (name, role) in roles {
        data.insert(format!("policy-{name}.hcl"), policy(role));
    }
    let text = serde_json::to_string(&data).map_err(|e| Error::internal(e.to_string()))?;
    let short = &crate::core::digest::sha256_hex(text.as_bytes())[..10];
    let name = format!("{CONFIG}-{short}");
    let labels = json!({
        "app.kubernetes.io/name": CONFIG,
        "app.kubernetes.io/part-of": "appgear",
    });
    let cm = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": labels},
        "data": data,
    });
    let job = json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": labels},
        "spec": {
            "backoffLimit": 6,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restartPolicy": "Never",
                    "automountServiceAccountToken": false,
                    "securityContext": {
                        "runAsNonRoot": true, "runAsUser": 65532, "runAsGroup": 65532,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [{
                        "name": "configure",
                        "image": pins::VAULT_IMAGE.reference(),
                        "imagePullPolicy": "IfNotPresent",
                        "command": ["sh", "/config/configure.sh"],
                        "env": [
                            {"name": "VAULT_ADDR", "value": ADDR},
                            // The CLI keeps a token helper file under HOME.
                            {"name": "HOME", "value": "/tmp"},
                        ],
                        "resources": {
                            "requests": {"cpu": "10m", "memory": "32Mi"},
                            "limits": {"memory": "128Mi"},
                        },
                        "securityContext": super::locked_down(),
                        "volumeMounts": [
                            {"name": "config", "mountPath": "/config", "readOnly": true},
                            {"name": "seed", "mountPath": "/seed", "readOnly": true},
                            {"name": "tmp", "mountPath": "/tmp"},
                        ],
                    }],
                    "volumes": [
                        {"name": "config", "configMap": {"name": name}},
                        // 0400: only the Job's user reads the seed.
                        {"name": "seed", "secret": {"secretName": SEED, "defaultMode": 256}},
                        {"name": "tmp", "emptyDir": {"sizeLimit": "8Mi"}},
                    ],
                },
            },
        },
    });
    [cm, job]
        .into_iter()
        .map(|v| to_object(v, "appgear's Vault configuration"))
        .collect()
}

fn to_object(value: Value, origin: &str) -> Result<Object> {
    let text = serde_json::to_string(&value).map_err(|e| Error::internal(e.to_string()))?;
    manifests::split(&text, origin)?
        .pop()
        .ok_or_else(|| Error::internal(format!("{origin}: no object")))
}

/// `n` random bytes as hex, from the operating system's generator.
fn random_hex(n: usize) -> Result<String> {
    let mut b = vec![0u8; n];
    getrandom::fill(&mut b).map_err(|e| Error::internal(format!("no randomness: {e}")))?;
    Ok(crate::core::digest::hex(&b))
}

/// The builder config seeded into Vault: the builder's published example (its targets on
/// toolchain images pinned by digest, one definition in `builder::config`), and one API token
/// known by its SHA-256 only (the token itself is in the seed Secret).
pub fn builder_config(api_token: &str) -> String {
    format!(
        "# Seeded by appgear cluster up --with-vault; replace it with `vault kv put`.\n{}\
         api_tokens:\n  - name: local\n    sha256: {}\n    scopes: [submit, read, cancel]\n",
        crate::builder::config::EXAMPLE,
        crate::core::digest::sha256_hex(api_token.as_bytes())
    )
}

/// The seed Secret with freshly generated values. Applied only when the cluster has none:
/// the running Vault holds the root token it started with.
pub fn seed_secret() -> Result<Object> {
    let builder_token = random_hex(32)?;
    let value = json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": SEED, "namespace": NAMESPACE,
                     "labels": {"app.kubernetes.io/part-of": "appgear"}},
        "type": "Opaque",
        "stringData": {
            ROOT_TOKEN: random_hex(32)?,
            MULTIPLAYER_TOKEN: random_hex(32)?,
            BUILDER_CONFIG: builder_config(&builder_token),
            BUILDER_API_TOKEN: builder_token,
            PLACEHOLDER: "generated by appgear; replace it with `vault kv put`",
        },
    });
    to_object(value, "appgear's Vault seed")
}

/// Point the dev server's root token at the seed Secret instead of the chart's literal value.
/// Refuses a render that is not dev mode (no such variable): the rest of this module assumes
/// an unsealed, in-memory server.
pub fn use_seed_root_token(objects: &mut [Object]) -> Result<()> {
    let mut found = false;
    for o in objects.iter_mut().filter(|o| o.kind == "StatefulSet") {
        let Some(containers) = o
            .value
            .pointer_mut("/spec/template/spec/containers")
            .and_then(Value::as_array_mut)
        else {
            continue;
        };
        for c in containers {
            let Some(env) = c.get_mut("env").and_then(Value::as_array_mut) else {
                continue;
            };
            for e in env {
                if e.get("name").and_then(Value::as_str) == Some(ROOT_TOKEN_ENV) {
                    *e = json!({"name": ROOT_TOKEN_ENV, "valueFrom": {"secretKeyRef": {"name": SEED, "key": ROOT_TOKEN}}});
                    found = true;
                }
            }
        }
    }
    if found {
        Ok(())
    } else {
        Err(Error::bad_input(format!(
            "the Vault render has no {ROOT_TOKEN_ENV}: it is not dev mode"
        ))
        .hint("render Vault with appgear's values (assets/addons/vault/values.yaml); write the mirror again with `appgear cluster mirror --out DIR`"))
    }
}

/// The workloads whose running pods predate Vault's injector and must be replaced to get an
/// agent. (A ScaledJob's pods are new for every job, so they need nothing.)
pub fn restarted_kind(kind: &str) -> bool {
    matches!(kind, "Deployment" | "StatefulSet" | "DaemonSet")
}

/// The patch that makes a workload replace its pods, as `kubectl rollout restart` does: a
/// pod-template annotation. Its value names the reason rather than a time, so the same patch
/// twice restarts once (a re-run interrupted after it changes nothing more).
pub fn restart_patch() -> serde_json::Value {
    serde_json::json!({
        "spec": {"template": {"metadata": {"annotations": {
            "appgear.io/restarted-for": "vault-agent-injector"
        }}}}
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gitops::model::{Suite, WorkspaceEntry};

    fn suite(ids: &[&str]) -> Vec<Object> {
        let entries: Vec<WorkspaceEntry> = ids
            .iter()
            .map(|i| WorkspaceEntry {
                id: i.to_string(),
                tenant: "acme".into(),
            })
            .collect();
        let s = Suite::new(
            "ag-local-core-dev",
            "https://git.example.com/s.git",
            "main",
            "factory.dev.appgear.local",
            &entries,
        )
        .unwrap();
        crate::topology_b::suite::objects(&s, false).unwrap()
    }

    #[test]
    fn roles_come_from_the_rendered_annotations_and_a_workspace_adds_its_namespace() {
        let one = roles(&suite(&["demo"])).unwrap();
        assert_eq!(
            one.keys().map(String::as_str).collect::<Vec<_>>(),
            [
                "addon-factory-multiplayer",
                "addon-factory-tauri-builder",
                "addon-factory-vscode"
            ]
        );
        let mp = &one["addon-factory-multiplayer"];
        assert_eq!(
            mp.service_accounts.iter().collect::<Vec<_>>(),
            ["addon-factory-multiplayer"]
        );
        assert_eq!(
            mp.namespaces.iter().collect::<Vec<_>>(),
            ["ws-demo-factory"]
        );
        let w: Vec<&Wanted> = mp.wants.iter().collect();
        assert_eq!(w.len(), 1);
        assert_eq!(
            w[0].api_path(),
            "kv/data/appgear/addon-factory-multiplayer/config"
        );
        assert_eq!(w[0].key, "token", "the key its template reads");
        assert_eq!(
            policy(mp),
            "path \"kv/data/appgear/addon-factory-multiplayer/config\" {\n  capabilities = [\"read\"]\n}\n"
        );

        let two = roles(&suite(&["demo", "team-b"])).unwrap();
        assert_eq!(
            two["addon-factory-multiplayer"]
                .namespaces
                .iter()
                .collect::<Vec<_>>(),
            ["ws-demo-factory", "ws-team-b-factory"]
        );
        let before = config_objects(&one).unwrap();
        let after = config_objects(&two).unwrap();
        assert_ne!(
            before[1].name, after[1].name,
            "a new workspace runs a new Job"
        );
        assert!(script(&two)
            .contains("bound_service_account_namespaces='ws-demo-factory,ws-team-b-factory'"));
    }

    #[test]
    fn the_script_tolerates_a_rerun_and_never_holds_a_value() {
        let r = roles(&suite(&["demo"])).unwrap();
        let s = script(&r);
        for line in s.lines() {
            let enables = line.contains("auth enable") || line.contains("secrets enable");
            if enables {
                assert!(line.contains("|| vault"), "only when absent: {line}");
            }
            if line.contains("kv put") {
                assert!(line.contains("kv get") && line.contains("||"), "{line}");
                assert!(line.contains("=@$SEED/"), "values from files: {line}");
            }
        }
        assert!(s.contains("\"token=@$SEED/multiplayer-token\""), "{s}");
        assert!(s.contains("\"config=@$SEED/builder-config\""), "{s}");
        assert_eq!(
            config_objects(&r).unwrap()[1].name,
            config_objects(&r).unwrap()[1].name,
            "the same configuration is the same Job"
        );
    }

    #[test]
    fn secret_values_live_in_the_seed_secret_only() {
        let seed = seed_secret().unwrap();
        let values: Vec<String> = seed.value["stringData"]
            .as_object()
            .unwrap()
            .values()
            .filter_map(|v| v.as_str().map(String::from))
            .collect();
        assert_eq!(values.len(), 5);
        let r = roles(&suite(&["demo"])).unwrap();
        let mut chart = manifests::split(
            "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: vault, namespace: vault}\nspec:\n  template:\n    spec:\n      containers:\n      - name: vault\n        image: hashicorp/vault:2.0.4\n        env:\n        - {name: VAULT_DEV_ROOT_TOKEN_ID, value: set-by-appgear}\n",
            "vault.yaml",
        )
        .unwrap();
        use_seed_root_token(&mut chart).unwrap();
        let mut others = config_objects(&r).unwrap();
        others.extend(chart);
        let text =
            serde_json::to_string(&others.iter().map(|o| &o.value).collect::<Vec<_>>()).unwrap();
        for v in values.iter().filter(|v| v.len() == 64) {
            assert!(!text.contains(v.as_str()), "a secret value leaked");
        }
        let builder = seed.value["stringData"]["builder-config"].as_str().unwrap();
        assert!(!text.contains(builder));
        assert!(
            text.contains(
                "\"secretKeyRef\":{\"key\":\"root-token\",\"name\":\"appgear-vault-seed\"}"
            ),
            "{text}"
        );
        assert!(!text.contains("set-by-appgear"));
        // Two seeds never share a value.
        assert_ne!(seed_secret().unwrap().value, seed.value);
    }

    #[test]
    fn the_seeded_builder_config_is_one_the_builder_accepts() {
        let c = crate::builder::config::Config::parse(&builder_config("t0ken")).unwrap();
        // Every target of the builder's published example, on its pinned toolchain.
        assert_eq!(
            c.targets.keys().collect::<Vec<_>>(),
            ["android-apk", "tauri-linux", "web"]
        );
        assert!(c.targets.values().all(|t| t.image.contains("@sha256:")));
        assert_eq!(
            c.tokens[0].sha256,
            crate::core::digest::sha256_hex(b"t0ken")
        );
    }

    #[test]
    fn a_render_that_is_not_dev_mode_is_refused() {
        let mut o = manifests::split(
            "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: vault, namespace: vault}\nspec:\n  template:\n    spec:\n      containers:\n      - {name: vault, image: 'hashicorp/vault:2.0.4'}\n",
            "vault.yaml",
        )
        .unwrap();
        let e = use_seed_root_token(&mut o).unwrap_err();
        assert!(e.message.contains("not dev mode"), "{}", e.message);
    }
}

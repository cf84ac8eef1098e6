//! Vault before the suite (stage 8, the default) and stage 9 of `cluster up` (`--with-argocd`,
//! `--profile full`):
//!
//! - against a fake API service (a `tower-test` pair whose task keeps the objects applied to
//!   it, and reports a waited object ready on the second look): the parts are applied in order
//!   as `appgear`, each waited and then recorded, and a re-run with the record applies nothing;
//! - the in-cluster Git server's script, run here with the real `git` as the pod runs it, serves
//!   the rendered tree over git://, and a `git clone` of it equals the render;
//! - the objects appgear writes for the stage pass `validate-manifests`.

use crate::common::{free_port, shared};
use appgear::core::error::Result;
use appgear::gitops::model::{Suite, WorkspaceEntry};
use appgear::gitops::render::RenderedFile;
use appgear::topology_b::api::apply::Applier;
use appgear::topology_b::api::resources::Resources;
use appgear::topology_b::api::wait::WaitTimes;
use appgear::topology_b::cluster::optional::{self, argocd, git_server, vault, Supply};
use appgear::topology_b::cluster::record;
use appgear::topology_b::manifests::{self, Object};
use appgear::topology_b::stages::{Options, Profile};
use http::{Method, Request, Response, StatusCode};
use kube::client::Body;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const DOMAIN: &str = "factory.dev.appgear.local";

fn workspaces(ids: &[&str]) -> Vec<WorkspaceEntry> {
    ids.iter()
        .map(|i| WorkspaceEntry {
            id: i.to_string(),
            tenant: "acme".into(),
        })
        .collect()
}

/// The chart's objects that matter here: dev mode's root token variable in the StatefulSet.
const VAULT: &str = "apiVersion: v1
kind: Namespace
metadata: {name: vault}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: vault, namespace: vault}
spec:
  replicas: 1
  selector: {matchLabels: {app: vault}}
  serviceName: vault-internal
  template:
    metadata: {labels: {app: vault}}
    spec:
      containers:
      - name: vault
        image: hashicorp/vault:2.0.4
        env:
        - {name: VAULT_DEV_ROOT_TOKEN_ID, value: set-by-appgear}
";

/// The shape of core-install.yaml: CRDs, and objects without a namespace.
const ARGOCD: &str = "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: applications.argoproj.io}
spec:
  group: argoproj.io
  scope: Namespaced
  names: {kind: Application, plural: applications}
  versions: [{name: v1alpha1, served: true, storage: true}]
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: appprojects.argoproj.io}
spec:
  group: argoproj.io
  scope: Namespaced
  names: {kind: AppProject, plural: appprojects}
  versions: [{name: v1alpha1, served: true, storage: true}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: argocd-repo-server}
spec:
  replicas: 1
  selector: {matchLabels: {app: repo}}
  template:
    metadata: {labels: {app: repo}}
    spec: {containers: [{name: repo, image: 'quay.io/argoproj/argocd:v3.5.1'}]}
";

/// Enough of the Airbyte chart's render to be applied and waited.
const AIRBYTE: &str = "apiVersion: v1
kind: Namespace
metadata: {name: factory-data}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: airbyte-server, namespace: factory-data}
spec:
  replicas: 1
  selector: {matchLabels: {app: airbyte}}
  template:
    metadata: {labels: {app: airbyte}}
    spec: {containers: [{name: server, image: 'airbyte/server:2.2.0'}]}
";

struct Fake {
    workspaces: Vec<WorkspaceEntry>,
}

impl Supply for Fake {
    fn addon(&self, name: &str) -> Result<Vec<Object>> {
        manifests::split(
            match name {
                "vault" => VAULT,
                "argocd" => ARGOCD,
                "airbyte" => AIRBYTE,
                _ => panic!("no add-on {name} in this test"),
            },
            name,
        )
    }
    fn suite(&self) -> Result<Vec<Object>> {
        let s = Suite::new(
            "ag-local-core-dev",
            "https://git.example.com/s.git",
            "main",
            DOMAIN,
            &self.workspaces,
        )?;
        appgear::topology_b::suite::objects(&s, false)
    }
    fn tree(&self) -> Result<Vec<RenderedFile>> {
        optional::tree(DOMAIN, &self.workspaces, false)
    }
}

/// A stand-in API server: keeps what is applied, answers GETs from it, and reports an object
/// ready on the second GET after its apply (so a wait has to look again).
#[derive(Default)]
struct Api {
    objects: BTreeMap<String, (Value, u32)>,
    log: Vec<(Method, String, Option<Value>)>,
    version: u64,
}

fn ready_status() -> Value {
    json!({
        "observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "readyReplicas": 1,
        "availableReplicas": 1,
        "conditions": [
            {"type": "Available", "status": "True"},
            {"type": "Complete", "status": "True"},
            {"type": "Established", "status": "True"}
        ],
        "sync": {"status": "Synced"}, "health": {"status": "Healthy"}
    })
}

fn serve(api: Arc<Mutex<Api>>) -> (kube::Client, tokio::task::JoinHandle<()>) {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let task = tokio::spawn(async move {
        while let Some((request, send)) = handle.next_request().await {
            let method = request.method().clone();
            let path = request.uri().path().to_string();
            let query = request.uri().query().unwrap_or("").to_string();
            let bytes = request.into_body().collect_bytes().await.unwrap();
            let (status, answer) = {
                let mut api = api.lock().unwrap();
                if method == Method::PATCH {
                    assert!(query.contains("fieldManager=appgear"), "{query}");
                    assert!(!query.contains("force=true"), "appgear never forces");
                    let mut body: Value = serde_json::from_slice(&bytes).unwrap();
                    api.log.push((method, path.clone(), Some(body.clone())));
                    // As the API server: an apply that changes nothing keeps the version.
                    let same = api.objects.get(&path).map(|(o, _)| {
                        let mut o = o.clone();
                        o["metadata"]
                            .as_object_mut()
                            .unwrap()
                            .remove("resourceVersion");
                        o["metadata"].as_object_mut().unwrap().remove("generation");
                        o == body
                    });
                    let version = match (same, api.objects.get(&path)) {
                        (Some(true), Some((o, _))) => o["metadata"]["resourceVersion"].clone(),
                        _ => {
                            api.version += 1;
                            json!(api.version.to_string())
                        }
                    };
                    body["metadata"]["resourceVersion"] = version;
                    body["metadata"]["generation"] = json!(1);
                    api.objects.insert(path, (body.clone(), 0));
                    (200, body)
                } else {
                    api.log.push((method, path.clone(), None));
                    match api.objects.get_mut(&path) {
                        Some((o, looks)) => {
                            *looks += 1;
                            let mut o = o.clone();
                            // The look right after the apply's own GET is the wait's first.
                            if *looks >= 2 {
                                o["status"] = ready_status();
                            }
                            (200, o)
                        }
                        None => (
                            404,
                            json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                   "reason": "NotFound", "code": 404, "message": "not found"}),
                        ),
                    }
                }
            };
            send.send_response(
                Response::builder()
                    .status(StatusCode::from_u16(status).unwrap())
                    .body(Body::from(serde_json::to_vec(&answer).unwrap()))
                    .unwrap(),
            );
        }
    });
    (kube::Client::new(service, "default"), task)
}

const RECORD: &str = "/api/v1/namespaces/kube-system/configmaps/appgear-stages";

async fn stage(
    api: &Arc<Mutex<Api>>,
    opts: &Options,
    fake: &Fake,
) -> Result<Vec<(String, String)>> {
    api.lock().unwrap().log.clear();
    let (client, task) = serve(api.clone());
    let times = WaitTimes {
        timeout: Duration::from_secs(30),
        interval: Duration::from_millis(1),
    };
    let mut applier = Applier::new(client.clone(), times);
    let rows = optional::run_with(fake, &client, &mut applier, opts, &|_| {}).await;
    drop(applier);
    drop(client);
    task.await.unwrap();
    rows
}

/// The suite's objects of the kinds the API knows without the earlier stages' CRDs (Kong's
/// and KEDA's are applied by stages 3 and 5, which this stand-in API has not seen).
fn suite_objects(fake: &Fake) -> Result<Vec<Object>> {
    let known = Resources::default();
    Ok(fake
        .suite()?
        .into_iter()
        .filter(|o| known.of(o).is_ok())
        .collect())
}

/// Stage 8 as `cluster up` runs it: Vault's part, then the suite's objects.
async fn suite_stage(
    api: &Arc<Mutex<Api>>,
    opts: &Options,
    fake: &Fake,
) -> Result<Vec<(String, String)>> {
    api.lock().unwrap().log.clear();
    let (client, task) = serve(api.clone());
    let times = WaitTimes {
        timeout: Duration::from_secs(30),
        interval: Duration::from_millis(1),
    };
    let mut applier = Applier::new(client.clone(), times);
    let ids: Vec<String> = fake.workspaces.iter().map(|w| w.id.clone()).collect();
    let rows = optional::suite_stage(
        fake,
        &client,
        &mut applier,
        opts,
        suite_objects(fake)?,
        record::entries_for_suite("0.1.0", &ids),
        &|_| {},
    )
    .await;
    drop(applier);
    drop(client);
    task.await.unwrap();
    rows
}

fn patched(api: &Arc<Mutex<Api>>) -> Vec<String> {
    api.lock()
        .unwrap()
        .log
        .iter()
        .filter(|(m, _, _)| *m == Method::PATCH)
        .map(|(_, p, _)| p.clone())
        .collect()
}

/// The GETs of `path` after its apply: more than one means it was waited for.
fn looks_after_apply(api: &Arc<Mutex<Api>>, path: &str) -> usize {
    let api = api.lock().unwrap();
    let at = api
        .log
        .iter()
        .position(|(m, p, _)| *m == Method::PATCH && p == path)
        .unwrap_or_else(|| panic!("{path} was not applied"));
    api.log[at..]
        .iter()
        .filter(|(m, p, _)| *m == Method::GET && p == path)
        .count()
}

/// The suite's pods read their secrets from Vault's agent, and the injector only injects pods
/// created after it: stage 8 applies Vault, configures it and waits for both before it applies
/// any object of the suite, records it, and a re-run redoes nothing of it.
#[tokio::test]
async fn vault_is_applied_configured_and_waited_before_any_suite_object() {
    let api = Arc::new(Mutex::new(Api::default()));
    let fake = Fake {
        workspaces: workspaces(&["demo"]),
    };
    // `cluster up` with no flag: Vault is the default.
    let opts = Options::new(Profile::Core, false, true, false).unwrap();
    let rows = suite_stage(&api, &opts, &fake).await.unwrap();

    let roles = vault::roles(&fake.suite().unwrap()).unwrap();
    let job = vault::config_objects(&roles).unwrap()[1].name.clone();
    let job_path = format!("/apis/batch/v1/namespaces/vault/jobs/{job}");
    let vault_first = [
        // Vault: its namespace, the seed before the server that reads it, the server.
        "/api/v1/namespaces/vault".to_string(),
        "/api/v1/namespaces/vault/secrets/appgear-vault-seed".into(),
        "/apis/apps/v1/namespaces/vault/statefulsets/vault".into(),
        // Then the configuration, once the server is ready.
        format!("/api/v1/namespaces/vault/configmaps/{job}"),
        job_path.clone(),
        // Recorded before the suite starts.
        RECORD.into(),
    ];
    let applied = patched(&api);
    assert_eq!(applied[..vault_first.len()], vault_first, "{applied:#?}");
    // Everything after is the suite (and its record at the end), none of it Vault's.
    let suite = &applied[vault_first.len()..];
    assert!(suite.len() > 5, "{suite:#?}");
    assert!(suite
        .iter()
        .any(|p| p.contains("/namespaces/ws-demo-factory/")));
    assert_eq!(suite.last().map(String::as_str), Some(RECORD));
    assert!(!suite[..suite.len() - 1]
        .iter()
        .any(|p| p.contains("/namespaces/vault") || p == RECORD));
    // Both waited before the suite's first apply.
    {
        let log = &api.lock().unwrap().log;
        let first_suite = log
            .iter()
            .position(|(m, p, _)| *m == Method::PATCH && *p == suite[0])
            .unwrap();
        for waited in [
            "/apis/apps/v1/namespaces/vault/statefulsets/vault",
            job_path.as_str(),
        ] {
            let looks = log[..first_suite]
                .iter()
                .filter(|(m, p, _)| *m == Method::GET && p == waited)
                .count();
            assert!(looks >= 2, "{waited} was not waited for before the suite");
        }
    }
    {
        let api = api.lock().unwrap();
        let record = &api.objects[RECORD].0["data"];
        assert_eq!(record["vault"], "0.34.1");
        assert_eq!(record["suite"], "0.1.0");
        // The root token reaches the server through the Secret, never as a value.
        let sts = &api.objects["/apis/apps/v1/namespaces/vault/statefulsets/vault"].0;
        let env = &sts["spec"]["template"]["spec"]["containers"][0]["env"][0];
        assert_eq!(
            env["valueFrom"]["secretKeyRef"],
            json!({"name": "appgear-vault-seed", "key": "root-token"})
        );
        let seed = &api.objects["/api/v1/namespaces/vault/secrets/appgear-vault-seed"].0;
        let secrets: Vec<&str> = seed["stringData"]
            .as_object()
            .unwrap()
            .values()
            .filter_map(Value::as_str)
            .collect();
        for (m, path, body) in &api.log {
            if path.ends_with("/appgear-vault-seed") || *m != Method::PATCH {
                continue;
            }
            let text = body.as_ref().unwrap().to_string();
            for s in &secrets {
                assert!(!text.contains(s), "{path} holds a seeded value");
            }
        }
    }
    assert_eq!(
        rows.iter().map(|(s, _)| s.as_str()).collect::<Vec<_>>(),
        ["vault", "factory suite"]
    );
    assert!(rows[0].1.contains("3 roles"), "{rows:?}");

    // Again, with the record: Vault is not redone.
    let rows = suite_stage(&api, &opts, &fake).await.unwrap();
    let again = patched(&api);
    assert!(
        !again.iter().any(|p| p.contains("/namespaces/vault")),
        "{again:#?}"
    );
    assert_eq!(rows[0].1, "done: vault 0.34.1");

    // --without-vault on a fresh cluster: nothing of Vault, and the row says where secrets come from.
    let fresh = Arc::new(Mutex::new(Api::default()));
    let own = Options::new(Profile::Core, false, false, false).unwrap();
    let rows = suite_stage(&fresh, &own, &fake).await.unwrap();
    assert!(!patched(&fresh).iter().any(|p| p.contains("vault")));
    assert!(
        rows[0].1.starts_with(
            "skip: --without-vault: the suite's secrets must come from your own Vault"
        ),
        "{rows:?}"
    );
    // Vault asked for later, on that cluster: the suite's running workloads are restarted
    // (their pods predate the injector) before the suite is applied and waited again.
    let rows = suite_stage(&fresh, &opts, &fake).await.unwrap();
    let log = fresh.lock().unwrap().log.clone();
    let patches: Vec<(&String, &Value)> = log
        .iter()
        .filter(|(m, _, _)| *m == Method::PATCH)
        .map(|(_, p, b)| (p, b.as_ref().unwrap()))
        .collect();
    let restarts: Vec<usize> = patches
        .iter()
        .enumerate()
        .filter(|(_, (_, b))| {
            b["spec"]["template"]["metadata"]["annotations"]["appgear.io/restarted-for"]
                == "vault-agent-injector"
                && b.get("kind").is_none()
        })
        .map(|(i, _)| i)
        .collect();
    let deployments = suite_objects(&fake)
        .unwrap()
        .iter()
        .filter(|o| o.kind == "Deployment")
        .count();
    assert!(deployments > 0);
    assert_eq!(restarts.len(), deployments, "{patches:#?}");
    let job_at = patches.iter().position(|(p, _)| **p == job_path).unwrap();
    let first_suite_apply = patches
        .iter()
        .position(|(p, b)| p.contains("/ws-demo-factory/") && b.get("kind").is_some())
        .unwrap();
    for i in &restarts {
        assert!(job_at < *i && *i < first_suite_apply, "{patches:#?}");
    }
    assert!(
        rows[0].1.ends_with(&format!(
            "; {deployments} workloads of the suite restarted to get Vault's agent"
        )),
        "{rows:?}"
    );
}

#[tokio::test]
async fn argocd_is_applied_in_order_waited_recorded_and_a_rerun_applies_nothing() {
    let api = Arc::new(Mutex::new(Api::default()));
    let fake = Fake {
        workspaces: workspaces(&["demo"]),
    };
    let opts = Options::new(Profile::Core, false, true, true).unwrap();
    let rows = stage(&api, &opts, &fake).await.unwrap();

    let app = "/apis/argoproj.io/v1alpha1/namespaces/argocd/applications/suite-factory";
    let expected = [
        // Argo CD: CRDs, namespace, then its objects and the Git server.
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/applications.argoproj.io",
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/appprojects.argoproj.io",
        "/api/v1/namespaces/argocd",
        "/api/v1/namespaces/argocd/configmaps/appgear-git-tree",
        "/api/v1/namespaces/argocd/configmaps/appgear-git-server",
        "/api/v1/namespaces/argocd/services/appgear-git",
        "/apis/apps/v1/namespaces/argocd/deployments/argocd-repo-server",
        "/apis/apps/v1/namespaces/argocd/deployments/appgear-git",
        "/apis/argoproj.io/v1alpha1/namespaces/argocd/appprojects/default",
        // The root Application last, once the Git server answers.
        app,
        RECORD,
    ];
    assert_eq!(patched(&api), expected);
    for waited in [
        "/apis/apps/v1/namespaces/argocd/deployments/appgear-git",
        app,
    ] {
        assert!(
            looks_after_apply(&api, waited) >= 2,
            "{waited} was not waited for"
        );
    }
    {
        let api = api.lock().unwrap();
        let record = &api.objects[RECORD].0["data"];
        assert_eq!(record["argocd"], "v3.5.1");
        let tree = git_server::tree_digest(&fake.tree().unwrap());
        assert_eq!(record["git-server-tree"], json!(tree));
        // The Application syncs from the in-cluster Git server.
        let root = &api.objects[app].0;
        assert_eq!(root["spec"]["source"]["repoURL"], json!(git_server::url()));
    }
    assert_eq!(
        rows.iter().map(|(s, _)| s.as_str()).collect::<Vec<_>>(),
        ["optional airbyte", "optional argocd"]
    );
    assert!(rows[0].1.starts_with("skip: not asked"), "{rows:?}");

    // The same cluster again: everything is recorded, nothing is applied.
    let rows = stage(&api, &opts, &fake).await.unwrap();
    assert_eq!(patched(&api), Vec::<String>::new());
    assert_eq!(rows[1].1, "done: v3.5.1");

    // A workspace added: the Git server gets the new tree, Argo CD syncs it from there.
    let two = Fake {
        workspaces: workspaces(&["demo", "team-b"]),
    };
    let rows = stage(&api, &opts, &two).await.unwrap();
    assert_eq!(
        patched(&api),
        [
            "/api/v1/namespaces/argocd/configmaps/appgear-git-tree",
            "/api/v1/namespaces/argocd/configmaps/appgear-git-server",
            "/api/v1/namespaces/argocd/services/appgear-git",
            "/apis/apps/v1/namespaces/argocd/deployments/appgear-git",
            RECORD
        ]
    );
    assert!(
        rows[1].1.ends_with("the Git server's tree updated"),
        "{rows:?}"
    );
}

/// With Argo CD and the full profile, Airbyte has one owner: Argo CD, through its Application
/// in the served tree; stage 9 applies nothing of its chart and says why.
#[tokio::test]
async fn with_argocd_airbyte_comes_through_argocd_only() {
    let api = Arc::new(Mutex::new(Api::default()));
    let fake = Fake {
        workspaces: workspaces(&["demo"]),
    };
    let opts = Options::new(Profile::Full, false, true, true).unwrap();
    let rows = stage(&api, &opts, &fake).await.unwrap();
    assert!(
        !patched(&api).iter().any(|p| p.contains("factory-data")),
        "{:#?}",
        patched(&api)
    );
    assert_eq!(
        rows[0],
        (
            "optional airbyte".to_string(),
            format!(
                "skip: {}",
                appgear::topology_b::stages::AIRBYTE_THROUGH_ARGOCD
            )
        )
    );
}

/// The tree served to Argo CD holds Airbyte's Application only when Airbyte is asked for, and
/// both trees build with the real `kubectl kustomize`.
#[test]
fn the_argocd_tree_holds_airbyte_only_when_asked_and_builds_with_kustomize() {
    let ws = workspaces(&["demo"]);
    let without = optional::tree(DOMAIN, &ws, false).unwrap();
    let with = optional::tree(DOMAIN, &ws, true).unwrap();
    assert!(!without
        .iter()
        .any(|f| f.path.starts_with("apps/factory/airbyte/")));
    assert!(with
        .iter()
        .any(|f| f.path == "apps/factory/airbyte/application-airbyte.yaml"));
    let parent = |t: &[RenderedFile]| {
        t.iter()
            .find(|f| f.path == "apps/factory/kustomization.yaml")
            .unwrap()
            .text
            .clone()
    };
    assert!(
        !parent(&without).contains("airbyte/"),
        "{}",
        parent(&without)
    );
    assert!(parent(&with).contains("- airbyte/"));

    let Some(kubectl) = std::env::var_os("APPGEAR_TEST_KUBECTL") else {
        panic!("APPGEAR_TEST_KUBECTL is not set: scripts/test sets it to .tools/bin/kubectl");
    };
    for (tree, airbyte) in [(&without, false), (&with, true)] {
        let dir = tempfile::tempdir().unwrap();
        for f in tree.iter() {
            let path = dir.path().join(&f.path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &f.text).unwrap();
        }
        let out = Command::new(&kubectl)
            .args(["kustomize"])
            .arg(dir.path().join("apps/factory"))
            .output()
            .unwrap();
        let built = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(built.contains("ws-demo-factory"), "{built}");
        assert_eq!(
            built.contains("name: addon-factory-airbyte"),
            airbyte,
            "Airbyte's Application in the build: {built}"
        );
    }
}

/// A Vault part that was interrupted after its seed Secret was made runs again without
/// replacing the Secret: the running server holds the root token it started with.
#[tokio::test]
async fn an_interrupted_vault_part_keeps_its_seed() {
    let api = Arc::new(Mutex::new(Api::default()));
    let fake = Fake {
        workspaces: workspaces(&["demo"]),
    };
    let opts = Options::new(Profile::Core, false, true, false).unwrap();
    suite_stage(&api, &opts, &fake).await.unwrap();
    let seed_path = "/api/v1/namespaces/vault/secrets/appgear-vault-seed";
    let seed = api.lock().unwrap().objects[seed_path].0.clone();
    // The record lost: as if the first run stopped before recording.
    api.lock().unwrap().objects.remove(RECORD);
    let rows = suite_stage(&api, &opts, &fake).await.unwrap();
    let again = patched(&api);
    assert!(!again.iter().any(|p| p == seed_path), "{again:?}");
    assert!(again.iter().any(|p| p.ends_with("statefulsets/vault")));
    assert_eq!(api.lock().unwrap().objects[seed_path].0, seed);
    assert!(rows[0].1.contains("unchanged"), "{rows:?}");
}

/// Lay the files out as the kubelet does for a ConfigMap volume with `items`: the files in a
/// hidden, timestamped folder, `..data` linking to it, each top-level entry linking into it.
fn configmap_volume(dir: &Path, files: &[RenderedFile]) {
    let data = dir.join("..2026_11_30_00_00_00.000000001");
    for f in files {
        let p = data.join(&f.path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, &f.text).unwrap();
    }
    std::os::unix::fs::symlink("..2026_11_30_00_00_00.000000001", dir.join("..data")).unwrap();
    let mut tops: Vec<&str> = files
        .iter()
        .map(|f| f.path.split('/').next().unwrap())
        .collect();
    tops.dedup();
    for t in tops {
        std::os::unix::fs::symlink(format!("..data/{t}"), dir.join(t)).unwrap();
    }
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn files_under(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.file_name().is_some_and(|n| n == ".git") {
            continue;
        }
        if p.is_dir() {
            files_under(root, &p, out);
        } else {
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().to_string();
            out.insert(rel, std::fs::read_to_string(&p).unwrap());
        }
    }
}

/// The pod's script, run here with the real `git` on a ConfigMap-like folder, serves the tree
/// over git:// as Argo CD's repo-server reads it: `git ls-remote` lists `main`, and a clone at
/// `main` holds exactly the rendered files.
#[test]
fn the_git_server_serves_the_rendered_tree_and_a_clone_equals_it() {
    let files = optional::tree(DOMAIN, &workspaces(&["demo", "team-b"]), false).unwrap();
    assert!(files.len() > 20, "{}", files.len());
    let d = tempfile::tempdir().unwrap();
    let tree = d.path().join("tree");
    let srv = d.path().join("srv");
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::create_dir_all(&srv).unwrap();
    configmap_volume(&tree, &files);
    let script = d.path().join("serve.sh");
    std::fs::write(&script, git_server::SCRIPT).unwrap();
    let port = free_port();
    let _server = Server(
        Command::new("sh")
            .arg(&script)
            .env("TREE", &tree)
            .env("SERVE", &srv)
            .env("LISTEN", "127.0.0.1")
            .env("PORT", port.to_string())
            .env("HOME", d.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("sh runs"),
    );
    let url = format!("git://127.0.0.1:{port}/{}", git_server::REPOSITORY);
    // The pod is ready when it listens; so is this server. Look until it answers.
    let mut listed = None;
    for _ in 0..300 {
        let o = Command::new("git")
            .args(["ls-remote", &url])
            .output()
            .unwrap();
        if o.status.success() {
            listed = Some(String::from_utf8_lossy(&o.stdout).to_string());
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let listed = listed.expect("the Git server never answered");
    assert!(listed.contains("\trefs/heads/main\n"), "{listed}");
    assert!(listed.contains("\tHEAD\n"), "{listed}");

    let clone = d.path().join("clone");
    let o = Command::new("git")
        .args(["clone", "-q", "--branch", git_server::REVISION, &url])
        .arg(&clone)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut cloned = BTreeMap::new();
    files_under(&clone, &clone, &mut cloned);
    let rendered: BTreeMap<String, String> = files
        .iter()
        .map(|f| (f.path.clone(), f.text.clone()))
        .collect();
    assert_eq!(cloned, rendered);
    // The root Application in the clone points back at the server it was cloned from.
    let apps = argocd::root_applications(&files).unwrap();
    assert_eq!(
        apps[0].value["spec"]["source"]["repoURL"],
        json!(git_server::url())
    );
    // Read-only: a push is refused.
    let o = Command::new("git")
        .current_dir(&clone)
        .args(["push", "-q", &url, "HEAD:refs/heads/other"])
        .output()
        .unwrap();
    assert!(!o.status.success(), "a push was accepted");
}

/// The objects appgear itself writes for stage 9 (the Git server, the Vault seed and
/// configuration Job, the root Application) are valid Kubernetes and Argo CD objects.
#[test]
fn the_stage_objects_appgear_writes_pass_validate_manifests() {
    let ws = workspaces(&["demo", "team-b"]);
    let fake = Fake {
        workspaces: ws.clone(),
    };
    let tree = fake.tree().unwrap();
    let mut objects = git_server::objects(&tree).unwrap();
    objects.extend(argocd::root_applications(&tree).unwrap());
    objects.push(vault::seed_secret().unwrap());
    objects.extend(vault::config_objects(&vault::roles(&fake.suite().unwrap()).unwrap()).unwrap());
    let d = tempfile::tempdir().unwrap();
    let mut text = String::new();
    for o in &objects {
        text.push_str("---\n");
        text.push_str(&serde_json::to_string_pretty(&o.value).unwrap());
        text.push('\n');
    }
    let file = d.path().join("09-optional.yaml");
    std::fs::write(&file, text).unwrap();
    let python = std::env::var_os("APPGEAR_TEST_PYTHON").unwrap_or_else(|| "python3".into());
    let v = Command::new(python)
        .arg(shared().join("tools/validate-manifests"))
        .arg(&file)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&v.stdout);
    assert!(
        v.status.success() && report.contains(", 0 failing"),
        "{report}\n{}",
        String::from_utf8_lossy(&v.stderr)
    );
}

/// `--profile full` installs Airbyte from its add-on (what `cluster::render::addon` supplies),
/// waits for it, records it, and a re-run leaves it.
#[tokio::test]
async fn airbyte_is_applied_from_its_addon_waited_and_recorded() {
    let api = Arc::new(Mutex::new(Api::default()));
    let fake = Fake {
        workspaces: workspaces(&["demo"]),
    };
    let opts = Options::new(Profile::Full, false, false, false).unwrap();
    let rows = stage(&api, &opts, &fake).await.unwrap();
    let deploy = "/apis/apps/v1/namespaces/factory-data/deployments/airbyte-server";
    assert_eq!(
        patched(&api),
        ["/api/v1/namespaces/factory-data", deploy, RECORD]
    );
    assert!(looks_after_apply(&api, deploy) >= 2);
    assert_eq!(
        api.lock().unwrap().objects[RECORD].0["data"]["airbyte"],
        "2.2.0"
    );
    assert!(rows[0].1.ends_with("; ready"), "{rows:?}");
    let rows = stage(&api, &opts, &fake).await.unwrap();
    assert_eq!(patched(&api), Vec::<String>::new());
    assert_eq!(rows[0].1, "done: 2.2.0");
}

/// `cluster render` of stage 9: a file per asked part, what `up` applies but the seed Secret,
/// so no generated secret is ever written into a file.
#[test]
fn the_render_of_the_stage_holds_every_part_but_no_secret() {
    let fake = Fake {
        workspaces: workspaces(&["demo"]),
    };
    let files = optional::rendered(&fake, true, true).unwrap();
    assert_eq!(
        files.iter().map(|(f, _)| *f).collect::<Vec<_>>(),
        ["07-vault.yaml", "09-argocd.yaml"]
    );
    for (file, objects) in &files {
        for o in objects {
            assert_ne!(o.kind, "Secret", "{file}: {}", o.describe());
        }
    }
    assert!(files[0].1.iter().any(|o| o.kind == "Job"));
    assert!(files[1]
        .1
        .iter()
        .any(|o| o.describe() == "Application argocd/suite-factory"));
    assert!(optional::rendered(&fake, false, false).unwrap().is_empty());
    let only_argocd = optional::rendered(&fake, false, true).unwrap();
    assert_eq!(only_argocd.len(), 1);
    assert_eq!(only_argocd[0].0, "09-argocd.yaml");
}

/// A stand-in `vault` CLI that keeps Vault's state in a folder: which auth methods and mounts
/// are enabled, which secrets exist (the `key=@file` arguments, as given), and every call.
const VAULT_STANDIN: &str = r#"#!/bin/sh
state="$VAULT_STATE"
echo "$*" >> "$state/calls"
[ "$VAULT_TOKEN" = "$(cat "$SEED/root-token")" ] || { echo "bad token" >&2; exit 2; }
case "$1 $2" in
  "auth list") if [ -f "$state/auth" ]; then echo '{"kubernetes/": {}}'; else echo '{}'; fi ;;
  "auth enable") [ ! -f "$state/auth" ] || { echo "path is already in use" >&2; exit 2; }; touch "$state/auth" ;;
  "secrets list") if [ -f "$state/kv" ]; then echo '{"kv/": {}}'; else echo '{}'; fi ;;
  "secrets enable") [ ! -f "$state/kv" ] || { echo "path is already in use" >&2; exit 2; }; touch "$state/kv" ;;
  "kv get") [ -f "$state/secret-$(echo "$4" | tr / _)" ] || { echo "No value found" >&2; exit 2; } ;;
  "kv put") f="$state/secret-$(echo "$4" | tr / _)"; shift 4; echo "$*" > "$f" ;;
  "policy write") [ -f "$4" ] || exit 2 ;;
esac
"#;

/// The configuration Job's script, run twice against a stand-in `vault`: the first run enables
/// Kubernetes auth and the KV mount, writes a policy and a role per role the suite names and
/// seeds each path from the seed files; the second enables and seeds nothing (it only rewrites
/// the same policies and roles), so a re-run never fails and never replaces a value.
#[test]
fn the_vault_configuration_script_can_run_again_and_never_carries_a_value() {
    let fake = Fake {
        workspaces: workspaces(&["demo", "team-b"]),
    };
    let roles = vault::roles(&fake.suite().unwrap()).unwrap();
    let objects = vault::config_objects(&roles).unwrap();
    let d = tempfile::tempdir().unwrap();
    let (bin, state, config, seed) = (
        d.path().join("bin"),
        d.path().join("state"),
        d.path().join("config"),
        d.path().join("seed"),
    );
    for dir in [&bin, &state, &config, &seed] {
        std::fs::create_dir_all(dir).unwrap();
    }
    let standin = bin.join("vault");
    std::fs::write(&standin, VAULT_STANDIN).unwrap();
    std::fs::set_permissions(
        &standin,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    for (k, v) in objects[0].value["data"].as_object().unwrap() {
        std::fs::write(config.join(k), v.as_str().unwrap()).unwrap();
    }
    let secret = vault::seed_secret().unwrap();
    let mut values = Vec::new();
    for (k, v) in secret.value["stringData"].as_object().unwrap() {
        std::fs::write(seed.join(k), v.as_str().unwrap()).unwrap();
        values.push(v.as_str().unwrap().to_string());
    }
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let run = || {
        let o = Command::new("sh")
            .arg(config.join("configure.sh"))
            .env("PATH", &path)
            .env("VAULT_STATE", &state)
            .env("SEED", &seed)
            .env("CONFIG", &config)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        let calls = std::fs::read_to_string(state.join("calls")).unwrap();
        std::fs::remove_file(state.join("calls")).unwrap();
        calls
    };
    let first = run();
    let count = |calls: &str, what: &str| calls.lines().filter(|l| l.starts_with(what)).count();
    assert_eq!(count(&first, "auth enable kubernetes"), 1, "{first}");
    assert_eq!(count(&first, "secrets enable -path=kv kv-v2"), 1, "{first}");
    assert_eq!(count(&first, "policy write"), 3, "{first}");
    assert_eq!(count(&first, "write auth/kubernetes/role/"), 3, "{first}");
    // One `kv put` per secret path the suite's annotations name.
    let paths: std::collections::BTreeSet<String> = roles
        .values()
        .flat_map(|r| r.wants.iter().map(|w| w.api_path()))
        .collect();
    assert!(paths.len() >= 3, "{paths:?}");
    assert_eq!(count(&first, "kv put"), paths.len(), "{first}");
    assert!(first.contains(
        "write auth/kubernetes/role/addon-factory-multiplayer bound_service_account_names=addon-factory-multiplayer bound_service_account_namespaces=ws-demo-factory,ws-team-b-factory policies=addon-factory-multiplayer ttl=1h"
    ), "{first}");
    let token =
        std::fs::read_to_string(state.join("secret-appgear_addon-factory-multiplayer_config"))
            .unwrap();
    assert_eq!(
        token.trim(),
        format!("token=@{}/multiplayer-token", seed.display())
    );

    let second = run();
    assert_eq!(count(&second, "auth enable"), 0, "{second}");
    assert_eq!(count(&second, "secrets enable"), 0, "{second}");
    assert_eq!(count(&second, "kv put"), 0, "{second}");
    assert_eq!(count(&second, "write auth/kubernetes/role/"), 3, "{second}");
    for calls in [&first, &second] {
        for v in &values {
            assert!(
                !calls.contains(v.as_str()),
                "a seeded value on a command line"
            );
        }
    }
}

//! The Kubernetes applier against a mocked API service, as kube-rs tests its own clients: a
//! `tower-test` pair stands in for the API server, and a verifier task asserts each request
//! (method, path, query, content type, body) and answers it. No API server runs here; these
//! tests pin the requests appgear makes and how it reads the answers.

use appgear::core::error::Kind;
use appgear::topology_b::api::apply::{Applied, Applier, Outcome};
use appgear::topology_b::api::wait::WaitTimes;
use appgear::topology_b::manifests::{self, Object};
use http::{Method, Request, Response, StatusCode};
use kube::client::Body;
use serde_json::{json, Value};
use std::time::Duration;

/// One request the mock expects, and its answer.
struct Exchange {
    method: Method,
    path: String,
    /// Text the query must contain (e.g. `fieldManager=appgear`).
    query: Vec<&'static str>,
    status: u16,
    answer: Value,
    /// Checks on the request's body (the applied object).
    body: Option<fn(&Value)>,
}

fn get(path: &str, status: u16, answer: Value) -> Exchange {
    Exchange {
        method: Method::GET,
        path: path.to_string(),
        query: vec![],
        status,
        answer,
        body: None,
    }
}

fn apply(path: &str, status: u16, answer: Value) -> Exchange {
    Exchange {
        method: Method::PATCH,
        path: path.to_string(),
        query: vec!["fieldManager=appgear"],
        status,
        answer,
        body: None,
    }
}

fn not_found() -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404, "message": "not found"})
}

fn object(
    api_version: &str,
    kind: &str,
    name: &str,
    ns: Option<&str>,
    rv: &str,
    status: Value,
) -> Value {
    let mut meta = json!({"name": name, "resourceVersion": rv, "generation": 1});
    if let Some(ns) = ns {
        meta["namespace"] = json!(ns);
    }
    json!({"apiVersion": api_version, "kind": kind, "metadata": meta, "status": status})
}

/// A client whose requests go to a task that checks them against `script`, in order.
fn mock(script: Vec<Exchange>) -> (kube::Client, tokio::task::JoinHandle<()>) {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let verifier = tokio::spawn(async move {
        for (i, x) in script.into_iter().enumerate() {
            let (request, send) = handle
                .next_request()
                .await
                .unwrap_or_else(|| panic!("request {i} ({} {}) never came", x.method, x.path));
            assert_eq!(request.method(), x.method, "request {i}: {}", request.uri());
            assert_eq!(request.uri().path(), x.path, "request {i}");
            let query = request.uri().query().unwrap_or("").to_string();
            for q in &x.query {
                assert!(
                    query.contains(q),
                    "request {i} {}: query {query:?} lacks {q}",
                    x.path
                );
            }
            if x.method == Method::PATCH {
                assert!(
                    !query.contains("force=true"),
                    "appgear never forces: {query}"
                );
                assert_eq!(
                    request
                        .headers()
                        .get(http::header::CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok()),
                    Some("application/apply-patch+yaml"),
                    "request {i}"
                );
            }
            let bytes = request.into_body().collect_bytes().await.unwrap();
            if let Some(check) = x.body {
                let v: Value =
                    serde_json::from_slice(&bytes).expect("the apply body is JSON (valid YAML)");
                check(&v);
            }
            let answer = if x.answer.is_string() {
                x.answer.as_str().unwrap().as_bytes().to_vec()
            } else {
                serde_json::to_vec(&x.answer).unwrap()
            };
            send.send_response(
                Response::builder()
                    .status(StatusCode::from_u16(x.status).unwrap())
                    .body(Body::from(answer))
                    .unwrap(),
            );
        }
    });
    (kube::Client::new(service, "default"), verifier)
}

const CRD: &str = "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: scaledobjects.keda.sh
spec:
  group: keda.sh
  scope: Namespaced
  names: {kind: ScaledObject, plural: scaledobjects}
  versions: [{name: v1alpha1, served: true, storage: true}]
";

const SUITE: &str = "apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: cde, namespace: ws-demo-factory}
spec: {scaleTargetRef: {name: cde}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: cde, namespace: ws-demo-factory}
spec:
  selector: {matchLabels: {app: cde}}
  template:
    metadata: {labels: {app: cde}}
    spec: {containers: [{name: code, image: 'codercom/code-server:4.106.3'}]}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: ws-demo-factory}
data: {a: b}
---
apiVersion: v1
kind: Namespace
metadata: {name: ws-demo-factory}
";

fn objects() -> Vec<Object> {
    let mut o = manifests::split(SUITE, "suite.yaml").unwrap();
    o.extend(manifests::split(CRD, "keda.yaml").unwrap());
    o
}

const NS: &str = "/api/v1/namespaces/ws-demo-factory";
const CRD_PATH: &str =
    "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/scaledobjects.keda.sh";
const CM: &str = "/api/v1/namespaces/ws-demo-factory/configmaps/settings";
const DEPLOY: &str = "/apis/apps/v1/namespaces/ws-demo-factory/deployments/cde";
const SO: &str = "/apis/keda.sh/v1alpha1/namespaces/ws-demo-factory/scaledobjects/cde";

fn established() -> Value {
    json!({"conditions": [{"type": "NamesAccepted", "status": "True"}, {"type": "Established", "status": "True"}]})
}

fn available() -> Value {
    json!({"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 1, "readyReplicas": 1,
           "conditions": [{"type": "Available", "status": "True"}]})
}

fn quick() -> WaitTimes {
    WaitTimes {
        timeout: Duration::from_millis(50),
        interval: Duration::from_millis(10),
    }
}

async fn run(
    script: Vec<Exchange>,
    objects: Vec<Object>,
) -> (
    kube::Client,
    Result<Vec<Applied>, appgear::core::error::Error>,
) {
    let (client, verifier) = mock(script);
    let mut applier = Applier::new(client.clone(), quick());
    let result = applier.apply(objects, &|_| {}).await;
    drop(applier);
    verifier.await.expect("every request was as expected");
    (client, result)
}

/// CRDs first, waited Established; the namespace; then the namespaced objects (ConfigMap,
/// Deployment, then the custom resource), the Deployment waited Available. Every write is a
/// server-side apply as `appgear`, without force.
#[tokio::test]
async fn a_first_apply_goes_in_phases_as_appgear_and_waits() {
    let crd = |rv| {
        object(
            "apiextensions.k8s.io/v1",
            "CustomResourceDefinition",
            "scaledobjects.keda.sh",
            None,
            rv,
            established(),
        )
    };
    let script = vec![
        get(CRD_PATH, 404, not_found()),
        Exchange {
            body: Some(|v| {
                assert_eq!(v["kind"], "CustomResourceDefinition");
                assert_eq!(v["spec"]["names"]["plural"], "scaledobjects");
            }),
            ..apply(CRD_PATH, 201, crd("1"))
        },
        get(CRD_PATH, 200, crd("2")),
        get(NS, 404, not_found()),
        apply(
            NS,
            201,
            object("v1", "Namespace", "ws-demo-factory", None, "3", json!({})),
        ),
        get(CM, 404, not_found()),
        apply(
            CM,
            201,
            object(
                "v1",
                "ConfigMap",
                "settings",
                Some("ws-demo-factory"),
                "4",
                json!(null),
            ),
        ),
        get(DEPLOY, 404, not_found()),
        Exchange {
            body: Some(|v| {
                assert_eq!(
                    v["spec"]["template"]["spec"]["containers"][0]["image"],
                    "codercom/code-server:4.106.3"
                )
            }),
            ..apply(
                DEPLOY,
                201,
                object(
                    "apps/v1",
                    "Deployment",
                    "cde",
                    Some("ws-demo-factory"),
                    "5",
                    json!({}),
                ),
            )
        },
        get(SO, 404, not_found()),
        apply(
            SO,
            201,
            object(
                "keda.sh/v1alpha1",
                "ScaledObject",
                "cde",
                Some("ws-demo-factory"),
                "6",
                json!({}),
            ),
        ),
        get(
            DEPLOY,
            200,
            object(
                "apps/v1",
                "Deployment",
                "cde",
                Some("ws-demo-factory"),
                "7",
                available(),
            ),
        ),
    ];
    let (_, result) = run(script, objects()).await;
    let applied = result.unwrap();
    let words: Vec<(String, &str)> = applied
        .iter()
        .map(|a| (a.object.clone(), a.outcome.word()))
        .collect();
    assert_eq!(
        words,
        vec![
            (
                "CustomResourceDefinition scaledobjects.keda.sh".to_string(),
                "created"
            ),
            ("Namespace ws-demo-factory".to_string(), "created"),
            ("ConfigMap ws-demo-factory/settings".to_string(), "created"),
            ("Deployment ws-demo-factory/cde".to_string(), "created"),
            ("ScaledObject ws-demo-factory/cde".to_string(), "created"),
        ]
    );
}

/// A re-run that finds everything applied: the server stores nothing new, the resourceVersion
/// does not move, and every object is reported unchanged; one that moved is "configured".
#[tokio::test]
async fn a_rerun_changes_nothing_and_says_so() {
    let ns = |rv| object("v1", "Namespace", "ws-demo-factory", None, rv, json!({}));
    let cm = |rv| {
        object(
            "v1",
            "ConfigMap",
            "settings",
            Some("ws-demo-factory"),
            rv,
            json!(null),
        )
    };
    let script = vec![
        get(NS, 200, ns("10")),
        apply(NS, 200, ns("10")),
        get(CM, 200, cm("11")),
        apply(CM, 200, cm("12")),
    ];
    let objects: Vec<Object> = objects()
        .into_iter()
        .filter(|o| o.kind == "Namespace" || o.kind == "ConfigMap")
        .collect();
    let (_, result) = run(script, objects).await;
    let outcomes: Vec<Outcome> = result.unwrap().iter().map(|a| a.outcome).collect();
    assert_eq!(outcomes, vec![Outcome::Unchanged, Outcome::Configured]);
}

fn only(kind: &str) -> Vec<Object> {
    objects().into_iter().filter(|o| o.kind == kind).collect()
}

/// 409: another field manager owns a field appgear sets. The error names the object, the field
/// and the manager, exits 3, and says how to hand the field over on purpose.
#[tokio::test]
async fn a_conflict_names_the_field_and_its_manager() {
    let conflict = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 409, "reason": "Conflict",
        "message": "Apply failed with 1 conflict: conflict with \"kubectl-edit\" using v1: .data.a",
        "details": {"name": "settings", "kind": "configmaps", "causes": [
            {"reason": "FieldManagerConflict", "message": "conflict with \"kubectl-edit\" using v1", "field": ".data.a"}]}});
    let script = vec![
        get(
            CM,
            200,
            object(
                "v1",
                "ConfigMap",
                "settings",
                Some("ws-demo-factory"),
                "1",
                json!(null),
            ),
        ),
        apply(CM, 409, conflict),
    ];
    let (_, result) = run(script, only("ConfigMap")).await;
    let e = result.unwrap_err();
    assert_eq!(e.kind, Kind::NotReady);
    assert_eq!(e.exit_code(), 3);
    assert!(
        e.message.contains("ConfigMap ws-demo-factory/settings"),
        "{}",
        e.message
    );
    assert!(
        e.message
            .contains(".data.a: conflict with \"kubectl-edit\""),
        "{}",
        e.message
    );
    assert!(e
        .hint
        .unwrap()
        .contains("--force-conflicts --field-manager=appgear"));
}

/// 422: the object is invalid. The error names the object, where it came from, the field and
/// why, and exits 2.
#[tokio::test]
async fn an_invalid_object_names_the_field() {
    let invalid = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 422, "reason": "Invalid",
        "message": "Deployment.apps \"cde\" is invalid: spec.template.spec.containers[0].image: Required value",
        "details": {"name": "cde", "group": "apps", "kind": "Deployment", "causes": [
            {"reason": "FieldValueRequired", "message": "Required value", "field": "spec.template.spec.containers[0].image"}]}});
    let script = vec![get(DEPLOY, 404, not_found()), apply(DEPLOY, 422, invalid)];
    let (_, result) = run(script, only("Deployment")).await;
    let e = result.unwrap_err();
    assert_eq!(e.exit_code(), 2);
    assert!(
        e.message
            .contains("Deployment ws-demo-factory/cde (from suite.yaml#1)"),
        "{}",
        e.message
    );
    assert!(
        e.message
            .contains("spec.template.spec.containers[0].image: Required value"),
        "{}",
        e.message
    );
}

/// A Deployment that does not get available in time: the error (exit 4) names it and shows its
/// conditions, its pods' states, the recent events about it and its pods, and the last log
/// lines of the container that is not ready.
#[tokio::test]
async fn a_wait_that_times_out_says_what_is_stuck() {
    let stuck = json!({"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "unavailableReplicas": 1,
        "conditions": [{"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable", "message": "Deployment does not have minimum availability."}]});
    let mut deploy = object(
        "apps/v1",
        "Deployment",
        "cde",
        Some("ws-demo-factory"),
        "2",
        stuck,
    );
    deploy["spec"] = json!({"selector": {"matchLabels": {"app": "cde"}}});
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "cde-7d9-x1", "namespace": "ws-demo-factory"},
        "status": {"phase": "Running", "containerStatuses": [{"name": "code", "ready": false, "restartCount": 4,
            "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 1m20s restarting failed container"}}}]}});
    let event = |name: &str, kind: &str, reason: &str, t: &str| {
        json!({"apiVersion": "v1", "kind": "Event",
        "metadata": {"name": format!("{name}.1"), "namespace": "ws-demo-factory"}, "type": "Warning", "reason": reason,
        "message": format!("{reason} happened"), "lastTimestamp": t, "involvedObject": {"kind": kind, "name": name}})
    };
    let events = json!({"apiVersion": "v1", "kind": "EventList", "metadata": {}, "items": [
        event("cde-7d9-x1", "Pod", "BackOff", "2026-11-30T10:00:02Z"),
        event("unrelated", "Pod", "Nope", "2026-11-30T10:00:03Z"),
        event("cde", "Deployment", "ScalingReplicaSet", "2026-11-30T10:00:01Z")]});

    let (client, verifier) = mock_until_report(deploy, pod, events);
    let mut applier = Applier::new(client, quick());
    let e = applier
        .apply(only("Deployment"), &|_| {})
        .await
        .unwrap_err();
    drop(applier);
    verifier.await.expect("every request was as expected");
    assert_eq!(e.kind, Kind::Unhealthy);
    assert_eq!(e.exit_code(), 4);
    assert!(
        e.message
            .starts_with("Deployment ws-demo-factory/cde is not ready after"),
        "{}",
        e.message
    );
    assert!(e.message.contains("available"), "{}", e.message);
    let detail = e.detail.join("\n");
    for want in [
        "Available=False (MinimumReplicasUnavailable: Deployment does not have minimum availability.)",
        "cde-7d9-x1 Running",
        "code: waiting: CrashLoopBackOff (back-off 1m20s restarting failed container), 4 restarts",
        "Warning ScalingReplicaSet deployment/cde: ScalingReplicaSet happened",
        "Warning BackOff pod/cde-7d9-x1: BackOff happened",
        "last log lines of cde-7d9-x1 (code):",
        "  panic: cannot open /home/coder/.config",
    ] {
        assert!(detail.contains(want), "missing {want:?} in:\n{detail}");
    }
    assert!(!detail.contains("unrelated"), "{detail}");
    assert!(e
        .hint
        .unwrap()
        .contains("kubectl -n ws-demo-factory describe deployment cde"));
}

/// A mock for the timeout test: answers the apply, then the object's GETs for as long as the
/// wait polls, then checks the report's requests (pods by the Deployment's selector, events,
/// the log of the container that is not ready, 20 lines).
fn mock_until_report(
    deploy: Value,
    pod: Value,
    events: Value,
) -> (kube::Client, tokio::task::JoinHandle<()>) {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let verifier = tokio::spawn(async move {
        let ok = |v: &Value| {
            Response::builder()
                .status(200)
                .body(Body::from(serde_json::to_vec(v).unwrap()))
                .unwrap()
        };
        let (r, send) = handle.next_request().await.unwrap();
        assert_eq!((r.method(), r.uri().path()), (&Method::GET, DEPLOY));
        send.send_response(
            Response::builder()
                .status(404)
                .body(Body::from(serde_json::to_vec(&not_found()).unwrap()))
                .unwrap(),
        );
        let (r, send) = handle.next_request().await.unwrap();
        assert_eq!((r.method(), r.uri().path()), (&Method::PATCH, DEPLOY));
        send.send_response(ok(&deploy));
        let mut polls = 0;
        loop {
            let (r, send) = handle.next_request().await.expect("the report's requests");
            if r.uri().path() == DEPLOY {
                assert_eq!(r.method(), Method::GET);
                polls += 1;
                send.send_response(ok(&deploy));
                continue;
            }
            assert!(polls >= 1, "the object was looked at before the report");
            assert_eq!(r.uri().path(), "/api/v1/namespaces/ws-demo-factory/pods");
            assert!(
                r.uri()
                    .query()
                    .unwrap_or("")
                    .contains("labelSelector=app%3Dcde"),
                "{:?}",
                r.uri().query()
            );
            send.send_response(ok(
                &json!({"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": [pod]}),
            ));
            break;
        }
        let (r, send) = handle.next_request().await.unwrap();
        assert_eq!(r.uri().path(), "/api/v1/namespaces/ws-demo-factory/events");
        send.send_response(ok(&events));
        let (r, send) = handle.next_request().await.unwrap();
        assert_eq!(
            r.uri().path(),
            "/api/v1/namespaces/ws-demo-factory/pods/cde-7d9-x1/log"
        );
        let q = r.uri().query().unwrap_or("").to_string();
        assert!(
            q.contains("container=code") && q.contains("tailLines=20"),
            "{q}"
        );
        send.send_response(
            Response::builder()
                .status(200)
                .body(Body::from(
                    "starting\npanic: cannot open /home/coder/.config\n"
                        .as_bytes()
                        .to_vec(),
                ))
                .unwrap(),
        );
    });
    (kube::Client::new(service, "default"), verifier)
}

/// A kind that is neither built in nor defined by a CRD among what is applied is refused before
/// any request: nothing is half-applied.
#[tokio::test]
async fn an_unknown_kind_is_refused_before_anything_is_applied() {
    let (_, result) = run(vec![], manifests::split(SUITE, "suite.yaml").unwrap()).await;
    let e = result.unwrap_err();
    assert_eq!(e.exit_code(), 2);
    assert!(
        e.message.contains("ScaledObject ws-demo-factory/cde"),
        "{}",
        e.message
    );
}

/// Every kind `cluster up` applies (every add-on of ../shared/vendor and the suite with a
/// workspace) maps to an API path: built in, or defined by a CRD applied before it.
#[test]
fn every_kind_cluster_up_applies_has_a_path() {
    use appgear::topology_b::addons::Addon;
    use appgear::topology_b::api::resources::Resources;
    use appgear::topology_b::cache::Cache;
    use appgear::topology_b::mirror::{FileSource, Folder};
    use appgear::topology_b::supply::{self, Offline};
    let shared = std::env::var_os("APPGEAR_SHARED")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared"));
    let home = tempfile::tempdir().unwrap();
    let mirror = Folder(shared.join("vendor"));
    let mut all = Vec::new();
    for name in [
        "local-path-provisioner",
        "kong",
        "prometheus",
        "keda",
        "keda-http-add-on",
    ] {
        let s = supply::supply(
            Addon::named(name).unwrap(),
            Some(&mirror as &dyn FileSource),
            &Cache::in_home(home.path()),
            &Offline,
        )
        .unwrap();
        all.extend(s.objects);
    }
    let suite = appgear::gitops::model::Suite::new(
        "ag-local-core-dev",
        "https://git.example.com/s.git",
        "main",
        "factory.dev.appgear.local",
        &[appgear::gitops::model::WorkspaceEntry {
            id: "demo".into(),
            tenant: "acme".into(),
        }],
    )
    .unwrap();
    all.extend(appgear::topology_b::suite::objects(&suite, false).unwrap());
    let mut r = Resources::default();
    r.learn(&all);
    let unknown: Vec<String> = all
        .iter()
        .filter(|o| r.of(o).is_err())
        .map(|o| format!("{} {}", o.api_version, o.kind))
        .collect();
    assert!(unknown.is_empty(), "no path for: {unknown:?}");
}

/// A finished stage is added to the record in the cluster (ConfigMap kube-system/appgear-stages)
/// with the entries already there: server-side apply would drop the keys appgear stopped sending.
#[tokio::test]
async fn a_finished_stage_is_added_to_the_record_keeping_the_others() {
    use appgear::topology_b::cluster::record;
    const RECORD: &str = "/api/v1/namespaces/kube-system/configmaps/appgear-stages";
    let cm = |rv: &str, data: Value| {
        let mut o = object(
            "v1",
            "ConfigMap",
            "appgear-stages",
            Some("kube-system"),
            rv,
            json!(null),
        );
        o["data"] = data;
        o
    };
    let before = cm("1", json!({"local-path-provisioner": "v0.0.37"}));
    let script = vec![
        get(RECORD, 200, before.clone()),
        get(RECORD, 200, before),
        Exchange {
            body: Some(|v| {
                assert_eq!(
                    v["data"],
                    json!({"local-path-provisioner": "v0.0.37", "kong": "0.24.0"})
                );
            }),
            ..apply(
                RECORD,
                200,
                cm(
                    "2",
                    json!({"local-path-provisioner": "v0.0.37", "kong": "0.24.0"}),
                ),
            )
        },
    ];
    let (client, verifier) = mock(script);
    let mut applier = Applier::new(client.clone(), quick());
    record::mark(&client, &mut applier, record::entries_for_pins(&["kong"]))
        .await
        .unwrap();
    drop(applier);
    drop(client);
    verifier.await.expect("every request was as expected");
}

//! When is an applied object done? Pure predicates over objects as the API returns them
//! (`serde_json::Value`), following `kubectl rollout status` and `kubectl wait`:
//!
//! | kind | ready when |
//! |---|---|
//! | Deployment | the controller saw the latest generation, every replica is updated and available, no old ones are left, condition `Available` |
//! | StatefulSet | latest generation seen, every replica ready, the rolling update finished (`updateRevision` = `currentRevision`, or the partition reached) |
//! | DaemonSet | latest generation seen, every scheduled pod updated and available |
//! | Job | condition `Complete`; `Failed` (or `FailureTarget`) fails with its reason |
//! | CustomResourceDefinition | condition `Established`; `NamesAccepted=False` fails |
//! | Argo CD Application | sync `Synced` and health `Healthy`; a failed sync operation fails |
//!
//! `Waiting` says what is missing, so a wait that times out can say why.

use serde_json::Value;

/// Where an object stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    Waiting(String),
    /// It will not get ready by waiting longer.
    Failed(String),
}

use Readiness::{Failed, Ready, Waiting};

/// The readiness of any object; `None` for kinds that have nothing to wait for (ConfigMap,
/// Service, RBAC, ...).
pub fn readiness(object: &Value) -> Option<Readiness> {
    let api_version = object.get("apiVersion").and_then(Value::as_str)?;
    let group = api_version.split_once('/').map_or("", |(g, _)| g);
    let kind = object.get("kind").and_then(Value::as_str)?;
    Some(match (group, kind) {
        ("apps", "Deployment") => deployment(object),
        ("apps", "StatefulSet") => stateful_set(object),
        ("apps", "DaemonSet") => daemon_set(object),
        ("batch", "Job") => job(object),
        ("apiextensions.k8s.io", "CustomResourceDefinition") => crd(object),
        ("argoproj.io", "Application") => application(object),
        _ => return None,
    })
}

fn int(v: &Value, pointer: &str) -> Option<i64> {
    v.pointer(pointer).and_then(Value::as_i64)
}

fn text<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

/// The condition of `type` in `status.conditions`.
fn condition<'a>(v: &'a Value, kind: &str) -> Option<&'a Value> {
    v.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(kind))
}

fn is_true(c: Option<&Value>) -> bool {
    c.and_then(|c| c.get("status")).and_then(Value::as_str) == Some("True")
}

fn is_false(c: Option<&Value>) -> bool {
    c.and_then(|c| c.get("status")).and_then(Value::as_str) == Some("False")
}

/// `reason: message` of a condition, or what is there of it.
fn explain(c: &Value) -> String {
    let reason = c.get("reason").and_then(Value::as_str).unwrap_or("");
    let message = c.get("message").and_then(Value::as_str).unwrap_or("");
    match (reason.is_empty(), message.is_empty()) {
        (false, false) => format!("{reason}: {message}"),
        (false, true) => reason.to_string(),
        (true, false) => message.to_string(),
        (true, true) => "no reason given".to_string(),
    }
}

/// Waiting while the controller has not seen the latest spec: every status field would describe
/// the previous one.
fn generation_seen(v: &Value) -> Option<Readiness> {
    let generation = int(v, "/metadata/generation")?;
    let observed = int(v, "/status/observedGeneration").unwrap_or(0);
    (observed < generation).then(|| {
        Waiting(format!(
            "the controller has not seen generation {generation} yet (observed {observed})"
        ))
    })
}

pub fn deployment(v: &Value) -> Readiness {
    if let Some(w) = generation_seen(v) {
        return w;
    }
    if let Some(c) = condition(v, "Progressing") {
        if c.get("reason").and_then(Value::as_str) == Some("ProgressDeadlineExceeded") {
            return Failed(format!("rollout stopped: {}", explain(c)));
        }
    }
    // Pods refused (quota, admission): say so rather than only counting replicas. It may pass
    // (a quota freed), so it is a reason to wait, not a failure.
    if let Some(c) = condition(v, "ReplicaFailure").filter(|c| is_true(Some(c))) {
        return Waiting(format!("cannot create pods: {}", explain(c)));
    }
    let wanted = int(v, "/spec/replicas").unwrap_or(1);
    let replicas = int(v, "/status/replicas").unwrap_or(0);
    let updated = int(v, "/status/updatedReplicas").unwrap_or(0);
    let available = int(v, "/status/availableReplicas").unwrap_or(0);
    if updated < wanted {
        return Waiting(format!("{updated} of {wanted} replicas updated"));
    }
    if replicas > updated {
        return Waiting(format!(
            "{} old replicas are pending termination",
            replicas - updated
        ));
    }
    if available < updated {
        return Waiting(format!(
            "{available} of {updated} updated replicas available"
        ));
    }
    let avail = condition(v, "Available");
    if !is_true(avail) {
        let why = avail
            .map(explain)
            .unwrap_or_else(|| "no Available condition yet".into());
        return Waiting(format!("not Available: {why}"));
    }
    Ready
}

pub fn stateful_set(v: &Value) -> Readiness {
    if let Some(w) = generation_seen(v) {
        return w;
    }
    let wanted = int(v, "/spec/replicas").unwrap_or(1);
    let ready = int(v, "/status/readyReplicas").unwrap_or(0);
    if ready < wanted {
        return Waiting(format!("{ready} of {wanted} pods ready"));
    }
    if text(v, "/spec/updateStrategy/type").unwrap_or("RollingUpdate") != "RollingUpdate" {
        // OnDelete: pods are replaced by hand; there is no rollout to wait for.
        return Ready;
    }
    if let Some(partition) = int(v, "/spec/updateStrategy/rollingUpdate/partition") {
        let updated = int(v, "/status/updatedReplicas").unwrap_or(0);
        let want = (wanted - partition).max(0);
        return if updated < want {
            Waiting(format!(
                "{updated} of {want} pods updated (partition {partition})"
            ))
        } else {
            Ready
        };
    }
    let update = text(v, "/status/updateRevision");
    let current = text(v, "/status/currentRevision");
    if update.is_some() && update != current {
        let updated = int(v, "/status/updatedReplicas").unwrap_or(0);
        return Waiting(format!(
            "rolling update: {updated} of {wanted} pods at revision {}",
            update.unwrap_or_default()
        ));
    }
    Ready
}

pub fn daemon_set(v: &Value) -> Readiness {
    if let Some(w) = generation_seen(v) {
        return w;
    }
    let desired = int(v, "/status/desiredNumberScheduled").unwrap_or(0);
    let updated = int(v, "/status/updatedNumberScheduled").unwrap_or(0);
    let available = int(v, "/status/numberAvailable").unwrap_or(0);
    if text(v, "/spec/updateStrategy/type").unwrap_or("RollingUpdate") == "RollingUpdate"
        && updated < desired
    {
        return Waiting(format!("{updated} of {desired} pods updated"));
    }
    if available < desired {
        return Waiting(format!("{available} of {desired} pods available"));
    }
    Ready
}

pub fn job(v: &Value) -> Readiness {
    if is_true(condition(v, "Complete")) {
        return Ready;
    }
    // FailureTarget comes first (Kubernetes 1.31+), while the Job's pods are still being
    // terminated; the Job will be Failed, so there is nothing to wait for.
    for kind in ["Failed", "FailureTarget"] {
        if let Some(c) = condition(v, kind).filter(|c| is_true(Some(c))) {
            return Failed(format!("the Job failed: {}", explain(c)));
        }
    }
    if let Some(c) = condition(v, "Suspended").filter(|c| is_true(Some(c))) {
        return Waiting(format!("the Job is suspended: {}", explain(c)));
    }
    let completions = int(v, "/spec/completions").unwrap_or(1);
    let succeeded = int(v, "/status/succeeded").unwrap_or(0);
    let active = int(v, "/status/active").unwrap_or(0);
    let failed = int(v, "/status/failed").unwrap_or(0);
    let mut w = format!("{succeeded} of {completions} completions, {active} running");
    if failed > 0 {
        let limit = int(v, "/spec/backoffLimit").unwrap_or(6);
        w.push_str(&format!(", {failed} failed (backoff limit {limit})"));
    }
    Waiting(w)
}

pub fn crd(v: &Value) -> Readiness {
    let names = condition(v, "NamesAccepted");
    if is_false(names) {
        return Failed(format!(
            "its names are not accepted: {}",
            names.map(explain).unwrap_or_default()
        ));
    }
    let established = condition(v, "Established");
    if is_true(established) {
        Ready
    } else {
        Waiting(format!(
            "not Established yet{}",
            established
                .map(|c| format!(": {}", explain(c)))
                .unwrap_or_default()
        ))
    }
}

pub fn application(v: &Value) -> Readiness {
    // A sync operation that ended in failure does not fix itself: the rendered tree must change.
    let phase = text(v, "/status/operationState/phase");
    if matches!(phase, Some("Failed") | Some("Error")) {
        let message = text(v, "/status/operationState/message").unwrap_or("no message");
        return Failed(format!("sync {}: {message}", phase.unwrap_or_default()));
    }
    // Argo CD reports spec and comparison problems as conditions whose type ends in Error.
    if let Some(conds) = v.pointer("/status/conditions").and_then(Value::as_array) {
        for c in conds {
            let kind = c.get("type").and_then(Value::as_str).unwrap_or("");
            if kind.ends_with("Error") {
                let message = c.get("message").and_then(Value::as_str).unwrap_or("");
                return Failed(format!("{kind}: {message}"));
            }
        }
    }
    let sync = text(v, "/status/sync/status").unwrap_or("Unknown");
    let health = text(v, "/status/health/status").unwrap_or("Unknown");
    if sync == "Synced" && health == "Healthy" {
        return Ready;
    }
    // Degraded is reported while pods start, too: keep waiting, and let a timeout say it.
    let why = text(v, "/status/health/message")
        .map(|m| format!(" ({m})"))
        .unwrap_or_default();
    Waiting(format!("sync {sync}, health {health}{why}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Value {
        serde_json::from_str(json).unwrap()
    }

    /// `kubectl get deployment keda-operator -n keda -o json`, trimmed to metadata and status,
    /// after a fresh install that finished.
    const DEPLOYMENT_READY: &str = r#"{
      "apiVersion": "apps/v1", "kind": "Deployment",
      "metadata": {"name": "keda-operator", "namespace": "keda", "generation": 1,
                   "uid": "3f1f2a8e-8c1b-4a4e-9d1e-1c2b3a4d5e6f", "resourceVersion": "1234"},
      "spec": {"replicas": 1, "progressDeadlineSeconds": 600},
      "status": {
        "observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "readyReplicas": 1,
        "availableReplicas": 1,
        "conditions": [
          {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
           "message": "Deployment has minimum availability.",
           "lastTransitionTime": "2026-11-30T10:00:41Z", "lastUpdateTime": "2026-11-30T10:00:41Z"},
          {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable",
           "message": "ReplicaSet \"keda-operator-5d8f7c6b9d\" has successfully progressed.",
           "lastTransitionTime": "2026-11-30T10:00:12Z", "lastUpdateTime": "2026-11-30T10:00:41Z"}
        ]
      }
    }"#;

    #[test]
    fn deployment_rollout() {
        assert_eq!(readiness(&parse(DEPLOYMENT_READY)), Some(Ready));

        // Just applied: the controller has not written a status for generation 2 yet.
        let mut v = parse(DEPLOYMENT_READY);
        v["metadata"]["generation"] = 2.into();
        assert_eq!(
            deployment(&v),
            Waiting("the controller has not seen generation 2 yet (observed 1)".into())
        );

        // Image pull in progress: new pod not ready, old one still serving.
        let rolling = parse(
            r#"{"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "kong-gateway", "namespace": "kong", "generation": 2},
                "spec": {"replicas": 1},
                "status": {"observedGeneration": 2, "replicas": 2, "updatedReplicas": 1,
                           "readyReplicas": 1, "availableReplicas": 1, "unavailableReplicas": 1,
                           "conditions": [{"type": "Available", "status": "True"},
                                          {"type": "Progressing", "status": "True",
                                           "reason": "ReplicaSetUpdated"}]}}"#,
        );
        assert_eq!(
            deployment(&rolling),
            Waiting("1 old replicas are pending termination".into())
        );

        // First install, pod not ready yet.
        let fresh = parse(
            r#"{"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "core-prometheus", "namespace": "observability", "generation": 1},
                "spec": {"replicas": 1},
                "status": {"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1,
                           "unavailableReplicas": 1,
                           "conditions": [{"type": "Available", "status": "False",
                                           "reason": "MinimumReplicasUnavailable",
                                           "message": "Deployment does not have minimum availability."}]}}"#,
        );
        assert_eq!(
            deployment(&fresh),
            Waiting("0 of 1 updated replicas available".into())
        );

        let stuck = parse(
            r#"{"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "web", "generation": 3},
                "spec": {"replicas": 1},
                "status": {"observedGeneration": 3, "replicas": 1, "updatedReplicas": 0,
                           "conditions": [{"type": "Progressing", "status": "False",
                                           "reason": "ProgressDeadlineExceeded",
                                           "message": "ReplicaSet \"web-7c9\" has timed out progressing."}]}}"#,
        );
        assert_eq!(
            deployment(&stuck),
            Failed("rollout stopped: ProgressDeadlineExceeded: ReplicaSet \"web-7c9\" has timed out progressing.".into())
        );

        let refused = parse(
            r#"{"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "web", "generation": 1},
                "spec": {"replicas": 1},
                "status": {"observedGeneration": 1, "replicas": 0,
                           "conditions": [{"type": "ReplicaFailure", "status": "True",
                                           "reason": "FailedCreate",
                                           "message": "pods \"web-7c9-x\" is forbidden: exceeded quota: compute"}]}}"#,
        );
        assert_eq!(
            deployment(&refused),
            Waiting("cannot create pods: FailedCreate: pods \"web-7c9-x\" is forbidden: exceeded quota: compute".into())
        );

        // Scaled to zero by KEDA: nothing to wait for.
        let zero = parse(
            r#"{"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "addon-factory-vscode", "generation": 4},
                "spec": {"replicas": 0},
                "status": {"observedGeneration": 4,
                           "conditions": [{"type": "Available", "status": "True",
                                           "reason": "MinimumReplicasAvailable"}]}}"#,
        );
        assert_eq!(deployment(&zero), Ready);
    }

    #[test]
    fn statefulset_rollout() {
        let ready = parse(
            r#"{"apiVersion": "apps/v1", "kind": "StatefulSet",
                "metadata": {"name": "core-redis", "namespace": "appgear-core", "generation": 1},
                "spec": {"replicas": 1, "updateStrategy": {"type": "RollingUpdate",
                         "rollingUpdate": {"partition": 0}}},
                "status": {"observedGeneration": 1, "replicas": 1, "readyReplicas": 1,
                           "currentReplicas": 1, "updatedReplicas": 1, "availableReplicas": 1,
                           "currentRevision": "core-redis-6c8d9f7b5", "updateRevision": "core-redis-6c8d9f7b5",
                           "collisionCount": 0}}"#,
        );
        assert_eq!(readiness(&ready), Some(Ready));

        let mut updating = ready.clone();
        updating["spec"]["updateStrategy"] = serde_json::json!({"type": "RollingUpdate"});
        updating["status"]["updateRevision"] = "core-redis-7f9e8a6c4".into();
        updating["status"]["updatedReplicas"] = 0.into();
        assert_eq!(
            stateful_set(&updating),
            Waiting("rolling update: 0 of 1 pods at revision core-redis-7f9e8a6c4".into())
        );

        let mut starting = ready.clone();
        starting["status"]["readyReplicas"] = 0.into();
        assert_eq!(stateful_set(&starting), Waiting("0 of 1 pods ready".into()));
    }

    #[test]
    fn daemonset_rollout() {
        let v = parse(
            r#"{"apiVersion": "apps/v1", "kind": "DaemonSet",
                "metadata": {"name": "kindnet", "namespace": "kube-system", "generation": 1},
                "spec": {"updateStrategy": {"type": "RollingUpdate"}},
                "status": {"observedGeneration": 1, "currentNumberScheduled": 1,
                           "desiredNumberScheduled": 1, "numberAvailable": 1, "numberReady": 1,
                           "numberMisscheduled": 0, "updatedNumberScheduled": 1}}"#,
        );
        assert_eq!(readiness(&v), Some(Ready));
        let mut w = v.clone();
        w["status"]["numberAvailable"] = 0.into();
        assert_eq!(daemon_set(&w), Waiting("0 of 1 pods available".into()));
        let mut u = v;
        u["status"]["updatedNumberScheduled"] = 0.into();
        assert_eq!(daemon_set(&u), Waiting("0 of 1 pods updated".into()));
    }

    #[test]
    fn job_complete_failed_or_running() {
        let done = parse(
            r#"{"apiVersion": "batch/v1", "kind": "Job",
                "metadata": {"name": "seed-vault", "namespace": "vault"},
                "spec": {"completions": 1, "backoffLimit": 6},
                "status": {"startTime": "2026-11-30T10:01:00Z", "completionTime": "2026-11-30T10:01:09Z",
                           "succeeded": 1, "ready": 0, "terminating": 0,
                           "conditions": [
                             {"type": "SuccessCriteriaMet", "status": "True", "reason": "CompletionsReached",
                              "message": "Reached expected number of succeeded pods"},
                             {"type": "Complete", "status": "True", "reason": "CompletionsReached",
                              "message": "Reached expected number of succeeded pods"}]}}"#,
        );
        assert_eq!(readiness(&done), Some(Ready));

        let failed = parse(
            r#"{"apiVersion": "batch/v1", "kind": "Job",
                "metadata": {"name": "seed-vault", "namespace": "vault"},
                "spec": {"completions": 1, "backoffLimit": 2},
                "status": {"failed": 3, "ready": 0, "terminating": 0,
                           "conditions": [
                             {"type": "FailureTarget", "status": "True", "reason": "BackoffLimitExceeded",
                              "message": "Job has reached the specified backoff limit"},
                             {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                              "message": "Job has reached the specified backoff limit"}]}}"#,
        );
        assert_eq!(
            job(&failed),
            Failed(
                "the Job failed: BackoffLimitExceeded: Job has reached the specified backoff limit"
                    .into()
            )
        );

        let deadline = parse(
            r#"{"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "b"},
                "status": {"conditions": [{"type": "FailureTarget", "status": "True",
                  "reason": "DeadlineExceeded", "message": "Job was active longer than specified deadline"}]}}"#,
        );
        assert!(matches!(job(&deadline), Failed(m) if m.contains("DeadlineExceeded")));

        let running = parse(
            r#"{"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "b"},
                "spec": {"completions": 1, "backoffLimit": 6},
                "status": {"active": 1, "failed": 1, "ready": 1}}"#,
        );
        assert_eq!(
            job(&running),
            Waiting("0 of 1 completions, 1 running, 1 failed (backoff limit 6)".into())
        );
    }

    #[test]
    fn crd_established_or_names_refused() {
        let established = parse(
            r#"{"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                "metadata": {"name": "scaledobjects.keda.sh", "generation": 1},
                "status": {"acceptedNames": {"kind": "ScaledObject", "plural": "scaledobjects"},
                           "storedVersions": ["v1alpha1"],
                           "conditions": [
                             {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
                              "message": "no conflicts found", "lastTransitionTime": "2026-11-30T10:00:02Z"},
                             {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
                              "message": "the initial names have been accepted",
                              "lastTransitionTime": "2026-11-30T10:00:02Z"}]}}"#,
        );
        assert_eq!(readiness(&established), Some(Ready));

        let fresh = parse(
            r#"{"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                "metadata": {"name": "scaledobjects.keda.sh"}, "status": {"conditions": []}}"#,
        );
        assert_eq!(crd(&fresh), Waiting("not Established yet".into()));

        let clash = parse(
            r#"{"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                "metadata": {"name": "widgets.b.example.com"},
                "status": {"conditions": [
                  {"type": "NamesAccepted", "status": "False", "reason": "KindConflict",
                   "message": "\"Widget\" is already in use"},
                  {"type": "Established", "status": "False", "reason": "NotAccepted",
                   "message": "not all names are accepted"}]}}"#,
        );
        assert_eq!(
            crd(&clash),
            Failed("its names are not accepted: KindConflict: \"Widget\" is already in use".into())
        );
    }

    #[test]
    fn argocd_application_synced_and_healthy() {
        let ok = parse(
            r#"{"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
                "metadata": {"name": "suite-factory", "namespace": "argocd"},
                "status": {
                  "sync": {"status": "Synced", "revision": "9f2c1e0"},
                  "health": {"status": "Healthy", "lastTransitionTime": "2026-11-30T10:05:00Z"},
                  "operationState": {"phase": "Succeeded", "message": "successfully synced (all tasks run)"},
                  "reconciledAt": "2026-11-30T10:05:03Z"}}"#,
        );
        assert_eq!(readiness(&ok), Some(Ready));

        let progressing = parse(
            r#"{"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
                "metadata": {"name": "suite-factory", "namespace": "argocd"},
                "status": {"sync": {"status": "Synced"},
                           "health": {"status": "Progressing",
                                      "message": "Waiting for rollout to finish: 0 of 1 updated replicas are available..."}}}"#,
        );
        assert_eq!(
            application(&progressing),
            Waiting("sync Synced, health Progressing (Waiting for rollout to finish: 0 of 1 updated replicas are available...)".into())
        );

        let failed = parse(
            r#"{"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
                "metadata": {"name": "suite-factory", "namespace": "argocd"},
                "status": {"sync": {"status": "OutOfSync"}, "health": {"status": "Missing"},
                           "operationState": {"phase": "Failed",
                             "message": "one or more objects failed to apply, reason: Ingress.networking.k8s.io \"addon-factory-vscode\" is invalid"}}}"#,
        );
        assert!(
            matches!(application(&failed), Failed(m) if m.starts_with("sync Failed: one or more objects failed to apply"))
        );

        let bad_repo = parse(
            r#"{"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
                "metadata": {"name": "suite-factory"},
                "status": {"sync": {"status": "Unknown"}, "health": {"status": "Healthy"},
                           "conditions": [{"type": "ComparisonError",
                             "message": "Failed to load target state: repository not found",
                             "lastTransitionTime": "2026-11-30T10:05:00Z"}]}}"#,
        );
        assert_eq!(
            application(&bad_repo),
            Failed("ComparisonError: Failed to load target state: repository not found".into())
        );
    }

    #[test]
    fn kinds_without_a_wait() {
        let cm = parse(r#"{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}}"#);
        assert_eq!(readiness(&cm), None);
        let not_apps = parse(
            r#"{"apiVersion": "example.com/v1", "kind": "Deployment", "metadata": {"name": "a"}}"#,
        );
        assert_eq!(readiness(&not_apps), None);
    }
}

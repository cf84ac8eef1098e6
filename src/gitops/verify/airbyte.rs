//! FACTORY004 for the shared Airbyte: every component the chart runs a pod for has cpu and
//! memory limits (M05's policies refuse a pod without them, and the connector pods are many),
//! and KEDA scales only the worker.
//!
//! The component keys and their defaults are those of chart `airbyte` 2.x (V2), the chart the
//! rendered Application pins; `tests/it/gitops_airbyte_chart.rs` renders the real package with
//! the rendered values and finds no container without limits.

use super::finding::{finding, show};
use super::object::{get, get_str, scalar_text, Object};
use super::{Finding, Rule};
use crate::core::yaml::{self, Budget, YamlError};
use serde_norway::Value;

/// The shared Airbyte's name (its Application, and the `app.kubernetes.io/name` of its objects)
/// and namespace.
const AIRBYTE: &str = "addon-factory-airbyte";
const NAMESPACE: &str = "factory-data";

/// An object of the shared Airbyte.
pub(super) fn is_airbyte(o: &Object) -> bool {
    o.app_name() == Some(AIRBYTE)
        || o.namespace() == Some(NAMESPACE)
        || (o.kind == "Namespace" && o.name() == NAMESPACE)
}

/// The chart's components that run pods, as their values keys, and whether they run when
/// `<key>.enabled` is not set (chart 2.2.0's values.yaml).
const COMPONENTS: &[(&str, bool)] = &[
    ("server", true),
    ("worker", true),
    ("workloadLauncher", true),
    ("workloadApiServer", true),
    ("cron", true),
    ("temporal", true),
    ("manifestServer", true),
    ("airbyteBootloader", true),
    ("webapp", false),
    ("connectorRolloutWorker", false),
    ("metrics", false),
    ("temporalUi", false),
    ("keycloak", false),
    ("keycloakSetup", false),
    ("featureflagServer", false),
    ("stiggSidecar", false),
];

/// A Helm values string is parsed again here, so it gets its own bound (the document holding it
/// was bounded as text, not as the YAML inside it); real values are far smaller.
const HELM_VALUES_MAX: Budget = Budget {
    nodes: 200_000,
    bytes: 16 << 20,
};

const HINT: &str = "give each component the chart runs (server, worker, workloadLauncher, workloadApiServer, cron, temporal, manifestServer, airbyteBootloader, and any you enable) resources.limits.cpu and .memory, and the connector pods global.workloads.resources.mainContainer.cpu.limit and .memory.limit";

/// The Helm values of an Argo CD Application as Argo CD passes them to Helm: the `values`
/// string, with `valuesObject` merged over it. None when there are none.
fn helm_values(o: &Object) -> Result<Option<Value>, String> {
    let Some(helm) = get(o.v, &["spec", "source", "helm"]) else {
        return Ok(None);
    };
    let mut values = match helm.get("values").and_then(Value::as_str) {
        None => None,
        Some(s) => match yaml::document::<Value>(s, &mut HELM_VALUES_MAX.clone()) {
            Ok(v) => Some(v),
            Err(YamlError::Syntax(m)) => return Err(format!("its values string is not YAML: {m}")),
            Err(YamlError::TooLarge) => {
                return Err(
                    "its values string is too large once its YAML aliases are expanded".to_string(),
                )
            }
        },
    };
    if let Some(object) = helm.get("valuesObject") {
        match &mut values {
            Some(v) => merge(v, object),
            None => values = Some(object.clone()),
        }
    }
    Ok(values)
}

/// Merge `over` into `base` as Helm merges values files: maps key by key, anything else replaced.
fn merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Mapping(b), Value::Mapping(o)) => {
            for (k, v) in o {
                match b.get_mut(k) {
                    Some(existing) => merge(existing, v),
                    None => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, o) => *b = o.clone(),
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

/// The components without limits, as values keys, in the order of `COMPONENTS`.
fn missing_limits(values: &Value) -> Vec<String> {
    let mut missing: Vec<String> = COMPONENTS
        .iter()
        .filter(|(key, default)| {
            get(values, &[key, "enabled"])
                .and_then(Value::as_bool)
                .unwrap_or(*default)
        })
        .filter(|(key, _)| !has_limits(get(values, &[key, "resources"])))
        .map(|(key, _)| key.to_string())
        .collect();
    // The connector pods: the chart reads each limit from global.workloads.resources.mainContainer
    // and falls back, key by key, to the deprecated global.jobs.resources.limits.
    let connector_limit = |what: &str| {
        get(
            values,
            &[
                "global",
                "workloads",
                "resources",
                "mainContainer",
                what,
                "limit",
            ],
        )
        .or_else(|| get(values, &["global", "jobs", "resources", "limits", what]))
        .and_then(scalar_text)
        .is_some_and(|s| !s.is_empty())
    };
    if !connector_limit("cpu") || !connector_limit("memory") {
        missing.push("global.workloads.resources.mainContainer (the connector pods)".to_string());
    }
    missing
}

pub(super) fn check(o: &Object, out: &mut Vec<Finding>) {
    let is_application = o.kind == "Application"
        && (get_str(o.v, &["spec", "source", "chart"]) == Some("airbyte") || o.name() == AIRBYTE);
    if is_application {
        let problem = match helm_values(o) {
            Err(why) => Some(format!(
                "Airbyte Application's Helm values cannot be read: {why}"
            )),
            Ok(None) => {
                Some("Airbyte Application has no Helm values, so no resource limits".to_string())
            }
            Ok(Some(values)) => {
                let missing = missing_limits(&values);
                (!missing.is_empty()).then(|| {
                    format!(
                        "Airbyte without resource limits for: {}",
                        missing.join(", ")
                    )
                })
            }
        };
        if let Some(message) = problem {
            out.push(finding(Rule::AirbyteResources, o, message, HINT));
        }
    }
    if o.kind == "ScaledObject" && is_airbyte(o) {
        let target = get_str(o.v, &["spec", "scaleTargetRef", "name"]);
        if target != Some("airbyte-worker") {
            out.push(finding(
                Rule::AirbyteResources,
                o,
                format!("KEDA scales Airbyte component {}; only the worker may scale", show(target)),
                "scale only the Deployment airbyte-worker (release airbyte); the other components keep their replicas",
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(text: &str) -> Value {
        serde_norway::from_str(text).unwrap()
    }

    const LIMITS: &str = "{resources: {limits: {cpu: 1, memory: 1Gi}}}";

    fn all_limited() -> String {
        let mut text = String::new();
        for (key, default) in COMPONENTS {
            if *default {
                text.push_str(&format!("{key}: {LIMITS}\n"));
            }
        }
        text + "global: {workloads: {resources: {mainContainer: {cpu: {limit: 2}, memory: {limit: 2Gi}}}}}\n"
    }

    #[test]
    fn every_running_component_and_the_connector_pods_need_limits() {
        assert_eq!(
            missing_limits(&values(&all_limited())),
            Vec::<String>::new()
        );
        let without_cron = all_limited().replace(&format!("cron: {LIMITS}\n"), "");
        assert_eq!(missing_limits(&values(&without_cron)), vec!["cron"]);
        let no_jobs = all_limited().replace("memory: {limit: 2Gi}", "memory: {request: 1Gi}");
        assert_eq!(
            missing_limits(&values(&no_jobs)),
            vec!["global.workloads.resources.mainContainer (the connector pods)"]
        );
    }

    #[test]
    fn an_enabled_component_needs_limits_and_a_disabled_one_does_not() {
        let text = all_limited() + "webapp: {enabled: true}\nmetrics: {enabled: false}\n";
        assert_eq!(missing_limits(&values(&text)), vec!["webapp"]);
        let off = all_limited().replace(&format!("cron: {LIMITS}\n"), "cron: {enabled: false}\n");
        assert_eq!(missing_limits(&values(&off)), Vec::<String>::new());
    }

    #[test]
    fn the_deprecated_jobs_limits_still_count_key_by_key() {
        let text = all_limited().replace(
            "global: {workloads: {resources: {mainContainer: {cpu: {limit: 2}, memory: {limit: 2Gi}}}}}",
            "global: {workloads: {resources: {mainContainer: {cpu: {limit: 2}}}}, jobs: {resources: {limits: {memory: 2Gi}}}}",
        );
        assert_eq!(missing_limits(&values(&text)), Vec::<String>::new());
    }

    #[test]
    fn values_object_is_merged_over_the_values_string() {
        let mut base = values("a: {b: 1, c: 2}\nd: [1]\n");
        merge(&mut base, &values("a: {c: 3}\nd: [2]\ne: 4\n"));
        assert_eq!(base, values("a: {b: 1, c: 3}\nd: [2]\ne: 4\n"));
    }
}

//! How appgear renders each chart add-on: release, namespace, values and the extra `helm
//! template` flags, and what it does to the output (pure).
//!
//! Kong's, Prometheus's and Vault's values are `assets/addons/<name>/values.yaml`; Airbyte's are the
//! values `gitops render` writes into its Argo CD Application (one source of truth: the local
//! cluster runs the chart as Argo CD would).

use crate::core::error::{Error, Result};
use crate::topology_b::addons::Addon;
use crate::topology_b::manifests::Object;
use crate::topology_b::pins::Source;
use serde_json::Value;

const KONG_VALUES: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/assets/addons/kong/values.yaml"
));
const PROMETHEUS_VALUES: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/assets/addons/prometheus/values.yaml"
));
const VAULT_VALUES: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/assets/addons/vault/values.yaml"
));

/// One `helm template` run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipe {
    pub release: String,
    pub namespace: String,
    /// A values file (YAML, or JSON, which is YAML); empty for the chart's defaults.
    pub values: String,
    /// Flags after the common `--namespace NS --include-crds`.
    pub args: Vec<String>,
}

/// The recipe of a chart add-on from its pin and appgear's values file. Airbyte's comes from
/// the suite instead (`airbyte`).
pub fn recipe(addon: Addon) -> Result<Recipe> {
    let Source::Chart {
        release, namespace, ..
    } = addon.0.source
    else {
        return Err(Error::internal(format!(
            "{} is not a chart add-on",
            addon.name()
        )));
    };
    let (values, args): (&str, &[&str]) = match addon.name() {
        // Without a cluster, helm's default capabilities lack networking.k8s.io/v1
        // IngressClass, and the chart then silently leaves the IngressClass out.
        "kong" => (
            KONG_VALUES,
            &["--api-versions", "networking.k8s.io/v1/IngressClass"],
        ),
        "prometheus" => (PROMETHEUS_VALUES, &[]),
        // The chart's helm-test pod is of no use in an applied render.
        "vault" => (VAULT_VALUES, &["--skip-tests"]),
        // A chart pinned without values of appgear's renders with the chart's defaults.
        _ => ("", &[]),
    };
    Ok(Recipe {
        release: release.to_string(),
        namespace: namespace.to_string(),
        values: values.to_string(),
        args: args.iter().map(|a| a.to_string()).collect(),
    })
}

/// Airbyte's recipe from the suite's Argo CD Application (`addon-factory-airbyte`): its release
/// name, destination namespace and `valuesObject`, and `--skip-tests` as Argo CD has it. The
/// Application must install the chart and version the pin names.
pub fn airbyte(addon: Addon, application: &Value) -> Result<Recipe> {
    let source = &application["spec"]["source"];
    let helm = &source["helm"];
    let wrong = |what: &str| {
        Error::internal(format!(
            "the suite's Airbyte Application {what}, which {} cannot be rendered from",
            addon.describe()
        ))
    };
    if let Source::Chart { chart, repo, .. } = addon.0.source {
        let same_chart = source["chart"].as_str() == Some(chart)
            && source["targetRevision"].as_str() == Some(addon.version())
            && source["repoURL"].as_str().map(|r| r.trim_end_matches('/'))
                == Some(repo.trim_end_matches('/'));
        if !same_chart {
            return Err(wrong(&format!(
                "installs {} {} from {}, not the pinned {chart} {} from {repo}",
                source["chart"],
                source["targetRevision"],
                source["repoURL"],
                addon.version()
            )));
        }
    }
    let release = helm["releaseName"]
        .as_str()
        .ok_or_else(|| wrong("has no spec.source.helm.releaseName"))?;
    let namespace = application["spec"]["destination"]["namespace"]
        .as_str()
        .ok_or_else(|| wrong("has no spec.destination.namespace"))?;
    let values = &helm["valuesObject"];
    if !values.is_object() {
        return Err(wrong("has no spec.source.helm.valuesObject"));
    }
    let mut args = Vec::new();
    if helm["skipTests"].as_bool() == Some(true) {
        args.push("--skip-tests".to_string());
    }
    Ok(Recipe {
        release: release.to_string(),
        namespace: namespace.to_string(),
        values: serde_json::to_string_pretty(values)
            .map_err(|e| Error::internal(format!("Airbyte's values: {e}")))?,
        args,
    })
}

/// Drop repeated objects (same kind, namespace and name), keeping the first. Kong's `ingress`
/// chart holds chart `kong` twice (as `controller` and `gateway`), each with the same `crds/`,
/// so `--include-crds` writes its 12 CRDs twice.
pub fn drop_duplicates(objects: Vec<Object>) -> Vec<Object> {
    let mut seen = std::collections::BTreeSet::new();
    objects
        .into_iter()
        .filter(|o| {
            seen.insert((
                o.group().to_string(),
                o.kind.clone(),
                o.namespace.clone(),
                o.name.clone(),
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn kong_gets_its_ingress_class_flag_and_prometheus_its_values() {
        let kong = recipe(Addon::named("kong").unwrap()).unwrap();
        assert_eq!(
            (kong.release.as_str(), kong.namespace.as_str()),
            ("kong", "kong")
        );
        assert_eq!(
            kong.args,
            ["--api-versions", "networking.k8s.io/v1/IngressClass"]
        );
        let v: serde_json::Value = serde_norway::from_str(&kong.values).unwrap();
        assert_eq!(v["gateway"]["proxy"]["http"]["nodePort"], 30080);
        assert_eq!(
            v["gateway"]["proxy"]["http"]["nodePort"],
            crate::topology_b::kind_config::KONG_HTTP_NODE_PORT
        );
        assert_eq!(
            v["gateway"]["proxy"]["tls"]["nodePort"],
            crate::topology_b::kind_config::KONG_HTTPS_NODE_PORT
        );
        let prom = recipe(Addon::named("prometheus").unwrap()).unwrap();
        assert_eq!(prom.namespace, "observability");
        let v: serde_json::Value = serde_norway::from_str(&prom.values).unwrap();
        assert_eq!(v["server"]["fullnameOverride"], "core-prometheus");
        assert!(recipe(Addon::named("keda").unwrap()).is_err());
    }

    #[test]
    fn airbyte_takes_the_applications_values_and_refuses_another_chart() {
        let airbyte = Addon::named("airbyte").unwrap();
        let mut app = json!({"spec": {
            "source": {"repoURL": "https://airbytehq.github.io/charts", "chart": "airbyte",
                "targetRevision": "2.2.0",
                "helm": {"releaseName": "airbyte", "skipTests": true,
                    "valuesObject": {"global": {"edition": "community"}}}},
            "destination": {"namespace": "factory-data"}}});
        let r = super::airbyte(airbyte, &app).unwrap();
        assert_eq!(r.release, "airbyte");
        assert_eq!(r.namespace, "factory-data");
        assert_eq!(r.args, ["--skip-tests"]);
        let v: serde_json::Value = serde_json::from_str(&r.values).unwrap();
        assert_eq!(v["global"]["edition"], "community");
        app["spec"]["source"]["targetRevision"] = json!("2.3.0");
        let e = super::airbyte(airbyte, &app).unwrap_err();
        assert!(
            e.message.contains("not the pinned airbyte 2.2.0"),
            "{}",
            e.message
        );
    }

    #[test]
    fn repeated_objects_are_dropped_keeping_the_first() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: n}\ndata: {v: '1'}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: n}\ndata: {v: '2'}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: m}\n";
        let objects = crate::topology_b::manifests::split(text, "t").unwrap();
        let kept = drop_duplicates(objects);
        assert_eq!(kept.len(), 2);
        assert_eq!(kept[0].value["data"]["v"], "1");
    }
}

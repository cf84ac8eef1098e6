//! Which URL path serves a kind: group/version/kind → the resource's plural and scope.
//!
//! Why not API discovery: discovery is one request per group version (dozens on a cluster with
//! KEDA and Prometheus), must be refreshed after each CRD is established, and is the part of a
//! client most often broken by an unavailable APIService (KEDA's external metrics). appgear only
//! applies kinds it knows: the built-in kinds of Kubernetes 1.35 below, and the custom kinds of
//! the CRDs it applies itself (which say their plural and scope). So the map is built from data
//! already in hand, costs no request, and is the same in the mocked tests as on a cluster. A
//! kind that is neither is refused before anything is applied, naming the object.

use super::super::manifests::Object;
use crate::core::error::{Error, Result};
use serde_json::Value;
use std::collections::BTreeMap;

/// Where a kind is served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: String,
    pub namespaced: bool,
}

impl Resource {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
    /// The collection's path, as kube-rs and kubectl build it.
    pub fn path(&self, namespace: Option<&str>) -> String {
        let base = if self.group.is_empty() {
            format!("/api/{}", self.version)
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        };
        match namespace.filter(|_| self.namespaced) {
            Some(ns) => format!("{base}/namespaces/{ns}/{}", self.plural),
            None => format!("{base}/{}", self.plural),
        }
    }
}

/// (group, kind, plural, namespaced) of the built-in kinds appgear applies or reads
/// (`kubectl api-resources` on Kubernetes 1.35). Any version of the group is accepted: the
/// plural does not change between versions.
const BUILT_IN: &[(&str, &str, &str, bool)] = &[
    ("", "ConfigMap", "configmaps", true),
    ("", "Endpoints", "endpoints", true),
    ("", "Event", "events", true),
    ("", "LimitRange", "limitranges", true),
    ("", "Namespace", "namespaces", false),
    ("", "PersistentVolume", "persistentvolumes", false),
    ("", "PersistentVolumeClaim", "persistentvolumeclaims", true),
    ("", "Pod", "pods", true),
    ("", "ResourceQuota", "resourcequotas", true),
    ("", "Secret", "secrets", true),
    ("", "Service", "services", true),
    ("", "ServiceAccount", "serviceaccounts", true),
    (
        "admissionregistration.k8s.io",
        "MutatingWebhookConfiguration",
        "mutatingwebhookconfigurations",
        false,
    ),
    (
        "admissionregistration.k8s.io",
        "ValidatingWebhookConfiguration",
        "validatingwebhookconfigurations",
        false,
    ),
    (
        "admissionregistration.k8s.io",
        "ValidatingAdmissionPolicy",
        "validatingadmissionpolicies",
        false,
    ),
    (
        "admissionregistration.k8s.io",
        "ValidatingAdmissionPolicyBinding",
        "validatingadmissionpolicybindings",
        false,
    ),
    (
        "apiextensions.k8s.io",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        false,
    ),
    ("apiregistration.k8s.io", "APIService", "apiservices", false),
    ("apps", "DaemonSet", "daemonsets", true),
    ("apps", "Deployment", "deployments", true),
    ("apps", "ReplicaSet", "replicasets", true),
    ("apps", "StatefulSet", "statefulsets", true),
    (
        "autoscaling",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        true,
    ),
    ("batch", "CronJob", "cronjobs", true),
    ("batch", "Job", "jobs", true),
    ("coordination.k8s.io", "Lease", "leases", true),
    ("discovery.k8s.io", "EndpointSlice", "endpointslices", true),
    ("events.k8s.io", "Event", "events", true),
    ("networking.k8s.io", "Ingress", "ingresses", true),
    ("networking.k8s.io", "IngressClass", "ingressclasses", false),
    (
        "networking.k8s.io",
        "NetworkPolicy",
        "networkpolicies",
        true,
    ),
    (
        "policy",
        "PodDisruptionBudget",
        "poddisruptionbudgets",
        true,
    ),
    (
        "rbac.authorization.k8s.io",
        "ClusterRole",
        "clusterroles",
        false,
    ),
    (
        "rbac.authorization.k8s.io",
        "ClusterRoleBinding",
        "clusterrolebindings",
        false,
    ),
    ("rbac.authorization.k8s.io", "Role", "roles", true),
    (
        "rbac.authorization.k8s.io",
        "RoleBinding",
        "rolebindings",
        true,
    ),
    (
        "scheduling.k8s.io",
        "PriorityClass",
        "priorityclasses",
        false,
    ),
    ("storage.k8s.io", "CSIDriver", "csidrivers", false),
    ("storage.k8s.io", "StorageClass", "storageclasses", false),
];

/// The kinds known so far: built-in ones and those of the CRDs learnt.
#[derive(Debug, Clone)]
pub struct Resources {
    /// (group, kind) → (plural, namespaced, served versions; empty = any)
    known: BTreeMap<(String, String), (String, bool, Vec<String>)>,
}

impl Default for Resources {
    fn default() -> Self {
        let known = BUILT_IN
            .iter()
            .map(|(g, k, p, n)| ((g.to_string(), k.to_string()), (p.to_string(), *n, vec![])))
            .collect();
        Resources { known }
    }
}

impl Resources {
    /// Learn the kinds of every CRD among `objects` (applied now or by an earlier stage).
    pub fn learn(&mut self, objects: &[Object]) {
        for o in objects
            .iter()
            .filter(|o| o.group() == "apiextensions.k8s.io" && o.kind == "CustomResourceDefinition")
        {
            let spec = o.value.get("spec");
            let s = |p: &str| spec.and_then(|s| s.pointer(p)).and_then(Value::as_str);
            let (Some(group), Some(kind), Some(plural)) =
                (s("/group"), s("/names/kind"), s("/names/plural"))
            else {
                continue;
            };
            let versions = spec
                .and_then(|s| s.get("versions"))
                .and_then(Value::as_array)
                .map(|vs| {
                    vs.iter()
                        .filter(|v| v.get("served").and_then(Value::as_bool) != Some(false))
                        .filter_map(|v| v.get("name").and_then(Value::as_str).map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            let namespaced = s("/scope") != Some("Cluster");
            self.known.insert(
                (group.to_string(), kind.to_string()),
                (plural.to_string(), namespaced, versions),
            );
        }
    }

    /// Where `api_version`/`kind` is served, or `None` when appgear does not know the kind.
    pub fn find(&self, api_version: &str, kind: &str) -> Option<Resource> {
        let (group, version) = match api_version.split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", api_version),
        };
        let (plural, namespaced, versions) =
            self.known.get(&(group.to_string(), kind.to_string()))?;
        if !versions.is_empty() && !versions.iter().any(|v| v == version) {
            return None;
        }
        Some(Resource {
            group: group.to_string(),
            version: version.to_string(),
            kind: kind.to_string(),
            plural: plural.clone(),
            namespaced: *namespaced,
        })
    }

    /// Where `o` is served; an unknown kind is refused, naming the object.
    pub fn of(&self, o: &Object) -> Result<Resource> {
        self.find(&o.api_version, &o.kind).ok_or_else(|| {
            Error::bad_input(format!(
                "{} ({}, from {}) is of a kind appgear does not know: neither built in nor defined by a CRD it applies",
                o.describe(),
                o.api_version,
                o.origin
            ))
            .hint("check the apiVersion; a custom kind needs its CustomResourceDefinition among what appgear applies, before it")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology_b::manifests::split;

    #[test]
    fn built_in_kinds_map_to_their_paths() {
        let r = Resources::default();
        let d = r.find("apps/v1", "Deployment").unwrap();
        assert_eq!(
            d.path(Some("ns")),
            "/apis/apps/v1/namespaces/ns/deployments"
        );
        let n = r.find("v1", "Namespace").unwrap();
        assert_eq!(n.path(Some("ignored")), "/api/v1/namespaces");
        assert_eq!(
            r.find("v1", "ConfigMap").unwrap().path(Some("a")),
            "/api/v1/namespaces/a/configmaps"
        );
        assert!(r.find("keda.sh/v1alpha1", "ScaledObject").is_none());
    }

    #[test]
    fn crds_teach_their_kinds_plural_scope_and_served_versions() {
        let crd = "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: scaledobjects.keda.sh\nspec:\n  group: keda.sh\n  scope: Namespaced\n  names: {kind: ScaledObject, plural: scaledobjects}\n  versions:\n  - {name: v1alpha1, served: true, storage: true}\n  - {name: v0, served: false, storage: false}\n---\napiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: clustertriggerauthentications.keda.sh\nspec:\n  group: keda.sh\n  scope: Cluster\n  names: {kind: ClusterTriggerAuthentication, plural: clustertriggerauthentications}\n  versions: [{name: v1alpha1, served: true, storage: true}]\n";
        let objects = split(crd, "crds.yaml").unwrap();
        let mut r = Resources::default();
        r.learn(&objects);
        let so = r.find("keda.sh/v1alpha1", "ScaledObject").unwrap();
        assert_eq!(
            so.path(Some("w")),
            "/apis/keda.sh/v1alpha1/namespaces/w/scaledobjects"
        );
        assert!(r.find("keda.sh/v0", "ScaledObject").is_none(), "not served");
        let c = r
            .find("keda.sh/v1alpha1", "ClusterTriggerAuthentication")
            .unwrap();
        assert!(!c.namespaced);

        let cr = split(
            "apiVersion: example.com/v1\nkind: Thing\nmetadata: {name: t, namespace: n}\n",
            "x.yaml",
        )
        .unwrap();
        let e = r.of(&cr[0]).unwrap_err();
        assert!(e.message.contains("Thing n/t"), "{}", e.message);
        assert!(e.message.contains("x.yaml#0"), "{}", e.message);
    }
}

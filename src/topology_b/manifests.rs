//! Multi-document manifests → Kubernetes objects, in the order they are applied.
//!
//! Splitting refuses what the apply could not take or should not trust: YAML anchors and aliases
//! (see `core::yaml::anchors`), documents without apiVersion, kind or metadata.name (server-side apply needs
//! a name), maps with non-string keys, more than `MAX_DOCUMENTS` documents or `MAX_BYTES` bytes.
//!
//! Ordering, in phases:
//!
//! 1. CustomResourceDefinitions, so that the stage can wait for them to be `Established` before
//!    anything uses their kinds;
//! 2. Namespaces;
//! 3. other cluster-scoped objects (PriorityClass, StorageClass, RBAC, IngressClass, ...);
//! 4. namespaced objects, in Helm's install order by kind (ServiceAccounts and Secrets before the
//!    Deployments that mount them, Services before workloads), custom resources last;
//! 5. API registrations: ValidatingWebhookConfiguration, MutatingWebhookConfiguration and
//!    APIService. These route API requests to a Service of the same add-on. Registered before its
//!    Deployment serves, a webhook with `failurePolicy: Fail` refuses every object it matches (the
//!    rest of the add-on's own objects included), and an unavailable APIService breaks discovery
//!    for every client. Registering them last lets the add-on's objects in; the stage then waits
//!    for the add-on's Deployments before anything else is applied. Helm's install order also
//!    puts them last.
//!
//! Within a phase the manifest's own order is kept.

use crate::core::error::{Error, Result};
use crate::core::yaml;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeSet;

/// The largest manifest text accepted (KEDA's, the largest add-on, is 0.8 MiB).
pub const MAX_BYTES: usize = 32 << 20;
/// The most documents in one manifest (KEDA has 24, Kong 29).
pub const MAX_DOCUMENTS: usize = 2000;

/// One Kubernetes object, as the API takes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Object {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub namespace: Option<String>,
    pub value: Value,
    /// Where it came from: `<file>#<document index from 0>`, for error messages.
    pub origin: String,
}

impl Object {
    /// The API group: "" for the core group (`v1`), else the part before '/'.
    pub fn group(&self) -> &str {
        match self.api_version.split_once('/') {
            Some((g, _)) => g,
            None => "",
        }
    }
    /// `Kind namespace/name` or `Kind name`, as a user would look it up.
    pub fn describe(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{} {ns}/{}", self.kind, self.name),
            None => format!("{} {}", self.kind, self.name),
        }
    }
}

/// Split a multi-document manifest into objects, in document order. Empty documents (a lone
/// `---`, comments only) are skipped. A scalar key such as `1:` becomes the string "1", as
/// kubectl reads it; a key that is a list or map is refused.
pub fn split(text: &str, origin: &str) -> Result<Vec<Object>> {
    if text.len() > MAX_BYTES {
        return Err(Error::bad_input(format!(
            "{origin} has {} bytes; appgear reads manifests of at most {} MiB",
            text.len(),
            MAX_BYTES >> 20
        ))
        .hint("split it, or check that it is the pinned add-on's manifest"));
    }
    if let Some(found) = yaml::first_anchor_or_alias(text) {
        return Err(Error::bad_input(format!(
            "{origin} line {} uses a YAML {} ({}{}); appgear does not apply manifests with anchors or aliases",
            found.line,
            found.what,
            if found.what == "anchor" { "&" } else { "*" },
            found.name
        ))
        .hint("write the values out in full (`kubectl kustomize` or `helm template` output never uses them)"));
    }
    let mut out = Vec::new();
    for (index, de) in serde_norway::Deserializer::from_str(text).enumerate() {
        if index >= MAX_DOCUMENTS {
            return Err(Error::bad_input(format!(
                "{origin} has more than {MAX_DOCUMENTS} documents"
            ))
            .hint("check that it is the pinned add-on's manifest"));
        }
        let at = format!("{origin}#{index}");
        let value = Value::deserialize(de).map_err(|e| {
            Error::bad_input(format!("{at} is not a Kubernetes object in YAML: {e}"))
                .hint("fix the document's syntax; keys must be strings")
        })?;
        if value.is_null() {
            continue;
        }
        out.push(object(value, at)?);
    }
    Ok(out)
}

fn text(v: Option<&Value>) -> Option<&str> {
    v.and_then(Value::as_str).filter(|s| !s.is_empty())
}

fn object(value: Value, origin: String) -> Result<Object> {
    let missing = |what: &str| {
        Error::bad_input(format!("{origin} has no {what}")).hint(
            "every document must be a Kubernetes object with apiVersion, kind and metadata.name",
        )
    };
    if !value.is_object() {
        return Err(missing("object (it is a scalar or a list)"));
    }
    let api_version = text(value.get("apiVersion")).ok_or_else(|| missing("apiVersion"))?;
    let kind = text(value.get("kind")).ok_or_else(|| missing("kind"))?;
    let meta = value.get("metadata");
    let name = text(meta.and_then(|m| m.get("name"))).ok_or_else(|| missing("metadata.name"))?;
    let namespace = text(meta.and_then(|m| m.get("namespace"))).map(str::to_string);
    if kind.ends_with("List") && value.get("items").is_some() {
        return Err(Error::bad_input(format!("{origin} is a {kind}"))
            .hint("give the objects as separate YAML documents"));
    }
    Ok(Object {
        api_version: api_version.to_string(),
        kind: kind.to_string(),
        name: name.to_string(),
        namespace,
        origin,
        value,
    })
}

/// The phases of an apply, in order (see the module's documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    Crds,
    Namespaces,
    ClusterScoped,
    Namespaced,
    Registrations,
}

/// Kinds with no namespace, as (group, kind): the built-in ones, plus those of cluster-scoped
/// CRDs learnt from manifests (an add-on applied earlier, or the same manifest).
#[derive(Debug, Clone)]
pub struct ClusterKinds(BTreeSet<(String, String)>);

/// Cluster-scoped kinds of Kubernetes 1.35 (`kubectl api-resources --namespaced=false`).
const BUILT_IN_CLUSTER_KINDS: &[(&str, &str)] = &[
    ("", "Namespace"),
    ("", "Node"),
    ("", "PersistentVolume"),
    ("admissionregistration.k8s.io", "MutatingAdmissionPolicy"),
    (
        "admissionregistration.k8s.io",
        "MutatingAdmissionPolicyBinding",
    ),
    (
        "admissionregistration.k8s.io",
        "MutatingWebhookConfiguration",
    ),
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"),
    (
        "admissionregistration.k8s.io",
        "ValidatingAdmissionPolicyBinding",
    ),
    (
        "admissionregistration.k8s.io",
        "ValidatingWebhookConfiguration",
    ),
    ("apiextensions.k8s.io", "CustomResourceDefinition"),
    ("apiregistration.k8s.io", "APIService"),
    ("certificates.k8s.io", "CertificateSigningRequest"),
    ("certificates.k8s.io", "ClusterTrustBundle"),
    ("flowcontrol.apiserver.k8s.io", "FlowSchema"),
    ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration"),
    ("networking.k8s.io", "IPAddress"),
    ("networking.k8s.io", "IngressClass"),
    ("networking.k8s.io", "ServiceCIDR"),
    ("node.k8s.io", "RuntimeClass"),
    ("rbac.authorization.k8s.io", "ClusterRole"),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
    ("resource.k8s.io", "DeviceClass"),
    ("scheduling.k8s.io", "PriorityClass"),
    ("storage.k8s.io", "CSIDriver"),
    ("storage.k8s.io", "CSINode"),
    ("storage.k8s.io", "StorageClass"),
    ("storage.k8s.io", "VolumeAttachment"),
    ("storage.k8s.io", "VolumeAttributesClass"),
];

impl Default for ClusterKinds {
    fn default() -> Self {
        ClusterKinds(
            BUILT_IN_CLUSTER_KINDS
                .iter()
                .map(|(g, k)| (g.to_string(), k.to_string()))
                .collect(),
        )
    }
}

impl ClusterKinds {
    /// Remember the kinds of every cluster-scoped CRD among `objects`.
    pub fn learn(&mut self, objects: &[Object]) {
        for o in objects.iter().filter(|o| is_crd(o)) {
            let spec = o.value.get("spec");
            let scope = spec.and_then(|s| s.get("scope")).and_then(Value::as_str);
            let group = spec.and_then(|s| s.get("group")).and_then(Value::as_str);
            let kind = spec
                .and_then(|s| s.get("names"))
                .and_then(|n| n.get("kind"))
                .and_then(Value::as_str);
            if let (Some("Cluster"), Some(g), Some(k)) = (scope, group, kind) {
                self.0.insert((g.to_string(), k.to_string()));
            }
        }
    }
    pub fn contains(&self, group: &str, kind: &str) -> bool {
        self.0.contains(&(group.to_string(), kind.to_string()))
    }
}

fn is_crd(o: &Object) -> bool {
    o.group() == "apiextensions.k8s.io" && o.kind == "CustomResourceDefinition"
}

/// The phase an object is applied in.
pub fn phase(o: &Object, cluster: &ClusterKinds) -> Phase {
    match (o.group(), o.kind.as_str()) {
        ("apiextensions.k8s.io", "CustomResourceDefinition") => Phase::Crds,
        ("", "Namespace") => Phase::Namespaces,
        ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration")
        | ("admissionregistration.k8s.io", "MutatingWebhookConfiguration")
        | ("apiregistration.k8s.io", "APIService") => Phase::Registrations,
        (g, k) if cluster.contains(g, k) => Phase::ClusterScoped,
        _ => Phase::Namespaced,
    }
}

/// Helm's install order (helm/pkg/release/util/kind_sorter.go), for kinds within a phase;
/// kinds not listed (custom resources) come after these.
const KIND_ORDER: &[&str] = &[
    "PriorityClass",
    "Namespace",
    "NetworkPolicy",
    "ResourceQuota",
    "LimitRange",
    "PodDisruptionBudget",
    "ServiceAccount",
    "Secret",
    "ConfigMap",
    "StorageClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "CustomResourceDefinition",
    "ClusterRole",
    "ClusterRoleBinding",
    "Role",
    "RoleBinding",
    "Service",
    "DaemonSet",
    "Pod",
    "ReplicationController",
    "ReplicaSet",
    "Deployment",
    "HorizontalPodAutoscaler",
    "StatefulSet",
    "Job",
    "CronJob",
    "IngressClass",
    "Ingress",
    "APIService",
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
];

fn kind_rank(kind: &str) -> usize {
    KIND_ORDER
        .iter()
        .position(|k| *k == kind)
        .unwrap_or(KIND_ORDER.len())
}

/// Order objects for apply (see the module's documentation), refusing an object given twice.
/// `cluster` should already know the CRDs of add-ons applied before; this call learns the CRDs
/// among `objects`.
pub fn order(objects: Vec<Object>, cluster: &mut ClusterKinds) -> Result<Vec<Object>> {
    let mut seen = BTreeSet::new();
    for o in &objects {
        let key = (o.group(), &o.kind, &o.namespace, &o.name);
        if !seen.insert(key) {
            return Err(Error::bad_input(format!(
                "{} is given twice (again at {})",
                o.describe(),
                o.origin
            ))
            .hint("each object may appear once in what appgear applies; remove the duplicate"));
        }
    }
    cluster.learn(&objects);
    let mut ranked: Vec<(Phase, usize, usize, Object)> = objects
        .into_iter()
        .enumerate()
        .map(|(i, o)| (phase(&o, cluster), kind_rank(&o.kind), i, o))
        .collect();
    ranked.sort_by_key(|(p, k, i, _)| (*p, *k, *i));
    Ok(ranked.into_iter().map(|(_, _, _, o)| o).collect())
}

/// Ordered objects grouped by phase, skipping empty phases: each group is applied, then waited
/// for, before the next.
pub fn phases(ordered: &[Object], cluster: &ClusterKinds) -> Vec<(Phase, Vec<Object>)> {
    let mut out: Vec<(Phase, Vec<Object>)> = Vec::new();
    for o in ordered {
        let p = phase(o, cluster);
        match out.last_mut() {
            Some((last, group)) if *last == p => group.push(o.clone()),
            _ => out.push((p, vec![o.clone()])),
        }
    }
    out
}

/// Every image the objects' pod templates run (containers, init and ephemeral containers), each
/// once, in order of appearance.
pub fn images(objects: &[Object]) -> Vec<String> {
    let mut out = Vec::new();
    for o in objects {
        let spec = match o.kind.as_str() {
            "Pod" => o.value.get("spec"),
            "CronJob" => o.value.pointer("/spec/jobTemplate/spec/template/spec"),
            _ => o.value.pointer("/spec/template/spec"),
        };
        let Some(spec) = spec else { continue };
        for list in ["initContainers", "containers", "ephemeralContainers"] {
            for c in spec
                .get(list)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(image) = c.get("image").and_then(Value::as_str) {
                    if !out.iter().any(|i| i == image) {
                        out.push(image.to_string());
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: &str = "\
# leading comment
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: app}
spec:
  template:
    spec:
      initContainers: [{name: init, image: busybox:1.37.0}]
      containers: [{name: web, image: nginx:1.29.0}]
---
apiVersion: v1
kind: Namespace
metadata:
  name: app
---
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  scope: Cluster
  names: {kind: Widget, plural: widgets}
---
apiVersion: example.com/v1
kind: Widget
metadata: {name: w}
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata: {name: hook}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: web, namespace: app}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: reader}
";

    fn kinds(objects: &[Object]) -> Vec<&str> {
        objects.iter().map(|o| o.kind.as_str()).collect()
    }

    #[test]
    fn splits_documents_and_skips_empty_ones() {
        let objects = split(SMALL, "small.yaml").unwrap();
        assert_eq!(
            kinds(&objects),
            [
                "Deployment",
                "Namespace",
                "CustomResourceDefinition",
                "Widget",
                "ValidatingWebhookConfiguration",
                "ServiceAccount",
                "ClusterRole"
            ]
        );
        // The comment before the first `---` is no document; the lone `---` later is one.
        assert_eq!(objects[0].origin, "small.yaml#0");
        assert_eq!(objects[2].origin, "small.yaml#3");
        assert_eq!(objects[0].namespace.as_deref(), Some("app"));
        assert_eq!(objects[0].describe(), "Deployment app/web");
        assert_eq!(objects[1].group(), "");
        assert_eq!(images(&objects), ["busybox:1.37.0", "nginx:1.29.0"]);

        let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {1: x}\n";
        let objects = split(cm, "cm.yaml").unwrap();
        assert_eq!(objects[0].value["data"]["1"], "x");
    }

    #[test]
    fn orders_crds_namespaces_cluster_scoped_namespaced_then_registrations() {
        let mut cluster = ClusterKinds::default();
        let ordered = order(split(SMALL, "small.yaml").unwrap(), &mut cluster).unwrap();
        assert_eq!(
            kinds(&ordered),
            [
                "CustomResourceDefinition",
                "Namespace",
                "ClusterRole",
                "Widget", // cluster-scoped, learnt from its CRD in the same manifest
                "ServiceAccount",
                "Deployment",
                "ValidatingWebhookConfiguration"
            ]
        );
        let groups: Vec<(Phase, usize)> = phases(&ordered, &cluster)
            .iter()
            .map(|(p, g)| (*p, g.len()))
            .collect();
        assert_eq!(
            groups,
            [
                (Phase::Crds, 1),
                (Phase::Namespaces, 1),
                (Phase::ClusterScoped, 2),
                (Phase::Namespaced, 2),
                (Phase::Registrations, 1)
            ]
        );
    }

    #[test]
    fn refuses_aliases_duplicates_and_documents_that_are_not_objects() {
        let e = split("a: &x 1\nb: *x\n", "m.yaml").unwrap_err();
        assert!(
            e.message.contains("line 1 uses a YAML anchor (&x)"),
            "{}",
            e.message
        );

        let twice = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: n}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: n}\n";
        let e = order(
            split(twice, "m.yaml").unwrap(),
            &mut ClusterKinds::default(),
        )
        .unwrap_err();
        assert!(
            e.message
                .contains("ConfigMap n/a is given twice (again at m.yaml#1)"),
            "{}",
            e.message
        );

        for (text, says) in [
            ("kind: ConfigMap\nmetadata: {name: a}\n", "no apiVersion"),
            ("apiVersion: v1\nmetadata: {name: a}\n", "no kind"),
            (
                "apiVersion: v1\nkind: Pod\nmetadata: {generateName: a-}\n",
                "no metadata.name",
            ),
            ("- a\n- b\n", "no object"),
            (
                "apiVersion: v1\nkind: List\nmetadata: {name: l}\nitems: []\n",
                "is a List",
            ),
            (
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {[a]: x}\n",
                "not a Kubernetes object in YAML",
            ),
            ("a: [\n", "not a Kubernetes object in YAML"),
        ] {
            let e = split(text, "m.yaml").unwrap_err();
            assert_eq!(e.kind, crate::core::error::Kind::BadInput);
            assert!(e.message.contains(says), "{text:?}: {}", e.message);
        }
    }

    #[test]
    fn bounds_size_and_document_count() {
        let big = "a".repeat(MAX_BYTES + 1);
        assert!(split(&big, "m.yaml").unwrap_err().message.contains("bytes"));
        let many =
            "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n".repeat(MAX_DOCUMENTS + 1);
        let e = split(&many, "m.yaml").unwrap_err();
        assert!(
            e.message.contains("more than 2000 documents"),
            "{}",
            e.message
        );
    }
}

//! Read-only helpers over a YAML document seen as a Kubernetes object.

use super::load::Doc;
use super::ObjectRef;
use serde_norway::Value;

/// `v[a][b]...`, or None as soon as a step is missing.
pub fn get<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |cur, key| cur.get(*key))
}

pub fn get_str<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    get(v, path).and_then(Value::as_str)
}

/// A scalar as text (numbers and booleans too), as Kubernetes would read an annotation value.
pub fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A Kubernetes object: a mapping with apiVersion and kind. Kustomizations are build input, not
/// objects.
pub struct Object<'a> {
    pub doc: &'a Doc,
    pub v: &'a Value,
    pub kind: &'a str,
    pub api_version: &'a str,
}

impl<'a> Object<'a> {
    pub fn from_doc(doc: &'a Doc) -> Option<Object<'a>> {
        let v = &doc.value;
        let kind = get_str(v, &["kind"])?;
        let api_version = get_str(v, &["apiVersion"])?;
        if kind == "Kustomization" || kind == "Component" {
            return None;
        }
        Some(Object {
            doc,
            v,
            kind,
            api_version,
        })
    }
    pub fn name(&self) -> &'a str {
        get_str(self.v, &["metadata", "name"]).unwrap_or("")
    }
    pub fn namespace(&self) -> Option<&'a str> {
        get_str(self.v, &["metadata", "namespace"])
    }
    pub fn group(&self) -> &'a str {
        self.api_version
            .rsplit_once('/')
            .map(|(g, _)| g)
            .unwrap_or("")
    }
    pub fn label(&self, key: &str) -> Option<&'a str> {
        get(self.v, &["metadata", "labels"])
            .and_then(|l| l.get(key))
            .and_then(Value::as_str)
    }
    pub fn annotation(&self, key: &str) -> Option<String> {
        get(self.v, &["metadata", "annotations"])
            .and_then(|l| l.get(key))
            .and_then(scalar_text)
    }
    pub fn app_name(&self) -> Option<&'a str> {
        self.label("app.kubernetes.io/name")
    }
    pub fn reference(&self) -> ObjectRef {
        ObjectRef {
            kind: self.kind.to_string(),
            namespace: self.namespace().map(str::to_string),
            name: self.name().to_string(),
        }
    }
    /// The pod templates this object runs: (template metadata, pod spec).
    pub fn pod_templates(&self) -> Vec<(Option<&'a Value>, &'a Value)> {
        let template_path: &[&str] = match self.kind {
            "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" => {
                &["spec", "template"]
            }
            "CronJob" => &["spec", "jobTemplate", "spec", "template"],
            "ScaledJob" => &["spec", "jobTargetRef", "template"],
            "Pod" => &[],
            _ => return Vec::new(),
        };
        let Some(t) = get(self.v, template_path) else {
            return Vec::new();
        };
        match t.get("spec") {
            Some(spec) => vec![(t.get("metadata"), spec)],
            None => Vec::new(),
        }
    }
}

/// Every container (init containers included) of a pod spec.
pub fn containers(pod_spec: &Value) -> Vec<&Value> {
    ["initContainers", "containers"]
        .iter()
        .filter_map(|k| pod_spec.get(*k).and_then(Value::as_sequence))
        .flatten()
        .collect()
}

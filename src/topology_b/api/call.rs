//! One resource's API handle, and what its errors mean to the user: shared by apply, wait,
//! status and workspace, so each reads a conflict or an invalid object the same way.

use super::super::manifests::Object;
use super::resources::Resource;
use crate::core::error::{Error, Kind};
use kube::api::{Api, ApiResource, DynamicObject};

/// The field manager appgear applies as.
pub const FIELD_MANAGER: &str = "appgear";

/// The dynamic API of one resource, namespaced when the kind is (in the object's namespace, or
/// the kubeconfig context's as kubectl does).
pub fn api_for(client: &kube::Client, r: &Resource, namespace: Option<&str>) -> Api<DynamicObject> {
    let ar = ApiResource {
        group: r.group.clone(),
        version: r.version.clone(),
        api_version: r.api_version(),
        kind: r.kind.clone(),
        plural: r.plural.clone(),
    };
    match (r.namespaced, namespace) {
        (true, Some(ns)) => Api::namespaced_with(client.clone(), ns, &ar),
        (true, None) => Api::default_namespaced_with(client.clone(), &ar),
        (false, _) => Api::all_with(client.clone(), &ar),
    }
}

/// An API error as the user should read it: a conflict names the fields and their managers, an
/// invalid object names the fields and why; anything else says the API did not answer.
pub fn api_error(o: &Object, e: kube::Error) -> Error {
    let at = format!("{} (from {})", o.describe(), o.origin);
    match e {
        kube::Error::Api(status) if status.code == 409 => {
            let causes = status
                .details
                .as_ref()
                .map(|d| d.causes.clone())
                .unwrap_or_default();
            let conflicts: Vec<String> = causes
                .iter()
                .filter(|c| c.reason == "FieldManagerConflict" || !c.field.is_empty())
                .map(|c| format!("{}: {}", c.field, c.message))
                .collect();
            let summary = if conflicts.is_empty() {
                status.message.clone()
            } else {
                conflicts.join("; ")
            };
            Error::new(
                Kind::NotReady,
                format!("{at} has fields another field manager owns: {}", crate::core::quote::cut(&summary, 400)),
            )
            .hint(format!(
                "appgear does not take fields it does not own; to hand them to appgear, run `kubectl apply --server-side --force-conflicts --field-manager={FIELD_MANAGER}` with this object (`appgear cluster render` writes it), or undo the other change"
            ))
            .cause(kube::Error::Api(status))
        }
        kube::Error::Api(status) if status.code == 422 => {
            let causes = status
                .details
                .as_ref()
                .map(|d| d.causes.clone())
                .unwrap_or_default();
            let fields: Vec<String> = causes
                .iter()
                .map(|c| {
                    if c.field.is_empty() {
                        c.message.clone()
                    } else {
                        format!("{}: {}", c.field, c.message)
                    }
                })
                .collect();
            let summary = if fields.is_empty() {
                status.message.clone()
            } else {
                fields.join("; ")
            };
            Error::bad_input(format!("the API server refused {at} as invalid: {}", crate::core::quote::cut(&summary, 400)))
                .hint("fix that field where the object comes from (a setting, a workspace, or the add-on's pinned manifest); nothing after it was applied")
                .cause(kube::Error::Api(status))
        }
        kube::Error::Api(status) => Error::internal(format!(
            "the API server answered {} to {at}: {}",
            status.code,
            crate::core::quote::cut(&status.message, 400)
        ))
        .hint(
            "run `appgear cluster status`; run `appgear cluster up` again once the cluster answers",
        )
        .cause(kube::Error::Api(status)),
        other => Error::not_ready(format!(
            "the Kubernetes API did not answer for {at}: {other}"
        ))
        .hint(
            "is the cluster running? `appgear cluster status` says; `appgear cluster up` starts it",
        )
        .cause(other),
    }
}

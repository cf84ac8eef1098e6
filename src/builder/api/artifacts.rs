//! Artifact download: `GET /v1/builds/{id}/artifacts` lists what the build's committed attempt
//! stored (name, size, sha256 from its manifest) and `GET /v1/builds/{id}/artifacts/{path}`
//! streams one of them. Read scope.
//!
//! Only the committed attempt is served: the build's current attempt, and only once its
//! `manifest.json` exists (the manifest is written last, so an attempt killed half-way, or a
//! zombie's uploads, are never seen). Only names the manifest lists are served, so a path can
//! never reach another key, whatever it contains.

use crate::builder::api::app::App;
use crate::builder::api::auth::{authorize, Denied};
use crate::builder::config::Scope;
use crate::builder::id::BuildId;
use crate::builder::keys::AttemptKeys;
use crate::builder::manifest::Manifest;
use crate::builder::queue::error::QueueError;
use crate::builder::store::{ObjectStore, StoreError};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use std::sync::Arc;

/// The header carrying an artifact's SHA-256 (from the manifest), so a client checks what it
/// wrote without a second request.
pub const SHA256_HEADER: &str = "x-appgear-sha256";

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        format!("{}\n", json!({ "error": message.into() })),
    )
        .into_response()
}

fn unavailable(what: &str) -> Response {
    let mut r = error(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("the {what} is unavailable; try again"),
    );
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    r
}

fn denied(config: &crate::builder::config::Config, headers: &HeaderMap) -> Option<Response> {
    let h = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match authorize(&config.tokens, h, Scope::Read) {
        Ok(_) => None,
        Err(Denied::Unauthenticated) => {
            let mut r = error(StatusCode::UNAUTHORIZED, "a valid bearer token is required");
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            Some(r)
        }
        Err(Denied::Forbidden { token, scope }) => Some(error(
            StatusCode::FORBIDDEN,
            format!("token {token:?} does not have the {scope:?} scope").to_lowercase(),
        )),
    }
}

/// The manifest of the build's committed attempt, or the answer to give instead.
async fn committed<S: ObjectStore>(app: &App<S>, id: &str) -> Result<Manifest, Response> {
    let Ok(id) = BuildId::parse(id) else {
        return Err(error(
            StatusCode::NOT_FOUND,
            format!("{id:?} is not a build id"),
        ));
    };
    let job = match app.queue.get(&id).await {
        Ok(j) => j,
        Err(QueueError::NotFound(_)) => {
            return Err(error(
                StatusCode::NOT_FOUND,
                format!("build {id} does not exist"),
            ))
        }
        Err(QueueError::Redis(_)) => return Err(unavailable("build queue")),
        Err(e) => return Err(error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
    };
    let keys = AttemptKeys::new(app.queue.workspace(), &id, job.status.attempt);
    let not_yet = || {
        error(
            StatusCode::NOT_FOUND,
            format!(
                "build {id} has no stored attempt yet (it is {})",
                job.status.state
            ),
        )
    };
    let bytes = match app.store.get(&keys.manifest()).await {
        Ok((b, _)) => b,
        Err(StoreError::NotFound(_)) => return Err(not_yet()),
        Err(StoreError::Unavailable(_)) => return Err(unavailable("object store")),
        Err(e) => return Err(error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
    };
    match Manifest::parse(&bytes) {
        // A manifest that is not this build's attempt is not its commit marker.
        Ok(m) if m.build == id.as_str() && m.attempt == job.status.attempt => Ok(m),
        Ok(_) => Err(not_yet()),
        Err(e) => Err(error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the manifest of build {id} cannot be read: {e}"),
        )),
    }
}

/// `{build, attempt, state, reason, artifacts: [{name, size, sha256}]}`.
pub async fn list<S: ObjectStore + 'static>(
    State(app): State<Arc<App<S>>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Some(r) = denied(&app.config, &headers) {
        return r;
    }
    let m = match committed(&app, &id).await {
        Ok(m) => m,
        Err(r) => return r,
    };
    let artifacts: Vec<Value> = m
        .artifacts
        .iter()
        .map(|a| json!({"name": a.name, "size": a.size, "sha256": a.sha256}))
        .collect();
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        format!(
            "{}\n",
            json!({"build": m.build, "attempt": m.attempt, "state": m.state, "reason": m.reason, "artifacts": artifacts})
        ),
    )
        .into_response()
}

/// One artifact's bytes, streamed from the store, with its SHA-256 in `x-appgear-sha256`.
pub async fn download<S: ObjectStore + 'static>(
    State(app): State<Arc<App<S>>>,
    headers: HeaderMap,
    Path((id, name)): Path<(String, String)>,
) -> Response {
    if let Some(r) = denied(&app.config, &headers) {
        return r;
    }
    if !crate::builder::glob::is_safe_relative(&name) {
        return error(
            StatusCode::BAD_REQUEST,
            format!(
                "{name:?} is not an artifact path (a relative path inside the build's outputs)"
            ),
        );
    }
    let m = match committed(&app, &id).await {
        Ok(m) => m,
        Err(r) => return r,
    };
    let Some(a) = m.artifacts.iter().find(|a| a.name == name) else {
        return error(
            StatusCode::NOT_FOUND,
            format!(
                "build {} has no artifact {name:?}; list them with `appgear builder download {} --json`",
                m.build, m.build
            ),
        );
    };
    let opened = match app.store.open(&a.key).await {
        Ok(o) => o,
        Err(StoreError::NotFound(_)) => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("artifact {name:?} is in the manifest but not in the store"),
            )
        }
        Err(StoreError::Unavailable(_)) => return unavailable("object store"),
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let file = name.rsplit('/').next().unwrap_or(&name).replace('"', "");
    let mut r = Response::new(Body::from_stream(opened.body));
    let h = r.headers_mut();
    let ct = if opened.meta.content_type.is_empty() {
        "application/octet-stream".to_string()
    } else {
        opened.meta.content_type.clone()
    };
    for (k, v) in [
        (header::CONTENT_TYPE.as_str(), ct),
        (header::CONTENT_LENGTH.as_str(), opened.size.to_string()),
        (SHA256_HEADER, a.sha256.clone()),
        (
            header::CONTENT_DISPOSITION.as_str(),
            format!("attachment; filename=\"{file}\""),
        ),
    ] {
        if let (Ok(k), Ok(v)) = (
            header::HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(&v),
        ) {
            h.insert(k, v);
        }
    }
    r
}

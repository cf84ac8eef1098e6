//! The HTTP routes. A WebSocket upgrade is a room, whatever its path (a room may well be called
//! `healthz`); plain requests are the health, metrics and lock endpoints, also reachable under
//! the prefix for a proxy that keeps it.

use crate::multiplayer::server::context::Context;
use crate::multiplayer::server::locks_api;
use crate::multiplayer::server::pending::ConnHandle;
use crate::multiplayer::server::registry::Registry;
use crate::multiplayer::server::reply::{not_found, text};
use crate::multiplayer::server::room_path::local_path;
use crate::multiplayer::server::upgrade;
use axum::extract::{ConnectInfo, FromRef, Request, State};
use axum::handler::Handler;
use axum::http::uri::{PathAndQuery, Uri};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use std::sync::Arc;
use std::time::Duration;

const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// The routes' state: handlers take the parts they need (`State<Arc<Context>>`,
/// `State<Arc<Registry>>`).
#[derive(Clone)]
pub struct App {
    ctx: Arc<Context>,
    rooms: Arc<Registry>,
}

impl FromRef<App> for Arc<Context> {
    fn from_ref(app: &App) -> Self {
        app.ctx.clone()
    }
}

impl FromRef<App> for Arc<Registry> {
    fn from_ref(app: &App) -> Self {
        app.rooms.clone()
    }
}

pub fn router(ctx: Arc<Context>, rooms: Arc<Registry>) -> Router {
    let app = App { ctx, rooms };
    let endpoints = Router::new()
        .route("/healthz", any(healthz))
        .route("/readyz", any(readyz))
        .route("/metrics", any(metrics))
        .route_layer(middleware::from_fn(get_only))
        .route("/locks", any(locks_api::locks))
        .fallback(not_found_here)
        .with_state(app.clone());
    // Upgrades are told apart and the prefix is taken off before the endpoints route.
    Router::new()
        .fallback_service(endpoints)
        .layer(middleware::from_fn_with_state(app, rooms_and_prefix))
        .layer(middleware::from_fn(in_request))
}

/// While a request is answered its connection is neither timed nor evicted (see `pending`);
/// once the answer is out it waits for its next request head under a fresh deadline.
async fn in_request(req: Request, next: Next) -> Response {
    let conn = req
        .extensions()
        .get::<ConnectInfo<ConnHandle>>()
        .map(|c| c.0.clone());
    let _answering = conn.map(Answering::start);
    next.run(req).await
}

/// Ends the request's phase when dropped, also if the client went away mid-request.
struct Answering(ConnHandle);

impl Answering {
    fn start(conn: ConnHandle) -> Self {
        conn.request_started();
        Answering(conn)
    }
}

impl Drop for Answering {
    fn drop(&mut self) {
        self.0.request_finished();
    }
}

async fn rooms_and_prefix(State(app): State<App>, req: Request, next: Next) -> Response {
    if wants_websocket(req.headers()) {
        return upgrade::upgrade.call(req, app).await;
    }
    let req = without_prefix(req, &app.ctx.config.path_prefix);
    next.run(req).await
}

fn wants_websocket(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"))
}

/// `/multiplayer/healthz` → `/healthz` (the query kept); other paths as they are.
fn without_prefix(mut req: Request, prefix: &str) -> Request {
    let uri = req.uri();
    let local = local_path(uri.path(), prefix);
    if local.len() == uri.path().len() {
        return req;
    }
    let rewritten = match uri.query() {
        Some(q) => format!("{local}?{q}"),
        None => local.to_string(),
    };
    let mut parts = uri.clone().into_parts();
    // A tail of a valid path and query is one too; if not, the request stays as it came.
    if let Ok(pq) = PathAndQuery::try_from(rewritten) {
        parts.path_and_query = Some(pq);
        if let Ok(uri) = Uri::from_parts(parts) {
            *req.uri_mut() = uri;
        }
    }
    req
}

/// The health and metrics endpoints answer GET only; any other method (HEAD included) gets the
/// 404 of an unknown path, with no `Allow` header.
async fn get_only(req: Request, next: Next) -> Response {
    if req.method() != Method::GET {
        return not_found();
    }
    next.run(req).await
}

async fn not_found_here() -> Response {
    not_found()
}

async fn healthz() -> Response {
    text(StatusCode::OK, "ok\n")
}

async fn readyz(State(ctx): State<Arc<Context>>) -> Response {
    if ctx.stopping() {
        return text(StatusCode::SERVICE_UNAVAILABLE, "stopping\n");
    }
    match tokio::time::timeout(READY_TIMEOUT, ctx.link.ping()).await {
        Ok(Ok(())) => text(StatusCode::OK, "ready\n"),
        Ok(Err(e)) => text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("Redis unreachable: {e}\n"),
        ),
        Err(_) => text(StatusCode::SERVICE_UNAVAILABLE, "Redis did not answer\n"),
    }
}

async fn metrics(State(ctx): State<Arc<Context>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        ctx.metrics.render(ctx.config.workspace.as_str()),
    )
        .into_response()
}

#[cfg(test)]
mod tests;

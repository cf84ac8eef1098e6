//! HTTP routes. WebSocket upgrades under the prefix are rooms; plain requests are the health,
//! metrics and lock endpoints (also reachable under the prefix, for a proxy that keeps it).

use crate::multiplayer::metrics::inc;
use crate::multiplayer::protocol::close::{self, Close};
use crate::multiplayer::redis::backplane::{Envelope, Signal};
use crate::multiplayer::redis::locks::{http_owner, valid_owner, valid_path, EDITOR_OWNER_PREFIX};
use crate::multiplayer::server::context::Context;
use crate::multiplayer::server::registry::Registry;
use crate::multiplayer::server::room_path::{local_path, room_from_path};
use crate::multiplayer::server::session;
use crate::multiplayer::server::slots::Slot;
use crate::multiplayer::token::{self, Claims, TokenError};
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// tungstenite buffers: small per connection; large frames still pass (they are streamed).
const READ_BUFFER: usize = 16 * 1024;
const WRITE_BUFFER: usize = 16 * 1024;
const READY_TIMEOUT: Duration = Duration::from_secs(2);
const MAX_LOCK_TTL: Duration = Duration::from_secs(600);

#[derive(Clone)]
struct App {
    ctx: Arc<Context>,
    rooms: Arc<Registry>,
}

pub fn router(ctx: Arc<Context>, rooms: Arc<Registry>) -> Router {
    Router::new()
        .fallback(dispatch)
        .with_state(App { ctx, rooms })
}

async fn dispatch(State(app): State<App>, req: Request) -> Response {
    let gw = app.ctx.clone();
    let (mut parts, _body) = req.into_parts();
    let upgrade = parts
        .headers
        .get(header::UPGRADE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"));
    if upgrade {
        let path = parts.uri.path().to_string();
        let query = query_params(parts.uri.query());
        let room = room_from_path(&path, &gw.config.path_prefix);
        let Some(room) = room else {
            return text(
                StatusCode::NOT_FOUND,
                "no room here: rooms live under the path prefix\n",
            );
        };
        if gw.stopping() {
            return busy("the gateway is stopping");
        }
        // Taken before the handshake, so a burst cannot pass the limit while earlier
        // connections are still starting; freed when the session ends or the upgrade fails.
        let Some(slot) = gw.slots.try_take() else {
            inc(&gw.metrics.rejected_busy);
            return busy("the gateway is at its connection limit");
        };
        let ws = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
            Ok(ws) => ws,
            Err(rejection) => return rejection.into_response(),
        };
        return upgrade_room(app, ws, room, &query, slot);
    }
    let query = query_params(parts.uri.query());
    let path = local_path(parts.uri.path(), &gw.config.path_prefix).to_string();
    match (parts.method.clone(), path.as_str()) {
        (Method::GET, "/healthz") => text(StatusCode::OK, "ok\n"),
        (Method::GET, "/readyz") => readyz(&gw).await,
        (Method::GET, "/metrics") => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            gw.metrics.render(gw.config.workspace.as_str()),
        )
            .into_response(),
        (_, "/locks") => locks_api(&gw, &parts.method, &parts.headers, &query).await,
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

/// Check the token before the handshake completes; a refused token still completes it so that
/// the client sees a 44xx close code (an HTTP error would make it retry forever).
fn upgrade_room(
    app: App,
    ws: WebSocketUpgrade,
    room: Result<String, ()>,
    query: &HashMap<String, String>,
    slot: Slot,
) -> Response {
    let gw = app.ctx.clone();
    let offered: Vec<String> = ws
        .requested_protocols()
        .filter_map(|h| h.to_str().ok().map(str::to_string))
        .collect();
    let from_protocol = offered.iter().find(|p| token::looks_like_token(p)).cloned();
    let token = from_protocol
        .clone()
        .or_else(|| query.get("token").cloned());
    let verdict: Result<(String, Claims), Close> =
        room.map_err(|_| close::BAD_ROOM).and_then(|room| {
            let t = token.ok_or(close::BAD_TOKEN)?;
            let claims = token::verify(
                &t,
                gw.config.secret.bytes(),
                gw.config.workspace.as_str(),
                token::now_unix(),
            )
            .map_err(|e| match e {
                TokenError::WrongWorkspace => close::FORBIDDEN,
                _ => close::BAD_TOKEN,
            })?;
            Ok((room, claims))
        });
    let max = gw.config.max_message_size;
    let mut ws = ws
        .max_message_size(max)
        .max_frame_size(max)
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER);
    // Echo the protocol that carried the token; otherwise the first one offered, since a client
    // that offered protocols fails the handshake when none is selected.
    if let Some(p) = from_protocol.or_else(|| offered.first().cloned()) {
        if let Ok(v) = HeaderValue::from_str(&p) {
            ws.set_selected_protocol(v);
        }
    }
    match verdict {
        Ok((room, claims)) => ws.on_upgrade(move |socket| async move {
            session::run(socket, gw, app.rooms, room, claims).await;
            drop(slot);
        }),
        Err(why) => {
            inc(&gw.metrics.rejected_bad_token);
            ws.on_upgrade(move |socket| async move {
                session::refuse(socket, why).await;
                drop(slot);
            })
        }
    }
}

async fn readyz(gw: &Context) -> Response {
    if gw.stopping() {
        return text(StatusCode::SERVICE_UNAVAILABLE, "stopping\n");
    }
    match tokio::time::timeout(READY_TIMEOUT, gw.link.ping()).await {
        Ok(Ok(())) => text(StatusCode::OK, "ready\n"),
        Ok(Err(e)) => text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("Redis unreachable: {e}\n"),
        ),
        Err(_) => text(StatusCode::SERVICE_UNAVAILABLE, "Redis did not answer\n"),
    }
}

/// `GET /locks?room=R` lists; `POST /locks?room=R&path=P[&ttl=30s]` takes or renews;
/// `DELETE /locks?room=R&path=P` releases, as `http:<token subject>`. Token as
/// `Authorization: Bearer` or `?token=`.
async fn locks_api(
    gw: &Context,
    method: &Method,
    headers: &HeaderMap,
    q: &HashMap<String, String>,
) -> Response {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_string);
    let Some(t) = bearer.or_else(|| q.get("token").cloned()) else {
        return json_error(
            StatusCode::UNAUTHORIZED,
            "a token is required (Authorization: Bearer <token>)",
        );
    };
    let claims = match token::verify(
        &t,
        gw.config.secret.bytes(),
        gw.config.workspace.as_str(),
        token::now_unix(),
    ) {
        Ok(c) => c,
        Err(TokenError::WrongWorkspace) => {
            return json_error(StatusCode::FORBIDDEN, "token is not for this workspace")
        }
        Err(e) => return json_error(StatusCode::UNAUTHORIZED, &e.to_string()),
    };
    let Some(room) = q.get("room").filter(|r| !r.is_empty()) else {
        return json_error(StatusCode::BAD_REQUEST, "give the room: ?room=<room>");
    };
    if *method == Method::GET {
        return match gw.locks.list(room).await {
            Ok(locks) => json(
                StatusCode::OK,
                serde_json::json!({ "room": room, "locks": locks }),
            ),
            Err(e) => json_error(StatusCode::SERVICE_UNAVAILABLE, &format!("Redis: {e}")),
        };
    }
    if *method != Method::POST && *method != Method::DELETE {
        return json_error(StatusCode::METHOD_NOT_ALLOWED, "use GET, POST or DELETE");
    }
    if claims.ro {
        return json_error(
            StatusCode::FORBIDDEN,
            "a read-only token cannot take or release locks",
        );
    }
    let Some(path) = q.get("path").filter(|p| valid_path(p)) else {
        return json_error(
            StatusCode::BAD_REQUEST,
            "give a lock path: &path=<file path> (no control characters, up to 1 KiB)",
        );
    };
    // The owner is who the token names: a caller cannot act for another holder, and never for
    // an editor (whose locks follow its presence).
    let Some(sub) = claims.sub.as_deref().filter(|s| !s.is_empty()) else {
        return json_error(
            StatusCode::FORBIDDEN,
            "this token names no holder: mint one with `appgear multiplayer token --subject <name>`",
        );
    };
    let owner = http_owner(sub);
    if let Some(asked) = q.get("owner") {
        if asked.starts_with(EDITOR_OWNER_PREFIX) || (asked != sub && *asked != owner) {
            return json_error(
                StatusCode::FORBIDDEN,
                &format!("this token acts as {owner:?} only; leave out &owner="),
            );
        }
    }
    if !valid_owner(&owner) {
        return json_error(
            StatusCode::BAD_REQUEST,
            "the token's subject must be 1-250 printable characters",
        );
    }
    let result = if *method == Method::POST {
        let ttl = match q.get("ttl").map(|t| humantime::parse_duration(t)) {
            None => gw.config.lock_ttl,
            Some(Ok(d)) if d >= Duration::from_millis(500) && d <= MAX_LOCK_TTL => d,
            Some(_) => {
                return json_error(
                    StatusCode::BAD_REQUEST,
                    "ttl must be a duration between 500ms and 10m",
                )
            }
        };
        gw.locks.acquire(room, path, &owner, ttl).await.map(|g| {
            let status = if g.granted {
                StatusCode::OK
            } else {
                StatusCode::CONFLICT
            };
            (
                status,
                serde_json::to_value(&g).unwrap_or_default(),
                g.granted,
            )
        })
    } else {
        gw.locks.release(room, path, &owner).await.map(|released| {
            let status = if released {
                StatusCode::OK
            } else {
                StatusCode::CONFLICT
            };
            (
                status,
                serde_json::json!({ "released": released, "path": path, "owner": owner }),
                released,
            )
        })
    };
    match result {
        Ok((status, body, changed)) => {
            if changed {
                let msg = Envelope {
                    origin: gw.id,
                    signal: Signal::LocksChanged,
                }
                .encode();
                let _ = gw.backplane.publish(room, msg).await;
            }
            json(status, body)
        }
        Err(e) => json_error(StatusCode::SERVICE_UNAVAILABLE, &format!("Redis: {e}")),
    }
}

fn query_params(q: Option<&str>) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for pair in q.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let dec = |s: &str| {
            let plus = s.replace('+', " ");
            crate::multiplayer::server::room_path::percent_decode(plus.as_bytes())
                .and_then(|b| String::from_utf8(b).ok())
        };
        if let (Some(k), Some(v)) = (dec(k), dec(v)) {
            out.insert(k, v);
        }
    }
    out
}

fn text(status: StatusCode, body: impl Into<String>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body.into(),
    )
        .into_response()
}

fn busy(why: &str) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, "1")],
        format!("{why}; try again\n"),
    )
        .into_response()
}

fn json(status: StatusCode, v: serde_json::Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        v.to_string(),
    )
        .into_response()
}

fn json_error(status: StatusCode, msg: &str) -> Response {
    json(status, serde_json::json!({ "error": msg }))
}

//! The lock endpoints: `GET /locks?room=R` lists; `POST /locks?room=R&path=P[&ttl=30s]` takes
//! or renews; `DELETE /locks?room=R&path=P` releases. The caller acts as `http:<token subject>`:
//! it can only change its own locks, never another holder's or an editor's.

use crate::multiplayer::redis::backplane::{Envelope, Signal};
use crate::multiplayer::redis::locks::{http_owner, valid_path, EDITOR_OWNER_PREFIX};
use crate::multiplayer::server::auth::Authenticated;
use crate::multiplayer::server::context::Context;
use crate::multiplayer::server::reply::{json, json_error};
use crate::multiplayer::server::room_path::valid_room;
use crate::multiplayer::token::{valid_subject, SUBJECT_RULE};
use axum::extract::{Query, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

const MIN_LOCK_TTL: Duration = Duration::from_millis(500);
const MAX_LOCK_TTL: Duration = Duration::from_secs(600);

/// Every method comes here, so that an unsupported one is told which to use (after the token
/// and the room are checked, as always).
pub async fn locks(
    method: Method,
    State(ctx): State<Arc<Context>>,
    Authenticated(claims): Authenticated,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    // The rule the room route applies to its path: a lock in a room no editor can join is of
    // no use, and its key would carry whatever the caller sent.
    let Some(room) = q.get("room").filter(|r| valid_room(r)) else {
        return json_error(
            StatusCode::BAD_REQUEST,
            "give the room: ?room=<room> (1 to 1024 bytes, no control characters)",
        );
    };
    if method == Method::GET {
        return match ctx.locks.list(room).await {
            Ok(locks) => json(
                StatusCode::OK,
                serde_json::json!({ "room": room, "locks": locks }),
            ),
            Err(e) => json_error(StatusCode::SERVICE_UNAVAILABLE, &format!("Redis: {e}")),
        };
    }
    if method != Method::POST && method != Method::DELETE {
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
    if !valid_subject(sub) {
        return json_error(
            StatusCode::BAD_REQUEST,
            &format!("the token's subject must be {SUBJECT_RULE}"),
        );
    }
    let owner = http_owner(sub);
    if let Some(asked) = q.get("owner") {
        if asked.starts_with(EDITOR_OWNER_PREFIX) || (asked != sub && *asked != owner) {
            return json_error(
                StatusCode::FORBIDDEN,
                &format!("this token acts as {owner:?} only; leave out &owner="),
            );
        }
    }
    let result = if method == Method::POST {
        let ttl = match q.get("ttl").map(|t| humantime::parse_duration(t)) {
            None => ctx.config.lock_ttl,
            Some(Ok(d)) if (MIN_LOCK_TTL..=MAX_LOCK_TTL).contains(&d) => d,
            Some(_) => {
                return json_error(
                    StatusCode::BAD_REQUEST,
                    "ttl must be a duration between 500ms and 10m",
                )
            }
        };
        ctx.locks.acquire(room, path, &owner, ttl).await.map(|g| {
            let (status, body) = match g.over {
                // A limit, not a holder: nobody to wait for until locks are given back.
                Some(over) => (
                    StatusCode::TOO_MANY_REQUESTS,
                    serde_json::json!({
                        "granted": false,
                        "path": path,
                        "error": format!("not granted: {over}"),
                    }),
                ),
                None => {
                    let status = if g.granted {
                        StatusCode::OK
                    } else {
                        StatusCode::CONFLICT
                    };
                    (status, serde_json::to_value(&g).unwrap_or_default())
                }
            };
            (status, body, g.granted)
        })
    } else {
        ctx.locks.release(room, path, &owner).await.map(|released| {
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
                // Rooms on every replica re-read their lock table.
                let msg = Envelope {
                    origin: ctx.id,
                    signal: Signal::LocksChanged,
                }
                .encode();
                let _ = ctx.backplane.publish(room, msg).await;
            }
            json(status, body)
        }
        Err(e) => json_error(StatusCode::SERVICE_UNAVAILABLE, &format!("Redis: {e}")),
    }
}

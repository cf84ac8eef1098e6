//! The room route: a WebSocket upgrade anywhere under the prefix. Before the handshake the path
//! must name a place for a room (else 404) and a connection slot must be free (else a retryable
//! 503); the room name and the token are judged after it, so that a refused client gets a close
//! code it will not retry, and no byte of the room.

use crate::multiplayer::metrics::inc;
use crate::multiplayer::protocol::close::{self, Close};
use crate::multiplayer::server::auth::editor_claims;
use crate::multiplayer::server::context::Context;
use crate::multiplayer::server::handshake::Handshake;
use crate::multiplayer::server::pending::ConnHandle;
use crate::multiplayer::server::registry::Registry;
use crate::multiplayer::server::reply::{busy, text};
use crate::multiplayer::server::room_path::room_from_path;
use crate::multiplayer::server::session;
use crate::multiplayer::server::slots::Slot;
use crate::multiplayer::token::Claims;
use axum::extract::{ConnectInfo, FromRef, FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use std::collections::HashMap;
use std::sync::Arc;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// tungstenite's read buffer: allocated and zero-filled on the first read, so it is resident for
/// every connection (16 KiB of the 26 KiB an idle connection cost with 16 KiB here). Editors
/// send small frames (an awareness update, a keystroke's update: tens to hundreds of bytes); a
/// large one still passes (the buffer grows to hold it, read this much at a time: a 64 KiB
/// update takes 256 reads).
const READ_BUFFER: usize = 256;
/// How much tungstenite buffers before it writes (a threshold, not an allocation).
const WRITE_BUFFER: usize = 16 * 1024;

/// The WebSocket's limits: a message (one per frame) and a frame may be as large as
/// `--max-message-size`, no larger.
fn socket_config(max_message_size: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .max_message_size(Some(max_message_size))
        .max_frame_size(Some(max_message_size))
}

/// The room a path under the prefix names; `Err` for a name that is not usable (refused with
/// 4400 after the handshake). A path outside the prefix is answered with 404.
pub struct RoomName(Result<String, ()>);

impl<S> FromRequestParts<S> for RoomName
where
    S: Send + Sync,
    Arc<Context>: FromRef<S>,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        let ctx = Arc::<Context>::from_ref(state);
        match room_from_path(parts.uri.path(), &ctx.config.path_prefix) {
            Some(room) => Ok(RoomName(room)),
            None => Err(text(
                StatusCode::NOT_FOUND,
                "no room here: rooms live under the path prefix\n",
            )),
        }
    }
}

/// A connection slot, taken before the handshake so that a burst cannot pass the limit while
/// earlier connections are still starting; freed when the session ends, the upgrade fails, or
/// at once when the upgrade is refused. Refused with a retryable 503 while stopping or at the
/// limit. Also the connection's pending place, which it leaves when it becomes a session.
pub struct Admitted(Slot, Option<ConnHandle>);

impl<S> FromRequestParts<S> for Admitted
where
    S: Send + Sync,
    Arc<Context>: FromRef<S>,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        let ctx = Arc::<Context>::from_ref(state);
        if ctx.stopping() {
            return Err(busy("the gateway is stopping"));
        }
        let conn = parts
            .extensions
            .get::<ConnectInfo<ConnHandle>>()
            .map(|c| c.0.clone());
        match ctx.slots.try_take() {
            Some(slot) => Ok(Admitted(slot, conn)),
            None => {
                inc(&ctx.metrics.rejected_busy);
                Err(busy("the gateway is at its connection limit"))
            }
        }
    }
}

/// Extractors run in this order: room path (404), slot (503), the upgrade itself.
pub async fn upgrade(
    State(ctx): State<Arc<Context>>,
    State(rooms): State<Arc<Registry>>,
    RoomName(room): RoomName,
    Admitted(slot, conn): Admitted,
    ws: Handshake,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let (claims, echo) = editor_claims(&ctx, ws.offered(), query.get("token"));
    let verdict: Result<(String, Claims), Close> = room
        .map_err(|()| close::BAD_ROOM)
        .and_then(|room| Ok((room, claims?)));
    let config = socket_config(ctx.config.max_message_size);
    let protocol = echo.and_then(|p| HeaderValue::from_str(&p).ok());
    match verdict {
        Ok((room, claims)) => {
            // Now, not once the upgrade is done: until then the connection must not be
            // evicted or timed as one waiting for a request.
            if let Some(conn) = conn {
                conn.became_session();
            }
            ws.accept(protocol, config, move |socket| {
                session::start(socket, ctx, rooms, room, claims, slot)
            })
        }
        Err(why) => {
            inc(&ctx.metrics.rejected_bad_token);
            // A refused client is no editor: its close handshake (up to 2 s) must not hold an
            // editor's place, or unauthenticated peers could push editors into 503. It stays
            // among the pending connections until it closes.
            drop(slot);
            ws.accept(protocol, config, move |socket| session::refuse(socket, why))
        }
    }
}

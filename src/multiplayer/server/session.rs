//! One editor connection, in one task: it decodes frames and hands them to the room, drains the
//! connection's bounded queue and carries out close requests.

use crate::multiplayer::metrics::inc;
use crate::multiplayer::protocol::close::{self, Close};
use crate::multiplayer::protocol::codec::{self, DecodeError};
use crate::multiplayer::queue;
use crate::multiplayer::room::link::{Out, Outbox, RoomCmd, SessionLink};
use crate::multiplayer::server::context::Context;
use crate::multiplayer::server::handshake::Socket;
use crate::multiplayer::server::registry::Registry;
use crate::multiplayer::server::slots::Slot;
use crate::multiplayer::token::Claims;
use futures_util::{SinkExt, StreamExt};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc::error::TrySendError;
use tokio::time::{timeout, Instant};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

/// How long to wait for the peer to answer our close frame.
const CLOSE_WAIT: Duration = Duration::from_secs(2);
/// A peer that takes no frame for this long has stopped reading (or its network is gone):
/// holding it would keep its presence and locks alive for nothing.
const WRITE_TIMEOUT: Duration = Duration::from_secs(15);

/// Close right after the handshake (a refused token): nothing of the room is sent.
pub async fn refuse(mut socket: Socket, why: Close) {
    let _ = socket.send(close_message(why)).await;
    let _ =
        tokio::time::timeout(CLOSE_WAIT, async { while socket.next().await.is_some() {} }).await;
}

fn close_message(why: Close) -> Message {
    Message::Close(Some(CloseFrame {
        code: CloseCode::from(why.code),
        reason: why.reason.into(),
    }))
}

/// Join `room` for one editor, then serve it in a task of its own until either side closes.
/// That task does both directions: it decodes inbound frames for the room, and writes the
/// frames the room queued in its [`Outbox`]. (A second task per connection, a channel that
/// allocates room for 32 frames up front and another that told it to close cost more memory
/// per idle connection than the document they serve.)
///
/// A task is as large as its future's largest state, for as long as it lives: joining happens
/// here, in the handshake's short-lived task, and the session's task holds only the socket, one
/// timer and its loop's few futures; closing and waiting for a busy room are boxed.
pub async fn start(
    socket: Socket,
    ctx: Arc<Context>,
    rooms: Arc<Registry>,
    room: String,
    claims: Claims,
    slot: Slot,
) {
    let active = Active::new(ctx);
    inc(&active.0.metrics.connections_total);
    let id = active.0.sessions.take();
    let out = Outbox::new(active.0.config.send_queue);
    let link = SessionLink::new(id, out.clone(), claims.ro);
    match rooms.join(&room, link).await {
        Ok(room_tx) => {
            tokio::spawn(live(socket, active, out, room_tx, id, slot));
        }
        Err(_) => refuse(socket, close::STORAGE_UNAVAILABLE).await,
    }
}

/// Counts a session among the active ones (which a stopping gateway waits for) from its join
/// until its task ends.
struct Active(Arc<Context>);

impl Active {
    fn new(ctx: Arc<Context>) -> Self {
        ctx.metrics.active_sessions.fetch_add(1, Ordering::Relaxed);
        Active(ctx)
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        self.0
            .metrics
            .active_sessions
            .fetch_sub(1, Ordering::Relaxed);
    }
}

/// The session's task. Its connection slot is given back once the connection is closed.
async fn live(
    mut socket: Socket,
    active: Active,
    out: Arc<Outbox>,
    room_tx: queue::Sender<RoomCmd>,
    id: u64,
    slot: Slot,
) {
    let why = serve(&mut socket, &active.0, &out, &room_tx, id).await;
    out.end();
    Box::pin(finish(socket, &room_tx, id, why)).await;
    drop(slot);
}

/// The session's loop; why it ended (with the close code and how long to try to send it), or
/// `None` when the connection is gone already.
async fn serve(
    socket: &mut Socket,
    ctx: &Context,
    out: &Outbox,
    room_tx: &queue::Sender<RoomCmd>,
    id: u64,
) -> Option<(Close, Duration)> {
    let mut shutdown = ctx.shutdown.subscribe();
    // Any inbound frame (pings too) proves the peer is there; a half-open connection sends none.
    let idle_limit = ctx.config.idle_timeout;
    let mut idle_at = Instant::now() + idle_limit;
    // One timer for both deadlines: the idle one while waiting, a write's while writing.
    let timer = tokio::time::sleep_until(idle_at);
    tokio::pin!(timer);
    loop {
        tokio::select! {
            next = out.next() => match next {
                Out::Close(why) => return Some((why, WRITE_TIMEOUT)),
                Out::Frame(frame) => {
                    timer.as_mut().reset(Instant::now() + WRITE_TIMEOUT);
                    let sent = tokio::select! {
                        sent = socket.send(Message::Binary(frame)) => Some(sent),
                        _ = &mut timer => None,
                    };
                    timer.as_mut().reset(idle_at);
                    match sent {
                        Some(Ok(())) => {}
                        Some(Err(_)) => return None,
                        // The frame may sit half-written; a close frame is all we can try.
                        None => return Some((close::STUCK, CLOSE_WAIT)),
                    }
                }
                // The room let go of us without a reason (it stopped): make the client resync.
                Out::RoomGone => return Some((close::RESYNC, WRITE_TIMEOUT)),
            },
            _ = async { let _ = shutdown.wait_for(|stopping| *stopping).await; } => return Some((close::RESTART, WRITE_TIMEOUT)),
            _ = &mut timer => return Some((close::IDLE, WRITE_TIMEOUT)),
            msg = socket.next() => {
                if matches!(msg, Some(Ok(Message::Binary(_) | Message::Ping(_) | Message::Pong(_)))) {
                    idle_at = Instant::now() + idle_limit;
                    timer.as_mut().reset(idle_at);
                }
                match msg {
                    Some(Ok(Message::Binary(b))) => match codec::decode_frame(&b) {
                        Ok(msg) => {
                            // Waiting for room in a busy room's queue is the rare case, boxed.
                            let sent = match room_tx.try_send(RoomCmd::Message {
                                session: id,
                                msg: Box::new(msg),
                            }) {
                                Ok(()) => true,
                                Err(TrySendError::Full(cmd)) => Box::pin(room_tx.send(cmd)).await.is_ok(),
                                Err(TrySendError::Closed(_)) => false,
                            };
                            if !sent {
                                return Some((close::RESYNC, WRITE_TIMEOUT));
                            }
                        }
                        Err(e) => {
                            inc(&ctx.metrics.malformed_frames);
                            let why = match e {
                                DecodeError::TooBig(_) => close::TOO_BIG,
                                _ => close::BAD_DATA,
                            };
                            return Some((why, WRITE_TIMEOUT));
                        }
                    },
                    Some(Ok(Message::Text(_))) => return Some((close::UNSUPPORTED, WRITE_TIMEOUT)),
                    // Pings and pongs only prove the peer is there; raw frames are what
                    // tungstenite writes, never what it reads.
                    Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                    // An oversized message or frame is a capacity error.
                    Some(Err(WsError::Capacity(_))) => return Some((close::TOO_BIG, WRITE_TIMEOUT)),
                    Some(Err(_)) => return Some((close::PROTOCOL_ERROR, WRITE_TIMEOUT)),
                    // The peer closed: answer with our close frame (tungstenite may have already).
                    Some(Ok(Message::Close(_))) | None => return Some((close::RESYNC, CLOSE_WAIT)),
                }
            },
        }
    }
}

/// Leave the room and close the connection with `why`, if it is still there.
async fn finish(
    mut socket: Socket,
    room_tx: &queue::Sender<RoomCmd>,
    id: u64,
    why: Option<(Close, Duration)>,
) {
    let _ = room_tx.send(RoomCmd::Leave { session: id }).await;
    if let Some((why, wait)) = why {
        let _ = timeout(wait, socket.send(close_message(why))).await;
        // Give the peer a moment to answer our close frame. After a read error the WebSocket
        // reads no more, while the peer may still be sending (the rest of an oversized
        // message): closing with unread bytes resets the connection, and the peer may then
        // lose our close frame. So the socket is read to its end, or for that moment.
        let _ = tokio::time::timeout(CLOSE_WAIT, async {
            while socket.next().await.is_some() {}
            let mut rest = [0u8; 256];
            while matches!(socket.get_mut().read(&mut rest).await, Ok(n) if n > 0) {}
        })
        .await;
    }
}

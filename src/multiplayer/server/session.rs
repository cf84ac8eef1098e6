//! One editor connection, in one task: it decodes frames and hands them to the room, drains the
//! connection's bounded queue and carries out close requests.

use crate::multiplayer::metrics::{inc, GaugeGuard};
use crate::multiplayer::protocol::close::{self, Close};
use crate::multiplayer::protocol::codec::{self, DecodeError};
use crate::multiplayer::room::link::{Out, Outbox, RoomCmd, SessionLink};
use crate::multiplayer::server::context::Context;
use crate::multiplayer::server::registry::Registry;
use crate::multiplayer::token::Claims;
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::{timeout, Instant};

/// How long to wait for the peer to answer our close frame.
const CLOSE_WAIT: Duration = Duration::from_secs(2);
/// A peer that takes no frame for this long has stopped reading (or its network is gone):
/// holding it would keep its presence and locks alive for nothing.
const WRITE_TIMEOUT: Duration = Duration::from_secs(15);

/// Close right after the handshake (a refused token): nothing of the room is sent.
pub async fn refuse(mut socket: WebSocket, why: Close) {
    let _ = socket.send(close_message(why)).await;
    let _ =
        tokio::time::timeout(CLOSE_WAIT, async { while socket.recv().await.is_some() {} }).await;
}

fn close_message(why: Close) -> Message {
    Message::Close(Some(CloseFrame {
        code: why.code,
        reason: why.reason.into(),
    }))
}

/// Serve one editor in `room` until either side closes. One task does both directions: it
/// decodes inbound frames for the room, and writes the frames the room queued in its
/// [`Outbox`]. (A second task per connection, a channel that allocates room for 32 frames up
/// front and another that told it to close cost more memory per idle connection than the
/// document they serve.)
pub async fn run(
    mut socket: WebSocket,
    ctx: Arc<Context>,
    rooms: Arc<Registry>,
    room: String,
    claims: Claims,
) {
    let _active = GaugeGuard::new(&ctx.metrics.active_sessions);
    inc(&ctx.metrics.connections_total);
    let id = ctx.sessions.take();
    let out = Outbox::new(ctx.config.send_queue);
    let link = SessionLink::new(id, out.clone(), claims.ro);
    let room_tx = match rooms.join(&room, link).await {
        Ok(tx) => tx,
        Err(_) => return refuse(socket, close::STORAGE_UNAVAILABLE).await,
    };
    let mut shutdown = ctx.shutdown.subscribe();
    // Any inbound frame (pings too) proves the peer is there; a half-open connection sends none.
    let idle_limit = ctx.config.idle_timeout;
    let idle = tokio::time::sleep(idle_limit);
    tokio::pin!(idle);
    // Why we close (and with which code), or `None` when the connection is gone already.
    let why: Option<(Close, Duration)> = loop {
        tokio::select! {
            next = out.next() => match next {
                Out::Close(why) => break Some((why, WRITE_TIMEOUT)),
                Out::Frame(frame) => match timeout(WRITE_TIMEOUT, socket.send(Message::Binary(frame))).await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => break None,
                    // The frame may sit half-written; a close frame is all we can try.
                    Err(_) => break Some((close::STUCK, CLOSE_WAIT)),
                },
                // The room let go of us without a reason (it stopped): make the client resync.
                Out::RoomGone => break Some((close::RESYNC, WRITE_TIMEOUT)),
            },
            _ = async { let _ = shutdown.wait_for(|stopping| *stopping).await; } => break Some((close::RESTART, WRITE_TIMEOUT)),
            _ = &mut idle => break Some((close::IDLE, WRITE_TIMEOUT)),
            msg = socket.recv() => match msg {
                Some(Ok(Message::Binary(b))) => {
                    idle.as_mut().reset(Instant::now() + idle_limit);
                    match codec::decode_frame(&b) {
                        Ok(msg) => {
                            if room_tx.send(RoomCmd::Message { session: id, msg }).await.is_err() {
                                break Some((close::RESYNC, WRITE_TIMEOUT));
                            }
                        }
                        Err(e) => {
                            inc(&ctx.metrics.malformed_frames);
                            let why = match e {
                                DecodeError::TooBig(_) => close::TOO_BIG,
                                _ => close::BAD_DATA,
                            };
                            break Some((why, WRITE_TIMEOUT));
                        }
                    }
                }
                Some(Ok(Message::Text(_))) => break Some((close::UNSUPPORTED, WRITE_TIMEOUT)),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => idle.as_mut().reset(Instant::now() + idle_limit),
                Some(Err(e)) => {
                    // tungstenite reports an oversized message as a capacity error.
                    let why = if e.to_string().contains("Space limit") { close::TOO_BIG } else { close::PROTOCOL_ERROR };
                    break Some((why, WRITE_TIMEOUT));
                }
                // The peer closed: answer with our close frame (tungstenite may have already).
                Some(Ok(Message::Close(_))) | None => break Some((close::RESYNC, CLOSE_WAIT)),
            },
        }
    };
    out.end();
    let _ = room_tx.send(RoomCmd::Leave { session: id }).await;
    if let Some((why, wait)) = why {
        let _ = timeout(wait, socket.send(close_message(why))).await;
        // Give the peer a moment to answer our close frame.
        let _ = tokio::time::timeout(CLOSE_WAIT, async { while socket.recv().await.is_some() {} })
            .await;
    }
}

//! One editor connection: a reader that decodes frames and hands them to the room, and a writer
//! that drains the connection's bounded queue and carries out close requests.

use crate::multiplayer::metrics::{inc, GaugeGuard};
use crate::multiplayer::protocol::close::{self, Close};
use crate::multiplayer::protocol::codec::{self, DecodeError};
use crate::multiplayer::room::link::{RoomCmd, SessionLink};
use crate::multiplayer::server::context::Context;
use crate::multiplayer::server::registry::Registry;
use crate::multiplayer::token::Claims;
use axum::body::Bytes;
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::{SinkExt, StreamExt};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
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

/// Serve one editor in `room` until either side closes.
pub async fn run(
    socket: WebSocket,
    ctx: Arc<Context>,
    rooms: Arc<Registry>,
    room: String,
    claims: Claims,
) {
    let _active = GaugeGuard::new(&ctx.metrics.active_sessions);
    inc(&ctx.metrics.connections_total);
    let id = ctx.sessions.take();
    let (frames_tx, mut frames) = mpsc::channel::<Bytes>(ctx.config.send_queue);
    let (control_tx, mut control) = mpsc::unbounded_channel::<Close>();
    let link = SessionLink {
        id,
        frames: frames_tx,
        control: control_tx.clone(),
        read_only: claims.ro,
    };
    let room_tx = match rooms.join(&room, link).await {
        Ok(tx) => tx,
        Err(_) => return refuse(socket, close::STORAGE_UNAVAILABLE).await,
    };
    let (mut sink, mut stream) = socket.split();
    let mut shutdown = ctx.shutdown.subscribe();

    let writer = tokio::spawn(async move {
        loop {
            tokio::select! {
                biased;
                why = control.recv() => {
                    let why = why.unwrap_or(close::RESYNC);
                    let _ = timeout(WRITE_TIMEOUT, sink.send(close_message(why))).await;
                    return;
                }
                _ = async { let _ = shutdown.wait_for(|stopping| *stopping).await; } => {
                    let _ = timeout(WRITE_TIMEOUT, sink.send(close_message(close::RESTART))).await;
                    return;
                }
                frame = frames.recv() => match frame {
                    Some(frame) => match timeout(WRITE_TIMEOUT, sink.send(Message::Binary(frame))).await {
                        Ok(Ok(())) => {}
                        Ok(Err(_)) => return,
                        Err(_) => {
                            // The frame may sit half-written; a close frame is all we can try.
                            let _ = timeout(CLOSE_WAIT, sink.send(close_message(close::STUCK))).await;
                            return;
                        }
                    },
                    // The room dropped us without a reason (it stopped): make the client resync.
                    None => {
                        let _ = timeout(WRITE_TIMEOUT, sink.send(close_message(close::RESYNC))).await;
                        return;
                    }
                },
            }
        }
    });

    let mut writer = writer;
    let mut writer_done = false;
    // Any inbound frame (pings too) proves the peer is there; a half-open connection sends none.
    let idle_limit = ctx.config.idle_timeout;
    let idle = tokio::time::sleep(idle_limit);
    tokio::pin!(idle);
    loop {
        tokio::select! {
            _ = &mut idle => {
                let _ = control_tx.send(close::IDLE);
                break;
            }
            msg = stream.next() => match msg {
                Some(Ok(Message::Binary(b))) => {
                    idle.as_mut().reset(Instant::now() + idle_limit);
                    match codec::decode_frame(&b) {
                        Ok(msg) => {
                            if room_tx.send(RoomCmd::Message { session: id, msg }).await.is_err() {
                                let _ = control_tx.send(close::RESYNC);
                                break;
                            }
                        }
                        Err(e) => {
                            inc(&ctx.metrics.malformed_frames);
                            let why = match e {
                                DecodeError::TooBig(_) => close::TOO_BIG,
                                _ => close::BAD_DATA,
                            };
                            let _ = control_tx.send(why);
                            break;
                        }
                    }
                }
                Some(Ok(Message::Text(_))) => {
                    let _ = control_tx.send(close::UNSUPPORTED);
                    break;
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => idle.as_mut().reset(Instant::now() + idle_limit),
                Some(Err(e)) => {
                    // tungstenite reports an oversized message as a capacity error.
                    let why = if e.to_string().contains("Space limit") { close::TOO_BIG } else { close::PROTOCOL_ERROR };
                    let _ = control_tx.send(why);
                    break;
                }
                Some(Ok(Message::Close(_))) | None => break,
            },
            _ = &mut writer, if !writer_done => {
                writer_done = true;
                break;
            }
        }
    }
    let _ = room_tx.send(RoomCmd::Leave { session: id }).await;
    // Let the writer send its close frame, then give the peer a moment to answer it.
    if !writer_done {
        let _ = control_tx.send(close::RESYNC);
        let _ = tokio::time::timeout(CLOSE_WAIT, &mut writer).await;
    }
    let _ =
        tokio::time::timeout(CLOSE_WAIT, async { while stream.next().await.is_some() {} }).await;
}

//! What the server's socket-level tests share: a gateway context with no Redis behind it
//! (storage down, no backplane), the real HTTP serving on a free port, and clients written by
//! hand over a `TcpStream` (a plain HTTP exchange, a WebSocket handshake).

use crate::core::names::WorkspaceId;
use crate::core::redis::RedisLink;
use crate::multiplayer::config::{GatewayConfig, Limits, Secret};
use crate::multiplayer::metrics::Metrics;
use crate::multiplayer::redis::backplane::{Backplane, Inbox};
use crate::multiplayer::redis::keys::Keys;
use crate::multiplayer::redis::locks::LockStore;
use crate::multiplayer::redis::persistence::{DocStore, StoredDoc};
use crate::multiplayer::room::link::SessionIds;
use crate::multiplayer::server::context::Context;
use crate::multiplayer::server::registry::Registry;
use crate::multiplayer::server::serve;
use crate::multiplayer::server::slots::ConnectionSlots;
use crate::multiplayer::token::{self, Claims};
use axum::body::Bytes;
use futures_util::future::BoxFuture;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub const SECRET: &[u8] = b"routes-test-secret-0123456789";

struct NoBackplane;

impl Backplane for NoBackplane {
    fn subscribe<'a>(&'a self, _: &'a str, _: u64, _: Inbox) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async { Ok(()) })
    }
    fn unsubscribe<'a>(&'a self, _: &'a str, _: u64) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }
    fn publish<'a>(&'a self, _: &'a str, _: Bytes) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async { Ok(()) })
    }
}

/// Storage that is down: a room cannot load.
struct NoStore;

impl DocStore for NoStore {
    fn load<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<StoredDoc, String>> {
        Box::pin(async { Err("storage is down".to_string()) })
    }
    fn append<'a>(&'a self, _: &'a str, _: &'a [u8]) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async { Err("storage is down".to_string()) })
    }
    fn compact<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<Option<usize>, String>> {
        Box::pin(async { Ok(None) })
    }
}

/// The settings of a test gateway; change what a test is about, then [`context_with`].
pub fn config(max_connections: usize) -> GatewayConfig {
    GatewayConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        workspace: WorkspaceId::parse("w1").unwrap(),
        // Nothing listens on port 1: readiness fails at once.
        redis_url: "redis://127.0.0.1:1/".to_string(),
        redpanda_broker: None,
        path_prefix: "/multiplayer".to_string(),
        secret: Secret::new(SECRET.to_vec()),
        max_message_size: 1 << 20,
        max_connections,
        send_queue: 16,
        unload_grace: Duration::from_secs(1),
        lock_ttl: Duration::from_secs(30),
        keepalive: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(45),
        max_pending_connections: 64,
        header_timeout: Duration::from_secs(10),
        limits: Limits::default(),
    }
}

pub fn context(max_connections: usize) -> Arc<Context> {
    context_with(config(max_connections))
}

pub fn context_with(config: GatewayConfig) -> Arc<Context> {
    let link = Arc::new(RedisLink::new(&config.redis_url).unwrap());
    let (shutdown, _) = tokio::sync::watch::channel(false);
    Arc::new(Context {
        id: [1; 16],
        metrics: Arc::new(Metrics::default()),
        store: Arc::new(NoStore),
        backplane: Arc::new(NoBackplane),
        locks: LockStore::new(link.clone(), Keys::new("w1")),
        link,
        shutdown,
        sessions: Arc::new(SessionIds::default()),
        slots: ConnectionSlots::new(config.max_connections),
        config,
    })
}

/// Serve as `appgear multiplayer serve` does, on a free port of 127.0.0.1.
pub async fn start(ctx: Arc<Context>) -> SocketAddr {
    let rooms = Arc::new(Registry::new(ctx.room_deps()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve::http(listener, ctx, rooms, std::future::pending()));
    addr
}

/// One HTTP/1.1 exchange; the answer's head (status line and headers, lower-cased names) and
/// body.
pub async fn call(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
) -> (String, String) {
    let mut req = format!("{method} {target} HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out))
        .await
        .unwrap()
        .unwrap();
    let out = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    (head.to_ascii_lowercase(), body.to_string())
}

pub fn status(head: &str) -> u16 {
    head.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

pub fn mint(ws: &str, ro: bool, sub: Option<&str>) -> String {
    let claims = Claims {
        ws: ws.to_string(),
        ro,
        exp: token::now_unix() + 600,
        sub: sub.map(str::to_string),
    };
    token::mint(&claims, SECRET)
}

/// A WebSocket handshake by hand: the answer's head, then the close frame's code if one came.
pub async fn upgrade(
    addr: SocketAddr,
    target: &str,
    protocols: Option<&str>,
) -> (String, Option<u16>) {
    let (head, code, _) = upgrade_and_hold(addr, target, protocols).await;
    (head, code)
}

/// [`upgrade`], keeping the socket open (the peer never answers the close frame).
pub async fn upgrade_and_hold(
    addr: SocketAddr,
    target: &str,
    protocols: Option<&str>,
) -> (String, Option<u16>, TcpStream) {
    let mut req = format!(
        "GET {target} HTTP/1.1\r\nHost: gw\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    );
    if let Some(p) = protocols {
        req.push_str(&format!("Sec-WebSocket-Protocol: {p}\r\n"));
    }
    req.push_str("\r\n");
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(req.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte).await.unwrap_or(0) == 0 {
            break;
        }
        got.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&got).to_ascii_lowercase();
    if status(&head) != 101 {
        return (head, None, s);
    }
    // A server frame is unmasked: [FIN|opcode, length, code (2 bytes), reason].
    let mut frame = [0u8; 4];
    let read = tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut frame)).await;
    assert!(matches!(read, Ok(Ok(_))), "no frame after the handshake");
    assert_eq!(frame[0], 0x88, "not a close frame: {frame:?}");
    // The rest of the close frame (its reason), so that the socket is left at a frame boundary.
    let mut reason = vec![0u8; usize::from(frame[1] & 0x7f).saturating_sub(2)];
    let _ = s.read_exact(&mut reason).await;
    (head, Some(u16::from_be_bytes([frame[2], frame[3]])), s)
}

//! The routes as a client meets them, over a real socket: paths, methods, status codes,
//! headers and close codes. Nothing here needs Redis: every case is answered before it.

use super::*;
use crate::core::names::WorkspaceId;
use crate::multiplayer::config::{GatewayConfig, Secret};
use crate::multiplayer::metrics::Metrics;
use crate::multiplayer::redis::backplane::{Backplane, Inbox};
use crate::multiplayer::redis::link::{Keys, RedisLink};
use crate::multiplayer::redis::locks::LockStore;
use crate::multiplayer::redis::persistence::{DocStore, StoredDoc};
use crate::multiplayer::room::link::SessionIds;
use crate::multiplayer::server::slots::ConnectionSlots;
use crate::multiplayer::token::{self, Claims};
use axum::body::Bytes;
use futures_util::future::BoxFuture;
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SECRET: &[u8] = b"routes-test-secret-0123456789";

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

fn context(max_connections: usize) -> Arc<Context> {
    let config = GatewayConfig {
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
    };
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
        slots: ConnectionSlots::new(max_connections),
        config,
    })
}

async fn start(ctx: Arc<Context>) -> SocketAddr {
    let rooms = Arc::new(Registry::new(ctx.room_deps()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router(ctx, rooms)).await });
    addr
}

/// One HTTP/1.1 exchange; the answer's head (status line and headers, lower-cased names) and
/// body.
async fn call(
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

fn status(head: &str) -> u16 {
    head.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn mint(ws: &str, ro: bool, sub: Option<&str>) -> String {
    let claims = Claims {
        ws: ws.to_string(),
        ro,
        exp: token::now_unix() + 600,
        sub: sub.map(str::to_string),
    };
    token::mint(&claims, SECRET)
}

#[tokio::test]
async fn plain_endpoints_answer_get_only_with_and_without_the_prefix() {
    let addr = start(context(10)).await;
    for path in ["/healthz", "/multiplayer/healthz"] {
        let (head, body) = call(addr, "GET", path, &[]).await;
        assert_eq!((status(&head), body.as_str()), (200, "ok\n"), "{path}");
        assert!(
            head.contains("content-type: text/plain; charset=utf-8"),
            "{head}"
        );
    }
    let (head, body) = call(addr, "GET", "/multiplayer/metrics?x=1", &[]).await;
    assert_eq!(status(&head), 200);
    assert!(
        head.contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    assert!(body.contains("multiplayer_active_sessions{workspace_id=\"w1\"} 0"));
    let (head, body) = call(addr, "GET", "/readyz", &[]).await;
    assert_eq!(status(&head), 503);
    assert!(body.starts_with("Redis unreachable"), "{body}");
    for (method, path) in [
        ("GET", "/nope"),
        ("GET", "/multiplayer"),
        ("GET", "/healthz/"),
        ("GET", "/multiplayer/multiplayer/healthz"),
        ("POST", "/healthz"),
        ("DELETE", "/multiplayer/metrics"),
        ("HEAD", "/healthz"),
    ] {
        let (head, body) = call(addr, method, path, &[]).await;
        assert_eq!(status(&head), 404, "{method} {path}");
        assert!(!head.contains("allow:"), "{method} {path}: {head}");
        if method != "HEAD" {
            assert_eq!(body, "not found\n", "{method} {path}");
        }
    }
}

type LockCase<'a> = (&'a str, String, Vec<(&'a str, String)>, u16, &'a str);

#[tokio::test]
async fn lock_endpoints_check_the_token_then_the_request() {
    let addr = start(context(10)).await;
    let editor = mint("w1", false, Some("ci"));
    let bearer = format!("Bearer {editor}");
    let auth = [("Authorization", bearer.as_str())];
    // (method, target, headers, status, what the error says)
    let cases: Vec<LockCase> = vec![
        (
            "GET",
            "/locks?room=r".into(),
            vec![],
            401,
            "a token is required",
        ),
        (
            "GET",
            "/locks?room=r&token=mp1.bad.token".into(),
            vec![],
            401,
            "malformed token",
        ),
        (
            "GET",
            "/locks?room=r".into(),
            vec![(
                "Authorization",
                format!("Bearer {}", mint("w2", false, None)),
            )],
            403,
            "token is not for this workspace",
        ),
        (
            "GET",
            format!("/locks?token={editor}"),
            vec![],
            400,
            "give the room",
        ),
        (
            "GET",
            format!("/multiplayer/locks?room=&token={editor}"),
            vec![],
            400,
            "give the room",
        ),
        (
            "PUT",
            "/locks?room=r".into(),
            vec![],
            405,
            "use GET, POST or DELETE",
        ),
        (
            "POST",
            format!(
                "/locks?room=r&path=p&token={}",
                mint("w1", true, Some("ro"))
            ),
            vec![],
            403,
            "read-only",
        ),
        (
            "POST",
            "/locks?room=r".into(),
            vec![],
            400,
            "give a lock path",
        ),
        (
            "POST",
            "/locks?room=r&path=p&ttl=forever".into(),
            vec![],
            400,
            "ttl must be",
        ),
        (
            "POST",
            "/locks?room=r&path=p&ttl=100ms".into(),
            vec![],
            400,
            "ttl must be",
        ),
        (
            "DELETE",
            "/locks?room=r&path=p&owner=yjs%3A1".into(),
            vec![],
            403,
            "acts as",
        ),
        (
            "DELETE",
            "/locks?room=r&path=p&owner=someone".into(),
            vec![],
            403,
            "acts as",
        ),
        (
            "DELETE",
            format!("/locks?room=r&path=p&token={}", mint("w1", false, None)),
            vec![],
            403,
            "names no holder",
        ),
    ];
    for (method, target, extra, want, says) in cases {
        let mut headers: Vec<(&str, &str)> = extra.iter().map(|(k, v)| (*k, v.as_str())).collect();
        // The bearer token wins over ?token=, so it is sent only when the case has no token.
        if extra.is_empty() && !target.contains("token=") && want != 401 {
            headers.extend(auth);
        }
        let (head, body) = call(addr, method, &target, &headers).await;
        assert_eq!(status(&head), want, "{method} {target}: {body}");
        assert!(head.contains("content-type: application/json"), "{head}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        assert!(
            v["error"].as_str().is_some_and(|e| e.contains(says)),
            "{method} {target}: {body}"
        );
    }
}

/// A WebSocket handshake by hand: the answer's head, then the close frame's code if one came.
async fn upgrade(addr: SocketAddr, target: &str, protocols: Option<&str>) -> (String, Option<u16>) {
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
        return (head, None);
    }
    // A server frame is unmasked: [FIN|opcode, length, code (2 bytes), reason].
    let mut frame = [0u8; 4];
    let read = tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut frame)).await;
    assert!(matches!(read, Ok(Ok(_))), "no frame after the handshake");
    assert_eq!(frame[0], 0x88, "not a close frame: {frame:?}");
    (head, Some(u16::from_be_bytes([frame[2], frame[3]])))
}

#[tokio::test]
async fn a_room_upgrade_is_judged_before_and_after_the_handshake() {
    let ctx = context(10);
    let addr = start(ctx.clone()).await;
    let good = mint("w1", false, None);
    let (head, _) = upgrade(addr, "/elsewhere/a", Some(&good)).await;
    assert_eq!(status(&head), 404);
    // After the handshake: a refusal the stock client does not retry, the token's protocol echoed.
    let (head, code) = upgrade(addr, "/multiplayer/a", Some("mp1.bad.token")).await;
    assert_eq!(code, Some(4401));
    assert!(
        head.contains("sec-websocket-protocol: mp1.bad.token"),
        "{head}"
    );
    let (_, code) = upgrade(addr, "/multiplayer/a", None).await;
    assert_eq!(code, Some(4401));
    let other = mint("w2", false, None);
    let (head, code) = upgrade(addr, "/multiplayer/a", Some(&format!("y-ws, {other}"))).await;
    assert_eq!(code, Some(4403));
    assert!(
        head.contains(&format!(
            "sec-websocket-protocol: {}",
            other.to_ascii_lowercase()
        )),
        "{head}"
    );
    let (_, code) = upgrade(addr, "/multiplayer/%FF", Some(&good)).await;
    assert_eq!(code, Some(4400));
    // Without a token among the protocols, the first one offered is echoed.
    let (head, code) = upgrade(
        addr,
        &format!("/multiplayer/a?token={good}"),
        Some("b-proto, a-proto"),
    )
    .await;
    assert!(head.contains("sec-websocket-protocol: a-proto"), "{head}");
    // A good token, from the query: the room is joined, but storage is down here.
    assert_eq!(code, Some(1013));
    // A room may be named like an endpoint.
    let (_, code) = upgrade(addr, "/multiplayer/healthz", Some(&good)).await;
    assert_eq!(code, Some(1013));
    let m = ctx.metrics.render("w1");
    assert!(m.contains("reason=\"bad_token\"} 4"), "{m}");
}

#[tokio::test]
async fn a_full_or_stopping_gateway_answers_upgrades_with_a_retryable_503() {
    let ctx = context(0);
    let addr = start(ctx.clone()).await;
    let good = mint("w1", false, None);
    let (head, _) = upgrade(addr, "/multiplayer/a", Some(&good)).await;
    assert_eq!(status(&head), 503);
    assert!(head.contains("retry-after: 1"), "{head}");
    assert!(ctx.metrics.render("w1").contains("reason=\"busy\"} 1"));
    let ctx = context(10);
    let addr = start(ctx.clone()).await;
    ctx.shutdown.send_replace(true);
    let (head, _) = upgrade(addr, "/multiplayer/a", Some(&good)).await;
    assert_eq!(status(&head), 503);
    let (head, body) = call(addr, "GET", "/readyz", &[]).await;
    assert_eq!((status(&head), body.as_str()), (503, "stopping\n"));
}

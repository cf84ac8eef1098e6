//! The smoke stage's probes against real servers on this machine: the real gateway
//! (`appgear multiplayer serve` on a private redis-server) for the document sync, a gateway that
//! drops updates, and loopback HTTP servers that wake late or never. Kong is not in between
//! (no cluster can run here): the probes speak to these servers as they would to Kong's host
//! port, with the workspace's host name.

use crate::redis_server::RedisServer;
use appgear::multiplayer::protocol::codec;
use appgear::multiplayer::token::{self, Claims};
use appgear::topology_b::cluster::smoke::{self, Bound, Target};
use futures_util::{SinkExt, StreamExt};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Child, Command};
use std::sync::mpsc;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

const SECRET: &str = "smoke-test-secret-0123456789";
const HOST: &str = "demo.factory.test";
const ROOM: &str = "/multiplayer/appgear-smoke";

fn token_for(workspace: &str, secret: &str) -> String {
    let claims = Claims {
        ws: workspace.into(),
        ro: false,
        exp: token::now_unix() + 600,
        sub: Some("appgear-smoke".into()),
    };
    token::mint(&claims, secret.as_bytes())
}

/// `appgear multiplayer serve` for workspace `demo`, stopped when dropped.
struct Gateway {
    child: Child,
    addr: String,
}

impl Gateway {
    fn start(redis: &str) -> Gateway {
        let (child, addr) = crate::common::spawn_gateway(
            Command::new(env!("CARGO_BIN_EXE_appgear"))
                .args(["multiplayer", "serve", "--listen", "127.0.0.1:0"])
                .args(["--workspace", "demo", "--redis", redis])
                .env("MULTIPLAYER_TOKEN_SECRET", SECRET)
                .env_remove("MULTIPLAYER_TOKEN_SECRET_FILE")
                .env_remove("WORKSPACE_ID")
                .env_remove("REDIS_URL"),
        );
        Gateway { child, addr }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn the_sync_check_passes_through_the_real_gateway() {
    let redis = RedisServer::start();
    let gw = Gateway::start(&redis.url);
    let took = smoke::sync(
        &gw.addr,
        HOST,
        ROOM,
        &token_for("demo", SECRET),
        Duration::from_secs(20),
    )
    .await;
    assert!(took.is_ok(), "{took:?}");
    // Twice: a room that already holds the first run's text syncs again.
    let again = smoke::sync(
        &gw.addr,
        HOST,
        ROOM,
        &token_for("demo", SECRET),
        Duration::from_secs(20),
    )
    .await;
    assert!(again.is_ok(), "{again:?}");
}

#[tokio::test]
async fn a_wrong_token_is_a_failure_naming_the_close_code() {
    let redis = RedisServer::start();
    let gw = Gateway::start(&redis.url);
    let bad_secret = smoke::sync(
        &gw.addr,
        HOST,
        ROOM,
        &token_for("demo", "another-secret-0123456789"),
        Duration::from_secs(20),
    )
    .await
    .unwrap_err();
    assert!(
        bad_secret.starts_with("the gateway refused the token (4401"),
        "{bad_secret}"
    );
    let other_workspace = smoke::sync(
        &gw.addr,
        HOST,
        ROOM,
        &token_for("other", SECRET),
        Duration::from_secs(20),
    )
    .await
    .unwrap_err();
    assert!(
        other_workspace.starts_with("the gateway refused the token (4403"),
        "{other_workspace}"
    );
    assert!(
        other_workspace.contains("another workspace"),
        "{other_workspace}"
    );
}

use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};

/// Echo the offered subprotocol (the token), as the gateway does.
#[allow(clippy::result_large_err)] // the signature of tungstenite's handshake callback
fn echo_protocol(req: &Request, mut resp: Response) -> Result<Response, ErrorResponse> {
    if let Some(p) = req.headers().get("Sec-WebSocket-Protocol") {
        resp.headers_mut()
            .insert("Sec-WebSocket-Protocol", p.clone());
    }
    Ok(resp)
}

/// A y-websocket server that answers the document's state (empty) and drops every update.
async fn dropping_gateway() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(tcp, echo_protocol).await
                else {
                    return;
                };
                while let Some(Ok(m)) = ws.next().await {
                    if let Message::Binary(frame) = m {
                        if let Ok(codec::Inbound::SyncStep1(_)) = codec::decode_frame(&frame) {
                            let empty = yrs::Doc::new();
                            let state = yrs::Transact::transact(&empty)
                                .encode_state_as_update_v1(&yrs::StateVector::default());
                            let _ = ws.send(Message::Binary(codec::sync_step2(&state))).await;
                        }
                    }
                }
            });
        }
    });
    addr
}

// encode_state_as_update_v1 is a method of ReadTxn.
use yrs::ReadTxn as _;

#[tokio::test]
async fn a_gateway_that_drops_the_update_fails_the_sync() {
    let addr = dropping_gateway().await;
    let e = smoke::sync(
        &addr,
        HOST,
        ROOM,
        &token_for("demo", SECRET),
        Duration::from_secs(2),
    )
    .await
    .unwrap_err();
    assert!(
        e.starts_with("an update sent on one connection did not come back on the other within 2 s"),
        "{e}"
    );
}

/// An HTTP server on loopback answering each request with the next status of `codes`, the
/// last one for ever after; the paths it was asked for come out of the receiver.
fn http_server(codes: Vec<u16>) -> (String, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (tx, asked) = mpsc::channel();
    std::thread::spawn(move || {
        let mut n = 0;
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 1024];
            let len = s.read(&mut buf).unwrap_or(0);
            let head = String::from_utf8_lossy(&buf[..len]).into_owned();
            let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
            let code = if path == "/vscode/" {
                302
            } else {
                let c = codes[n.min(codes.len() - 1)];
                n += 1;
                c
            };
            let _ = tx.send(path);
            let _ = write!(
                s,
                "HTTP/1.1 {code} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
    });
    (addr, asked)
}

#[tokio::test]
async fn a_workload_answering_503_twice_is_reported_awake_with_its_time() {
    let (addr, asked) = http_server(vec![503, 503, 200]);
    let rows = smoke::workspace(&Target {
        addr: &addr,
        workspace: "demo",
        host: HOST.into(),
        token: Err("no token secret here".into()),
        bound: Bound {
            total: Duration::from_secs(60),
            pause: Duration::from_millis(20),
        },
    })
    .await;
    let cells: Vec<Vec<String>> = rows.iter().map(|r| r.cells()).collect();
    assert_eq!(cells.len(), 3, "{cells:?}");
    assert_eq!(
        cells[0][..3],
        [
            "wake",
            "demo: /multiplayer/healthz",
            "answers (200) after 3 requests"
        ]
    );
    assert!(cells[0][3].ends_with(" s"), "{cells:?}");
    assert_eq!(
        cells[1][..3],
        ["route", "demo: /vscode/", "answers (302) at once"]
    );
    assert_eq!(
        cells[2][..3],
        [
            "sync",
            "demo: /multiplayer/appgear-smoke",
            "skipped: no token secret here"
        ]
    );
    assert!(rows.iter().all(|r| r.ok), "{rows:?}");
    let paths: Vec<String> = asked.try_iter().collect();
    assert_eq!(
        paths,
        [
            "/multiplayer/healthz",
            "/multiplayer/healthz",
            "/multiplayer/healthz",
            "/vscode/"
        ]
    );
}

#[tokio::test]
async fn a_workload_that_never_wakes_fails_within_the_bound() {
    let (addr, _) = http_server(vec![503]);
    let e = smoke::wake(
        &addr,
        HOST,
        "/multiplayer/healthz",
        Bound {
            total: Duration::from_secs(1),
            pause: Duration::from_millis(50),
        },
    )
    .await
    .unwrap_err();
    assert!(e.starts_with("did not wake within 1 s ("), "{e}");
    assert!(
        e.ends_with("the last answer: Kong has nothing ready behind it (503))"),
        "{e}"
    );

    // A route that does not exist is not waited for.
    let (addr, asked) = http_server(vec![404]);
    let e = smoke::wake(&addr, HOST, "/multiplayer/healthz", Bound::default())
        .await
        .unwrap_err();
    assert_eq!(e, "Kong found no route for it (404)");
    assert_eq!(asked.try_iter().count(), 1);
}

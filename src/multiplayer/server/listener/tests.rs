//! Connections before they become editor sessions, as a peer meets them over a real socket:
//! silent and trickling peers are cut at the header timeout, a full budget of idle sockets
//! still lets a probe through, and a refused upgrade does not hold an editor's place.

use crate::multiplayer::server::testkit::*;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Read until the gateway closes the socket; what it sent, or `None` if it kept the socket
/// open for `within`.
async fn closed_within(s: &mut TcpStream, within: Duration) -> Option<Vec<u8>> {
    let mut got = Vec::new();
    match tokio::time::timeout(within, s.read_to_end(&mut got)).await {
        Ok(_) => Some(got),
        Err(_) => None,
    }
}

async fn gateway(max_pending: usize, header_timeout: Duration) -> (SocketAddr, String) {
    let mut c = config(10);
    c.max_pending_connections = max_pending;
    c.header_timeout = header_timeout;
    let ctx = context_with(c);
    let metrics = ctx.clone();
    let addr = start(ctx).await;
    (addr, metrics.metrics.render("w1"))
}

fn metric(ctx: &crate::multiplayer::server::context::Context, line: &str) -> bool {
    ctx.metrics.render("w1").lines().any(|l| l == line)
}

#[tokio::test]
async fn connections_that_send_nothing_are_closed_at_the_header_timeout() {
    let mut c = config(10);
    c.header_timeout = Duration::from_secs(1);
    let ctx = context_with(c);
    let addr = start(ctx.clone()).await;
    let opened = Instant::now();
    let mut idle = Vec::new();
    for _ in 0..5 {
        idle.push(TcpStream::connect(addr).await.unwrap());
    }
    for s in &mut idle {
        let got = closed_within(s, Duration::from_secs(5)).await;
        assert_eq!(
            got,
            Some(Vec::new()),
            "an idle socket stayed open, or got an answer"
        );
    }
    let took = opened.elapsed();
    assert!(
        took >= Duration::from_millis(900),
        "closed after {took:?}, before the timeout"
    );
    assert!(
        metric(
            &ctx,
            "multiplayer_pending_closed_total{workspace_id=\"w1\",reason=\"header_timeout\"} 5"
        ),
        "{}",
        ctx.metrics.render("w1")
    );
    assert!(metric(
        &ctx,
        "multiplayer_pending_connections{workspace_id=\"w1\"} 0"
    ));
}

#[tokio::test]
async fn a_trickled_request_head_is_cut_at_the_deadline() {
    let (addr, _) = gateway(64, Duration::from_secs(1)).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    let opened = Instant::now();
    s.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
    // One header byte every 100 ms: always something new, never a whole head.
    let trickle = async {
        for b in b"X-Slow: ".iter().cycle() {
            if s.write_all(&[*b]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let cut = tokio::time::timeout(Duration::from_secs(5), trickle).await;
    assert!(cut.is_ok(), "a trickling peer was never cut");
    let took = opened.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(3),
        "cut after {took:?}"
    );
}

#[tokio::test]
async fn a_keep_alive_connection_waits_for_its_next_request_under_the_timeout() {
    let (addr, _) = gateway(64, Duration::from_secs(1)).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: gw\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 256];
    let n = s.read(&mut buf).await.unwrap();
    assert!(
        buf[..n].starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&buf[..n])
    );
    // A request well within the deadline keeps it usable...
    tokio::time::sleep(Duration::from_millis(500)).await;
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: gw\r\n\r\n")
        .await
        .unwrap();
    let n = s.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    // ...and silence after the answer closes it.
    let answered = Instant::now();
    assert_eq!(
        closed_within(&mut s, Duration::from_secs(5)).await,
        Some(Vec::new())
    );
    assert!(answered.elapsed() >= Duration::from_millis(900));
}

#[tokio::test]
async fn healthz_answers_while_the_pending_limit_is_full_of_idle_sockets() {
    let mut c = config(10);
    c.max_pending_connections = 8;
    let ctx = context_with(c);
    let addr = start(ctx.clone()).await;
    let mut idle = Vec::new();
    for _ in 0..8 {
        idle.push(TcpStream::connect(addr).await.unwrap());
        // Accepted in this order, so that the first is the one that waited longest.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for _ in 0..3 {
        let asked = Instant::now();
        let (head, body) = call(addr, "GET", "/healthz", &[]).await;
        assert_eq!((status(&head), body.as_str()), (200, "ok\n"));
        assert!(asked.elapsed() < Duration::from_secs(2));
    }
    // The first probe took the place of the socket that waited longest (each probe closes its
    // connection, so the next ones found a place free); the others wait on.
    assert_eq!(
        closed_within(&mut idle[0], Duration::from_secs(2)).await,
        Some(Vec::new())
    );
    for s in &mut idle[1..] {
        assert_eq!(closed_within(s, Duration::from_millis(200)).await, None);
    }
    assert!(metric(
        &ctx,
        "multiplayer_pending_closed_total{workspace_id=\"w1\",reason=\"evicted\"} 1"
    ));
}

#[tokio::test]
async fn a_refused_upgrade_does_not_hold_an_editors_place() {
    let ctx = context(1);
    let addr = start(ctx.clone()).await;
    // A refused peer that never answers the close frame: the gateway waits up to 2 s for it.
    let (_, code, _held) = upgrade_and_hold(addr, "/multiplayer/a", Some("mp1.bad.token")).await;
    assert_eq!(code, Some(4401));
    // The one editor place is free at once: the editor is let in (storage is down here, so
    // the room answers 1013) instead of getting 503.
    let good = mint("w1", false, None);
    let (head, code) = upgrade(addr, "/multiplayer/a", Some(&good)).await;
    assert_eq!(status(&head), 101, "{head}");
    assert_eq!(code, Some(1013));
}

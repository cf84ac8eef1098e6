//! The WebSocket handshake of a room's upgrade (RFC 6455, over HTTP/1.1): the request is checked
//! here, the 101 answer built here, and once hyper has written it and handed the connection
//! over, the session gets the bare `TcpStream` under a WebSocket with the gateway's own limits.
//! Taking the socket back out of hyper's upgrade (instead of reading through it) is what lets
//! an idle session hold nothing of the HTTP server.

use crate::multiplayer::log;
use crate::multiplayer::server::listener::GuardedIo;
use crate::multiplayer::server::reply::text;
use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::Response;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use std::collections::BTreeSet;
use std::future::Future;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::WebSocketStream;

/// An editor's connection once the handshake is done.
pub type Socket = WebSocketStream<TcpStream>;

/// A WebSocket upgrade request that passed the handshake's checks (else 405 or 400, the answer
/// saying which header is wrong).
pub struct Handshake {
    accept: HeaderValue,
    offered: Vec<String>,
    on_upgrade: OnUpgrade,
}

impl<S: Send + Sync> FromRequestParts<S> for Handshake {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Response> {
        if parts.method != Method::GET {
            return Err(text(
                StatusCode::METHOD_NOT_ALLOWED,
                "a WebSocket upgrade must be a GET request\n",
            ));
        }
        let bad = |what: &str| text(StatusCode::BAD_REQUEST, format!("{what}\n"));
        if !has_token(&parts.headers, header::CONNECTION, "upgrade") {
            return Err(bad("a WebSocket upgrade needs `Connection: Upgrade`"));
        }
        if !has_token(&parts.headers, header::UPGRADE, "websocket") {
            return Err(bad("a WebSocket upgrade needs `Upgrade: websocket`"));
        }
        if !is(&parts.headers, header::SEC_WEBSOCKET_VERSION, "13") {
            return Err(bad(
                "only WebSocket version 13 is spoken: send `Sec-WebSocket-Version: 13`",
            ));
        }
        let Some(key) = parts.headers.get(header::SEC_WEBSOCKET_KEY) else {
            return Err(bad("a WebSocket upgrade needs a `Sec-WebSocket-Key`"));
        };
        let Ok(accept) = HeaderValue::from_str(&derive_accept_key(key.as_bytes())) else {
            return Err(bad("the `Sec-WebSocket-Key` is not usable"));
        };
        let Some(on_upgrade) = parts.extensions.remove::<OnUpgrade>() else {
            return Err(text(
                StatusCode::UPGRADE_REQUIRED,
                "this connection cannot be upgraded\n",
            ));
        };
        // Sorted and without repeats: the order in which the gateway has always considered
        // them (which one is echoed when several are offered depends on it).
        let offered: BTreeSet<String> = parts
            .headers
            .get_all(header::SEC_WEBSOCKET_PROTOCOL)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
            .collect();
        let offered = offered.into_iter().collect();
        Ok(Handshake {
            accept,
            offered,
            on_upgrade,
        })
    }
}

impl Handshake {
    /// The subprotocols the client offered, sorted.
    pub fn offered(&self) -> &[String] {
        &self.offered
    }

    /// Answer 101 (with `protocol` echoed) and run `session` on the connection once hyper has
    /// written the answer. If the connection goes away before, `session` is dropped unrun
    /// (with what it holds: a connection slot is given back).
    pub fn accept<F, Fut>(
        self,
        protocol: Option<HeaderValue>,
        config: WebSocketConfig,
        session: F,
    ) -> Response
    where
        F: FnOnce(Socket) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let on_upgrade = self.on_upgrade;
        // A short-lived task: it waits for the socket and runs `session`'s start (the join, or
        // a refusal); an editor's session then continues in a task of its own (see `session`).
        tokio::spawn(async move {
            if let Some(socket) = take_socket(on_upgrade, config).await {
                session(socket).await;
            }
        });
        let mut answer = Response::new(Body::empty());
        *answer.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let h = answer.headers_mut();
        h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        h.insert(header::SEC_WEBSOCKET_ACCEPT, self.accept);
        if let Some(p) = protocol {
            h.insert(header::SEC_WEBSOCKET_PROTOCOL, p);
        }
        answer
    }
}

/// The upgraded connection as the bare socket, under a WebSocket. Bytes the client sent right
/// after its request (before our answer) are kept, since hyper read them already.
async fn take_socket(on_upgrade: OnUpgrade, config: WebSocketConfig) -> Option<Socket> {
    let upgraded = on_upgrade.await.ok()?;
    let parts = match upgraded.downcast::<TokioIo<GuardedIo>>() {
        Ok(parts) => parts,
        Err(_) => {
            // Every connection is accepted as a `GuardedIo` (see `http`): not reachable unless
            // that changes.
            log::warn("an upgraded connection was not a gateway socket; closed it");
            return None;
        }
    };
    let stream = parts.io.into_inner().into_stream();
    Some(if parts.read_buf.is_empty() {
        WebSocketStream::from_raw_socket(stream, Role::Server, Some(config)).await
    } else {
        WebSocketStream::from_partially_read(
            stream,
            parts.read_buf.to_vec(),
            Role::Server,
            Some(config),
        )
        .await
    })
}

/// Whether a comma-separated header names `token` (any case), as `Connection` and `Upgrade` do.
fn has_token(headers: &HeaderMap, name: HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

fn is(headers: &HeaderMap, name: HeaderName, value: &str) -> bool {
    headers
        .get(name)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(value.as_bytes()))
}

#[cfg(test)]
mod tests {
    use crate::multiplayer::server::testkit::*;
    use std::net::SocketAddr;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    /// A handshake with the given `Connection` header: the answer's head (lower-cased) and the
    /// close code of the first frame, if one came.
    async fn upgrade_with(
        addr: SocketAddr,
        target: &str,
        connection: &str,
    ) -> (String, Option<u16>) {
        let req = format!(
            "GET {target} HTTP/1.1\r\nHost: gw\r\nConnection: {connection}\r\n\
             Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        );
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
        let mut frame = [0u8; 4];
        let read = tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut frame)).await;
        let code = matches!(read, Ok(Ok(_))).then(|| u16::from_be_bytes([frame[2], frame[3]]));
        (head, code)
    }

    /// Method, headers, the status wanted, and what the answer must say.
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, u16, &'a str);

    #[tokio::test]
    async fn a_bad_upgrade_request_is_refused_with_what_to_fix() {
        let addr = start(context(10)).await;
        let good = mint("w1", false, None);
        let upgrade = [("Connection", "Upgrade"), ("Upgrade", "websocket")];
        let version = ("Sec-WebSocket-Version", "13");
        let key = ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==");
        let target = format!("/multiplayer/a?token={good}");
        let cases: Vec<Case> = vec![
            (
                "POST",
                vec![upgrade[0], upgrade[1], version, key],
                405,
                "GET",
            ),
            (
                "GET",
                vec![upgrade[1], version, key],
                400,
                "Connection: Upgrade",
            ),
            (
                "GET",
                vec![upgrade[0], upgrade[1], ("Sec-WebSocket-Version", "8"), key],
                400,
                "Sec-WebSocket-Version: 13",
            ),
            (
                "GET",
                vec![upgrade[0], upgrade[1], version],
                400,
                "Sec-WebSocket-Key",
            ),
        ];
        for (method, headers, want, says) in cases {
            let (head, body) = call(addr, method, &target, &headers).await;
            assert_eq!(status(&head), want, "{method} {headers:?}: {body}");
            assert!(body.contains(says), "{method} {headers:?}: {body}");
        }
        // `Connection` may list other tokens beside `upgrade`, in any case.
        let (head, code) = upgrade_with(addr, &target, "keep-alive, UPGRADE").await;
        assert_eq!(status(&head), 101, "{head}");
        assert!(
            head.contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="),
            "{head}"
        );
        // Storage is down in this context: the session is refused after the handshake.
        assert_eq!(code, Some(1013));
    }
}

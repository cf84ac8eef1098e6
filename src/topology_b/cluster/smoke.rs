//! The smoke stage: what answers through Kong on the host port, per workspace.
//!
//! - **wake**: the multiplayer gateway is scaled to zero by the KEDA HTTP add-on; its first
//!   request (`/multiplayer/healthz`) is held by the interceptor, or answered 502/503/504 while
//!   the pod starts, until it is up. The check retries within a bound and says how long the wake
//!   took.
//! - **route**: `/vscode/` answers (code-server is scaled to zero too, so it is waited the same
//!   way). A 2xx or 3xx (code-server's login redirect) means the route, the Service and the pod
//!   are wired; Kong's 404 means no route matched.
//! - **sync**: a real document sync through `/multiplayer/<room>`: one WebSocket sends a y-sync
//!   update, a second one in the same room must receive it. The token is minted as
//!   `appgear multiplayer token` mints it, from the gateway's token secret.
//!
//! Plain HTTP on `FACTORY_CLUSTER_HTTP_PORT` with the workspace's host name. The verdicts are
//! pure functions; the probes below them do the IO and never print.

use crate::multiplayer::protocol::codec::{self, Inbound};
use futures_util::{SinkExt, StreamExt};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};
use yrs::{Doc, GetString, ReadTxn, StateVector, Text, Transact};

/// One line of the closing table.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Row {
    pub check: String,
    pub target: String,
    pub result: String,
    pub time: Option<Duration>,
    pub ok: bool,
}

impl Row {
    /// check, target, result, time: the table `cluster up` ends with.
    pub fn cells(&self) -> Vec<String> {
        vec![
            self.check.clone(),
            self.target.clone(),
            self.result.clone(),
            self.time
                .map(|t| format!("{:.1} s", t.as_secs_f64()))
                .unwrap_or_else(|| "-".into()),
        ]
    }
}

pub const HEADER: [&str; 4] = ["check", "target", "result", "time"];

/// The status code of an HTTP/1.x response's first line.
pub fn status_code(head: &str) -> Option<u16> {
    let mut parts = head.lines().next()?.split_whitespace();
    parts.next().filter(|v| v.starts_with("HTTP/1."))?;
    parts.next()?.parse().ok()
}

/// What a status says about the route, as the line the closing table shows.
pub fn verdict(code: u16) -> std::result::Result<String, String> {
    match code {
        200..=399 => Ok(format!("answers ({code})")),
        404 => Err("Kong found no route for it (404)".into()),
        502..=504 => Err(format!("Kong has nothing ready behind it ({code})")),
        c => Err(format!("answered {c}")),
    }
}

/// One answer to a request for a workload that may be waking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Awake(String),
    /// Try again: the interceptor holds the request or says 503 while the pod starts.
    Waking(String),
    /// Waiting cannot help.
    Refused(String),
}

pub fn wake_verdict(code: u16) -> Answer {
    match verdict(code) {
        Ok(line) => Answer::Awake(line),
        Err(why) if (502..=504).contains(&code) => Answer::Waking(why),
        Err(why) => Answer::Refused(why),
    }
}

/// A WebSocket close code from the gateway, as a line naming it.
pub fn close_verdict(code: u16, reason: &str) -> String {
    let reason = if reason.is_empty() {
        String::new()
    } else {
        format!(" {reason}")
    };
    match code {
        4401 => format!("the gateway refused the token ({code}{reason}): it was not signed with the gateway's token secret, or it expired"),
        4403 => format!("the gateway refused the token ({code}{reason}): it is for another workspace"),
        4400 => format!("the gateway refused the room name ({code}{reason})"),
        _ => format!("the gateway closed the connection ({code}{reason})"),
    }
}

/// GET `path` on `addr` with `host`, within `limit`: the status code, or why there is none.
async fn get_within(
    addr: &str,
    host: &str,
    path: &str,
    limit: Duration,
) -> std::result::Result<u16, String> {
    let io = async {
        let mut s = tokio::net::TcpStream::connect(addr).await?;
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await?;
        let mut head = vec![0u8; 512];
        let n = s.read(&mut head).await?;
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&head[..n]).into_owned())
    };
    let head = tokio::time::timeout(limit, io)
        .await
        .map_err(|_| format!("no answer within {} s", limit.as_secs()))?
        .map_err(|e| format!("cannot reach {addr}: {e}"))?;
    status_code(&head).ok_or_else(|| format!("{addr} did not answer HTTP"))
}

/// How long to wait for a workload to wake, and how often to ask.
#[derive(Debug, Clone, Copy)]
pub struct Bound {
    pub total: Duration,
    pub pause: Duration,
}

impl Default for Bound {
    /// KEDA's HTTP add-on holds a request up to the HTTPScaledObject's `conditionWait` (60 s for
    /// the gateway, 120 s for code-server); a cold pod start on a laptop takes up to a minute
    /// more when its image is not cached.
    fn default() -> Bound {
        Bound {
            total: Duration::from_secs(180),
            pause: Duration::from_secs(2),
        }
    }
}

/// A workload that answered: its line and how long it took from the first request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Woke {
    pub line: String,
    pub tries: u32,
    pub took: Duration,
}

/// Ask until the workload answers, is refused, or `bound` is over; a held request, a 502/503/504
/// or a connection that fails count as waking.
pub async fn wake(
    addr: &str,
    host: &str,
    path: &str,
    bound: Bound,
) -> std::result::Result<Woke, String> {
    let started = Instant::now();
    let mut tries = 0;
    let mut last = String::new();
    loop {
        tries += 1;
        let left = bound.total.saturating_sub(started.elapsed());
        // One held request may take the whole wake; never longer than the bound.
        let limit = left.min(Duration::from_secs(60));
        match get_within(addr, host, path, limit).await {
            Ok(code) => match wake_verdict(code) {
                Answer::Awake(line) => {
                    return Ok(Woke {
                        line,
                        tries,
                        took: started.elapsed(),
                    })
                }
                Answer::Refused(why) => return Err(why),
                Answer::Waking(why) => last = why,
            },
            // A request the bound cut short says less than the answer before it.
            Err(_) if !last.is_empty() && started.elapsed() >= bound.total => {}
            Err(why) => last = why,
        }
        if started.elapsed() + bound.pause >= bound.total {
            return Err(format!(
                "did not wake within {} s ({tries} requests; the last answer: {last})",
                bound.total.as_secs()
            ));
        }
        tokio::time::sleep(bound.pause).await;
    }
}

type Socket = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// A WebSocket to `ws://<host><path>` over a TCP connection to `addr` (Kong's host port), the
/// token offered as a subprotocol as the stock client does.
async fn open(
    addr: &str,
    host: &str,
    path: &str,
    token: &str,
) -> std::result::Result<Socket, String> {
    let mut request = format!("ws://{host}{path}")
        .into_client_request()
        .map_err(|e| format!("ws://{host}{path} is not a WebSocket URL: {e}"))?;
    let protocol = token
        .parse()
        .map_err(|_| "the token is not a header value".to_string())?;
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", protocol);
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("cannot reach {addr}: {e}"))?;
    match tokio_tungstenite::client_async(request, tcp).await {
        Ok((socket, _)) => Ok(socket),
        Err(tungstenite::Error::Http(response)) => Err(format!(
            "the WebSocket upgrade was answered {}{}",
            response.status(),
            if response.status() == 404 {
                " (Kong found no route for it)"
            } else {
                ""
            }
        )),
        Err(e) => Err(format!("the WebSocket handshake failed: {e}")),
    }
}

/// What a message from the gateway was, once handled.
#[derive(Debug, PartialEq, Eq)]
enum Got {
    /// The document's state, asked for by our sync step 1.
    State,
    Update,
    Other,
}

/// The next protocol message of `socket`, applied to `doc` when it carries document content;
/// a sync step 1 from the gateway is answered as a client answers it.
async fn next_message(socket: &mut Socket, doc: &Doc) -> std::result::Result<Got, String> {
    loop {
        let message = match socket.next().await {
            None => return Err("the gateway closed the connection".into()),
            Some(Err(e)) => return Err(format!("the connection failed: {e}")),
            Some(Ok(m)) => m,
        };
        let frame = match message {
            Message::Binary(b) => b,
            Message::Close(Some(c)) => return Err(close_verdict(c.code.into(), c.reason.as_str())),
            Message::Close(None) => return Err("the gateway closed the connection".into()),
            _ => continue,
        };
        let inbound = codec::decode_frame(&frame)
            .map_err(|e| format!("the gateway sent a frame that is not y-sync: {e}"))?;
        let (update, got) = match inbound {
            Inbound::SyncStep2(u) => (u, Got::State),
            Inbound::Update(u) => (u, Got::Update),
            Inbound::SyncStep1(sv) => {
                let reply = doc.transact().encode_state_as_update_v1(&sv);
                socket
                    .send(Message::Binary(codec::sync_step2(&reply)))
                    .await
                    .map_err(|e| format!("the connection failed: {e}"))?;
                return Ok(Got::Other);
            }
            _ => return Ok(Got::Other),
        };
        doc.transact_mut()
            .apply_update(update.decoded)
            .map_err(|e| format!("the gateway sent an update that does not apply: {e}"))?;
        return Ok(got);
    }
}

/// The shared text the smoke writes into (a room of its own, so no editor sees it).
const TEXT: &str = "appgear-smoke";

/// A document sync through the gateway at `path` (a room): the second connection joins and
/// receives the document, the first sends an update, the second must receive it. Returns how
/// long it took; the error names the step that failed.
pub async fn sync(
    addr: &str,
    host: &str,
    path: &str,
    token: &str,
    limit: Duration,
) -> std::result::Result<Duration, String> {
    let started = Instant::now();
    let left = || limit.saturating_sub(started.elapsed());
    let within = |what: &'static str| move |_| format!("{what} within {} s", limit.as_secs());
    let nonce = format!(
        "appgear smoke {}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default()
    );

    let reader = Doc::new();
    let text = reader.get_or_insert_text(TEXT);
    let mut second = tokio::time::timeout(left(), open(addr, host, path, token))
        .await
        .map_err(within("no WebSocket was opened"))??;
    // Joined once the gateway answers the document's state: from then on it relays updates.
    second
        .send(Message::Binary(codec::sync_step1(&StateVector::default())))
        .await
        .map_err(|e| format!("the connection failed: {e}"))?;
    tokio::time::timeout(left(), async {
        loop {
            if next_message(&mut second, &reader).await? == Got::State {
                return Ok::<_, String>(());
            }
        }
    })
    .await
    .map_err(within("the gateway did not answer the document's state"))??;

    let mut first = tokio::time::timeout(left(), open(addr, host, path, token))
        .await
        .map_err(within("no second WebSocket was opened"))??;
    let writer = Doc::new();
    let written = writer.get_or_insert_text(TEXT);
    let update = {
        let mut txn = writer.transact_mut();
        written.insert(&mut txn, 0, &nonce);
        txn.encode_update_v1()
    };
    first
        .send(Message::Binary(codec::sync_update(&update)))
        .await
        .map_err(|e| format!("the connection failed: {e}"))?;

    let seen = tokio::time::timeout(left(), async {
        loop {
            next_message(&mut second, &reader).await?;
            if text.get_string(&reader.transact()).contains(&nonce) {
                return Ok::<_, String>(());
            }
        }
    })
    .await;
    let took = started.elapsed();
    let _ = first.close(None).await;
    let _ = second.close(None).await;
    match seen {
        Ok(r) => r.map(|()| took),
        Err(_) => Err(format!(
            "an update sent on one connection did not come back on the other within {} s: the gateway does not relay document updates",
            limit.as_secs()
        )),
    }
}

/// Where one workspace's checks go.
pub struct Target<'a> {
    /// Kong's host port, `ip:port`.
    pub addr: &'a str,
    pub workspace: &'a str,
    /// `<workspace>.<domain>`.
    pub host: String,
    /// A token for the workspace, or why there is none (the sync is then skipped, said so).
    pub token: std::result::Result<String, String>,
    pub bound: Bound,
}

/// Every check of one workspace, in order: the gateway's wake, `/vscode/`, the sync.
pub async fn workspace(t: &Target<'_>) -> Vec<Row> {
    let row = |check: &str, path: &str, r: std::result::Result<(String, Duration), String>| {
        let target = format!("{}: {path}", t.workspace);
        match r {
            Ok((result, took)) => Row {
                check: check.into(),
                target,
                result,
                time: Some(took),
                ok: true,
            },
            Err(why) => Row {
                check: check.into(),
                target,
                result: why,
                time: None,
                ok: false,
            },
        }
    };
    let mut rows = Vec::new();
    let woke = |w: Woke| {
        let after = match w.tries {
            1 => "at once".to_string(),
            n => format!("after {n} requests"),
        };
        (format!("{} {after}", w.line), w.took)
    };
    let health = "/multiplayer/healthz";
    let gateway = wake(t.addr, &t.host, health, t.bound).await.map(woke);
    let gateway_up = gateway.is_ok();
    rows.push(row("wake", health, gateway));
    let vscode = wake(t.addr, &t.host, "/vscode/", t.bound).await.map(woke);
    rows.push(row("route", "/vscode/", vscode));
    let room = "/multiplayer/appgear-smoke";
    let synced = match (&t.token, gateway_up) {
        (Err(why), _) => {
            rows.push(Row {
                check: "sync".into(),
                target: format!("{}: {room}", t.workspace),
                result: format!("skipped: {why}"),
                time: None,
                ok: true,
            });
            return rows;
        }
        (Ok(_), false) => Err("not tried: the gateway did not wake".to_string()),
        (Ok(token), true) => sync(t.addr, &t.host, room, token, Duration::from_secs(30))
            .await
            .map(|took| {
                (
                    "a document update came back on a second connection".to_string(),
                    took,
                )
            }),
    };
    rows.push(row("sync", room, synced));
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_and_what_they_mean() {
        assert_eq!(
            status_code("HTTP/1.1 302 Found\r\nLocation: ./login\r\n"),
            Some(302)
        );
        assert_eq!(status_code("SSH-2.0-OpenSSH"), None);
        assert!(verdict(302).is_ok());
        assert_eq!(
            verdict(404).unwrap_err(),
            "Kong found no route for it (404)"
        );
        assert!(verdict(503).unwrap_err().contains("nothing ready"));
    }

    #[test]
    fn a_waking_workload_is_waited_for_and_a_missing_route_is_not() {
        assert_eq!(wake_verdict(200), Answer::Awake("answers (200)".into()));
        assert!(matches!(wake_verdict(503), Answer::Waking(_)));
        assert!(matches!(wake_verdict(504), Answer::Waking(_)));
        assert!(matches!(wake_verdict(404), Answer::Refused(_)));
        assert!(matches!(wake_verdict(401), Answer::Refused(_)));
    }

    #[test]
    fn close_codes_are_named() {
        assert!(close_verdict(4401, "invalid or expired token").starts_with(
            "the gateway refused the token (4401 invalid or expired token): it was not signed"
        ));
        assert!(close_verdict(4403, "").contains("(4403): it is for another workspace"));
        assert_eq!(
            close_verdict(1013, "storage unavailable, try again"),
            "the gateway closed the connection (1013 storage unavailable, try again)"
        );
    }

    #[test]
    fn rows_show_their_time_or_a_dash() {
        let r = Row {
            check: "wake".into(),
            target: "demo: /multiplayer/healthz".into(),
            result: "answers (200) after 3 requests".into(),
            time: Some(Duration::from_millis(12_340)),
            ok: true,
        };
        assert_eq!(r.cells()[3], "12.3 s");
        let skipped = Row { time: None, ..r };
        assert_eq!(skipped.cells()[3], "-");
    }
}

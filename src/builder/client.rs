//! The client side of `appgear builder submit|status|list|logs|cancel`: plain HTTP/1.1 to
//! `serve` (one request per connection), JSON answers, and a log follower that resumes after
//! the last chunk it printed, so a dropped connection loses no line and repeats none.
//!
//! Only `http://` this round: in the cluster the CLI reaches `serve` through a port-forward or
//! Kong's TLS in front of it.

use crate::builder::queue::job::BuildSpec;
use crate::core::error::{Error, Kind, Result};
use serde_json::Value;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The longest answer read (a list of 500 builds fits many times over).
const MAX_RESPONSE: usize = 16 * 1024 * 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
pub struct Client {
    host: String,
    port: u16,
    base: String,
    token: Option<String>,
}

/// What a download wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Downloaded {
    pub bytes: u64,
    /// Of the bytes written.
    pub sha256: String,
    /// What the API said the artifact's SHA-256 is (`x-appgear-sha256`).
    pub announced: String,
}

/// A path for a URL: unreserved characters and `/` as they are, the rest percent-encoded.
pub fn encode_path(p: &str) -> String {
    let mut out = String::new();
    for b in p.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// One page of a build's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogPage {
    pub text: String,
    /// Where the next page starts.
    pub next: String,
    pub state: String,
    /// The build ended and every chunk was read.
    pub done: bool,
}

fn bad_url(url: &str) -> Error {
    Error::bad_input(format!(
        "{url:?} is not an http://host:port address of the builder API"
    ))
    .hint("pass --url http://127.0.0.1:8088 (where `appgear builder serve` listens)")
}

/// The API's answer `status` (not 2xx) as an appgear error with a hint.
fn api_error(status: u16, v: &Value, body: &[u8]) -> Error {
    let message = v
        .get("error")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_string());
    let (kind, hint) = match status {
        401 => (Kind::BadInput, "pass a token with --token or BUILDER_TOKEN"),
        403 => (
            Kind::BadInput,
            "this token lacks the scope; use one with submit, read or cancel as needed",
        ),
        404 => (
            Kind::BadInput,
            "list the builds with `appgear builder list`",
        ),
        409 => (
            Kind::CheckFailed,
            "see the build with `appgear builder status <id>`",
        ),
        400 | 413 => (Kind::BadInput, "see docs/builder.md for the request format"),
        503 => (
            Kind::NotReady,
            "the builder's Redis or object store is unavailable; try again shortly",
        ),
        _ => (Kind::Internal, "see the builder API's logs"),
    };
    Error::new(kind, format!("builder API: {message} (HTTP {status})")).hint(hint)
}

/// `Transfer-Encoding: chunked` body → bytes.
fn dechunk(mut body: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = body.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&body[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(body.get(..size)?);
        body = body.get(size + 2..)?;
    }
}

/// `(status, body)` of a raw HTTP/1.1 response.
pub fn parse_response(raw: &[u8]) -> Option<(u16, Vec<u8>)> {
    let head_end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..head_end]).ok()?;
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let chunked = lines.any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let body = &raw[head_end + 4..];
    let body = if chunked {
        dechunk(body)?
    } else {
        body.to_vec()
    };
    Some((status, body))
}

impl Client {
    pub fn new(url: &str, token: Option<String>) -> Result<Client> {
        let rest = url.strip_prefix("http://").ok_or_else(|| bad_url(url))?;
        let authority = rest.trim_end_matches('/');
        let (host, port) = authority.rsplit_once(':').ok_or_else(|| bad_url(url))?;
        let port: u16 = port.parse().map_err(|_| bad_url(url))?;
        if host.is_empty() || authority.contains('/') {
            return Err(bad_url(url));
        }
        Ok(Client {
            host: host.to_string(),
            port,
            base: format!("http://{authority}"),
            token,
        })
    }

    async fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
        headers: &[(&str, &str)],
        timeout: Duration,
    ) -> Result<(u16, Vec<u8>)> {
        let unreachable = |e: String| {
            Error::not_ready(format!(
                "cannot reach the builder API at {}: {e}",
                self.base
            ))
            .hint("start it with `appgear builder serve`, or pass the right --url")
        };
        let mut s = tokio::time::timeout(
            CONNECT_TIMEOUT,
            TcpStream::connect((self.host.as_str(), self.port)),
        )
        .await
        .map_err(|_| unreachable("timed out".into()))?
        .map_err(|e| unreachable(e.to_string()))?;
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nAccept: application/json\r\n", self.host);
        if let Some(t) = &self.token {
            req.push_str(&format!("Authorization: Bearer {t}\r\n"));
        }
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        let body = body.unwrap_or_default();
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        ));
        let exchange = async {
            s.write_all(req.as_bytes()).await?;
            s.write_all(body).await?;
            let mut raw = Vec::new();
            (&mut s)
                .take(MAX_RESPONSE as u64)
                .read_to_end(&mut raw)
                .await?;
            Ok::<_, std::io::Error>(raw)
        };
        let raw = tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| unreachable("no answer in time".into()))?
            .map_err(|e| unreachable(e.to_string()))?;
        parse_response(&raw).ok_or_else(|| unreachable("the answer is not HTTP".into()))
    }

    /// The JSON of a 2xx answer, or the API's error as an appgear error.
    async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
        headers: &[(&str, &str)],
        timeout: Duration,
    ) -> Result<(u16, Value)> {
        let (status, body) = self.request(method, path, body, headers, timeout).await?;
        let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if (200..300).contains(&status) {
            return Ok((status, v));
        }
        Err(api_error(status, &v, &body))
    }

    const TIMEOUT: Duration = Duration::from_secs(30);

    /// Submit a build. `(created, build)`: `created` is false when the Idempotency-Key had
    /// already given this build.
    pub async fn submit(
        &self,
        spec: &BuildSpec,
        idempotency_key: Option<&str>,
    ) -> Result<(bool, Value)> {
        let body = serde_json::to_vec(spec).map_err(|e| Error::internal(e.to_string()))?;
        let headers: Vec<(&str, &str)> = idempotency_key
            .map(|k| vec![("Idempotency-Key", k)])
            .unwrap_or_default();
        let (status, v) = self
            .call("POST", "/v1/builds", Some(&body), &headers, Self::TIMEOUT)
            .await?;
        Ok((status == 202, v))
    }

    pub async fn status(&self, id: &str) -> Result<Value> {
        Ok(self
            .call("GET", &format!("/v1/builds/{id}"), None, &[], Self::TIMEOUT)
            .await?
            .1)
    }

    pub async fn list(&self, limit: usize) -> Result<Value> {
        Ok(self
            .call(
                "GET",
                &format!("/v1/builds?limit={limit}"),
                None,
                &[],
                Self::TIMEOUT,
            )
            .await?
            .1)
    }

    pub async fn cancel(&self, id: &str) -> Result<Value> {
        Ok(self
            .call(
                "POST",
                &format!("/v1/builds/{id}/cancel"),
                None,
                &[],
                Self::TIMEOUT,
            )
            .await?
            .1)
    }

    /// The log after `after` (`None`: from the start), waiting up to `wait` for new lines.
    pub async fn logs(&self, id: &str, after: Option<&str>, wait: Duration) -> Result<LogPage> {
        let path = format!(
            "/v1/builds/{id}/logs?after={}&wait={}",
            after.unwrap_or(""),
            wait.as_secs()
        );
        let (_, v) = self
            .call("GET", &path, None, &[], wait + Self::TIMEOUT)
            .await?;
        let text = v["chunks"]
            .as_array()
            .map(|cs| {
                cs.iter()
                    .filter_map(|c| c["data"].as_str())
                    .collect::<String>()
            })
            .unwrap_or_default();
        Ok(LogPage {
            text,
            next: v["next"].as_str().unwrap_or_default().to_string(),
            state: v["state"].as_str().unwrap_or_default().to_string(),
            done: v["done"].as_bool().unwrap_or(false),
        })
    }

    /// What the build's committed attempt stored: `{build, attempt, state, artifacts: [{name,
    /// size, sha256}]}`.
    pub async fn artifacts(&self, id: &str) -> Result<Value> {
        Ok(self
            .call(
                "GET",
                &format!("/v1/builds/{}/artifacts", encode_path(id)),
                None,
                &[],
                Self::TIMEOUT,
            )
            .await?
            .1)
    }

    /// Stream one artifact into `file` (no size limit, nothing held in memory). Returns the
    /// bytes written, the SHA-256 of what was written and the one the API announced.
    pub async fn download(
        &self,
        id: &str,
        name: &str,
        file: &mut tokio::fs::File,
    ) -> Result<Downloaded> {
        use http_body_util::{BodyExt, Empty};
        use hyper::body::Bytes;
        use sha2::Digest;
        let unreachable = |e: String| {
            Error::not_ready(format!(
                "cannot reach the builder API at {}: {e}",
                self.base
            ))
            .hint("start it with `appgear builder serve`, or pass the right --url")
        };
        let stream = tokio::time::timeout(
            CONNECT_TIMEOUT,
            TcpStream::connect((self.host.as_str(), self.port)),
        )
        .await
        .map_err(|_| unreachable("timed out".into()))?
        .map_err(|e| unreachable(e.to_string()))?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .map_err(|e| unreachable(e.to_string()))?;
        let driver = tokio::spawn(async move {
            let _ = conn.await;
        });
        let path = format!(
            "/v1/builds/{}/artifacts/{}",
            encode_path(id),
            encode_path(name)
        );
        let mut req = hyper::Request::get(path).header(hyper::header::HOST, self.host.as_str());
        if let Some(t) = &self.token {
            req = req.header(hyper::header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let req = req
            .body(Empty::<Bytes>::new())
            .map_err(|e| Error::bad_input(format!("artifact {name:?}: {e}")))?;
        let resp = tokio::time::timeout(Self::TIMEOUT, sender.send_request(req))
            .await
            .map_err(|_| unreachable("no answer in time".into()))?
            .map_err(|e| unreachable(e.to_string()))?;
        let status = resp.status().as_u16();
        let announced = resp
            .headers()
            .get("x-appgear-sha256")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let mut body = resp.into_body();
        if status != 200 {
            let mut raw = Vec::new();
            while let Some(Ok(frame)) = body.frame().await {
                if let Ok(d) = frame.into_data() {
                    raw.extend_from_slice(&d);
                }
                if raw.len() > MAX_RESPONSE {
                    break;
                }
            }
            driver.abort();
            let v: Value = serde_json::from_slice(&raw).unwrap_or(Value::Null);
            return Err(api_error(status, &v, &raw));
        }
        let mut hasher = sha2::Sha256::new();
        let mut bytes = 0u64;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| unreachable(format!("the download broke off: {e}")))?;
            if let Ok(d) = frame.into_data() {
                hasher.update(&d);
                file.write_all(&d).await.map_err(|e| {
                    Error::not_ready(format!("cannot write artifact {name:?}: {e}"))
                        .hint("check the space and permissions of the --out folder")
                })?;
                bytes += d.len() as u64;
            }
        }
        file.flush().await.map_err(|e| {
            Error::not_ready(format!("cannot write artifact {name:?}: {e}"))
                .hint("check the space and permissions of the --out folder")
        })?;
        driver.abort();
        Ok(Downloaded {
            bytes,
            sha256: crate::core::digest::hex(&hasher.finalize()),
            announced,
        })
    }

    /// Follow a build's log to its end, giving each piece of text to `out`, and return the
    /// final state. A failed request is retried from the last chunk received, up to `retries`
    /// times in a row.
    pub async fn follow(
        &self,
        id: &str,
        retries: u32,
        mut out: impl FnMut(&str),
    ) -> Result<String> {
        let mut after: Option<String> = None;
        let mut failures = 0;
        loop {
            match self
                .logs(id, after.as_deref(), Duration::from_secs(10))
                .await
            {
                Ok(page) => {
                    failures = 0;
                    if !page.text.is_empty() {
                        out(&page.text);
                    }
                    if page.done {
                        return Ok(page.state);
                    }
                    if !page.next.is_empty() {
                        after = Some(page.next);
                    }
                }
                Err(e) if e.kind == Kind::NotReady && failures < retries => {
                    failures += 1;
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert!(Client::new("http://127.0.0.1:8088", None).is_ok());
        assert!(Client::new("http://127.0.0.1:8088/", None).is_ok());
        for bad in [
            "https://x:1",
            "127.0.0.1:8088",
            "http://x",
            "http://:1",
            "http://x:1/api",
        ] {
            assert!(Client::new(bad, None).is_err(), "{bad}");
        }
    }

    #[test]
    fn responses_plain_and_chunked() {
        let plain = b"HTTP/1.1 202 Accepted\r\ncontent-length: 2\r\n\r\n{}";
        assert_eq!(parse_response(plain), Some((202, b"{}".to_vec())));
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        assert_eq!(parse_response(chunked), Some((200, b"abcde".to_vec())));
        assert_eq!(parse_response(b"garbage"), None);
    }
}

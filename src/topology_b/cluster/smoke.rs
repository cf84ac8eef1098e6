//! The smoke stage's first check: each workspace's `/vscode/` answers through Kong on the host
//! port. Plain HTTP on `FACTORY_CLUSTER_HTTP_PORT` with the workspace's host name: a 2xx or 3xx
//! (code-server's login redirect, or Kong's redirect to HTTPS) means the route, the Service and
//! the pod are wired; Kong's 404 means no route matched, 502/503 that nothing serves behind it.
//! The multiplayer sync and the wake from zero are not checked yet.

use crate::core::error::{Error, Result};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

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

/// GET `path` on `addr` with `host`, within ten seconds.
pub async fn get(addr: &str, host: &str, path: &str) -> Result<u16> {
    let fail =
        |m: String| Error::unhealthy(m).hint("`appgear cluster status` shows what is not ready");
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
    let head = tokio::time::timeout(Duration::from_secs(10), io)
        .await
        .map_err(|_| {
            fail(format!(
                "http://{host}{path} through {addr} did not answer within 10 s"
            ))
        })?
        .map_err(|e| fail(format!("cannot reach Kong at {addr}: {e}")))?;
    status_code(&head).ok_or_else(|| fail(format!("{addr} did not answer HTTP for {host}")))
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
}

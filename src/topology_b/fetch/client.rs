//! HTTP GET for add-on files: upstream release files, chart repositories and http(s) mirrors.
//!
//! What comes over the network is untrusted, so every GET has a size cap (the body is cut off
//! past it, whatever Content-Length says), an idle timeout and an overall deadline, and follows
//! at most `MAX_HOPS` redirects (GitHub release URLs redirect to their storage). Only https is
//! used, except for a loopback server and for an http mirror the user named; a redirect never
//! goes from https to plain http.
//!
//! `Client::routed` maps every URL before it is requested: the one seam tests use to send the
//! pinned upstream URLs to a loopback server. It is a function given in code, never a setting a
//! user could set by accident.

use crate::core::error::{Error, Kind, Result};
use crate::core::ui;
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::{StatusCode, Uri};
use hyper_util::client::legacy::connect::{Connect, HttpConnector};
use hyper_util::rt::TokioExecutor;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::{timeout_at, Instant};

/// GitHub's release downloads redirect once or twice; more is a loop or not a download.
pub const MAX_HOPS: usize = 5;

/// No byte for this long: the server stalled.
pub const IDLE: Duration = Duration::from_secs(30);

/// A whole file (the largest is a chart repository's index, a few MiB) within this.
pub const DEADLINE: Duration = Duration::from_secs(600);

/// Maps a URL to the one actually requested (identity, except in tests).
pub type Route = Arc<dyn Fn(&str) -> String + Send + Sync>;

/// The client. Cheap to make; each GET runs on a runtime of its own (see `get`).
#[derive(Clone)]
pub struct Client {
    route: Route,
    idle: Duration,
    deadline: Duration,
    /// Show a byte bar for each download (on a terminal only; see `ui::bytes_bar`).
    progress: bool,
}

impl Default for Client {
    fn default() -> Self {
        Client::new()
    }
}

/// Whether plain http may be used for a URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plain {
    /// Only for a loopback host (upstream downloads).
    LoopbackOnly,
    /// Also for the host the user named as an http mirror.
    Allowed,
}

impl Client {
    pub fn new() -> Client {
        Client {
            route: Arc::new(|u: &str| u.to_string()),
            idle: IDLE,
            deadline: DEADLINE,
            progress: true,
        }
    }
    /// Every URL goes through `route` before it is requested.
    pub fn routed(route: impl Fn(&str) -> String + Send + Sync + 'static) -> Client {
        Client {
            route: Arc::new(route),
            ..Client::new()
        }
    }
    pub fn with_idle(mut self, idle: Duration) -> Client {
        self.idle = idle;
        self
    }
    pub fn quiet(mut self) -> Client {
        self.progress = false;
        self
    }

    /// GET `url`: its body of at most `max` bytes, or `None` for 404/410. Blocking: it runs on a
    /// thread with its own runtime, so it can be called from sync code inside the CLI's runtime.
    pub fn get(&self, url: &str, max: u64, plain: Plain) -> Result<Option<Vec<u8>>> {
        std::thread::scope(|s| {
            s.spawn(|| {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| Error::internal(format!("cannot start a runtime: {e}")))?;
                rt.block_on(self.get_async(url, max, plain))
            })
            .join()
            .unwrap_or_else(|_| Err(Error::internal(format!("the download of {url} panicked"))))
        })
    }

    async fn get_async(&self, url: &str, max: u64, plain: Plain) -> Result<Option<Vec<u8>>> {
        let deadline = Instant::now() + self.deadline;
        let mut current = (self.route)(url);
        let mut was_https = false;
        for _ in 0..=MAX_HOPS {
            let uri = check_url(&current, plain, was_https).map_err(|why| {
                Error::bad_input(format!("cannot download {url}: {why}")).hint(
                    "appgear downloads add-ons over https only (an http mirror may be plain http)",
                )
            })?;
            was_https = uri.scheme_str() == Some("https");
            let response = if was_https {
                let https = https_connector()?;
                self.send(https, &uri, url, deadline).await?
            } else {
                self.send(HttpConnector::new(), &uri, url, deadline).await?
            };
            let status = response.status();
            if status.is_redirection() && status != StatusCode::NOT_MODIFIED {
                let location = response
                    .headers()
                    .get(hyper::header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .ok_or_else(|| {
                        unreachable_error(url, &format!("HTTP {status} without a Location"))
                    })?;
                current = resolve(&current, location);
                continue;
            }
            if status == StatusCode::NOT_FOUND || status == StatusCode::GONE {
                return Ok(None);
            }
            if !status.is_success() {
                return Err(unreachable_error(url, &format!("HTTP {status}")));
            }
            let length = response
                .headers()
                .get(hyper::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            if length.is_some_and(|n| n > max) {
                return Err(too_big(url, max));
            }
            return self
                .body(response.into_body(), url, max, length, deadline)
                .await
                .map(Some);
        }
        Err(unreachable_error(
            url,
            &format!("more than {MAX_HOPS} redirects"),
        ))
    }

    async fn send<C>(
        &self,
        connector: C,
        uri: &Uri,
        url: &str,
        deadline: Instant,
    ) -> Result<hyper::Response<hyper::body::Incoming>>
    where
        C: Connect + Clone + Send + Sync + 'static,
    {
        let client: hyper_util::client::legacy::Client<C, Empty<Bytes>> =
            hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build(connector);
        let request = hyper::Request::get(uri.clone())
            .header(
                hyper::header::USER_AGENT,
                concat!("appgear/", env!("CARGO_PKG_VERSION")),
            )
            .body(Empty::new())
            .map_err(|e| Error::bad_input(format!("cannot download {url}: {e}")))?;
        let until = deadline.min(Instant::now() + self.idle);
        match timeout_at(until, client.request(request)).await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => Err(unreachable_error(url, &describe(&e))),
            Err(_) => Err(stalled(url, self.idle)),
        }
    }

    async fn body(
        &self,
        mut body: hyper::body::Incoming,
        url: &str,
        max: u64,
        length: Option<u64>,
        deadline: Instant,
    ) -> Result<Vec<u8>> {
        let multi = indicatif::MultiProgress::new();
        let bar = if self.progress {
            ui::bytes_bar(&multi, file_name(url))
        } else {
            indicatif::ProgressBar::hidden()
        };
        if let Some(n) = length {
            bar.set_length(n);
        }
        let mut out = Vec::new();
        loop {
            let until = deadline.min(Instant::now() + self.idle);
            let frame = match timeout_at(until, body.frame()).await {
                Err(_) => {
                    bar.abandon();
                    return Err(stalled(url, self.idle));
                }
                Ok(None) => break,
                Ok(Some(Err(e))) => {
                    bar.abandon();
                    return Err(unreachable_error(
                        url,
                        &format!("the download broke off: {}", describe(&e)),
                    ));
                }
                Ok(Some(Ok(f))) => f,
            };
            if let Ok(data) = frame.into_data() {
                if out.len() as u64 + data.len() as u64 > max {
                    bar.abandon();
                    return Err(too_big(url, max));
                }
                out.extend_from_slice(&data);
                bar.set_position(out.len() as u64);
            }
        }
        bar.finish_and_clear();
        Ok(out)
    }
}

/// The https connector: Mozilla's roots (webpki-roots), http/1.1, ring (`core::tls`).
fn https_connector() -> Result<hyper_rustls::HttpsConnector<HttpConnector>> {
    crate::core::tls::use_ring();
    Ok(hyper_rustls::HttpsConnectorBuilder::new()
        .with_webpki_roots()
        .https_only()
        .enable_http1()
        .build())
}

/// The error and its cause chain in one line (hyper's Display is only the outermost part).
fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}

fn file_name(url: &str) -> String {
    url.rsplit('/').next().unwrap_or(url).to_string()
}

fn unreachable_error(url: &str, why: &str) -> Error {
    Error::new(Kind::NotReady, format!("cannot download {url}: {why}")).hint(
        "check the network (or the mirror); offline, set APPGEAR_ADDONS_MIRROR to a mirror written by `appgear cluster mirror --out DIR`",
    )
}

fn too_big(url: &str, max: u64) -> Error {
    Error::bad_input(format!(
        "cannot download {url}: it is larger than {}, more than any pinned add-on file; the download was cut off",
        crate::core::yaml::size(max)
    ))
    .hint("the server does not serve what appgear pinned; check the mirror or the URL")
}

fn stalled(url: &str, idle: Duration) -> Error {
    Error::new(
        Kind::NotReady,
        format!(
            "cannot download {url}: the server sent nothing for {}; the download was cut off",
            humantime::format_duration(idle)
        ),
    )
    .hint("check the network (or the mirror) and run the command again")
}

/// Which URLs may be requested: https; plain http only to a loopback host (a local mirror, or
/// the server tests route to) or, when the user named an http mirror, to it; never from https
/// to http.
pub fn check_url(url: &str, plain: Plain, was_https: bool) -> std::result::Result<Uri, String> {
    let uri: Uri = url
        .parse()
        .map_err(|e| format!("{url:?} is not a URL ({e})"))?;
    let host = uri.host().unwrap_or("");
    if host.is_empty() {
        return Err(format!("{url:?} has no host"));
    }
    match uri.scheme_str() {
        Some("https") => Ok(uri),
        Some("http") if was_https => Err(format!("a redirect from https to plain http ({url})")),
        Some("http") if is_loopback(host) => Ok(uri),
        Some("http") if plain == Plain::Allowed => Ok(uri),
        Some("http") => Err(format!("{url} is plain http")),
        _ => Err(format!("{url:?} is not an http(s) URL")),
    }
}

fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare == "localhost"
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A redirect's Location against the URL it came from.
pub fn resolve(base: &str, location: &str) -> String {
    let lower = location.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        return location.to_string();
    }
    let (scheme, rest) = base.split_once("://").unwrap_or(("https", base));
    if let Some(rest) = location.strip_prefix("//") {
        return format!("{scheme}://{rest}");
    }
    let authority = rest.split('/').next().unwrap_or(rest);
    if location.starts_with('/') {
        return format!("{scheme}://{authority}{location}");
    }
    let path = &rest[authority.len()..];
    let path = path.split(['?', '#']).next().unwrap_or(path);
    let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
    format!("{scheme}://{authority}{dir}/{location}")
}

/// The client as an http(s) mirror's reader: plain http is allowed to the host the user named.
impl crate::topology_b::mirror::HttpGet for Client {
    fn get(&self, url: &str, max: u64) -> Result<Option<Vec<u8>>> {
        Client::get(self, url, max, Plain::Allowed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_only_except_loopback_and_a_named_http_mirror() {
        assert!(check_url("https://github.com/a", Plain::LoopbackOnly, false).is_ok());
        assert!(check_url("http://127.0.0.1:8080/a", Plain::LoopbackOnly, false).is_ok());
        // Not even to loopback: an https server must not steer the client to local services.
        assert!(check_url("http://127.0.0.1:8080/a", Plain::LoopbackOnly, true).is_err());
        assert!(check_url("http://[::1]:80/a", Plain::LoopbackOnly, false).is_ok());
        assert!(check_url("http://localhost/a", Plain::LoopbackOnly, false).is_ok());
        let e = check_url("http://example.com/a", Plain::LoopbackOnly, false).unwrap_err();
        assert_eq!(e, "http://example.com/a is plain http");
        assert!(check_url("http://mirror.lan/a", Plain::Allowed, false).is_ok());
        let e = check_url("http://mirror.lan/a", Plain::Allowed, true).unwrap_err();
        assert!(e.starts_with("a redirect from https to plain http"), "{e}");
        assert!(check_url("ftp://x/a", Plain::Allowed, false).is_err());
        assert!(check_url("https:///a", Plain::Allowed, false).is_err());
    }

    #[test]
    fn redirects_resolve_against_the_url_they_came_from() {
        let base = "https://github.com/o/r/releases/download/v1/f.yaml";
        assert_eq!(
            resolve(base, "https://objects.example.com/x?sig=1"),
            "https://objects.example.com/x?sig=1"
        );
        assert_eq!(resolve(base, "/other"), "https://github.com/other");
        assert_eq!(
            resolve(base, "//cdn.example.com/f"),
            "https://cdn.example.com/f"
        );
        assert_eq!(
            resolve(base, "g.yaml"),
            "https://github.com/o/r/releases/download/v1/g.yaml"
        );
    }
}

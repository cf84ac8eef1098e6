//! Accepting connections for the HTTP server (`http`): every socket gets a place among the
//! pending connections (see `pending`) and is read through [`GuardedIo`], which cuts it when it
//! waits too long for a request head or is evicted. A failing `accept` (at the open-file limit,
//! for instance) is logged and retried with a growing pause rather than in a busy loop, and
//! frees a descriptor by closing the connection that has waited longest for its request.
//!
//! (hyper's own header timeout counts from the first byte of a request and knows nothing of the
//! eviction: the deadline is enforced on the socket instead.) Once a connection becomes an editor
//! session, [`GuardedIo::into_stream`] gives the bare socket back, so that an idle session holds
//! neither the guard nor its timer.

use crate::multiplayer::log;
use crate::multiplayer::metrics::{inc, Metrics};
use crate::multiplayer::server::pending::{Access, ConnHandle, PendingConnections};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, Sleep};

/// The first pause after a failed `accept`, doubled on each failure in a row up to the last.
const FIRST_BACKOFF: Duration = Duration::from_millis(10);
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// At most one log line of a kind in this long: a flood must not become a flood of lines.
const LOG_EVERY: Duration = Duration::from_secs(10);

pub struct GatewayListener {
    listener: TcpListener,
    pending: PendingConnections,
    metrics: Arc<Metrics>,
    accept_failed: Throttle,
    full: Throttle,
}

impl GatewayListener {
    pub fn new(listener: TcpListener, pending: PendingConnections, metrics: Arc<Metrics>) -> Self {
        GatewayListener {
            listener,
            pending,
            metrics,
            accept_failed: Throttle::default(),
            full: Throttle::default(),
        }
    }
}

impl GatewayListener {
    /// The next connection that got a place. Cancel-safe: nothing is lost when the caller stops
    /// waiting (a socket is taken and placed without waiting in between).
    pub async fn accept(&mut self) -> GuardedIo {
        let mut backoff = FIRST_BACKOFF;
        loop {
            match self.listener.accept().await {
                Ok((stream, _)) => match self.pending.admit() {
                    Some(conn) => return GuardedIo::new(stream, conn),
                    None => {
                        // Every place is held by a request being answered: this one waits its
                        // turn by reconnecting (dropping the socket closes it).
                        inc(&self.metrics.pending_refused);
                        self.full.log(|n| {
                            format!(
                                "closed {n} new connection(s): all {} places for connections \
                                 that are not editor sessions are held by requests in progress \
                                 (--max-pending-connections)",
                                self.pending.len()
                            )
                        });
                    }
                },
                // The peer gave up before we took it: nothing to wait for.
                Err(e) if is_connection_error(&e) => {}
                Err(e) => {
                    inc(&self.metrics.accept_errors);
                    let freed = self.pending.make_room();
                    self.accept_failed.log(|n| {
                        format!(
                            "cannot accept connections ({n} failure(s)): {e}; retrying in up to \
                             {}ms{}. At the open-file limit, raise it (ulimit -n) above \
                             --max-connections plus --max-pending-connections",
                            MAX_BACKOFF.as_millis(),
                            if freed {
                                "; closed the connection waiting longest for its request"
                            } else {
                                ""
                            }
                        )
                    });
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }
}

fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// Logs the first event, then at most one line per [`LOG_EVERY`] counting the events between.
#[derive(Default)]
struct Throttle {
    last: Option<Instant>,
    count: u64,
}

impl Throttle {
    fn log(&mut self, line: impl FnOnce(u64) -> String) {
        self.count += 1;
        let now = Instant::now();
        if self.last.is_some_and(|at| now < at + LOG_EVERY) {
            return;
        }
        log::warn(line(self.count));
        self.last = Some(now);
        self.count = 0;
    }
}

/// A socket whose reads are cut when its pending place says so. Writes pass through: what
/// the gateway writes before the upgrade is small and fits the socket's buffer.
pub struct GuardedIo {
    stream: TcpStream,
    conn: Place,
    timer: Pin<Box<Sleep>>,
    /// Once cut, every read fails the same way.
    cut: Option<io::ErrorKind>,
}

/// The connection's pending place, given back when the socket is dropped or handed on.
struct Place(ConnHandle);

impl Drop for Place {
    fn drop(&mut self) {
        self.0.forget();
    }
}

impl GuardedIo {
    fn new(stream: TcpStream, conn: ConnHandle) -> Self {
        GuardedIo {
            stream,
            conn: Place(conn),
            timer: Box::pin(tokio::time::sleep(Duration::ZERO)),
            cut: None,
        }
    }

    /// The connection's place, which its requests find in their extensions.
    pub fn conn(&self) -> &ConnHandle {
        &self.conn.0
    }

    /// The bare socket, for a connection that became an editor session (it left the pending
    /// budget already; its place, timer and guard are dropped here).
    pub fn into_stream(self) -> TcpStream {
        self.stream
    }

    fn cut(&mut self, kind: io::ErrorKind) -> Poll<io::Result<()>> {
        self.cut = Some(kind);
        let why = match kind {
            io::ErrorKind::TimedOut => "no request head within the header timeout",
            _ => "closed to make room for a newer connection",
        };
        Poll::Ready(Err(io::Error::new(kind, why)))
    }
}

impl AsyncRead for GuardedIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(kind) = this.cut {
            return this.cut(kind);
        }
        match this.conn.0.check(cx.waker()) {
            Access::Free => {}
            Access::Evicted => return this.cut(io::ErrorKind::ConnectionAborted),
            Access::Until(deadline) => {
                if this.timer.deadline() != deadline {
                    this.timer.as_mut().reset(deadline);
                }
                if this.timer.as_mut().poll(cx).is_ready() {
                    this.conn.0.timed_out();
                    return this.cut(io::ErrorKind::TimedOut);
                }
            }
        }
        Pin::new(&mut this.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for GuardedIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests;

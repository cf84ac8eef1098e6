//! The HTTP server: hyper's HTTP/1 connections driven directly, one task per connection while it
//! speaks HTTP. A room's upgrade ends that task (hyper hands the socket over, see `handshake`),
//! so an editor session keeps nothing of the HTTP server: no connection task, no request buffer,
//! no boxed upgraded stream. (`axum::serve` kept a task and its buffers per upgraded connection,
//! which was a third of what an idle editor cost.)

use crate::multiplayer::server::listener::{GatewayListener, GuardedIo};
use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::Request;
use hyper_util::rt::TokioIo;
use std::future::Future;
use tokio::sync::watch;

/// Serve `router` on every connection `listener` accepts until `stop` resolves; then stop
/// accepting, let each connection finish the request it is answering, and return once all
/// have closed. Editor sessions are not waited for: they close on the gateway's own shutdown
/// flag.
pub async fn serve(
    mut listener: GatewayListener,
    router: Router,
    stop: impl Future<Output = ()> + Send + 'static,
) {
    let (closing, open) = watch::channel(false);
    tokio::pin!(stop);
    loop {
        let io = tokio::select! {
            io = listener.accept() => io,
            () = &mut stop => break,
        };
        tokio::spawn(connection(io, router.clone(), open.clone()));
    }
    // No new connections from here on.
    drop(listener);
    closing.send_replace(true);
    drop(open);
    // Every connection task holds a receiver: all are gone once this returns.
    closing.closed().await;
}

/// One connection while it speaks HTTP. Requests find the connection's pending place in their
/// extensions (`ConnectInfo<ConnHandle>`), as the routes expect.
async fn connection(io: GuardedIo, router: Router, mut closing: watch::Receiver<bool>) {
    let place = ConnectInfo(io.conn().clone());
    let service = service_fn(move |mut req: Request<Incoming>| {
        req.extensions_mut().insert(place.clone());
        route(&mut router.clone(), req)
    });
    let conn = http1::Builder::new()
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    tokio::pin!(conn);
    tokio::select! {
        // Closed, failed (the guard cut it, the peer went away) or upgraded: nothing to report.
        _ = conn.as_mut() => return,
        _ = closing.wait_for(|c| *c) => {}
    }
    // Stopping: answer the request in progress, if any, then close.
    conn.as_mut().graceful_shutdown();
    let _ = conn.await;
}

/// The router as the service it is. (Its `Service` trait is tower's, which the crate does not
/// name; axum's `ServiceExt` carries it.)
fn route<S>(router: &mut S, req: Request<Incoming>) -> S::Future
where
    S: axum::ServiceExt<Request<Incoming>>,
{
    router.call(req)
}

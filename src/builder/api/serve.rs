//! Running the API and the reaper together until shutdown.

use crate::builder::api::app::App;
use crate::builder::api::routes::router;
use crate::builder::queue::error::QueueError;
use crate::builder::queue::reaper::Reaped;
use crate::builder::store::ObjectStore;
use crate::core::error::{Error, Result};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// How often the reaper runs: a quarter of the lease, so a lost worker's build is re-queued
/// within about 1.25 leases.
pub fn reaper_interval(lease: Duration) -> Duration {
    (lease / 4).max(Duration::from_millis(100))
}

/// Serve the API on `listener` and reap until `shutdown` resolves. `on_reap` sees every pass
/// (for logs and metrics).
pub async fn serve<S: ObjectStore + 'static>(
    listener: TcpListener,
    app: App<S>,
    shutdown: impl Future<Output = ()> + Send + 'static,
    on_reap: impl FnMut(std::result::Result<Reaped, QueueError>) + Send + 'static,
) -> Result<()> {
    let queue = app.queue.clone();
    let app = Arc::new(app);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let every = reaper_interval(queue.settings().lease);
    let reaper = tokio::spawn(async move {
        let mut stop_rx = stop_rx;
        queue
            .run_reaper(
                every,
                async move {
                    let _ = stop_rx.wait_for(|s| *s).await;
                },
                on_reap,
            )
            .await;
    });
    let served = axum::serve(listener, router(app))
        .with_graceful_shutdown(shutdown)
        .await;
    let _ = stop_tx.send(true);
    let _ = reaper.await;
    served.map_err(|e| {
        Error::internal(format!("the builder API stopped: {e}"))
            .hint("see the cause with --verbose")
            .cause(e)
    })
}

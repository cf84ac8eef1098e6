//! Running the gateway: start-up checks, the shared context, the HTTP server and an orderly
//! shutdown.

use crate::core::error::{Error, Result};
use crate::core::redis::RedisLink;
use crate::multiplayer::config::GatewayConfig;
use crate::multiplayer::log;
use crate::multiplayer::metrics::Metrics;
use crate::multiplayer::redis::keys::Keys;
use crate::multiplayer::redis::locks::{LockLimits, LockStore};
use crate::multiplayer::redis::persistence::RedisDocStore;
use crate::multiplayer::redis::pubsub::RedisBackplane;
use crate::multiplayer::room::link::SessionIds;
use crate::multiplayer::server::context::Context;
use crate::multiplayer::server::http as server;
use crate::multiplayer::server::listener::GatewayListener;
use crate::multiplayer::server::pending::PendingConnections;
use crate::multiplayer::server::registry::Registry;
use crate::multiplayer::server::routes;
use crate::multiplayer::server::slots::ConnectionSlots;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How long Redis may take to answer at start before we give up with exit code 3.
const STARTUP_REDIS_TIMEOUT: Duration = Duration::from_secs(5);
/// On SIGTERM: how long sessions get to close and rooms to flush.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

pub async fn serve(config: GatewayConfig) -> Result<i32> {
    let redis_at = config.redis_display();
    let redis_hint = "start Redis or point --redis (REDIS_URL, or REDIS_HOST=host[:port]) at it; \
                      the gateway keeps documents and talks to its replicas through it";
    let link = Arc::new(RedisLink::new(&config.redis_url).map_err(|e| {
        Error::bad_input(format!("Redis address {redis_at} is not usable: {e}")).hint(redis_hint)
    })?);
    match tokio::time::timeout(STARTUP_REDIS_TIMEOUT, link.ping()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            return Err(
                Error::not_ready(format!("cannot reach Redis at {redis_at}: {e}")).hint(redis_hint),
            )
        }
        Err(_) => {
            return Err(Error::not_ready(format!(
                "Redis at {redis_at} did not answer within {}s",
                STARTUP_REDIS_TIMEOUT.as_secs()
            ))
            .hint(redis_hint))
        }
    }
    let keys = Keys::new(config.workspace.as_str());
    let metrics = Arc::new(Metrics::default());
    let mut id = [0u8; 16];
    getrandom::fill(&mut id).map_err(|e| Error::internal(format!("no randomness: {e}")))?;
    let backplane =
        RedisBackplane::connect_as(link.clone(), keys.clone(), metrics.clone(), Some(id))
            .await
            .map_err(|e| {
                Error::not_ready(format!("cannot subscribe to Redis at {redis_at}: {e}"))
                    .hint(redis_hint)
            })?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| {
            Error::not_ready(format!("cannot listen on {}: {e}", config.listen))
                .hint("pick a free address with --listen (or MULTIPLAYER_LISTEN)")
        })?;
    let local = listener
        .local_addr()
        .map_err(|e| Error::internal(e.to_string()))?;
    log::info(format!(
        "multiplayer gateway for workspace {} listening on {local}, rooms at {}/<room>, Redis at {redis_at}",
        config.workspace.as_str(),
        config.path_prefix
    ));
    if let Some(b) = &config.redpanda_broker {
        log::info(format!(
            "REDPANDA_BROKER={b} noted; this build carries the backplane over Redis pub/sub"
        ));
    }
    let (shutdown, _) = watch::channel(false);
    let ctx = Arc::new(Context {
        store: Arc::new(RedisDocStore::new(link.clone(), keys.clone())),
        locks: LockStore::new(link.clone(), keys).limited(LockLimits {
            per_room: config.limits.locks_per_room,
            per_owner: config.limits.locks_per_owner,
        }),
        backplane,
        link,
        metrics,
        id,
        shutdown,
        sessions: Arc::new(SessionIds::default()),
        slots: ConnectionSlots::new(config.max_connections),
        config,
    });
    let rooms = Arc::new(Registry::new(ctx.room_deps()));
    let stop = ctx.clone();
    http(listener, ctx.clone(), rooms.clone(), async move {
        wait_for_signal().await;
        log::info("stopping: closing sessions with 1012 so that clients reconnect elsewhere");
        stop.shutdown.send_replace(true);
    })
    .await;
    // Sessions were told to close; give them a moment, then flush every room.
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while ctx.metrics.active_sessions.load(Ordering::Relaxed) > 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        rooms.shutdown_all().await;
    })
    .await;
    if drained.is_err() {
        log::warn("stopping: not every room flushed in time; unflushed logs stay in Redis and load next time");
    }
    log::info("stopped");
    Ok(0)
}

/// Serve the routes on `listener` until `stop` resolves. Every connection is bounded before it
/// becomes an editor session (`--header-timeout`, `--max-pending-connections`).
pub async fn http(
    listener: tokio::net::TcpListener,
    ctx: Arc<Context>,
    rooms: Arc<Registry>,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let pending = PendingConnections::new(
        ctx.config.max_pending_connections,
        ctx.config.header_timeout,
        ctx.metrics.clone(),
    );
    let listener = GatewayListener::new(listener, pending, ctx.metrics.clone());
    server::serve(listener, routes::router(ctx, rooms), stop).await
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

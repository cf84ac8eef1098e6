//! The Redis pub/sub transport of the backplane: one channel per room, one subscriber connection
//! per gateway that reconnects and asks rooms to resync when it had to.

use crate::core::redis::RedisLink;
use crate::multiplayer::log;
use crate::multiplayer::metrics::{inc, Metrics};
use crate::multiplayer::redis::backplane::{Backplane, BackplaneEvent, Envelope, GatewayId, Inbox};
use crate::multiplayer::redis::keys::Keys;
use axum::body::Bytes;
use futures_util::future::BoxFuture;
use futures_util::StreamExt;
use redis::aio::PubSubSink;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct RedisBackplane {
    link: Arc<RedisLink>,
    keys: Keys,
    metrics: Arc<Metrics>,
    /// channel → (room generation, inbox)
    routes: Arc<Mutex<HashMap<String, (u64, Inbox)>>>,
    sink: Arc<tokio::sync::Mutex<Option<PubSubSink>>>,
    /// This gateway: its own updates and presence come back through the subscription and are
    /// dropped here, before they take a place in a room's bounded inbox (a full inbox costs the
    /// room a reload of its whole log).
    own: Option<GatewayId>,
}

impl RedisBackplane {
    /// Connect the subscriber; fails if Redis cannot be reached now.
    pub async fn connect(
        link: Arc<RedisLink>,
        keys: Keys,
        metrics: Arc<Metrics>,
    ) -> redis::RedisResult<Arc<Self>> {
        Self::connect_as(link, keys, metrics, None).await
    }

    /// [`Self::connect`] for the gateway `own`: updates and presence it published itself are
    /// not delivered.
    pub async fn connect_as(
        link: Arc<RedisLink>,
        keys: Keys,
        metrics: Arc<Metrics>,
        own: Option<GatewayId>,
    ) -> redis::RedisResult<Arc<Self>> {
        let pubsub = link.client().get_async_pubsub().await?;
        let bp = Arc::new(RedisBackplane {
            link,
            keys,
            metrics,
            routes: Arc::default(),
            sink: Arc::default(),
            own,
        });
        let (sink, stream) = pubsub.split();
        *bp.sink.lock().await = Some(sink);
        tokio::spawn(Self::pump(bp.clone(), stream));
        Ok(bp)
    }

    /// Forward messages to rooms; on loss of the connection, reconnect, resubscribe and tell every
    /// room to resync, since messages published meanwhile are gone.
    async fn pump(self: Arc<Self>, mut stream: redis::aio::PubSubStream) {
        loop {
            while let Some(msg) = stream.next().await {
                inc(&self.metrics.backplane_received);
                let payload = msg.get_payload_bytes();
                if self.own.is_some_and(|own| Envelope::is_echo(payload, &own)) {
                    continue;
                }
                let inbox = lock(&self.routes)
                    .get(msg.get_channel_name())
                    .map(|(_, inbox)| inbox.clone());
                if let Some(inbox) = inbox {
                    inbox.deliver(BackplaneEvent::Message(Bytes::copy_from_slice(payload)));
                }
            }
            *self.sink.lock().await = None;
            log::warn("backplane: lost the Redis subscriber connection; reconnecting");
            let mut delay = Duration::from_millis(200);
            stream = loop {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
                match self.resubscribe().await {
                    Ok(s) => break s,
                    Err(e) => {
                        inc(&self.metrics.redis_errors);
                        log::warn(format!("backplane: reconnect failed: {e}"));
                    }
                }
            };
            log::info("backplane: reconnected");
            let inboxes: Vec<Inbox> = lock(&self.routes)
                .values()
                .map(|(_, i)| i.clone())
                .collect();
            for inbox in inboxes {
                inbox.deliver(BackplaneEvent::Resync);
            }
        }
    }

    async fn resubscribe(&self) -> redis::RedisResult<redis::aio::PubSubStream> {
        // Held throughout, so that no room subscribes between our reading the routes and the
        // new sink being in place.
        let mut slot = self.sink.lock().await;
        let pubsub = self.link.client().get_async_pubsub().await?;
        let (mut sink, stream) = pubsub.split();
        let channels: Vec<String> = lock(&self.routes).keys().cloned().collect();
        for c in channels {
            sink.subscribe(c).await?;
        }
        *slot = Some(sink);
        Ok(stream)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic elsewhere while holding the map does not make the map itself invalid.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Backplane for RedisBackplane {
    // Route changes and (UN)SUBSCRIBE happen under the sink's lock, so a reloading room's new
    // SUBSCRIBE can never be overtaken by its old generation's UNSUBSCRIBE of the same channel.
    fn subscribe<'a>(
        &'a self,
        room: &'a str,
        generation: u64,
        inbox: Inbox,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let channel = self.keys.channel(room);
            let mut sink = self.sink.lock().await;
            lock(&self.routes).insert(channel.clone(), (generation, inbox));
            let Some(sink) = sink.as_mut() else {
                return Err("the Redis subscriber is reconnecting".to_string());
            };
            sink.subscribe(channel).await.map_err(|e| {
                inc(&self.metrics.redis_errors);
                e.to_string()
            })
        })
    }

    fn unsubscribe<'a>(&'a self, room: &'a str, generation: u64) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let channel = self.keys.channel(room);
            let mut sink = self.sink.lock().await;
            let removed = {
                let mut routes = lock(&self.routes);
                match routes.get(&channel) {
                    Some((g, _)) if *g == generation => routes.remove(&channel).is_some(),
                    _ => false,
                }
            };
            if removed {
                if let Some(sink) = sink.as_mut() {
                    let _ = sink.unsubscribe(channel).await;
                }
            }
        })
    }

    fn publish<'a>(&'a self, room: &'a str, message: Bytes) -> BoxFuture<'a, Result<(), String>> {
        self.publish_batch(room, vec![message])
    }

    /// A pipeline of `PUBLISH`es: one round trip, delivered in order.
    fn publish_batch<'a>(
        &'a self,
        room: &'a str,
        messages: Vec<Bytes>,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let channel = self.keys.channel(room);
            let mut conn = self.link.conn().await.map_err(|e| e.to_string())?;
            let mut pipe = redis::pipe();
            for m in &messages {
                pipe.cmd("PUBLISH").arg(&channel).arg(&m[..]).ignore();
            }
            let r: redis::RedisResult<()> = pipe.query_async(&mut conn).await;
            match r {
                Ok(()) => {
                    let n = messages.len() as u64;
                    self.metrics
                        .backplane_published
                        .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
                    Ok(())
                }
                Err(e) => {
                    inc(&self.metrics.redis_errors);
                    self.link.on_error(&e).await;
                    Err(e.to_string())
                }
            }
        })
    }
}

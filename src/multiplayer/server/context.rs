//! What every part of the server shares: the settings, Redis (storage, locks, backplane), the
//! metrics, the connection budget and the shutdown flag. It holds no rooms: those are the
//! registry's, and a room gets only the pieces it needs ([`RoomDeps`]).

use crate::core::redis::RedisLink;
use crate::multiplayer::config::GatewayConfig;
use crate::multiplayer::metrics::Metrics;
use crate::multiplayer::redis::backplane::{Backplane, GatewayId};
use crate::multiplayer::redis::locks::LockStore;
use crate::multiplayer::redis::persistence::DocStore;
use crate::multiplayer::room::deps::{RoomDeps, RoomSettings};
use crate::multiplayer::room::link::SessionIds;
use crate::multiplayer::server::slots::ConnectionSlots;
use std::sync::Arc;
use tokio::sync::watch;

pub struct Context {
    pub config: GatewayConfig,
    pub id: GatewayId,
    pub metrics: Arc<Metrics>,
    pub link: Arc<RedisLink>,
    pub store: Arc<dyn DocStore>,
    pub backplane: Arc<dyn Backplane>,
    pub locks: LockStore,
    /// Flips to true on SIGTERM/SIGINT.
    pub shutdown: watch::Sender<bool>,
    pub sessions: Arc<SessionIds>,
    pub slots: ConnectionSlots,
}

impl Context {
    pub fn stopping(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// What each room gets.
    pub fn room_deps(&self) -> RoomDeps {
        RoomDeps {
            store: self.store.clone(),
            backplane: self.backplane.clone(),
            locks: self.locks.clone(),
            metrics: self.metrics.clone(),
            gateway: self.id,
            sessions: self.sessions.clone(),
            settings: RoomSettings {
                unload_grace: self.config.unload_grace,
                lock_ttl: self.config.lock_ttl,
                keepalive: self.config.keepalive,
                limits: self.config.limits,
            },
        }
    }
}

//! What a room needs from the gateway, handed to it when the registry starts it: storage, the
//! backplane, lock leases, metrics, the session numbering and the settings that concern rooms.
//! Everything is shared (`Arc` or cheap to clone), so each room gets its own copy.

use crate::multiplayer::config::Limits;
use crate::multiplayer::metrics::Metrics;
use crate::multiplayer::redis::backplane::{Backplane, GatewayId};
use crate::multiplayer::redis::locks::LockStore;
use crate::multiplayer::redis::persistence::DocStore;
use crate::multiplayer::room::link::SessionIds;
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone)]
pub struct RoomDeps {
    pub store: Arc<dyn DocStore>,
    pub backplane: Arc<dyn Backplane>,
    pub locks: LockStore,
    pub metrics: Arc<Metrics>,
    /// This gateway, so that the room can ignore its own messages on the backplane.
    pub gateway: GatewayId,
    pub sessions: Arc<SessionIds>,
    pub settings: RoomSettings,
}

/// The gateway's settings that concern a room.
#[derive(Clone, Copy, Debug)]
pub struct RoomSettings {
    /// How long a room stays loaded after its last session left.
    pub unload_grace: Duration,
    pub lock_ttl: Duration,
    /// How often the room renews its own presence (and prunes stale presence).
    pub keepalive: Duration,
    /// What one connection and one lock holder may hold.
    pub limits: Limits,
}

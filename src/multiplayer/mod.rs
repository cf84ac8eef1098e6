//! The multiplayer gateway: y-websocket protocol, rooms, locks, Redis backplane.
//!
//! Data flows one way: `config` (validated settings) → `gateway` (shared state, server) →
//! `http` (routes) → `session` (one connection) → `room` (one document) → `persistence`,
//! `backplane` and `room_locks`.

pub mod config;
pub mod gateway;
pub mod http;
pub mod log;
pub mod metrics;
pub mod protocol;
pub mod redis;
pub mod registry;
pub mod room;
pub mod room_locks;
pub mod room_path;
pub mod session;
pub mod slots;
pub mod token;

pub use config::{GatewayConfig, RawSettings};
pub use gateway::serve;

//! The multiplayer gateway: y-websocket protocol, rooms, locks, Redis backplane.
//!
//! Data flows one way: `config` (validated settings) → `server` (the shared context, the
//! registry of rooms, the routes) → a session (one connection) → `room` (one document) →
//! `redis` (storage, locks, the backplane). `protocol`, `token`, `metrics` and `log` are used
//! along the way. The rule: no module imports a module that imports it back, so a room never
//! sees the registry or the server's context; it gets what it needs handed down.

pub mod config;
pub mod log;
pub mod metrics;
pub mod protocol;
pub mod queue;
pub mod redis;
pub mod room;
pub mod server;
pub mod token;

pub use config::{GatewayConfig, RawSettings};
pub use server::serve::serve;

//! The native builder (`appgear builder`): a build queue per workspace on Redis Streams, workers
//! that run pinned recipes, and artifacts under attempt-scoped keys in an object store.
//!
//! Pure policy (`state`, `config`, `glob`, `keys`, `manifest`) is kept apart from IO (`queue`,
//! `store`), so every rule about what a build may do next is unit-tested without a server.
//! See docs/builder.md.

pub mod api;
pub mod client;
pub mod clock;
pub mod commands;
pub mod config;
pub mod download;
pub mod glob;
pub mod id;
pub mod keys;
pub mod manifest;
pub mod queue;
pub mod setup;
pub mod state;
pub mod store;
pub mod worker;

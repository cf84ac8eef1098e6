//! Topology A: Traefik in front of code-server on the host's Docker Engine.
//!
//! Flow: `home` (paths, lock) → `settings` (typed `.env`) → `provision` (init: folders, `.env`,
//! CA, generated files) → `stack` (compose file → project → plan → apply on Docker).

pub mod doctor;
pub mod env_file;
pub mod generated;
pub mod home;
pub mod lock;
pub mod settings;
pub mod stack;
pub mod tls;

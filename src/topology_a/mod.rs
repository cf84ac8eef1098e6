//! Topology A: Traefik in front of code-server on the host's Docker Engine.
//!
//! Flow: `home` (paths, open folder, lock) → `env_store` (`.env` on disk) → `keys` (each key's
//! rule) → `settings` (typed, with origins) → `provision` (init: folders, `.env`, CA, generated
//! files) → `stack` (compose file → project → plan → apply on Docker); `up`, `config` and
//! `doctor` are the verbs built on them.

pub mod config;
pub mod doctor;
pub mod env_file;
pub mod env_store;
pub mod generated;
pub mod home;
pub mod keys;
pub mod lock;
pub mod provision;
pub mod settings;
pub mod stack;
pub mod tls;
pub mod up;

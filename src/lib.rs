//! appgear: the AppGear Factory suite on a laptop.
//!
//! Data flows one way: `.env` settings (`home`) → model (`compose`, `suite`) → renderers and
//! appliers (Docker Engine API, Kubernetes YAML).

pub mod cli;
pub mod compose;
pub mod dns;
pub mod doctor;
pub mod error;
pub mod files;
pub mod home;
pub mod multiplayer;
pub mod ports;
pub mod settings;
pub mod suite;
pub mod tls;
pub mod ui;

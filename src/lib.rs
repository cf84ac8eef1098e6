//! appgear: the AppGear Factory suite on a laptop.
//!
//! # Layers
//! ```text
//! core  ←  {topology_a, gitops, multiplayer, builder}  ←  topology_b  ←  cli
//! ```
//! - `core` holds what every product shares (errors, terminal output, files, ports, names, the
//!   owned-file policy) and imports no product.
//! - A product (`topology_a`, `gitops`, `multiplayer`, `builder`, `topology_b`) imports `core` and no other
//!   product unless the table in `tests/it/layers.rs` allows it (`topology_b` applies what `gitops`
//!   renders, shares the home with `topology_a`, its smoke check speaks the gateway's protocol
//!   with `multiplayer`'s codec and tokens, and Vault is seeded with `builder`'s example config);
//!   no product imports `cli`.
//! - `cli` parses, calls a product and prints: it has no Docker client and no file IO.
//! - No module imports a module that imports it back.
//!
//! These rules are checked by a test that reads every `use crate::` line (tests/it/layers.rs).
//!
//! Data flows one way: `.env` settings → model → renderers (compose file, Kubernetes YAML) and
//! appliers (Docker Engine API).

pub mod builder;
pub mod cli;
pub mod core;
pub mod gitops;
pub mod multiplayer;
pub mod topology_a;
pub mod topology_b;

//! What the `cluster` and `workspace` commands do, on the home and the kind cluster: each verb
//! in its own file (as docker/compose's `pkg/compose` does), over the pure core of `topology_b`.
//!
//! - `context`: the home's settings, workspaces, paths and what kind and Docker say of the cluster.
//! - `extras`: the objects appgear itself adds around the add-ons (storage classes, core-redis).
//! - `record`: what `up` finished, kept in the cluster for the next plan.
//! - `up`, `down`, `status`, `render`, `mirror`, `workspace`, and `smoke` (what answers).

pub mod context;
pub mod down;
pub mod extras;
pub mod mirror;
pub mod optional;
pub mod preload;
pub mod record;
pub mod render;
pub mod render_dir;
pub mod smoke;
pub mod status;
pub mod storage;
pub mod up;
pub mod workspace;

//! The Factory suite (Topology B): templates, rendering and policy checks.
//!
//! Flow: command line → `model::Suite` (validated `ids`) → `render` (pure, from the embedded
//! `templates`) → `output` (plan, then write) ; `verify` reads any YAML back and checks it.
//! YAML from users (a workspaces file, the trees `verify` reads) goes through `core::yaml`.

pub mod ids;
pub mod model;
pub mod output;
pub mod render;
pub mod templates;
pub mod verify;

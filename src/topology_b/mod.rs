//! Topology B: the Factory suite on a local kind cluster.
//!
//! This part is the sans-IO core: pure decisions and renderings, unit-tested without a cluster.
//! The IO around it (kind CLI, Kubernetes API, Docker) calls into these modules.
//!
//! - `settings`: Topology B's keys in `.env`; `kind_config`: the kind cluster's config file.
//! - `pins`: the one table of pinned versions, images and checksums.
//! - `manifests`: multi-document YAML → objects, ordered for apply.
//! - `addons` (which files make an add-on, checked objects), `mirror` (APPGEAR_ADDONS_MIRROR),
//!   `cache` (`<home>/data/cache`), `supply` (mirror → cache → upstream).
//! - `waits`: when an applied object is ready, from its status.
//! - `api`: the Kubernetes client, server-side apply in phases, waits and their reports (IO).
//! - `suite`: the rendered Factory suite as objects for the local cluster.
//! - `cluster`: what the `cluster` and `workspace` commands do (IO), a file per verb.
//! - `stages`: the stages of `cluster up` and the plan `--dry-run` prints.
//! - `preflight`: the machine's numbers against the profile, each finding with its fix;
//!   `machine` measures them (IO).
//! - `kind`: the kind command line (IO).
//! - `workspaces`: the local cluster's workspaces, recorded in the home.

pub mod addons;
pub mod api;
pub mod cache;
pub mod cluster;
pub mod doctor;
pub mod fetch;
pub mod image;
pub mod kind;
pub mod kind_config;
pub mod machine;
pub mod manifests;
pub mod mirror;
pub mod pins;
pub mod preflight;
pub mod settings;
pub mod stages;
pub mod suite;
pub mod supply;
pub mod waits;
pub mod workspaces;

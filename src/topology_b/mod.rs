//! Topology B: the Factory suite on a local kind cluster.
//!
//! This part is the sans-IO core: pure decisions and renderings, unit-tested without a cluster.
//! The IO around it (kind CLI, Kubernetes API, Docker) calls into these modules.
//!
//! - `pins`: the one table of pinned versions, images and checksums.
//! - `anchors`: finds YAML anchors and aliases, which manifests may not use.
//! - `manifests`: multi-document YAML → objects, ordered for apply.
//! - `read`: bounded reads of add-on files that never follow a link.

pub mod anchors;
pub mod manifests;
pub mod pins;
pub mod read;

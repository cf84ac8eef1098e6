//! The Kubernetes API: the one client (`client`), server-side apply in phases (`apply`), one resource's handle and
//! its errors (`call`), waits
//! with a report of what is stuck (`wait`, `report`), and which path serves a kind
//! (`resources`). Tested against a mocked API service (tests/it/topology_b_apply.rs).

pub mod apply;
pub mod call;
pub mod client;
pub mod report;
pub mod resources;
pub mod wait;

//! Topology A: the compose model, interpolation, the plan and the Docker applier.

pub mod apply;
pub mod docker;
pub mod file;
pub mod interpolate;
pub mod plan;
pub mod project;
pub mod stack;
pub mod status;

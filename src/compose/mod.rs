//! Topology A: the compose model, interpolation, the plan and the Docker applier.

pub mod file;
pub mod interpolate;
pub mod project;

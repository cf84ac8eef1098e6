//! The compose stack: the file, interpolation, the typed project, the plan and the Docker applier.

pub mod apply;
pub mod docker;
pub mod file;
pub mod interpolate;
pub mod load;
pub mod plan;
pub mod project;
pub mod status;

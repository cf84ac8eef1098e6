//! The compose stack: the file, interpolation, the typed project, the plan and the Docker
//! applier, and the verbs that read the stack back (status, logs, down).

pub mod apply;
pub mod docker;
pub mod down;
pub mod file;
pub mod interpolate;
pub mod load;
pub mod logs;
pub mod plan;
pub mod project;
pub mod status;

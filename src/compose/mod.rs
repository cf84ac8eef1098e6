//! Topology A: the compose model, interpolation and the Docker applier.

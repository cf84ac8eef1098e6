//! Topology B: the Factory suite on a local kind cluster.

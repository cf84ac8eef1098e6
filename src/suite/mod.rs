//! The Factory suite (Topology B): templates, rendering and policy checks.

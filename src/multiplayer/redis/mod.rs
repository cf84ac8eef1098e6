//! Everything the gateway keeps in or sends through Redis: the shared connection and key layout,
//! documents, lock leases, and the backplane that carries a room's changes between replicas.

pub mod backplane;
pub mod link;
pub mod locks;
pub mod persistence;
pub mod pubsub;

//! Everything the gateway keeps in or sends through Redis (over `core::redis`): the key layout,
//! documents, lock leases, and the backplane that carries a room's changes between replicas.

pub mod backplane;
pub mod keys;
pub mod locks;
pub mod persistence;
pub mod pubsub;

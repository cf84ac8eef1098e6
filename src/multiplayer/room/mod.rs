//! One loaded document and who is in it. The registry (in `server`) starts a room's task with
//! [`deps::RoomDeps`] and a callback that takes it off the registry's list; sessions talk to it
//! through [`link::RoomCmd`]. Nothing here knows the server: the room only goes down, to
//! `protocol` and `redis`.
//!
//! - `task`: the select loop and every send (IO only; decisions come from `presence` and `doc`)
//! - `presence`: who is present and who owns which client id (a pure policy)
//! - `awareness`: presence entries to and from the wire's awareness payloads
//! - `doc`: applying updates to the `yrs` document and telling what they let in
//! - `lock_keeper`: the leases the room's editors asked for, held in Redis
//! - `link`, `deps`: what sessions and the registry hand a room

pub mod awareness;
pub mod deps;
pub mod doc;
pub mod link;
pub mod lock_keeper;
pub mod presence;
pub mod task;

//! The HTTP side of the gateway: start-up and shutdown (`serve`), what every part shares
//! (`context`), the loaded rooms (`registry`), the routes and their extractors, and one
//! editor's connection (`session`), which the room route starts.

pub mod context;
pub mod registry;
pub mod room_path;
pub mod routes;
pub mod serve;
pub mod session;
pub mod slots;

//! The HTTP side of the gateway: start-up and shutdown (`serve`), accepting sockets and bounding
//! them until they become editor sessions (`listener`, `pending`), what every part shares
//! (`context`), hyper's connections (`http`), the loaded rooms (`registry`), the routes
//! (`routes`, with the room upgrade in `upgrade` and its WebSocket handshake in `handshake`,
//! the lock endpoints in `locks_api` and the token extractor in `auth`), and one editor's
//! connection (`session`), which the room route starts.

pub mod auth;
pub mod context;
pub mod handshake;
pub mod http;
pub mod listener;
pub mod locks_api;
pub mod pending;
pub mod registry;
pub mod reply;
pub mod room_path;
pub mod routes;
pub mod serve;
pub mod session;
pub mod slots;
pub mod upgrade;

#[cfg(test)]
mod testkit;

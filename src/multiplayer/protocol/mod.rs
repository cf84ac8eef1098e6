//! The y-websocket protocol as the gateway speaks it: frames in and out, the structural check
//! that runs before `yrs` decodes anything, the check of presence states, and the WebSocket
//! close codes.

pub mod close;
pub mod codec;
pub mod payload_check;
pub mod presence_state;

//! The multiplayer gateway: y-websocket protocol, rooms, locks, Redis backplane.

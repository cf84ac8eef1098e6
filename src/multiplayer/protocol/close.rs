//! WebSocket close codes. The stock client stops reconnecting on 4400–4499, so those are used
//! only for refusals that reconnecting cannot fix; everything else is transient.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Close {
    pub code: u16,
    pub reason: &'static str,
}

/// Permanent: the room name is not usable (empty, or not UTF-8 after percent-decoding).
pub const BAD_ROOM: Close = Close {
    code: 4400,
    reason: "bad room name",
};
/// Permanent: no token, a malformed one, a bad signature, or an expired one.
pub const BAD_TOKEN: Close = Close {
    code: 4401,
    reason: "invalid or expired token",
};
/// Permanent: the token is for another workspace.
pub const FORBIDDEN: Close = Close {
    code: 4403,
    reason: "token is not for this workspace",
};
/// Transient: the gateway is stopping; reconnect (to another replica).
pub const RESTART: Close = Close {
    code: 1012,
    reason: "gateway restarting",
};
/// Transient: the connection could not keep up with the room; reconnect and resync.
pub const TOO_SLOW: Close = Close {
    code: 1013,
    reason: "too slow, resync",
};
/// Transient: storage or the backplane is unavailable right now.
pub const STORAGE_UNAVAILABLE: Close = Close {
    code: 1013,
    reason: "storage unavailable, try again",
};
/// Transient: the room had to be reloaded.
pub const RESYNC: Close = Close {
    code: 1013,
    reason: "room reloading, resync",
};
/// A frame that is not a protocol message (closes only that connection).
pub const BAD_DATA: Close = Close {
    code: 1007,
    reason: "malformed message",
};
/// Text frames are not part of the protocol.
pub const UNSUPPORTED: Close = Close {
    code: 1003,
    reason: "binary frames only",
};
/// A message above `--max-message-size`.
pub const TOO_BIG: Close = Close {
    code: 1009,
    reason: "message too big",
};
/// The WebSocket framing itself was broken.
pub const PROTOCOL_ERROR: Close = Close {
    code: 1002,
    reason: "protocol error",
};
/// Transient: nothing arrived for `--idle-timeout` (the peer is probably gone), or the peer
/// stopped reading what we send.
pub const IDLE: Close = Close {
    code: 1001,
    reason: "connection idle for too long",
};
/// Transient: the peer did not take a frame within the write timeout.
pub const STUCK: Close = Close {
    code: 1013,
    reason: "not reading, resync",
};

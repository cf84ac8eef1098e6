//! The key layout every Redis user of the gateway shares. The connection itself is the crate's
//! one `core::redis::RedisLink`.

/// Key names. Room names and lock paths are arbitrary strings, so each variable part is
/// length-prefixed: no two (room, path) pairs can map to the same key.
#[derive(Debug, Clone)]
pub struct Keys {
    base: String,
}

impl Keys {
    pub fn new(workspace: &str) -> Self {
        Keys {
            base: format!("appgear:mp:{workspace}"),
        }
    }
    fn room_part(room: &str) -> String {
        format!("{}:{room}", room.len())
    }
    /// Pub/sub channel carrying a room's changes between replicas.
    pub fn channel(&self, room: &str) -> String {
        format!("{}:chan:{}", self.base, Self::room_part(room))
    }
    pub fn room_from_channel(&self, channel: &str) -> Option<String> {
        let rest = channel.strip_prefix(&self.base)?.strip_prefix(":chan:")?;
        let (len, room) = rest.split_once(':')?;
        (len.parse::<usize>().ok()? == room.len()).then(|| room.to_string())
    }
    /// Compacted document state.
    pub fn snapshot(&self, room: &str) -> String {
        format!("{}:doc:{}", self.base, Self::room_part(room))
    }
    /// Updates appended since the snapshot.
    pub fn log(&self, room: &str) -> String {
        format!("{}:log:{}", self.base, Self::room_part(room))
    }
    /// Bumped by each compaction, so that two replicas never compact over each other.
    pub fn generation(&self, room: &str) -> String {
        format!("{}:gen:{}", self.base, Self::room_part(room))
    }
    pub fn lock(&self, room: &str, path: &str) -> String {
        format!("{}:lock:{}:{path}", self.base, Self::room_part(room))
    }
    /// The per-path fencing counter of earlier versions, read so that tokens stay above it.
    pub fn fence(&self, room: &str, path: &str) -> String {
        format!("{}:fence:{}:{path}", self.base, Self::room_part(room))
    }
    /// The workspace's one fencing counter (the only lock key that never expires).
    pub fn fence_counter(&self) -> String {
        format!("{}:fence", self.base)
    }
    /// A room's locks: path → `<expires at ms>|<fencing>|<owner>`.
    pub fn lock_table(&self, room: &str) -> String {
        format!("{}:locktab:{}", self.base, Self::room_part(room))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_round_trips_rooms_with_separators() {
        let k = Keys::new("w1");
        for room in ["a", "a/b/file.ts", "ça:va", "3:x", ""] {
            assert_eq!(k.room_from_channel(&k.channel(room)).as_deref(), Some(room));
        }
        assert_eq!(k.room_from_channel("appgear:mp:w2:chan:1:a"), None);
        assert_ne!(k.lock("a:1", "b"), k.lock("a", "1:b"));
    }
}

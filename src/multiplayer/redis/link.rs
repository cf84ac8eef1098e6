//! One shared Redis connection (multiplexed) that reconnects after Redis went away, plus the
//! key layout every Redis user of the gateway shares.

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, RedisError, RedisResult};
use std::time::Duration;
use tokio::sync::Mutex;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Long enough for a multi-megabyte document to travel, short enough to notice a dead Redis.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);

pub struct RedisLink {
    client: Client,
    conn: Mutex<Option<MultiplexedConnection>>,
}

impl RedisLink {
    pub fn new(url: &str) -> RedisResult<Self> {
        Ok(RedisLink {
            client: Client::open(url)?,
            conn: Mutex::new(None),
        })
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// A connection handle (cheap clone); connects on first use or after a failure.
    pub async fn conn(&self) -> RedisResult<MultiplexedConnection> {
        let mut slot = self.conn.lock().await;
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        let cfg = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT));
        let c = self
            .client
            .get_multiplexed_async_connection_with_config(&cfg)
            .await?;
        *slot = Some(c.clone());
        Ok(c)
    }

    /// Forget the connection after an error that means it is gone, so the next call reconnects.
    pub async fn on_error(&self, e: &RedisError) {
        if e.is_io_error()
            || e.is_connection_dropped()
            || e.is_timeout()
            || e.is_unrecoverable_error()
        {
            *self.conn.lock().await = None;
        }
    }

    pub async fn ping(&self) -> RedisResult<()> {
        let mut c = self.conn().await?;
        let r: RedisResult<String> = redis::cmd("PING").query_async(&mut c).await;
        match r {
            Ok(_) => Ok(()),
            Err(e) => {
                self.on_error(&e).await;
                Err(e)
            }
        }
    }
}

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

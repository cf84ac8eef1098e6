//! The one Redis connection every product uses (the gateway's documents, locks and backplane;
//! the builder's queue): a multiplexed connection made on first use and re-made after Redis went
//! away, plus connections of their own for blocking reads.

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, RedisError, RedisResult};
use std::time::Duration;
use tokio::sync::Mutex;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Long enough for a multi-megabyte document to travel, short enough to notice a dead Redis.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);

pub struct RedisLink {
    client: Client,
    url_for_messages: String,
    conn: Mutex<Option<MultiplexedConnection>>,
}

/// The URL without its credentials, for messages and logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}***{}", &url[..s + 3], &url[at..]),
        _ => url.to_string(),
    }
}

impl RedisLink {
    pub fn new(url: &str) -> RedisResult<Self> {
        Ok(RedisLink {
            client: Client::open(url)?,
            url_for_messages: redact(url),
            conn: Mutex::new(None),
        })
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The URL without its credentials.
    pub fn url(&self) -> &str {
        &self.url_for_messages
    }

    /// The shared connection (a cheap handle); connects on first use or after a failure.
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

    /// A connection of its own for one blocking read of up to `block`: a `BLOCK`ed read on the
    /// shared connection would hold every other command behind it, heartbeats included.
    pub async fn blocking_conn(&self, block: Duration) -> RedisResult<MultiplexedConnection> {
        let cfg = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(block + RESPONSE_TIMEOUT));
        self.client
            .get_multiplexed_async_connection_with_config(&cfg)
            .await
    }

    /// Forget the shared connection after an error that means it is gone, so the next call
    /// reconnects.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_stay_out_of_messages() {
        assert_eq!(
            redact("redis://:s3cret@core-redis:6379/0"),
            "redis://***@core-redis:6379/0"
        );
        assert_eq!(redact("redis://127.0.0.1:6379/"), "redis://127.0.0.1:6379/");
    }
}

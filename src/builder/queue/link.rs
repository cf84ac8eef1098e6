//! The builder's Redis connection: one multiplexed connection, re-made after Redis went away,
//! and separate connections for blocking reads (a `BLOCK`ed read on the shared connection would
//! hold every other command behind it, heartbeats included).

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, RedisError};
use std::time::Duration;
use tokio::sync::Mutex;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Link {
    client: Client,
    url_for_errors: String,
    conn: Mutex<Option<MultiplexedConnection>>,
}

/// The URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}***{}", &url[..s + 3], &url[at..]),
        _ => url.to_string(),
    }
}

impl Link {
    pub fn new(url: &str) -> Result<Link, RedisError> {
        Ok(Link {
            client: Client::open(url)?,
            url_for_errors: redact(url),
            conn: Mutex::new(None),
        })
    }

    pub fn url(&self) -> &str {
        &self.url_for_errors
    }

    /// The shared connection (a cheap handle); connects on first use or after a failure.
    pub async fn conn(&self) -> Result<MultiplexedConnection, RedisError> {
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

    /// A connection of its own for one blocking read of up to `block`.
    pub async fn blocking_conn(
        &self,
        block: Duration,
    ) -> Result<MultiplexedConnection, RedisError> {
        let cfg = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(block + RESPONSE_TIMEOUT));
        self.client
            .get_multiplexed_async_connection_with_config(&cfg)
            .await
    }

    /// Forget the shared connection after an error that means it is gone.
    pub async fn on_error(&self, e: &RedisError) {
        if e.is_io_error()
            || e.is_connection_dropped()
            || e.is_timeout()
            || e.is_unrecoverable_error()
        {
            *self.conn.lock().await = None;
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

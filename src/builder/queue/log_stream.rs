//! A build's log in Redis while it runs: a stream of numbered chunks, `log:<id>`, each entry
//! `{attempt, seq, data}`. A reader resumes after the last entry id it saw, so following a log
//! across a reconnect loses no line and repeats none. (The whole log is also stored as an
//! object at the end of each attempt.)

use crate::builder::id::BuildId;
use crate::builder::queue::error::QueueError;
use crate::builder::queue::reply;
use crate::builder::queue::Queue;
use std::time::Duration;

/// Chunks kept per build in Redis (the stored object has the whole log).
const MAX_CHUNKS: usize = 100_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogChunk {
    /// The stream entry id: where a reader resumes.
    pub entry: String,
    pub attempt: u32,
    /// Numbered from 0 in each attempt; a gap means a chunk was lost.
    pub seq: u64,
    pub data: String,
}

/// Where to start reading: the beginning, or after an entry already seen.
pub const FROM_START: &str = "0-0";

impl Queue {
    pub async fn append_log(
        &self,
        id: &BuildId,
        attempt: u32,
        seq: u64,
        data: &str,
    ) -> Result<String, QueueError> {
        let mut c = self.conn().await?;
        self.checked(
            redis::cmd("XADD")
                .arg(self.names.log(id))
                .arg("MAXLEN")
                .arg("~")
                .arg(MAX_CHUNKS)
                .arg("*")
                .arg("attempt")
                .arg(attempt)
                .arg("seq")
                .arg(seq)
                .arg("data")
                .arg(data)
                .query_async(&mut c)
                .await,
        )
        .await
    }

    /// Up to `count` chunks after entry `after`; with `block`, wait that long for the first.
    pub async fn read_log(
        &self,
        id: &BuildId,
        after: &str,
        count: usize,
        block: Option<Duration>,
    ) -> Result<Vec<LogChunk>, QueueError> {
        let mut cmd = redis::cmd("XREAD");
        cmd.arg("COUNT").arg(count.max(1));
        let mut c = match block {
            Some(b) => {
                cmd.arg("BLOCK").arg(b.as_millis().max(1) as u64);
                self.link.blocking_conn(b).await.map_err(|e| {
                    QueueError::Redis(format!("cannot reach {}: {e}", self.link.url()))
                })?
            }
            None => self.conn().await?,
        };
        cmd.arg("STREAMS").arg(self.names.log(id)).arg(after);
        let v: redis::Value = self.checked(cmd.query_async(&mut c).await).await?;
        Ok(reply::read(&v)
            .into_iter()
            .filter_map(|e| {
                Some(LogChunk {
                    attempt: e.get("attempt")?.parse().ok()?,
                    seq: e.get("seq")?.parse().ok()?,
                    data: e.get("data")?.to_string(),
                    entry: e.id,
                })
            })
            .collect())
    }
}

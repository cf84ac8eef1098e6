//! Documents in Redis: a compacted snapshot plus a log of updates appended since.
//!
//! Every update is appended before it is applied or relayed, so an edit that anyone has seen
//! survives the gateway being killed. Compaction folds the log into the snapshot; a generation
//! counter makes two replicas compacting at once harmless (the later one gives up).

use crate::core::redis::RedisLink;
use crate::multiplayer::redis::keys::Keys;
use axum::body::Bytes;
use futures_util::future::BoxFuture;
use std::sync::Arc;
use yrs::updates::decoder::Decode;
use yrs::{Doc, ReadTxn, StateVector, Transact, Update};

/// What storage holds for a room.
#[derive(Debug, Default)]
pub struct StoredDoc {
    pub snapshot: Option<Vec<u8>>,
    pub log: Vec<Vec<u8>>,
}

impl StoredDoc {
    pub fn total_bytes(&self) -> usize {
        self.snapshot.as_ref().map_or(0, Vec::len) + self.log.iter().map(Vec::len).sum::<usize>()
    }
}

pub trait DocStore: Send + Sync {
    fn load<'a>(&'a self, room: &'a str) -> BoxFuture<'a, Result<StoredDoc, String>>;
    fn append<'a>(&'a self, room: &'a str, update: &'a [u8]) -> BoxFuture<'a, Result<(), String>>;
    /// Append several updates, in order, in one round trip where the store can: all of them
    /// are stored when this returns `Ok`.
    fn append_batch<'a>(
        &'a self,
        room: &'a str,
        updates: &'a [Bytes],
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            for u in updates {
                self.append(room, u).await?;
            }
            Ok(())
        })
    }
    /// Fold the log into the snapshot. Returns the snapshot size, or `None` when there was
    /// nothing to do or another replica compacted first.
    fn compact<'a>(&'a self, room: &'a str) -> BoxFuture<'a, Result<Option<usize>, String>>;
}

pub struct RedisDocStore {
    link: Arc<RedisLink>,
    keys: Keys,
}

impl RedisDocStore {
    pub fn new(link: Arc<RedisLink>, keys: Keys) -> Self {
        RedisDocStore { link, keys }
    }

    async fn run<T>(
        &self,
        f: impl AsyncFnOnce(redis::aio::MultiplexedConnection) -> redis::RedisResult<T>,
    ) -> Result<T, String> {
        let conn = self.link.conn().await.map_err(|e| e.to_string())?;
        match f(conn).await {
            Ok(v) => Ok(v),
            Err(e) => {
                self.link.on_error(&e).await;
                Err(e.to_string())
            }
        }
    }
}

/// Replace the snapshot and drop the first N log entries, only if nobody compacted since we read.
const COMPACT_SCRIPT: &str = r#"
local g = redis.call('GET', KEYS[1]) or ''
if g ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[2])
redis.call('LTRIM', KEYS[3], tonumber(ARGV[3]), -1)
redis.call('INCR', KEYS[1])
return 1
"#;

impl DocStore for RedisDocStore {
    fn load<'a>(&'a self, room: &'a str) -> BoxFuture<'a, Result<StoredDoc, String>> {
        Box::pin(async move {
            let (snap, log) = (self.keys.snapshot(room), self.keys.log(room));
            let (snapshot, log): (Option<Vec<u8>>, Vec<Vec<u8>>) = self
                .run(async |mut c| {
                    redis::pipe()
                        .atomic()
                        .get(&snap)
                        .lrange(&log, 0, -1)
                        .query_async(&mut c)
                        .await
                })
                .await?;
            Ok(StoredDoc { snapshot, log })
        })
    }

    fn append<'a>(&'a self, room: &'a str, update: &'a [u8]) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let log = self.keys.log(room);
            self.run(async |mut c| {
                redis::cmd("RPUSH")
                    .arg(&log)
                    .arg(update)
                    .query_async::<i64>(&mut c)
                    .await
            })
            .await
            .map(|_| ())
        })
    }

    /// One `RPUSH` with every update: Redis appends them all or none.
    fn append_batch<'a>(
        &'a self,
        room: &'a str,
        updates: &'a [Bytes],
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            if updates.is_empty() {
                return Ok(());
            }
            let log = self.keys.log(room);
            self.run(async |mut c| {
                let mut cmd = redis::cmd("RPUSH");
                cmd.arg(&log);
                for u in updates {
                    cmd.arg(&u[..]);
                }
                cmd.query_async::<i64>(&mut c).await
            })
            .await
            .map(|_| ())
        })
    }

    fn compact<'a>(&'a self, room: &'a str) -> BoxFuture<'a, Result<Option<usize>, String>> {
        Box::pin(async move {
            let (gen_key, snap, log) = (
                self.keys.generation(room),
                self.keys.snapshot(room),
                self.keys.log(room),
            );
            let (generation, snapshot, entries): (Option<String>, Option<Vec<u8>>, Vec<Vec<u8>>) =
                self.run(async |mut c| {
                    redis::pipe()
                        .atomic()
                        .get(&gen_key)
                        .get(&snap)
                        .lrange(&log, 0, -1)
                        .query_async(&mut c)
                        .await
                })
                .await?;
            if entries.is_empty() {
                return Ok(None);
            }
            let n = entries.len();
            let stored = StoredDoc {
                snapshot,
                log: entries,
            };
            let merged = tokio::task::spawn_blocking(move || merge(&stored))
                .await
                .map_err(|e| e.to_string())??;
            let size = merged.len();
            let script = redis::Script::new(COMPACT_SCRIPT);
            let done: i64 = self
                .run(async |mut c| {
                    script
                        .key(&gen_key)
                        .key(&snap)
                        .key(&log)
                        .arg(generation.unwrap_or_default())
                        .arg(merged)
                        .arg(n)
                        .invoke_async(&mut c)
                        .await
                })
                .await?;
            Ok((done == 1).then_some(size))
        })
    }
}

/// Apply a stored document to a fresh `Doc` and encode its whole state (garbage collected).
pub fn merge(stored: &StoredDoc) -> Result<Vec<u8>, String> {
    let doc = Doc::new();
    apply_stored(&doc, stored)?;
    let txn = doc.transact();
    Ok(txn.encode_state_as_update_v1(&StateVector::default()))
}

/// Apply snapshot and log to `doc`. Entries were validated before they were stored; one that
/// does not decode is skipped rather than losing the whole room.
pub fn apply_stored(doc: &Doc, stored: &StoredDoc) -> Result<(), String> {
    let mut txn = doc.transact_mut();
    for bytes in stored.snapshot.iter().chain(stored.log.iter()) {
        let update = std::panic::catch_unwind(|| Update::decode_v1(bytes))
            .map_err(|_| "a stored update does not decode".to_string())?;
        let Ok(update) = update else { continue };
        txn.apply_update(update).map_err(|e| e.to_string())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use yrs::{GetString, Text};

    #[test]
    fn merge_folds_log_into_snapshot() {
        let a = Doc::with_client_id(1);
        let t = a.get_or_insert_text("t");
        let mut stored = StoredDoc::default();
        for word in ["one ", "two ", "three"] {
            let sv = a.transact().state_vector();
            t.push(&mut a.transact_mut(), word);
            stored.log.push(a.transact().encode_state_as_update_v1(&sv));
        }
        let merged = merge(&stored).unwrap();
        let b = Doc::new();
        apply_stored(
            &b,
            &StoredDoc {
                snapshot: Some(merged),
                log: vec![],
            },
        )
        .unwrap();
        let tb = b.get_or_insert_text("t");
        assert_eq!(tb.get_string(&b.transact()), "one two three");
    }
}

//! `builder_pending_jobs{workspace,target}`: the consumer group's lag, read with the same
//! command KEDA's redis-streams scaler uses with `lagCount` (`XINFO GROUPS`, Redis ≥ 7), so
//! the number on `/metrics` is the number the autoscaler acts on.

use crate::builder::queue::counters::{self, TargetCounters};
use crate::builder::queue::error::QueueError;
use crate::builder::queue::names::GROUP;
use crate::builder::queue::reply::{self, Group};
use crate::builder::queue::Queue;
use std::collections::HashMap;

impl Queue {
    pub(crate) async fn groups(&self, target: &str) -> Result<Vec<Group>, QueueError> {
        let stream = self.names.stream(target);
        let mut c = self.conn().await?;
        let exists: i64 = self
            .checked(redis::cmd("EXISTS").arg(&stream).query_async(&mut c).await)
            .await?;
        if exists == 0 {
            return Ok(Vec::new());
        }
        let r: redis::Value = self
            .checked(
                redis::cmd("XINFO")
                    .arg("GROUPS")
                    .arg(&stream)
                    .query_async(&mut c)
                    .await,
            )
            .await?;
        Ok(reply::groups(&r))
    }

    /// Builds of `target` waiting for a worker. Like KEDA: the group's lag; the stream's length
    /// while the group does not exist yet; 0 without a stream. When Redis cannot tell the lag
    /// (it can after entries were deleted or trimmed), the undelivered entries are counted.
    pub async fn pending(&self, target: &str) -> Result<u64, QueueError> {
        let groups = self.groups(target).await?;
        if groups.is_empty() {
            let mut c = self.conn().await?;
            return self
                .checked(
                    redis::cmd("XLEN")
                        .arg(self.names.stream(target))
                        .query_async(&mut c)
                        .await,
                )
                .await;
        }
        let Some(g) = groups.into_iter().find(|g| g.name == GROUP) else {
            return Ok(0);
        };
        match g.lag {
            Some(lag) => Ok(lag),
            None => Ok(self
                .undelivered(target, &g.last_delivered_id, 100_000)
                .await?
                .len() as u64),
        }
    }

    /// Builds of `target` held by a worker: the group's delivered, unacknowledged entries.
    pub async fn running(&self, target: &str) -> Result<u64, QueueError> {
        Ok(self
            .groups(target)
            .await?
            .into_iter()
            .find(|g| g.name == GROUP)
            .map_or(0, |g| g.pending))
    }

    /// How long the oldest build of `target` still waiting for a worker has waited, in
    /// milliseconds (0 when none waits): the stream id of an entry is its time of addition.
    pub async fn oldest_pending_ms(&self, target: &str, now_ms: u64) -> Result<u64, QueueError> {
        let Some(last) = self.last_delivered(target).await? else {
            return Ok(0);
        };
        let first = self.undelivered(target, &last, 1).await?;
        Ok(first
            .first()
            .and_then(|e| e.id.split('-').next()?.parse::<u64>().ok())
            .map_or(0, |added| now_ms.saturating_sub(added)))
    }

    /// Every gauge `serve` exports, per target.
    pub async fn gauges(&self, now_ms: u64) -> Result<Vec<Gauges>, QueueError> {
        let mut out = Vec::new();
        for t in &self.targets {
            out.push(Gauges {
                target: t.clone(),
                pending: self.pending(t).await?,
                running: self.running(t).await?,
                oldest_pending_ms: self.oldest_pending_ms(t, now_ms).await?,
            });
        }
        Ok(out)
    }

    /// What the transitions counted (`counters`), per target of the config.
    pub async fn counters(&self) -> Result<Vec<(String, TargetCounters)>, QueueError> {
        let mut c = self.conn().await?;
        let f: HashMap<String, String> = self
            .checked(
                redis::cmd("HGETALL")
                    .arg(self.names.counters())
                    .query_async(&mut c)
                    .await,
            )
            .await?;
        Ok(counters::read(&self.targets, &f))
    }

    /// `pending` for every target, in config order.
    pub async fn pending_all(&self) -> Result<Vec<(String, u64)>, QueueError> {
        let mut out = Vec::new();
        for t in &self.targets {
            out.push((t.clone(), self.pending(t).await?));
        }
        Ok(out)
    }
}

/// The queue's gauges of one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gauges {
    pub target: String,
    pub pending: u64,
    pub running: u64,
    pub oldest_pending_ms: u64,
}

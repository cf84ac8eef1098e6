//! The reaper, run by the always-on `serve`: no build stays `running` without a live worker,
//! none waits in the queue past the queue TTL, and entries of builds that already ended stop
//! counting in the lag KEDA scales on.
//!
//! A lost worker's entry is not claimed in place: a delivered entry no longer counts in the
//! group's lag, so KEDA would start no Job for it. The reaper acknowledges it and adds a new
//! entry for the next attempt instead, in the same script as the state change.

use crate::builder::clock::now_ms;
use crate::builder::id::BuildId;
use crate::builder::queue::change::Change;
use crate::builder::queue::error::QueueError;
use crate::builder::queue::job::Job;
use crate::builder::queue::lease::entry_fields;
use crate::builder::queue::names::GROUP;
use crate::builder::queue::reply::{self, Entry};
use crate::builder::queue::scripts::SKIP;
use crate::builder::queue::Queue;
use crate::builder::state::{Event, Reason, Refusal, State};
use std::time::Duration;

/// The consumer name the reaper claims and skips entries as.
pub const REAPER: &str = "reaper";
/// Entries looked at per call, so one pass stays short on a long queue.
const BATCH: usize = 100;

/// What one pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Reaped {
    /// Builds put back as their next attempt (`worker_lost`).
    pub requeued: Vec<BuildId>,
    /// Builds that ran out of attempts: `error/worker_lost`.
    pub failed: Vec<BuildId>,
    /// Entries delivered to a worker that died before it took them: delivered again.
    pub redelivered: Vec<BuildId>,
    /// Builds that waited past the queue TTL: `expired`.
    pub expired: Vec<BuildId>,
    /// Entries of ended or superseded builds, acknowledged so they no longer count.
    pub skipped: usize,
    /// Acknowledged entries removed from the streams.
    pub trimmed: u64,
}

impl Queue {
    /// One pass over every target's stream.
    pub async fn reap(&self) -> Result<Reaped, QueueError> {
        let mut out = Reaped::default();
        for target in self.targets.clone() {
            self.ensure_group(&target).await?;
            self.reclaim(&target, &mut out).await?;
            self.expire(&target, &mut out).await?;
            self.skip_ended(&target, &mut out).await?;
            out.trimmed += self.trim(&target).await?;
        }
        Ok(out)
    }

    /// Reap every `every` until `stop` resolves. Errors are reported through `on_error` and the
    /// loop goes on: Redis coming back must not need a restart.
    pub async fn run_reaper(
        &self,
        every: Duration,
        stop: impl std::future::Future<Output = ()>,
        mut on_pass: impl FnMut(Result<Reaped, QueueError>),
    ) {
        tokio::pin!(stop);
        loop {
            on_pass(self.reap().await);
            tokio::select! {
                _ = &mut stop => return,
                _ = tokio::time::sleep(every) => {}
            }
        }
    }

    /// Entries idle past the lease: their worker stopped heartbeating.
    async fn reclaim(&self, target: &str, out: &mut Reaped) -> Result<(), QueueError> {
        let stream = self.names.stream(target);
        let lease_ms = self.settings.lease.as_millis() as u64;
        let mut cursor = "0-0".to_string();
        // Bounded: a pass that does not finish carries on at the next one.
        for _ in 0..10 {
            let mut c = self.conn().await?;
            let r: redis::Value = self
                .checked(
                    redis::cmd("XAUTOCLAIM")
                        .arg(&stream)
                        .arg(GROUP)
                        .arg(REAPER)
                        .arg(lease_ms)
                        .arg(&cursor)
                        .arg("COUNT")
                        .arg(BATCH)
                        .query_async(&mut c)
                        .await,
                )
                .await?;
            let Some((next, claimed)) = reply::autoclaim(&r) else {
                return Err(QueueError::Redis(format!(
                    "unexpected XAUTOCLAIM reply {r:?}"
                )));
            };
            for entry in &claimed {
                self.reclaimed(target, entry, out).await?;
            }
            cursor = next;
            if cursor == "0-0" {
                break;
            }
        }
        Ok(())
    }

    async fn reclaimed(
        &self,
        target: &str,
        entry: &Entry,
        out: &mut Reaped,
    ) -> Result<(), QueueError> {
        let Some((id, attempt)) = entry_fields(entry) else {
            return self.ack(target, &entry.id).await;
        };
        let Some(job) = self.find(&id).await? else {
            return self.ack(target, &entry.id).await;
        };
        if job.status.attempt != attempt || job.status.state.is_final() {
            return self.ack(target, &entry.id).await;
        }
        let ack = Some(entry.id.clone());
        let r = match job.status.state {
            State::Running => {
                self.transition(&id, |job| {
                    self.plan_requeue(job, attempt, Reason::WorkerLost, ack.clone())
                })
                .await
            }
            // Delivered, never taken: the worker died between reading and claiming. The
            // attempt never started, so it is delivered again as it is.
            _ => {
                self.transition(&id, |job| {
                    if job.status.attempt != attempt || job.status.state != State::Queued {
                        return Err(Self::moved(job, attempt));
                    }
                    Ok(Change {
                        next: job.status.clone(),
                        extra: Vec::new(),
                        ack: ack.clone(),
                        add: Some(attempt),
                        requeued_for: None,
                    })
                })
                .await
            }
        };
        match r {
            Ok(after) => match (job.status.state, after.status.state) {
                (State::Running, State::Queued) => out.requeued.push(id),
                (State::Running, _) => out.failed.push(id),
                _ => out.redelivered.push(id),
            },
            // It moved meanwhile (finished, cancelled): only the entry is left to drop.
            Err(QueueError::Refused(..)) | Err(QueueError::NotFound(_)) => {
                self.ack(target, &entry.id).await?
            }
            Err(e) => return Err(e),
        }
        Ok(())
    }

    /// The refusal for an entry whose build moved on since the reaper looked.
    fn moved(job: &Job, attempt: u32) -> QueueError {
        let refusal = if job.status.state.is_final() {
            Refusal::Final(job.status.state)
        } else if job.status.attempt != attempt {
            Refusal::StaleAttempt {
                current: job.status.attempt,
                given: attempt,
            }
        } else {
            Refusal::NotNow {
                state: job.status.state,
                phase: job.status.phase,
            }
        };
        QueueError::Refused(job.id.clone(), refusal)
    }

    /// The group's last delivered id, or `None` if the group does not exist.
    pub(crate) async fn last_delivered(&self, target: &str) -> Result<Option<String>, QueueError> {
        let groups = self.groups(target).await?;
        Ok(groups
            .into_iter()
            .find(|g| g.name == GROUP)
            .map(|g| g.last_delivered_id))
    }

    /// Up to `count` entries not yet delivered to the group, oldest first.
    pub(crate) async fn undelivered(
        &self,
        target: &str,
        last: &str,
        count: usize,
    ) -> Result<Vec<Entry>, QueueError> {
        let mut c = self.conn().await?;
        let r: redis::Value = self
            .checked(
                redis::cmd("XRANGE")
                    .arg(self.names.stream(target))
                    .arg(format!("({last}"))
                    .arg("+")
                    .arg("COUNT")
                    .arg(count)
                    .query_async(&mut c)
                    .await,
            )
            .await?;
        Ok(reply::entries(&r))
    }

    /// Builds that waited in the queue longer than the queue TTL end `expired`.
    async fn expire(&self, target: &str, out: &mut Reaped) -> Result<(), QueueError> {
        let Some(last) = self.last_delivered(target).await? else {
            return Ok(());
        };
        let ttl_ms = self.settings.queue_ttl.as_millis() as u64;
        let now = now_ms();
        for entry in self.undelivered(target, &last, BATCH * 10).await? {
            let Some((id, attempt)) = entry_fields(&entry) else {
                continue;
            };
            let Some(job) = self.find(&id).await? else {
                continue;
            };
            if job.status.state != State::Queued
                || job.status.attempt != attempt
                || job.queued_ms.saturating_add(ttl_ms) > now
            {
                continue;
            }
            let finished = now.to_string();
            let r = self
                .transition(&id, |job| {
                    if job.status.attempt != attempt {
                        return Err(Self::moved(job, attempt));
                    }
                    let mut change = Self::plan_event(job, Event::Expire)?;
                    change.extra = vec![("finished_ms", finished.clone())];
                    Ok(change)
                })
                .await;
            match r {
                Ok(_) => out.expired.push(id),
                Err(QueueError::Refused(..)) | Err(QueueError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Remove acknowledged entries from the front of the stream, so it does not grow with every
    /// build ever run: everything before the oldest entry still pending (held by a worker) or
    /// not yet delivered. Only acknowledged entries before the group's last delivered id go,
    /// which leaves the lag intact (checked on Redis 7.0). Forgotten builds leave the index too.
    async fn trim(&self, target: &str) -> Result<u64, QueueError> {
        let Some(last) = self.last_delivered(target).await? else {
            return Ok(0);
        };
        let stream = self.names.stream(target);
        let mut c = self.conn().await?;
        let summary: redis::Value = self
            .checked(
                redis::cmd("XPENDING")
                    .arg(&stream)
                    .arg(GROUP)
                    .query_async(&mut c)
                    .await,
            )
            .await?;
        let oldest_pending = reply::pending_min(&summary);
        let first_waiting = self
            .undelivered(target, &last, 1)
            .await?
            .into_iter()
            .next()
            .map(|e| e.id);
        let keep_from = [oldest_pending, first_waiting]
            .into_iter()
            .flatten()
            .min_by(|a, b| reply::cmp_ids(a, b))
            .or_else(|| reply::next_id(&last));
        let Some(keep_from) = keep_from else {
            return Ok(0);
        };
        let trimmed: u64 = self
            .checked(
                redis::cmd("XTRIM")
                    .arg(&stream)
                    .arg("MINID")
                    .arg(&keep_from)
                    .query_async(&mut c)
                    .await,
            )
            .await?;
        let forget_before = now_ms().saturating_sub(self.settings.retention.as_millis() as u64);
        let _: i64 = self
            .checked(
                redis::cmd("ZREMRANGEBYSCORE")
                    .arg(self.names.index())
                    .arg("-inf")
                    .arg(format!("({forget_before}"))
                    .query_async(&mut c)
                    .await,
            )
            .await?;
        Ok(trimmed)
    }

    /// Acknowledge undelivered entries at the head of the stream whose build ended (cancelled
    /// or expired while queued) or moved to another attempt, so the lag counts real work only.
    async fn skip_ended(&self, target: &str, out: &mut Reaped) -> Result<(), QueueError> {
        for _ in 0..BATCH {
            let Some(last) = self.last_delivered(target).await? else {
                return Ok(());
            };
            let Some(next) = self.undelivered(target, &last, 1).await?.into_iter().next() else {
                return Ok(());
            };
            let dead = match entry_fields(&next) {
                None => true,
                Some((id, attempt)) => match self.find(&id).await? {
                    None => true,
                    Some(job) => job.status.state.is_final() || job.status.attempt != attempt,
                },
            };
            if !dead {
                return Ok(());
            }
            let mut c = self.conn().await?;
            let skip = redis::Script::new(SKIP);
            let skipped: i64 = self
                .checked(
                    skip.key(self.names.stream(target))
                        .arg(GROUP)
                        .arg(REAPER)
                        .arg(&last)
                        .arg(&next.id)
                        .invoke_async(&mut c)
                        .await,
                )
                .await?;
            if skipped == 1 {
                out.skipped += 1;
            }
        }
        Ok(())
    }
}

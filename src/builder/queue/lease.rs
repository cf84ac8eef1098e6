//! A worker's side of the queue: claim an entry, keep the lease with heartbeats, move through
//! the phases, and end or re-queue the attempt. Every write names the claim's attempt, so once
//! the reaper has given the build to a new attempt, this worker's writes are refused.

use crate::builder::clock::now_ms;
use crate::builder::id::BuildId;
use crate::builder::queue::change::Change;
use crate::builder::queue::error::QueueError;
use crate::builder::queue::job::Job;
use crate::builder::queue::names::GROUP;
use crate::builder::queue::reply::{self, Entry};
use crate::builder::queue::Queue;
use crate::builder::state::{Event, Phase, Reason, State};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// One attempt a worker holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub id: BuildId,
    pub target: String,
    pub attempt: u32,
    /// The stream entry this attempt was delivered as; the heartbeat keeps it fresh.
    pub entry: String,
    pub worker: String,
    /// The build as it was when claimed.
    pub job: Job,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heartbeat {
    /// The lease is ours; `cancel` says a user asked to cancel the build.
    Held { cancel: bool },
    /// The reaper gave the build to another attempt (or it ended): stop, and write nothing.
    Lost,
}

/// `(build, attempt)` of a stream entry; `None` for an entry the builder did not write.
pub(crate) fn entry_fields(e: &Entry) -> Option<(BuildId, u32)> {
    Some((
        BuildId::parse(e.get("build")?).ok()?,
        e.get("attempt")?.parse().ok()?,
    ))
}

impl Queue {
    /// Make sure the target's stream and group exist (a worker may start before any submit).
    pub(crate) async fn ensure_group(&self, target: &str) -> Result<(), QueueError> {
        let mut c = self.conn().await?;
        let r: redis::RedisResult<String> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(self.names.stream(target))
            .arg(GROUP)
            .arg("0")
            .arg("MKSTREAM")
            .query_async(&mut c)
            .await;
        match r {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
            Err(e) => self.checked(Err(e)).await,
        }
    }

    pub(crate) async fn ack(&self, target: &str, entry: &str) -> Result<(), QueueError> {
        let mut c = self.conn().await?;
        let _: i64 = self
            .checked(
                redis::cmd("XACK")
                    .arg(self.names.stream(target))
                    .arg(GROUP)
                    .arg(entry)
                    .query_async(&mut c)
                    .await,
            )
            .await?;
        Ok(())
    }

    /// Wait up to `block` for a build of `target` and take it as `worker`. Entries of builds
    /// that ended or moved to another attempt are acknowledged and passed over.
    pub async fn claim(
        &self,
        target: &str,
        worker: &str,
        block: Duration,
    ) -> Result<Option<Claim>, QueueError> {
        if !self.targets.iter().any(|t| t == target) {
            return Err(QueueError::UnknownTarget(
                target.to_string(),
                self.targets.clone(),
            ));
        }
        self.ensure_group(target).await?;
        let deadline = Instant::now() + block;
        let mut c = match self.link.blocking_conn(block).await {
            Ok(c) => c,
            Err(e) => {
                return Err(QueueError::Redis(format!(
                    "cannot reach {}: {e}",
                    self.link.url()
                )))
            }
        };
        loop {
            // BLOCK 0 would wait for ever: always wait at least a millisecond.
            let left = deadline
                .saturating_duration_since(Instant::now())
                .as_millis()
                .max(1) as u64;
            let r: redis::Value = self
                .checked(
                    redis::cmd("XREADGROUP")
                        .arg("GROUP")
                        .arg(GROUP)
                        .arg(worker)
                        .arg("COUNT")
                        .arg(1)
                        .arg("BLOCK")
                        .arg(left)
                        .arg("STREAMS")
                        .arg(self.names.stream(target))
                        .arg(">")
                        .query_async(&mut c)
                        .await,
                )
                .await?;
            let Some(entry) = reply::read(&r).into_iter().next() else {
                return Ok(None);
            };
            if let Some(claim) = self.take(target, worker, &entry).await? {
                return Ok(Some(claim));
            }
            self.ack(target, &entry.id).await?;
            if Instant::now() >= deadline {
                return Ok(None);
            }
        }
    }

    /// Turn a delivered entry into a running attempt; `None` if its build is not waiting for it.
    async fn take(
        &self,
        target: &str,
        worker: &str,
        entry: &Entry,
    ) -> Result<Option<Claim>, QueueError> {
        let Some((id, attempt)) = entry_fields(entry) else {
            return Ok(None);
        };
        if self.find(&id).await?.is_none() {
            return Ok(None);
        }
        let now = now_ms().to_string();
        let r = self
            .transition(&id, |job| {
                let mut change = Self::plan_event(job, Event::Claim { attempt })?;
                change.extra = vec![
                    ("worker", worker.to_string()),
                    ("started_ms", now.clone()),
                    ("entry", entry.id.clone()),
                ];
                Ok(change)
            })
            .await;
        match r {
            Ok(job) => Ok(Some(Claim {
                id,
                target: target.to_string(),
                attempt,
                entry: entry.id.clone(),
                worker: worker.to_string(),
                job,
            })),
            Err(QueueError::Refused(..)) | Err(QueueError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Renew the lease: `XCLAIM … 0 <entry> JUSTID` sets the entry's idle time back to 0
    /// without counting a delivery, and returns nothing once the reaper has acknowledged it.
    pub async fn heartbeat(&self, claim: &Claim) -> Result<Heartbeat, QueueError> {
        let mut c = self.conn().await?;
        let kept: Vec<String> = self
            .checked(
                redis::cmd("XCLAIM")
                    .arg(self.names.stream(&claim.target))
                    .arg(GROUP)
                    .arg(&claim.worker)
                    .arg(0)
                    .arg(&claim.entry)
                    .arg("JUSTID")
                    .query_async(&mut c)
                    .await,
            )
            .await?;
        if kept.is_empty() {
            return Ok(Heartbeat::Lost);
        }
        let f: HashMap<String, String> = self
            .checked(
                redis::cmd("HGETALL")
                    .arg(self.names.job(&claim.id))
                    .query_async(&mut c)
                    .await,
            )
            .await?;
        let ours = f
            .get("attempt")
            .is_some_and(|a| *a == claim.attempt.to_string())
            && f.get("state").is_some_and(|s| s == State::Running.as_str());
        if !ours {
            return Ok(Heartbeat::Lost);
        }
        Ok(Heartbeat::Held {
            cancel: f.get("cancel").is_some_and(|v| v == "1"),
        })
    }

    pub async fn advance(&self, claim: &Claim, phase: Phase) -> Result<Job, QueueError> {
        let attempt = claim.attempt;
        self.transition(&claim.id, |job| {
            Self::plan_event(job, Event::Advance { attempt, phase })
        })
        .await
    }

    /// End the attempt (and the build) and acknowledge its entry, in one step.
    pub async fn finish(
        &self,
        claim: &Claim,
        state: State,
        reason: Option<Reason>,
        exit_code: Option<i64>,
    ) -> Result<Job, QueueError> {
        self.finish_stored(claim, state, reason, exit_code, 0).await
    }

    /// `finish`, recording the bytes of the artifacts the attempt stored: the end's record
    /// holds them and `builder_artifact_bytes_total` adds them up.
    pub async fn finish_stored(
        &self,
        claim: &Claim,
        state: State,
        reason: Option<Reason>,
        exit_code: Option<i64>,
        artifact_bytes: u64,
    ) -> Result<Job, QueueError> {
        let now = now_ms().to_string();
        let attempt = claim.attempt;
        self.transition(&claim.id, |job| {
            let mut change = Self::plan_event(
                job,
                Event::Finish {
                    attempt,
                    state,
                    reason,
                },
            )?;
            change.ack = Some(claim.entry.clone());
            change.extra = vec![
                ("finished_ms", now.clone()),
                (
                    "exit_code",
                    exit_code.map(|c| c.to_string()).unwrap_or_default(),
                ),
                ("artifact_bytes", artifact_bytes.to_string()),
            ];
            Ok(change)
        })
        .await
    }

    /// Give the build back as its next attempt (`agent_stop` on SIGTERM, `upload_failed`), or
    /// end it `error` when its counted attempts are used up.
    pub async fn requeue(&self, claim: &Claim, reason: Reason) -> Result<Job, QueueError> {
        let attempt = claim.attempt;
        let entry = claim.entry.clone();
        self.transition(&claim.id, |job| {
            self.plan_requeue(job, attempt, reason, Some(entry.clone()))
        })
        .await
    }

    /// The change for a re-queue of `attempt`: acknowledge its entry, and either add the next
    /// attempt's entry or end the build.
    pub(crate) fn plan_requeue(
        &self,
        job: &Job,
        attempt: u32,
        reason: Reason,
        ack: Option<String>,
    ) -> Result<Change, QueueError> {
        let max_attempts = self.settings.max_attempts;
        let mut change = Self::plan_event(
            job,
            Event::Requeue {
                attempt,
                reason,
                max_attempts,
            },
        )?;
        change.ack = ack;
        change.requeued_for = Some(reason);
        let now = now_ms().to_string();
        if change.next.state == State::Queued {
            change.add = Some(change.next.attempt);
            change.extra = vec![("queued_ms", now), ("worker", String::new())];
        } else {
            change.extra = vec![("finished_ms", now)];
        }
        Ok(change)
    }
}

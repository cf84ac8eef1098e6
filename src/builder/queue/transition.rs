//! Reading builds and changing them: read, let the state machine decide, write with the `CAS`
//! script, and read again if another writer got there first.

use crate::builder::id::BuildId;
use crate::builder::queue::change::Change;
use crate::builder::queue::counters;
use crate::builder::queue::error::QueueError;
use crate::builder::queue::job::{status_fields, Job};
use crate::builder::queue::names::GROUP;
use crate::builder::queue::scripts::CAS;
use crate::builder::queue::Queue;
use crate::builder::state::{Event, Refusal};
use redis::aio::MultiplexedConnection;
use std::collections::HashMap;

/// Another writer between our read and our write makes the CAS fail; each try re-reads, so a few
/// suffice unless something writes the same build in a loop.
const CAS_TRIES: usize = 8;

impl Queue {
    pub(crate) async fn conn(&self) -> Result<MultiplexedConnection, QueueError> {
        match self.link.conn().await {
            Ok(c) => Ok(c),
            Err(e) => Err(QueueError::Redis(format!(
                "cannot reach {}: {e}",
                self.link.url()
            ))),
        }
    }

    /// Pass a Redis result through, forgetting the connection if it broke.
    pub(crate) async fn checked<T>(&self, r: redis::RedisResult<T>) -> Result<T, QueueError> {
        match r {
            Ok(v) => Ok(v),
            Err(e) => {
                self.link.on_error(&e).await;
                Err(e.into())
            }
        }
    }

    /// A build, or `None` if there is no such build.
    pub async fn find(&self, id: &BuildId) -> Result<Option<Job>, QueueError> {
        let mut c = self.conn().await?;
        let f: HashMap<String, String> = self
            .checked(
                redis::cmd("HGETALL")
                    .arg(self.names.job(id))
                    .query_async(&mut c)
                    .await,
            )
            .await?;
        Job::from_fields(id, &f).map_err(QueueError::Corrupt)
    }

    pub async fn get(&self, id: &BuildId) -> Result<Job, QueueError> {
        self.find(id)
            .await?
            .ok_or_else(|| QueueError::NotFound(id.clone()))
    }

    /// The newest builds first, at most `limit`.
    pub async fn list(&self, limit: usize) -> Result<Vec<Job>, QueueError> {
        let mut c = self.conn().await?;
        let ids: Vec<String> = self
            .checked(
                redis::cmd("ZRANGE")
                    .arg(self.names.index())
                    .arg("+inf")
                    .arg("-inf")
                    .arg("BYSCORE")
                    .arg("REV")
                    .arg("LIMIT")
                    .arg(0)
                    .arg(limit)
                    .query_async(&mut c)
                    .await,
            )
            .await?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let Ok(id) = BuildId::parse(&id) else {
                continue;
            };
            if let Some(job) = self.find(&id).await? {
                out.push(job);
            }
        }
        Ok(out)
    }

    /// Write `change` if the build is still at `job.rev` and `job.status.attempt`. `Ok(None)`
    /// when it moved (read again); `Ok(Some(added entry or ""))` when written.
    pub(crate) async fn write(
        &self,
        job: &Job,
        change: &Change,
    ) -> Result<Option<String>, QueueError> {
        let mut c = self.conn().await?;
        let counts = counters::effects(job, change);
        let script = redis::Script::new(CAS);
        let mut inv = script.prepare_invoke();
        inv.key(self.names.job(&job.id))
            .key(self.names.stream(&job.target))
            .key(self.names.log(&job.id))
            .key(self.names.counters())
            .arg(job.rev)
            .arg(job.status.attempt)
            .arg(GROUP)
            .arg(change.ack.as_deref().unwrap_or(""))
            .arg(if change.add.is_some() { "1" } else { "" })
            .arg(job.id.as_str())
            .arg(change.add.unwrap_or(0))
            // An ended build is kept for the retention period, then Redis forgets it (its
            // objects stay in the store).
            .arg(if change.next.state.is_final() {
                self.settings.retention.as_secs().max(1).to_string()
            } else {
                String::new()
            })
            .arg(counts.len());
        for (field, n) in &counts {
            inv.arg(field).arg(*n);
        }
        for (k, v) in status_fields(&change.next) {
            inv.arg(k).arg(v);
        }
        for (k, v) in &change.extra {
            inv.arg(*k).arg(v);
        }
        let r: (i64, String) = match self.checked(inv.invoke_async(&mut c).await).await {
            Ok(v) => v,
            Err(e) => return Err(e),
        };
        Ok((r.0 == 1).then_some(r.1))
    }

    /// Read the build, let `plan` decide, write; again on a concurrent change. Returns the
    /// build as written.
    pub(crate) async fn transition(
        &self,
        id: &BuildId,
        plan: impl Fn(&Job) -> Result<Change, QueueError>,
    ) -> Result<Job, QueueError> {
        for _ in 0..CAS_TRIES {
            let job = self.get(id).await?;
            let change = plan(&job)?;
            if self.write(&job, &change).await?.is_some() {
                return self.get(id).await;
            }
        }
        Err(QueueError::Redis(format!(
            "build {id} kept changing while it was being written; try again"
        )))
    }

    /// Apply a state-machine event with no other effect.
    pub(crate) fn plan_event(job: &Job, event: Event) -> Result<Change, QueueError> {
        job.status
            .apply(event)
            .map(Change::to)
            .map_err(|r: Refusal| QueueError::Refused(job.id.clone(), r))
    }

    /// Cancel: a queued build ends `cancelled` at once (its entry stays in the stream and is
    /// skipped: deleting an undelivered entry would leave the group's lag counting it); a
    /// running build is flagged, and its worker stops it on its next heartbeat.
    pub async fn cancel(&self, id: &BuildId) -> Result<Job, QueueError> {
        let now = crate::builder::clock::now_ms().to_string();
        self.transition(id, |job| {
            let mut change = Self::plan_event(job, Event::Cancel)?;
            if change.next.state.is_final() {
                change.extra.push(("finished_ms", now.clone()));
            }
            Ok(change)
        })
        .await
    }
}

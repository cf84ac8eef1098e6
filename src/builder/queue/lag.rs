//! `builder_pending_jobs{workspace,target}`: the consumer group's lag, read with the same
//! command KEDA's redis-streams scaler uses with `lagCount` (`XINFO GROUPS`, Redis ≥ 7), so
//! the number on `/metrics` is the number the autoscaler acts on.

use crate::builder::queue::error::QueueError;
use crate::builder::queue::names::GROUP;
use crate::builder::queue::reply::{self, Group};
use crate::builder::queue::Queue;

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

/// The Prometheus text of every gauge (what `serve` puts on `/metrics`).
pub fn render_gauges(workspace: &str, gauges: &[Gauges]) -> String {
    let pending: Vec<(String, u64)> = gauges
        .iter()
        .map(|g| (g.target.clone(), g.pending))
        .collect();
    let mut out = render_pending(workspace, &pending);
    out.push_str(
        "# HELP builder_running_jobs Builds held by a worker (delivered, not yet acknowledged).\n\
         # TYPE builder_running_jobs gauge\n",
    );
    for g in gauges {
        out.push_str(&format!(
            "builder_running_jobs{{workspace=\"{workspace}\",target=\"{}\"}} {}\n",
            g.target, g.running
        ));
    }
    out.push_str(
        "# HELP builder_oldest_pending_age_seconds How long the oldest build waiting for a worker has waited.\n\
         # TYPE builder_oldest_pending_age_seconds gauge\n",
    );
    for g in gauges {
        out.push_str(&format!(
            "builder_oldest_pending_age_seconds{{workspace=\"{workspace}\",target=\"{}\"}} {:.3}\n",
            g.target,
            g.oldest_pending_ms as f64 / 1000.0
        ));
    }
    out
}

/// The Prometheus text of `builder_pending_jobs`.
pub fn render_pending(workspace: &str, pending: &[(String, u64)]) -> String {
    let mut out = String::from(
        "# HELP builder_pending_jobs Builds waiting for a worker (the consumer group's lag, as KEDA reads it).\n\
         # TYPE builder_pending_jobs gauge\n",
    );
    for (target, n) in pending {
        out.push_str(&format!(
            "builder_pending_jobs{{workspace=\"{workspace}\",target=\"{target}\"}} {n}\n"
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_one_series_per_target() {
        let text = render_pending("demo", &[("web".into(), 2), ("tauri-linux".into(), 0)]);
        assert!(text.contains("builder_pending_jobs{workspace=\"demo\",target=\"web\"} 2\n"));
        assert!(
            text.contains("builder_pending_jobs{workspace=\"demo\",target=\"tauri-linux\"} 0\n")
        );
        assert!(text.contains("# TYPE builder_pending_jobs gauge"));
        let all = render_gauges(
            "demo",
            &[Gauges {
                target: "web".into(),
                pending: 2,
                running: 1,
                oldest_pending_ms: 1500,
            }],
        );
        assert!(all.contains("builder_running_jobs{workspace=\"demo\",target=\"web\"} 1\n"));
        assert!(all.contains(
            "builder_oldest_pending_age_seconds{workspace=\"demo\",target=\"web\"} 1.500\n"
        ));
    }
}

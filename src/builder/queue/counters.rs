//! The queue's counters and histograms: what each transition adds to them, and reading them
//! back. Pure.
//!
//! Workers are separate processes (one KEDA Job each), so `serve` cannot count in memory. The
//! counts live in one Redis hash per workspace (`Names::counters`), and the `CAS` script that
//! writes a transition adds to them in the same step, after its fencing check: a counter moves
//! exactly once per transition written and never for a refused (stale) write. Histogram buckets
//! are hash fields holding the observations that fell in that bucket only (the renderer sums
//! them into Prometheus' cumulative buckets); times are whole milliseconds, so every field is an
//! integer for `HINCRBY`.
//!
//! Field names: `<family>|<target>[|<label>…]`. Targets are DNS labels and states and reasons
//! are snake_case, so `|` never occurs inside a part.

use crate::builder::queue::change::Change;
use crate::builder::queue::job::Job;
use crate::builder::state::{Reason, State};
use std::collections::{BTreeMap, HashMap};

/// Upper bounds of the queue-wait buckets, in ms: from a worker already waiting (tens of ms) to
/// a KEDA Job starting on a cold node (minutes) and a queue nobody serves (an hour).
pub const WAIT_BUCKETS_MS: [u64; 14] = [
    10, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000, 300_000, 900_000, 3_600_000,
];
/// Upper bounds of the build-duration buckets, in ms: up to the longest timeout a target may
/// have (2 h).
pub const DURATION_BUCKETS_MS: [u64; 12] = [
    1_000, 5_000, 15_000, 30_000, 60_000, 120_000, 300_000, 600_000, 900_000, 1_800_000, 3_600_000,
    7_200_000,
];

/// The two histograms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timing {
    /// Entering the queue (submit, or the re-queue of a later attempt) → a worker takes it.
    QueueWait,
    /// A worker takes it → the attempt ends (or is given back).
    Duration,
}

impl Timing {
    fn prefix(self) -> &'static str {
        match self {
            Timing::QueueWait => "wait",
            Timing::Duration => "run",
        }
    }

    pub fn bounds_ms(self) -> &'static [u64] {
        match self {
            Timing::QueueWait => &WAIT_BUCKETS_MS,
            Timing::Duration => &DURATION_BUCKETS_MS,
        }
    }
}

/// The label value of a missing reason (`succeeded` has none).
pub const NO_REASON: &str = "none";

fn bucket_field(t: Timing, target: &str, ms: u64) -> String {
    let le = t
        .bounds_ms()
        .iter()
        .find(|b| ms <= **b)
        .map_or("inf".to_string(), |b| b.to_string());
    format!("{}|{target}|{le}", t.prefix())
}

fn observe(t: Timing, target: &str, ms: u64, out: &mut Vec<(String, i64)>) {
    let ms_i = i64::try_from(ms).unwrap_or(i64::MAX);
    out.push((bucket_field(t, target, ms), 1));
    out.push((format!("{}_sum|{target}", t.prefix()), ms_i));
    out.push((format!("{}_count|{target}", t.prefix()), 1));
}

fn extra_ms(change: &Change, key: &str) -> Option<u64> {
    change
        .extra
        .iter()
        .find(|(k, _)| *k == key)
        .and_then(|(_, v)| v.parse().ok())
}

/// The counter increments of writing `change` over `before`. Times come from the fields the
/// change records (`started_ms`, `finished_ms`, `artifact_bytes`), so a metric always agrees
/// with the build's record.
pub fn effects(before: &Job, change: &Change) -> Vec<(String, i64)> {
    let target = before.target.as_str();
    let from = before.status.state;
    let to = change.next.state;
    let mut out = Vec::new();
    if from == State::Queued && to == State::Running {
        if let Some(started) = extra_ms(change, "started_ms") {
            let wait = started.saturating_sub(before.queued_ms);
            observe(Timing::QueueWait, target, wait, &mut out);
        }
    }
    let attempt_over = from == State::Running && to != State::Running;
    if attempt_over {
        let end = extra_ms(change, "finished_ms")
            .or_else(|| extra_ms(change, "queued_ms"))
            .zip(before.started_ms);
        if let Some((end, started)) = end {
            observe(
                Timing::Duration,
                target,
                end.saturating_sub(started),
                &mut out,
            );
        }
    }
    if !from.is_final() && to.is_final() {
        let reason = change.next.reason.map_or(NO_REASON, Reason::as_str);
        out.push((format!("ended|{target}|{}|{reason}", to.as_str()), 1));
    }
    match change.requeued_for {
        Some(Reason::WorkerLost) => out.push((format!("reclaimed|{target}"), 1)),
        Some(Reason::UploadFailed) => out.push((format!("upload_errors|{target}"), 1)),
        _ => {}
    }
    if let Some(bytes) = extra_ms(change, "artifact_bytes").filter(|b| *b > 0) {
        let bytes = i64::try_from(bytes).unwrap_or(i64::MAX);
        out.push((format!("artifact_bytes|{target}"), bytes));
    }
    out
}

/// One histogram as read back: observations per bucket (not cumulative), sum and count.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Histogram {
    /// Per bound of `Timing::bounds_ms`, in order.
    pub buckets: Vec<u64>,
    /// Observations above the last bound.
    pub overflow: u64,
    pub sum_ms: u64,
    pub count: u64,
}

/// The counters of one target.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetCounters {
    /// `(state, reason or NO_REASON)` → builds that ended so.
    pub ended: BTreeMap<(String, String), u64>,
    pub queue_wait: Histogram,
    pub duration: Histogram,
    /// Builds taken back from a worker that stopped heartbeating (`worker_lost`).
    pub reclaimed: u64,
    /// Attempts whose artifacts or records could not be stored (`upload_failed`).
    pub upload_errors: u64,
    /// Bytes of artifacts stored by builds that succeeded.
    pub artifact_bytes: u64,
}

/// Everything counted, per target of the config, in config order. Fields of targets no longer
/// in the config are left out, so labels stay within the config's targets.
pub fn read(targets: &[String], fields: &HashMap<String, String>) -> Vec<(String, TargetCounters)> {
    let num = |k: &str| -> u64 {
        fields
            .get(k)
            .and_then(|v| v.parse::<i64>().ok())
            .map_or(0, |v| v.max(0) as u64)
    };
    let histogram = |t: Timing, target: &str| Histogram {
        buckets: t
            .bounds_ms()
            .iter()
            .map(|b| num(&format!("{}|{target}|{b}", t.prefix())))
            .collect(),
        overflow: num(&format!("{}|{target}|inf", t.prefix())),
        sum_ms: num(&format!("{}_sum|{target}", t.prefix())),
        count: num(&format!("{}_count|{target}", t.prefix())),
    };
    targets
        .iter()
        .map(|target| {
            let mut ended = BTreeMap::new();
            for (k, v) in fields {
                let mut parts = k.split('|');
                if let (Some("ended"), Some(t), Some(state), Some(reason), None) = (
                    parts.next(),
                    parts.next(),
                    parts.next(),
                    parts.next(),
                    parts.next(),
                ) {
                    // Only states and reasons the builder knows become labels.
                    let known_reason = reason == NO_REASON || Reason::parse(reason).is_some();
                    if t == target && State::parse(state).is_some() && known_reason {
                        let n = v.parse::<i64>().map_or(0, |n| n.max(0) as u64);
                        ended.insert((state.to_string(), reason.to_string()), n);
                    }
                }
            }
            let c = TargetCounters {
                ended,
                queue_wait: histogram(Timing::QueueWait, target),
                duration: histogram(Timing::Duration, target),
                reclaimed: num(&format!("reclaimed|{target}")),
                upload_errors: num(&format!("upload_errors|{target}")),
                artifact_bytes: num(&format!("artifact_bytes|{target}")),
            };
            (target.clone(), c)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builder::id::BuildId;
    use crate::builder::queue::job::BuildSpec;
    use crate::builder::state::{Event, Status};
    use std::collections::BTreeMap as Map;

    fn job(status: Status, queued_ms: u64, started_ms: Option<u64>) -> Job {
        Job {
            id: BuildId::parse("b0123456789abcdef01234567").unwrap(),
            target: "web".into(),
            spec: BuildSpec {
                target: "web".into(),
                source: None,
                env: Map::new(),
            },
            spec_sha: String::new(),
            status,
            rev: 1,
            entry: String::new(),
            worker: None,
            submitted_ms: queued_ms,
            queued_ms,
            started_ms,
            finished_ms: None,
            exit_code: None,
        }
    }

    fn fields(e: &[(String, i64)]) -> HashMap<String, String> {
        let mut m: HashMap<String, i64> = HashMap::new();
        for (k, v) in e {
            *m.entry(k.clone()).or_default() += v;
        }
        m.into_iter().map(|(k, v)| (k, v.to_string())).collect()
    }

    #[test]
    fn a_claim_observes_the_wait_and_an_end_counts_once_with_its_duration() {
        let queued = job(Status::new(), 1_000, None);
        let mut claim = Change::to(Status::new().apply(Event::Claim { attempt: 1 }).unwrap());
        claim.extra = vec![("started_ms", "1300".into())];
        let e = effects(&queued, &claim);
        assert_eq!(
            e,
            vec![
                ("wait|web|500".to_string(), 1),
                ("wait_sum|web".to_string(), 300),
                ("wait_count|web".to_string(), 1)
            ]
        );

        let running = job(claim.next.clone(), 1_000, Some(1_300));
        let mut end = Change::to(
            running
                .status
                .apply(Event::Finish {
                    attempt: 1,
                    state: State::Succeeded,
                    reason: None,
                })
                .unwrap(),
        );
        end.extra = vec![
            ("finished_ms", "9300".into()),
            ("artifact_bytes", "4096".into()),
        ];
        let f = fields(&effects(&running, &end));
        let read_back = read(&["web".to_string()], &f);
        let c = &read_back[0].1;
        assert_eq!(
            c.ended.get(&("succeeded".into(), NO_REASON.into())),
            Some(&1)
        );
        assert_eq!((c.duration.count, c.duration.sum_ms), (1, 8_000));
        assert_eq!(c.duration.buckets[2], 1, "8 s falls in the 15 s bucket");
        assert_eq!(c.artifact_bytes, 4096);
        assert_eq!(c.queue_wait.count, 0);
    }

    #[test]
    fn requeues_count_reclaims_and_upload_errors_but_no_end() {
        let running = job(
            Status::new().apply(Event::Claim { attempt: 1 }).unwrap(),
            0,
            Some(10),
        );
        for (reason, field) in [
            (Reason::WorkerLost, "reclaimed|web"),
            (Reason::UploadFailed, "upload_errors|web"),
        ] {
            let mut c = Change::to(
                running
                    .status
                    .apply(Event::Requeue {
                        attempt: 1,
                        reason,
                        max_attempts: 3,
                    })
                    .unwrap(),
            );
            c.requeued_for = Some(reason);
            c.extra = vec![("queued_ms", "70".into())];
            let f = fields(&effects(&running, &c));
            assert_eq!(f.get(field).map(String::as_str), Some("1"));
            assert!(f.keys().all(|k| !k.starts_with("ended|")), "{f:?}");
            assert_eq!(f.get("run_sum|web").map(String::as_str), Some("60"));
        }
        // A graceful stop is neither.
        let mut c = Change::to(
            running
                .status
                .apply(Event::Requeue {
                    attempt: 1,
                    reason: Reason::AgentStop,
                    max_attempts: 3,
                })
                .unwrap(),
        );
        c.requeued_for = Some(Reason::AgentStop);
        assert!(effects(&running, &c)
            .iter()
            .all(|(k, _)| !k.starts_with("reclaimed") && !k.starts_with("upload")));
    }

    #[test]
    fn a_cancel_while_running_counts_nothing_and_unknown_labels_are_dropped() {
        let running = job(
            Status::new().apply(Event::Claim { attempt: 1 }).unwrap(),
            0,
            Some(10),
        );
        let c = Change::to(running.status.apply(Event::Cancel).unwrap());
        assert!(effects(&running, &c).is_empty());
        let mut f = HashMap::new();
        f.insert("ended|web|failed|exit_code".to_string(), "2".to_string());
        f.insert("ended|web|failed|made_up".to_string(), "1".to_string());
        f.insert("ended|gone|failed|exit_code".to_string(), "1".to_string());
        f.insert("wait|web|inf".to_string(), "3".to_string());
        let r = read(&["web".to_string()], &f);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].1.ended.len(), 1);
        assert_eq!(r[0].1.queue_wait.overflow, 3);
    }
}

//! The builder's `/metrics` numbers against a real Redis: each transition moves its counters
//! exactly once, in the same script that writes it, and a refused (stale) write moves none.
//! Workers are separate processes, so every number here is read back from Redis the way
//! `serve` reads it, by a queue that did none of the work.

use crate::redis_server::RedisServer;

use appgear::builder::queue::exposition::render;
use appgear::builder::queue::lease::Claim;
use appgear::builder::queue::{Queue, Settings};
use appgear::builder::state::{Phase, Reason, State};
use appgear::core::names::WorkspaceId;
use appgear::core::redis::RedisLink;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

const LEASE: Duration = Duration::from_millis(300);

fn settings(max_attempts: u32) -> Settings {
    Settings {
        max_attempts,
        lease: LEASE,
        queue_ttl: Duration::from_secs(3600),
        idempotency_ttl: Duration::from_secs(60),
        retention: Duration::from_secs(3600),
    }
}

fn queue(redis: &RedisServer, s: Settings) -> Queue {
    Queue::new(
        Arc::new(RedisLink::new(&redis.url).unwrap()),
        "factory-builds",
        WorkspaceId::parse("demo").unwrap(),
        vec!["web".into(), "tauri-linux".into()],
        s,
    )
}

fn spec() -> appgear::builder::queue::job::BuildSpec {
    appgear::builder::queue::job::BuildSpec {
        target: "web".into(),
        source: None,
        env: BTreeMap::new(),
    }
}

/// The `/metrics` text as `serve` renders it, read through a queue of its own (like `serve`,
/// which shares nothing with the workers but Redis).
async fn metrics(redis: &RedisServer) -> String {
    let q = queue(redis, settings(3));
    let gauges = q.gauges(appgear::builder::clock::now_ms()).await.unwrap();
    let counters = q.counters().await.unwrap();
    render("demo", &gauges, &counters)
}

/// The value of one series, e.g. `builder_running_jobs{workspace="demo",target="web"}`.
fn value(text: &str, series: &str) -> f64 {
    let hits: Vec<f64> = text
        .lines()
        .filter_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .collect();
    assert_eq!(hits.len(), 1, "{series} in\n{text}");
    hits[0]
}

fn web(name: &str) -> String {
    format!("{name}{{workspace=\"demo\",target=\"web\"}}")
}

fn ended(state: &str, reason: &str) -> String {
    format!(
        "builder_jobs_ended_total{{workspace=\"demo\",target=\"web\",state=\"{state}\",reason=\"{reason}\"}}"
    )
}

/// Every counter field in Redis, to show that a refused write changed none of them.
async fn raw_counters(redis: &RedisServer, q: &Queue) -> HashMap<String, String> {
    let client = redis::Client::open(redis.url.as_str()).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    redis::cmd("HGETALL")
        .arg(q.names().counters())
        .query_async(&mut c)
        .await
        .unwrap()
}

async fn claim(q: &Queue, worker: &str) -> Claim {
    q.claim("web", worker, Duration::from_secs(2))
        .await
        .unwrap()
        .expect("a build to claim")
}

#[tokio::test]
async fn submit_claim_and_end_each_move_their_numbers_once() {
    let redis = RedisServer::start();
    let q = queue(&redis, settings(3));
    let m = metrics(&redis).await;
    assert_eq!(value(&m, &web("builder_pending_jobs")), 0.0);
    assert_eq!(value(&m, &ended("succeeded", "none")), 0.0);

    let id = q.submit(spec(), None).await.unwrap().job.id;
    let m = metrics(&redis).await;
    assert_eq!(value(&m, &web("builder_pending_jobs")), 1.0);
    assert_eq!(value(&m, &web("builder_running_jobs")), 0.0);
    assert_eq!(value(&m, &web("builder_queue_wait_seconds_count")), 0.0);

    tokio::time::sleep(Duration::from_millis(30)).await;
    let c = claim(&q, "w1").await;
    let m = metrics(&redis).await;
    assert_eq!(value(&m, &web("builder_pending_jobs")), 0.0);
    assert_eq!(value(&m, &web("builder_running_jobs")), 1.0);
    assert_eq!(value(&m, &web("builder_queue_wait_seconds_count")), 1.0);
    let job = q.get(&id).await.unwrap();
    let waited = (job.started_ms.unwrap() - job.queued_ms) as f64 / 1000.0;
    assert!(waited >= 0.03, "{waited}");
    assert_eq!(
        value(&m, &web("builder_queue_wait_seconds_sum")),
        waited,
        "the observed wait is the one the build's record shows"
    );
    assert_eq!(value(&m, &web("builder_build_duration_seconds_count")), 0.0);

    // Phases are not ends.
    q.advance(&c, Phase::Building).await.unwrap();
    q.advance(&c, Phase::Uploading).await.unwrap();
    let m = metrics(&redis).await;
    assert_eq!(value(&m, &web("builder_queue_wait_seconds_count")), 1.0);
    assert_eq!(value(&m, &ended("succeeded", "none")), 0.0);

    let done = q
        .finish_stored(&c, State::Succeeded, None, Some(0), 4096)
        .await
        .unwrap();
    let m = metrics(&redis).await;
    assert_eq!(value(&m, &ended("succeeded", "none")), 1.0);
    assert_eq!(value(&m, &ended("failed", "exit_code")), 0.0);
    assert_eq!(value(&m, &web("builder_running_jobs")), 0.0);
    assert_eq!(value(&m, &web("builder_build_duration_seconds_count")), 1.0);
    let ran = (done.finished_ms.unwrap() - done.started_ms.unwrap()) as f64 / 1000.0;
    assert_eq!(value(&m, &web("builder_build_duration_seconds_sum")), ran);
    assert_eq!(value(&m, &web("builder_artifact_bytes_total")), 4096.0);
    assert_eq!(value(&m, &web("builder_queue_wait_seconds_count")), 1.0);
    assert_eq!(
        value(
            &m,
            "builder_jobs_ended_total{workspace=\"demo\",target=\"tauri-linux\",state=\"succeeded\",reason=\"none\"}"
        ),
        0.0
    );

    // Ending it again is refused, and counts nothing.
    let before = raw_counters(&redis, &q).await;
    assert!(q
        .finish(&c, State::Failed, Some(Reason::ExitCode), Some(1))
        .await
        .is_err());
    assert_eq!(raw_counters(&redis, &q).await, before);
}

#[tokio::test]
async fn a_reclaim_counts_once_and_a_zombies_late_end_counts_nothing() {
    let redis = RedisServer::start();
    let q = queue(&redis, settings(3));
    q.submit(spec(), None).await.unwrap();
    let zombie = claim(&q, "w1").await;
    tokio::time::sleep(LEASE + Duration::from_millis(150)).await;
    let r = q.reap().await.unwrap();
    assert_eq!(r.requeued.len(), 1, "{r:?}");
    let m = metrics(&redis).await;
    assert_eq!(value(&m, &web("builder_reclaimed_jobs_total")), 1.0);
    assert_eq!(
        value(&m, &ended("error", "worker_lost")),
        0.0,
        "a re-queue is not an end"
    );
    assert_eq!(
        value(&m, &web("builder_build_duration_seconds_count")),
        1.0,
        "the lost attempt's time is observed once"
    );
    assert_eq!(value(&m, &web("builder_pending_jobs")), 1.0);

    // Another pass finds nothing more to count.
    q.reap().await.unwrap();
    let m = metrics(&redis).await;
    assert_eq!(value(&m, &web("builder_reclaimed_jobs_total")), 1.0);

    let live = claim(&q, "w2").await;
    assert_eq!(live.attempt, 2);
    let m = metrics(&redis).await;
    assert_eq!(value(&m, &web("builder_queue_wait_seconds_count")), 2.0);

    // The zombie's late writes are refused by the fencing, and no counter moves.
    let before = raw_counters(&redis, &q).await;
    assert!(q
        .finish_stored(&zombie, State::Succeeded, None, Some(0), 999)
        .await
        .is_err());
    assert!(q.requeue(&zombie, Reason::UploadFailed).await.is_err());
    assert!(q.advance(&zombie, Phase::Building).await.is_err());
    assert_eq!(raw_counters(&redis, &q).await, before);

    q.finish(&live, State::Failed, Some(Reason::ExitCode), Some(3))
        .await
        .unwrap();
    let m = metrics(&redis).await;
    assert_eq!(value(&m, &ended("failed", "exit_code")), 1.0);
    assert_eq!(value(&m, &ended("succeeded", "none")), 0.0);
    assert_eq!(value(&m, &web("builder_artifact_bytes_total")), 0.0);
    assert_eq!(value(&m, &web("builder_build_duration_seconds_count")), 2.0);
}

#[tokio::test]
async fn upload_errors_cancels_expiries_and_exhausted_attempts_are_counted_by_reason() {
    let redis = RedisServer::start();
    let q = queue(&redis, settings(2));

    // upload_failed gives the build back: an upload error, not an end.
    let id = q.submit(spec(), None).await.unwrap().job.id;
    let c = claim(&q, "w1").await;
    q.requeue(&c, Reason::UploadFailed).await.unwrap();
    // A graceful stop gives it back too, but is neither an upload error nor a reclaim.
    let c = claim(&q, "w1").await;
    q.requeue(&c, Reason::AgentStop).await.unwrap();
    let m = metrics(&redis).await;
    assert_eq!(value(&m, &web("builder_upload_errors_total")), 1.0);
    assert_eq!(value(&m, &web("builder_reclaimed_jobs_total")), 0.0);
    // The second counted loss uses up the attempts: an upload error and an end.
    let c = claim(&q, "w1").await;
    let end = q.requeue(&c, Reason::UploadFailed).await.unwrap();
    assert_eq!(end.status.state, State::Error);
    let m = metrics(&redis).await;
    assert_eq!(value(&m, &web("builder_upload_errors_total")), 2.0);
    assert_eq!(value(&m, &ended("error", "upload_failed")), 1.0);
    assert_eq!(value(&m, &web("builder_queue_wait_seconds_count")), 3.0);
    assert_eq!(value(&m, &web("builder_build_duration_seconds_count")), 3.0);
    assert_eq!(q.get(&id).await.unwrap().status.state, State::Error);

    // Cancelled while queued: an end with no duration.
    let id = q.submit(spec(), None).await.unwrap().job.id;
    q.cancel(&id).await.unwrap();
    let m = metrics(&redis).await;
    assert_eq!(value(&m, &ended("cancelled", "user_cancel")), 1.0);
    assert_eq!(value(&m, &web("builder_build_duration_seconds_count")), 3.0);

    // Waited past the queue TTL: expired/timeout.
    let short = queue(
        &redis,
        Settings {
            queue_ttl: Duration::from_millis(50),
            ..settings(2)
        },
    );
    short.reap().await.unwrap();
    short.submit(spec(), None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(120)).await;
    let r = short.reap().await.unwrap();
    assert_eq!(r.expired.len(), 1, "{r:?}");
    let m = metrics(&redis).await;
    assert_eq!(value(&m, &ended("expired", "timeout")), 1.0);
    assert_eq!(value(&m, &web("builder_pending_jobs")), 0.0);

    // Two lost workers use up both attempts: two reclaims, one error/worker_lost.
    q.submit(spec(), None).await.unwrap();
    for _ in 0..2 {
        claim(&q, "gone").await;
        tokio::time::sleep(LEASE + Duration::from_millis(150)).await;
        q.reap().await.unwrap();
    }
    let m = metrics(&redis).await;
    assert_eq!(value(&m, &web("builder_reclaimed_jobs_total")), 2.0);
    assert_eq!(value(&m, &ended("error", "worker_lost")), 1.0);
    assert_eq!(value(&m, &web("builder_running_jobs")), 0.0);
}

/// The script itself: with a stale `rev` or `attempt` (another writer got there first, or a
/// zombie's attempt) it writes nothing and moves no counter; with the current ones it moves
/// each counter it was given exactly once.
#[tokio::test]
async fn the_cas_script_moves_counters_only_when_its_check_passes() {
    let redis = RedisServer::start();
    let q = queue(&redis, settings(3));
    let job = q.submit(spec(), None).await.unwrap().job;
    let client = redis::Client::open(redis.url.as_str()).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let script = redis::Script::new(appgear::builder::queue::scripts::CAS);
    let cas = |rev: u64, attempt: u32| {
        let mut inv = script.prepare_invoke();
        inv.key(q.names().job(&job.id))
            .key(q.names().stream("web"))
            .key(q.names().log(&job.id))
            .key(q.names().counters())
            .arg(rev)
            .arg(attempt)
            .arg("builders")
            .arg("")
            .arg("")
            .arg(job.id.as_str())
            .arg(0)
            .arg("")
            .arg(2)
            .arg("ended|web|cancelled|user_cancel")
            .arg(1)
            .arg("wait_sum|web")
            .arg(250)
            .arg("state")
            .arg("cancelled");
        inv
    };
    for (rev, attempt) in [(job.rev + 1, 1), (job.rev, 2), (job.rev - 1, 1)] {
        let r: (i64, String, String) = cas(rev, attempt).invoke_async(&mut c).await.unwrap();
        assert_eq!(r.0, 0, "rev {rev} attempt {attempt} must be refused");
        assert!(raw_counters(&redis, &q).await.is_empty());
        assert_eq!(q.get(&job.id).await.unwrap().status.state, State::Queued);
    }
    let r: (i64, String) = cas(job.rev, 1).invoke_async(&mut c).await.unwrap();
    assert_eq!(r.0, 1);
    let counted = raw_counters(&redis, &q).await;
    assert_eq!(
        counted
            .get("ended|web|cancelled|user_cancel")
            .map(String::as_str),
        Some("1")
    );
    assert_eq!(counted.get("wait_sum|web").map(String::as_str), Some("250"));
    assert_eq!(counted.len(), 2);
    let after = q.get(&job.id).await.unwrap();
    assert_eq!(
        (after.status.state, after.rev),
        (State::Cancelled, job.rev + 1)
    );
    // The same write again is now stale: nothing moves.
    let r: (i64, String, String) = cas(job.rev, 1).invoke_async(&mut c).await.unwrap();
    assert_eq!(r.0, 0);
    assert_eq!(raw_counters(&redis, &q).await, counted);
}

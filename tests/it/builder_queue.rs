//! The builder's queue against a real Redis: the lag KEDA reads, idempotent submits, leases and
//! the reaper, fencing of late writes, cancel and expiry.

use crate::redis_server::RedisServer;

use appgear::builder::id::BuildId;
use appgear::builder::queue::error::QueueError;
use appgear::builder::queue::exposition::render_pending;
use appgear::builder::queue::job::BuildSpec;
use appgear::builder::queue::lease::{Claim, Heartbeat};
use appgear::builder::queue::names::GROUP;
use appgear::builder::queue::{Queue, Settings};
use appgear::builder::state::{Phase, Reason, Refusal, State};
use appgear::core::names::WorkspaceId;
use appgear::core::redis::RedisLink;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

const LEASE: Duration = Duration::from_millis(300);
const NO_WAIT: Duration = Duration::from_millis(50);

fn settings() -> Settings {
    Settings {
        max_attempts: 3,
        lease: LEASE,
        queue_ttl: Duration::from_secs(3600),
        idempotency_ttl: Duration::from_secs(60),
        retention: Duration::from_secs(3600),
    }
}

fn queue(redis: &RedisServer, settings: Settings) -> Queue {
    let link = Arc::new(RedisLink::new(&redis.url).unwrap());
    Queue::new(
        link,
        "factory-builds",
        WorkspaceId::parse("demo").unwrap(),
        vec!["web".into(), "tauri-linux".into()],
        settings,
    )
}

fn spec(target: &str) -> BuildSpec {
    BuildSpec {
        target: target.into(),
        source: None,
        env: BTreeMap::new(),
    }
}

/// The lag as KEDA's redis-streams scaler reads it with `lagCount`: `XINFO GROUPS`, field `lag`.
async fn keda_lag(redis: &RedisServer, stream: &str) -> i64 {
    let client = redis::Client::open(redis.url.as_str()).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let groups: Vec<Vec<redis::Value>> = redis::cmd("XINFO")
        .arg("GROUPS")
        .arg(stream)
        .query_async(&mut c)
        .await
        .unwrap();
    let g = groups
        .iter()
        .find(|g| g.get(1) == Some(&redis::Value::BulkString(GROUP.as_bytes().to_vec())))
        .expect("the builders group");
    let i = g
        .iter()
        .position(|v| *v == redis::Value::BulkString(b"lag".to_vec()))
        .expect("Redis 7 reports lag");
    match &g[i + 1] {
        redis::Value::Int(n) => *n,
        other => panic!("lag is {other:?}"),
    }
}

async fn claim(q: &Queue, worker: &str) -> Claim {
    q.claim("web", worker, Duration::from_secs(2))
        .await
        .unwrap()
        .expect("a build to claim")
}

/// Let the lease of an entry nobody heartbeats lapse.
async fn past_lease() {
    tokio::time::sleep(LEASE + Duration::from_millis(150)).await;
}

#[tokio::test]
async fn a_submit_is_one_pending_job_exactly_as_keda_counts_it() {
    let redis = RedisServer::start();
    let q = queue(&redis, settings());
    assert_eq!(q.pending("web").await.unwrap(), 0, "no stream yet");
    let s = q.submit(spec("web"), None).await.unwrap();
    assert!(s.created);
    assert_eq!(
        (s.job.status.state, s.job.status.attempt),
        (State::Queued, 1)
    );
    let stream = q.names().stream("web");
    assert_eq!(stream, "factory-builds-demo:web");
    assert_eq!(q.pending("web").await.unwrap(), 1);
    assert_eq!(keda_lag(&redis, &stream).await, 1);
    assert_eq!(q.pending("tauri-linux").await.unwrap(), 0);
    let metrics = render_pending("demo", &q.pending_all().await.unwrap());
    assert!(
        metrics.contains("builder_pending_jobs{workspace=\"demo\",target=\"web\"} 1\n"),
        "{metrics}"
    );
    tokio::time::sleep(Duration::from_millis(60)).await;
    let waited = q
        .oldest_pending_ms("web", appgear::builder::clock::now_ms())
        .await
        .unwrap();
    assert!((50..5_000).contains(&waited), "{waited}");
    assert_eq!(q.running("web").await.unwrap(), 0);
    let c = claim(&q, "w1").await;
    assert_eq!(c.id, s.job.id);
    assert_eq!(q.running("web").await.unwrap(), 1);
    assert_eq!(
        q.oldest_pending_ms("web", appgear::builder::clock::now_ms())
            .await
            .unwrap(),
        0
    );
    assert_eq!(c.job.status.state, State::Running);
    assert_eq!(c.job.status.phase, Some(Phase::Preparing));
    assert_eq!(q.pending("web").await.unwrap(), 0);
    assert_eq!(keda_lag(&redis, &stream).await, 0);
    assert!(matches!(
        q.submit(spec("android"), None).await,
        Err(QueueError::UnknownTarget(..))
    ));
}

#[tokio::test]
async fn a_repeated_submit_with_the_same_idempotency_key_gives_the_same_build() {
    let redis = RedisServer::start();
    let q = queue(&redis, settings());
    let a = q.submit(spec("web"), Some("n8n-run-42")).await.unwrap();
    let b = q.submit(spec("web"), Some("n8n-run-42")).await.unwrap();
    assert!(a.created && !b.created);
    assert_eq!(a.job.id, b.job.id);
    assert_eq!(q.pending("web").await.unwrap(), 1, "one entry, not two");
    match q.submit(spec("tauri-linux"), Some("n8n-run-42")).await {
        Err(QueueError::IdempotencyConflict(id)) => assert_eq!(id, a.job.id),
        other => panic!("a different request under the same key: {other:?}"),
    }
    let c = q.submit(spec("web"), None).await.unwrap();
    assert_ne!(c.job.id, a.job.id);
    assert_eq!(q.pending("web").await.unwrap(), 2);
    assert!(matches!(
        q.submit(spec("web"), Some("a key with spaces")).await,
        Err(QueueError::BadRequest(_))
    ));
    let mut bad = spec("web");
    bad.env.insert("NOT-A-NAME".into(), "x".into());
    assert!(matches!(
        q.submit(bad, None).await,
        Err(QueueError::BadRequest(_))
    ));
    assert_eq!(q.list(10).await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_lost_worker_is_requeued_as_attempt_2_and_its_late_writes_are_refused() {
    let redis = RedisServer::start();
    let q = queue(&redis, settings());
    let id = q.submit(spec("web"), None).await.unwrap().job.id;
    let zombie = claim(&q, "w1").await;
    assert_eq!(zombie.attempt, 1);
    q.advance(&zombie, Phase::Building).await.unwrap();

    // Within the lease nothing happens.
    let r = q.reap().await.unwrap();
    assert!(r.requeued.is_empty(), "{r:?}");
    past_lease().await;
    let r = q.reap().await.unwrap();
    assert_eq!(r.requeued, vec![id.clone()]);
    let job = q.get(&id).await.unwrap();
    assert_eq!(
        (job.status.state, job.status.attempt, job.status.requeued_by),
        (State::Queued, 2, Some(Reason::WorkerLost))
    );
    assert_eq!(job.worker, None);
    assert_eq!(
        q.pending("web").await.unwrap(),
        1,
        "the new entry wakes KEDA"
    );

    let live = claim(&q, "w2").await;
    assert_eq!((live.id.clone(), live.attempt), (id.clone(), 2));

    // The zombie wakes up: its lease is gone and every write it tries is refused.
    assert_eq!(q.heartbeat(&zombie).await.unwrap(), Heartbeat::Lost);
    match q
        .finish(&zombie, State::Failed, Some(Reason::ExitCode), Some(1))
        .await
    {
        Err(QueueError::Refused(
            _,
            Refusal::StaleAttempt {
                current: 2,
                given: 1,
            },
        )) => {}
        other => panic!("a zombie's finish: {other:?}"),
    }
    assert!(q.advance(&zombie, Phase::Uploading).await.is_err());
    assert!(q.requeue(&zombie, Reason::AgentStop).await.is_err());

    // The live worker heartbeats through more than a lease and keeps its build.
    for _ in 0..4 {
        tokio::time::sleep(LEASE / 3).await;
        assert_eq!(
            q.heartbeat(&live).await.unwrap(),
            Heartbeat::Held { cancel: false }
        );
        let r = q.reap().await.unwrap();
        assert!(r.requeued.is_empty() && r.failed.is_empty(), "{r:?}");
    }
    q.advance(&live, Phase::Uploading).await.unwrap();
    let done = q
        .finish(&live, State::Succeeded, None, Some(0))
        .await
        .unwrap();
    assert_eq!(
        (done.status.state, done.status.attempt, done.exit_code),
        (State::Succeeded, 2, Some(0))
    );
    assert!(done.finished_ms.is_some());
    // Final is final, and nothing is left pending or in the group's PEL.
    assert!(q
        .finish(&live, State::Failed, Some(Reason::ExitCode), Some(1))
        .await
        .is_err());
    past_lease().await;
    let r = q.reap().await.unwrap();
    assert_eq!(
        (
            r.requeued.len(),
            r.failed.len(),
            r.redelivered.len(),
            r.expired.len(),
            r.skipped
        ),
        (0, 0, 0, 0, 0),
        "{r:?}"
    );
    assert_eq!(
        r.trimmed, 1,
        "the finished attempt's entry leaves the stream"
    );
    assert_eq!(q.get(&id).await.unwrap().status.state, State::Succeeded);
    assert_eq!(q.pending("web").await.unwrap(), 0);
}

#[tokio::test]
async fn repeated_losses_end_error_worker_lost() {
    let redis = RedisServer::start();
    let q = queue(&redis, settings());
    let id = q.submit(spec("web"), None).await.unwrap().job.id;
    for attempt in 1..=3 {
        let c = claim(&q, &format!("w{attempt}")).await;
        assert_eq!(c.attempt, attempt);
        past_lease().await;
        let r = q.reap().await.unwrap();
        if attempt < 3 {
            assert_eq!(r.requeued, vec![id.clone()]);
        } else {
            assert_eq!(r.failed, vec![id.clone()]);
        }
    }
    let job = q.get(&id).await.unwrap();
    assert_eq!(
        (job.status.state, job.status.reason, job.status.attempt),
        (State::Error, Some(Reason::WorkerLost), 3)
    );
    assert_eq!(q.pending("web").await.unwrap(), 0);
    assert!(q.claim("web", "w4", NO_WAIT).await.unwrap().is_none());
}

#[tokio::test]
async fn a_graceful_stop_requeues_without_using_an_attempt() {
    let redis = RedisServer::start();
    let q = queue(
        &redis,
        Settings {
            max_attempts: 1,
            ..settings()
        },
    );
    let id = q.submit(spec("web"), None).await.unwrap().job.id;
    let c = claim(&q, "w1").await;
    let job = q.requeue(&c, Reason::AgentStop).await.unwrap();
    assert_eq!(
        (job.status.state, job.status.attempt, job.status.counted),
        (State::Queued, 2, 0)
    );
    assert_eq!(q.heartbeat(&c).await.unwrap(), Heartbeat::Lost);
    let c2 = claim(&q, "w2").await;
    assert_eq!((c2.id, c2.attempt), (id, 2));
}

#[tokio::test]
async fn cancel_ends_a_queued_build_and_its_entry_stops_counting() {
    let redis = RedisServer::start();
    let q = queue(&redis, settings());
    let a = q.submit(spec("web"), None).await.unwrap().job.id;
    let b = q.submit(spec("web"), None).await.unwrap().job.id;
    let job = q.cancel(&a).await.unwrap();
    assert_eq!(
        (job.status.state, job.status.reason),
        (State::Cancelled, Some(Reason::UserCancel))
    );
    assert!(matches!(
        q.cancel(&a).await,
        Err(QueueError::Refused(_, Refusal::Final(State::Cancelled)))
    ));
    assert_eq!(
        q.pending("web").await.unwrap(),
        2,
        "before the reaper skips it"
    );
    let r = q.reap().await.unwrap();
    assert_eq!(r.skipped, 1);
    assert_eq!(q.pending("web").await.unwrap(), 1);
    // A worker gets the live build, never the cancelled one.
    let c = claim(&q, "w1").await;
    assert_eq!(c.id, b);

    // Cancelling a running build asks its worker, which sees it on the next heartbeat.
    let job = q.cancel(&b).await.unwrap();
    assert_eq!(
        (job.status.state, job.status.cancel_requested),
        (State::Running, true)
    );
    assert_eq!(
        q.heartbeat(&c).await.unwrap(),
        Heartbeat::Held { cancel: true }
    );
    let end = q
        .finish(&c, State::Cancelled, Some(Reason::UserCancel), None)
        .await
        .unwrap();
    assert_eq!(end.status.state, State::Cancelled);
    let missing = BuildId::parse("b000000000000000000000000").unwrap();
    assert!(matches!(
        q.cancel(&missing).await,
        Err(QueueError::NotFound(_))
    ));
}

#[tokio::test]
async fn a_build_waiting_past_the_queue_ttl_expires() {
    let redis = RedisServer::start();
    let q = queue(
        &redis,
        Settings {
            queue_ttl: Duration::from_millis(300),
            ..settings()
        },
    );
    let old = q.submit(spec("web"), None).await.unwrap().job.id;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let fresh = q.submit(spec("web"), None).await.unwrap().job.id;
    let r = q.reap().await.unwrap();
    assert_eq!(r.expired, vec![old.clone()]);
    let job = q.get(&old).await.unwrap();
    assert_eq!(
        (job.status.state, job.status.reason),
        (State::Expired, Some(Reason::Timeout))
    );
    assert_eq!(q.get(&fresh).await.unwrap().status.state, State::Queued);
    assert_eq!(
        q.pending("web").await.unwrap(),
        1,
        "only the fresh build counts"
    );
    assert_eq!(claim(&q, "w1").await.id, fresh);
}

#[tokio::test]
async fn an_entry_read_by_a_worker_that_died_before_taking_it_is_delivered_again() {
    let redis = RedisServer::start();
    let q = queue(&redis, settings());
    let id = q.submit(spec("web"), None).await.unwrap().job.id;
    // A worker reads the entry and dies before it records the claim.
    let client = redis::Client::open(redis.url.as_str()).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let _: redis::Value = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg(GROUP)
        .arg("dead")
        .arg("COUNT")
        .arg(1)
        .arg("STREAMS")
        .arg(q.names().stream("web"))
        .arg(">")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(q.pending("web").await.unwrap(), 0);
    past_lease().await;
    let r = q.reap().await.unwrap();
    assert_eq!(r.redelivered, vec![id.clone()]);
    let job = q.get(&id).await.unwrap();
    assert_eq!((job.status.state, job.status.attempt), (State::Queued, 1));
    let c = claim(&q, "w2").await;
    assert_eq!((c.id, c.attempt), (id, 1));
}

#[tokio::test]
async fn ended_builds_are_trimmed_from_the_stream_and_forgotten_after_the_retention() {
    let redis = RedisServer::start();
    let q = queue(&redis, settings());
    let client = redis::Client::open(redis.url.as_str()).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let stream = q.names().stream("web");
    let mut done = Vec::new();
    for _ in 0..3 {
        let id = q.submit(spec("web"), None).await.unwrap().job.id;
        let w = claim(&q, "w").await;
        q.finish(&w, State::Succeeded, None, Some(0)).await.unwrap();
        done.push(id);
    }
    let held = q.submit(spec("web"), None).await.unwrap().job.id;
    let running = claim(&q, "w").await;
    assert_eq!(running.id, held);
    let waiting = q.submit(spec("web"), None).await.unwrap().job.id;
    let len = |c: &mut redis::aio::MultiplexedConnection| {
        let mut c = c.clone();
        let stream = stream.clone();
        async move {
            redis::cmd("XLEN")
                .arg(&stream)
                .query_async::<i64>(&mut c)
                .await
                .unwrap()
        }
    };
    assert_eq!(len(&mut c).await, 5);
    let r = q.reap().await.unwrap();
    assert_eq!(r.trimmed, 3, "{r:?}");
    assert_eq!(
        len(&mut c).await,
        2,
        "the running and the waiting entries stay"
    );
    assert_eq!(q.pending("web").await.unwrap(), 1, "the lag is intact");
    assert_eq!(claim(&q, "w2").await.id, waiting);

    // An ended build's record expires after the retention; a running one does not.
    let ttl: i64 = redis::cmd("TTL")
        .arg(q.names().job(&done[0]))
        .query_async(&mut c)
        .await
        .unwrap();
    assert!((3000..=3600).contains(&ttl), "{ttl}");
    let ttl: i64 = redis::cmd("TTL")
        .arg(q.names().job(&held))
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(ttl, -1);
}

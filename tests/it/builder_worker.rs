//! The builder's worker with the `process` executor, on a real Redis, with `sh -c` recipes:
//! artifacts, SHA256SUMS (checked by `sha256sum -c`) and the manifest in the store, failures,
//! timeout, cancel, a graceful stop, an unreachable store, a worker killed mid-build, and a log
//! followed across a reconnect without losing a line.

use crate::builder_fixture::{self, manifest, stored_log};
use crate::redis_server::RedisServer;

use appgear::builder::config::Config;
use appgear::builder::id::BuildId;
use appgear::builder::keys::AttemptKeys;
use appgear::builder::queue::job::BuildSpec;
use appgear::builder::queue::log_stream::FROM_START;
use appgear::builder::queue::Queue;
use appgear::builder::state::{Phase, Reason, State};
use appgear::builder::store::memory::MemoryStore;
use appgear::builder::store::ObjectStore;
use appgear::builder::worker::upload::Retry;
use appgear::builder::worker::{run_once, Options, RunOutcome};
use appgear::core::digest::sha256_hex;
use appgear::core::names::WorkspaceId;
use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

const LEASE: Duration = Duration::from_millis(1200);

fn config() -> Config {
    let img = format!("sha256:{}", "ab".repeat(32));
    let target = |name: &str, cmd: &str, timeout: &str, artifacts: &str| {
        format!(
            "  {name}:\n    image: {img}\n    command: [\"sh\", \"-c\", {cmd:?}]\n    output_dir: out\n    artifacts: {artifacts}\n    timeout: {timeout}\n    cpus: 1\n    memory: 64Mi\n"
        )
    };
    let text = [
        "targets:\n".to_string(),
        target(
            "ok",
            "echo phase:build; mkdir -p out/dist; echo \"$BUILD_ID $BUILD_ATTEMPT\" > out/dist/app.bin; \
             head -c 100000 /dev/urandom > out/dist/big.bin; echo not-an-artifact > out/readme.txt; \
             i=0; while [ $i -lt 500 ]; do echo line-$i; i=$((i+1)); done",
            "1m",
            "[\"dist/*.bin\"]",
        ),
        target("fail", "echo boom >&2; exit 3", "1m", "[\"**\"]"),
        target(
            "slow",
            "trap 'echo got TERM; exit 143' TERM; while :; do echo tick; sleep 0.1; done",
            "1s",
            "[\"**\"]",
        ),
        target(
            "stoppable",
            "trap 'echo got TERM; exit 143' TERM; while :; do echo tick; sleep 0.1; done",
            "1m",
            "[\"**\"]",
        ),
        target("noart", "true", "1m", "[\"**\"]"),
        target(
            "sleepy",
            "sleep 1; mkdir -p out; echo done > out/a.txt",
            "1m",
            "[\"*.txt\"]",
        ),
        target("env", "mkdir -p out; env > out/env.txt", "1m", "[\"env.txt\"]"),
    ]
    .concat();
    Config::parse(&text).unwrap()
}

fn queue(redis: &RedisServer, config: &Config) -> Queue {
    builder_fixture::queue(redis, config, "demo", LEASE)
}

fn options(config: &Config, target: &str, worker: &str, dir: &std::path::Path) -> Options {
    let mut o = Options::new(config, target, worker, dir.to_path_buf());
    o.block = Duration::from_millis(500);
    o.heartbeat = Duration::from_millis(100);
    o.grace = Duration::from_secs(2);
    o.retry = Retry {
        tries: 2,
        first_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(10),
    };
    o
}

/// One run of the worker with the test options, never asked to stop.
async fn run<S: ObjectStore>(
    q: &Queue,
    cfg: &Config,
    store: &S,
    target: &str,
    worker: &str,
    dir: &std::path::Path,
) -> RunOutcome {
    run_once(
        q,
        cfg,
        store,
        &options(cfg, target, worker, dir),
        never_stop(),
    )
    .await
    .unwrap()
}

fn never_stop() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    std::mem::forget(tx);
    rx
}

async fn submit(q: &Queue, target: &str) -> BuildId {
    q.submit(
        BuildSpec {
            target: target.into(),
            source: None,
            env: BTreeMap::new(),
        },
        None,
    )
    .await
    .unwrap()
    .job
    .id
}

async fn wait_for_phase(q: &Queue, id: &BuildId, phase: Phase) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let job = q.get(id).await.unwrap();
        if job.status.phase == Some(phase) {
            return;
        }
        assert!(Instant::now() < deadline, "never reached {phase}: {job:?}");
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
}

#[tokio::test]
async fn a_recipe_that_succeeds_leaves_artifacts_sums_log_and_manifest() {
    let redis = RedisServer::start();
    let cfg = config();
    let q = queue(&redis, &cfg);
    let store = MemoryStore::new();
    let work = tempfile::tempdir().unwrap();
    let id = submit(&q, "ok").await;
    let out = run(&q, &cfg, &store, "ok", "w1", work.path()).await;
    assert_eq!(
        out,
        RunOutcome::Ended {
            id: id.clone(),
            attempt: 1,
            state: State::Succeeded,
            reason: None
        }
    );
    let job = q.get(&id).await.unwrap();
    assert_eq!(
        (job.status.state, job.exit_code),
        (State::Succeeded, Some(0))
    );

    let m = manifest(&store, &id, 1).await;
    assert_eq!(
        (m.state, m.reason, m.exit_code),
        (State::Succeeded, None, Some(0))
    );
    let names: Vec<&str> = m.artifacts.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(
        names,
        vec!["dist/app.bin", "dist/big.bin"],
        "listed, not guessed"
    );
    assert!(m.log.complete);

    // Download the attempt's folder and let sha256sum check it, as a user would.
    let keys = AttemptKeys::new(&WorkspaceId::parse("demo").unwrap(), &id, 1);
    let dl = tempfile::tempdir().unwrap();
    for o in store.list(keys.prefix()).await.unwrap() {
        let (bytes, meta) = store.get(&o.key).await.unwrap();
        assert_eq!(meta.sha256, sha256_hex(&bytes), "{}", o.key);
        let rel = o.key.strip_prefix(keys.prefix()).unwrap();
        let path = dl.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, &bytes).unwrap();
    }
    for a in &m.artifacts {
        let bytes = std::fs::read(dl.path().join("artifacts").join(&a.name)).unwrap();
        assert_eq!(
            (sha256_hex(&bytes), bytes.len() as u64),
            (a.sha256.clone(), a.size)
        );
    }
    let app = std::fs::read_to_string(dl.path().join("artifacts/dist/app.bin")).unwrap();
    assert_eq!(app.trim(), format!("{id} 1"));
    let check = Command::new("sha256sum")
        .args(["-c", "SHA256SUMS"])
        .current_dir(dl.path())
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
    assert!(!dl.path().join("artifacts/readme.txt").exists());

    let log = stored_log(&store, &id, 1).await;
    assert!(
        log.contains("phase:build\n") && log.contains("line-499\n"),
        "{log}"
    );

    // The log stream, read in two goes as `logs -f` after a reconnect: nothing lost or repeated.
    let first = q.read_log(&id, FROM_START, 2, None).await.unwrap();
    assert_eq!(first.len(), 2);
    let rest = q
        .read_log(&id, &first[1].entry, 10_000, None)
        .await
        .unwrap();
    let streamed: String = first.iter().chain(&rest).map(|c| c.data.as_str()).collect();
    assert_eq!(streamed, log);
    let seqs: Vec<u64> = first.iter().chain(&rest).map(|c| c.seq).collect();
    assert_eq!(seqs, (0..seqs.len() as u64).collect::<Vec<_>>());
    assert!(
        work.path().read_dir().unwrap().next().is_none(),
        "the attempt's folder is removed"
    );
}

#[tokio::test]
async fn failures_end_with_their_reason_and_keep_the_log() {
    let redis = RedisServer::start();
    let cfg = config();
    let q = queue(&redis, &cfg);
    let store = MemoryStore::new();
    let work = tempfile::tempdir().unwrap();
    for (target, state, reason, code, in_log) in [
        ("fail", State::Failed, Reason::ExitCode, Some(3), "boom"),
        (
            "noart",
            State::Failed,
            Reason::NoArtifacts,
            Some(0),
            "no file under out matches",
        ),
        ("slow", State::TimedOut, Reason::Timeout, None, "got TERM"),
    ] {
        let id = submit(&q, target).await;
        let started = Instant::now();
        let out = run(&q, &cfg, &store, target, "w", work.path()).await;
        assert_eq!(
            out,
            RunOutcome::Ended {
                id: id.clone(),
                attempt: 1,
                state,
                reason: Some(reason)
            },
            "{target}"
        );
        let job = q.get(&id).await.unwrap();
        assert_eq!(job.exit_code, code, "{target}");
        let m = manifest(&store, &id, 1).await;
        assert_eq!((m.state, m.reason), (state, Some(reason)));
        assert!(m.artifacts.is_empty());
        let log = stored_log(&store, &id, 1).await;
        assert!(log.contains(in_log), "{target}: {log}");
        if target == "slow" {
            assert!(
                started.elapsed() < Duration::from_secs(4),
                "stopped within the grace"
            );
        }
    }
}

#[tokio::test]
async fn a_cancel_stops_a_running_recipe() {
    let redis = RedisServer::start();
    let cfg = config();
    let q = queue(&redis, &cfg);
    let store = MemoryStore::new();
    let work = tempfile::tempdir().unwrap();
    let id = submit(&q, "stoppable").await;
    let (q2, id2) = (q.clone(), id.clone());
    let canceller = tokio::spawn(async move {
        wait_for_phase(&q2, &id2, Phase::Building).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        q2.cancel(&id2).await.unwrap();
        Instant::now()
    });
    let out = run(&q, &cfg, &store, "stoppable", "w", work.path()).await;
    let asked = canceller.await.unwrap();
    assert!(
        asked.elapsed() < Duration::from_secs(3),
        "ended within the grace"
    );
    assert_eq!(
        out,
        RunOutcome::Ended {
            id: id.clone(),
            attempt: 1,
            state: State::Cancelled,
            reason: Some(Reason::UserCancel)
        }
    );
    assert!(stored_log(&store, &id, 1).await.contains("got TERM"));
}

#[tokio::test]
async fn a_stopping_worker_gives_the_build_back_without_using_an_attempt() {
    let redis = RedisServer::start();
    let cfg = config();
    let q = queue(&redis, &cfg);
    let store = MemoryStore::new();
    let work = tempfile::tempdir().unwrap();
    let id = submit(&q, "stoppable").await;
    let (tx, rx) = watch::channel(false);
    let (q2, id2) = (q.clone(), id.clone());
    tokio::spawn(async move {
        wait_for_phase(&q2, &id2, Phase::Building).await;
        tx.send(true).unwrap(); // what the SIGTERM handler does
        std::mem::forget(tx);
    });
    let out = run_once(
        &q,
        &cfg,
        &store,
        &options(&cfg, "stoppable", "w", work.path()),
        rx,
    )
    .await
    .unwrap();
    assert_eq!(
        out,
        RunOutcome::Requeued {
            id: id.clone(),
            attempt: 1,
            reason: Reason::AgentStop
        }
    );
    let job = q.get(&id).await.unwrap();
    assert_eq!(
        (job.status.state, job.status.attempt, job.status.counted),
        (State::Queued, 2, 0)
    );
    assert!(stored_log(&store, &id, 1).await.contains("got TERM"));
    assert_eq!(q.pending("stoppable").await.unwrap(), 1);
}

#[tokio::test]
async fn an_unreachable_store_requeues_as_upload_failed_and_the_next_attempt_succeeds() {
    let redis = RedisServer::start();
    let cfg = config();
    let q = queue(&redis, &cfg);
    let store = MemoryStore::new();
    let work = tempfile::tempdir().unwrap();
    let id = submit(&q, "sleepy").await;
    store.set_down(true);
    let out = run(&q, &cfg, &store, "sleepy", "w1", work.path()).await;
    assert_eq!(
        out,
        RunOutcome::Requeued {
            id: id.clone(),
            attempt: 1,
            reason: Reason::UploadFailed
        }
    );
    assert_eq!(q.get(&id).await.unwrap().status.counted, 1);
    store.set_down(false);
    let out = run(&q, &cfg, &store, "sleepy", "w2", work.path()).await;
    assert!(
        matches!(
            out,
            RunOutcome::Ended {
                state: State::Succeeded,
                attempt: 2,
                ..
            }
        ),
        "{out:?}"
    );
    assert_eq!(manifest(&store, &id, 2).await.artifacts.len(), 1);
}

#[tokio::test]
async fn a_worker_killed_mid_build_loses_its_lease_and_the_next_attempt_succeeds() {
    let redis = RedisServer::start();
    let cfg = config();
    let q = queue(&redis, &cfg);
    let store = Arc::new(MemoryStore::new());
    let work = tempfile::tempdir().unwrap();
    let id = submit(&q, "sleepy").await;
    let (q2, cfg2, store2, dir2) = (
        q.clone(),
        cfg.clone(),
        store.clone(),
        work.path().to_path_buf(),
    );
    let doomed = tokio::spawn(async move {
        run_once(
            &q2,
            &cfg2,
            &*store2,
            &options(&cfg2, "sleepy", "doomed", &dir2),
            never_stop(),
        )
        .await
    });
    wait_for_phase(&q, &id, Phase::Building).await;
    // The nearest a library test gets to kill -9: the worker's task and everything it started
    // (heartbeat, recipe) stop at once, without a word to Redis.
    doomed.abort();
    assert!(doomed.await.unwrap_err().is_cancelled());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        q.reap().await.unwrap().requeued.is_empty(),
        "still within the lease"
    );
    tokio::time::sleep(LEASE).await;
    assert_eq!(q.reap().await.unwrap().requeued, vec![id.clone()]);
    let out = run(&q, &cfg, &*store, "sleepy", "w2", work.path()).await;
    assert_eq!(
        out,
        RunOutcome::Ended {
            id: id.clone(),
            attempt: 2,
            state: State::Succeeded,
            reason: None
        }
    );
    // The killed attempt left no manifest: nothing points at whatever it wrote.
    let keys1 = AttemptKeys::new(&WorkspaceId::parse("demo").unwrap(), &id, 1);
    assert!(store.get(&keys1.manifest()).await.is_err());
    assert_eq!(manifest(&*store, &id, 2).await.attempt, 2);
}

#[tokio::test]
async fn the_recipe_gets_a_clean_environment() {
    let redis = RedisServer::start();
    let cfg = config();
    let q = queue(&redis, &cfg);
    let store = MemoryStore::new();
    let work = tempfile::tempdir().unwrap();
    let id = submit(&q, "env").await;
    run(&q, &cfg, &store, "env", "w", work.path()).await;
    let m = manifest(&store, &id, 1).await;
    let (env, _) = store.get(&m.artifacts[0].key).await.unwrap();
    let env = String::from_utf8(env).unwrap();
    assert!(env.contains(&format!("BUILD_ID={id}\n")), "{env}");
    assert!(env.contains("BUILDER_WORKSPACE_ID=demo\n"));
    // cargo gives the test process its own variables; none of the worker's reaches the recipe.
    assert!(std::env::var_os("CARGO_PKG_NAME").is_some());
    assert!(
        !env.contains("CARGO_PKG_NAME="),
        "the worker's own environment stays out: {env}"
    );
}

fn tar_of(files: &[(&str, &str)]) -> Vec<u8> {
    let d = tempfile::tempdir().unwrap();
    for (name, text) in files {
        let p = d.path().join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let out = Command::new("tar")
        .args(["-cf", "-", "."])
        .current_dir(d.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    out.stdout
}

#[tokio::test]
async fn a_source_tar_is_checked_unpacked_and_recorded() {
    use appgear::builder::queue::error::QueueError;
    use appgear::builder::queue::job::Source;
    use appgear::builder::store::{Body, Meta};
    let redis = RedisServer::start();
    let text = format!(
        "targets:\n  app:\n    image: sha256:{}\n    command: [\"sh\", \"-c\", \"./build.sh\"]\n    output_dir: out\n    artifacts: [\"*.txt\"]\n    timeout: 1m\n    cpus: 1\n    memory: 64Mi\n",
        "ef".repeat(32)
    );
    let cfg = Config::parse(&text).unwrap();
    let q = queue(&redis, &cfg);
    let store = MemoryStore::new();
    let work = tempfile::tempdir().unwrap();
    let tar = tar_of(&[
        (
            "build.sh",
            "#!/bin/sh\nmkdir -p out && cat src/hello.txt > out/result.txt\n",
        ),
        ("src/hello.txt", "hello from the source\n"),
    ]);
    let sha = sha256_hex(&tar);
    store
        .put_new("ws-demo/sources/app.tar", Body::Bytes(tar), Meta::default())
        .await
        .unwrap();
    let with = |key: &str, sha: &str| BuildSpec {
        target: "app".into(),
        source: Some(Source::Object {
            s3_key: key.into(),
            sha256: sha.into(),
        }),
        env: BTreeMap::new(),
    };
    // A source outside the workspace's sources is refused at submit.
    assert!(matches!(
        q.submit(with("ws-other/sources/app.tar", &sha), None).await,
        Err(QueueError::BadRequest(_))
    ));
    let good = q
        .submit(with("ws-demo/sources/app.tar", &sha), None)
        .await
        .unwrap()
        .job
        .id;
    let out = run(&q, &cfg, &store, "app", "w", work.path()).await;
    assert!(
        matches!(
            out,
            RunOutcome::Ended {
                state: State::Succeeded,
                ..
            }
        ),
        "{out:?}"
    );
    let m = manifest(&store, &good, 1).await;
    assert_eq!(m.source_sha256.as_deref(), Some(sha.as_str()));
    let (result, _) = store.get(&m.artifacts[0].key).await.unwrap();
    assert_eq!(result, b"hello from the source\n");

    let wrong = q
        .submit(with("ws-demo/sources/app.tar", &"0".repeat(64)), None)
        .await
        .unwrap()
        .job
        .id;
    let out = run(&q, &cfg, &store, "app", "w", work.path()).await;
    assert_eq!(
        out,
        RunOutcome::Ended {
            id: wrong.clone(),
            attempt: 1,
            state: State::Failed,
            reason: Some(Reason::SourceInvalid)
        }
    );
    assert!(stored_log(&store, &wrong, 1).await.contains("has SHA-256"));
}

//! The builder's worker with the `docker` executor, on a real Redis and a real Docker Engine,
//! with stand-in recipe images made locally from busybox (`tests/standin/recipe.sh`, one per
//! test, removed after): artifacts copied out of the container, failures with their reasons,
//! timeout, no network by default, the memory limit, a missing image that is never pulled,
//! cancel and stop, links that try to leave the attempt's folder, and the reaper's removal of
//! leftover containers. Every test checks the state and reason the queue reports (what
//! `appgear builder status` shows), the log lines, and that no container of the build is left.

use crate::builder_fixture::{self, manifest, stored_log};
use crate::redis_server::RedisServer;

use appgear::builder::config::Config;
use appgear::builder::id::BuildId;
use appgear::builder::queue::job::{BuildSpec, Source};
use appgear::builder::queue::Queue;
use appgear::builder::state::{Phase, Reason, State};
use appgear::builder::store::memory::MemoryStore;
use appgear::builder::store::{Body, Meta, ObjectStore};
use appgear::builder::worker::executor::{Executor, ExecutorKind};
use appgear::builder::worker::upload::Retry;
use appgear::builder::worker::{run_once, Options, RunOutcome};
use appgear::core::digest::sha256_hex;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

const GRACE: Duration = Duration::from_secs(2);

/// A stand-in recipe image of this test alone, removed when the test ends.
struct Image {
    name: String,
    id: String,
}

impl Image {
    fn build() -> Image {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "appgear-test/recipe-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/standin/recipe.sh");
        let out = Command::new("sh").arg(&script).arg(&name).output().unwrap();
        assert!(
            out.status.success(),
            "building the stand-in recipe image failed (needs a running Docker and busybox-static): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let id = String::from_utf8(out.stdout).unwrap().trim().to_string();
        assert!(id.starts_with("sha256:") && id.len() == 71, "{id}");
        Image { name, id }
    }
}

impl Drop for Image {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rmi", "-f", &format!("{}:1", self.name)])
            .output();
    }
}

fn image_exists(reference: &str) -> bool {
    Command::new("docker")
        .args(["image", "inspect", reference])
        .output()
        .unwrap()
        .status
        .success()
}

/// The containers (running or not) labelled for `id`, as the Engine lists them.
fn containers_of(id: &BuildId) -> Vec<String> {
    let out = Command::new("docker")
        .args([
            "ps",
            "-aq",
            "--filter",
            &format!("label=appgear.builder.build={id}"),
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// One target of the test config: `(name, image, command, artifacts, timeout, memory, network)`.
struct T<'a> {
    name: &'a str,
    image: &'a str,
    cmd: &'a str,
    artifacts: &'a str,
    timeout: &'a str,
    memory: &'a str,
    network: &'a str,
}

fn t<'a>(name: &'a str, image: &'a str, cmd: &'a str) -> T<'a> {
    T {
        name,
        image,
        cmd,
        artifacts: "[\"**\"]",
        timeout: "1m",
        memory: "64Mi",
        network: "none",
    }
}

fn config(targets: &[T]) -> Config {
    let mut text = "targets:\n".to_string();
    for x in targets {
        text.push_str(&format!(
            "  {}:\n    image: {}\n    command: [\"sh\", \"-c\", {:?}]\n    output_dir: /out\n    artifacts: {}\n    timeout: {}\n    cpus: 0.5\n    memory: {}\n    network: {}\n",
            x.name, x.image, x.cmd, x.artifacts, x.timeout, x.memory, x.network
        ));
    }
    Config::parse(&text).unwrap()
}

fn queue(redis: &RedisServer, config: &Config) -> Queue {
    queue_of(redis, config, "demo")
}

fn queue_of(redis: &RedisServer, config: &Config, workspace: &str) -> Queue {
    builder_fixture::queue(redis, config, workspace, Duration::from_secs(5))
}

async fn options(config: &Config, target: &str, dir: &Path) -> Options {
    let mut o = Options::new(config, target, "w1", dir.to_path_buf());
    o.block = Duration::from_millis(500);
    o.heartbeat = Duration::from_millis(100);
    o.grace = GRACE;
    o.retry = Retry {
        tries: 2,
        first_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(10),
    };
    o.executor = Executor::open(ExecutorKind::Docker).await.unwrap();
    o
}

fn never_stop() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    std::mem::forget(tx);
    rx
}

async fn run<S: ObjectStore>(
    q: &Queue,
    cfg: &Config,
    store: &S,
    target: &str,
    dir: &Path,
) -> RunOutcome {
    let opts = options(cfg, target, dir).await;
    run_once(q, cfg, store, &opts, never_stop()).await.unwrap()
}

async fn submit(q: &Queue, target: &str, source: Option<Source>) -> BuildId {
    q.submit(
        BuildSpec {
            target: target.into(),
            source,
            env: BTreeMap::new(),
        },
        None,
    )
    .await
    .unwrap()
    .job
    .id
}

/// The build's state and reason as `appgear builder status` shows them.
async fn status(q: &Queue, id: &BuildId) -> (State, Option<Reason>, Option<i64>) {
    let job = q.get(id).await.unwrap();
    (job.status.state, job.status.reason, job.exit_code)
}

/// A source tar: files, and links given as `(name, target)`.
fn tar_of(files: &[(&str, &str)], links: &[(&str, &str)]) -> Vec<u8> {
    let d = tempfile::tempdir().unwrap();
    for (name, text) in files {
        let p = d.path().join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
    }
    for (name, to) in links {
        std::os::unix::fs::symlink(to, d.path().join(name)).unwrap();
    }
    let out = Command::new("tar")
        .args(["-cf", "-", "."])
        .current_dir(d.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    out.stdout
}

async fn put_source(store: &MemoryStore, name: &str, tar: Vec<u8>) -> Source {
    let key = format!("ws-demo/sources/{name}");
    let sha = sha256_hex(&tar);
    store
        .put_new(&key, Body::Bytes(tar), Meta::default())
        .await
        .unwrap();
    Source::Object {
        s3_key: key,
        sha256: sha,
    }
}

#[tokio::test]
async fn a_recipe_in_a_container_gets_its_source_and_leaves_its_artifacts() {
    let img = Image::build();
    let redis = RedisServer::start();
    let cfg = config(&[T {
        artifacts: "[\"dist/*.bin\", \"dist/*.txt\"]",
        ..t(
            "ok",
            &img.id,
            "echo phase:build; echo to-stderr >&2; mkdir -p /out/dist; \
             echo \"$BUILD_ID $BUILD_ATTEMPT\" > /out/dist/app.bin; \
             head -c 100000 /dev/urandom > /out/dist/big.bin; cp hello.txt /out/dist/hello.txt; \
             echo not-an-artifact > /out/readme.md; ln -s /etc/passwd /out/dist/passwd.bin; \
             ln -s ../../etc /out/dist/up.txt; i=0; while [ $i -lt 500 ]; do echo line-$i; i=$((i+1)); done",
        )
    }]);
    let q = queue(&redis, &cfg);
    let store = MemoryStore::new();
    let work = tempfile::tempdir().unwrap();
    let source = put_source(
        &store,
        "app.tar",
        tar_of(&[("hello.txt", "hello from the source\n")], &[]),
    )
    .await;
    let id = submit(&q, "ok", Some(source)).await;
    let out = run(&q, &cfg, &store, "ok", work.path()).await;
    assert_eq!(
        out,
        RunOutcome::Ended {
            id: id.clone(),
            attempt: 1,
            state: State::Succeeded,
            reason: None
        }
    );
    assert_eq!(status(&q, &id).await, (State::Succeeded, None, Some(0)));
    let m = manifest(&store, &id, 1).await;
    let names: Vec<&str> = m.artifacts.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(
        names,
        vec!["dist/app.bin", "dist/big.bin", "dist/hello.txt"],
        "listed from what the container left; links are not artifacts"
    );
    for a in &m.artifacts {
        let (bytes, _) = store.get(&a.key).await.unwrap();
        assert_eq!(
            (sha256_hex(&bytes), bytes.len() as u64),
            (a.sha256.clone(), a.size)
        );
    }
    let (app, _) = store.get(&m.artifacts[0].key).await.unwrap();
    assert_eq!(String::from_utf8(app).unwrap().trim(), format!("{id} 1"));
    let (hello, _) = store.get(&m.artifacts[2].key).await.unwrap();
    assert_eq!(hello, b"hello from the source\n");
    assert_eq!(m.image, img.id);

    let log = stored_log(&store, &id, 1).await;
    assert!(log.contains("executor docker"), "{log}");
    assert!(
        log.contains("phase:build\n") && log.contains("to-stderr\n"),
        "{log}"
    );
    assert!(log.contains("line-499\n"), "{log}");
    assert!(
        log.contains("output not taken: out/dist/passwd.bin"),
        "{log}"
    );
    let streamed: String = q
        .read_log(
            &id,
            appgear::builder::queue::log_stream::FROM_START,
            10_000,
            None,
        )
        .await
        .unwrap()
        .iter()
        .map(|c| c.data.clone())
        .collect();
    assert_eq!(streamed, log, "the numbered chunks hold the same log");
    assert!(containers_of(&id).is_empty(), "the container is removed");
    assert!(work.path().read_dir().unwrap().next().is_none());
}

#[tokio::test]
async fn failures_end_with_their_reason_keep_the_log_and_leave_no_container() {
    let img = Image::build();
    let redis = RedisServer::start();
    let cfg = config(&[
        t("fail", &img.id, "echo boom >&2; exit 3"),
        t("noart", &img.id, "true"),
        T {
            timeout: "2s",
            ..t(
                "slow",
                &img.id,
                "trap 'echo got TERM; exit 143' TERM; while :; do echo tick; sleep 0.2; done",
            )
        },
        T {
            memory: "16Mi",
            ..t(
                "oom",
                &img.id,
                "echo filling; x=$(head -c 64000000 /dev/zero | tr '\\0' a); echo ${#x}",
            )
        },
        // The output folder as a link to the image's /etc: nothing of /etc becomes an artifact.
        t("linkdir", &img.id, "ln -s /etc /out"),
    ]);
    let q = queue(&redis, &cfg);
    let store = MemoryStore::new();
    let work = tempfile::tempdir().unwrap();
    for (target, state, reason, code, in_log) in [
        ("fail", State::Failed, Reason::ExitCode, Some(3), "boom\n"),
        (
            "noart",
            State::Failed,
            Reason::NoArtifacts,
            Some(0),
            "the recipe left no /out in its container",
        ),
        ("slow", State::TimedOut, Reason::Timeout, None, "got TERM\n"),
        (
            "oom",
            State::Failed,
            Reason::OomKilled,
            None,
            "going over its memory limit of 16777216 bytes",
        ),
        (
            "linkdir",
            State::Failed,
            Reason::NoArtifacts,
            Some(0),
            "no file under /out matches",
        ),
    ] {
        let id = submit(&q, target, None).await;
        let out = run(&q, &cfg, &store, target, work.path()).await;
        assert_eq!(
            out,
            RunOutcome::Ended {
                id: id.clone(),
                attempt: 1,
                state,
                reason: Some(reason)
            },
            "{target}: {}",
            stored_log(&store, &id, 1).await
        );
        assert_eq!(
            status(&q, &id).await,
            (state, Some(reason), code),
            "{target}"
        );
        let m = manifest(&store, &id, 1).await;
        assert_eq!((m.state, m.reason), (state, Some(reason)));
        assert!(m.artifacts.is_empty(), "{target}");
        let log = stored_log(&store, &id, 1).await;
        assert!(log.contains(in_log), "{target}: {log}");
        if target == "slow" {
            assert!(log.contains("ran past its timeout of 2s"), "{log}");
            assert!(
                log.contains("exit code 143"),
                "stopped through the init: {log}"
            );
        }
        assert!(containers_of(&id).is_empty(), "{target}: container left");
    }
}

/// The bridge's gateway: the Docker host as a container on the default network sees it.
fn docker0() -> String {
    let out = Command::new("docker")
        .args([
            "network",
            "inspect",
            "bridge",
            "-f",
            "{{(index .IPAM.Config 0).Gateway}}",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[tokio::test]
async fn a_recipe_has_no_network_unless_its_target_says_bridge() {
    let img = Image::build();
    let gw = docker0();
    let listener = std::net::TcpListener::bind((gw.as_str(), 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut c) = conn else { return };
            let _ = c.write_all(b"hello from the host\n");
        }
    });
    let cmd =
        format!("mkdir -p /out; nc -w 5 {gw} {port} </dev/null > /out/got.txt && cat /out/got.txt");
    let cfg = config(&[
        t("closed", &img.id, &cmd),
        T {
            network: "bridge",
            ..t("open", &img.id, &cmd)
        },
    ]);
    let redis = RedisServer::start();
    let q = queue(&redis, &cfg);
    let store = MemoryStore::new();
    let work = tempfile::tempdir().unwrap();

    let id = submit(&q, "closed", None).await;
    run(&q, &cfg, &store, "closed", work.path()).await;
    let (state, reason, code) = status(&q, &id).await;
    assert_eq!((state, reason), (State::Failed, Some(Reason::ExitCode)));
    assert_ne!(code, Some(0));
    let log = stored_log(&store, &id, 1).await;
    assert!(!log.contains("hello from the host"), "{log}");
    assert!(log.contains("Network is unreachable"), "{log}");
    assert!(containers_of(&id).is_empty());

    // The same recipe with `network: bridge` does reach the host: the refusal above is the
    // network mode, not a broken recipe.
    let id = submit(&q, "open", None).await;
    run(&q, &cfg, &store, "open", work.path()).await;
    assert_eq!(status(&q, &id).await, (State::Succeeded, None, Some(0)));
    assert!(stored_log(&store, &id, 1)
        .await
        .contains("hello from the host\n"));
    assert!(containers_of(&id).is_empty());
}

#[tokio::test]
async fn a_missing_image_ends_image_missing_and_is_never_pulled() {
    let redis = RedisServer::start();
    // A content-addressed reference of an image nobody has: a registry name and a local id.
    let named = format!("appgear-test/never-there@sha256:{}", "c0ffee00".repeat(8));
    let local = format!("sha256:{}", "de".repeat(32));
    assert!(!image_exists(&named) && !image_exists(&local));
    let cfg = config(&[t("named", &named, "true"), t("local", &local, "true")]);
    let q = queue(&redis, &cfg);
    let store = MemoryStore::new();
    let work = tempfile::tempdir().unwrap();
    for target in ["named", "local"] {
        let id = submit(&q, target, None).await;
        let out = run(&q, &cfg, &store, target, work.path()).await;
        assert_eq!(
            out,
            RunOutcome::Ended {
                id: id.clone(),
                attempt: 1,
                state: State::Failed,
                reason: Some(Reason::ImageMissing)
            }
        );
        assert_eq!(
            status(&q, &id).await,
            (State::Failed, Some(Reason::ImageMissing), None)
        );
        let log = stored_log(&store, &id, 1).await;
        assert!(
            log.contains("is not on this Docker Engine; the builder never pulls"),
            "{log}"
        );
        assert!(containers_of(&id).is_empty());
    }
    assert!(
        !image_exists(&named) && !image_exists(&local),
        "nothing was pulled"
    );
}

async fn wait_until_building_and_logging(q: &Queue, id: &BuildId) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let job = q.get(id).await.unwrap();
        let log = q
            .read_log(
                id,
                appgear::builder::queue::log_stream::FROM_START,
                1000,
                None,
            )
            .await
            .unwrap();
        if job.status.phase == Some(Phase::Building) && log.iter().any(|c| c.data.contains("tick"))
        {
            return;
        }
        assert!(Instant::now() < deadline, "the recipe never ran: {job:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_cancel_stops_the_container_and_a_worker_stop_requeues_the_build() {
    let img = Image::build();
    let redis = RedisServer::start();
    let cfg = config(&[t(
        "stoppable",
        &img.id,
        "trap 'echo got TERM; exit 143' TERM; while :; do echo tick; sleep 0.2; done",
    )]);
    let q = queue(&redis, &cfg);
    let store = Arc::new(MemoryStore::new());
    let work = tempfile::tempdir().unwrap();

    let id = submit(&q, "stoppable", None).await;
    let opts = options(&cfg, "stoppable", work.path()).await;
    let worker = {
        let (q, cfg, store, opts) = (q.clone(), cfg.clone(), store.clone(), opts.clone());
        tokio::spawn(async move { run_once(&q, &cfg, &*store, &opts, never_stop()).await })
    };
    wait_until_building_and_logging(&q, &id).await;
    assert_eq!(containers_of(&id).len(), 1, "one container while it runs");
    q.cancel(&id).await.unwrap();
    // The spec's bound: the grace period plus 5 s. A hang fails here instead of blocking.
    let out = tokio::time::timeout(GRACE + Duration::from_secs(5), worker)
        .await
        .expect("the cancel did not end the build within the grace period and 5 s")
        .unwrap()
        .unwrap();
    assert_eq!(
        out,
        RunOutcome::Ended {
            id: id.clone(),
            attempt: 1,
            state: State::Cancelled,
            reason: Some(Reason::UserCancel)
        }
    );
    assert_eq!(
        status(&q, &id).await,
        (State::Cancelled, Some(Reason::UserCancel), None)
    );
    let log = stored_log(&*store, &id, 1).await;
    assert!(
        log.contains("stopping the recipe: the build was cancelled"),
        "{log}"
    );
    assert!(
        log.contains("got TERM\n"),
        "the recipe saw SIGTERM through the init: {log}"
    );
    assert!(containers_of(&id).is_empty(), "the container is removed");

    // SIGTERM to the worker: the recipe is stopped and the build goes back to the queue.
    let id = submit(&q, "stoppable", None).await;
    let (stop_tx, stop_rx) = watch::channel(false);
    let worker = {
        let (q, cfg, store, opts) = (q.clone(), cfg.clone(), store.clone(), opts.clone());
        tokio::spawn(async move { run_once(&q, &cfg, &*store, &opts, stop_rx).await })
    };
    wait_until_building_and_logging(&q, &id).await;
    stop_tx.send(true).unwrap();
    let out = tokio::time::timeout(GRACE + Duration::from_secs(5), worker)
        .await
        .expect("the stop did not end the attempt within the grace period and 5 s")
        .unwrap()
        .unwrap();
    assert_eq!(
        out,
        RunOutcome::Requeued {
            id: id.clone(),
            attempt: 1,
            reason: Reason::AgentStop
        }
    );
    assert_eq!(q.get(&id).await.unwrap().status.state, State::Queued);
    assert!(containers_of(&id).is_empty());
}

#[tokio::test]
async fn a_source_with_a_link_out_of_its_folder_is_refused() {
    let img = Image::build();
    let redis = RedisServer::start();
    let cfg = config(&[t(
        "app",
        &img.id,
        "mkdir -p /out; cat secret > /out/got.txt",
    )]);
    let q = queue(&redis, &cfg);
    let store = MemoryStore::new();
    let work = tempfile::tempdir().unwrap();
    let source = put_source(
        &store,
        "linked.tar",
        tar_of(&[("readme.txt", "hi\n")], &[("secret", "/etc/shadow")]),
    )
    .await;
    let id = submit(&q, "app", Some(source)).await;
    run(&q, &cfg, &store, "app", work.path()).await;
    assert_eq!(
        status(&q, &id).await,
        (State::Failed, Some(Reason::SourceInvalid), None)
    );
    let log = stored_log(&store, &id, 1).await;
    assert!(
        log.contains("secret: only files and folders are unpacked"),
        "{log}"
    );
    assert!(manifest(&store, &id, 1).await.artifacts.is_empty());
    assert!(containers_of(&id).is_empty(), "no container was even made");
}

fn create_labelled(image: &str, labels: &[(&str, String)]) -> String {
    let mut cmd = Command::new("docker");
    cmd.arg("create");
    for (k, v) in labels {
        cmd.args(["--label", &format!("{k}={v}")]);
    }
    let out = cmd.args([image, "true"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn exists(container: &str) -> bool {
    Command::new("docker")
        .args(["container", "inspect", container])
        .output()
        .unwrap()
        .status
        .success()
}

#[tokio::test]
async fn a_starting_worker_removes_the_containers_left_by_builds_no_longer_running() {
    let img = Image::build();
    let redis = RedisServer::start();
    let cfg = config(&[t("app", &img.id, "true")]);
    // A workspace of its own: the other tests' containers (workspace demo, builds of their own
    // Redis) are not this worker's to judge.
    let ws = format!("reap{}", std::process::id());
    let q = queue_of(&redis, &cfg, &ws);
    // A build another worker runs now (attempt 1), and one that ended.
    let running = submit(&q, "app", None).await;
    let claim = q
        .claim("app", "other", Duration::from_secs(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claim.id, running);
    let ended = submit(&q, "app", None).await;
    q.cancel(&ended).await.unwrap();
    let labels = |ws: &str, id: &BuildId, attempt: u32, worker: &str| {
        vec![
            ("appgear.builder.workspace", ws.to_string()),
            ("appgear.builder.build", id.to_string()),
            ("appgear.builder.attempt", attempt.to_string()),
            ("appgear.builder.target", "app".to_string()),
            ("appgear.builder.worker", worker.to_string()),
        ]
    };
    let live = create_labelled(&img.id, &labels(&ws, &running, 1, "other"));
    let stale_attempt = create_labelled(&img.id, &labels(&ws, &running, 0, "other"));
    let of_ended = create_labelled(&img.id, &labels(&ws, &ended, 1, "w1"));
    let unknown = BuildId::parse(&format!("b{}", "0".repeat(24))).unwrap();
    let of_unknown = create_labelled(&img.id, &labels(&ws, &unknown, 1, "w1"));
    let other_ws = create_labelled(&img.id, &labels("elsewhere", &ended, 1, "w1"));

    let work = tempfile::tempdir().unwrap();
    let opts = options(&cfg, "app", work.path()).await;
    let removed = opts.executor.prepare(&q, "w1").await.unwrap();
    let left: Vec<bool> = [&live, &stale_attempt, &of_ended, &of_unknown, &other_ws]
        .iter()
        .map(|c| exists(c))
        .collect();
    for c in [&live, &stale_attempt, &of_ended, &of_unknown, &other_ws] {
        let _ = Command::new("docker").args(["rm", "-f", c]).output();
    }
    assert_eq!(
        left,
        vec![true, false, false, false, true],
        "kept: the running attempt of another worker, and another workspace's"
    );
    assert_eq!(removed, 3);
}

#[tokio::test]
async fn the_worker_command_reaps_leftovers_then_runs_a_build_in_docker() {
    use appgear::builder::commands::{run, Place};
    let img = Image::build();
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("builder-config");
    let text = format!(
        "targets:\n  app:\n    image: {}\n    command: [\"sh\", \"-c\", \"mkdir -p /out && echo built > /out/app.bin\"]\n    output_dir: /out\n    artifacts: [\"*.bin\"]\n    timeout: 1m\n    cpus: 0.5\n    memory: 64Mi\n",
        img.id
    );
    std::fs::write(&config_path, &text).unwrap();
    let cfg = Config::parse(&text).unwrap();
    // A workspace of its own, so the reaper judges only this test's containers.
    let ws = format!("cmd{}", std::process::id());
    let q = queue_of(&redis, &cfg, &ws);
    let unknown = BuildId::parse(&format!("b{}", "1".repeat(24))).unwrap();
    let leftover = create_labelled(
        &img.id,
        &[
            ("appgear.builder.workspace", ws.clone()),
            ("appgear.builder.build", unknown.to_string()),
            ("appgear.builder.attempt", "1".to_string()),
        ],
    );
    let id = submit(&q, "app", None).await;
    let place = Place {
        config: config_path,
        workspace: ws.clone(),
        redis_url: redis.url.clone(),
        queue_prefix: "factory-builds".into(),
        store_dir: Some(dir.path().join("store")),
    };
    let code = run(
        &place,
        "app",
        true,
        dir.path().join("work"),
        ExecutorKind::Docker,
    )
    .await
    .unwrap();
    let left = exists(&leftover);
    let _ = Command::new("docker")
        .args(["rm", "-f", &leftover])
        .output();
    assert_eq!(code, 0);
    assert!(
        !left,
        "the leftover container is removed when the worker starts"
    );
    assert_eq!(status(&q, &id).await, (State::Succeeded, None, Some(0)));
    let artifact = dir
        .path()
        .join("store/objects")
        .join(format!("ws-{ws}/builds/{id}/attempt-1/artifacts/app.bin"));
    assert_eq!(std::fs::read_to_string(&artifact).unwrap(), "built\n");
    assert!(containers_of(&id).is_empty());
}

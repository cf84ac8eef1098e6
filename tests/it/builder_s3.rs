//! The builder's artifacts on a real Ceph RGW (Debian's `radosgw`, one memstore OSD, started per
//! test by `rgw.rs`), with a real Redis: the S3 store itself (create once, multipart, metadata,
//! a store that is down), a worker build whose every object is fetched back by curl and checked
//! by the test, `sha256sum -c`, RGW stopped in the middle of the uploads and started again, a
//! worker killed before its manifest, and the artifact download API with its client.

use crate::builder_fixture;
use crate::redis_server::RedisServer;
use crate::rgw::{Rgw, ACCESS_KEY, SECRET_KEY};

use appgear::builder::api::app::App;
use appgear::builder::api::artifacts;
use appgear::builder::client::Client;
use appgear::builder::config::Config;
use appgear::builder::id::BuildId;
use appgear::builder::keys::AttemptKeys;
use appgear::builder::manifest::Manifest;
use appgear::builder::queue::job::BuildSpec;
use appgear::builder::queue::Queue;
use appgear::builder::state::{Reason, State};
use appgear::builder::store::s3::{S3Settings, S3Store};
use appgear::builder::store::{Body, Listed, Meta, ObjectStore, StoreError};
use appgear::builder::worker::upload::Retry;
use appgear::builder::worker::{run_once, Options, RunOutcome};
use appgear::core::digest::sha256_hex;
use appgear::core::names::WorkspaceId;
use futures_util::StreamExt;
use std::collections::BTreeMap;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

const BUCKET: &str = "factory-artifacts";
const LEASE: Duration = Duration::from_millis(1200);
const SIX_MIB: usize = 6 * 1024 * 1024;

fn s3(rgw: &Rgw, bucket: &str) -> S3Store {
    S3Store::new(&S3Settings::new(
        &rgw.endpoint,
        bucket,
        ACCESS_KEY,
        SECRET_KEY,
    ))
    .unwrap()
}

fn config() -> Config {
    Config::parse(&config_text()).unwrap()
}

fn config_text() -> String {
    let img = format!("sha256:{}", "ab".repeat(32));
    format!(
        r#"
targets:
  app:
    image: {img}
    command: ["sh", "-c", "mkdir -p out/dist/deb; echo \"$BUILD_ID $BUILD_ATTEMPT\" > out/dist/app.txt; head -c {SIX_MIB} /dev/urandom > out/dist/deb/big.bin; echo built"]
    output_dir: out
    artifacts: ["dist/**"]
    timeout: 1m
    cpus: 1
    memory: 64Mi
api_tokens:
  - name: portal
    sha256: {}
    scopes: [submit, read]
  - name: submitter
    sha256: {}
    scopes: [submit]
"#,
        sha256_hex(b"portal-secret"),
        sha256_hex(b"submit-only")
    )
}

fn queue(redis: &RedisServer, config: &Config) -> Queue {
    builder_fixture::queue(redis, config, "demo", LEASE)
}

fn options(config: &Config, worker: &str, dir: &std::path::Path) -> Options {
    let mut o = Options::new(config, "app", worker, dir.to_path_buf());
    o.block = Duration::from_millis(500);
    o.heartbeat = Duration::from_millis(100);
    o.grace = Duration::from_secs(2);
    o.retry = Retry {
        tries: 2,
        first_delay: Duration::from_millis(50),
        max_delay: Duration::from_millis(50),
    };
    o
}

fn never_stop() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    std::mem::forget(tx);
    rx
}

async fn run<S: ObjectStore>(q: &Queue, cfg: &Config, store: &S, worker: &str) -> RunOutcome {
    let work = tempfile::tempdir().unwrap();
    run_once(
        q,
        cfg,
        store,
        &options(cfg, worker, work.path()),
        never_stop(),
    )
    .await
    .unwrap()
}

async fn submit(q: &Queue) -> BuildId {
    q.submit(
        BuildSpec {
            target: "app".into(),
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

fn keys(id: &BuildId, attempt: u32) -> AttemptKeys {
    AttemptKeys::new(&WorkspaceId::parse("demo").unwrap(), id, attempt)
}

/// The artifact routes on their own, served on loopback (the API's full router adds the same
/// two routes).
async fn serve_artifacts<S: ObjectStore + 'static>(
    q: &Queue,
    cfg: &Config,
    store: Arc<S>,
) -> String {
    let app = Arc::new(App {
        queue: q.clone(),
        config: cfg.clone(),
        store,
    });
    let router = axum::Router::new()
        .route(
            "/v1/builds/{id}/artifacts",
            axum::routing::get(artifacts::list::<S>),
        )
        .route(
            "/v1/builds/{id}/artifacts/{*path}",
            axum::routing::get(artifacts::download::<S>),
        )
        .with_state(app);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    url
}

#[tokio::test]
async fn the_s3_store_on_rgw_creates_once_uploads_large_files_in_parts_and_reports_a_down_store() {
    let mut rgw = Rgw::start();
    rgw.create_bucket(BUCKET);
    let store = s3(&rgw, BUCKET);
    store.ready().await.unwrap();
    let meta = Meta {
        content_type: "text/plain; charset=utf-8".into(),
        sha256: sha256_hex(b"hello"),
    };
    let key = "ws-demo/builds/b1/attempt-1/artifacts/hello.txt";
    store
        .put_new(key, Body::Bytes(b"hello".to_vec()), meta.clone())
        .await
        .unwrap();
    // Read back through RGW itself, not through the client under test.
    assert_eq!(rgw.fetch(BUCKET, key), b"hello");
    assert_eq!(
        rgw.head(BUCKET, key, "x-amz-meta-sha256").as_deref(),
        Some(meta.sha256.as_str())
    );
    assert_eq!(
        store.get(key).await.unwrap(),
        (b"hello".to_vec(), meta.clone())
    );
    assert_eq!(store.meta(key).await.unwrap(), meta);
    // A second create of the same key is refused and the first object stays.
    assert_eq!(
        store
            .put_new(key, Body::Bytes(b"other".to_vec()), meta.clone())
            .await,
        Err(StoreError::AlreadyExists(key.into()))
    );
    assert_eq!(rgw.fetch(BUCKET, key), b"hello");

    // 6 MiB from a file: two parts of a multipart upload (RGW's ETag says how many).
    let dir = tempfile::tempdir().unwrap();
    let big_path = dir.path().join("big.bin");
    let big: Vec<u8> = (0..SIX_MIB).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&big_path, &big).unwrap();
    let big_key = "ws-demo/builds/b1/attempt-1/artifacts/deb/big.bin";
    let big_meta = Meta {
        content_type: "application/octet-stream".into(),
        sha256: sha256_hex(&big),
    };
    store
        .put_new(big_key, Body::File(big_path.clone()), big_meta.clone())
        .await
        .unwrap();
    let etag = rgw.head(BUCKET, big_key, "etag").unwrap();
    assert!(etag.ends_with("-2"), "not a 2-part upload: ETag {etag}");
    assert_eq!(sha256_hex(&rgw.fetch(BUCKET, big_key)), big_meta.sha256);
    assert_eq!(
        store
            .put_new(big_key, Body::File(big_path.clone()), big_meta.clone())
            .await,
        Err(StoreError::AlreadyExists(big_key.into()))
    );
    // Streamed back in pieces, same bytes.
    let opened = store.open(big_key).await.unwrap();
    assert_eq!(opened.size, SIX_MIB as u64);
    assert_eq!(opened.meta, big_meta);
    let chunks: Vec<_> = opened.body.collect().await;
    let streamed: Vec<u8> = chunks
        .into_iter()
        .flat_map(|c| c.unwrap().to_vec())
        .collect();
    assert_eq!(sha256_hex(&streamed), big_meta.sha256);

    // Listing is by string prefix, not only by folder.
    store
        .put_new(
            "ws-demo/builds/b10/attempt-1/SHA256SUMS",
            Body::Bytes(vec![]),
            Meta::default(),
        )
        .await
        .unwrap();
    assert_eq!(
        store.list("ws-demo/builds/b1/").await.unwrap(),
        vec![
            Listed {
                key: big_key.into(),
                size: SIX_MIB as u64
            },
            Listed {
                key: key.into(),
                size: 5
            },
        ]
    );
    assert_eq!(store.list("ws-demo/builds/b1").await.unwrap().len(), 3);
    assert!(matches!(
        store.get("ws-demo/none").await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.get("ws-demo/../x").await,
        Err(StoreError::BadKey(_))
    ));
    let missing_bucket = s3(&rgw, "no-such-bucket");
    let e = missing_bucket.ready().await.unwrap_err();
    assert!(e.to_string().contains("does not exist"), "{e}");

    // RGW down: every call is Unavailable (what the upload retries), and no message carries
    // the secret key.
    rgw.stop_gateway();
    for r in [
        store.ready().await.err(),
        store.get(key).await.err(),
        store
            .put_new("k/x", Body::Bytes(vec![1]), Meta::default())
            .await
            .err(),
        store
            .put_new("k/big", Body::File(big_path), big_meta)
            .await
            .err(),
    ] {
        let e = r.expect("a down store fails");
        assert!(matches!(e, StoreError::Unavailable(_)), "{e:?}");
        assert!(!e.to_string().contains(SECRET_KEY), "{e}");
    }
}

#[tokio::test]
async fn a_worker_build_on_rgw_stores_everything_under_its_attempt_and_downloads_checked() {
    let redis = RedisServer::start();
    let rgw = Rgw::start();
    rgw.create_bucket(BUCKET);
    let cfg = config();
    let q = queue(&redis, &cfg);
    let store = Arc::new(s3(&rgw, BUCKET));
    let id = submit(&q).await;
    assert_eq!(
        run(&q, &cfg, &*store, "w1").await,
        RunOutcome::Ended {
            id: id.clone(),
            attempt: 1,
            state: State::Succeeded,
            reason: None
        }
    );
    let k = keys(&id, 1);
    let listed: Vec<String> = store
        .list(k.prefix())
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.key)
        .collect();
    assert_eq!(
        listed,
        vec![
            k.sums(),
            k.artifact("dist/app.txt").unwrap(),
            k.artifact("dist/deb/big.bin").unwrap(),
            k.log(),
            k.manifest(),
        ]
    );
    let manifest = Manifest::parse(&rgw.fetch(BUCKET, &k.manifest())).unwrap();
    assert_eq!((manifest.attempt, manifest.state), (1, State::Succeeded));
    // Every artifact fetched back by curl and hashed here; the store checked nothing.
    let dl = tempfile::tempdir().unwrap();
    for a in &manifest.artifacts {
        let bytes = rgw.fetch(BUCKET, &a.key);
        assert_eq!(bytes.len() as u64, a.size, "{}", a.name);
        assert_eq!(sha256_hex(&bytes), a.sha256, "{}", a.name);
        assert_eq!(
            rgw.head(BUCKET, &a.key, "x-amz-meta-sha256").as_deref(),
            Some(a.sha256.as_str())
        );
        let p = dl.path().join("artifacts").join(&a.name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }
    let big = manifest
        .artifacts
        .iter()
        .find(|a| a.name == "dist/deb/big.bin")
        .unwrap();
    assert_eq!(big.size, SIX_MIB as u64);
    let etag = rgw.head(BUCKET, &big.key, "etag").unwrap();
    assert!(etag.ends_with("-2"), "6 MiB not uploaded in parts: {etag}");
    std::fs::write(dl.path().join("SHA256SUMS"), rgw.fetch(BUCKET, &k.sums())).unwrap();
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
    let log = rgw.fetch(BUCKET, &k.log());
    assert_eq!(
        sha256_hex(&log),
        rgw.head(BUCKET, &k.log(), "x-amz-meta-sha256").unwrap()
    );
    // Keys are never reused: a second create of the manifest is refused.
    assert_eq!(
        store
            .put_new(&k.manifest(), Body::Bytes(b"{}".to_vec()), Meta::default())
            .await,
        Err(StoreError::AlreadyExists(k.manifest()))
    );

    // The download API and its client: list with sizes and checksums, each artifact streamed.
    let url = serve_artifacts(&q, &cfg, store.clone()).await;
    let client = Client::new(&url, Some("portal-secret".into())).unwrap();
    let list = client.artifacts(id.as_str()).await.unwrap();
    assert_eq!(list["attempt"], 1);
    assert_eq!(list["artifacts"].as_array().unwrap().len(), 2);
    assert_eq!(list["artifacts"][1]["name"], "dist/deb/big.bin");
    assert_eq!(list["artifacts"][1]["sha256"], big.sha256.as_str());
    let out = tempfile::tempdir().unwrap();
    let mut f = tokio::fs::File::create(out.path().join("big.bin"))
        .await
        .unwrap();
    let got = client
        .download(id.as_str(), "dist/deb/big.bin", &mut f)
        .await
        .unwrap();
    assert_eq!(
        (got.bytes, got.sha256.as_str()),
        (big.size, big.sha256.as_str())
    );
    assert_eq!(got.announced, big.sha256);
    assert_eq!(
        sha256_hex(&std::fs::read(out.path().join("big.bin")).unwrap()),
        big.sha256
    );
    // Only names the manifest lists: a traversal, the manifest itself, an unknown name.
    for bad in [
        "../manifest.json",
        "..%2Fmanifest.json",
        "manifest.json",
        "dist/nope",
    ] {
        let mut sink = tokio::fs::File::create(out.path().join("sink"))
            .await
            .unwrap();
        let e = client
            .download(id.as_str(), bad, &mut sink)
            .await
            .unwrap_err();
        assert!(e.message.contains("HTTP 4"), "{bad}: {}", e.message);
        assert_eq!(std::fs::metadata(out.path().join("sink")).unwrap().len(), 0);
    }
    let no_read = Client::new(&url, Some("submit-only".into())).unwrap();
    let e = no_read.artifacts(id.as_str()).await.unwrap_err();
    assert!(e.message.contains("HTTP 403"), "{}", e.message);
    let anon = Client::new(&url, None).unwrap();
    assert!(anon
        .artifacts(id.as_str())
        .await
        .unwrap_err()
        .message
        .contains("HTTP 401"));
}

/// The S3 store, with a switch that stops RGW just before the second artifact is sent: the
/// nearest to "RGW died in the middle of the uploads" that is the same on every run.
struct StopsMidUpload<'a> {
    inner: S3Store,
    rgw: &'a Mutex<Rgw>,
    artifacts_seen: Mutex<u32>,
    armed: AtomicBool,
}

impl ObjectStore for StopsMidUpload<'_> {
    async fn put_new(&self, key: &str, body: Body, meta: Meta) -> Result<(), StoreError> {
        if key.contains("/artifacts/") && self.armed.load(Ordering::SeqCst) {
            let n = {
                let mut seen = self.artifacts_seen.lock().unwrap();
                *seen += 1;
                *seen
            };
            if n == 2 {
                self.rgw.lock().unwrap().stop_gateway();
            }
        }
        self.inner.put_new(key, body, meta).await
    }
    async fn get(&self, key: &str) -> Result<(Vec<u8>, Meta), StoreError> {
        self.inner.get(key).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<Listed>, StoreError> {
        self.inner.list(prefix).await
    }
    async fn ready(&self) -> Result<(), StoreError> {
        self.inner.ready().await
    }
}

#[tokio::test]
async fn rgw_stopped_mid_upload_requeues_as_upload_failed_and_after_a_restart_the_next_attempt_succeeds(
) {
    let redis = RedisServer::start();
    let rgw = Rgw::start();
    rgw.create_bucket(BUCKET);
    let inner = s3(&rgw, BUCKET);
    let rgw = Mutex::new(rgw);
    let store = StopsMidUpload {
        inner,
        rgw: &rgw,
        artifacts_seen: Mutex::new(0),
        armed: AtomicBool::new(true),
    };
    let cfg = config();
    let q = queue(&redis, &cfg);
    let id = submit(&q).await;
    assert_eq!(
        run(&q, &cfg, &store, "w1").await,
        RunOutcome::Requeued {
            id: id.clone(),
            attempt: 1,
            reason: Reason::UploadFailed
        }
    );
    let job = q.get(&id).await.unwrap();
    assert_eq!(
        (job.status.state, job.status.attempt, job.status.counted),
        (State::Queued, 2, 1),
        "{job:?}"
    );
    store.armed.store(false, Ordering::SeqCst);
    rgw.lock().unwrap().start_gateway();
    assert_eq!(
        run(&q, &cfg, &store, "w2").await,
        RunOutcome::Ended {
            id: id.clone(),
            attempt: 2,
            state: State::Succeeded,
            reason: None
        }
    );
    // Attempt 1 kept the one artifact that made it and nothing that commits it.
    let k1 = keys(&id, 1);
    let left: Vec<String> = store
        .list(k1.prefix())
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.key)
        .collect();
    assert_eq!(left, vec![k1.artifact("dist/app.txt").unwrap()]);
    let k2 = keys(&id, 2);
    let m = Manifest::parse(&rgw.lock().unwrap().fetch(BUCKET, &k2.manifest())).unwrap();
    assert_eq!(
        (m.attempt, m.state, m.artifacts.len()),
        (2, State::Succeeded, 2)
    );
    for a in &m.artifacts {
        assert_eq!(
            sha256_hex(&rgw.lock().unwrap().fetch(BUCKET, &a.key)),
            a.sha256
        );
    }
}

/// The S3 store, where creating a manifest never finishes: the worker can be killed exactly
/// between its artifacts and its commit marker.
struct HangsOnManifest {
    inner: Arc<S3Store>,
    reached: tokio::sync::Notify,
}

impl ObjectStore for HangsOnManifest {
    async fn put_new(&self, key: &str, body: Body, meta: Meta) -> Result<(), StoreError> {
        if key.ends_with("/manifest.json") {
            self.reached.notify_one();
            std::future::pending::<()>().await;
        }
        self.inner.put_new(key, body, meta).await
    }
    async fn get(&self, key: &str) -> Result<(Vec<u8>, Meta), StoreError> {
        self.inner.get(key).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<Listed>, StoreError> {
        self.inner.list(prefix).await
    }
    async fn ready(&self) -> Result<(), StoreError> {
        self.inner.ready().await
    }
}

#[tokio::test]
async fn a_worker_killed_between_artifacts_and_manifest_leaves_the_attempt_unreferenced() {
    let redis = RedisServer::start();
    let rgw = Rgw::start();
    rgw.create_bucket(BUCKET);
    let cfg = config();
    let q = queue(&redis, &cfg);
    let s3 = Arc::new(s3(&rgw, BUCKET));
    let hanging = Arc::new(HangsOnManifest {
        inner: s3.clone(),
        reached: tokio::sync::Notify::new(),
    });
    let id = submit(&q).await;
    let (q2, cfg2, h2) = (q.clone(), cfg.clone(), hanging.clone());
    let doomed = tokio::spawn(async move { run(&q2, &cfg2, &*h2, "doomed").await });
    tokio::time::timeout(Duration::from_secs(60), hanging.reached.notified())
        .await
        .expect("the worker reached its manifest");
    // As with kill -9: the worker's task and all it started stop without a word to Redis.
    doomed.abort();
    assert!(doomed.await.unwrap_err().is_cancelled());
    let k1 = keys(&id, 1);
    let written: Vec<String> = s3
        .list(k1.prefix())
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.key)
        .collect();
    assert!(
        written.contains(&k1.artifact("dist/deb/big.bin").unwrap()),
        "{written:?}"
    );
    assert!(!written.contains(&k1.manifest()), "{written:?}");

    // Nothing is served for an attempt without its manifest.
    let url = serve_artifacts(&q, &cfg, s3.clone()).await;
    let client = Client::new(&url, Some("portal-secret".into())).unwrap();
    let e = client.artifacts(id.as_str()).await.unwrap_err();
    assert!(e.message.contains("no stored attempt"), "{}", e.message);

    tokio::time::sleep(LEASE + Duration::from_millis(300)).await;
    assert_eq!(q.reap().await.unwrap().requeued, vec![id.clone()]);
    assert_eq!(
        run(&q, &cfg, &*s3, "w2").await,
        RunOutcome::Ended {
            id: id.clone(),
            attempt: 2,
            state: State::Succeeded,
            reason: None
        }
    );
    // The download serves attempt 2 only: its artifacts' bytes, not attempt 1's.
    let list = client.artifacts(id.as_str()).await.unwrap();
    assert_eq!(list["attempt"], 2);
    let out = tempfile::tempdir().unwrap();
    let mut f = tokio::fs::File::create(out.path().join("app.txt"))
        .await
        .unwrap();
    client
        .download(id.as_str(), "dist/app.txt", &mut f)
        .await
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(out.path().join("app.txt")).unwrap(),
        format!("{id} 2\n")
    );
    assert_eq!(
        String::from_utf8(rgw.fetch(BUCKET, &k1.artifact("dist/app.txt").unwrap())).unwrap(),
        format!("{id} 1\n"),
        "attempt 1's copy is still there, unreferenced"
    );
}

const BIN: &str = env!("CARGO_BIN_EXE_appgear");

/// `appgear` with the builder's environment: this Redis, this RGW's bucket, the test config.
fn appgear(
    redis: &RedisServer,
    rgw: &Rgw,
    dir: &std::path::Path,
    url: &str,
    args: &[&str],
) -> Command {
    let mut c = Command::new(BIN);
    c.args(args)
        .env("NO_COLOR", "1")
        .env("BUILDER_CONFIG", dir.join("builder.yaml"))
        .env("BUILDER_WORKSPACE_ID", "demo")
        .env("REDIS_URL", &redis.url)
        .env("BUILDER_URL", url)
        .env("BUILDER_TOKEN", "portal-secret")
        .env("BUILDER_WORK_DIR", dir.join("work"))
        .env_remove("BUILDER_STORE_DIR")
        .envs(rgw.env(BUCKET));
    c
}

fn text(o: &std::process::Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn serve_run_and_download_through_the_binary_on_rgw_check_every_sha256_and_never_overwrite() {
    let redis = RedisServer::start();
    let rgw = Rgw::start();
    rgw.create_bucket(BUCKET);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("builder.yaml"), config_text()).unwrap();
    let port = crate::redis_server::free_port();
    let url = format!("http://127.0.0.1:{port}");
    let cmd = |args: &[&str]| appgear(&redis, &rgw, dir.path(), &url, args);

    // Exactly one store: S3 and a folder together, or neither, is one clear line and exit 2.
    let both = cmd(&["builder", "run", "--once", "--target", "app"])
        .env("BUILDER_STORE_DIR", dir.path().join("store"))
        .output()
        .unwrap();
    assert_eq!(both.status.code(), Some(2), "{}", text(&both));
    assert!(text(&both).contains("both S3"), "{}", text(&both));
    let neither = cmd(&["builder", "run", "--once", "--target", "app"])
        .env_remove("S3_ENDPOINT")
        .env_remove("S3_BUCKET")
        .output()
        .unwrap();
    assert_eq!(neither.status.code(), Some(2), "{}", text(&neither));
    assert!(
        text(&neither).contains("no object store"),
        "{}",
        text(&neither)
    );
    assert!(!text(&both).contains(SECRET_KEY) && !text(&neither).contains(SECRET_KEY));

    let _serve = Killed(
        cmd(&["builder", "serve", "--listen", &format!("127.0.0.1:{port}")])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "builder serve did not listen"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let sub = cmd(&["builder", "submit", "app", "--json"])
        .output()
        .unwrap();
    assert!(sub.status.success(), "{}", text(&sub));
    let build: serde_json::Value = serde_json::from_slice(&sub.stdout).unwrap();
    let id = build["id"].as_str().unwrap().to_string();
    let ran = cmd(&["builder", "run", "--once", "--target", "app"])
        .output()
        .unwrap();
    assert!(ran.status.success(), "{}", text(&ran));
    assert!(text(&ran).contains("Succeeded"), "{}", text(&ran));

    let out = dir.path().join("download");
    let dl = cmd(&[
        "builder",
        "download",
        &id,
        "--out",
        out.to_str().unwrap(),
        "--json",
    ])
    .output()
    .unwrap();
    assert!(dl.status.success(), "{}", text(&dl));
    let report: serde_json::Value = serde_json::from_slice(&dl.stdout).unwrap();
    assert_eq!(report["attempt"], 1);
    let keys = keys(&BuildId::parse(&id).unwrap(), 1);
    let names: Vec<&str> = report["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["dist/app.txt", "dist/deb/big.bin"]);
    for name in names {
        // The file written, hashed here, against the object fetched from RGW by curl.
        let written = std::fs::read(out.join(name)).unwrap();
        let stored = rgw.fetch(BUCKET, &keys.artifact(name).unwrap());
        assert_eq!(sha256_hex(&written), sha256_hex(&stored), "{name}");
    }
    assert_eq!(
        std::fs::metadata(out.join("dist/deb/big.bin"))
            .unwrap()
            .len(),
        SIX_MIB as u64
    );
    let human = cmd(&[
        "builder",
        "download",
        &id,
        "--out",
        dir.path().join("again").to_str().unwrap(),
    ])
    .output()
    .unwrap();
    assert!(human.status.success(), "{}", text(&human));
    assert!(
        text(&human).contains("matches the manifest"),
        "{}",
        text(&human)
    );

    // A folder that already holds one of the names: refused before anything is written, and
    // the user's file is kept as it was.
    let mine = dir.path().join("mine");
    std::fs::create_dir_all(mine.join("dist")).unwrap();
    std::fs::write(mine.join("dist/app.txt"), "my own file\n").unwrap();
    let refused = cmd(&["builder", "download", &id, "--out", mine.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    assert!(
        text(&refused).contains("already exists"),
        "{}",
        text(&refused)
    );
    assert_eq!(
        std::fs::read_to_string(mine.join("dist/app.txt")).unwrap(),
        "my own file\n"
    );
    assert!(!mine.join("dist/deb/big.bin").exists());
}

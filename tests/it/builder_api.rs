//! `serve` and its client over real HTTP on loopback, with a real Redis: tokens and scopes,
//! idempotent submit, status, list, cancel, `/metrics` and `/readyz`, a log followed to the end
//! while a worker runs the build, and the reaper running inside `serve`.

use crate::redis_server::RedisServer;

use appgear::builder::api::app::App;
use appgear::builder::api::serve::serve;
use appgear::builder::client::Client;
use appgear::builder::config::Config;
use appgear::builder::keys::AttemptKeys;
use appgear::builder::queue::job::BuildSpec;
use appgear::builder::queue::{Queue, Settings};
use appgear::builder::store::memory::MemoryStore;
use appgear::builder::store::ObjectStore;
use appgear::builder::worker::{run_once, Options};
use appgear::core::digest::sha256_hex;
use appgear::core::error::Kind;
use appgear::core::names::WorkspaceId;
use appgear::core::redis::RedisLink;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

fn config() -> Config {
    let img = format!("sha256:{}", "cd".repeat(32));
    Config::parse(&format!(
        r#"
targets:
  web:
    image: {img}
    command: ["sh", "-c", "i=0; while [ $i -lt 30 ]; do echo step-$i; i=$((i+1)); sleep 0.02; done; mkdir -p dist/app; echo ok > dist/index.html; echo nested > dist/app/main.js"]
    output_dir: dist
    artifacts: ["**"]
    timeout: 1m
    cpus: 1
    memory: 64Mi
api_tokens:
  - name: portal
    sha256: {}
    scopes: [submit, read, cancel]
  - name: viewer
    sha256: {}
    scopes: [read]
limits:
  heartbeat: 100ms
  lease: 1s
"#,
        sha256_hex(b"portal-secret"),
        sha256_hex(b"viewer-secret")
    ))
    .unwrap()
}

fn spec() -> BuildSpec {
    BuildSpec {
        target: "web".into(),
        source: None,
        env: BTreeMap::new(),
    }
}

struct Running {
    url: String,
    queue: Queue,
    store: Arc<MemoryStore>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

async fn start(redis: &RedisServer, cfg: &Config) -> Running {
    let queue = Queue::new(
        Arc::new(RedisLink::new(&redis.url).unwrap()),
        "factory-builds",
        WorkspaceId::parse("demo").unwrap(),
        cfg.targets.keys().cloned().collect(),
        Settings {
            lease: cfg.limits.lease,
            ..Settings::default()
        },
    );
    let store = Arc::new(MemoryStore::new());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let app = App {
        queue: queue.clone(),
        config: cfg.clone(),
        store: store.clone(),
    };
    let task = tokio::spawn(async move {
        serve(
            listener,
            app,
            async move {
                let _ = rx.await;
            },
            |_| {},
        )
        .await
        .unwrap();
    });
    Running {
        url,
        queue,
        store,
        stop: Some(tx),
        task,
    }
}

async fn raw_get(url: &str, path: &str) -> (u16, String) {
    let addr = url.strip_prefix("http://").unwrap();
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.unwrap();
    let (status, body) = appgear::builder::client::parse_response(&raw).unwrap();
    (status, String::from_utf8(body).unwrap())
}

/// The status line and headers of a GET.
async fn raw_head(url: &str, path: &str) -> String {
    let addr = url.strip_prefix("http://").unwrap();
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8_lossy(&raw).to_string();
    text.split("\r\n\r\n").next().unwrap_or("").to_string() + "\r\n"
}

#[tokio::test]
async fn the_api_checks_tokens_and_scopes_and_submits_idempotently() {
    let redis = RedisServer::start();
    let cfg = config();
    let mut srv = start(&redis, &cfg).await;
    let portal = Client::new(&srv.url, Some("portal-secret".into())).unwrap();
    let viewer = Client::new(&srv.url, Some("viewer-secret".into())).unwrap();
    let nobody = Client::new(&srv.url, Some("guess".into())).unwrap();

    let e = nobody.list(10).await.unwrap_err();
    assert!(e.message.contains("HTTP 401"), "{}", e.message);
    let e = viewer.submit(&spec(), None).await.unwrap_err();
    assert!(e.message.contains("HTTP 403"), "{}", e.message);

    let (created, a) = portal.submit(&spec(), Some("n8n-7")).await.unwrap();
    assert!(created);
    assert_eq!(a["state"], "queued");
    let (created, b) = portal.submit(&spec(), Some("n8n-7")).await.unwrap();
    assert!(!created);
    assert_eq!(a["id"], b["id"]);
    let id = a["id"].as_str().unwrap().to_string();

    let mut other = spec();
    other.target = "android".into();
    let e = portal.submit(&other, None).await.unwrap_err();
    assert!(
        e.message.contains("HTTP 400") && e.kind == Kind::BadInput,
        "{}",
        e.message
    );

    let (status, metrics) = raw_get(&srv.url, "/metrics").await;
    assert_eq!(status, 200);
    assert!(
        metrics.contains("builder_pending_jobs{workspace=\"demo\",target=\"web\"} 1\n"),
        "{metrics}"
    );
    assert!(metrics.contains("builder_running_jobs{workspace=\"demo\",target=\"web\"} 0\n"));
    assert!(
        metrics.contains("builder_oldest_pending_age_seconds{workspace=\"demo\",target=\"web\"} ")
    );
    assert_eq!(raw_get(&srv.url, "/readyz").await.0, 200);
    assert_eq!(raw_get(&srv.url, "/healthz").await.0, 200);
    let head = raw_head(&srv.url, "/metrics").await.to_ascii_lowercase();
    assert!(
        head.contains("content-type: text/plain; version=0.0.4; charset=utf-8\r\n"),
        "{head}"
    );

    assert_eq!(viewer.status(&id).await.unwrap()["state"], "queued");
    assert_eq!(
        viewer.list(10).await.unwrap()["builds"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert!(viewer
        .cancel(&id)
        .await
        .unwrap_err()
        .message
        .contains("HTTP 403"));
    assert_eq!(portal.cancel(&id).await.unwrap()["state"], "cancelled");
    let (_, metrics) = raw_get(&srv.url, "/metrics").await;
    assert!(
        metrics.contains(
            "builder_jobs_ended_total{workspace=\"demo\",target=\"web\",state=\"cancelled\",reason=\"user_cancel\"} 1\n"
        ),
        "{metrics}"
    );
    assert!(metrics.contains("# TYPE builder_queue_wait_seconds histogram\n"));
    let e = portal.cancel(&id).await.unwrap_err();
    assert_eq!(e.kind, Kind::CheckFailed, "{}", e.message);
    let e = viewer
        .status("b000000000000000000000000")
        .await
        .unwrap_err();
    assert!(e.message.contains("HTTP 404"), "{}", e.message);

    // The reaper runs inside serve: the cancelled build's entry stops counting.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(srv.queue.pending("web").await.unwrap(), 0);

    srv.store.set_down(true);
    assert_eq!(raw_get(&srv.url, "/readyz").await.0, 503);
    srv.stop.take().unwrap().send(()).unwrap();
    srv.task.await.unwrap();
}

#[tokio::test]
async fn logs_follow_a_running_build_to_its_end_without_losing_a_line() {
    let redis = RedisServer::start();
    let cfg = config();
    let srv = start(&redis, &cfg).await;
    let portal = Client::new(&srv.url, Some("portal-secret".into())).unwrap();
    let (_, b) = portal.submit(&spec(), None).await.unwrap();
    let id = b["id"].as_str().unwrap().to_string();

    let (q, c, store) = (srv.queue.clone(), cfg.clone(), srv.store.clone());
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().to_path_buf();
    let worker = tokio::spawn(async move {
        let (_tx, rx) = watch::channel(false);
        let mut o = Options::new(&c, "web", "w1", dir);
        o.block = Duration::from_secs(2);
        run_once(&q, &c, &*store, &o, rx).await.unwrap()
    });
    let mut followed = String::new();
    let state = portal
        .follow(&id, 3, |t| followed.push_str(t))
        .await
        .unwrap();
    worker.await.unwrap();
    assert_eq!(state, "succeeded");
    // The worker ran as its own queue, as a KEDA Job would; serve reads what it recorded.
    let (_, metrics) = raw_get(&srv.url, "/metrics").await;
    for series in [
        "builder_jobs_ended_total{workspace=\"demo\",target=\"web\",state=\"succeeded\",reason=\"none\"} 1\n",
        "builder_queue_wait_seconds_count{workspace=\"demo\",target=\"web\"} 1\n",
        "builder_build_duration_seconds_count{workspace=\"demo\",target=\"web\"} 1\n",
        "builder_running_jobs{workspace=\"demo\",target=\"web\"} 0\n",
        "builder_artifact_bytes_total{workspace=\"demo\",target=\"web\"} 10\n",
    ] {
        assert!(metrics.contains(series), "{series} in\n{metrics}");
    }
    // The committed attempt's artifacts, listed and downloaded through serve.
    let listed = portal.artifacts(&id).await.unwrap();
    assert_eq!(listed["attempt"], 1);
    let mut names: Vec<&str> = listed["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["app/main.js", "index.html"]);
    let dir = tempfile::tempdir().unwrap();
    let mut file = tokio::fs::File::create(dir.path().join("index.html"))
        .await
        .unwrap();
    let got = portal.download(&id, "index.html", &mut file).await.unwrap();
    assert_eq!(got.bytes, 3);
    assert_eq!(got.sha256, sha256_hex(b"ok\n"));
    assert_eq!(got.announced, got.sha256);
    assert_eq!(
        std::fs::read(dir.path().join("index.html")).unwrap(),
        b"ok\n"
    );
    // A name with a folder goes through the route's wildcard.
    let mut nested = tokio::fs::File::create(dir.path().join("main.js"))
        .await
        .unwrap();
    let got = portal
        .download(&id, "app/main.js", &mut nested)
        .await
        .unwrap();
    assert_eq!(got.sha256, sha256_hex(b"nested\n"));
    let e = portal
        .download(&id, "missing.bin", &mut file)
        .await
        .unwrap_err();
    assert!(e.message.contains("404"), "{}", e.message);
    let keys = AttemptKeys::new(
        &WorkspaceId::parse("demo").unwrap(),
        &appgear::builder::id::BuildId::parse(&id).unwrap(),
        1,
    );
    let (gz, _) = srv.store.get(&keys.log()).await.unwrap();
    assert!(
        followed.contains("step-0\n") && followed.contains("step-29\n"),
        "{followed}"
    );
    // The stored log is a stored-block gzip: its payload is the followed text, byte for byte.
    assert!(
        gz.windows(followed.len()).any(|w| w == followed.as_bytes()),
        "the followed log differs from the stored one"
    );
}

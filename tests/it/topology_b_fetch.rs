//! Add-ons from the network, without the internet: a loopback HTTP server (tokio, below) serves
//! `../shared/vendor` in place at the pinned upstream URL paths (GitHub's redirects included)
//! and a chart repository whose `index.yaml` the test writes, and `Client::routed` sends every
//! pinned URL to it. The whole cycle is exercised: fetch → check → cache → reuse, and what
//! goes wrong on the way (an interrupted download, a digest that differs, a body that never
//! ends, a server that stalls).

use crate::common::shared;
use appgear::core::digest::sha256_hex;
use appgear::topology_b::addons::Addon;
use appgear::topology_b::cache::{Cache, Entry};
use appgear::topology_b::fetch::client::{Client, Plain};
use appgear::topology_b::fetch::upstream::Network;
use appgear::topology_b::mirror::Found;
use appgear::topology_b::supply::{self, Origin};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What the server answers for a path.
#[derive(Clone, Debug)]
pub enum Reply {
    File(PathBuf),
    Bytes(Vec<u8>),
    /// 302 to this location.
    Redirect(String),
    NotFound,
    /// Headers without a length, then bytes until the client hangs up.
    Endless,
    /// Headers and a few bytes, then nothing.
    Stall,
    /// A Content-Length, half the bytes, then the connection closed.
    Truncated(Vec<u8>),
}

/// A loopback HTTP/1.1 server: `routes` first, else the file under `root` at the request path.
pub struct Server {
    pub port: u16,
    routes: Arc<Mutex<HashMap<String, Reply>>>,
    hits: Arc<Mutex<Vec<String>>>,
}

impl Server {
    pub fn start(root: Option<PathBuf>) -> Server {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        std_listener.set_nonblocking(true).unwrap();
        let port = std_listener.local_addr().unwrap().port();
        let routes: Arc<Mutex<HashMap<String, Reply>>> = Arc::default();
        let hits: Arc<Mutex<Vec<String>>> = Arc::default();
        let (r, h) = (routes.clone(), hits.clone());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
                loop {
                    let Ok((conn, _)) = listener.accept().await else {
                        continue;
                    };
                    let (r, h, root) = (r.clone(), h.clone(), root.clone());
                    tokio::spawn(serve(conn, r, h, root));
                }
            });
        });
        Server { port, routes, hits }
    }
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
    pub fn route(&self, path: &str, reply: Reply) {
        self.routes.lock().unwrap().insert(path.to_string(), reply);
    }
    pub fn hits(&self) -> Vec<String> {
        self.hits.lock().unwrap().clone()
    }
}

async fn serve(
    mut conn: tokio::net::TcpStream,
    routes: Arc<Mutex<HashMap<String, Reply>>>,
    hits: Arc<Mutex<Vec<String>>>,
    root: Option<PathBuf>,
) {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match conn.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&head);
    let path = text.split(' ').nth(1).unwrap_or("/").to_string();
    hits.lock().unwrap().push(path.clone());
    let reply = routes.lock().unwrap().get(&path).cloned();
    let reply = reply.unwrap_or_else(|| match &root {
        Some(root) => {
            let p = root.join(path.trim_start_matches('/'));
            if p.is_file() && !path.contains("..") {
                Reply::File(p)
            } else {
                Reply::NotFound
            }
        }
        None => Reply::NotFound,
    });
    let ok = |len: usize| {
        format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n")
    };
    let _ = match reply {
        Reply::File(p) => {
            let bytes = std::fs::read(p).unwrap();
            let _ = conn.write_all(ok(bytes.len()).as_bytes()).await;
            conn.write_all(&bytes).await
        }
        Reply::Bytes(bytes) => {
            let _ = conn.write_all(ok(bytes.len()).as_bytes()).await;
            conn.write_all(&bytes).await
        }
        Reply::Redirect(to) => {
            conn.write_all(
                format!("HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            )
            .await
        }
        Reply::NotFound => {
            conn.write_all(
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            )
            .await
        }
        Reply::Endless => {
            let _ = conn
                .write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
                .await;
            let chunk = vec![b'#'; 1 << 16];
            while conn.write_all(&chunk).await.is_ok() {}
            Ok(())
        }
        Reply::Stall => {
            let _ = conn
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nConnection: close\r\n\r\nkind: x\n")
                .await;
            // Hold the connection open without a byte more until the client gives up.
            let _ = conn.read(&mut buf).await;
            Ok(())
        }
        Reply::Truncated(bytes) => {
            let _ = conn.write_all(ok(bytes.len()).as_bytes()).await;
            let _ = conn.write_all(&bytes[..bytes.len() / 2]).await;
            conn.shutdown().await
        }
    };
}

fn vendor() -> PathBuf {
    let v = shared().join("vendor");
    assert!(
        v.join("README.md").is_file(),
        "{} not found: set APPGEAR_SHARED to the shared folder that holds vendor/",
        v.display()
    );
    v
}

/// `https://host/path` → `http://127.0.0.1:PORT/host/path`: the loopback server stands in for
/// every upstream host.
fn routed(server: &Server) -> Client {
    let base = server.url();
    Client::routed(move |url: &str| {
        let rest = url.split_once("://").map_or(url, |(_, r)| r);
        format!("{base}/{rest}")
    })
    .quiet()
}

const AIRBYTE_TGZ: &str = "airbyte/airbyte-2.2.0.tgz";

/// A chart repository index listing the vendor package of Airbyte by a relative URL.
fn airbyte_index(digest: &str) -> Vec<u8> {
    format!(
        "apiVersion: v1\nentries:\n  airbyte:\n  - version: 2.3.0\n    digest: {}\n    urls: [airbyte-2.3.0.tgz]\n  - apiVersion: v2\n    appVersion: 2.2.0\n    name: airbyte\n    version: 2.2.0\n    digest: {digest}\n    urls:\n    - airbyte-2.2.0.tgz\ngenerated: \"2026-11-26T00:00:00Z\"\n",
        "0".repeat(64)
    )
    .into_bytes()
}

/// The vendor files at the pinned URL paths: GitHub release URLs redirect to an object store
/// path, as github.com does; raw.githubusercontent.com answers directly.
fn upstream() -> Server {
    let v = vendor();
    let s = Server::start(None);
    s.route(
        "/raw.githubusercontent.com/rancher/local-path-provisioner/v0.0.37/deploy/local-path-storage.yaml",
        Reply::File(v.join("local-path-provisioner/local-path-storage.yaml")),
    );
    s.route(
        "/github.com/kedacore/keda/releases/download/v2.20.2/keda-2.20.2.yaml",
        Reply::Redirect("/objects.githubusercontent.com/keda?sig=1".into()),
    );
    s.route(
        "/objects.githubusercontent.com/keda?sig=1",
        Reply::File(v.join("keda/keda.yaml")),
    );
    s.route(
        "/github.com/kedacore/http-add-on/releases/download/v0.15.0/keda-add-ons-http-0.15.0.yaml",
        Reply::File(v.join("keda-http-add-on/keda-add-ons-http-0.15.0.yaml")),
    );
    let tgz = std::fs::read(v.join(AIRBYTE_TGZ)).unwrap();
    s.route(
        "/airbytehq.github.io/charts/index.yaml",
        Reply::Bytes(airbyte_index(&sha256_hex(&tgz))),
    );
    s.route(
        "/airbytehq.github.io/charts/airbyte-2.2.0.tgz",
        Reply::File(v.join(AIRBYTE_TGZ)),
    );
    s
}

fn fetch(
    name: &str,
    cache: &Cache,
    client: &Client,
) -> appgear::core::error::Result<supply::Supplied> {
    supply::supply(
        Addon::named(name).unwrap(),
        None,
        cache,
        &Network { client },
    )
}

#[test]
fn fetched_add_ons_are_checked_cached_and_then_read_from_the_cache_without_a_request() {
    let server = upstream();
    let client = routed(&server);
    let home = tempfile::tempdir().unwrap();
    let cache = Cache::in_home(home.path());

    let lp = fetch("local-path-provisioner", &cache, &client).unwrap();
    assert_eq!(lp.origin, Origin::Upstream);
    assert_eq!(lp.objects.len(), 9);
    let keda = fetch("keda", &cache, &client).unwrap();
    assert_eq!(keda.objects.len(), 24, "followed GitHub's redirect");
    let airbyte = fetch("airbyte", &cache, &client).unwrap();
    assert!(matches!(&airbyte.found, Found::Package(p) if p.name == "airbyte-2.2.0.tgz"));
    assert_eq!(
        server.hits(),
        [
            "/raw.githubusercontent.com/rancher/local-path-provisioner/v0.0.37/deploy/local-path-storage.yaml",
            "/github.com/kedacore/keda/releases/download/v2.20.2/keda-2.20.2.yaml",
            "/objects.githubusercontent.com/keda?sig=1",
            "/airbytehq.github.io/charts/index.yaml",
            "/airbytehq.github.io/charts/airbyte-2.2.0.tgz",
        ]
    );
    // The cache holds the upstream bytes, with SHA256SUMS.
    let cached = home.path().join("data/cache/keda/v2.20.2");
    assert_eq!(
        std::fs::read(cached.join("keda.yaml")).unwrap(),
        std::fs::read(vendor().join("keda/keda.yaml")).unwrap()
    );
    assert!(cached.join("SHA256SUMS").is_file());
    assert!(home
        .path()
        .join("data/cache/airbyte/2.2.0/airbyte-2.2.0.tgz")
        .is_file());

    // The second run reads the cache and asks the server nothing.
    let before = server.hits().len();
    for name in ["local-path-provisioner", "keda", "airbyte"] {
        let again = fetch(name, &cache, &client).unwrap();
        assert!(
            matches!(again.origin, Origin::Cache(_)),
            "{name}: {:?}",
            again.origin
        );
    }
    assert_eq!(
        keda.objects.len(),
        fetch("keda", &cache, &client).unwrap().objects.len()
    );
    assert_eq!(server.hits().len(), before, "{:?}", server.hits());
}

#[test]
fn an_interrupted_download_leaves_no_cache_entry() {
    let server = upstream();
    let keda = std::fs::read(vendor().join("keda/keda.yaml")).unwrap();
    server.route(
        "/objects.githubusercontent.com/keda?sig=1",
        Reply::Truncated(keda),
    );
    let home = tempfile::tempdir().unwrap();
    let cache = Cache::in_home(home.path());
    let e = fetch("keda", &cache, &routed(&server)).unwrap_err();
    assert!(
        e.message.starts_with(
            "cannot download https://github.com/kedacore/keda/releases/download/v2.20.2/keda-2.20.2.yaml: the download broke off"
        ),
        "{}",
        e.message
    );
    assert_eq!(
        cache.get(Addon::named("keda").unwrap()).unwrap(),
        Entry::Absent
    );
    assert!(!home.path().join("data/cache/keda").exists());
}

#[test]
fn a_package_whose_digest_is_not_the_index_one_is_refused_and_not_cached() {
    let server = upstream();
    server.route(
        "/airbytehq.github.io/charts/index.yaml",
        Reply::Bytes(airbyte_index(&"ab".repeat(32))),
    );
    let home = tempfile::tempdir().unwrap();
    let cache = Cache::in_home(home.path());
    let e = fetch("airbyte", &cache, &routed(&server)).unwrap_err();
    assert_eq!(
        e.message,
        format!(
            "https://airbytehq.github.io/charts/airbyte-2.2.0.tgz: the package has SHA-256 {}, but the index of https://airbytehq.github.io/charts lists {}",
            "2da7f32d2fdbb5e00fed4635cfbe51c8d7533c9d57966bed301a362be441fa9f",
            "ab".repeat(32)
        )
    );
    assert_eq!(
        cache.get(Addon::named("airbyte").unwrap()).unwrap(),
        Entry::Absent
    );

    // An index that does not list the pinned version says so.
    server.route(
        "/airbytehq.github.io/charts/index.yaml",
        Reply::Bytes(b"apiVersion: v1\nentries:\n  airbyte: []\n".to_vec()),
    );
    let e = fetch("airbyte", &cache, &routed(&server)).unwrap_err();
    assert_eq!(
        e.message,
        "chart repository https://airbytehq.github.io/charts: its index.yaml lists no version 2.2.0 of chart airbyte"
    );
}

#[test]
fn a_release_file_that_is_not_the_pinned_one_is_refused_and_not_cached() {
    let server = upstream();
    server.route(
        "/raw.githubusercontent.com/rancher/local-path-provisioner/v0.0.37/deploy/local-path-storage.yaml",
        Reply::Bytes(b"apiVersion: v1\nkind: Namespace\nmetadata: {name: local-path-storage}\n".to_vec()),
    );
    let home = tempfile::tempdir().unwrap();
    let cache = Cache::in_home(home.path());
    let e = fetch("local-path-provisioner", &cache, &routed(&server)).unwrap_err();
    assert!(
        e.message.starts_with("upstream: local-path-provisioner/local-path-storage.yaml has SHA-256 ")
            && e.message.ends_with(
                "but local-path-provisioner v0.0.37 pins 9781b39c24f3f651bd6d6e41b561e04e4904bbdb6d4f8c7a6009df3a702dcd65"
            ),
        "{}",
        e.message
    );
    assert_eq!(
        cache
            .get(Addon::named("local-path-provisioner").unwrap())
            .unwrap(),
        Entry::Absent
    );
    // A moved file (404) names the add-on and the URL.
    server.route(
        "/raw.githubusercontent.com/rancher/local-path-provisioner/v0.0.37/deploy/local-path-storage.yaml",
        Reply::NotFound,
    );
    let e = fetch("local-path-provisioner", &cache, &routed(&server)).unwrap_err();
    assert_eq!(
        e.message,
        "cannot download local-path-provisioner v0.0.37 from https://raw.githubusercontent.com/rancher/local-path-provisioner/v0.0.37/deploy/local-path-storage.yaml: the server answered 404 (not found)"
    );
}

#[test]
fn endless_bodies_stalled_servers_and_redirect_loops_are_cut_off() {
    let server = Server::start(None);
    server.route("/endless", Reply::Endless);
    server.route("/stall", Reply::Stall);
    server.route("/loop", Reply::Redirect("/loop".into()));
    let client = Client::new()
        .quiet()
        .with_idle(std::time::Duration::from_millis(300));
    let url = |p: &str| format!("{}{p}", server.url());

    let e = client
        .get(&url("/endless"), 1 << 20, Plain::LoopbackOnly)
        .unwrap_err();
    assert_eq!(
        e.message,
        format!(
            "cannot download {}: it is larger than 1 MiB, more than any pinned add-on file; the download was cut off",
            url("/endless")
        )
    );
    let e = client
        .get(&url("/stall"), 1 << 20, Plain::LoopbackOnly)
        .unwrap_err();
    assert_eq!(
        e.message,
        format!(
            "cannot download {}: the server sent nothing for 300ms; the download was cut off",
            url("/stall")
        )
    );
    let e = client
        .get(&url("/loop"), 1 << 20, Plain::LoopbackOnly)
        .unwrap_err();
    assert_eq!(
        e.message,
        format!("cannot download {}: more than 5 redirects", url("/loop"))
    );
    // Plain http to a host that is not loopback is refused before any connection.
    let e = Client::new()
        .get("http://example.com/keda.yaml", 1 << 20, Plain::LoopbackOnly)
        .unwrap_err();
    assert_eq!(
        e.message,
        "cannot download http://example.com/keda.yaml: http://example.com/keda.yaml is plain http"
    );
}

/// helm as `gitops_airbyte_chart` finds it: APPGEAR_TEST_HELM, else `.tools/bin/helm`.
pub fn helm_dir() -> PathBuf {
    let helm = std::env::var_os("APPGEAR_TEST_HELM")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools/bin/helm"));
    assert!(
        Command::new(&helm)
            .arg("version")
            .output()
            .is_ok_and(|o| o.status.success()),
        "helm not found at {}: scripts/test puts it in .tools/bin (or set APPGEAR_TEST_HELM)",
        helm.display()
    );
    helm.parent().unwrap().to_path_buf()
}

/// `appgear cluster <args>` in a fresh home with `mirror` and PATH holding `path` (and the system).
pub fn appgear(
    home: &Path,
    mirror: &str,
    path: &[PathBuf],
    args: &[&str],
) -> (i32, String, String) {
    let mut dirs = path.to_vec();
    dirs.extend([PathBuf::from("/usr/bin"), PathBuf::from("/bin")]);
    let o = Command::new(env!("CARGO_BIN_EXE_appgear"))
        .arg("--home")
        .arg(home)
        .args(args)
        .env("PATH", std::env::join_paths(dirs).unwrap())
        .env("HOME", home)
        .env("NO_COLOR", "1")
        .env("APPGEAR_ADDONS_MIRROR", mirror)
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn documents(text: &str) -> Vec<serde_json::Value> {
    serde_norway::Deserializer::from_str(text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .filter(|v: &serde_json::Value| !v.is_null())
        .collect()
}

#[test]
fn airbyte_is_rendered_from_its_chart_with_the_suites_values() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let out = tmp.path().join("out");
    let mirror = vendor().display().to_string();
    let args = [
        "cluster",
        "render",
        "--out",
        out.to_str().unwrap(),
        "--with-airbyte",
        "--without-vault",
    ];
    let (code, _, err) = appgear(&home, &mirror, &[helm_dir()], &args);
    assert_eq!(code, 0, "{err}");
    let text = std::fs::read_to_string(out.join("09-airbyte.yaml")).unwrap();
    let objects = documents(&text);
    let named = |kind: &str, name: &str| {
        objects
            .iter()
            .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no {kind} {name} in 09-airbyte.yaml"))
    };
    // The chart's objects, named after the Application's release, in the suite's namespace.
    named("Namespace", "factory-data");
    for d in [
        "airbyte-server",
        "airbyte-worker",
        "airbyte-workload-launcher",
        "airbyte-temporal",
    ] {
        assert_eq!(
            named("Deployment", d)["metadata"]["namespace"],
            "factory-data"
        );
    }
    named("Service", "airbyte-airbyte-server-svc");
    for o in objects.iter().filter(|o| o["kind"] != "Namespace") {
        assert_eq!(
            o["metadata"]["namespace"], "factory-data",
            "{}",
            o["metadata"]["name"]
        );
    }
    // The Application's values reached the chart: the external database, the S3 endpoint.
    assert!(text.contains("core-postgres.appgear-core.svc.cluster.local"));
    assert!(text.contains("http://ceph-rgw.appgear-core.svc.cluster.local"));
    assert!(!objects.iter().any(|o| o["metadata"]["name"]
        .as_str()
        .is_some_and(|n| n.contains("minio"))));
    // skipTests: no connection-test pod.
    assert!(!text.contains("\"helm.sh/hook\": \"test\""));
    // Every image the chart runs is Airbyte 2.2.0's, as pinned.
    let mut images: Vec<String> = Vec::new();
    for o in &objects {
        let spec = if o["kind"] == "Pod" {
            &o["spec"]
        } else {
            &o["spec"]["template"]["spec"]
        };
        for c in spec["containers"]
            .as_array()
            .into_iter()
            .chain(spec["initContainers"].as_array())
            .flatten()
        {
            let i = c["image"].as_str().unwrap().to_string();
            if !images.contains(&i) {
                images.push(i);
            }
        }
    }
    images.sort();
    let expected = [
        "airbyte/bootloader:2.2.0",
        "airbyte/cron:2.2.0",
        "airbyte/manifest-server:7.23.7",
        "airbyte/server:2.2.0",
        "airbyte/worker:2.2.0",
        "airbyte/workload-api-server:2.2.0",
        "airbyte/workload-launcher:2.2.0",
        "temporalio/auto-setup:1.27.2",
    ];
    assert_eq!(images, expected);
    let pinned = appgear::topology_b::pins::AIRBYTE.images;
    if !pinned.is_empty() {
        let mut p: Vec<String> = pinned.iter().map(|i| i.tagged()).collect();
        p.sort();
        assert_eq!(p, expected, "pins::AIRBYTE.images");
    }
    // The kustomization lists it last.
    let k = std::fs::read_to_string(out.join("kustomization.yaml")).unwrap();
    assert!(k.trim_end().ends_with("- 09-airbyte.yaml"), "{k}");
}

#[test]
fn without_helm_a_chart_add_on_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let mirror = vendor().display().to_string();
    let args = [
        "cluster",
        "render",
        "--out",
        out.to_str().unwrap(),
        "--with-airbyte",
        "--without-vault",
    ];
    let (code, _, err) = appgear(&tmp.path().join("home"), &mirror, &[], &args);
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("error: helm is not on PATH; appgear renders chart add-ons (Kong, Prometheus, Airbyte) with `helm template`"),
        "{err}"
    );
    assert!(err.contains("hint: install helm 3 or 4"), "{err}");
    assert!(!out.join("09-airbyte.yaml").exists());
}

#[test]
fn cluster_mirror_without_a_mirror_fetches_upstream_and_caches() {
    let server = upstream();
    let tmp = tempfile::tempdir().unwrap();
    let home = appgear::topology_a::home::Home::new(tmp.path().join("home"));
    let mut ctx = appgear::topology_b::cluster::context::Context::load(&home).unwrap();
    ctx.settings.addons_mirror = None;
    let out = tmp.path().join("mirror");
    let client = routed(&server);
    // The loopback upstream serves what ../shared/vendor holds; the charts of Kong, Prometheus
    // and the optional parts are not there, so those are named as missing, after the others
    // are written.
    let e = appgear::topology_b::cluster::mirror::write_with(&ctx, &out, &client).unwrap_err();
    let missing: Vec<String> = Addon::all()
        .filter(|a| {
            ![
                "local-path-provisioner",
                "keda",
                "keda-http-add-on",
                "airbyte",
            ]
            .contains(&a.name())
        })
        .map(|a| a.describe())
        .collect();
    assert_eq!(
        e.message,
        format!(
            "{}: wrote 4 add-ons, but could not get {}",
            out.display(),
            missing.join(", ")
        )
    );
    assert!(
        e.detail
            .contains(&"wrote keda v2.20.2 (from upstream)".to_string()),
        "{:?}",
        e.detail
    );
    for (written, source) in [
        ("keda/keda.yaml", "keda/keda.yaml"),
        (
            "local-path-provisioner/local-path-storage.yaml",
            "local-path-provisioner/local-path-storage.yaml",
        ),
        ("airbyte/airbyte-2.2.0.tgz", AIRBYTE_TGZ),
    ] {
        assert_eq!(
            std::fs::read(out.join(written)).unwrap(),
            std::fs::read(vendor().join(source)).unwrap(),
            "{written}"
        );
    }
    // The home's cache holds what was fetched: the next run asks upstream only for the rest.
    let cache = Cache::in_home(home.root());
    assert!(matches!(
        cache.get(Addon::named("keda").unwrap()).unwrap(),
        Entry::Found(_)
    ));
    let before = server.hits();
    let _ = appgear::topology_b::cluster::mirror::write_with(&ctx, &out, &client);
    let asked: Vec<String> = server.hits()[before.len()..].to_vec();
    assert!(
        !asked
            .iter()
            .any(|h| h.contains("keda") || h.contains("airbyte")),
        "{asked:?}"
    );
}

//! `appgear builder` as processes, the way a workspace runs it: `serve` and workers against a
//! real Redis, builds submitted and followed with the CLI. A worker killed with SIGKILL in the
//! middle of a build leaves no build stuck running: the next attempt succeeds.

use crate::redis_server::{free_port, RedisServer};
use appgear::core::digest::sha256_hex;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_appgear");
const TOKEN: &str = "portal-secret";

struct Builder {
    _redis: RedisServer,
    redis_url: String,
    dir: tempfile::TempDir,
    url: String,
    children: Vec<Child>,
}

impl Drop for Builder {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Builder {
    fn start() -> Builder {
        let redis = RedisServer::start();
        let dir = tempfile::tempdir().unwrap();
        // A recipe slow enough to be killed in the middle: 40 numbered lines, then an artifact.
        let config = format!(
            r#"targets:
  web:
    image: sha256:{img}
    command: ["sh", "-c", "i=0; while [ $i -lt 40 ]; do echo line-$i; i=$((i+1)); sleep 0.05; done; mkdir -p dist; echo built > dist/index.html"]
    output_dir: dist
    artifacts: ["**"]
    timeout: 1m
    cpus: 1
    memory: 64Mi
api_tokens:
  - name: portal
    sha256: {token}
    scopes: [submit, read, cancel]
limits:
  heartbeat: 100ms
  lease: 1s
"#,
            img = "ab".repeat(32),
            token = sha256_hex(TOKEN.as_bytes())
        );
        std::fs::write(dir.path().join("builder.yaml"), config).unwrap();
        let port = free_port();
        let mut b = Builder {
            redis_url: redis.url.clone(),
            _redis: redis,
            url: format!("http://127.0.0.1:{port}"),
            dir,
            children: Vec::new(),
        };
        let serve = b.spawn(&["builder", "serve", "--listen", &format!("127.0.0.1:{port}")]);
        b.children.push(serve);
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "builder serve did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        b
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.args(args)
            .env("NO_COLOR", "1")
            .env("BUILDER_CONFIG", self.dir.path().join("builder.yaml"))
            .env("BUILDER_WORKSPACE_ID", "demo")
            .env("REDIS_URL", &self.redis_url)
            .env("BUILDER_STORE_DIR", self.dir.path().join("store"))
            .env("BUILDER_WORK_DIR", self.dir.path().join("work"))
            .env("BUILDER_URL", &self.url)
            .env("BUILDER_TOKEN", TOKEN)
            .stdin(Stdio::null());
        c
    }

    fn spawn(&self, args: &[&str]) -> Child {
        self.command(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    fn status(&self, id: &str) -> serde_json::Value {
        let o = self.run(&["builder", "status", id, "--json"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice(&o.stdout).unwrap()
    }

    fn submit(&self) -> String {
        let o = self.run(&["builder", "submit", "web", "--json"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        v["id"].as_str().unwrap().to_string()
    }
}

fn files_named(dir: &Path, name: &str, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            files_named(&p, name, out);
        } else if p.file_name().is_some_and(|n| n == name) {
            out.push(p);
        }
    }
}

#[test]
fn a_build_submitted_and_followed_from_the_cli_prints_every_line_once_and_stores_its_artifact() {
    let mut b = Builder::start();
    let worker = b.spawn(&["builder", "run", "--loop", "--target", "web"]);
    b.children.push(worker);
    let o = b.run(&["builder", "submit", "web", "--follow"]);
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert!(o.status.success(), "{err}");
    for i in 0..40 {
        assert_eq!(
            out.lines().filter(|l| *l == format!("line-{i}")).count(),
            1,
            "line-{i} once in:\n{out}"
        );
    }
    assert!(err.contains("ended succeeded"), "{err}");
    let mut found = Vec::new();
    files_named(&b.dir.path().join("store"), "index.html", &mut found);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(std::fs::read_to_string(&found[0]).unwrap(), "built\n");
    let list = b.run(&["builder", "list"]);
    assert!(String::from_utf8_lossy(&list.stdout).contains("succeeded"));
}

#[test]
fn a_worker_killed_mid_build_is_replaced_by_the_next_attempt() {
    let mut b = Builder::start();
    let id = b.submit();
    let mut first = b.spawn(&["builder", "run", "--once", "--target", "web"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while b.status(&id)["state"] != "running" {
        assert!(Instant::now() < deadline, "{}", b.status(&id));
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    first.kill().unwrap(); // SIGKILL: no chance to give the build back
    first.wait().unwrap();
    assert_eq!(
        b.status(&id)["state"],
        "running",
        "still leased right after"
    );

    // The lease (1 s) runs out, serve's reaper puts the build back as attempt 2.
    let second = b.spawn(&["builder", "run", "--loop", "--target", "web"]);
    b.children.push(second);
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let s = b.status(&id);
        if s["state"] == "succeeded" {
            assert_eq!(s["attempt"], 2, "{s}");
            break;
        }
        assert!(Instant::now() < deadline, "{s}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

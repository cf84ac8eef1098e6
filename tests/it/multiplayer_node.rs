//! Runs the Node suite in tests/multiplayer (stock y-websocket 3.1.0 clients, real Redis) against
//! the real `appgear` binary, and asserts that it passes.

use crate::redis_server;

use redis_server::{which, RedisServer};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The longest case (a lone client for over 70 s) runs alongside the others.
const SUITE_TIMEOUT: Duration = Duration::from_secs(480);

#[test]
fn node_suite_passes_against_the_gateway() {
    let suite = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/multiplayer");
    assert!(
        which("node").is_some(),
        "node is not installed: install Node.js 20 or later (apt-get install -y nodejs npm)"
    );
    assert!(
        suite
            .join("node_modules/y-websocket/package.json")
            .is_file(),
        "the Node suite's packages are missing: run `npm ci --prefix tests/multiplayer`"
    );
    let redis = RedisServer::start();
    let mut files: Vec<String> = std::fs::read_dir(&suite)
        .expect("read tests/multiplayer")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".test.mjs"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 7,
        "expected the suite's test files, found {files:?}"
    );
    let log = tempfile::NamedTempFile::new().expect("temp file");
    let mut child = Command::new("node")
        .arg("--test")
        .arg("--test-concurrency=16")
        .arg("--test-reporter=spec")
        .args(&files)
        .current_dir(&suite)
        .env("APPGEAR_BIN", env!("CARGO_BIN_EXE_appgear"))
        .env("APPGEAR_TEST_REDIS_URL", &redis.url)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(log.reopen().expect("log"))
        .stderr(log.reopen().expect("log"))
        .spawn()
        .expect("start node");
    let deadline = Instant::now() + SUITE_TIMEOUT;
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait for node") {
            break Some(s);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let output = std::fs::read_to_string(log.path()).unwrap_or_default();
    match status {
        Some(s) if s.success() => {
            assert!(
                output.contains("pass"),
                "no results in the output:\n{output}"
            );
            assert!(!output.contains("✖"), "a case failed:\n{output}");
        }
        Some(s) => panic!("the Node suite failed ({s}):\n{output}"),
        None => panic!("the Node suite did not finish in {SUITE_TIMEOUT:?}:\n{output}"),
    }
}

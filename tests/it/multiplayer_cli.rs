//! `appgear multiplayer serve|token` as a user meets them: bad settings, no Redis, tokens.

use crate::redis_server;

use appgear::multiplayer::token;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const SECRET: &str = "cli-test-secret-0123456789";

fn appgear(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_appgear"));
    cmd.args(args).env("NO_COLOR", "1");
    for var in [
        "WORKSPACE_ID",
        "REDIS_URL",
        "REDIS_HOST",
        "MULTIPLAYER_TOKEN_SECRET",
        "MULTIPLAYER_TOKEN_SECRET_FILE",
        "MULTIPLAYER_LISTEN",
    ] {
        cmd.env_remove(var);
    }
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().expect("run appgear")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn serve_without_workspace_is_bad_input() {
    let o = appgear(
        &["multiplayer", "serve", "--redis", "127.0.0.1:1"],
        &[("MULTIPLAYER_TOKEN_SECRET", SECRET)],
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("no workspace id given"),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("hint:"), "{}", stderr(&o));
}

#[test]
fn a_53_character_workspace_id_is_refused_by_serve_and_token_alike() {
    let id = "w".repeat(53);
    let serve = appgear(
        &[
            "multiplayer",
            "serve",
            "--workspace",
            &id,
            "--redis",
            "127.0.0.1:1",
        ],
        &[("MULTIPLAYER_TOKEN_SECRET", SECRET)],
    );
    let token = appgear(
        &["multiplayer", "token", "--workspace", &id],
        &[("MULTIPLAYER_TOKEN_SECRET", SECRET)],
    );
    for o in [&serve, &token] {
        assert_eq!(o.status.code(), Some(2), "{}", stderr(o));
        assert!(
            stderr(o).contains(&format!("workspace id \"{id}\" is too long")),
            "{}",
            stderr(o)
        );
    }
}

#[test]
fn serve_with_a_short_secret_is_bad_input_and_does_not_print_it() {
    let o = appgear(
        &[
            "multiplayer",
            "serve",
            "--workspace",
            "w1",
            "--redis",
            "127.0.0.1:1",
        ],
        &[("MULTIPLAYER_TOKEN_SECRET", "tiny-s3cret")],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("shorter than 16 bytes"),
        "{}",
        stderr(&o)
    );
    assert!(!stderr(&o).contains("tiny-s3cret"));
}

#[test]
fn serve_with_a_missing_secret_file_is_bad_input() {
    let o = appgear(
        &[
            "multiplayer",
            "serve",
            "--workspace",
            "w1",
            "--redis",
            "127.0.0.1:1",
            "--token-secret-file",
            "/nonexistent/appgear-secret",
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("/nonexistent/appgear-secret"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn serve_with_bad_flags_is_bad_input() {
    for (flag, value, says) in [
        ("--listen", "not-an-address", "is not an address"),
        ("--keepalive", "45s", "below 15s"),
        ("--max-message-size", "lots", "is not a size"),
        ("--path-prefix", "no-slash", "is not a URL path"),
    ] {
        let o = appgear(
            &[
                "multiplayer",
                "serve",
                "--workspace",
                "w1",
                "--redis",
                "127.0.0.1:1",
                flag,
                value,
            ],
            &[("MULTIPLAYER_TOKEN_SECRET", SECRET)],
        );
        assert_eq!(o.status.code(), Some(2), "{flag}: {}", stderr(&o));
        assert!(stderr(&o).contains(says), "{flag}: {}", stderr(&o));
    }
}

#[test]
fn serve_without_redis_exits_3_with_a_hint() {
    let port = redis_server::free_port();
    let o = appgear(
        &["multiplayer", "serve", "--listen", "127.0.0.1:0"],
        &[
            ("WORKSPACE_ID", "w1"),
            ("REDIS_HOST", &format!("127.0.0.1:{port}")),
            ("MULTIPLAYER_TOKEN_SECRET", SECRET),
        ],
    );
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!("cannot reach Redis at redis://127.0.0.1:{port}/")),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("hint:"));
}

#[test]
fn redis_password_is_not_printed() {
    let port = redis_server::free_port();
    let o = appgear(
        &[
            "multiplayer",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--workspace",
            "w1",
        ],
        &[
            (
                "REDIS_URL",
                &format!("redis://user:hunter2-pass@127.0.0.1:{port}/"),
            ),
            ("MULTIPLAYER_TOKEN_SECRET", SECRET),
        ],
    );
    assert_eq!(o.status.code(), Some(3));
    assert!(!stderr(&o).contains("hunter2-pass"), "{}", stderr(&o));
}

#[test]
fn token_command_mints_a_verifiable_token() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secret");
    std::fs::write(&file, format!("{SECRET}\n")).unwrap();
    let o = appgear(
        &[
            "multiplayer",
            "token",
            "--workspace",
            "w1",
            "--secret-file",
            file.to_str().unwrap(),
            "--read-only",
            "--ttl",
            "1h",
            "--subject",
            "ana",
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let t = String::from_utf8(o.stdout).unwrap();
    let t = t.trim();
    assert!(!t.contains(SECRET));
    let now = token::now_unix();
    let claims = token::verify(t, SECRET.as_bytes(), "w1", now).expect("valid token");
    assert!(claims.ro);
    assert_eq!(claims.sub.as_deref(), Some("ana"));
    assert!(claims.exp > now + 3500 && claims.exp <= now + 3600);
    assert!(token::verify(t, SECRET.as_bytes(), "w2", now).is_err());
}

#[test]
fn token_command_refuses_a_subject_the_lock_endpoints_would_refuse() {
    let env = [("MULTIPLAYER_TOKEN_SECRET", SECRET)];
    let mint = |subject: &str| {
        appgear(
            &[
                "multiplayer",
                "token",
                "--workspace",
                "w1",
                "--subject",
                subject,
            ],
            &env,
        )
    };
    for bad in ["s".repeat(251), "tab\there".to_string()] {
        let o = mint(&bad);
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        assert!(
            stderr(&o).contains("cannot name a lock holder: a subject is 1 to 250 bytes"),
            "{}",
            stderr(&o)
        );
        assert!(o.stdout.is_empty(), "a token was printed");
    }
    let o = mint(&"s".repeat(250));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let t = String::from_utf8_lossy(&o.stdout).trim().to_string();
    let claims = token::verify(&t, SECRET.as_bytes(), "w1", token::now_unix()).expect("a token");
    assert_eq!(claims.sub.map(|s| s.len()), Some(250));
}

#[test]
fn token_command_without_secret_is_bad_input() {
    let o = appgear(&["multiplayer", "token", "--workspace", "w1"], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("hint:"));
}

#[test]
fn help_does_not_print_secrets_from_the_environment() {
    let envs = [
        ("REDIS_URL", "redis://user:hunter2-redis-pw@cache:6379/0"),
        ("REDPANDA_BROKER", "sasl://u:hunter2-broker-pw@broker:9092"),
        (
            "MULTIPLAYER_TOKEN_SECRET",
            "hunter2-token-secret-0123456789",
        ),
    ];
    for args in [
        &["multiplayer", "serve", "--help"][..],
        &["multiplayer", "token", "--help"][..],
    ] {
        let o = appgear(args, &envs);
        let out = String::from_utf8_lossy(&o.stdout).into_owned() + &stderr(&o);
        assert_eq!(o.status.code(), Some(0), "{out}");
        assert!(out.contains("REDIS_URL") || args[1] == "token", "{out}");
        assert!(!out.contains("hunter2"), "a secret was printed:\n{out}");
    }
}

/// `appgear multiplayer serve` with at most 64 open files: its address, and its log lines as
/// they come.
fn serve_with_few_files(redis: &str) -> (std::process::Child, String, mpsc::Receiver<String>) {
    let mut child = Command::new("sh")
        .args(["-c", "ulimit -n 64 && exec \"$0\" \"$@\""])
        .arg(env!("CARGO_BIN_EXE_appgear"))
        .args([
            "multiplayer",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--workspace",
            "w1",
        ])
        .args(["--redis", redis, "--header-timeout", "3s"])
        .env("MULTIPLAYER_TOKEN_SECRET", SECRET)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start appgear");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let addr = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = lines
            .recv_timeout(left)
            .expect("the gateway did not start in 20 s");
        if let Some(rest) = line.split("listening on ").nth(1) {
            break rest.split(',').next().unwrap_or_default().to_string();
        }
    };
    (child, addr, lines)
}

#[test]
fn at_the_open_file_limit_serve_says_so_and_still_answers_healthz() {
    let redis = redis_server::RedisServer::start();
    let (mut child, addr, lines) = serve_with_few_files(&redis.url);
    // Far more silent connections than the gateway has descriptors for: accept fails.
    let idle: Vec<TcpStream> = (0..150)
        .filter_map(|_| TcpStream::connect(&addr).ok())
        .collect();
    assert!(idle.len() > 100, "only {} connections", idle.len());
    let said = Instant::now() + Duration::from_secs(10);
    let mut log = String::new();
    while !log.contains("cannot accept connections") && Instant::now() < said {
        if let Ok(line) = lines.recv_timeout(Duration::from_millis(200)) {
            log.push_str(&line);
            log.push('\n');
        }
    }
    // A probe, while every silent connection is still held open by its peer.
    let mut probe = TcpStream::connect(&addr).expect("connect");
    probe
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    probe
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n")
        .expect("send");
    let mut answer = String::new();
    let _ = probe.read_to_string(&mut answer);
    let _ = child.kill();
    let _ = child.wait();
    drop(idle);
    assert!(
        log.contains("cannot accept connections"),
        "no log line:\n{log}"
    );
    assert!(log.contains("ulimit -n"), "{log}");
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "/healthz did not answer at the file limit: {answer:?}\n{log}"
    );
}

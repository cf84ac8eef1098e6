//! The suite's own image, made here without any registry: `image build` from the appgear binary
//! cargo built, `multiplayer serve` run in it on the real Docker Engine with the environment of
//! the rendered Deployment, and two stock y-websocket clients syncing through it; then
//! `images save` / `images load` round trips with local stand-in images.

use crate::common::{bin, docker, run, text};
use crate::redis_server::{free_port, which, RedisServer};
use appgear::topology_b::image::{archive, build};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A name no other run uses.
fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}-{}-{nanos:x}", std::process::id())
}

/// Removes what a test made in Docker, whatever happens.
#[derive(Default)]
struct Cleanup {
    containers: Vec<String>,
    images: Vec<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for c in &self.containers {
            let _ = run(Command::new("docker").args(["rm", "-f", c]));
        }
        for i in &self.images {
            let _ = run(Command::new("docker").args(["rmi", "-f", i]));
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().expect("a tokio runtime")
}

/// A private copy of the appgear binary, so the image and the digests compared with it stay the
/// same while cargo rebuilds `target/debug/appgear` for other work.
fn private_bin(dir: &Path) -> std::path::PathBuf {
    let copy = dir.join("appgear");
    std::fs::copy(bin(), &copy).expect("copy the appgear binary");
    copy
}

/// True once the `image` command is part of the binary (it is wired in src/cli/mod.rs).
fn cli_has_image_command(exe: &Path) -> bool {
    run(Command::new(exe).args(["image", "build", "--help"]))
        .status
        .success()
}

/// Build `reference` the way a user does; returns (stdout, stderr).
fn image_build(exe: &Path, tag: &str) -> (String, String) {
    if cli_has_image_command(exe) {
        let out = run(Command::new(exe)
            .args(["image", "build", "--tag", tag])
            .env("NO_COLOR", "1"));
        let (o, e) = text(&out);
        assert!(out.status.success(), "image build failed:\n{o}\n{e}");
        return (o, e);
    }
    // Until the command is wired, the same library function it calls, on the same binary.
    let built = runtime()
        .block_on(build::build_from(exe, Some(tag)))
        .unwrap_or_else(|e| panic!("image build failed: {e} (hint: {:?})", e.hint));
    (
        format!("{}\n", built.reference),
        if built.reused {
            "already holds this appgear".to_string()
        } else {
            format!("built {}", built.reference)
        },
    )
}

/// The `env` of the rendered multiplayer Deployment (golden tree), as name → value.
fn deployment_env() -> (Vec<(String, String)>, Vec<String>, String) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(
        "tests/golden/one-workspace/apps/factory/workspaces/demo/multiplayer/deployment-multiplayer.yaml",
    );
    let doc: serde_norway::Value =
        serde_norway::from_str(&std::fs::read_to_string(&path).expect("the golden Deployment"))
            .expect("the golden Deployment parses");
    let c = &doc["spec"]["template"]["spec"]["containers"][0];
    let env = c["env"]
        .as_sequence()
        .expect("env")
        .iter()
        .map(|e| {
            (
                e["name"].as_str().expect("name").to_string(),
                e["value"].as_str().expect("value").to_string(),
            )
        })
        .collect();
    let args = c["args"]
        .as_sequence()
        .expect("args")
        .iter()
        .map(|a| a.as_str().expect("arg").to_string())
        .collect();
    let image = c["image"].as_str().expect("image").to_string();
    (env, args, image)
}

fn http_status(port: u16, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf);
    buf.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn the_suite_image_runs_the_gateway_as_deployed_and_a_stock_client_syncs_through_it() {
    let suite = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/multiplayer");
    assert!(
        which("node").is_some(),
        "node is not installed: install Node.js 20 or later"
    );
    assert!(
        suite
            .join("node_modules/y-websocket/package.json")
            .is_file(),
        "the Node suite's packages are missing: run `npm ci --prefix tests/multiplayer`"
    );
    let mut clean = Cleanup::default();
    let bin_dir = tempfile::tempdir().expect("temp dir");
    let exe = private_bin(bin_dir.path());
    let tag = unique("it");
    let reference = format!("{}:{tag}", build::REPOSITORY);
    clean.images.push(reference.clone());

    // Build: the reference on stdout, then the same again is a no-op.
    let (out, err) = image_build(&exe, &tag);
    assert_eq!(out.trim(), reference, "{err}");
    let (out, err) = image_build(&exe, &tag);
    assert_eq!(out.trim(), reference);
    assert!(err.contains("already holds this appgear"), "{err}");

    // What is inside: the entrypoint, a non-root user, the labels, and little besides appgear.
    let config = docker(&[
        "image",
        "inspect",
        "--format",
        "{{json .Config}}",
        &reference,
    ]);
    let config: serde_json::Value = serde_json::from_str(&config).expect("image config");
    assert_eq!(
        config["Entrypoint"],
        serde_json::json!(["/usr/local/bin/appgear"])
    );
    assert_eq!(config["User"], "10001:10001");
    let labels = &config["Labels"];
    assert_eq!(
        labels["org.opencontainers.image.version"],
        env!("CARGO_PKG_VERSION")
    );
    assert!(labels["org.opencontainers.image.source"]
        .as_str()
        .is_some_and(|s| s.starts_with("https://")));
    let binary = std::fs::read(&exe).expect("the appgear binary");
    assert_eq!(
        labels[build::LABEL_BINARY],
        appgear::core::digest::sha256_hex(&binary)
    );
    let size: u64 = docker(&["image", "inspect", "--format", "{{.Size}}", &reference])
        .parse()
        .expect("size");
    assert!(
        size < binary.len() as u64 + 20 * 1024 * 1024,
        "{size} bytes for a {} byte binary: more than the binary and its libraries",
        binary.len()
    );
    #[cfg(target_arch = "x86_64")]
    assert_eq!(
        docker(&[
            "image",
            "inspect",
            "--format",
            "{{.Os}}/{{.Architecture}}",
            &reference
        ]),
        "linux/amd64"
    );
    let version = docker(&["run", "--rm", "--network", "none", &reference, "--version"]);
    assert_eq!(version, format!("appgear {}", env!("CARGO_PKG_VERSION")));
    let user = docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--entrypoint",
        "/usr/local/bin/appgear",
        &reference,
        "multiplayer",
        "token",
        "--help",
    ]);
    assert!(user.contains("--workspace"), "{user}");

    // The rendered Deployment's container, on this Engine: its env, its args, the token file at
    // its Vault path; Redis is a private redis-server on loopback, so the container shares the
    // host's network and the Redis URL and listen address point there.
    let (env, args, deployed_image) = deployment_env();
    assert_eq!(deployed_image, build::default_reference());
    let redis = RedisServer::start();
    let redis_hostport = redis
        .url
        .trim_start_matches("redis://")
        .trim_end_matches('/')
        .to_string();
    let secret_dir = tempfile::tempdir().expect("temp dir");
    let secret = secret_dir.path().join("multiplayer-token");
    std::fs::write(&secret, "suite-image-secret-0123456789abcdef\n").expect("secret");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let secret_path = env
        .iter()
        .find(|(k, _)| k == "MULTIPLAYER_TOKEN_SECRET_FILE")
        .map(|(_, v)| v.clone())
        .expect("the Deployment names the token file");
    assert_eq!(secret_path, "/vault/secrets/multiplayer-token");
    let workspace = env
        .iter()
        .find(|(k, _)| k == "WORKSPACE_ID")
        .map(|(_, v)| v.clone())
        .expect("WORKSPACE_ID");
    let port = free_port();
    let name = unique("appgear-suite-image");
    clean.containers.push(name.clone());
    let mut cmd = vec![
        "run".to_string(),
        "-d".into(),
        "--name".into(),
        name.clone(),
        "--network".into(),
        "host".into(),
        "-v".into(),
        format!("{}:{secret_path}:ro", secret.display()),
    ];
    for (k, v) in &env {
        let v = match k.as_str() {
            "REDIS_URL" => redis.url.clone(),
            "REDIS_HOST" => redis_hostport.clone(),
            _ => v.clone(),
        };
        cmd.push("-e".into());
        cmd.push(format!("{k}={v}"));
    }
    cmd.push(reference.clone());
    let mut listen_next = false;
    for a in &args {
        if listen_next {
            cmd.push(format!("127.0.0.1:{port}"));
            listen_next = false;
            continue;
        }
        listen_next = a == "--listen";
        cmd.push(a.clone());
    }
    let argv: Vec<&str> = cmd.iter().map(String::as_str).collect();
    docker(&argv);
    let deadline = Instant::now() + Duration::from_secs(30);
    while http_status(port, "/readyz") != Some(200) {
        if Instant::now() > deadline {
            let logs = run(Command::new("docker").args(["logs", &name]));
            let (o, e) = text(&logs);
            panic!("the gateway in {reference} was not ready in 30 s:\n{o}{e}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(http_status(port, "/healthz"), Some(200));

    // A token minted by the image itself from the same file, as an operator would.
    let token = docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        &format!("{}:{secret_path}:ro", secret.display()),
        "-e",
        &format!("MULTIPLAYER_TOKEN_SECRET_FILE={secret_path}"),
        &reference,
        "multiplayer",
        "token",
        "--workspace",
        &workspace,
        "--ttl",
        "10m",
    ]);
    assert!(token.starts_with("mp1."), "{token}");

    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/support_image/two_editors.mjs");
    let room = unique("room");
    let out = run(Command::new("node")
        .arg(&script)
        .arg(format!("ws://127.0.0.1:{port}/multiplayer"))
        .arg(&room)
        .arg(&token)
        .env("NODE_PATH", suite.join("node_modules"))
        .stdin(Stdio::null()));
    let (o, e) = text(&out);
    if !out.status.success() {
        let logs = run(Command::new("docker").args(["logs", &name]));
        let (lo, le) = text(&logs);
        panic!("the clients did not sync through the image:\n{o}{e}\ngateway:\n{lo}{le}");
    }
    assert!(o.contains("synced: written in the suite image"), "{o}{e}");
    // It ran as the non-root user.
    let uid = docker(&["inspect", "--format", "{{.Config.User}}", &name]);
    assert_eq!(uid, "10001:10001");
}

/// A tiny image of one file, imported with `docker import` (no registry, no busybox).
fn standin(name: &str) {
    let mut b = tar::Builder::new(Vec::new());
    let body = format!("stand-in {name}\n");
    let mut h = tar::Header::new_gnu();
    h.set_size(body.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, "standin.txt", body.as_bytes())
        .expect("tar");
    let bytes = b.into_inner().expect("tar");
    let mut child = Command::new("docker")
        .args(["import", "-", name])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("docker import");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&bytes)
        .expect("write the tar");
    let out = child.wait_with_output().expect("docker import");
    assert!(
        out.status.success(),
        "docker import {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn exists(image: &str) -> bool {
    run(Command::new("docker").args(["image", "inspect", image]))
        .status
        .success()
}

#[test]
fn images_save_and_load_round_trip_and_missing_images_say_how_to_get_them() {
    let mut clean = Cleanup::default();
    let repo = unique("appgear-it-saveload");
    let a = format!("{repo}/a:1");
    let b = format!("{repo}/b:2");
    clean.images.push(a.clone());
    clean.images.push(b.clone());
    standin(&a);
    standin(&b);
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("images.tar");
    let wanted = [archive::Wanted::named(&a), archive::Wanted::named(&b)];
    let rt = runtime();

    let saved = rt
        .block_on(archive::save(&wanted, &file))
        .unwrap_or_else(|e| panic!("save: {e}"));
    assert_eq!(saved.images, [a.clone(), b.clone()]);
    assert!(saved.bytes > 0 && file.is_file());
    let mut listed = archive::list_archive(&file).expect("list");
    listed.sort();
    assert_eq!(listed, [a.clone(), b.clone()]);
    assert!(
        std::fs::read_dir(dir.path())
            .expect("dir")
            .filter_map(|e| e.ok())
            .all(|e| !e.file_name().to_string_lossy().contains("partial")),
        "no partial file is left"
    );

    docker(&["rmi", &a, &b]);
    assert!(!exists(&a) && !exists(&b));
    let loaded = rt
        .block_on(archive::load(&file))
        .unwrap_or_else(|e| panic!("load: {e}"));
    let mut got = loaded.images.clone();
    got.sort();
    assert_eq!(got, [a.clone(), b.clone()]);
    assert!(exists(&a) && exists(&b), "both are back in Docker");

    // An image this machine does not have: exit 3, its name, and how to get it; no file.
    let absent = format!("{repo}/absent:3");
    let other = dir.path().join("other.tar");
    let e = rt
        .block_on(archive::save(
            &[archive::Wanted::named(&a), archive::Wanted::named(&absent)],
            &other,
        ))
        .expect_err("a missing image is an error");
    assert_eq!(e.exit_code(), 3);
    assert_eq!(
        e.message,
        format!("1 of 2 images are not in Docker here: {absent}")
    );
    assert!(e
        .hint
        .as_deref()
        .is_some_and(|h| h.contains("images save again")));
    assert_eq!(e.detail, [format!("{absent}: docker pull {absent}")]);
    assert!(!other.exists());

    // The same through the command, once it is wired in (src/cli/mod.rs).
    if run(Command::new(bin()).args(["images", "list", "--help"]))
        .status
        .success()
    {
        let out = run(Command::new(bin())
            .args(["images", "list"])
            .arg(&file)
            .arg("--json"));
        let (o, e) = text(&out);
        assert!(out.status.success(), "{o}{e}");
        let v: serde_json::Value = serde_json::from_str(&o).expect("JSON");
        let mut names: Vec<String> = v["images"]
            .as_array()
            .expect("images")
            .iter()
            .filter_map(|n| n.as_str().map(str::to_string))
            .collect();
        names.sort();
        assert_eq!(names, [a.clone(), b.clone()]);
        if !exists("kindest/node:v1.35.8") {
            let out = run(Command::new(bin())
                .args(["images", "save"])
                .arg(&other)
                .args(["--topology", "b"])
                .env("NO_COLOR", "1"));
            let (o, e) = text(&out);
            assert_eq!(out.status.code(), Some(3), "{o}{e}");
            let lines: Vec<&str> = e.lines().collect();
            assert!(
                lines[0].starts_with("error: ")
                    && lines[0].contains("images are not in Docker here: kindest/node:v1.35.8"),
                "{e}"
            );
            assert!(lines[1].starts_with("hint: "), "{e}");
            assert!(
                e.contains("kindest/node:v1.35.8: docker pull kindest/node:v1.35.8@sha256:"),
                "{e}"
            );
            assert!(!other.exists());
        }
    }

    // A file that is not an archive is bad input, and nothing is loaded.
    let junk = dir.path().join("junk.tar");
    std::fs::write(&junk, b"junk").expect("write");
    let e = rt.block_on(archive::load(&junk)).expect_err("junk");
    assert_eq!(e.exit_code(), 2);
    assert!(
        e.message.contains("is not an images archive"),
        "{}",
        e.message
    );
}

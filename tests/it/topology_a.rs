//! Topology A as a user meets it: the real `appgear` binary against the real Docker Engine, with
//! local stand-in images for Traefik and code-server (see tests/standin/build.sh).

use crate::common;

use common::*;
use std::io::{Read, Write};
use std::process::Command;

const CDE: &str = "addon-factory-vscode";
const TRAEFIK: &str = "core-traefik";

fn http_get(port: u16, path: &str) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))
        .expect("the published port accepts connections");
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").unwrap();
    let mut body = String::new();
    let _ = s.read_to_string(&mut body);
    body
}

#[test]
fn fresh_home_comes_up_healthy_and_the_published_port_answers() {
    let stack = Stack::new("fresh");
    let out = stack.ok(&["up"]);
    assert!(
        out.contains(&format!("https://localhost:{}/vscode/", stack.https_port)),
        "{out}"
    );
    assert!(
        out.contains("CODE_SERVER_PASSWORD"),
        "says where the password is: {out}"
    );
    let password = stack.ok(&["config", "get", "CODE_SERVER_PASSWORD"]);
    assert!(
        !out.contains(password.trim()),
        "the password itself is never printed by up"
    );
    assert!(http_get(stack.https_port, "/").contains("200 OK"));
    assert_eq!(stack.appgear(&["status"]).status.code(), Some(0));
    // Compose's labels make the containers Compose's own.
    let listed = docker(&[
        "ps",
        "--filter",
        &format!("label=com.docker.compose.project={}", stack.project),
        "--format",
        "{{.Label \"com.docker.compose.service\"}}",
    ]);
    let mut services: Vec<_> = listed.lines().collect();
    services.sort();
    assert_eq!(services, [CDE, TRAEFIK]);
    // Docker Compose itself sees them as its project's containers (Debian's docker-compose 1.29).
    let compose = run(Command::new("docker-compose")
        .current_dir(&stack.home)
        .args(["-p", &stack.project, "ps", "-q"]));
    assert!(
        compose.status.success(),
        "docker-compose (apt-get install docker-compose) must read the home: {}",
        text(&compose).1
    );
    let mut ids: Vec<String> = text(&compose).0.lines().map(str::to_string).collect();
    ids.sort();
    let mut ours = vec![stack.id(CDE).unwrap(), stack.id(TRAEFIK).unwrap()];
    ours.sort();
    assert_eq!(ids, ours);
}

#[test]
fn a_second_up_recreates_nothing_and_one_image_change_recreates_only_that_service() {
    let stack = Stack::new("idem");
    stack.ok(&["up"]);
    let (cde, traefik) = (stack.id(CDE).unwrap(), stack.id(TRAEFIK).unwrap());
    let dry = stack.ok(&["up", "--dry-run"]);
    assert_eq!(
        dry.lines().filter(|l| !l.starts_with("keep")).count(),
        0,
        "{dry}"
    );
    stack.ok(&["up"]);
    assert_eq!(stack.id(CDE).unwrap(), cde);
    assert_eq!(stack.id(TRAEFIK).unwrap(), traefik);

    // Same image under another reference: a change in .env that touches only the CDE.
    let other = Tag::new(&standin_images().1, "other");
    stack.ok(&["config", "set", "CODE_SERVER_IMAGE", &other.0]);
    stack.ok(&["up"]);
    let cde2 = stack.id(CDE).unwrap();
    assert_ne!(cde2, cde, "the CDE is recreated");
    assert_eq!(stack.id(TRAEFIK).unwrap(), traefik, "Traefik is untouched");

    // An edit of the compose file by hand touches only the service it edits.
    let compose = stack.home.join("docker-compose.yml");
    let edited = std::fs::read_to_string(&compose).unwrap().replace(
        "      TENANT_ID: ${FACTORY_TENANT_ID:-local}\n",
        "      TENANT_ID: ${FACTORY_TENANT_ID:-local}\n      EXTRA: \"1\"\n",
    );
    assert!(edited.contains("EXTRA"));
    std::fs::write(&compose, edited).unwrap();
    stack.ok(&["up"]);
    assert_ne!(
        stack.id(CDE).unwrap(),
        cde2,
        "the edited service is recreated"
    );
    assert_eq!(
        stack.id(TRAEFIK).unwrap(),
        traefik,
        "the other is untouched"
    );

    // A new domain re-issues the certificate Traefik reads at start: Traefik alone is recreated.
    let cde3 = stack.id(CDE).unwrap();
    stack.ok(&["config", "set", "FACTORY_DOMAIN", "factory.example.test"]);
    stack.ok(&["up"]);
    assert_ne!(
        stack.id(TRAEFIK).unwrap(),
        traefik,
        "Traefik picks up the new certificate"
    );
    assert_eq!(stack.id(CDE).unwrap(), cde3);
}

#[test]
fn dry_run_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let fresh = dir.path().join("fresh");
    let out = run(Command::new(bin())
        .arg("--home")
        .arg(&fresh)
        .args(["up", "--dry-run"]));
    assert!(out.status.success(), "{}", text(&out).1);
    assert!(text(&out).0.contains("initialise"), "{}", text(&out).0);
    assert!(!fresh.exists(), "a dry run creates no home");

    let stack = Stack::new("dry");
    stack.ok(&["up"]);
    let traefik_yml = stack.home.join("config/traefik/traefik.yml");
    let before = std::fs::read_to_string(&traefik_yml).unwrap();
    stack.ok(&[
        "config",
        "set",
        "FACTORY_VSCODE_PORT",
        &free_port().to_string(),
    ]);
    let plan = stack.ok(&["up", "--dry-run"]);
    assert!(plan.contains("recreate core-traefik"), "{plan}");
    assert!(plan.contains("keep addon-factory-vscode"), "{plan}");
    assert_eq!(
        std::fs::read_to_string(&traefik_yml).unwrap(),
        before,
        "no generated file is rewritten"
    );
}

#[test]
fn a_relative_home_works_like_an_absolute_one() {
    let stack = Stack::new("relative");
    let out = run(Command::new(bin())
        .current_dir(stack.dir.path())
        .args(["--home", "home", "up"])
        .env("NO_COLOR", "1"));
    assert!(out.status.success(), "{}", text(&out).1);
    let mounts = docker(&[
        "inspect",
        "-f",
        "{{range .Mounts}}{{.Source}} {{end}}",
        &stack.container(CDE),
    ]);
    assert!(
        mounts.contains(&stack.home.join("config/cde").display().to_string()),
        "{mounts}"
    );
}

#[test]
fn killed_and_removed_containers_come_back_on_up() {
    let stack = Stack::new("heal");
    stack.ok(&["up"]);
    docker(&["kill", &stack.container(TRAEFIK)]);
    assert_eq!(
        stack.appgear(&["status"]).status.code(),
        Some(1),
        "status fails while a service is down"
    );
    stack.ok(&["up"]);
    docker(&["rm", "-f", &stack.container(CDE)]);
    stack.ok(&["up"]);
    let json: serde_json::Value = serde_json::from_str(&stack.ok(&["status", "--json"])).unwrap();
    assert_eq!(json["healthy"], true);
    assert!(http_get(stack.https_port, "/").contains("200 OK"));
}

#[test]
fn status_json_agrees_with_docker_inspect() {
    let stack = Stack::new("status");
    stack.ok(&["up"]);
    let json: serde_json::Value = serde_json::from_str(&stack.ok(&["status", "--json"])).unwrap();
    assert_eq!(json["project"], stack.project.as_str());
    let services = json["services"].as_array().unwrap();
    assert_eq!(services.len(), 2);
    for s in services {
        let name = s["container"].as_str().unwrap();
        let inspect: serde_json::Value = serde_json::from_str(&docker(&["inspect", name])).unwrap();
        let c = &inspect[0];
        assert_eq!(s["id"], c["Id"]);
        assert_eq!(s["state"], c["State"]["Status"]);
        assert_eq!(s["health"], c["State"]["Health"]["Status"]);
        assert_eq!(s["image"], c["Config"]["Image"]);
        assert_eq!(s["started_at"], c["State"]["StartedAt"]);
        let mut ports = Vec::new();
        if let Some(map) = c["NetworkSettings"]["Ports"].as_object() {
            for (container_port, bindings) in map {
                for b in bindings.as_array().into_iter().flatten() {
                    ports.push(format!(
                        "{}:{}->{container_port}",
                        b["HostIp"].as_str().unwrap(),
                        b["HostPort"].as_str().unwrap()
                    ));
                }
            }
        }
        ports.sort();
        let ours: Vec<String> = s["ports"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap().to_string())
            .collect();
        assert_eq!(ours, ports, "{name}");
    }
    let traefik = services.iter().find(|s| s["service"] == TRAEFIK).unwrap();
    assert!(traefik["ports"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p.as_str().unwrap() == format!("127.0.0.1:{}->8443/tcp", stack.https_port)));
}

#[test]
fn work_in_the_cde_survives_down_and_up_and_purge_keeps_it() {
    let stack = Stack::new("keep");
    stack.ok(&["up"]);
    // Written by the CDE's own user (uid 1000) inside the container, as the editor would.
    docker(&[
        "exec",
        &stack.container(CDE),
        "sh",
        "-c",
        "echo 'fn main() {}' > /home/coder/project/main.rs && id -u",
    ]);
    let on_host = stack.home.join("config/cde/main.rs");
    assert_eq!(std::fs::read_to_string(&on_host).unwrap(), "fn main() {}\n");
    stack.ok(&["down"]);
    assert!(
        stack.id(CDE).is_none() && stack.id(TRAEFIK).is_none(),
        "down removes the containers"
    );
    assert_eq!(stack.volumes().len(), 1, "down keeps the volumes");
    assert!(on_host.exists());
    stack.ok(&["up"]);
    assert_eq!(
        docker(&[
            "exec",
            &stack.container(CDE),
            "cat",
            "/home/coder/project/main.rs"
        ]),
        "fn main() {}"
    );
    // --purge without --yes and without a terminal refuses and removes nothing.
    let refused = stack.appgear(&["down", "--purge"]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(text(&refused).1.contains("--yes"));
    assert_eq!(stack.volumes().len(), 1);
    stack.ok(&["down", "--purge", "--yes"]);
    assert!(stack.volumes().is_empty(), "purge removes the volumes");
    assert_eq!(
        std::fs::read_to_string(&on_host).unwrap(),
        "fn main() {}\n",
        "config/cde is never deleted"
    );
}

#[test]
fn docker_not_running_is_one_clear_line_and_exit_3() {
    let stack = Stack::new("nodocker");
    let out = run(stack
        .cmd(&["up"])
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock"));
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    let errors: Vec<_> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(
        errors,
        ["error: Docker is not reachable at unix:///nonexistent/docker.sock"],
        "{err}"
    );
    assert!(err.contains("hint: start Docker"), "{err}");

    // A stopped engine can also leave its socket behind: connections are then refused.
    let socket = stack.dir.path().join("stale-docker.sock");
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    let host = format!("unix://{}", socket.display());
    let out = run(stack.cmd(&["status"]).env("DOCKER_HOST", &host));
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains(&format!("error: Docker is not reachable at {host}")),
        "{err}"
    );
    assert!(stack.id(CDE).is_none(), "nothing was started");
}

#[test]
fn a_busy_port_is_named_with_who_holds_it_and_a_free_one_to_use() {
    let stack = Stack::new("busy");
    let holder = std::net::TcpListener::bind(("127.0.0.1", stack.https_port)).unwrap();
    let out = stack.appgear(&["up"]);
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains(&format!(
            "port {} on 127.0.0.1 is already in use",
            stack.https_port
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!("(pid {})", std::process::id())),
        "names the process holding it: {err}"
    );
    assert!(
        err.contains("appgear config set FACTORY_VSCODE_PORT"),
        "{err}"
    );
    drop(holder);
    assert!(
        stack.id(TRAEFIK).is_none(),
        "nothing was started on a busy port"
    );
}

#[test]
fn invalid_env_values_are_refused_with_the_key_named() {
    let stack = Stack::new("badenv");
    let bad = stack.appgear(&["config", "set", "FACTORY_VSCODE_PORT", "http"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        text(&bad)
            .1
            .contains("FACTORY_VSCODE_PORT: `http` is not a port number"),
        "{}",
        text(&bad).1
    );
    let latest = stack.appgear(&[
        "config",
        "set",
        "CODE_SERVER_IMAGE",
        "codercom/code-server:latest",
    ]);
    assert_eq!(latest.status.code(), Some(2));
    // Edited by hand: up refuses before touching Docker, and the file is left as the user wrote it.
    let env = stack.home.join(".env");
    let text_before = std::fs::read_to_string(&env).unwrap().replace(
        "FACTORY_WORKSPACE_ID=local",
        "FACTORY_WORKSPACE_ID=Not_Valid",
    );
    std::fs::write(&env, &text_before).unwrap();
    let out = stack.appgear(&["up"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).1.contains("FACTORY_WORKSPACE_ID"),
        "{}",
        text(&out).1
    );
    assert_eq!(std::fs::read_to_string(&env).unwrap(), text_before);
    assert!(stack.id(CDE).is_none());
}

#[test]
fn a_service_that_exits_fails_fast_with_its_last_log_lines() {
    let stack = Stack::new("crash");
    // A uid that does not own config/cde: the CDE cannot write the project and exits.
    stack.ok(&["config", "set", "CDE_UID", "4242"]);
    let started = std::time::Instant::now();
    let out = stack.appgear(&["up"]);
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(
        err.contains("addon-factory-vscode exited with code 1"),
        "{err}"
    );
    assert!(
        err.contains("is not writable by uid 4242"),
        "the container's own log line is shown: {err}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(60),
        "fails fast, not at the health timeout"
    );
}

#[test]
fn an_image_that_cannot_be_pulled_names_the_env_key() {
    let stack = Stack::new("pull");
    stack.ok(&[
        "config",
        "set",
        "TRAEFIK_IMAGE",
        "registry.invalid/traefik:v3.6.2",
    ]);
    let out = stack.appgear(&["up"]);
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("cannot pull image registry.invalid/traefik:v3.6.2"),
        "{err}"
    );
    assert!(
        err.contains("TRAEFIK_IMAGE"),
        "names the key that points at a mirror: {err}"
    );
}

#[test]
fn a_pull_through_an_unreachable_mirror_names_the_mirror() {
    let stack = Stack::new("mirror");
    stack.ok(&["config", "set", "APPGEAR_REGISTRY_MIRROR", "127.0.0.1:1"]);
    stack.ok(&[
        "config",
        "set",
        "TRAEFIK_IMAGE",
        "traefik:v3.6.2-not-pulled",
    ]);
    let out = stack.appgear(&["up"]);
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("cannot pull image 127.0.0.1:1/library/traefik:v3.6.2-not-pulled"),
        "pulls through the mirror: {err}"
    );
    assert!(
        err.contains("APPGEAR_REGISTRY_MIRROR (127.0.0.1:1)"),
        "the hint names the mirror: {err}"
    );
}

#[test]
fn a_second_appgear_is_told_who_holds_the_lock() {
    let stack = Stack::new("lock");
    let mut first = stack
        .cmd(&["up"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let lock = stack.home.join(".appgear.lock");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !std::fs::read_to_string(&lock)
        .unwrap_or_default()
        .contains("appgear up")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the first up never took the lock"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // up holds the lock for seconds (it waits for health), so this runs while it works.
    let second = stack.appgear(&["down"]);
    let (_, err) = text(&second);
    assert_eq!(second.status.code(), Some(5), "{err}");
    assert!(
        err.contains(&format!("appgear up (pid {})", first.id())),
        "{err}"
    );
    assert!(
        first.wait().unwrap().success(),
        "the first up was not disturbed"
    );
    assert_eq!(stack.appgear(&["status"]).status.code(), Some(0));
}

#[test]
fn ctrl_c_during_up_stops_cleanly_and_the_next_up_converges() {
    let stack = Stack::new("sigint");
    let child = stack
        .cmd(&["up"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupt once the CDE container exists, while up waits for it to become healthy.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while stack.id(CDE).is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "up never created the CDE"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(
        err.contains("error: interrupted") && err.contains("run the same command again"),
        "{err}"
    );
    stack.ok(&["up"]);
    assert_eq!(stack.appgear(&["status"]).status.code(), Some(0));
    assert_eq!(
        stack.volumes().len(),
        1,
        "the interrupted run lost no volume"
    );
    assert!(stack.home.join("config/cde").is_dir() && stack.home.join(".env").exists());
}

#[test]
fn a_home_that_cannot_be_created_suggests_another() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let out = run(Command::new(bin())
        .arg("--home")
        .arg(file.join("home"))
        .arg("up"));
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("cannot create the home folder") && err.contains("--home"),
        "{err}"
    );
}

#[test]
fn a_generated_file_the_user_took_over_is_never_rewritten() {
    let stack = Stack::new("marker");
    let compose = stack.home.join("docker-compose.yml");
    let mine = std::fs::read_to_string(&compose).unwrap().replacen(
        "# Generated by appgear",
        "# mine now",
        1,
    );
    std::fs::write(&compose, &mine).unwrap();
    let out = stack.appgear(&["init"]);
    assert!(out.status.success());
    assert!(
        text(&out)
            .1
            .contains("kept docker-compose.yml: its appgear marker was removed, so it is yours"),
        "{}",
        text(&out).1
    );
    assert_eq!(std::fs::read_to_string(&compose).unwrap(), mine);
}

#[test]
fn logs_show_each_service_and_unknown_services_are_refused() {
    let stack = Stack::new("logs");
    stack.ok(&["up"]);
    let all = stack.ok(&["logs", "--tail", "5"]);
    assert!(
        all.contains("core-traefik") && all.contains("stand-in traefik"),
        "{all}"
    );
    let one = stack.ok(&["logs", CDE]);
    assert!(one.contains("stand-in code-server: uid 1000"), "{one}");
    let bad = stack.appgear(&["logs", "nope"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad).1.contains("no service `nope`"));
}

#[test]
fn doctor_reports_a_busy_port_with_its_holder_and_fails() {
    let stack = Stack::new("doctor");
    let holder = std::net::TcpListener::bind(("127.0.0.1", stack.http_port)).unwrap();
    let out = stack.appgear(&["doctor", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_str(&text(&out).0).unwrap();
    let findings = json["findings"].as_array().unwrap();
    let port = findings
        .iter()
        .find(|f| f["check"].as_str().unwrap().contains("FACTORY_HTTP_PORT"))
        .unwrap();
    assert_eq!(port["status"], "fail");
    assert!(
        port["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("pid {}", std::process::id())),
        "{port}"
    );
    assert!(port["hint"]
        .as_str()
        .unwrap()
        .contains("appgear config set FACTORY_HTTP_PORT"));
    let docker_check = findings.iter().find(|f| f["check"] == "docker").unwrap();
    assert_eq!(docker_check["status"], "ok");
    assert!(docker_check["detail"].as_str().unwrap().contains("API"));
    drop(holder);
}

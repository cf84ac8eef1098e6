//! `up` converges what the user or another program changed behind its back, and never removes or
//! blames what is not its own: network attachments, a renamed project, a foreign container with a
//! service's name, another stack on our port, the same home through a link, a home Docker cannot
//! mount. Real binary, real Docker Engine, stand-in images.

use crate::common;

use common::*;
use std::process::Command;

const CDE: &str = "addon-factory-vscode";
const TRAEFIK: &str = "core-traefik";

/// A container made by the test itself, removed when dropped.
struct Foreign(String);

impl Drop for Foreign {
    fn drop(&mut self) {
        let _ = run(Command::new("docker").args(["rm", "-f", &self.0]));
    }
}

fn exists(container: &str) -> bool {
    run(Command::new("docker").args(["inspect", container]))
        .status
        .success()
}

#[test]
fn a_container_taken_off_its_network_by_hand_is_put_back_by_up() {
    let stack = Stack::new("net");
    stack.ok(&["up"]);
    let (cde, traefik) = (stack.id(CDE).unwrap(), stack.id(TRAEFIK).unwrap());
    let net = format!("{}_factory", stack.project);
    let traefik_name = stack.container(TRAEFIK);
    // Traefik finds code-server by its service name on the project network, as its routes do.
    // (The stand-in's static busybox resolves names with its own nslookup, not libc.)
    let reach = || {
        let exec = |args: &[&str]| {
            let mut all = vec!["exec", &traefik_name];
            all.extend_from_slice(args);
            run(Command::new("docker").args(&all))
        };
        let found = exec(&["busybox", "nslookup", CDE, "127.0.0.11"]);
        let ip = text(&found)
            .0
            .lines()
            .filter_map(|l| l.strip_prefix("Address:"))
            .map(str::trim)
            .find(|a| !a.starts_with("127.0.0.11"))
            .map(str::to_string);
        found.status.success()
            && ip.is_some_and(|ip| {
                exec(&[
                    "wget",
                    "-q",
                    "-O",
                    "-",
                    &format!("http://{ip}:8080/healthz"),
                ])
                .status
                .success()
            })
    };
    assert!(reach(), "Traefik reaches code-server");

    docker(&["network", "disconnect", &net, &stack.container(CDE)]);
    assert!(!reach());
    let plan = stack.ok(&["up", "--dry-run"]);
    assert!(
        plan.contains(&format!("connect {CDE} to network {net}")),
        "{plan}"
    );
    stack.ok(&["up"]);
    assert!(reach(), "up reconnected it");

    // Connected again by hand but without its name on the network: the alias is put back.
    docker(&["network", "disconnect", &net, &stack.container(CDE)]);
    docker(&["network", "connect", &net, &stack.container(CDE)]);
    assert!(!reach());
    stack.ok(&["up"]);
    assert!(reach());
    assert_eq!(stack.id(CDE).unwrap(), cde, "no container was recreated");
    assert_eq!(stack.id(TRAEFIK).unwrap(), traefik);
    let again = stack.ok(&["up", "--dry-run"]);
    assert_eq!(
        again.lines().filter(|l| !l.starts_with("keep")).count(),
        0,
        "{again}"
    );
}

#[test]
fn renaming_the_project_of_a_running_home_is_caught_and_down_stops_the_old_stack() {
    let stack = Stack::new("rename");
    stack.ok(&["up"]);
    let renamed = format!("{}-new", stack.project);
    stack.ok(&["config", "set", "COMPOSE_PROJECT_NAME", &renamed]);
    let out = stack.appgear(&["up"]);
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    let line = err.lines().find(|l| l.starts_with("error:")).unwrap();
    assert!(
        line.contains(&format!("`{}`", stack.project)),
        "names the old project: {line}"
    );
    assert!(!err.contains("docker-proxy"), "{err}");
    assert!(err.contains("appgear down"), "says how to stop it: {err}");
    let created = docker(&[
        "ps",
        "-aq",
        "--filter",
        &format!("label=com.docker.compose.project={renamed}"),
    ]);
    assert!(created.is_empty(), "nothing was created under the new name");

    let down = stack.ok(&["down"]);
    assert!(down.contains(&stack.project), "{down}");
    assert!(
        stack.id(CDE).is_none() && stack.id(TRAEFIK).is_none(),
        "the old stack is gone"
    );
    stack.ok(&["up"]);
    assert!(exists(&format!("{renamed}-{CDE}-1")));
}

#[test]
fn a_foreign_container_with_a_services_name_is_refused_and_kept() {
    let stack = Stack::new("foreign");
    let name = stack.container(TRAEFIK);
    let _guard = Foreign(name.clone());
    docker(&["create", "--name", &name, &standin_images().0]);
    let out = stack.appgear(&["up"]);
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    let line = err.lines().find(|l| l.starts_with("error:")).unwrap();
    assert!(
        line.contains(&name) && line.contains("not part of"),
        "{line}"
    );
    assert!(err.contains(&format!("docker rm {name}")), "{err}");
    assert!(exists(&name), "the foreign container is kept");
    assert!(
        stack.id(CDE).is_none(),
        "refused before anything was created"
    );
}

#[test]
fn a_port_held_by_another_stacks_container_names_that_container() {
    let stack = Stack::new("holder");
    let name = format!("agt-holder-{}", std::process::id());
    let _guard = Foreign(name.clone());
    docker(&[
        "run",
        "-d",
        "--name",
        &name,
        "--label",
        "com.docker.compose.project=someone-else",
        "-p",
        &format!("127.0.0.1:{}:8443", stack.https_port),
        &standin_images().0,
        "--configFile=/etc/passwd",
    ]);
    let out = stack.appgear(&["up"]);
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains(&format!("container {name}")), "{err}");
    assert!(err.contains("someone-else"), "{err}");
    assert!(!err.contains("docker-proxy"), "{err}");

    let doctor = stack.appgear(&["doctor", "--json"]);
    let json: serde_json::Value = serde_json::from_str(&text(&doctor).0).unwrap();
    let port = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["check"].as_str().unwrap().contains("FACTORY_VSCODE_PORT"))
        .unwrap()
        .clone();
    assert_eq!(port["status"], "fail");
    assert!(port["detail"].as_str().unwrap().contains(&name), "{port}");
}

#[test]
fn the_home_through_a_link_is_the_same_home() {
    let stack = Stack::new("samehome");
    stack.ok(&["up"]);
    let (cde, traefik) = (stack.id(CDE).unwrap(), stack.id(TRAEFIK).unwrap());
    let link = stack.dir.path().join("link");
    std::os::unix::fs::symlink(&stack.home, &link).unwrap();
    let via = |args: &[&str]| {
        let out = run(Command::new(bin())
            .arg("--home")
            .arg(&link)
            .args(args)
            .env("NO_COLOR", "1"));
        assert!(out.status.success(), "{}", text(&out).1);
        text(&out).0
    };
    let plan = via(&["up", "--dry-run"]);
    assert_eq!(
        plan.lines().filter(|l| !l.starts_with("keep")).count(),
        0,
        "{plan}"
    );
    via(&["up"]);
    assert_eq!(stack.id(CDE).unwrap(), cde);
    assert_eq!(stack.id(TRAEFIK).unwrap(), traefik);
}

#[test]
fn a_home_docker_cannot_mount_is_refused_before_anything_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("my:home");
    let project = format!("agt-colon-{}", std::process::id());
    let appgear = |args: &[&str]| {
        run(Command::new(bin())
            .arg("--home")
            .arg(&home)
            .args(args)
            .env("NO_COLOR", "1"))
    };
    assert!(appgear(&["init"]).status.success());
    let (traefik, code_server) = standin_images().clone();
    for (k, v) in [
        ("COMPOSE_PROJECT_NAME", project.clone()),
        ("TRAEFIK_IMAGE", traefik),
        ("CODE_SERVER_IMAGE", code_server),
        ("FACTORY_VSCODE_PORT", free_port().to_string()),
        ("FACTORY_HTTP_PORT", free_port().to_string()),
    ] {
        assert!(appgear(&["config", "set", k, &v]).status.success());
    }
    let out = appgear(&["up"]);
    let _ = appgear(&["down", "--purge", "--yes"]);
    let label = format!("label=com.docker.compose.project={project}");
    for id in docker(&["ps", "-aq", "--filter", &label]).split_whitespace() {
        let _ = run(Command::new("docker").args(["rm", "-f", id]));
    }
    let networks = docker(&["network", "ls", "-q", "--filter", &label]);
    let volumes = docker(&["volume", "ls", "-q", "--filter", &label]);
    for id in networks.split_whitespace() {
        let _ = run(Command::new("docker").args(["network", "rm", id]));
    }
    for id in volumes.split_whitespace() {
        let _ = run(Command::new("docker").args(["volume", "rm", id]));
    }
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    let line = err.lines().find(|l| l.starts_with("error:")).unwrap();
    assert!(line.contains("my:home") && line.contains("':'"), "{line}");
    assert!(err.contains("--home"), "{err}");
    assert!(
        networks.is_empty() && volumes.is_empty(),
        "nothing was created"
    );

    let doctor = appgear(&["doctor", "--json"]);
    assert_eq!(doctor.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_str(&text(&doctor).0).unwrap();
    assert!(
        json["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["status"] == "fail" && f["detail"].as_str().unwrap().contains("':'")),
        "{json}"
    );
}

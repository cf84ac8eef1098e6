//! `appgear cluster` and `appgear workspace` as a user runs them, with a stand-in `kind` on PATH
//! (tests/standin/kind: records its arguments, writes a kubeconfig, starts nothing) and the real
//! Docker Engine for preflight. No API server can run here, so `cluster up` gets as far as the
//! first request to the cluster's API; what it sends there is tested against a mocked API in
//! topology_b_apply.rs. `cluster render` output is checked by `validate-manifests` and
//! `kubectl kustomize`.
//!
//! The live test at the end is ignored by default; run it with --ignored on a machine with kind, a
//! registry and the node image: `cluster up` → `workspace add` → status → `cluster down`.

use crate::common::shared;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_appgear");

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// kubectl and helm for preflight: the folder of APPGEAR_TEST_KUBECTL, else .tools/bin.
fn tools_bin() -> PathBuf {
    std::env::var_os("APPGEAR_TEST_KUBECTL")
        .and_then(|k| PathBuf::from(k).parent().map(Path::to_path_buf))
        .unwrap_or_else(|| crate_dir().join(".tools/bin"))
}

/// Numbers a machine that can run the core profile reports; this CI machine has 2 CPUs and
/// default inotify limits, which preflight rightly refuses.
const ROOMY: &str = "cpus=4 memory=17179869184 watches=524288 instances=512 disk=107374182400";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Laptop {
    _tmp: tempfile::TempDir,
    home: PathBuf,
    user_home: PathBuf,
    kind_log: PathBuf,
    kind_state: PathBuf,
    with_kind: bool,
    facts: String,
    ports: (u16, u16),
}

impl Laptop {
    fn new() -> Laptop {
        let tmp = tempfile::tempdir().unwrap();
        let home = tmp.path().join("appgear");
        let user_home = tmp.path().join("user");
        std::fs::create_dir_all(&user_home).unwrap();
        Laptop {
            home,
            user_home,
            kind_log: tmp.path().join("kind.log"),
            kind_state: tmp.path().join("kind-state"),
            _tmp: tmp,
            with_kind: true,
            facts: ROOMY.to_string(),
            ports: (free_port(), free_port()),
        }
    }
    fn cmd(&self, args: &[&str]) -> Command {
        let mut path = vec![tools_bin()];
        if self.with_kind {
            path.insert(0, crate_dir().join("tests/standin"));
        }
        path.extend([PathBuf::from("/usr/bin"), PathBuf::from("/bin")]);
        let mut c = Command::new(BIN);
        c.arg("--home").arg(&self.home).args(args);
        c.env("PATH", std::env::join_paths(path).unwrap())
            .env("HOME", &self.user_home)
            .env_remove("KUBECONFIG")
            .env("NO_COLOR", "1")
            .env("KIND_STANDIN_LOG", &self.kind_log)
            .env("KIND_STANDIN_STATE", &self.kind_state)
            .env("APPGEAR_TEST_MACHINE_FACTS", &self.facts)
            .env("APPGEAR_ADDONS_MIRROR", shared().join("vendor"))
            .env("FACTORY_CLUSTER_HTTP_PORT", self.ports.0.to_string())
            .env("FACTORY_CLUSTER_HTTPS_PORT", self.ports.1.to_string());
        c
    }
    fn run(&self, args: &[&str]) -> (i32, String, String) {
        let o: Output = self.cmd(args).output().unwrap();
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    }
    fn kind_calls(&self) -> Vec<Vec<String>> {
        std::fs::read_to_string(&self.kind_log)
            .unwrap_or_default()
            .lines()
            .map(|l| {
                l.split('\t')
                    .filter(|a| !a.is_empty())
                    .map(String::from)
                    .collect()
            })
            .collect()
    }
    fn kind_was_asked(&self, verb: &[&str]) -> Option<Vec<String>> {
        self.kind_calls()
            .into_iter()
            .find(|c| c.len() >= verb.len() && c[..verb.len()] == *verb)
    }
}

#[test]
fn dry_run_prints_the_plan_and_writes_nothing() {
    let l = Laptop::new();
    let (code, out, err) = l.run(&["cluster", "up", "--dry-run"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("kind cluster   run   create it with kindest/node:v1.35.8"),
        "{out}"
    );
    assert!(out.contains("optional       skip"), "{out}");
    assert!(!l.home.exists(), "--dry-run created the home");
    assert!(l.kind_was_asked(&["create"]).is_none());
}

/// Vault is the suite's secret source: the plan installs it in stage 8, before the suite, unless
/// `--without-vault`, and then says where the secrets must come from.
#[test]
fn dry_run_puts_vault_before_the_suite_unless_left_out() {
    let l = Laptop::new();
    let row = |out: &str, first: &str| {
        out.lines()
            .find(|line| line.trim_start().starts_with(first))
            .unwrap_or_else(|| panic!("no {first:?} in:\n{out}"))
            .to_string()
    };
    for args in [
        &["cluster", "up", "--dry-run"][..],
        &["cluster", "up", "--dry-run", "--with-vault"][..],
    ] {
        let (code, out, err) = l.run(args);
        assert_eq!(code, 0, "{err}");
        assert_eq!(
            row(&out, "8 "),
            " 8  factory suite  run   install vault 0.34.1 before the suite (its pods read their secrets from Vault's agent); apply the suite with no workspace yet (`appgear workspace add ID --tenant T`)"
        );
        assert!(!row(&out, "9 ").contains("vault"), "{out}");
    }
    let (code, out, err) = l.run(&["cluster", "up", "--dry-run", "--without-vault"]);
    assert_eq!(code, 0, "{err}");
    let suite = row(&out, "8 ");
    assert!(
        suite.contains("run   --without-vault: the suite's secrets must come from your own Vault"),
        "{suite}"
    );
    assert!(!suite.contains("install vault"), "{suite}");
    let (code, _, err) = l.run(&[
        "cluster",
        "up",
        "--dry-run",
        "--with-vault",
        "--without-vault",
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("--without-vault"), "{err}");
    assert!(!l.home.exists(), "--dry-run created the home");
}

#[test]
fn init_writes_the_cluster_keys_and_dry_run_reads_them() {
    let l = Laptop::new();
    // Here `.env` is the only source: none of the keys comes from the shell.
    let run = |args: &[&str]| {
        let o = l
            .cmd(args)
            .env_remove("FACTORY_CLUSTER_HTTP_PORT")
            .env_remove("FACTORY_CLUSTER_HTTPS_PORT")
            .env_remove("APPGEAR_CLUSTER_NAME")
            .env_remove("APPGEAR_ADDONS_MIRROR")
            .output()
            .unwrap();
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (code, _, err) = run(&["init"]);
    assert_eq!(code, 0, "{err}");
    let env_path = l.home.join(".env");
    let text = std::fs::read_to_string(&env_path).unwrap();
    for line in [
        "APPGEAR_CLUSTER_NAME=appgear\n",
        "FACTORY_CLUSTER_HTTP_PORT=9080\n",
        "FACTORY_CLUSTER_HTTPS_PORT=9443\n",
        "APPGEAR_ADDONS_MIRROR=''\n",
        "# Topology B: the kind cluster's name",
    ] {
        assert!(text.contains(line), "{line:?} missing from .env:\n{text}");
    }
    let (code, out, err) = run(&["cluster", "up", "--dry-run"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with(
            "cluster appgear (context kind-appgear), Kong on 127.0.0.1:9080 (HTTP) and 127.0.0.1:9443 (HTTPS)\n"
        ),
        "{out}"
    );

    // The user's values are read, and a second init leaves the file as it is.
    let (http, https) = l.ports;
    let edited = text
        .replace("APPGEAR_CLUSTER_NAME=appgear", "APPGEAR_CLUSTER_NAME=demo")
        .replace(
            "FACTORY_CLUSTER_HTTP_PORT=9080",
            &format!("FACTORY_CLUSTER_HTTP_PORT={http}"),
        )
        .replace(
            "FACTORY_CLUSTER_HTTPS_PORT=9443",
            &format!("FACTORY_CLUSTER_HTTPS_PORT={https}"),
        );
    std::fs::write(&env_path, &edited).unwrap();
    let (code, _, err) = run(&["init"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(std::fs::read_to_string(&env_path).unwrap(), edited);
    let (code, out, err) = run(&["cluster", "up", "--dry-run"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with(&format!(
            "cluster demo (context kind-demo), Kong on 127.0.0.1:{http} (HTTP) and 127.0.0.1:{https} (HTTPS)\n"
        )),
        "{out}"
    );
}

/// The line of `table` whose first cell is `first`, its cells split on runs of spaces.
fn table_row(table: &str, first: &str) -> String {
    table
        .lines()
        .find(|l| l.trim_start().starts_with(first))
        .unwrap_or_else(|| panic!("no row {first:?} in:\n{table}"))
        .split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect::<Vec<_>>()
        .join(" | ")
}

#[test]
fn status_shows_each_stage_of_an_absent_then_a_stopped_cluster() {
    let l = Laptop::new();
    let (code, out, err) = l.run(&["cluster", "status"]);
    assert_eq!(code, 1, "not running is not healthy: {err}");
    assert!(out.starts_with("cluster appgear: absent\n"), "{out}");
    assert_eq!(
        table_row(&out, "1 kind cluster"),
        "1 kind cluster | missing | no cluster"
    );
    assert_eq!(
        table_row(&out, "2 storage"),
        "2 storage | missing | local-path-provisioner not installed (pinned v0.0.37)"
    );
    assert_eq!(
        table_row(&out, "5 keda"),
        "5 keda | missing | keda not installed (pinned v2.20.2), keda-http-add-on not installed (pinned v0.15.0)"
    );
    let (code, out, _) = l.run(&["cluster", "status", "--json"]);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["state"], "absent");
    let stages = v["stages"].as_array().unwrap();
    assert_eq!(
        stages
            .iter()
            .map(|s| s["stage"].as_str().unwrap())
            .collect::<Vec<_>>(),
        [
            "kind cluster",
            "storage",
            "kong",
            "prometheus",
            "keda",
            "core services",
            "suite image",
            "factory suite",
            "optional"
        ]
    );
    assert_eq!(stages[4]["pins"][1]["pinned"], "v0.15.0");
    assert!(stages[4]["pins"][1]["installed"].is_null());
    assert_eq!(v["workloads"], serde_json::json!([]));

    // kind knows the cluster (the stand-in's record of it) but no node container runs.
    std::fs::create_dir_all(&l.kind_state).unwrap();
    std::fs::write(l.kind_state.join("appgear.cluster"), "kind: Cluster\n").unwrap();
    let (code, out, err) = l.run(&["cluster", "status"]);
    assert_eq!(code, 1, "{err}");
    assert!(out.starts_with("cluster appgear: stopped\n"), "{out}");
    assert_eq!(
        table_row(&out, "1 kind cluster"),
        "1 kind cluster | partial | its node is stopped"
    );
    assert!(
        table_row(&out, "8 factory suite").starts_with("8 factory suite | unknown"),
        "{out}"
    );
}

#[test]
fn missing_kind_is_refused_with_how_to_install_it() {
    let mut l = Laptop::new();
    l.with_kind = false;
    let (code, _, err) = l.run(&["cluster", "up"]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("error: kind is not on PATH"), "{err}");
    assert!(
        err.contains("hint: install kind (https://kind.sigs.k8s.io/"),
        "{err}"
    );
}

#[test]
fn too_little_memory_is_refused_before_anything_starts() {
    let mut l = Laptop::new();
    l.facts = "cpus=4 memory=4294967296 watches=524288 instances=512".into();
    let (code, _, err) = l.run(&["cluster", "up"]);
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("error: Docker has 4.0 GiB of memory; the core profile needs 8 GiB"),
        "{err}"
    );
    assert!(err.contains("hint: give Docker more memory"), "{err}");
    assert!(l.kind_was_asked(&["create"]).is_none());
}

#[test]
fn a_busy_port_names_its_holder_and_the_setting() {
    let l = Laptop::new();
    let _held = TcpListener::bind(("127.0.0.1", l.ports.0)).unwrap();
    let (code, _, err) = l.run(&["cluster", "up"]);
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains(&format!(
            "port {} (FACTORY_CLUSTER_HTTP_PORT) on 127.0.0.1 is in use by",
            l.ports.0
        )),
        "{err}"
    );
    assert!(
        err.contains("appgear config set FACTORY_CLUSTER_HTTP_PORT"),
        "{err}"
    );
    assert!(l.kind_was_asked(&["create"]).is_none());
}

/// A mocked API server on loopback, plain HTTP: the three workload lists and `up`'s stage record,
/// as the API server returns them; 404 for anything else. Each path asked for comes out of the
/// receiver.
fn mock_api(
    record: serde_json::Value,
    deployments: serde_json::Value,
) -> (u16, std::sync::mpsc::Receiver<String>) {
    use std::io::{Read, Write};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, asked) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && s.read(&mut byte).unwrap_or(0) == 1 {
                head.push(byte[0]);
            }
            let head = String::from_utf8_lossy(&head).into_owned();
            let target = head.split_whitespace().nth(1).unwrap_or("").to_string();
            let path = target.split('?').next().unwrap_or("").to_string();
            let _ = tx.send(path.clone());
            let list = |items: serde_json::Value| serde_json::json!({"apiVersion": "v1", "kind": "List", "metadata": {}, "items": items});
            let (code, body) = match path.as_str() {
                "/apis/apps/v1/deployments" => (200, list(deployments.clone())),
                "/apis/apps/v1/statefulsets" | "/apis/apps/v1/daemonsets" => {
                    (200, list(serde_json::json!([])))
                }
                "/api/v1/namespaces/kube-system/configmaps/appgear-stages" => (200, record.clone()),
                _ => (
                    404,
                    serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404}),
                ),
            };
            let body = body.to_string();
            let _ = write!(
                s,
                "HTTP/1.1 {code} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (port, asked)
}

fn ready_deployment(ns: &str, name: &str, addon: &str, version: &str) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns, "generation": 1,
            "labels": {"appgear.io/addon": addon, "appgear.io/addon-version": version}},
        "spec": {"replicas": 1},
        "status": {"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1,
            "readyReplicas": 1, "availableReplicas": 1,
            "conditions": [{"type": "Available", "status": "True"}]}
    })
}

/// A running cluster as `cluster status` reads it: kind lists it (the stand-in), Docker runs its
/// node (a stand-in image that only sleeps), and its API is mocked: the stage record says storage
/// and KEDA finished, the HTTP add-on's Deployment is labelled but its stage is not recorded.
#[test]
fn status_of_a_running_cluster_reads_the_stage_record_and_the_add_on_labels() {
    let l = Laptop::new();
    let name = format!("status{}", std::process::id());
    let node = format!("{name}-control-plane");
    let (image, _) = crate::common::standin_images().clone();
    struct Removed(String);
    impl Drop for Removed {
        fn drop(&mut self) {
            let _ = Command::new("docker").args(["rm", "-f", &self.0]).output();
        }
    }
    let _ = Command::new("docker").args(["rm", "-f", &node]).output();
    let started = Command::new("docker")
        .args([
            "run",
            "-d",
            "--name",
            &node,
            "--entrypoint",
            "/bin/sleep",
            &image,
            "600",
        ])
        .output()
        .unwrap();
    let _node = Removed(node.clone());
    assert!(
        started.status.success(),
        "{}",
        String::from_utf8_lossy(&started.stderr)
    );
    std::fs::create_dir_all(&l.kind_state).unwrap();
    std::fs::write(
        l.kind_state.join(format!("{name}.cluster")),
        "kind: Cluster\n",
    )
    .unwrap();

    let record = serde_json::json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "appgear-stages", "namespace": "kube-system"},
        "data": {"local-path-provisioner": "v0.0.37", "keda": "v2.20.2", "suite": "0.0.1"}
    });
    let deployments = serde_json::json!([
        ready_deployment("keda", "keda-operator", "keda", "v2.20.2"),
        ready_deployment(
            "keda",
            "keda-add-ons-http-interceptor",
            "keda-http-add-on",
            "v0.15.0"
        ),
    ]);
    let (port, asked) = mock_api(record, deployments);
    std::fs::create_dir_all(l.home.join("config/kind")).unwrap();
    std::fs::write(
        l.home.join("config/kind/kubeconfig"),
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: kind-{name}\n  cluster: {{server: 'http://127.0.0.1:{port}'}}\nusers:\n- name: kind-{name}\n  user: {{token: mock}}\ncontexts:\n- name: kind-{name}\n  context: {{cluster: kind-{name}, user: kind-{name}}}\ncurrent-context: kind-{name}\n"
        ),
    )
    .unwrap();

    let o = l
        .cmd(&["cluster", "status"])
        .env("APPGEAR_CLUSTER_NAME", &name)
        .output()
        .unwrap();
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "every workload is ready:\n{out}{err}\nasked: {:?}",
        asked.try_iter().collect::<Vec<_>>()
    );
    assert!(
        out.starts_with(&format!("cluster {name}: running ({image})\n")),
        "{out}"
    );
    assert_eq!(
        table_row(&out, "1 kind cluster"),
        format!("1 kind cluster | partial | node {image} (pinned kindest/node:v1.35.8)")
    );
    assert_eq!(
        table_row(&out, "2 storage"),
        "2 storage | done | local-path-provisioner v0.0.37"
    );
    assert_eq!(
        table_row(&out, "5 keda"),
        "5 keda | partial | keda v2.20.2, keda-http-add-on not finished (labelled v0.15.0)"
    );
    assert_eq!(
        table_row(&out, "8 factory suite"),
        format!(
            "8 factory suite | partial | vault not installed (pinned 0.34.1), appgear 0.0.1 (this is {})",
            env!("CARGO_PKG_VERSION")
        )
    );
    // The stages come before the workloads.
    let stages_at = out.find("1 kind cluster").unwrap();
    let workloads_at = out.find("keda/keda-operator").unwrap();
    assert!(stages_at < workloads_at, "{out}");
    assert!(
        table_row(&out, "keda-http-add-on").ends_with("| ready"),
        "{out}"
    );
    let paths: Vec<String> = asked.try_iter().collect();
    assert!(
        paths.contains(&"/api/v1/namespaces/kube-system/configmaps/appgear-stages".to_string()),
        "{paths:?}"
    );

    let o = l
        .cmd(&["cluster", "status", "--json"])
        .env("APPGEAR_CLUSTER_NAME", &name)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["stages"][1]["state"], "done");
    assert_eq!(v["stages"][4]["pins"][1]["labelled"], "v0.15.0");
    assert!(v["stages"][4]["pins"][1]["installed"].is_null());
    assert_eq!(v["workloads"].as_array().unwrap().len(), 2);
}

#[test]
fn doctor_names_a_busy_cluster_port_its_holder_and_key_for_both_topologies() {
    let l = Laptop::new();
    let _held = TcpListener::bind(("127.0.0.1", l.ports.0)).unwrap();
    let (code, out, err) = l.run(&["doctor"]);
    assert_eq!(code, 1, "a busy cluster port fails doctor:\n{out}{err}");
    assert!(out.contains("Topology A (appgear up)\n"), "{out}");
    assert!(
        out.contains("Topology B (appgear cluster up, core profile)\n"),
        "{out}"
    );
    let busy = table_row(
        &out,
        &format!("port {} (FACTORY_CLUSTER_HTTP_PORT)", l.ports.0),
    );
    assert!(
        busy.contains(&format!(
            "| FAIL | port {} (FACTORY_CLUSTER_HTTP_PORT) on 127.0.0.1 is in use by",
            l.ports.0
        )),
        "{busy}"
    );
    assert!(
        busy.contains(&format!("pid {}", std::process::id())),
        "{busy}"
    );
    assert!(
        out.contains(&format!(
            "fix port {} (FACTORY_CLUSTER_HTTP_PORT): ",
            l.ports.0
        )) && out.contains("appgear config set FACTORY_CLUSTER_HTTP_PORT"),
        "{out}"
    );
    // The same preflight rules as `cluster up`: the stand-in's version passes.
    assert_eq!(
        table_row(&out, "kind"),
        "kind | ok | kind v0.33.0 go1.25.1 linux/amd64"
    );

    let (code, out, _) = l.run(&["doctor", "--json"]);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["ok"], false);
    assert!(v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["check"] == "docker"));
    assert_eq!(v["topology_b"]["ok"], false);
    let b = v["topology_b"]["findings"].as_array().unwrap();
    let port = b
        .iter()
        .find(|f| f["check"] == format!("port {} (FACTORY_CLUSTER_HTTP_PORT)", l.ports.0))
        .unwrap();
    assert_eq!(port["status"], "fail");
    assert!(port["hint"]
        .as_str()
        .unwrap()
        .contains("appgear config set FACTORY_CLUSTER_HTTP_PORT"));
    let other = b
        .iter()
        .find(|f| f["check"] == format!("port {} (FACTORY_CLUSTER_HTTPS_PORT)", l.ports.1))
        .unwrap();
    assert_eq!(other["status"], "ok");
    assert_eq!(other["detail"], "free");
}

/// kind creates the cluster from the home's config, the kubeconfig goes to the home and
/// ~/.kube/config is left alone; the run then stops at the cluster's API (none runs here),
/// with exit 3 and the object it was applying.
#[test]
fn up_creates_the_cluster_from_the_home_and_leaves_the_users_kubeconfig_alone() {
    let l = Laptop::new();
    let (code, _, err) = l.run(&["cluster", "up"]);
    let create = l
        .kind_was_asked(&["create", "cluster"])
        .unwrap_or_else(|| panic!("kind create was not run: {err}"));
    let config = l.home.join("config/kind/cluster.yaml");
    let kubeconfig = l.home.join("config/kind/kubeconfig");
    assert_eq!(
        create,
        [
            "create",
            "cluster",
            "--name",
            "appgear",
            "--config",
            config.to_str().unwrap(),
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            "--wait",
            "0s"
        ]
    );
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.starts_with("# Generated by appgear"), "{text}");
    assert!(text.contains(&format!("hostPort: {}", l.ports.0)), "{text}");
    assert!(l.home.join("data/cluster").is_dir());
    assert!(kubeconfig.is_file());
    assert!(
        !l.user_home.join(".kube/config").exists(),
        "~/.kube/config was written"
    );
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("the Kubernetes API did not answer for"),
        "{err}"
    );
}

#[test]
fn merge_kubeconfig_is_the_only_way_to_touch_the_users_kubeconfig() {
    let l = Laptop::new();
    let _ = l.run(&["cluster", "up", "--merge-kubeconfig"]);
    assert!(
        l.kind_was_asked(&["export", "kubeconfig", "--name", "appgear"])
            .is_some(),
        "{:?}",
        l.kind_calls()
    );
    assert!(l.user_home.join(".kube/config").is_file());
}

#[test]
fn a_kind_failure_shows_its_last_lines() {
    let l = Laptop::new();
    let mut c = l.cmd(&["cluster", "up"]);
    let o = c.env("KIND_STANDIN_FAIL", "create").output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(
        err.contains("error: kind could not create the cluster: ERROR: failed to create cluster"),
        "{err}"
    );
}

#[test]
fn down_keeps_the_workspaces_data_unless_purged() {
    let l = Laptop::new();
    let _ = l.run(&["cluster", "up"]);
    let data = l.home.join("data/cluster/pvc-1");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("main.rs"), "fn main() {}\n").unwrap();

    let (code, out, err) = l.run(&["cluster", "down"]);
    assert_eq!(code, 0, "{err}");
    assert!(l
        .kind_was_asked(&["delete", "cluster", "--name", "appgear"])
        .is_some());
    assert!(data.join("main.rs").is_file());
    assert!(out.contains("kept the workspaces' data"), "{out}");

    let (code, _, err) = l.run(&["cluster", "down", "--purge"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--purge --yes"), "{err}");
    assert!(data.join("main.rs").is_file());

    let (code, _, err) = l.run(&["cluster", "down", "--purge", "--yes"]);
    assert_eq!(code, 0, "{err}");
    assert!(!l.home.join("data/cluster").exists());
}

#[test]
fn workspaces_are_recorded_listed_and_removed() {
    let l = Laptop::new();
    assert_eq!(
        l.run(&["workspace", "add", "demo", "--tenant", "acme"]).0,
        0
    );
    assert_eq!(
        l.run(&["workspace", "add", "team-b", "--tenant", "globex"])
            .0,
        0
    );
    let (code, _, err) = l.run(&["workspace", "add", "demo", "--tenant", "other"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("belongs to tenant acme"), "{err}");
    let (code, _, err) = l.run(&["workspace", "add", "Bad_Id", "--tenant", "acme"]);
    assert_eq!(code, 2);
    assert!(err.contains("hint:"), "{err}");

    let (_, out, _) = l.run(&["workspace", "list", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v[0]["id"], "demo");
    assert_eq!(v[1]["namespace"], "ws-team-b-factory");

    let (code, out, _) = l.run(&["workspace", "remove", "demo"]);
    assert_eq!(code, 0);
    assert!(out.contains("its files stay in data/cluster"), "{out}");
    let (_, out, _) = l.run(&["workspace", "list", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1);
}

/// Every object `cluster up` applies for two workspaces, from ../shared/vendor as the mirror,
/// validates against strict schemas and builds with `kubectl kustomize`.
#[test]
fn render_of_two_workspaces_validates_and_builds() {
    let l = Laptop::new();
    let out = l.home.parent().unwrap().join("rendered");
    let o = l
        .cmd(&[
            "cluster",
            "render",
            "--out",
            out.to_str().unwrap(),
            // The vendor mirror has no Vault (its own render is checked in topology_b_optional).
            "--without-vault",
            "--workspace",
            "demo",
            "--tenant",
            "acme",
            "--workspace",
            "team-b",
            "--tenant",
            "globex",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let python = std::env::var_os("APPGEAR_TEST_PYTHON").unwrap_or_else(|| "python3".into());
    let v = Command::new(python)
        .arg(shared().join("tools/validate-manifests"))
        .arg(&out)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&v.stdout);
    assert!(
        v.status.success() && report.contains(", 0 failing"),
        "{report}\n{}",
        String::from_utf8_lossy(&v.stderr)
    );

    let kubectl = std::env::var_os("APPGEAR_TEST_KUBECTL").unwrap_or_else(|| "kubectl".into());
    let k = Command::new(kubectl)
        .arg("kustomize")
        .arg(&out)
        .output()
        .unwrap();
    assert!(k.status.success(), "{}", String::from_utf8_lossy(&k.stderr));
    let built = String::from_utf8_lossy(&k.stdout);
    for want in [
        "name: ws-demo-factory",
        "name: ws-team-b-factory",
        "name: ceph-filesystem",
        "name: core-redis",
        "name: keda-operator",
    ] {
        assert!(built.contains(want), "{want} not built");
    }

    // A second render changes nothing.
    let o = l
        .cmd(&[
            "cluster",
            "render",
            "--out",
            out.to_str().unwrap(),
            // The vendor mirror has no Vault (its own render is checked in topology_b_optional).
            "--without-vault",
            "--workspace",
            "demo",
            "--tenant",
            "acme",
            "--workspace",
            "team-b",
            "--tenant",
            "globex",
            "--json",
        ])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        v["files"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["action"] == "unchanged"),
        "{v:#}"
    );
}

#[test]
fn completions_are_written_for_bash_zsh_and_fish() {
    for shell in ["bash", "zsh", "fish"] {
        let o = Command::new(BIN)
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(o.status.success());
        assert!(
            String::from_utf8_lossy(&o.stdout).contains("cluster"),
            "{shell}"
        );
    }
}

/// The whole story on a machine with kind v0.33.0, Docker with 4 CPUs / 8 GiB, and registry
/// access: cargo test --test it topology_b_cluster::live -- --ignored --nocapture
/// (ignored by default: no kind node image can be pulled where the test tier runs).
#[test]
#[ignore = "needs kind and a registry"]
fn live_cluster_up_workspace_status_down() {
    let home = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let o = Command::new(BIN)
            .arg("--home")
            .arg(home.path())
            .args(args)
            .status()
            .unwrap();
        o.code().unwrap_or(-1)
    };
    assert_eq!(run(&["cluster", "up"]), 0);
    assert_eq!(run(&["workspace", "add", "demo", "--tenant", "acme"]), 0);
    assert_eq!(run(&["cluster", "status"]), 0);
    assert_eq!(
        run(&["cluster", "up"]),
        0,
        "a re-run changes nothing and succeeds"
    );
    assert_eq!(run(&["cluster", "down"]), 0);
}

/// Offline: an image this machine's Docker holds under its pinned name goes into the node with
/// `kind load docker-image` right after the cluster is made, before anything would pull it.
#[test]
fn images_docker_already_holds_are_loaded_into_the_node() {
    let pinned = "busybox:1.37.0"; // local-path-provisioner's helper image, pinned by tag
    let has = |name: &str| {
        Command::new("docker")
            .args(["image", "inspect", name])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    // A tiny image under the pinned name, made here only when the machine has none (and then
    // removed), so a real busybox image of the user's is never touched.
    let made = !has(pinned);
    if made {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("hello"), "standin\n").unwrap();
        let tar = tmp.path().join("root.tar");
        let ok = Command::new("tar")
            .arg("-C")
            .arg(tmp.path())
            .args(["-cf"])
            .arg(&tar)
            .arg("hello")
            .status()
            .unwrap();
        assert!(ok.success());
        let ok = Command::new("docker")
            .arg("import")
            .arg(&tar)
            .arg(pinned)
            .output()
            .unwrap();
        assert!(
            ok.status.success(),
            "{}",
            String::from_utf8_lossy(&ok.stderr)
        );
    }
    let l = Laptop::new();
    let (_, _, err) = l.run(&["cluster", "up"]);
    let loaded = l.kind_was_asked(&["load", "docker-image"]);
    if made {
        let _ = Command::new("docker").args(["rmi", pinned]).output();
    }
    let loaded = loaded.unwrap_or_else(|| panic!("kind load docker-image was not run: {err}"));
    assert!(
        loaded.contains(&"docker.io/library/busybox:1.37.0".to_string()),
        "{loaded:?}"
    );
    assert_eq!(loaded[loaded.len() - 2..], ["--name", "appgear"]);
    // The node image and images pinned by digest are never loaded this way.
    assert!(
        !loaded.iter().any(|a| a.starts_with("kindest/node")),
        "{loaded:?}"
    );
    assert!(!loaded.iter().any(|a| a.contains("redis")), "{loaded:?}");
}

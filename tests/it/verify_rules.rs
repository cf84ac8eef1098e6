//! `appgear verify` on a rendered tree: zero findings as rendered; for each rule, a copy broken
//! with exactly that defect makes exactly that rule fire.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_appgear");

fn render(out: &Path) {
    let o = Command::new(BIN)
        .args(["gitops", "render", "--out"])
        .arg(out)
        .args([
            "--cluster",
            "ag-br-core-dev",
            "--workspace",
            "demo",
            "--tenant",
            "acme",
        ])
        .args(["--workspace", "team-b", "--tenant", "globex"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

fn verify(args: &[&Path], extra: &[&str]) -> Output {
    Command::new(BIN)
        .arg("verify")
        .args(extra)
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

/// The rule ids that fire on `dir`, in order, and the exit code.
fn rules_fired(dir: &Path) -> (Option<i32>, Vec<String>, serde_json::Value) {
    let o = verify(&[dir], &["--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stderr)));
    let ids = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap().to_string())
        .collect();
    (o.status.code(), ids, v)
}

/// A fresh rendered tree in its own temp dir.
fn tree() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("appgear-gitops-suites");
    render(&out);
    (tmp, out)
}

fn edit(root: &Path, rel: &str, from: &str, to: &str) {
    let p = root.join(rel);
    let text = std::fs::read_to_string(&p).unwrap();
    assert!(text.contains(from), "{rel} does not contain {from:?}");
    std::fs::write(&p, text.replacen(from, to, 1)).unwrap();
}

/// Break a fresh tree with `breakage` and check that exactly `rule` fires, once.
fn exactly(rule: &str, breakage: impl FnOnce(&Path)) -> serde_json::Value {
    let (_tmp, root) = tree();
    breakage(&root);
    let (code, ids, v) = rules_fired(&root);
    assert_eq!(ids, vec![rule.to_string()], "{v:#}");
    assert_eq!(code, Some(1));
    v["findings"][0].clone()
}

const VSCODE: &str = "apps/factory/workspaces/demo/vscode";
const MP: &str = "apps/factory/workspaces/demo/multiplayer";
const AIRBYTE: &str = "apps/factory/airbyte";
const BUILDER: &str = "apps/factory/workspaces/demo/tauri";

#[test]
fn a_rendered_tree_has_no_findings() {
    let (_tmp, root) = tree();
    let (code, ids, v) = rules_fired(&root);
    assert_eq!(ids, Vec::<String>::new(), "{v:#}");
    assert_eq!(code, Some(0));
    assert!(v["documents"].as_u64().unwrap() > 40);
    let human = verify(&[&root], &[]);
    let out = String::from_utf8_lossy(&human.stdout);
    assert!(out.starts_with("no findings in "), "{out}");
}

#[test]
fn factory001_ingress_of_another_class() {
    let f = exactly("FACTORY001", |r| {
        edit(
            r,
            &format!("{AIRBYTE}/ingress-airbyte-kong.yaml"),
            "ingressClassName: kong",
            "ingressClassName: traefik",
        )
    });
    assert_eq!(f["object"]["kind"], "Ingress");
    assert!(f["message"]
        .as_str()
        .unwrap()
        .contains("\"traefik\", not kong"));
}

#[test]
fn factory001_traefik_ingressroute() {
    let f = exactly("FACTORY001", |r| {
        std::fs::write(
            r.join(AIRBYTE).join("ingressroute-airbyte.yaml"),
            "apiVersion: traefik.io/v1alpha1\nkind: IngressRoute\nmetadata:\n  name: airbyte\n  namespace: factory-data\n  labels:\n    appgear.io/suite: factory\n    appgear.io/tenant-id: global\nspec:\n  routes: []\n",
        )
        .unwrap()
    });
    assert_eq!(f["object"]["kind"], "IngressRoute");
    assert_eq!(
        f["file"].as_str().unwrap().rsplit('/').next(),
        Some("ingressroute-airbyte.yaml")
    );
}

#[test]
fn factory002_workspace_object_without_tenant() {
    let f = exactly("FACTORY002", |r| {
        edit(
            r,
            &format!("{VSCODE}/service-vscode.yaml"),
            "    appgear.io/tenant-id: acme\n",
            "",
        )
    });
    assert_eq!(f["object"]["name"], "addon-factory-vscode");
}

#[test]
fn factory002_pod_template_without_tenant() {
    let f = exactly("FACTORY002", |r| {
        edit(
            r,
            &format!("{VSCODE}/deployment-vscode.yaml"),
            "        appgear.io/tenant-id: acme\n",
            "",
        )
    });
    assert!(f["message"].as_str().unwrap().starts_with("pod template"));
}

#[test]
fn factory002_airbyte_not_global() {
    exactly("FACTORY002", |r| {
        edit(
            r,
            &format!("{AIRBYTE}/ingress-airbyte-kong.yaml"),
            "appgear.io/tenant-id: global",
            "appgear.io/tenant-id: acme",
        )
    });
}

#[test]
fn factory003_emptydir_in_a_cde() {
    exactly("FACTORY003", |r| {
        edit(
            r,
            &format!("{VSCODE}/deployment-vscode.yaml"),
            "persistentVolumeClaim:\n            claimName: cde-workspace",
            "emptyDir: {}",
        )
    });
}

#[test]
fn factory003_cde_volume_not_cephfs_rwx() {
    exactly("FACTORY003", |r| {
        edit(
            r,
            &format!("{VSCODE}/pvc-workspace.yaml"),
            "    - ReadWriteMany",
            "    - ReadWriteOnce",
        )
    });
}

#[test]
fn factory004_airbyte_component_without_limits() {
    let f = exactly("FACTORY004", |r| {
        edit(
            r,
            &format!("{AIRBYTE}/application-airbyte.yaml"),
            "        worker:\n          podLabels:\n            appgear.io/tenant-id: global\n          resources:\n            requests:\n              cpu: \"500m\"\n              memory: \"1Gi\"\n            limits:\n              cpu: \"2\"\n              memory: \"2Gi\"\n",
            "        worker:\n          podLabels:\n            appgear.io/tenant-id: global\n          resources:\n            requests:\n              cpu: \"500m\"\n              memory: \"1Gi\"\n",
        )
    });
    assert!(f["message"].as_str().unwrap().ends_with(": worker"), "{f}");
}

/// The bootloader is a pod the chart runs before every sync; it needs limits like the rest.
#[test]
fn factory004_bootloader_without_limits() {
    let f = exactly("FACTORY004", |r| {
        edit(
            r,
            &format!("{AIRBYTE}/application-airbyte.yaml"),
            "        airbyteBootloader:\n          podLabels:\n            appgear.io/tenant-id: global\n          resources:\n            requests:\n              cpu: \"100m\"\n              memory: \"256Mi\"\n            limits:\n              cpu: \"1\"\n              memory: \"1Gi\"\n",
            "",
        )
    });
    assert!(
        f["message"]
            .as_str()
            .unwrap()
            .ends_with(": airbyteBootloader"),
        "{f}"
    );
}

/// The connector pods the workload launcher starts are bounded by global.workloads.
#[test]
fn factory004_connector_pods_without_limits() {
    let f = exactly("FACTORY004", |r| {
        edit(
            r,
            &format!("{AIRBYTE}/application-airbyte.yaml"),
            "                  limit: \"2Gi\"\n",
            "",
        )
    });
    assert!(
        f["message"]
            .as_str()
            .unwrap()
            .ends_with(": global.workloads.resources.mainContainer (the connector pods)"),
        "{f}"
    );
}

#[test]
fn factory004_keda_on_an_airbyte_component_other_than_the_worker() {
    exactly("FACTORY004", |r| {
        edit(
            r,
            &format!("{AIRBYTE}/scaledobject-airbyte-workers.yaml"),
            "name: airbyte-worker",
            "name: airbyte-server",
        )
    });
}

#[test]
fn factory005_multiplayer_without_websocket_timeouts() {
    let f = exactly("FACTORY005", |r| {
        edit(
            r,
            &format!("{MP}/service-multiplayer-wake.yaml"),
            "    konghq.com/read-timeout: \"3600000\"\n",
            "",
        )
    });
    assert!(f["message"]
        .as_str()
        .unwrap()
        .contains("konghq.com/read-timeout"));
}

#[test]
fn factory005_timeouts_no_longer_than_kongs_default() {
    exactly("FACTORY005", |r| {
        edit(
            r,
            &format!("{MP}/service-multiplayer.yaml"),
            "konghq.com/write-timeout: \"3600000\"",
            "konghq.com/write-timeout: \"60000\"",
        )
    });
}

#[test]
fn factory006_latest_image() {
    let f = exactly("FACTORY006", |r| {
        edit(
            r,
            &format!("{VSCODE}/deployment-vscode.yaml"),
            "codercom/code-server:4.106.3",
            "codercom/code-server:latest",
        )
    });
    assert!(f["message"].as_str().unwrap().contains("tagged latest"));
}

#[test]
fn factory006_untagged_image() {
    exactly("FACTORY006", |r| {
        edit(
            r,
            &format!("{VSCODE}/deployment-vscode.yaml"),
            "codercom/code-server:4.106.3",
            "codercom/code-server",
        )
    });
}

/// A digest pins an image only when it is one: `@sha256:` with nothing after it, or with a
/// wrong number of hex digits, names no image.
#[test]
fn factory006_empty_or_malformed_digest() {
    for (digest, len) in [("", 0), ("abc123", 6)] {
        let f = exactly("FACTORY006", |r| {
            edit(
                r,
                &format!("{VSCODE}/deployment-vscode.yaml"),
                "image: codercom/code-server:4.106.3",
                // Quoted: a plain scalar ending in ':' would be a mapping key.
                &format!("image: \"codercom/code-server@sha256:{digest}\""),
            )
        });
        let m = f["message"].as_str().unwrap();
        assert!(
            m.contains(&format!(
                "has a malformed digest: sha256 takes 64 lower-case hex digits, not {len}"
            )),
            "{m}"
        );
    }
    // A real digest passes.
    let (_tmp, root) = tree();
    edit(
        &root,
        &format!("{VSCODE}/deployment-vscode.yaml"),
        "codercom/code-server:4.106.3",
        &format!("codercom/code-server@sha256:{}", "0f".repeat(32)),
    );
    let (code, ids, v) = rules_fired(&root);
    assert_eq!((code, ids), (Some(0), vec![]), "{v:#}");
}

#[test]
fn factory006_container_without_limits() {
    exactly("FACTORY006", |r| {
        edit(
            r,
            &format!("{MP}/deployment-multiplayer.yaml"),
            "            limits:\n              cpu: \"2\"\n              memory: \"4Gi\"\n",
            "",
        )
    });
}

#[test]
fn factory006_literal_secret_in_env() {
    let f = exactly("FACTORY006", |r| {
        edit(
            r,
            &format!("{MP}/deployment-multiplayer.yaml"),
            "          env:\n",
            "          env:\n            - name: REDIS_PASSWORD\n              value: hunter2\n",
        )
    });
    assert!(f["message"].as_str().unwrap().contains("REDIS_PASSWORD"));
    assert!(
        !f.to_string().contains("hunter2"),
        "a finding must not repeat the secret"
    );
}

#[test]
fn factory007_object_outside_the_factory_tree() {
    let f = exactly("FACTORY007", |r| {
        std::fs::create_dir_all(r.join("core")).unwrap();
        std::fs::write(
            r.join("core/namespace.yaml"),
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: appgear-core\n  labels:\n    appgear.io/suite: factory\n    appgear.io/tenant-id: global\n",
        )
        .unwrap();
    });
    assert!(f["file"].as_str().unwrap().ends_with("core/namespace.yaml"));
}

#[test]
fn factory007_core_object_inside_apps_factory() {
    exactly("FACTORY007", |r| {
        edit(
            r,
            &format!("{VSCODE}/pvc-workspace.yaml"),
            "appgear.io/suite: factory",
            "appgear.io/suite: core",
        )
    });
}

#[test]
fn factory008_builder_on_the_redis_list_trigger() {
    let f = exactly("FACTORY008", |r| {
        edit(
            r,
            &format!("{BUILDER}/scaledjob-builder-web.yaml"),
            "    - type: redis-streams\n",
            "    - type: redis\n",
        )
    });
    assert!(f["message"].as_str().unwrap().contains("redis trigger"));
}

#[test]
fn factory008_builder_with_the_default_strategy() {
    let f = exactly("FACTORY008", |r| {
        edit(
            r,
            &format!("{BUILDER}/scaledjob-builder-tauri-linux.yaml"),
            "  scalingStrategy:\n    strategy: accurate\n",
            "",
        )
    });
    assert!(f["message"].as_str().unwrap().contains("default"));
}

#[test]
fn factory008_builder_without_lag_count() {
    exactly("FACTORY008", |r| {
        edit(
            r,
            &format!("{BUILDER}/scaledjob-builder-android-apk.yaml"),
            "        lagCount: \"1\"\n",
            "",
        )
    });
}

#[test]
fn every_rule_has_a_breaking_test_above() {
    let src = std::fs::read_to_string(file!()).unwrap();
    for n in 1..=8 {
        let id = format!("FACTORY00{n}");
        assert!(
            src.matches(&format!("exactly(\"{id}\"")).count() >= 1,
            "{id} has no test"
        );
    }
}

#[test]
fn human_output_names_rule_file_document_object_and_fix() {
    let (_tmp, root) = tree();
    edit(
        &root,
        &format!("{VSCODE}/deployment-vscode.yaml"),
        "codercom/code-server:4.106.3",
        "codercom/code-server:latest",
    );
    let o = verify(&[&root], &[]);
    assert_eq!(o.status.code(), Some(1));
    let out = String::from_utf8_lossy(&o.stdout);
    let mut lines = out.lines();
    let head = lines.next().unwrap();
    assert!(head.starts_with("FACTORY006 [policy] "), "{out}");
    assert!(
        head.contains("vscode/deployment-vscode.yaml#0 Deployment addon-factory-vscode"),
        "{out}"
    );
    assert!(lines
        .next()
        .unwrap()
        .contains("image codercom/code-server:latest is tagged latest"));
    assert!(lines
        .next()
        .unwrap()
        .trim_start()
        .starts_with("fix: pin an exact version"));
    assert!(out.contains("1 finding in "), "{out}");
}

#[test]
fn unparseable_yaml_and_bad_paths_are_exit_2() {
    let (_tmp, root) = tree();
    std::fs::write(root.join("apps/factory/broken.yaml"), "kind: [unclosed\n").unwrap();
    let o = verify(&[&root], &[]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.lines()
            .next()
            .unwrap()
            .contains("broken.yaml is not valid YAML"),
        "{err}"
    );

    let missing = root.join("nope");
    let o = verify(&[&missing], &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("does not exist"));

    let empty = tempfile::tempdir().unwrap();
    let o = verify(&[empty.path()], &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("holds no YAML files"));

    let o = verify(&[&root], &["--skip", "FACTORY999"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn single_files_can_be_checked() {
    let (_tmp, root) = tree();
    let dep = root.join(format!("{VSCODE}/deployment-vscode.yaml"));
    let o = verify(&[&dep], &[]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
}

/// Run `appgear verify` with its address space capped at `bytes`, so a check that expands its
/// input without bound fails here instead of swapping the machine to a halt.
fn verify_capped(args: &[&Path], bytes: u64) -> Output {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(BIN);
    // SAFETY: setrlimit is async-signal-safe, and the closure touches nothing else.
    unsafe {
        cmd.pre_exec(move || {
            let lim = libc::rlimit {
                rlim_cur: bytes,
                rlim_max: bytes,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &lim) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    cmd.arg("verify")
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

/// YAML aliases repeat the node they name: a 1.3 MB file whose 1 MiB scalar is aliased
/// 60 000 times stands for 60 GB, and nine levels of ten aliases ("billion laughs") for a
/// billion nodes. `verify` (which CI runs on pull requests) refuses both quickly, within
/// 1 GiB, with one line and exit 2; before the fix it ran out of memory.
#[test]
fn yaml_alias_bombs_are_refused_quickly_within_bounded_memory() {
    let (_tmp, root) = tree();
    let dir = root.join(AIRBYTE);
    let big = "x".repeat(1 << 20);
    let mut scalar_bomb =
        format!("apiVersion: v1\nkind: ConfigMap\ndata:\n  a: &a \"{big}\"\n  b: [");
    scalar_bomb.push_str(&vec!["*a"; 60_000].join(","));
    scalar_bomb.push_str("]\n");
    let mut laughs = "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n".to_string();
    for i in 1..10 {
        let refs = vec![format!("*a{}", i - 1); 10].join(", ");
        laughs.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
    }
    for (name, text) in [("scalar-bomb.yaml", scalar_bomb), ("laughs.yaml", laughs)] {
        let file = dir.join(name);
        std::fs::write(&file, text).unwrap();
        let started = std::time::Instant::now();
        let o = verify_capped(&[&root], 1 << 30);
        let err = String::from_utf8_lossy(&o.stderr).to_string();
        assert_eq!(o.status.code(), Some(2), "{name}: {err}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "{name} took {:?}",
            started.elapsed()
        );
        let first = err.lines().next().unwrap_or("");
        assert!(
            first.contains(&format!(
                "{name} is too large once its YAML aliases are expanded"
            )),
            "{first}"
        );
        assert!(
            err.lines().nth(1).is_some_and(|l| l.starts_with("hint: ")),
            "{err}"
        );
        assert!(
            err.len() < 800,
            "the message quotes too much: {} bytes",
            err.len()
        );
        std::fs::remove_file(&file).unwrap();
    }
}

/// Aliases themselves are fine: an object that reuses its labels through an anchor is checked
/// like any other.
#[test]
fn modest_aliases_are_checked_like_any_yaml() {
    let (_tmp, root) = tree();
    std::fs::write(
        root.join(AIRBYTE).join("configmap-anchored.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: anchored\n  namespace: factory-data\n  labels: &labels\n    appgear.io/suite: factory\n    appgear.io/tenant-id: global\n  annotations: *labels\ndata: {}\n",
    )
    .unwrap();
    let (code, ids, v) = rules_fired(&root);
    assert_eq!(ids, Vec::<String>::new(), "{v:#}");
    assert_eq!(code, Some(0));
}

#[test]
fn a_yaml_file_over_16_mib_is_refused_unread() {
    let (_tmp, root) = tree();
    let file = root.join(AIRBYTE).join("huge.yaml");
    let line = format!("# {}\n", "z".repeat(1022));
    std::fs::write(&file, line.repeat(17 * 1024)).unwrap();
    let o = verify(&[&root], &[]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.lines()
            .next()
            .unwrap()
            .contains("huge.yaml is larger than 16 MiB"),
        "{err}"
    );
}

/// A link in the tree that leads out of it is not followed (one to /usr walked all of /usr),
/// and says so; a link back up (`current -> .`) is no cycle: each folder is walked once.
#[test]
fn links_out_of_the_tree_are_skipped_and_links_back_up_walked_once() {
    let (_tmp, root) = tree();
    let (_, _, plain) = rules_fired(&root);
    let files = plain["files"].as_u64().unwrap();

    std::os::unix::fs::symlink("/usr", root.join("apps/factory/usr")).unwrap();
    std::os::unix::fs::symlink(".", root.join(format!("{VSCODE}/current"))).unwrap();
    std::os::unix::fs::symlink("../..", root.join(format!("{MP}/up"))).unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(
        outside.path().join("elsewhere.yaml"),
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: x\n",
    )
    .unwrap();
    std::os::unix::fs::symlink(
        outside.path().join("elsewhere.yaml"),
        root.join(format!("{AIRBYTE}/elsewhere.yaml")),
    )
    .unwrap();

    let started = std::time::Instant::now();
    let o = verify(&[&root], &["--json"]);
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["files"].as_u64().unwrap(), files, "{v:#}");
    assert_eq!(v["findings"], serde_json::json!([]));
    let skipped: Vec<&str> = v["skipped_links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["link"].as_str().unwrap())
        .collect();
    assert_eq!(skipped.len(), 2, "{skipped:?}");
    assert!(
        skipped[0].ends_with("airbyte/elsewhere.yaml"),
        "{skipped:?}"
    );
    assert!(skipped[1].ends_with("apps/factory/usr"), "{skipped:?}");
    assert!(
        err.lines()
            .any(|l| l.starts_with("warning: skipped ") && l.contains("it links to /usr, outside ")),
        "{err}"
    );
}

/// A link given on the command line is the user's choice, and is read.
#[test]
fn a_linked_folder_given_by_name_is_checked() {
    let (tmp, root) = tree();
    let link = tmp.path().join("link-to-tree");
    std::os::unix::fs::symlink(&root, &link).unwrap();
    let o = verify(&[&link], &[]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
}

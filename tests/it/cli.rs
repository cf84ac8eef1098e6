//! What every command shares: one rule per name across the products, and exit codes that hold
//! even when the terminal goes away.

use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_appgear");

fn first_error_line(stderr: &[u8]) -> String {
    String::from_utf8_lossy(stderr)
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_default()
        .to_string()
}

/// A 53-character workspace id: `ws-<id>-factory` would have 64 characters, one over the DNS
/// label limit. Topology A's `.env`, `gitops render` and `multiplayer serve` refuse it alike.
#[test]
fn a_53_character_workspace_id_is_refused_by_every_product_with_the_same_message() {
    let id = "a".repeat(53);
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");

    let init = Command::new(BIN)
        .args(["init", "--home"])
        .arg(&home)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let config = Command::new(BIN)
        .args(["config", "set", "FACTORY_WORKSPACE_ID", &id, "--home"])
        .arg(&home)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let render = Command::new(BIN)
        .args(["gitops", "render", "--out"])
        .arg(tmp.path().join("tree"))
        .args(["--cluster", "ag-br-core-dev"])
        .args([
            "--repo",
            "https://git.example.com/appgear-gitops-suites.git",
        ])
        .args(["--workspace", &id, "--tenant", "acme"])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let secret = tmp.path().join("secret");
    std::fs::write(&secret, "a-secret-of-at-least-thirty-two-bytes!!").unwrap();
    let serve = Command::new(BIN)
        .args(["multiplayer", "serve", "--workspace", &id])
        .args(["--redis", "redis://127.0.0.1:1"])
        .arg("--token-secret-file")
        .arg(&secret)
        .env("NO_COLOR", "1")
        .env_remove("WORKSPACE_ID")
        .output()
        .unwrap();

    let want = format!(
        "workspace id \"{id}\" is too long: namespace ws-{id}-factory would have 64 characters, the limit is 63"
    );
    for (what, out) in [
        ("config set", &config),
        ("gitops render", &render),
        ("multiplayer serve", &serve),
    ] {
        assert_eq!(
            out.status.code(),
            Some(2),
            "{what}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let line = first_error_line(&out.stderr);
        assert!(line.contains(&want), "{what} says: {line}");
    }
    // 52 characters is the longest id every product accepts.
    let ok = Command::new(BIN)
        .args([
            "config",
            "set",
            "FACTORY_WORKSPACE_ID",
            &"a".repeat(52),
            "--home",
        ])
        .arg(&home)
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
}

/// `appgear … 2>&1 | head -1` and friends: when the reader of stderr has gone, the command still
/// ends with its documented exit code, not a panic (101).
#[test]
fn a_closed_output_pipe_keeps_the_documented_exit_code() {
    let tmp = tempfile::tempdir().unwrap();
    for (args, code) in [
        (vec!["verify", "/nonexistent/appgear-tree"], 2),
        (
            vec![
                "gitops",
                "render",
                "--out",
                "x",
                "--cluster",
                "BAD",
                "--repo",
                "r",
            ],
            2,
        ),
    ] {
        let mut child = Command::new(BIN)
            .args(&args)
            .current_dir(tmp.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Close both read ends before the command has a chance to write.
        drop(child.stdout.take());
        drop(child.stderr.take());
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(code), "appgear {args:?}");
    }
}

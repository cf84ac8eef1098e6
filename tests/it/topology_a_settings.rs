//! `.env` settings as a user edits them: values are checked against each other and with the one
//! rule for names every product shares, code-server runs as the user who made the home, and what
//! `config set` writes reads the same in appgear and in Debian's docker-compose 1.29.

use crate::common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

struct Home {
    dir: tempfile::TempDir,
    home: PathBuf,
}

impl Home {
    /// An initialised home with its own project name and images no registry serves, so that
    /// nothing here can start or pull anything.
    fn new(name: &str) -> Home {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        let h = Home { dir, home };
        h.ok(&["init"]);
        let project = format!("agt-{name}-{}", std::process::id());
        h.ok(&["config", "set", "COMPOSE_PROJECT_NAME", &project]);
        h.ok(&[
            "config",
            "set",
            "TRAEFIK_IMAGE",
            "registry.invalid/traefik:v1",
        ]);
        h.ok(&[
            "config",
            "set",
            "CODE_SERVER_IMAGE",
            "registry.invalid/cs:v1",
        ]);
        h
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.arg("--home")
            .arg(&self.home)
            .args(args)
            .env("NO_COLOR", "1");
        c
    }

    fn appgear(&self, args: &[&str]) -> Output {
        run(&mut self.cmd(args))
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.appgear(args);
        assert!(out.status.success(), "{args:?}: {}", text(&out).1);
        text(&out).0
    }

    fn env(&self) -> String {
        std::fs::read_to_string(self.home.join(".env")).unwrap()
    }

    /// Change one line of `.env` by hand, as a user with an editor would.
    fn edit_env(&self, key: &str, value: &str) {
        let text: String = self
            .env()
            .lines()
            .map(|l| {
                if l.starts_with(&format!("{key}=")) {
                    format!("{key}={value}\n")
                } else {
                    format!("{l}\n")
                }
            })
            .collect();
        std::fs::write(self.home.join(".env"), text).unwrap();
    }
}

fn first_error(out: &Output) -> String {
    text(out)
        .1
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_default()
        .to_string()
}

#[test]
fn code_server_runs_as_the_user_who_made_the_home_and_as_1000_for_root() {
    let root_home = Home::new("uid-root");
    let env = root_home.env();
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        let uid = unsafe { libc::geteuid() };
        assert!(env.contains(&format!("CDE_UID={uid}\n")), "{env}");
        return;
    }
    assert!(
        env.contains("CDE_UID=1000\n") && env.contains("CDE_GID=1000\n"),
        "{env}"
    );

    // The same as an ordinary user (uid 4321) in a home of their own.
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir(&home).unwrap();
    std::os::unix::fs::chown(&home, Some(4321), Some(4322)).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = run(Command::new("setpriv")
        .args([
            "--reuid=4321",
            "--regid=4322",
            "--clear-groups",
            bin(),
            "--home",
        ])
        .arg(&home)
        .arg("init")
        .env("NO_COLOR", "1"));
    assert!(out.status.success(), "{}", text(&out).1);
    let env = std::fs::read_to_string(home.join(".env")).unwrap();
    assert!(env.contains("CDE_UID=4321\n"), "{env}");
    assert!(env.contains("CDE_GID=4322\n"), "{env}");
    let (_, err) = text(&out);
    assert!(
        !err.contains("warning"),
        "the user's own folder needs no chown: {err}"
    );
}

#[test]
fn one_port_for_both_https_and_http_is_refused_by_config_set_up_and_doctor() {
    let h = Home::new("sameport");
    let https = h.ok(&["config", "get", "FACTORY_VSCODE_PORT"]);
    let https = https.trim();
    let before = h.env();
    let out = h.appgear(&["config", "set", "FACTORY_HTTP_PORT", https]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out).1);
    let line = first_error(&out);
    assert!(
        line.contains("FACTORY_HTTP_PORT") && line.contains("FACTORY_VSCODE_PORT"),
        "names both keys: {line}"
    );
    assert!(text(&out).1.contains("hint:"));
    assert_eq!(h.env(), before, "nothing was written");

    // Set by hand: up refuses before touching anything, doctor reports it.
    h.edit_env("FACTORY_HTTP_PORT", https);
    let out = h.appgear(&["up"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out).1);
    assert!(
        first_error(&out).contains("FACTORY_HTTP_PORT"),
        "{}",
        text(&out).1
    );
    let out = h.appgear(&["doctor", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_str(&text(&out).0).unwrap();
    let failed: Vec<String> = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["status"] == "fail")
        .map(|f| f["detail"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(
        failed
            .iter()
            .any(|d| d.contains("FACTORY_HTTP_PORT") && d.contains("FACTORY_VSCODE_PORT")),
        "{failed:?}"
    );
}

#[test]
fn a_53_character_workspace_id_is_refused_with_the_one_rule_everywhere() {
    let h = Home::new("wsid");
    let id = "a".repeat(53);
    let rule = format!(
        "workspace id \"{id}\" is too long: namespace ws-{id}-factory would have 64 characters, the limit is 63"
    );
    let out = h.appgear(&["config", "set", "FACTORY_WORKSPACE_ID", &id]);
    assert_eq!(out.status.code(), Some(2));
    let line = first_error(&out);
    assert!(
        line.contains(&rule) && line.contains("FACTORY_WORKSPACE_ID"),
        "{line}"
    );

    h.edit_env("FACTORY_WORKSPACE_ID", &id);
    let out = h.appgear(&["up"]);
    assert_eq!(out.status.code(), Some(2));
    let line = first_error(&out);
    assert!(line.contains(&rule), "{line}");
    assert!(
        line.contains("FACTORY_WORKSPACE_ID") && line.contains(".env"),
        "{line}"
    );

    // From the shell, as Compose reads it: same rule, and the hint says where it came from.
    h.edit_env("FACTORY_WORKSPACE_ID", "local");
    let out = run(h.cmd(&["up", "--dry-run"]).env("FACTORY_WORKSPACE_ID", &id));
    assert_eq!(out.status.code(), Some(2));
    let line = first_error(&out);
    assert!(line.contains(&rule) && line.contains("shell"), "{line}");
    let out = h.appgear(&["config", "set", "FACTORY_TENANT_ID", "global"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(first_error(&out).contains("reserved"), "{}", text(&out).1);
}

/// What docker-compose 1.29 reads for `KEY` from the home's `.env`.
fn compose_reads(home: &Path, keys: &[String]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("probe.yml");
    let mut yml = "services:\n  probe:\n    image: x:1\n    labels:\n".to_string();
    for (i, k) in keys.iter().enumerate() {
        yml.push_str(&format!("      v{i}: \"${{{k}}}\"\n"));
    }
    std::fs::write(&file, yml).unwrap();
    let out = run(Command::new("docker-compose")
        .args(["-p", "probe", "--project-directory"])
        .arg(home)
        .arg("-f")
        .arg(&file)
        .arg("config"));
    assert!(
        out.status.success(),
        "docker-compose config: {}",
        text(&out).1
    );
    let python = std::env::var("APPGEAR_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = "import sys, yaml, json\nd = yaml.safe_load(sys.stdin)\nprint(json.dumps(d['services']['probe']['labels']))";
    let mut child = Command::new(python)
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(&out.stdout).unwrap();
    let parsed = child.wait_with_output().unwrap();
    let labels: serde_json::Value = serde_json::from_slice(&parsed.stdout).unwrap();
    // `config` writes a literal `$` as `$$`.
    (0..keys.len())
        .map(|i| labels[format!("v{i}")].as_str().unwrap().replace("$$", "$"))
        .collect()
}

#[test]
fn what_config_set_writes_reads_the_same_in_docker_compose_1_29() {
    let h = Home::new("quoting");
    let values = [
        "two words",
        "a\"b",
        "back\\slash",
        "two\\\\backslashes",
        "it's",
        "$HOME stays literal",
        "x#y and # z",
        "ünïcödé",
        " leading space",
    ];
    let keys: Vec<String> = (0..values.len()).map(|i| format!("MY_VALUE_{i}")).collect();
    for (k, v) in keys.iter().zip(values) {
        h.ok(&["config", "set", k, v]);
        assert_eq!(
            h.ok(&["config", "get", k]).strip_suffix('\n'),
            Some(v),
            "appgear reads {v:?}"
        );
    }
    assert_eq!(
        compose_reads(&h.home, &keys),
        values,
        "docker-compose 1.29 reads the same"
    );

    // No form reads the same in both for a value with both ' and $: refused, nothing written,
    // and a secret is never echoed.
    let before = h.env();
    for (k, v) in [
        ("MY_VALUE", "it's $HOME"),
        ("MY_VALUE", "ends with\\"),
        ("MY_VALUE", "${NOT_A_VARIABLE}"),
        ("CODE_SERVER_PASSWORD", "it's-a-$ecret-password"),
    ] {
        let out = h.appgear(&["config", "set", k, v]);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out).1);
        let (_, err) = text(&out);
        assert!(err.contains("hint:"), "{err}");
        assert!(first_error(&out).contains(k), "{err}");
        if k == "CODE_SERVER_PASSWORD" {
            assert!(!err.contains(v), "the secret was printed: {err}");
        }
    }
    assert_eq!(h.env(), before);
    let _ = &h.dir;
}

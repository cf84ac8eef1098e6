//! The files `appgear init` writes, checked against the schemas of the tools that read them:
//! the home's `docker-compose.yml` against the Compose specification's schema, Traefik's static
//! and dynamic (file provider) configuration against Traefik v3's schemas
//! (`../shared/schemas`), and the compose file read by Debian's docker-compose 1.29.
//!
//! Traefik cannot run on these machines, so its schemas are how its configuration is checked.
//! Each schema check also runs on a copy with one typo, to show the check can fail.
//!
//! Tools: APPGEAR_TEST_PYTHON (default `python3`, with jsonschema and pyyaml), `docker-compose`
//! on PATH (Debian's package), APPGEAR_SHARED (default `../shared` next to the crate).
//! A missing tool fails the test with how to install it.

use crate::common::shared;
use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_appgear");

fn schema(name: &str) -> PathBuf {
    let p = shared().join("schemas").join(name);
    assert!(
        p.is_file(),
        "{} not found: set APPGEAR_SHARED to the shared folder that holds schemas/",
        p.display()
    );
    p
}

/// A fresh home made by the real binary, as a user gets it.
fn init_home() -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    let o = Command::new(BIN)
        .arg("--home")
        .arg(home.path())
        .arg("init")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "appgear init failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    home
}

/// The outcome of `tests/support/validate_yaml.py`: whether the file is valid, and what it said.
fn validate(schema: &Path, file: &Path, compose_env: Option<&Path>) -> (bool, String) {
    let python = std::env::var_os("APPGEAR_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("python3"));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/validate_yaml.py");
    let mut cmd = Command::new(&python);
    cmd.arg(&script).arg(schema).arg(file);
    if let Some(env) = compose_env {
        cmd.arg("--compose-env").arg(env);
    }
    let o = cmd.output().unwrap_or_else(|e| {
        panic!(
            "cannot run {}: {e}: install Python 3 and set APPGEAR_TEST_PYTHON",
            python.display()
        )
    });
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !err.contains("ModuleNotFoundError"),
        "{} lacks jsonschema or pyyaml: pip install jsonschema pyyaml (in a venv; scripts/test makes one) and set APPGEAR_TEST_PYTHON to its python\n{err}",
        python.display()
    );
    match o.status.code() {
        Some(0) => (true, out),
        Some(1) => (false, out),
        _ => panic!(
            "validate_yaml.py could not check {}:\n{out}{err}",
            file.display()
        ),
    }
}

/// A copy of `file` next to it with `from` replaced once by `to`: one defect the schema must catch.
fn with_typo(file: &Path, from: &str, to: &str) -> PathBuf {
    let text = std::fs::read_to_string(file).unwrap();
    assert!(
        text.contains(from),
        "{} no longer contains {from:?}: update this test's typo",
        file.display()
    );
    let copy = file.with_extension("typo.yml");
    std::fs::write(&copy, text.replacen(from, to, 1)).unwrap();
    copy
}

fn assert_valid_and_typo_caught(
    schema: &Path,
    file: &Path,
    env: Option<&Path>,
    typo: (&str, &str),
    key: &str,
) {
    let (ok, out) = validate(schema, file, env);
    assert!(
        ok,
        "{} does not match {}:\n{out}",
        file.display(),
        schema.display()
    );

    let broken = with_typo(file, typo.0, typo.1);
    let (ok, out) = validate(schema, &broken, env);
    assert!(
        !ok,
        "the schema check accepted a file with the typo {:?}",
        typo.1
    );
    assert!(out.contains(key), "the error does not name {key:?}:\n{out}");
}

// Compose validates a file after interpolating it (compose-go loads the YAML, interpolates the
// string values, then checks the schema; docker-compose 1.x did the same), so the file checked
// here is the interpolated one, with the values of the home's own .env. The interpolation is a
// small independent one in validate_yaml.py rather than `docker-compose config`, whose output is a
// normalised rewrite (long port syntax, absolute paths, defaults filled in) — checking that would
// check docker-compose's rewrite, not our file — and which rejects two keys newer than 1.29.
#[test]
fn compose_file_matches_the_compose_specification_once_interpolated() {
    let home = init_home();
    let file = home.path().join("docker-compose.yml");
    assert_valid_and_typo_caught(
        &schema("compose-spec.json"),
        &file,
        Some(&home.path().join(".env")),
        (
            "    restart: unless-stopped",
            "    restart: unless-stopped\n    restrat: always",
        ),
        "restrat",
    );
}

#[test]
fn traefik_static_config_matches_traefik_v3_schema() {
    let home = init_home();
    let file = home.path().join("config/traefik/traefik.yml");
    assert_valid_and_typo_caught(
        &schema("traefik/traefik-v3.json"),
        &file,
        None,
        ("address: \":8080\"", "adress: \":8080\""),
        "adress",
    );
}

#[test]
fn traefik_dynamic_config_matches_the_file_provider_schema() {
    let home = init_home();
    let file = home.path().join("config/traefik/dynamic/factory.yml");
    assert_valid_and_typo_caught(
        &schema("traefik/traefik-v3-file-provider.json"),
        &file,
        None,
        ("rule: \"PathPrefix", "rules: \"PathPrefix"),
        "rules",
    );
}

/// `docker-compose config` of Debian's docker-compose 1.29 on `file`: (accepted, its output).
fn compose_1_29_config(home: &Path, file: &Path) -> (bool, String) {
    let o = Command::new("docker-compose")
        .args(["-p", "appgear-schemas-test", "--project-directory"])
        .arg(home)
        .arg("-f")
        .arg(file)
        .arg("config")
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run docker-compose: {e}: apt-get install docker-compose (Debian's 1.29)")
        });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (o.status.success(), text)
}

// The file avoids keys that Debian's widely installed docker-compose 1.29 does not know (the
// top-level `name:`, healthcheck `start_interval`), so the same home works with every Compose.
#[test]
fn docker_compose_1_29_reads_the_file_with_the_homes_env() {
    let home = init_home();
    let file = home.path().join("docker-compose.yml");
    let (accepted, out) = compose_1_29_config(home.path(), &file);
    assert!(accepted, "docker-compose 1.29 rejects the file:\n{out}");

    // What it read is what .env says.
    let env = std::fs::read_to_string(home.path().join(".env")).unwrap();
    let value = |key: &str| {
        env.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("{key} missing from .env"))
            .to_string()
    };
    for key in ["TRAEFIK_IMAGE", "CODE_SERVER_IMAGE"] {
        assert!(
            out.contains(&format!("image: {}", value(key))),
            "docker-compose did not read {key} from .env:\n{out}"
        );
    }
    let published = format!(
        "{}:{}:8443",
        value("FACTORY_BIND_ADDRESS"),
        value("FACTORY_VSCODE_PORT")
    );
    assert!(
        out.contains(&published),
        "docker-compose did not publish FACTORY_VSCODE_PORT as {published}:\n{out}"
    );
}

//! The home folder when someone else owns it: `sudo appgear` on a user's home must never follow a
//! link, chown, truncate or overwrite anything outside it, and a `.env` that is not a plain text
//! file is refused in one line instead of hanging or misreporting. No Docker needed.

use crate::common;

use common::*;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

struct Home {
    _dir: tempfile::TempDir,
    outside: PathBuf,
    home: PathBuf,
}

impl Home {
    /// An initialised home, plus a folder outside it standing for the rest of the system.
    fn new() -> Home {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        let outside = dir.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        let h = Home {
            outside,
            home,
            _dir: dir,
        };
        let out = h.appgear(&["init"]);
        assert!(out.status.success(), "{}", text(&out).1);
        h
    }

    fn appgear(&self, args: &[&str]) -> Output {
        run(Command::new(bin())
            .arg("--home")
            .arg(&self.home)
            .args(args)
            .env("NO_COLOR", "1"))
    }

    /// A file outside the home that must survive: its content and mode are checked afterwards.
    fn precious(&self, name: &str) -> PathBuf {
        let p = self.outside.join(name);
        std::fs::write(&p, "precious\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        p
    }

    /// Replace `rel` in the home by a symbolic link to `target`.
    fn plant_link(&self, rel: &str, target: &Path) {
        let p = self.home.join(rel);
        if p.is_dir() && !p.is_symlink() {
            std::fs::remove_dir_all(&p).unwrap();
        } else {
            let _ = std::fs::remove_file(&p);
        }
        std::os::unix::fs::symlink(target, &p).unwrap();
    }
}

fn assert_untouched(p: &Path) {
    assert_eq!(
        std::fs::read_to_string(p).unwrap(),
        "precious\n",
        "{}",
        p.display()
    );
    let meta = std::fs::metadata(p).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o644, "{}", p.display());
    // SAFETY: geteuid has no preconditions.
    assert_eq!(meta.uid(), unsafe { libc::geteuid() }, "{}", p.display());
}

/// Exit 2, and the first error line names the path that was refused.
fn assert_refused(out: &Output, names: &str) {
    let (_, err) = text(out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    let line = err
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_default();
    assert!(line.contains(names), "names {names}: {err}");
    assert!(err.contains("hint:"), "{err}");
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn a_lock_file_planted_as_a_link_is_refused_and_its_target_is_untouched() {
    let h = Home::new();
    let shadow = h.precious("shadow");
    h.plant_link(".appgear.lock", &shadow);
    let out = h.appgear(&["init"]);
    assert_refused(&out, ".appgear.lock");
    assert_untouched(&shadow);
    // A hard link is no better: the file is not appgear's.
    std::fs::remove_file(h.home.join(".appgear.lock")).unwrap();
    std::fs::hard_link(&shadow, h.home.join(".appgear.lock")).unwrap();
    let out = h.appgear(&["config", "set", "FACTORY_DOMAIN", "x.test"]);
    assert_refused(&out, ".appgear.lock");
    assert_untouched(&shadow);
}

#[test]
fn a_foreign_file_in_place_of_the_lock_is_not_truncated() {
    let h = Home::new();
    std::fs::remove_file(h.home.join(".appgear.lock")).unwrap();
    std::fs::write(h.home.join(".appgear.lock"), "my notes\n").unwrap();
    let out = h.appgear(&["init"]);
    assert_refused(&out, ".appgear.lock");
    assert_eq!(
        std::fs::read_to_string(h.home.join(".appgear.lock")).unwrap(),
        "my notes\n"
    );
}

#[test]
fn init_as_root_does_not_hand_a_linked_project_folder_to_the_cde_user() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let h = Home::new();
    let etc = h.outside.join("etc");
    std::fs::create_dir(&etc).unwrap();
    h.plant_link("config/cde", &etc);
    for cmd in [&["init"][..], &["up", "--dry-run"][..]] {
        let out = h.appgear(cmd);
        if cmd[0] == "init" {
            assert_refused(&out, "config/cde");
        }
        assert_eq!(
            std::fs::metadata(&etc).unwrap().uid(),
            0,
            "{cmd:?} chowned the target"
        );
    }
}

#[test]
fn links_where_appgear_writes_its_own_files_are_refused() {
    // Files appgear writes or changes, and the folders that hold them.
    for rel in [
        ".env",
        ".appgear-generated",
        "docker-compose.yml",
        "config/traefik",
        "config/traefik/dynamic",
        "config/tls",
        "config/tls/tls.key",
        "config/tls/ca.key",
        "config/tls/tls.info",
        "data",
        "logs",
        "logs/traefik",
    ] {
        let h = Home::new();
        let target = if h.home.join(rel).is_dir() {
            let d = h.outside.join("dir");
            std::fs::create_dir(&d).unwrap();
            d
        } else {
            h.precious("file")
        };
        if rel == "config/tls/tls.info" || rel == "config/tls/tls.key" {
            // Make the certificate due for re-issue, so init must write these.
            h.appgear(&["config", "set", "FACTORY_DOMAIN", "other.test"]);
        }
        h.plant_link(rel, &target);
        let out = h.appgear(&["init"]);
        assert_refused(&out, rel);
        if target.is_dir() {
            assert_eq!(
                std::fs::read_dir(&target).unwrap().count(),
                0,
                "{rel}: something was written through the link"
            );
        } else {
            assert_untouched(&target);
        }
    }
}

#[test]
fn a_leftover_temporary_file_that_is_a_link_is_not_written_through() {
    let h = Home::new();
    let shadow = h.precious("shadow");
    std::os::unix::fs::symlink(&shadow, h.home.join(".env.appgear-tmp")).unwrap();
    let out = h.appgear(&["config", "set", "FACTORY_DOMAIN", "x.test"]);
    assert!(out.status.success(), "{}", text(&out).1);
    assert_untouched(&shadow);
    let got = h.appgear(&["config", "get", "FACTORY_DOMAIN"]);
    assert_eq!(text(&got).0.trim(), "x.test");
}

/// Run with a deadline: a command that hangs is killed and reported.
fn run_within(mut cmd: Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} still ran after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn a_fifo_in_place_of_env_is_refused_at_once() {
    let h = Home::new();
    std::fs::remove_file(h.home.join(".env")).unwrap();
    let fifo = h.home.join(".env");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    for args in [
        &["config", "get", "FACTORY_DOMAIN"][..],
        &["init"][..],
        &["up", "--dry-run"][..],
    ] {
        let mut cmd = Command::new(bin());
        cmd.arg("--home")
            .arg(&h.home)
            .args(args)
            .env("NO_COLOR", "1");
        let out = run_within(cmd, Duration::from_secs(10));
        assert_refused(&out, ".env");
    }
}

#[test]
fn an_env_that_is_not_utf8_is_bad_input_naming_the_file() {
    let h = Home::new();
    let env = h.home.join(".env");
    let mut bytes = std::fs::read(&env).unwrap();
    bytes.extend_from_slice(b"MY_KEY=caf\xe9\n");
    std::fs::write(&env, &bytes).unwrap();
    let out = h.appgear(&["config", "get", "FACTORY_DOMAIN"]);
    assert_refused(&out, ".env");
    let (_, err) = text(&out);
    assert!(err.contains("UTF-8"), "{err}");
    assert!(!err.contains("permissions"), "{err}");
    assert_eq!(std::fs::read(&env).unwrap(), bytes, "left as it was");
}

#[test]
fn an_env_that_starts_with_a_byte_order_mark_is_read_as_compose_reads_it() {
    let h = Home::new();
    let env = h.home.join(".env");
    let mut text_with_bom = "\u{feff}".to_string();
    text_with_bom.push_str(&std::fs::read_to_string(&env).unwrap());
    std::fs::write(&env, &text_with_bom).unwrap();
    let out = h.appgear(&["config", "get", "COMPOSE_PROJECT_NAME"]);
    assert!(out.status.success(), "{}", text(&out).1);
    assert_eq!(text(&out).0.trim(), "appgear");
    let out = h.appgear(&["config", "set", "FACTORY_DOMAIN", "bom.test"]);
    assert!(out.status.success(), "{}", text(&out).1);
    let out = h.appgear(&["up", "--dry-run"]);
    let (_, err) = text(&out);
    assert!(!err.contains('\u{feff}'), "{err}");
}

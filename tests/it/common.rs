//! Helpers for tests that run the real `appgear` binary against the real Docker Engine: a home
//! with its own project name and ports, and the local stand-in images (no registry is reachable).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_appgear")
}

/// Run a command and return its output; panics only when it cannot be started at all.
pub fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

pub fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// `docker ARGS`, which must succeed; returns stdout trimmed.
pub fn docker(args: &[&str]) -> String {
    let out = run(Command::new("docker").args(args));
    assert!(
        out.status.success(),
        "docker {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The stand-in images, built once per test run with a tag that changes with their recipe, so a
/// machine with leftovers from an older recipe never uses stale images.
pub fn standin_images() -> &'static (String, String) {
    static IMAGES: OnceLock<(String, String)> = OnceLock::new();
    IMAGES.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/standin/build.sh");
        let recipe = std::fs::read(&script).expect("tests/standin/build.sh exists");
        let tag = format!("t{:x}", fnv(&recipe));
        let traefik = format!("appgear-standin/traefik:{tag}");
        let code_server = format!("appgear-standin/code-server:{tag}");
        let have = |img: &str| {
            run(Command::new("docker").args(["image", "inspect", img]))
                .status
                .success()
        };
        if !have(&traefik) || !have(&code_server) {
            let out = run(Command::new("sh").arg(&script).arg(&tag));
            assert!(
                out.status.success(),
                "building stand-in images failed (needs a running Docker and busybox-static): {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        (traefik, code_server)
    })
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ *b as u64).wrapping_mul(0x100000001b3)
    })
}

/// A free TCP port on 127.0.0.1 right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A home with its own project and ports, pointed at the stand-in images. Removed with its
/// containers, network and volumes when dropped.
pub struct Stack {
    pub dir: tempfile::TempDir,
    pub home: PathBuf,
    pub project: String,
    pub https_port: u16,
    pub http_port: u16,
}

impl Stack {
    pub fn new(name: &str) -> Stack {
        let (traefik, code_server) = standin_images().clone();
        let dir = tempfile::tempdir().expect("temp dir");
        let home = dir.path().join("home");
        let project = format!("agt-{name}-{}", std::process::id());
        let stack = Stack {
            dir,
            home,
            project,
            https_port: free_port(),
            http_port: free_port(),
        };
        stack.ok(&["init"]);
        for (k, v) in [
            ("COMPOSE_PROJECT_NAME", stack.project.clone()),
            ("TRAEFIK_IMAGE", traefik),
            ("CODE_SERVER_IMAGE", code_server),
            ("FACTORY_VSCODE_PORT", stack.https_port.to_string()),
            ("FACTORY_HTTP_PORT", stack.http_port.to_string()),
        ] {
            stack.ok(&["config", "set", k, &v]);
        }
        stack
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.arg("--home")
            .arg(&self.home)
            .args(args)
            .env("NO_COLOR", "1");
        c
    }

    pub fn appgear(&self, args: &[&str]) -> Output {
        run(&mut self.cmd(args))
    }

    /// Run and require exit 0; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.appgear(args);
        let (stdout, stderr) = text(&out);
        assert!(
            out.status.success(),
            "appgear {args:?} exited {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
            out.status.code()
        );
        stdout
    }

    pub fn container(&self, service: &str) -> String {
        format!("{}-{service}-1", self.project)
    }

    /// Container id of a service, or None when it has no container.
    pub fn id(&self, service: &str) -> Option<String> {
        let out = run(Command::new("docker").args([
            "inspect",
            "-f",
            "{{.Id}}",
            &self.container(service),
        ]));
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    pub fn volumes(&self) -> Vec<String> {
        docker(&[
            "volume",
            "ls",
            "-q",
            "--filter",
            &format!("label=com.docker.compose.project={}", self.project),
        ])
        .lines()
        .map(str::to_string)
        .collect()
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = self.appgear(&["down", "--purge", "--yes"]);
        // Leftovers of a failed test (down may have failed too): anything with our project label.
        let label = format!("label=com.docker.compose.project={}", self.project);
        for (list, remove) in [
            (vec!["ps", "-aq"], vec!["rm", "-f"]),
            (vec!["network", "ls", "-q"], vec!["network", "rm"]),
            (vec!["volume", "ls", "-q"], vec!["volume", "rm", "-f"]),
        ] {
            let ids = run(Command::new("docker")
                .args(&list)
                .args(["--filter", &label]));
            for id in String::from_utf8_lossy(&ids.stdout).split_whitespace() {
                let _ = run(Command::new("docker").args(&remove).arg(id));
            }
        }
    }
}

/// An extra tag of an image, removed when dropped (also when the test fails).
pub struct Tag(pub String);

impl Tag {
    pub fn new(image: &str, suffix: &str) -> Tag {
        let (repo, tag) = image.rsplit_once(':').unwrap_or((image, "latest"));
        let name = format!("{repo}:{tag}-{suffix}-{}", std::process::id());
        docker(&["tag", image, &name]);
        Tag(name)
    }
}

impl Drop for Tag {
    fn drop(&mut self) {
        let _ = run(Command::new("docker").args(["rmi", &self.0]));
    }
}

/// The shared folder beside the crate (schemas, tools, vendored upstream manifests), or
/// APPGEAR_SHARED. Read only: the tests never write into it.
pub fn shared() -> PathBuf {
    std::env::var_os("APPGEAR_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared"))
}

/// Start `appgear multiplayer serve --listen 127.0.0.1:0 …` as `cmd` says (its arguments and
/// environment) and wait, at most 20 s, for the address it prints on stderr.
pub fn spawn_gateway(cmd: &mut Command) -> (std::process::Child, String) {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let mut child = cmd
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start appgear multiplayer serve");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let addr = loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let line = lines
            .recv_timeout(left)
            .expect("the gateway did not start in 20 s");
        if let Some(rest) = line.split("listening on ").nth(1) {
            break rest.split(',').next().unwrap_or_default().to_string();
        }
    };
    (child, addr)
}

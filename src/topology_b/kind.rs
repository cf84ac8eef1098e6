//! The `kind` command line: create, list and delete the cluster, load an image archive into its
//! node, and its kubeconfig. kind's own CLI is the supported interface (its Go packages are not
//! a stable API), so appgear runs the binary on PATH, as `ctlptl` and `abctl` do.
//!
//! The kubeconfig goes to the home (`--kubeconfig <home>/config/kind/kubeconfig`): kind would
//! otherwise merge the cluster into `~/.kube/config` and switch the user's current context,
//! which may point at a production cluster. `export` merges it there only when asked
//! (`cluster up --merge-kubeconfig`).

use crate::core::error::{Error, Kind, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The kubeconfig kind writes for the cluster, relative to the home.
pub const KUBECONFIG: &str = "config/kind/kubeconfig";

/// Where kind is documented to be installed from, for hints.
const INSTALL: &str = "https://kind.sigs.k8s.io/docs/user/quick-start/#installation (v0.33.0)";

/// The first `name` on PATH that is an executable file.
pub fn which(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// A program's output for `args`, or `None` when it is not on PATH or fails: what preflight
/// reads versions from.
pub fn version_of(program: &str, args: &[&str]) -> Option<String> {
    let p = which(program)?;
    let out = Command::new(p).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The kind binary found on PATH.
#[derive(Debug, Clone)]
pub struct KindCli {
    program: PathBuf,
}

impl KindCli {
    /// kind on PATH, or the not-ready error that says how to install it.
    pub fn find() -> Result<KindCli> {
        match which("kind") {
            Some(program) => Ok(KindCli { program }),
            None => Err(Error::not_ready(
                "kind is not on PATH; Topology B runs the suite on a kind cluster",
            )
            .hint(format!("install kind: {INSTALL}"))),
        }
    }

    fn run(&self, args: &[&str], what: &str) -> Result<Output> {
        let out = Command::new(&self.program)
            .args(args)
            .output()
            .map_err(|e| {
                Error::new(
                    Kind::NotReady,
                    format!("cannot run {}: {e}", self.program.display()),
                )
                .hint(format!(
                    "check that kind works: `kind version`; install: {INSTALL}"
                ))
                .cause(e)
            })?;
        if out.status.success() {
            return Ok(out);
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<String> = stderr.lines().map(str::to_string).collect();
        let last = lines
            .iter()
            .rev()
            .find(|l| !l.trim().is_empty())
            .cloned()
            .unwrap_or_default();
        let skip = lines.len().saturating_sub(20);
        Err(Error::not_ready(format!(
            "kind could not {what}: {}",
            crate::core::quote::cut(last.trim(), 300)
        ))
        .hint(format!(
            "kind's last lines are below; the command was `kind {}`",
            args.join(" ")
        ))
        .detail(lines[skip..].to_vec()))
    }

    /// The clusters kind knows (`kind get clusters`).
    pub fn clusters(&self) -> Result<Vec<String>> {
        let out = self.run(&["get", "clusters"], "list its clusters")?;
        // "No kind clusters found." goes to stderr; stdout has one name a line.
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect())
    }

    /// `kind create cluster`, with the config file and kubeconfig in the home. kind waits for
    /// nothing here (`--wait 0s`): appgear's stages wait for what they need, with reports.
    pub fn create(&self, name: &str, config: &Path, kubeconfig: &Path) -> Result<()> {
        let config = config.to_string_lossy();
        let kubeconfig = kubeconfig.to_string_lossy();
        self.run(
            &[
                "create",
                "cluster",
                "--name",
                name,
                "--config",
                &config,
                "--kubeconfig",
                &kubeconfig,
                "--wait",
                "0s",
            ],
            "create the cluster",
        )
        .map(drop)
    }

    /// `kind delete cluster`, removing its context from the home's kubeconfig only.
    pub fn delete(&self, name: &str, kubeconfig: &Path) -> Result<()> {
        let kubeconfig = kubeconfig.to_string_lossy();
        self.run(
            &[
                "delete",
                "cluster",
                "--name",
                name,
                "--kubeconfig",
                &kubeconfig,
            ],
            "delete the cluster",
        )
        .map(drop)
    }

    /// `kind load image-archive`: an image built or saved on this machine into the node, with no
    /// registry.
    pub fn load_archive(&self, name: &str, archive: &Path) -> Result<()> {
        let archive = archive.to_string_lossy();
        self.run(
            &["load", "image-archive", &archive, "--name", name],
            "load the image archive into the node",
        )
        .map(drop)
    }

    /// `kind load docker-image`: images this machine's Docker already holds (from
    /// `appgear images load`, or pulled before) into the node, so the cluster does not pull them.
    /// kind skips an image the node already has, so a re-run costs little.
    pub fn load_docker_images(&self, name: &str, images: &[String]) -> Result<()> {
        if images.is_empty() {
            return Ok(());
        }
        let mut args = vec!["load", "docker-image"];
        args.extend(images.iter().map(String::as_str));
        args.extend(["--name", name]);
        self.run(&args, "load this machine's images into the node")
            .map(drop)
    }

    /// The cluster's kubeconfig as kind gives it (`kind get kubeconfig`).
    pub fn kubeconfig(&self, name: &str) -> Result<String> {
        let out = self.run(
            &["get", "kubeconfig", "--name", name],
            "give the cluster's kubeconfig",
        )?;
        String::from_utf8(out.stdout)
            .map_err(|_| Error::internal("kind gave a kubeconfig that is not UTF-8"))
    }

    /// Merge the cluster into the user's kubeconfig (`$KUBECONFIG` or `~/.kube/config`) and make
    /// it current: only for `--merge-kubeconfig`.
    pub fn export_kubeconfig(&self, name: &str) -> Result<()> {
        self.run(
            &["export", "kubeconfig", "--name", name],
            "merge the cluster into your kubeconfig",
        )
        .map(drop)
    }
}

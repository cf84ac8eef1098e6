//! Where a recipe runs: `process` (a child process group in the worker's own container, as
//! the Kubernetes Job runs it) or `docker` (a container of the target's image through the
//! Docker Engine, for Topology A and a machine with Docker). The worker's flow (claim,
//! heartbeat, cancel, outcome, upload) is one piece of code; only the run and the place the
//! outputs land differ.

use crate::builder::config::Target;
use crate::builder::queue::Queue;
use crate::builder::worker::container::labels;
use crate::builder::worker::control::Control;
use crate::builder::worker::docker::{self, DockerRun};
use crate::builder::worker::logs::LogSink;
use crate::builder::worker::outcome::Exit;
use crate::builder::worker::process::{self, Recipe};
use crate::builder::worker::unpack::Caps;
use crate::core::error::{Error, Result};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::watch;

/// The executor named on the command line (`--executor`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecutorKind {
    Process,
    Docker,
}

impl ExecutorKind {
    pub fn parse(s: &str) -> Result<ExecutorKind> {
        match s {
            "process" => Ok(ExecutorKind::Process),
            "docker" => Ok(ExecutorKind::Docker),
            other => Err(Error::bad_input(format!("executor {other:?} is not known"))
                .hint("use --executor process (in the toolchain image, as the ScaledJob runs it) or --executor docker (through the Docker Engine)")),
        }
    }
}

/// A ready executor: `Docker` holds the Engine connection, checked when the worker starts.
#[derive(Debug, Clone)]
pub enum Executor {
    Process,
    Docker(bollard::Docker),
}

/// One attempt as the executor sees it.
pub struct Attempt<'a> {
    pub target: &'a Target,
    pub workspace: &'a str,
    pub build: &'a str,
    pub attempt: u32,
    pub worker: &'a str,
    /// The attempt's own folder on this machine; everything the attempt writes stays in it.
    pub dir: &'a Path,
    /// The source, unpacked in `dir`.
    pub src: &'a Path,
    /// The recipe's variables, the same for both executors (no PATH or HOME: each executor
    /// knows its own).
    pub env: Vec<(String, String)>,
    pub grace: Duration,
    pub caps: Caps,
}

impl Executor {
    /// Connect what the executor needs; a Docker Engine that does not answer is an error here,
    /// before any build is claimed.
    pub async fn open(kind: ExecutorKind) -> Result<Executor> {
        match kind {
            ExecutorKind::Process => Ok(Executor::Process),
            ExecutorKind::Docker => Ok(Executor::Docker(docker::connect().await?)),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Executor::Process => "process",
            Executor::Docker(_) => "docker",
        }
    }

    /// What a starting worker does first: the `docker` executor removes the containers an
    /// earlier life of a worker left behind (killed before it could remove them).
    pub async fn prepare(&self, queue: &Queue, worker: &str) -> Result<usize> {
        match self {
            Executor::Process => Ok(0),
            Executor::Docker(d) => docker::reap(d, queue, worker).await,
        }
    }

    /// Run the recipe of `a` to its end (or until `control` stops it).
    pub async fn run(
        &self,
        a: &Attempt<'_>,
        log: &mut LogSink,
        control: &mut watch::Receiver<Control>,
    ) -> Exit {
        match self {
            Executor::Process => {
                let path = std::env::var("PATH").unwrap_or_else(|_| {
                    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()
                });
                let mut env = vec![
                    ("PATH".to_string(), path),
                    ("HOME".to_string(), a.dir.display().to_string()),
                ];
                env.extend(a.env.iter().cloned());
                let recipe = Recipe {
                    command: a.target.command.clone(),
                    dir: a.src.to_path_buf(),
                    env,
                    timeout: a.target.timeout,
                    grace: a.grace,
                };
                process::run(&recipe, log, control).await
            }
            Executor::Docker(d) => {
                let run = DockerRun {
                    target: a.target,
                    env: a.env.clone(),
                    labels: labels(a.workspace, a.build, a.attempt, &a.target.name, a.worker),
                    src: a.src,
                    out: &self.outputs(a.target, a.src, a.dir),
                    scratch: a.dir,
                    grace: a.grace,
                    caps: a.caps,
                };
                docker::run(d, &run, log, control).await
            }
        }
    }

    /// Where the recipe's outputs are on this machine once it ended: `process` leaves them
    /// where the recipe wrote them; `docker` copies them out into the attempt's folder.
    pub fn outputs(&self, target: &Target, src: &Path, dir: &Path) -> PathBuf {
        match self {
            Executor::Process => {
                if target.output_dir.starts_with('/') {
                    PathBuf::from(&target.output_dir)
                } else {
                    src.join(&target.output_dir)
                }
            }
            Executor::Docker(_) => dir.join("out"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_executor_names() {
        assert_eq!(ExecutorKind::parse("docker").unwrap(), ExecutorKind::Docker);
        assert_eq!(
            ExecutorKind::parse("process").unwrap(),
            ExecutorKind::Process
        );
        let e = ExecutorKind::parse("podman").unwrap_err();
        assert!(
            e.message.contains("\"podman\" is not known"),
            "{}",
            e.message
        );
    }
}

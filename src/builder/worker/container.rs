//! Executor `docker`, its pure part: the container a recipe runs in, from the target and the
//! attempt, and how the container's end reads as a recipe's end. The Engine calls (inspect the
//! image and never pull, copy the source in and the outputs out through the API, logs, wait,
//! stop with the grace, remove) come with the executor itself.

use crate::builder::config::{Network, Target};
use crate::builder::worker::outcome::Exit;
use bollard::models::{ContainerCreateBody, HostConfig};
use std::collections::HashMap;

/// Where the source is copied in, and the recipe's working folder.
pub const SOURCE_DIR: &str = "/src";
/// Recipes are builds, not fork bombs: a generous ceiling that still stops a runaway.
pub const PIDS_LIMIT: i64 = 4096;

pub const LABEL_WORKSPACE: &str = "appgear.builder.workspace";
pub const LABEL_BUILD: &str = "appgear.builder.build";
pub const LABEL_ATTEMPT: &str = "appgear.builder.attempt";
pub const LABEL_TARGET: &str = "appgear.builder.target";
pub const LABEL_WORKER: &str = "appgear.builder.worker";

/// Labels that let the reaper find (and remove) the containers of builds no longer running.
pub fn labels(
    workspace: &str,
    build: &str,
    attempt: u32,
    target: &str,
    worker: &str,
) -> HashMap<String, String> {
    HashMap::from([
        (LABEL_WORKSPACE.to_string(), workspace.to_string()),
        (LABEL_BUILD.to_string(), build.to_string()),
        (LABEL_ATTEMPT.to_string(), attempt.to_string()),
        (LABEL_TARGET.to_string(), target.to_string()),
        (LABEL_WORKER.to_string(), worker.to_string()),
    ])
}

/// What the queue says of the build a labelled container was made for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildNow {
    /// The queue has no such build (expired from Redis, or another workspace's prefix).
    Unknown,
    /// Running at this attempt under this worker name.
    Running {
        attempt: u32,
        worker: Option<String>,
    },
    /// Queued again or ended.
    NotRunning,
}

/// Whether a worker named `me`, just starting, removes a container labelled for `attempt` of a
/// build that is now `now`. Only a container of an attempt another worker still runs is kept:
/// a container of this worker's own name is a leftover of an earlier life of it (a restarted
/// pod or process), since a starting worker runs nothing yet.
pub fn is_leftover(now: &BuildNow, attempt: Option<u32>, me: &str) -> bool {
    match now {
        BuildNow::Unknown | BuildNow::NotRunning => true,
        BuildNow::Running {
            attempt: running,
            worker,
        } => Some(*running) != attempt || worker.as_deref() == Some(me) || worker.is_none(),
    }
}

/// The output directory inside the container: absolute as configured, or under the source.
pub fn output_in_container(target: &Target) -> String {
    let out = target.output_dir.trim_end_matches('/');
    if out.starts_with('/') {
        out.to_string()
    } else {
        format!("{SOURCE_DIR}/{out}")
    }
}

/// The container of one attempt. `--init` so SIGTERM reaches the recipe (a shell as PID 1
/// ignores it: 137 instead of 143, measured); memory without swap so the limit is the limit.
pub fn container_body(
    target: &Target,
    env: &[(String, String)],
    labels: HashMap<String, String>,
) -> ContainerCreateBody {
    ContainerCreateBody {
        image: Some(target.image.clone()),
        cmd: Some(target.command.clone()),
        working_dir: Some(SOURCE_DIR.to_string()),
        env: Some(env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
        labels: Some(labels),
        network_disabled: Some(target.network == Network::None),
        host_config: Some(HostConfig {
            init: Some(true),
            network_mode: Some(target.network.as_str().to_string()),
            nano_cpus: Some((target.cpus * 1e9).round() as i64),
            memory: Some(target.memory_bytes as i64),
            memory_swap: Some(target.memory_bytes as i64),
            pids_limit: Some(PIDS_LIMIT),
            auto_remove: Some(false),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// How a container that ended by itself reads: the kernel's OOM kill is not the recipe's exit
/// code, even though Docker reports it as 137.
pub fn container_exit(exit_code: i64, oom_killed: bool) -> Exit {
    if oom_killed {
        Exit::OomKilled
    } else {
        Exit::Code(exit_code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builder::config::Config;

    fn target(network: &str) -> Target {
        let text = format!(
            "targets:\n  web:\n    image: sha256:{}\n    command: [\"sh\", \"-c\", \"make\"]\n    output_dir: /out\n    artifacts: [\"**\"]\n    timeout: 1m\n    cpus: 1.5\n    memory: 16Mi\n    network: {network}\n",
            "a".repeat(64)
        );
        Config::parse(&text).unwrap().targets["web"].clone()
    }

    #[test]
    fn a_container_with_the_targets_limits_and_no_network_by_default() {
        let t = target("none");
        let b = container_body(
            &t,
            &[("BUILD_ID".into(), "b1".into())],
            labels("demo", "b1", 2, "web", "w1"),
        );
        let h = b.host_config.clone().unwrap();
        assert_eq!(h.init, Some(true));
        assert_eq!(h.network_mode.as_deref(), Some("none"));
        assert_eq!(h.nano_cpus, Some(1_500_000_000));
        assert_eq!((h.memory, h.memory_swap), (Some(16 << 20), Some(16 << 20)));
        assert_eq!(b.network_disabled, Some(true));
        assert_eq!(b.working_dir.as_deref(), Some("/src"));
        assert_eq!(b.env, Some(vec!["BUILD_ID=b1".to_string()]));
        assert_eq!(b.labels.unwrap()["appgear.builder.attempt"], "2");
        let bridged = container_body(&target("bridge"), &[], HashMap::new());
        assert_eq!(bridged.network_disabled, Some(false));
        assert_eq!(
            bridged.host_config.unwrap().network_mode.as_deref(),
            Some("bridge")
        );
    }

    #[test]
    fn only_a_container_another_worker_still_runs_is_kept() {
        let running = |attempt, w: &str| BuildNow::Running {
            attempt,
            worker: Some(w.to_string()),
        };
        assert!(!is_leftover(&running(2, "other"), Some(2), "me"));
        assert!(is_leftover(&running(3, "other"), Some(2), "me"));
        assert!(is_leftover(&running(2, "me"), Some(2), "me"));
        assert!(is_leftover(&BuildNow::NotRunning, Some(2), "me"));
        assert!(is_leftover(&BuildNow::Unknown, Some(2), "me"));
        assert!(is_leftover(&running(2, "other"), None, "me"));
    }

    #[test]
    fn the_output_dir_is_under_the_source_unless_absolute() {
        assert_eq!(output_in_container(&target("none")), "/out");
        let mut t = target("none");
        t.output_dir = "dist/".into();
        assert_eq!(output_in_container(&t), "/src/dist");
    }

    #[test]
    fn an_oom_kill_is_not_an_exit_code() {
        assert_eq!(container_exit(137, true), Exit::OomKilled);
        assert_eq!(container_exit(137, false), Exit::Code(137));
        assert_eq!(container_exit(0, false), Exit::Code(0));
    }
}

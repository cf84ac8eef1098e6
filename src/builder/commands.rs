//! The builder's long-running commands as the command line calls them: `serve` (the API and the
//! reaper) and `run` (the worker), from plain options, so the command line only parses flags.
//! Artifacts go to S3 (S3_ENDPOINT, S3_BUCKET) or a folder (--store-dir): `setup::store`.

use crate::builder::api::app::App;
use crate::builder::setup;
use crate::builder::worker::executor::{Executor, ExecutorKind};
use crate::builder::worker::{self, Mode, Options, RunOutcome};
use crate::core::error::{Error, Result};
use crate::core::ui;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// Where the builder's state is: the config, the workspace's queue on Redis, the artifacts.
#[derive(Debug, Clone)]
pub struct Place {
    pub config: PathBuf,
    pub workspace: String,
    pub redis_url: String,
    pub queue_prefix: String,
    pub store_dir: Option<PathBuf>,
}

/// `appgear builder serve`: the API and the reaper until SIGTERM or Ctrl-C.
pub async fn serve(place: &Place, listen: SocketAddr) -> Result<i32> {
    let (config, queue) = setup::open(
        &place.config,
        &place.workspace,
        &place.redis_url,
        &place.queue_prefix,
    )?;
    let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| {
        Error::not_ready(format!("cannot listen on {listen}: {e}"))
            .hint("pick a free address with --listen (or BUILDER_LISTEN)")
    })?;
    let store = setup::store(place.store_dir.as_deref())?;
    ui::err(format_args!(
        "builder API on http://{listen}, artifacts in {}",
        store.describe()
    ));
    let mut stop = setup::stop_on_signals();
    let app = App {
        queue,
        config,
        store: Arc::new(store),
    };
    crate::builder::api::serve::serve(
        listener,
        app,
        async move {
            let _ = stop.wait_for(|s| *s).await;
        },
        |reaped| {
            if let Err(e) = reaped {
                ui::err(format_args!("reaper: {e}"));
            }
        },
    )
    .await?;
    Ok(0)
}

/// `appgear builder run --once|--loop --executor E`: take builds of `target` and carry each
/// to its end. Every outcome (a build that failed included) is a successful run of the
/// worker: exit 0. A Docker Engine that does not answer stops the worker before any claim.
pub async fn run(
    place: &Place,
    target: &str,
    once: bool,
    work_dir: PathBuf,
    executor: ExecutorKind,
) -> Result<i32> {
    let (config, queue) = setup::open(
        &place.config,
        &place.workspace,
        &place.redis_url,
        &place.queue_prefix,
    )?;
    if !config.targets.contains_key(target) {
        return Err(
            Error::bad_input(format!("target {target:?} is not in the builder config")).hint(
                format!(
                    "use one of: {}",
                    config
                        .targets
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
        );
    }
    // The consumer name must be unique per worker: the pod's name in Kubernetes.
    let name = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| format!("worker-{}", std::process::id()));
    let mut opts = Options::new(&config, target, &name, work_dir);
    opts.executor = Executor::open(executor).await?;
    let store = setup::store(place.store_dir.as_deref())?;
    let mode = if once { Mode::Once } else { Mode::Loop };
    let outcomes = worker::run_worker(
        &queue,
        &config,
        &store,
        &opts,
        mode,
        setup::stop_on_signals(),
    )
    .await?;
    for o in outcomes {
        match o {
            RunOutcome::NoWork => {}
            RunOutcome::Ended {
                id,
                attempt,
                state,
                reason,
            } => ui::err(format_args!(
                "build {id} attempt {attempt}: {state:?}{}",
                reason.map(|r| format!(" ({r:?})")).unwrap_or_default()
            )),
            RunOutcome::Requeued {
                id,
                attempt,
                reason,
            } => ui::err(format_args!(
                "build {id} attempt {attempt}: given back to the queue ({reason:?})"
            )),
            RunOutcome::Abandoned { id, attempt } => ui::err(format_args!(
                "build {id} attempt {attempt}: lease lost, nothing written"
            )),
        }
    }
    Ok(0)
}

//! The worker (`appgear builder run --once|--loop`): take one build of a target, run its recipe
//! with the `process` or the `docker` executor, keep the lease on a separate task, store the log, the artifacts,
//! `SHA256SUMS` and the manifest (last) under the attempt's own keys, then record the end.
//!
//! `--once` (what the KEDA ScaledJob runs) ends after one build, whatever its state, or when
//! no build came: a failed recipe is a result, not a worker failure. Only Redis or the config
//! failing before a claim is an error.

pub mod collect;
pub mod container;
pub mod control;
pub mod docker;
pub mod executor;
pub mod gzip;
pub mod heartbeat;
pub mod logs;
pub mod outcome;
pub mod process;
pub mod source;
pub mod unpack;
pub mod upload;

use crate::builder::clock::{now_ms, rfc3339};
use crate::builder::config::{Config, Target};
use crate::builder::id::BuildId;
use crate::builder::keys::AttemptKeys;
use crate::builder::manifest::{
    recipe_hash, sha256sums, Artifact, LogInfo, Manifest, Times, SCHEMA,
};
use crate::builder::queue::error::QueueError;
use crate::builder::queue::lease::Claim;
use crate::builder::queue::Queue;
use crate::builder::state::{Phase, Reason, State};
use crate::builder::store::{Body, Meta, ObjectStore};
use crate::builder::worker::collect::collect;
use crate::builder::worker::control::Control;
use crate::builder::worker::executor::{Attempt, Executor};
use crate::builder::worker::gzip::gzip_stored;
use crate::builder::worker::heartbeat::order;
use crate::builder::worker::logs::LogSink;
use crate::builder::worker::outcome::{after_recipe, Exit, Next};
use crate::builder::worker::unpack::Caps;
use crate::builder::worker::upload::{content_type, put, Retry};
use crate::core::digest::sha256_hex;
use crate::core::error::{Error, Result};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How the worker runs.
#[derive(Debug, Clone)]
pub struct Options {
    pub target: String,
    /// The consumer name: unique per worker (the pod name in Kubernetes).
    pub worker: String,
    /// Where each attempt gets a folder of its own.
    pub work_dir: PathBuf,
    /// How long `claim` waits for a build.
    pub block: Duration,
    pub heartbeat: Duration,
    pub grace: Duration,
    pub log_max: u64,
    pub retry: Retry,
    /// Where recipes run.
    pub executor: Executor,
    /// The most output the `docker` executor copies out of a container.
    pub caps: Caps,
}

impl Options {
    /// The options the config's limits give.
    pub fn new(config: &Config, target: &str, worker: &str, work_dir: PathBuf) -> Options {
        Options {
            target: target.to_string(),
            worker: worker.to_string(),
            work_dir,
            block: Duration::from_secs(10),
            heartbeat: config.limits.heartbeat,
            grace: config.limits.grace,
            log_max: config.limits.log_max_bytes,
            retry: Retry::default(),
            executor: Executor::Process,
            caps: Caps::default(),
        }
    }
}

/// What one run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunOutcome {
    /// No build came within the wait (or the worker was asked to stop first).
    NoWork,
    Ended {
        id: BuildId,
        attempt: u32,
        state: State,
        reason: Option<Reason>,
    },
    /// The build went back to the queue as its next attempt.
    Requeued {
        id: BuildId,
        attempt: u32,
        reason: Reason,
    },
    /// The lease was lost; nothing was written for the build.
    Abandoned { id: BuildId, attempt: u32 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Once,
    Loop,
}

/// `--once`: one run. `--loop`: runs until `stop` turns true. Returns the outcomes in order.
pub async fn run_worker<S: ObjectStore>(
    queue: &Queue,
    config: &Config,
    store: &S,
    opts: &Options,
    mode: Mode,
    stop: watch::Receiver<bool>,
) -> Result<Vec<RunOutcome>> {
    opts.executor.prepare(queue, &opts.worker).await?;
    let mut outcomes = Vec::new();
    loop {
        let o = run_once(queue, config, store, opts, stop.clone()).await?;
        outcomes.push(o);
        if mode == Mode::Once || *stop.borrow() {
            return Ok(outcomes);
        }
    }
}

fn queue_error(e: QueueError) -> Error {
    e.into()
}

/// Aborts a helper task when the attempt ends, however it ends (also when the worker's own
/// task is aborted), so a heartbeat never outlives its attempt and keeps a dead build leased.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Take one build and carry it to its end.
pub async fn run_once<S: ObjectStore>(
    queue: &Queue,
    config: &Config,
    store: &S,
    opts: &Options,
    mut stop: watch::Receiver<bool>,
) -> Result<RunOutcome> {
    let target = config.target(&opts.target)?;
    if *stop.borrow() {
        return Ok(RunOutcome::NoWork);
    }
    let Some(claim) = queue
        .claim(&target.name, &opts.worker, opts.block)
        .await
        .map_err(queue_error)?
    else {
        return Ok(RunOutcome::NoWork);
    };
    let (ctl_tx, mut ctl_rx) = watch::channel(Control::Run);
    let ctl_tx = Arc::new(ctl_tx);
    let _beat = AbortOnDrop(heartbeat::spawn(
        queue.clone(),
        claim.clone(),
        opts.heartbeat,
        ctl_tx.clone(),
    ));
    let stop_tx = ctl_tx.clone();
    let _stopper = AbortOnDrop(tokio::spawn(async move {
        if stop.wait_for(|s| *s).await.is_ok() {
            order(&stop_tx, Control::Stop);
        }
    }));
    let attempt_dir = opts
        .work_dir
        .join(format!("{}-attempt-{}", claim.id, claim.attempt));
    let r = attempt(
        queue,
        target,
        store,
        opts,
        &claim,
        &attempt_dir,
        &mut ctl_rx,
    )
    .await;
    let _ = tokio::fs::remove_dir_all(&attempt_dir).await;
    r
}

/// The facts of an attempt that go into its manifest.
struct Record {
    exit_code: Option<i64>,
    source_sha256: Option<String>,
    artifacts: Vec<Artifact>,
}

async fn attempt<S: ObjectStore>(
    queue: &Queue,
    target: &Target,
    store: &S,
    opts: &Options,
    claim: &Claim,
    dir: &std::path::Path,
    control: &mut watch::Receiver<Control>,
) -> Result<RunOutcome> {
    let keys = AttemptKeys::new(queue.workspace(), &claim.id, claim.attempt);
    let mut log = LogSink::new(queue.clone(), claim.id.clone(), claim.attempt, opts.log_max);
    log.line(&format!(
        "[appgear] build {} attempt {} on {} (target {}, image {}, executor {})",
        claim.id,
        claim.attempt,
        opts.worker,
        target.name,
        target.image,
        opts.executor.name()
    ))
    .await;
    let src = dir.join("src");
    // `None` when the source cannot be used: the build ends failed/source_invalid.
    let fetched: Option<Option<String>> = match &claim.job.spec.source {
        None => Some(None),
        Some(s) => match source::fetch(store, s, &src).await {
            Ok(sha) => Some(Some(sha)),
            Err(why) => {
                log.line(&format!("[appgear] the source cannot be used: {why}"))
                    .await;
                None
            }
        },
    };
    let source_sha256 = fetched.clone().flatten();
    let exit = if fetched.is_none() {
        None
    } else if let Err(e) = tokio::fs::create_dir_all(&src).await {
        log.line(&format!("[appgear] cannot create {}: {e}", src.display()))
            .await;
        Some(Exit::NotStarted)
    } else if queue.advance(claim, Phase::Building).await.is_err() {
        Some(Exit::LeaseLost)
    } else {
        let run = Attempt {
            target,
            workspace: queue.workspace().as_str(),
            build: claim.id.as_str(),
            attempt: claim.attempt,
            worker: &opts.worker,
            dir,
            src: &src,
            env: recipe_env(queue, target, claim),
            grace: opts.grace,
            caps: opts.caps,
        };
        Some(opts.executor.run(&run, &mut log, control).await)
    };
    let next = match exit {
        None => Next::End(State::Failed, Some(Reason::SourceInvalid)),
        Some(e) => after_recipe(e),
    };
    let exit_code = match exit {
        Some(Exit::Code(c)) => Some(c),
        _ => None,
    };
    let mut record = Record {
        exit_code,
        source_sha256,
        artifacts: Vec::new(),
    };
    let next = match next {
        Next::Collect => {
            collect_and_upload(
                queue,
                target,
                store,
                opts,
                claim,
                &keys,
                &opts.executor.outputs(target, &src, dir),
                &mut log,
                &mut record,
            )
            .await
        }
        other => other,
    };
    if *control.borrow() == Control::LeaseLost {
        return Ok(abandon(claim, &mut log).await);
    }
    match next {
        Next::Abandon => Ok(abandon(claim, &mut log).await),
        Next::Collect => unreachable_collect(claim),
        Next::Requeue(reason) => {
            log.line(&format!(
                "[appgear] putting the build back in the queue ({reason})"
            ))
            .await;
            log.flush().await;
            // The log of a stopped attempt is kept too; a failure to store it changes nothing.
            let _ = store_log(store, &keys, &log, opts.retry).await;
            match queue.requeue(claim, reason).await {
                Ok(job) => Ok(RunOutcome::Requeued {
                    id: claim.id.clone(),
                    attempt: claim.attempt,
                    reason: job.status.requeued_by.unwrap_or(reason),
                }),
                Err(QueueError::Refused(..)) => Ok(abandon(claim, &mut log).await),
                Err(e) => Err(queue_error(e)),
            }
        }
        Next::End(state, reason) => {
            end(
                queue, target, store, opts, claim, &keys, &mut log, record, state, reason,
            )
            .await
        }
    }
}

fn unreachable_collect(claim: &Claim) -> Result<RunOutcome> {
    // collect_and_upload never answers Collect; if it ever did, say so instead of panicking.
    Err(Error::internal(format!(
        "build {} attempt {}: the worker lost track of where the build was",
        claim.id, claim.attempt
    )))
}

async fn abandon(claim: &Claim, log: &mut LogSink) -> RunOutcome {
    log.line("[appgear] the lease was lost: another attempt owns this build; nothing is recorded")
        .await;
    log.flush().await;
    RunOutcome::Abandoned {
        id: claim.id.clone(),
        attempt: claim.attempt,
    }
}

/// The recipe's variables; each executor adds its own PATH and HOME before them.
fn recipe_env(queue: &Queue, target: &Target, claim: &Claim) -> Vec<(String, String)> {
    let mut env = vec![
        ("LANG".to_string(), "C.UTF-8".to_string()),
        ("BUILD_ID".to_string(), claim.id.to_string()),
        ("BUILD_ATTEMPT".to_string(), claim.attempt.to_string()),
        ("BUILDER_TARGET".to_string(), target.name.clone()),
        (
            "BUILDER_WORKSPACE_ID".to_string(),
            queue.workspace().as_str().to_string(),
        ),
    ];
    env.extend(target.env.iter().map(|(k, v)| (k.clone(), v.clone())));
    env.extend(
        claim
            .job
            .spec
            .env
            .iter()
            .map(|(k, v)| (k.clone(), v.clone())),
    );
    env
}

#[allow(clippy::too_many_arguments)]
async fn collect_and_upload<S: ObjectStore>(
    queue: &Queue,
    target: &Target,
    store: &S,
    opts: &Options,
    claim: &Claim,
    keys: &AttemptKeys,
    out: &std::path::Path,
    log: &mut LogSink,
    record: &mut Record,
) -> Next {
    if queue.advance(claim, Phase::Collecting).await.is_err() {
        return Next::Abandon;
    }
    let out = out.to_path_buf();
    let patterns = target.artifacts.clone();
    let out2 = out.clone();
    let found = match tokio::task::spawn_blocking(move || collect(&out2, &patterns)).await {
        Ok(Ok(f)) => f,
        Ok(Err(e)) => {
            log.line(&format!("[appgear] cannot list {}: {e}", out.display()))
                .await;
            return Next::End(State::Failed, Some(Reason::NoArtifacts));
        }
        Err(e) => {
            log.line(&format!("[appgear] listing the outputs failed: {e}"))
                .await;
            return Next::End(State::Failed, Some(Reason::NoArtifacts));
        }
    };
    if found.is_empty() {
        let globs: Vec<&str> = target.artifacts.iter().map(|p| p.as_str()).collect();
        log.line(&format!(
            "[appgear] no file under {} matches {}",
            target.output_dir,
            globs.join(", ")
        ))
        .await;
        return Next::End(State::Failed, Some(Reason::NoArtifacts));
    }
    if queue.advance(claim, Phase::Uploading).await.is_err() {
        return Next::Abandon;
    }
    for f in &found {
        let Some(key) = keys.artifact(&f.name) else {
            continue;
        };
        let meta = Meta {
            content_type: content_type(&f.name).to_string(),
            sha256: f.sha256.clone(),
        };
        if let Err(e) = put(store, &key, Body::File(f.path.clone()), meta, opts.retry).await {
            log.line(&format!("[appgear] cannot store {}: {e}", f.name))
                .await;
            return Next::Requeue(Reason::UploadFailed);
        }
        log.line(&format!(
            "[appgear] stored {} ({} bytes, sha256 {})",
            f.name, f.size, f.sha256
        ))
        .await;
        record.artifacts.push(Artifact {
            name: f.name.clone(),
            key,
            size: f.size,
            sha256: f.sha256.clone(),
        });
    }
    Next::End(State::Succeeded, None)
}

async fn store_log<S: ObjectStore>(
    store: &S,
    keys: &AttemptKeys,
    log: &LogSink,
    retry: Retry,
) -> std::result::Result<LogInfo, String> {
    let gz = gzip_stored(log.bytes());
    let meta = Meta {
        content_type: "application/gzip".into(),
        sha256: sha256_hex(&gz),
    };
    put(store, &keys.log(), Body::Bytes(gz), meta, retry)
        .await
        .map_err(|e| e.to_string())?;
    Ok(LogInfo {
        key: keys.log(),
        bytes: log.bytes().len() as u64,
        complete: log.complete(),
    })
}

/// Store the log, `SHA256SUMS` and the manifest (last), then record the end in the queue.
#[allow(clippy::too_many_arguments)]
async fn end<S: ObjectStore>(
    queue: &Queue,
    target: &Target,
    store: &S,
    opts: &Options,
    claim: &Claim,
    keys: &AttemptKeys,
    log: &mut LogSink,
    record: Record,
    state: State,
    reason: Option<Reason>,
) -> Result<RunOutcome> {
    log.line(&format!(
        "[appgear] build {} attempt {} ends {state}{}",
        claim.id,
        claim.attempt,
        reason.map(|r| format!(" ({r})")).unwrap_or_default()
    ))
    .await;
    log.flush().await;
    let stored = async {
        let log_info = store_log(store, keys, log, opts.retry).await?;
        let sums = sha256sums(&record.artifacts)?;
        let meta = Meta {
            content_type: "text/plain; charset=utf-8".into(),
            sha256: sha256_hex(sums.as_bytes()),
        };
        put(
            store,
            &keys.sums(),
            Body::Bytes(sums.into_bytes()),
            meta,
            opts.retry,
        )
        .await
        .map_err(|e| e.to_string())?;
        let manifest = Manifest {
            schema: SCHEMA,
            workspace: queue.workspace().as_str().to_string(),
            build: claim.id.to_string(),
            attempt: claim.attempt,
            target: target.name.clone(),
            image: target.image.clone(),
            image_digest: target.image_digest.clone(),
            recipe_hash: recipe_hash(target),
            source_sha256: record.source_sha256.clone(),
            times: Times {
                queued: rfc3339(claim.job.queued_ms),
                started: rfc3339(claim.job.started_ms.unwrap_or(0)),
                finished: rfc3339(now_ms()),
            },
            exit_code: record.exit_code,
            state,
            reason,
            artifacts: record.artifacts.clone(),
            log: log_info,
        };
        let bytes = manifest.to_json();
        let meta = Meta {
            content_type: "application/json".into(),
            sha256: sha256_hex(&bytes),
        };
        put(
            store,
            &keys.manifest(),
            Body::Bytes(bytes),
            meta,
            opts.retry,
        )
        .await
        .map_err(|e| e.to_string())
    }
    .await;
    if let Err(e) = stored {
        // Without its manifest the attempt is not complete: another attempt redoes it.
        log.line(&format!(
            "[appgear] cannot store the attempt's records: {e}"
        ))
        .await;
        log.flush().await;
        return match queue.requeue(claim, Reason::UploadFailed).await {
            Ok(_) => Ok(RunOutcome::Requeued {
                id: claim.id.clone(),
                attempt: claim.attempt,
                reason: Reason::UploadFailed,
            }),
            Err(QueueError::Refused(..)) => Ok(abandon(claim, log).await),
            Err(e) => Err(queue_error(e)),
        };
    }
    // The bytes stored go into the end transition, which counts them for `/metrics` once.
    let stored: u64 = record.artifacts.iter().map(|a| a.size).sum();
    match queue
        .finish_stored(claim, state, reason, record.exit_code, stored)
        .await
    {
        Ok(job) => Ok(RunOutcome::Ended {
            id: claim.id.clone(),
            attempt: claim.attempt,
            state: job.status.state,
            reason: job.status.reason,
        }),
        Err(QueueError::Refused(..)) => Ok(abandon(claim, log).await),
        Err(e) => Err(queue_error(e)),
    }
}

//! Executor `docker`: the recipe in a container of the target's image, through the Docker
//! Engine API only (no bind mounts, so it works the same when appgear itself runs in a
//! container). Never pulls: an image that is not there ends the build `image_missing` at once.
//! The source goes in and the outputs come out as tars; the container is removed whatever
//! happens, and a starting worker removes what an earlier, killed one left.

use crate::builder::config::Target;
use crate::builder::id::BuildId;
use crate::builder::queue::Queue;
use crate::builder::state::State;
use crate::builder::worker::container::{
    container_body, container_exit, is_leftover, output_in_container, BuildNow, LABEL_ATTEMPT,
    LABEL_BUILD, LABEL_WORKSPACE,
};
use crate::builder::worker::control::Control;
use crate::builder::worker::logs::LogSink;
use crate::builder::worker::outcome::Exit;
use crate::builder::worker::unpack::{unpack_outputs, Caps};
use crate::core::error::{Error, Result};
use bollard::container::LogOutput;
use bollard::errors::Error as DockerError;
use bollard::query_parameters::{
    DownloadFromContainerOptionsBuilder, ListContainersOptionsBuilder, LogsOptionsBuilder,
    RemoveContainerOptionsBuilder, StopContainerOptionsBuilder, UploadToContainerOptionsBuilder,
};
use bollard::Docker;
use futures_util::StreamExt;
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::time::Duration;
use tokio::sync::watch;

/// How often gathered lines are sent even if fewer than a chunk (as the `process` executor).
const FLUSH_EVERY: Duration = Duration::from_millis(300);
/// A line longer than this is cut into pieces, so a recipe printing without newlines cannot
/// grow the worker's memory.
const MAX_LINE: usize = 64 * 1024;

/// Connect to the Docker Engine (`core::docker`), with the executor's own way out.
pub async fn connect() -> Result<Docker> {
    crate::core::docker::connect().await.map_err(|e| {
        e.hint(
            "start Docker or point DOCKER_HOST at a running engine, or run with --executor process",
        )
    })
}

use crate::core::docker::message;

fn is_not_found(e: &DockerError) -> bool {
    matches!(
        e,
        DockerError::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

fn is_conflict(e: &DockerError) -> bool {
    matches!(
        e,
        DockerError::DockerResponseServerError {
            status_code: 409,
            ..
        }
    )
}

/// One attempt's container run.
pub struct DockerRun<'a> {
    pub target: &'a Target,
    pub env: Vec<(String, String)>,
    pub labels: HashMap<String, String>,
    /// The source folder on this machine, copied in as `/src`.
    pub src: &'a Path,
    /// Where the outputs are unpacked on this machine (made fresh here).
    pub out: &'a Path,
    /// A folder of the attempt for the tars on their way in and out.
    pub scratch: &'a Path,
    pub grace: Duration,
    pub caps: Caps,
}

/// Removes the container when the run is dropped before it removed it itself (the worker's
/// task aborted, an early return): no container outlives its attempt.
struct Removal {
    docker: Docker,
    id: String,
    armed: bool,
}

impl Drop for Removal {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let (docker, id) = (self.docker.clone(), self.id.clone());
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let _ = remove(&docker, &id).await;
            });
        }
    }
}

async fn remove(docker: &Docker, id: &str) -> std::result::Result<(), DockerError> {
    let opts = RemoveContainerOptionsBuilder::new()
        .force(true)
        .v(true)
        .build();
    match docker.remove_container(id, Some(opts)).await {
        // Gone already, or being removed by another caller (409): either way it goes.
        Err(e) if is_not_found(&e) || is_conflict(&e) => Ok(()),
        other => other,
    }
}

/// Splits the Engine's log frames into lines, one buffer per stream so stdout and stderr
/// never mix inside a line.
#[derive(Default)]
struct Lines {
    out: Vec<u8>,
    err: Vec<u8>,
}

impl Lines {
    fn push(&mut self, frame: LogOutput) -> Vec<String> {
        let (buf, bytes) = match frame {
            LogOutput::StdErr { message } => (&mut self.err, message),
            LogOutput::StdOut { message } | LogOutput::Console { message } => {
                (&mut self.out, message)
            }
            LogOutput::StdIn { .. } => return Vec::new(),
        };
        buf.extend_from_slice(&bytes);
        let mut lines = Vec::new();
        while let Some(i) = buf.iter().position(|b| *b == b'\n') {
            let rest = buf.split_off(i + 1);
            lines.push(text(&std::mem::replace(buf, rest)));
        }
        if buf.len() > MAX_LINE {
            lines.push(text(&std::mem::take(buf)));
        }
        lines
    }

    fn rest(&mut self) -> Vec<String> {
        [std::mem::take(&mut self.out), std::mem::take(&mut self.err)]
            .iter()
            .filter(|b| !b.is_empty())
            .map(|b| text(b))
            .collect()
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b)
        .trim_end_matches(['\n', '\r'])
        .to_string()
}

/// Run the attempt's container to its end and bring its outputs out.
pub async fn run(
    docker: &Docker,
    r: &DockerRun<'_>,
    log: &mut LogSink,
    control: &mut watch::Receiver<Control>,
) -> Exit {
    let image = &r.target.image;
    match docker.inspect_image(image).await {
        Ok(_) => {}
        Err(e) if is_not_found(&e) => {
            log.line(&format!(
                "[appgear] the image {image} is not on this Docker Engine; the builder never \
                 pulls: load it on the Docker host (docker pull or docker load) and submit again"
            ))
            .await;
            return Exit::ImageMissing;
        }
        Err(e) => {
            log.line(&format!(
                "[appgear] cannot inspect the image {image}: {}",
                message(&e)
            ))
            .await;
            return Exit::NotStarted;
        }
    }
    let body = container_body(r.target, &r.env, r.labels.clone());
    let id = match docker.create_container(None, body).await {
        Ok(c) => c.id,
        Err(e) => {
            log.line(&format!(
                "[appgear] cannot create the recipe's container: {}",
                message(&e)
            ))
            .await;
            return Exit::NotStarted;
        }
    };
    let mut removal = Removal {
        docker: docker.clone(),
        id: id.clone(),
        armed: true,
    };
    let exit = run_created(docker, &id, r, log, control).await;
    match remove(docker, &id).await {
        Ok(()) => removal.armed = false,
        Err(e) => {
            log.line(&format!(
                "[appgear] cannot remove the container {id}: {} (the next worker start removes it)",
                message(&e)
            ))
            .await
        }
    }
    exit
}

async fn run_created(
    docker: &Docker,
    id: &str,
    r: &DockerRun<'_>,
    log: &mut LogSink,
    control: &mut watch::Receiver<Control>,
) -> Exit {
    if let Err(why) = copy_in(docker, id, r).await {
        log.line(&format!(
            "[appgear] cannot copy the source into the container: {why}"
        ))
        .await;
        return Exit::NotStarted;
    }
    if let Err(e) = docker.start_container(id, None).await {
        log.line(&format!(
            "[appgear] cannot start the recipe {:?}: {}",
            r.target.command,
            message(&e)
        ))
        .await;
        return Exit::NotStarted;
    }
    let stopped = follow(docker, id, r, log, control).await;
    let (code, oom) = match docker.inspect_container(id, None).await {
        Ok(info) => {
            let s = info.state.unwrap_or_default();
            if s.running == Some(true) {
                // The wait broke off (the Engine restarted, the connection dropped) with the
                // recipe still running: its end is unknown, so the build goes back to the
                // queue and the container is removed with the rest of this attempt.
                log.line("[appgear] lost contact with the recipe's container while it ran; giving the build back")
                    .await;
                return Exit::Stopped;
            }
            (s.exit_code, s.oom_killed.unwrap_or(false))
        }
        Err(e) => {
            log.line(&format!(
                "[appgear] cannot read how the recipe ended: {}",
                message(&e)
            ))
            .await;
            (None, false)
        }
    };
    let exit = match (stopped, code) {
        (Some(s), _) => {
            log.line(&format!(
                "[appgear] the recipe ended with {}",
                code.map_or("no exit code".to_string(), |c| format!("exit code {c}"))
            ))
            .await;
            s
        }
        (None, Some(c)) => {
            let exit = container_exit(c, oom);
            if exit == Exit::OomKilled {
                log.line(&format!(
                    "[appgear] the recipe was killed for going over its memory limit of {} bytes",
                    r.target.memory_bytes
                ))
                .await;
            } else if c != 0 {
                log.line(&format!("[appgear] the recipe exited with code {c}"))
                    .await;
            }
            exit
        }
        (None, None) => Exit::NotStarted,
    };
    if exit == Exit::Code(0) {
        copy_out(docker, id, r, log).await;
    }
    exit
}

/// The source folder as a tar of `src/…` put at the container's root. Links are stored as
/// links, never followed, so nothing outside the folder is read.
async fn copy_in(docker: &Docker, id: &str, r: &DockerRun<'_>) -> std::result::Result<(), String> {
    let src = r.src.to_path_buf();
    let bytes = tokio::task::spawn_blocking(move || -> std::io::Result<Vec<u8>> {
        let mut b = tar::Builder::new(Vec::new());
        b.follow_symlinks(false);
        b.append_dir_all("src", &src)?;
        b.into_inner()
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| format!("cannot pack {}: {e}", r.src.display()))?;
    let opts = UploadToContainerOptionsBuilder::new().path("/").build();
    docker
        .upload_to_container(id, Some(opts), bollard::body_full(bytes.into()))
        .await
        .map_err(|e| message(&e))
}

/// Stream the logs while waiting for the container to end, stopping it (with the grace) on a
/// timeout, a cancel, the worker's stop or a lost lease. Which of those stopped it, if any.
async fn follow(
    docker: &Docker,
    id: &str,
    r: &DockerRun<'_>,
    log: &mut LogSink,
    control: &mut watch::Receiver<Control>,
) -> Option<Exit> {
    // The client's request timeout runs until the response starts; the Engine starts the wait's
    // response at once, but a long build must never lose its log stream to a client timeout
    // meant for short calls, so the two streams get one that outlasts the build.
    let streams = docker
        .clone()
        .with_timeout(r.target.timeout + r.grace + Duration::from_secs(120));
    let logs_opts = LogsOptionsBuilder::new()
        .follow(true)
        .stdout(true)
        .stderr(true)
        .tail("all")
        .build();
    let mut frames = Box::pin(streams.logs(id, Some(logs_opts)));
    let mut waiter = Box::pin(streams.wait_container(id, None));
    let mut lines = Lines::default();
    let deadline = tokio::time::sleep(r.target.timeout);
    tokio::pin!(deadline);
    let mut flush = tokio::time::interval(FLUSH_EVERY);
    let mut stopped: Option<Exit> = None;
    let mut frames_open = true;
    let mut stopper: Option<tokio::task::JoinHandle<()>> = None;
    loop {
        tokio::select! {
            // Ends with the container (a non-zero exit comes as an error: inspect reads it).
            _ = waiter.next() => break,
            f = frames.next(), if frames_open => match f {
                Some(Ok(frame)) => {
                    for l in lines.push(frame) {
                        log.line(&l).await;
                    }
                }
                _ => frames_open = false,
            },
            _ = flush.tick() => log.flush().await,
            _ = &mut deadline, if stopped.is_none() => {
                log.line(&format!(
                    "[appgear] the recipe ran past its timeout of {}; stopping it",
                    humantime::format_duration(r.target.timeout)
                ))
                .await;
                stopped = Some(Exit::TimedOut);
            }
            changed = control.changed(), if stopped.is_none() => {
                // Read the order before awaiting: the watch's guard must not be held across it.
                let order = control.borrow().stopping(changed.is_err());
                if let Some((exit, why)) = order {
                    log.line(&format!("[appgear] stopping the recipe: {why}")).await;
                    stopped = Some(exit);
                }
            }
        }
        if stopped.is_some() && stopper.is_none() {
            // SIGTERM through the init now, SIGKILL from the Engine after the grace period.
            let secs = r.grace.as_secs_f64().ceil().max(1.0) as i32;
            let (d, id) = (docker.clone(), id.to_string());
            stopper = Some(tokio::spawn(async move {
                let opts = StopContainerOptionsBuilder::new().t(secs).build();
                let _ = d.stop_container(&id, Some(opts)).await;
            }));
        }
    }
    // The log stream ends with the container; take what it still holds.
    let drain = async {
        while frames_open {
            match frames.next().await {
                Some(Ok(frame)) => {
                    for l in lines.push(frame) {
                        log.line(&l).await;
                    }
                }
                _ => frames_open = false,
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), drain).await;
    for l in lines.rest() {
        log.line(&l).await;
    }
    stopped
}

/// Bring the output folder out as a tar and unpack it safely into `r.out`. Whatever goes
/// wrong is said in the log and leaves `r.out` empty, so the build ends `no_artifacts`
/// instead of uploading part of the outputs.
async fn copy_out(docker: &Docker, id: &str, r: &DockerRun<'_>, log: &mut LogSink) {
    let inside = output_in_container(r.target);
    let tar_path = r.scratch.join("outputs.tar");
    let got = download(docker, id, &inside, &tar_path, r.caps.max_bytes).await;
    let result = match got {
        Ok(false) => {
            log.line(&format!(
                "[appgear] the recipe left no {inside} in its container"
            ))
            .await;
            Ok(None)
        }
        Ok(true) => {
            let (tar_path2, out, caps) = (tar_path.clone(), r.out.to_path_buf(), r.caps);
            tokio::task::spawn_blocking(move || {
                std::fs::create_dir_all(&out).map_err(|e| e.to_string())?;
                let f = std::fs::File::open(&tar_path2).map_err(|e| e.to_string())?;
                unpack_outputs(std::io::BufReader::new(f), &out, caps).map(Some)
            })
            .await
            .unwrap_or_else(|e| Err(e.to_string()))
        }
        Err(why) => Err(why),
    };
    let _ = tokio::fs::remove_file(&tar_path).await;
    match result {
        Ok(Some(done)) => {
            for s in &done.skipped {
                log.line(&format!("[appgear] output not taken: {s}")).await;
            }
        }
        Ok(None) => {}
        Err(why) => {
            log.line(&format!(
                "[appgear] cannot copy the outputs out of the container: {why}"
            ))
            .await;
            let _ = tokio::fs::remove_dir_all(r.out).await;
        }
    }
}

/// The tar of `path` in the container into `to`; `false` when there is no such path.
async fn download(
    docker: &Docker,
    id: &str,
    path: &str,
    to: &Path,
    max_bytes: u64,
) -> std::result::Result<bool, String> {
    let opts = DownloadFromContainerOptionsBuilder::new()
        .path(path)
        .build();
    let mut stream = Box::pin(docker.download_from_container(id, Some(opts)));
    let mut file = std::fs::File::create(to).map_err(|e| format!("{}: {e}", to.display()))?;
    // Tar headers and padding come on top of the contents' cap.
    let limit = max_bytes
        .saturating_add(max_bytes / 8)
        .saturating_add(1 << 20);
    let mut total: u64 = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) if is_not_found(&e) => return Ok(false),
            Err(e) => return Err(message(&e)),
        };
        total += chunk.len() as u64;
        if total > limit {
            return Err(format!("the outputs are larger than {max_bytes} bytes"));
        }
        file.write_all(&chunk)
            .map_err(|e| format!("{}: {e}", to.display()))?;
    }
    Ok(true)
}

/// Remove the containers labelled for this workspace whose build no longer runs under
/// another worker (see `is_leftover`). How many were removed.
pub async fn reap(docker: &Docker, queue: &Queue, me: &str) -> Result<usize> {
    let ws = queue.workspace().as_str().to_string();
    let filters = HashMap::from([("label".to_string(), vec![format!("{LABEL_WORKSPACE}={ws}")])]);
    let list = docker
        .list_containers(Some(
            ListContainersOptionsBuilder::new()
                .all(true)
                .filters(&filters)
                .build(),
        ))
        .await
        .map_err(|e| {
            Error::not_ready(format!(
                "cannot list the builder's containers: {}",
                message(&e)
            ))
            .hint("check that Docker answers (docker ps), then start the worker again")
        })?;
    let mut removed = 0;
    for c in list {
        let (Some(id), Some(labels)) = (c.id, c.labels) else {
            continue;
        };
        let attempt = labels.get(LABEL_ATTEMPT).and_then(|a| a.parse().ok());
        let now = match labels.get(LABEL_BUILD).map(|b| BuildId::parse(b)) {
            Some(Ok(build)) => match queue.find(&build).await {
                Ok(Some(job)) if job.status.state == State::Running => BuildNow::Running {
                    attempt: job.status.attempt,
                    worker: job.worker,
                },
                Ok(Some(_)) => BuildNow::NotRunning,
                Ok(None) => BuildNow::Unknown,
                // Redis not answering: keep the container, the next start looks again.
                Err(_) => continue,
            },
            _ => BuildNow::Unknown,
        };
        if is_leftover(&now, attempt, me) && remove(docker, &id).await.is_ok() {
            removed += 1;
        }
    }
    Ok(removed)
}

//! Executor `process`: the recipe as a child process group, for the Kubernetes pod whose main
//! container is the target's toolchain image. Its output becomes the build log line by line; a
//! timeout, a cancel or the worker's own stop sends SIGTERM to the whole group, then SIGKILL
//! after the grace period, so no grandchild outlives the build.

use crate::builder::worker::control::Control;
use crate::builder::worker::logs::LogSink;
use crate::builder::worker::outcome::Exit;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// How often gathered lines are sent even if fewer than a chunk.
const FLUSH_EVERY: Duration = Duration::from_millis(300);

pub struct Recipe {
    pub command: Vec<String>,
    pub dir: PathBuf,
    /// The whole environment: the worker's own (Redis URL, credentials) is not passed on.
    pub env: Vec<(String, String)>,
    pub timeout: Duration,
    pub grace: Duration,
}

fn signal_group(pgid: i32, sig: i32) {
    // SAFETY: kill(2) with a negative pid signals a process group; no memory is involved.
    unsafe {
        libc::kill(-pgid, sig);
    }
}

/// Kills the group if the run is dropped before the recipe was reaped (the worker's task was
/// aborted): a recipe never outlives the attempt that started it.
struct GroupGuard {
    pgid: i32,
    armed: bool,
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if self.armed {
            signal_group(self.pgid, libc::SIGKILL);
        }
    }
}

fn read_lines(from: impl Read, to: mpsc::Sender<String>) {
    let mut r = BufReader::new(from);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match r.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                let line = String::from_utf8_lossy(&buf);
                let line = line.trim_end_matches(['\n', '\r']).to_string();
                if to.blocking_send(line).is_err() {
                    return;
                }
            }
        }
    }
}

/// Run `recipe` to its end (or until `control` stops it), writing its output to `log`.
pub async fn run(
    recipe: &Recipe,
    log: &mut LogSink,
    control: &mut watch::Receiver<Control>,
) -> Exit {
    let Some((program, args)) = recipe.command.split_first() else {
        log.line("[appgear] the recipe has no command").await;
        return Exit::NotStarted;
    };
    let spawned = Command::new(program)
        .args(args)
        .current_dir(&recipe.dir)
        .env_clear()
        .envs(recipe.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            log.line(&format!("[appgear] cannot start {program:?}: {e}"))
                .await;
            return Exit::NotStarted;
        }
    };
    let pgid = child.id() as i32;
    let mut guard = GroupGuard { pgid, armed: true };
    let (tx, mut lines) = mpsc::channel::<String>(1024);
    if let Some(out) = child.stdout.take() {
        let tx = tx.clone();
        std::thread::spawn(move || read_lines(out, tx));
    }
    if let Some(err) = child.stderr.take() {
        let tx = tx.clone();
        std::thread::spawn(move || read_lines(err, tx));
    }
    drop(tx);
    let mut waiter = tokio::task::spawn_blocking(move || child.wait());
    let deadline = tokio::time::sleep(recipe.timeout);
    tokio::pin!(deadline);
    let mut flush = tokio::time::interval(FLUSH_EVERY);
    let mut stopped: Option<Exit> = None;
    let mut kill_at: Option<tokio::time::Instant> = None;
    let mut termed = false;
    let status = loop {
        let kill_timer = async {
            match kill_at {
                Some(t) => tokio::time::sleep_until(t).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            r = &mut waiter => break r,
            Some(line) = lines.recv() => log.line(&line).await,
            _ = flush.tick() => log.flush().await,
            _ = &mut deadline, if stopped.is_none() => {
                log.line(&format!("[appgear] the recipe ran past its timeout of {}; stopping it", humantime::format_duration(recipe.timeout))).await;
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
            _ = kill_timer => {
                signal_group(pgid, libc::SIGKILL);
                kill_at = None;
            }
        }
        if stopped.is_some() && !termed {
            // TERM now, KILL after the grace period.
            termed = true;
            signal_group(pgid, libc::SIGTERM);
            kill_at = Some(tokio::time::Instant::now() + recipe.grace);
        }
    };
    // Whatever the recipe left running in its group goes with it.
    signal_group(pgid, libc::SIGKILL);
    guard.armed = false;
    // The readers end when the last holder of the pipes is gone.
    let drain = async {
        while let Some(line) = lines.recv().await {
            log.line(&line).await;
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), drain).await;
    let code = match status {
        Ok(Ok(s)) => s
            .code()
            .map(i64::from)
            .or_else(|| s.signal().map(|n| 128 + i64::from(n))),
        _ => None,
    };
    match (stopped, code) {
        (Some(s), _) => {
            log.line(&format!(
                "[appgear] the recipe ended with {}",
                code.map_or("no exit code".to_string(), |c| format!("exit code {c}"))
            ))
            .await;
            s
        }
        (None, Some(c)) => {
            if c != 0 {
                log.line(&format!("[appgear] the recipe exited with code {c}"))
                    .await;
            }
            Exit::Code(c)
        }
        (None, None) => Exit::NotStarted,
    }
}

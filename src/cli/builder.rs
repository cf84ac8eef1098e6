//! `appgear builder serve|run|submit|status|logs|cancel|list`: the native build service and a
//! thin client of its HTTP API.

use crate::builder::client::Client;
use crate::builder::commands::{self, Place};
use crate::builder::queue::job::BuildSpec;
use crate::builder::worker::executor::ExecutorKind;
use crate::core::error::{Error, Result};
use crate::core::ui;
use clap::{Args, Subcommand};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct PlaceArgs {
    /// The builder config (the file Vault writes).
    #[arg(
        long,
        env = "BUILDER_CONFIG",
        default_value = "/vault/secrets/builder-config"
    )]
    config: PathBuf,
    /// The workspace this builder serves.
    #[arg(long, env = "BUILDER_WORKSPACE_ID")]
    workspace: String,
    /// Redis holding the build queue.
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    redis: String,
    /// Prefix of the queue's Redis keys.
    #[arg(long, env = "BUILD_QUEUE", default_value = crate::builder::queue::names::DEFAULT_PREFIX)]
    queue: String,
    /// Keep artifacts, logs and manifests in this folder instead of S3 (S3_ENDPOINT, S3_BUCKET
    /// and the AWS_* keys or S3_CREDENTIALS_FILE); exactly one of the two.
    #[arg(long, env = "BUILDER_STORE_DIR")]
    store_dir: Option<PathBuf>,
}

impl PlaceArgs {
    fn place(self) -> Place {
        Place {
            config: self.config,
            workspace: self.workspace,
            redis_url: self.redis,
            queue_prefix: self.queue,
            store_dir: self.store_dir,
        }
    }
}

#[derive(Args, Debug)]
pub struct ClientArgs {
    /// The builder API.
    #[arg(long, env = "BUILDER_URL", default_value = "http://127.0.0.1:8088")]
    url: String,
    /// A token with the scope the command needs.
    #[arg(long, env = "BUILDER_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

impl ClientArgs {
    fn client(self) -> Result<Client> {
        Client::new(&self.url, self.token)
    }
}

#[derive(Subcommand, Debug)]
pub enum BuilderCommand {
    /// The always-on API: submit, status, list, logs, cancel; re-queues builds whose worker died.
    Serve {
        #[command(flatten)]
        place: PlaceArgs,
        #[arg(long, env = "BUILDER_LISTEN", default_value = "127.0.0.1:8088")]
        listen: SocketAddr,
    },
    /// The worker: takes a build of a target, runs it, stores what it made, records the end.
    Run {
        #[command(flatten)]
        place: PlaceArgs,
        /// The target whose builds this worker takes.
        #[arg(long, env = "BUILDER_TARGET")]
        target: String,
        /// One build, then exit (what the KEDA ScaledJob runs).
        #[arg(long, conflicts_with = "repeat")]
        once: bool,
        /// Builds until SIGTERM.
        #[arg(long = "loop")]
        repeat: bool,
        /// Where each attempt gets a folder of its own.
        #[arg(long, env = "BUILDER_WORK_DIR", default_value = "/tmp/appgear-builds")]
        work_dir: PathBuf,
        /// How recipes run: `process` (a child process group, in the target's toolchain image,
        /// as the ScaledJob runs it) or `docker` (a container of the target's image through the
        /// Docker Engine at DOCKER_HOST; never pulls).
        #[arg(long, env = "BUILDER_EXECUTOR", default_value = "process")]
        executor: String,
    },
    /// Submit a build of a target.
    Submit {
        #[command(flatten)]
        client: ClientArgs,
        target: String,
        /// An environment variable for the recipe, KEY=VALUE (repeatable).
        #[arg(long = "env", value_name = "KEY=VALUE")]
        env: Vec<String>,
        /// Submitting again with the same key gives the same build.
        #[arg(long)]
        idempotency_key: Option<String>,
        /// Follow the build's log to its end.
        #[arg(long, short)]
        follow: bool,
        #[arg(long)]
        json: bool,
    },
    /// A build's state.
    Status {
        #[command(flatten)]
        client: ClientArgs,
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// A build's log; `-f` follows it to the end, resuming where it stopped after a reconnect.
    Logs {
        #[command(flatten)]
        client: ClientArgs,
        id: String,
        #[arg(long, short)]
        follow: bool,
    },
    /// Cancel a queued or running build.
    Cancel {
        #[command(flatten)]
        client: ClientArgs,
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Download the artifacts of a build's committed attempt into a folder, each checked
    /// against the SHA-256 in the build's manifest. Never overwrites a file.
    Download {
        #[command(flatten)]
        client: ClientArgs,
        id: String,
        /// The folder to write into (created if missing); artifacts keep their paths under it.
        #[arg(long, default_value = ".")]
        out: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// The latest builds.
    List {
        #[command(flatten)]
        client: ClientArgs,
        #[arg(long, default_value_t = 20)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(cmd: BuilderCommand) -> Result<i32> {
    match cmd {
        BuilderCommand::Serve { place, listen } => commands::serve(&place.place(), listen).await,
        BuilderCommand::Run {
            place,
            target,
            once,
            repeat,
            work_dir,
            executor,
        } => {
            let executor = ExecutorKind::parse(&executor)?;
            if !once && !repeat {
                return Err(Error::bad_input("say how long the worker runs")
                    .hint("pass --once (one build, as the ScaledJob runs it) or --loop"));
            }
            commands::run(&place.place(), &target, once, work_dir, executor).await
        }
        BuilderCommand::Submit {
            client,
            target,
            env,
            idempotency_key,
            follow,
            json,
        } => {
            let mut vars = BTreeMap::new();
            for kv in env {
                let Some((k, v)) = kv.split_once('=') else {
                    return Err(Error::bad_input(format!("--env {kv:?} is not KEY=VALUE"))
                        .hint("e.g. --env NODE_ENV=production"));
                };
                vars.insert(k.to_string(), v.to_string());
            }
            let spec = BuildSpec {
                target,
                source: None,
                env: vars,
            };
            let client = client.client()?;
            let (created, build) = client.submit(&spec, idempotency_key.as_deref()).await?;
            let id = build["id"].as_str().unwrap_or_default().to_string();
            if json {
                ui::print_json(&build)?;
            } else if created {
                ui::step(&format!("submitted build {id}"));
            } else {
                ui::step(&format!("build {id} was already submitted with this key"));
            }
            if follow {
                return follow_to_end(&client, &id).await;
            }
            Ok(0)
        }
        BuilderCommand::Status { client, id, json } => {
            let build = client.client()?.status(&id).await?;
            print_build(&build, json)
        }
        BuilderCommand::Logs { client, id, follow } => {
            let client = client.client()?;
            if follow {
                return follow_to_end(&client, &id).await;
            }
            let page = client
                .logs(&id, None, std::time::Duration::from_secs(0))
                .await?;
            ui::out_text(&page.text);
            Ok(0)
        }
        BuilderCommand::Cancel { client, id, json } => {
            let build = client.client()?.cancel(&id).await?;
            print_build(&build, json)
        }
        BuilderCommand::Download {
            client,
            id,
            out,
            json,
        } => download(&client.client()?, &id, &out, json).await,
        BuilderCommand::List {
            client,
            limit,
            json,
        } => {
            let list = client.client()?.list(limit).await?;
            if json {
                ui::print_json(&list)?;
                return Ok(0);
            }
            let rows: Vec<Vec<String>> = list["builds"]
                .as_array()
                .map(|bs| bs.iter().map(row).collect())
                .unwrap_or_default();
            ui::out(ui::table(
                &["ID", "TARGET", "STATE", "REASON", "ATTEMPT"],
                &rows,
            ));
            Ok(0)
        }
    }
}

fn field(v: &serde_json::Value, key: &str) -> String {
    match &v[key] {
        serde_json::Value::Null => "-".into(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn row(b: &serde_json::Value) -> Vec<String> {
    ["id", "target", "state", "reason", "attempt"]
        .iter()
        .map(|k| field(b, k))
        .collect()
}

fn print_build(build: &serde_json::Value, json: bool) -> Result<i32> {
    if json {
        ui::print_json(build)?;
    } else {
        ui::out(ui::table(
            &["ID", "TARGET", "STATE", "REASON", "ATTEMPT"],
            &[row(build)],
        ));
    }
    Ok(0)
}

/// Print the log as it comes, then say how the build ended; exit 1 unless it succeeded.
async fn follow_to_end(client: &Client, id: &str) -> Result<i32> {
    let state = client.follow(id, 20, ui::out_text).await?;
    ui::step(&format!("build {id} ended {state}"));
    Ok(if state == "succeeded" { 0 } else { 1 })
}

/// `appgear builder download`: the product writes and checks each file; this prints.
async fn download(client: &Client, id: &str, out: &std::path::Path, json: bool) -> Result<i32> {
    let each = |path: &std::path::Path, bytes: u64, sha256: &str| {
        if !json {
            ui::step(&format!(
                "{} ({bytes} bytes) sha256 {sha256} matches the manifest",
                path.display()
            ));
        }
    };
    let got = crate::builder::download::download(client, id, out, &each).await?;
    let (list, done) = (got.list, got.files);
    if json {
        ui::print_json(&serde_json::json!({
            "build": list["build"],
            "attempt": list["attempt"],
            "state": list["state"],
            "out": out,
            "artifacts": done,
        }))?;
    } else {
        ui::step(&format!(
            "build {id}: {} artifact(s) from attempt {} in {}",
            done.len(),
            list["attempt"],
            out.display()
        ));
    }
    Ok(0)
}

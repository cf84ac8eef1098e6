//! `appgear logs [SERVICE] [-f] [--tail N]`.

use crate::core::error::{Error, Result};
use crate::topology_a::home::Home;
use crate::topology_a::stack::{docker, load};
use bollard::container::LogOutput;
use bollard::query_parameters::LogsOptionsBuilder;
use clap::Args;
use futures_util::stream::{select_all, StreamExt};
use std::io::Write;

#[derive(Args, Debug)]
pub struct LogsArgs {
    /// Only this service (default: all).
    pub service: Option<String>,
    /// Keep following new lines.
    #[arg(short, long)]
    pub follow: bool,
    /// Lines from the end of each log ("all" for everything).
    #[arg(long, default_value = "all")]
    pub tail: String,
}

pub async fn run(home: &Home, args: LogsArgs) -> Result<i32> {
    if args.tail != "all" && args.tail.parse::<u64>().is_err() {
        return Err(
            Error::bad_input(format!("--tail `{}` is not a number", args.tail))
                .hint("use --tail 100 or --tail all"),
        );
    }
    let (_, project) = load::load(home)?;
    if let Some(s) = &args.service {
        if !project.services.iter().any(|p| &p.name == s) {
            let names: Vec<_> = project.services.iter().map(|p| p.name.as_str()).collect();
            return Err(Error::bad_input(format!("no service `{s}` in this stack"))
                .hint(format!("services: {}", names.join(", "))));
        }
    }
    let docker = docker::connect().await?;
    let observed = docker::observe(&docker, &project.name).await?;
    let containers: Vec<_> = observed
        .containers
        .iter()
        .filter(|c| args.service.as_ref().is_none_or(|s| &c.service == s))
        .collect();
    if containers.is_empty() {
        return Err(
            Error::not_ready("no containers to show logs of").hint("run `appgear up` first")
        );
    }
    let width = containers
        .iter()
        .map(|c| c.service.len())
        .max()
        .unwrap_or(0);
    let prefix = containers.len() > 1;
    let streams = containers.iter().map(|c| {
        let opts = LogsOptionsBuilder::new()
            .stdout(true)
            .stderr(true)
            .follow(args.follow)
            .tail(&args.tail)
            .build();
        let name = c.service.clone();
        docker
            .logs(&c.id, Some(opts))
            .map(move |item| (name.clone(), item))
    });
    let mut merged = select_all(streams.map(Box::pin));
    let mut out = std::io::stdout().lock();
    let mut ctrl_c = Box::pin(tokio::signal::ctrl_c());
    loop {
        tokio::select! {
            item = merged.next() => {
                let Some((name, item)) = item else { break };
                let bytes = match item {
                    Ok(LogOutput::StdOut { message } | LogOutput::StdErr { message } | LogOutput::Console { message } | LogOutput::StdIn { message }) => message,
                    Err(e) => return Err(docker::api_error("cannot read logs", e)),
                };
                let text = String::from_utf8_lossy(&bytes);
                for line in text.lines() {
                    let written = if prefix { writeln!(out, "{name:width$} | {line}") } else { writeln!(out, "{line}") };
                    if written.is_err() {
                        return Ok(0); // the reader went away (for example `| head`)
                    }
                }
            }
            _ = &mut ctrl_c => break,
        }
    }
    Ok(0)
}

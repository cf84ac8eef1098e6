//! `logs`: the services' log lines as Docker keeps them, merged as they come, until the end (or
//! Ctrl-C when following).

use crate::core::error::{Error, Result};
use crate::topology_a::env_store;
use crate::topology_a::home::Home;
use crate::topology_a::stack::{docker, load};
use bollard::container::LogOutput;
use bollard::query_parameters::LogsOptionsBuilder;
use futures_util::stream::{select_all, StreamExt};

/// Which logs, and how much of them.
pub struct Request {
    /// Only this service (default: all).
    pub service: Option<String>,
    pub follow: bool,
    /// Lines from the end of each log, or "all".
    pub tail: String,
}

/// The services whose logs `each_line` will see, in the order they are shown.
pub struct Logs {
    docker: bollard::Docker,
    /// (service, container id)
    containers: Vec<(String, String)>,
    follow: bool,
    tail: String,
}

pub async fn open(home: &Home, req: Request) -> Result<Logs> {
    let settings = env_store::settings(home)?;
    let project = load::load(home, &settings)?;
    if let Some(s) = &req.service {
        if !project.services.iter().any(|p| &p.name == s) {
            let names: Vec<_> = project.services.iter().map(|p| p.name.as_str()).collect();
            return Err(Error::bad_input(format!("no service `{s}` in this stack"))
                .hint(format!("services: {}", names.join(", "))));
        }
    }
    let docker = docker::connect().await?;
    let observed = docker::observe(&docker, &project.name, &project.working_dir, &[]).await?;
    let containers: Vec<(String, String)> = observed
        .containers
        .into_iter()
        .filter(|c| req.service.as_ref().is_none_or(|s| &c.service == s))
        .map(|c| (c.service, c.id))
        .collect();
    if containers.is_empty() {
        return Err(
            Error::not_ready("no containers to show logs of").hint("run `appgear up` first")
        );
    }
    Ok(Logs {
        docker,
        containers,
        follow: req.follow,
        tail: req.tail,
    })
}

impl Logs {
    pub fn services(&self) -> Vec<&str> {
        self.containers.iter().map(|(s, _)| s.as_str()).collect()
    }

    /// Call `each_line(service, line)` for every line; stops at the end of the logs, on Ctrl-C,
    /// or when `each_line` returns false (the reader went away).
    pub async fn for_each_line(self, mut each_line: impl FnMut(&str, &str) -> bool) -> Result<()> {
        let streams = self.containers.iter().map(|(name, id)| {
            let opts = LogsOptionsBuilder::new()
                .stdout(true)
                .stderr(true)
                .follow(self.follow)
                .tail(&self.tail)
                .build();
            let name = name.clone();
            self.docker
                .logs(id, Some(opts))
                .map(move |item| (name.clone(), item))
        });
        let mut merged = select_all(streams.map(Box::pin));
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
                        if !each_line(&name, line) {
                            return Ok(());
                        }
                    }
                }
                _ = &mut ctrl_c => break,
            }
        }
        Ok(())
    }
}

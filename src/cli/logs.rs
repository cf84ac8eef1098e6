//! `appgear logs [SERVICE] [-f] [--tail N]`.

use crate::core::error::{Error, Result};
use crate::topology_a::home::Home;
use crate::topology_a::stack::logs;
use clap::Args;
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
    let request = logs::Request {
        service: args.service,
        follow: args.follow,
        tail: args.tail,
    };
    let logs = logs::open(home, request).await?;
    let services = logs.services();
    let width = services.iter().map(|s| s.len()).max().unwrap_or(0);
    let prefix = services.len() > 1;
    let mut out = std::io::stdout().lock();
    logs.for_each_line(|name, line| {
        let written = if prefix {
            writeln!(out, "{name:width$} | {line}")
        } else {
            writeln!(out, "{line}")
        };
        // A reader that went away (for example `| head`) ends the command quietly.
        written.is_ok()
    })
    .await?;
    Ok(0)
}

//! The command line: parse, dispatch, print errors, exit codes. Each command group is a thin file.

use crate::error::{Error, Result};
use crate::ui;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

pub mod gitops;
pub mod multiplayer;
pub mod verify;

#[derive(Parser, Debug)]
#[command(
    name = "appgear",
    version,
    about = "The AppGear Factory suite on your laptop"
)]
pub struct Cli {
    /// The home folder that holds .env, docker-compose.yml, config/, data/ and logs/.
    #[arg(
        long,
        global = true,
        env = "APPGEAR_HOME",
        default_value = "/opt/appgear"
    )]
    pub home: PathBuf,
    /// Show the cause chain of errors.
    #[arg(long, short, global = true)]
    pub verbose: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Render the Factory suite's GitOps tree (Topology B) for Argo CD.
    #[command(subcommand)]
    Gitops(gitops::GitopsCommand),
    /// Check rendered manifests against the Factory suite's rules.
    Verify(verify::VerifyArgs),
    /// The real-time multiplayer gateway.
    #[command(subcommand)]
    Multiplayer(multiplayer::MultiplayerCommand),
}

/// Parse the command line, run it, print any error as one line plus a hint; return the exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    let verbose = cli.verbose;
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{} cannot start the async runtime: {e}", ui::red("error:"));
            return 1;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            report(&e, verbose);
            e.exit_code()
        }
    }
}

async fn run(cli: Cli) -> Result<i32> {
    match cli.command {
        Command::Gitops(cmd) => gitops::run(cmd).await,
        Command::Verify(args) => verify::run(args).await,
        Command::Multiplayer(cmd) => multiplayer::run(cmd).await,
    }
}

/// One line with the message, one with the hint, then any detail lines; the cause chain only with
/// `--verbose`.
pub fn report(e: &Error, verbose: bool) {
    eprintln!("{} {}", ui::red("error:"), e.message);
    if let Some(h) = &e.hint {
        eprintln!("{} {h}", ui::yellow("hint:"));
    }
    for line in &e.detail {
        eprintln!("  {line}");
    }
    if verbose {
        if let Some(src) = &e.source {
            for cause in src.chain() {
                eprintln!("{} {cause}", ui::dim("caused by:"));
            }
        }
    }
}

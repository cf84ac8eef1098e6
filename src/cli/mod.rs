//! The command line: parse, dispatch, print errors, exit codes. Each command group is a thin file.

use crate::core::error::{Error, Result};
use crate::core::ui;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

pub mod builder;
pub mod cluster;
pub mod completions;
pub mod config;
pub mod doctor;
pub mod down;
pub mod gitops;
pub mod image;
pub mod init;
pub mod logs;
pub mod multiplayer;
pub mod status;
pub mod up;
pub mod verify;
pub mod workspace;

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
    /// Create or complete the home folder (.env, docker-compose.yml, config/, data/, logs/).
    Init,
    /// Bring the CDE up on Docker (Topology A), or converge it to the compose file.
    Up(up::UpArgs),
    /// Stop and remove the containers and the network; keep config/, data/ and the volumes.
    Down(down::DownArgs),
    /// State, health, ports, image and uptime of each service.
    Status(status::StatusArgs),
    /// Show the services' logs.
    Logs(logs::LogsArgs),
    /// Check that this machine is ready, with a fix for each problem.
    Doctor(doctor::DoctorArgs),
    /// Read and edit the settings in .env.
    #[command(subcommand)]
    Config(config::ConfigCommand),
    /// Render the Factory suite's GitOps tree (Topology B) for Argo CD.
    #[command(subcommand)]
    Gitops(gitops::GitopsCommand),
    /// Check rendered manifests against the Factory suite's rules.
    Verify(verify::VerifyArgs),
    /// The real-time multiplayer gateway.
    #[command(subcommand)]
    Multiplayer(multiplayer::MultiplayerCommand),
    /// The Factory suite on a local kind cluster (Topology B).
    #[command(subcommand)]
    Cluster(cluster::ClusterCommand),
    /// The local cluster's workspaces.
    #[command(subcommand)]
    Workspace(workspace::WorkspaceCommand),
    /// Print a shell completion script: `appgear completions bash > ~/.local/share/bash-completion/completions/appgear`.
    Completions(completions::CompletionsArgs),
    /// The suite's own image, made from this appgear without any registry.
    #[command(subcommand)]
    Image(image::ImageCommand),
    /// Every pinned image of a topology in one archive, for a laptop without a registry.
    #[command(subcommand)]
    Images(image::ImagesCommand),
    /// The native builder: build queue, workers, and a client of its API.
    #[command(subcommand)]
    Builder(builder::BuilderCommand),
}

/// Parse the command line, run it, print any error as one line plus a hint; return the exit code.
pub fn main() -> i32 {
    crate::core::tls::use_ring();
    let cli = Cli::parse();
    let verbose = cli.verbose;
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            ui::err(format_args!(
                "{} cannot start the async runtime: {e}",
                ui::red("error:")
            ));
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
    let home = crate::topology_a::home::Home::new(cli.home);
    match cli.command {
        Command::Init => init::run(&home),
        Command::Up(args) => up::run(&home, args).await,
        Command::Down(args) => down::run(&home, args).await,
        Command::Status(args) => status::run(&home, args).await,
        Command::Logs(args) => logs::run(&home, args).await,
        Command::Doctor(args) => doctor::run(&home, args).await,
        Command::Config(cmd) => config::run(&home, cmd),
        Command::Gitops(cmd) => gitops::run(cmd).await,
        Command::Verify(args) => verify::run(args).await,
        Command::Multiplayer(cmd) => multiplayer::run(cmd).await,
        Command::Cluster(cmd) => cluster::run(&home, cmd).await,
        Command::Workspace(cmd) => workspace::run(&home, cmd).await,
        Command::Completions(args) => completions::run(args),
        Command::Image(cmd) => image::run_image(cmd).await,
        Command::Images(cmd) => image::run_images(&home, cmd).await,
        Command::Builder(cmd) => builder::run(cmd).await,
    }
}

/// One line with the message, one with the hint, then any detail lines; the cause chain only with
/// `--verbose`.
pub fn report(e: &Error, verbose: bool) {
    ui::err(format_args!("{} {}", ui::red("error:"), e.message));
    if let Some(h) = &e.hint {
        ui::err(format_args!("{} {h}", ui::yellow("hint:")));
    }
    for line in &e.detail {
        ui::err(format_args!("  {line}"));
    }
    if verbose {
        if let Some(src) = &e.source {
            for cause in src.chain() {
                ui::err(format_args!("{} {cause}", ui::dim("caused by:")));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    /// clap checks a command's definition only when that command is parsed: check them all at
    /// once, so a wrong flag definition fails here and not in a user's hands.
    #[test]
    fn every_command_is_well_defined() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}

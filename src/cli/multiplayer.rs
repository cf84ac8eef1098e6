//! `appgear multiplayer serve`: the real-time collaboration gateway.

use crate::error::{Error, Result};
use clap::Subcommand;

#[derive(Subcommand, Debug)]
pub enum MultiplayerCommand {
    /// Run the gateway.
    Serve,
}

pub async fn run(_cmd: MultiplayerCommand) -> Result<i32> {
    Err(Error::internal("multiplayer serve is not built yet"))
}

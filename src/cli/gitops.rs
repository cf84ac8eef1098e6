//! `appgear gitops ...`: render the appgear-gitops-suites tree.

use crate::error::{Error, Result};
use clap::Subcommand;

#[derive(Subcommand, Debug)]
pub enum GitopsCommand {
    /// Write the appgear-gitops-suites tree.
    Render,
}

pub async fn run(_cmd: GitopsCommand) -> Result<i32> {
    Err(Error::internal("gitops render is not built yet"))
}

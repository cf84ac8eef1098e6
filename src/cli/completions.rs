//! `appgear completions SHELL`: the shell completion script, from the same command definitions.

use crate::core::error::Result;
use clap::{Args, CommandFactory};
use clap_complete::Shell;

#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// bash, zsh or fish (also elvish, powershell).
    pub shell: Shell,
}

pub fn run(a: CompletionsArgs) -> Result<i32> {
    let mut cmd = super::Cli::command();
    // Into a buffer, then out through ui::out, which survives a closed pipe (`| head`).
    let mut script = Vec::new();
    clap_complete::generate(a.shell, &mut cmd, "appgear", &mut script);
    crate::core::ui::out(String::from_utf8_lossy(&script).trim_end());
    Ok(0)
}

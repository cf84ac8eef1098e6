//! `appgear verify`: static checks of rendered manifests.

use crate::error::{Error, Result};
use clap::Args;

#[derive(Args, Debug)]
pub struct VerifyArgs {}

pub async fn run(_args: VerifyArgs) -> Result<i32> {
    Err(Error::internal("verify is not built yet"))
}

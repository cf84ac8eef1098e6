//! The home's stack as Docker should run it: settings → compose file → `Project`.

use super::project::{self, Project};
use crate::error::{Error, Result};
use crate::home::Home;
use crate::settings::Settings;

/// Load and validate `.env`, then read the home's compose file with `${VAR}` resolved from the
/// process environment first and `.env` second, as Docker Compose does.
pub fn load(home: &Home) -> Result<(Settings, Project)> {
    let settings = home.settings()?;
    let path = home.compose_path();
    let text = std::fs::read_to_string(&path).map_err(|e| {
        Error::bad_input(format!("cannot read {}: {e}", path.display()))
            .hint("run `appgear init` to write it")
    })?;
    let values = settings.values().clone();
    let lookup = move |k: &str| std::env::var(k).ok().or_else(|| values.get(k).cloned());
    let project = project::load(&text, &path, &lookup, settings.project()).map_err(|e| {
        Error::bad_input(format!("{}: {e}", path.display()))
            .hint("fix the file, or delete it and run `appgear init` to get appgear's version back")
    })?;
    Ok((settings, project))
}

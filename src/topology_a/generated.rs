//! The files Topology A generates into the home: the compose file (the contract of the home) and
//! Traefik's configuration. How they are written, and how a user's edits are kept, is the one
//! owned-file policy of `core::owned_files`.

use crate::core::error::Result;
use crate::core::owned_files::{fill, OwnedFile};
use crate::topology_a::settings::Settings;

/// Topology A's compose file; `${VAR}` references are resolved from `.env` when it is read,
/// exactly as Docker Compose does.
pub const COMPOSE_SOURCE: &str = include_str!("../../compose/docker-compose.yml");
const TRAEFIK_STATIC: &str = include_str!("../../compose/traefik.yml");
const TRAEFIK_ROUTES: &str = include_str!("../../compose/factory-routes.yml");

/// The generated files for these settings. Traefik's templates use `{{KEY}}` placeholders filled
/// from the settings; a placeholder with no setting is an error.
pub fn files(settings: &Settings) -> Result<Vec<OwnedFile>> {
    let get = |k: &str| settings.lookup(k).map(str::to_string);
    Ok(vec![
        OwnedFile {
            path: "docker-compose.yml".into(),
            text: COMPOSE_SOURCE.to_string(),
        },
        OwnedFile {
            path: "config/traefik/traefik.yml".into(),
            text: fill(TRAEFIK_STATIC, get)?,
        },
        OwnedFile {
            path: "config/traefik/dynamic/factory.yml".into(),
            text: fill(TRAEFIK_ROUTES, get)?,
        },
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::owned_files::has_marker;

    #[test]
    fn every_template_carries_the_marker() {
        for t in [COMPOSE_SOURCE, TRAEFIK_STATIC, TRAEFIK_ROUTES] {
            assert!(has_marker(t), "{}", &t[..40.min(t.len())]);
        }
    }
}

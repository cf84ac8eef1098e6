//! The network as `supply::Upstream`: an add-on's release files from their pinned URLs, or its
//! chart package from the chart repository (found through the repository's `index.yaml`, checked
//! against the digest the index publishes and against the pin's SHA-256 where it has one).
//! `supply` checks pinned checksums again and caches what passes.

use super::client::{Client, Plain};
use super::index;
use crate::core::digest::sha256_hex;
use crate::core::error::{Error, Result};
use crate::topology_b::addons::{self, Addon, AddonFile};
use crate::topology_b::mirror::Found;
use crate::topology_b::pins::Source;
use crate::topology_b::supply::Upstream;

/// Downloads from upstream with `client`.
pub struct Network<'a> {
    pub client: &'a Client,
}

impl Upstream for Network<'_> {
    fn fetch(&self, addon: Addon) -> Result<Found> {
        match addon.0.source {
            Source::Release(files) => {
                let mut out = Vec::new();
                for d in files {
                    let bytes = self.required(addon, d.url, addons::MAX_FILE_BYTES)?;
                    out.push(AddonFile {
                        name: d.file.to_string(),
                        bytes,
                    });
                }
                Ok(Found::Manifests(out))
            }
            Source::Chart {
                repo,
                chart,
                package,
                ..
            } => {
                let index_url = format!("{}/index.yaml", repo.trim_end_matches('/'));
                let text = self.required(addon, &index_url, index::MAX_INDEX_BYTES)?;
                let text = String::from_utf8(text).map_err(|_| {
                    Error::bad_input(format!("{index_url} is not text")).hint(
                        "the chart repository did not answer with its index; check the network",
                    )
                })?;
                let found = index::find(&text, repo, chart, addon.version()).map_err(|why| {
                    Error::bad_input(format!("chart repository {repo}: {why}"))
                        .hint(format!("{} pins {chart} {}; check the repository, or use a mirror that holds {}/{}", addon.describe(), addon.version(), addon.name(), package.file))
                })?;
                let bytes = self.required(addon, &found.url, addons::MAX_FILE_BYTES)?;
                let got = sha256_hex(&bytes);
                if got != found.digest {
                    return Err(Error::bad_input(format!(
                        "{}: the package has SHA-256 {got}, but the index of {repo} lists {}",
                        found.url, found.digest
                    ))
                    .hint("the download was damaged or the repository changed; run the command again, or use a mirror"));
                }
                Ok(Found::Package(AddonFile {
                    name: package.file.to_string(),
                    bytes,
                }))
            }
            Source::Binary(_) | Source::Image(_) => Err(Error::internal(format!(
                "{} is not an add-on with files",
                addon.name()
            ))),
        }
    }
}

impl Network<'_> {
    /// A file that must exist upstream: a 404 is an error naming the add-on.
    fn required(&self, addon: Addon, url: &str, max: u64) -> Result<Vec<u8>> {
        self.client
            .get(url, max, Plain::LoopbackOnly)?
            .ok_or_else(|| {
                Error::not_ready(format!(
                    "cannot download {} from {url}: the server answered 404 (not found)",
                    addon.describe()
                ))
                .hint("the pinned URL has moved; use a mirror (APPGEAR_ADDONS_MIRROR) that holds the add-on")
            })
    }
}

//! `APPGEAR_ADDONS_MIRROR`: a folder, or an http(s) URL, with one folder per add-on holding its
//! rendered YAML, as `appgear cluster mirror --out DIR` writes it (and as ../shared/vendor is laid
//! out):
//!
//! ```text
//! <mirror>/local-path-provisioner/local-path-storage.yaml
//! <mirror>/keda/keda.yaml
//! <mirror>/keda-http-add-on/keda-add-ons-http-0.15.0.yaml
//! <mirror>/kong/kong-ingress.yaml             (chart rendered with appgear's values)
//! <mirror>/prometheus/prometheus.yaml         (likewise)
//! <mirror>/airbyte/airbyte-2.2.0.tgz          (a chart package, rendered at install)
//! ```
//!
//! Only the files an add-on is made of are read, in the order the pins list them; anything else
//! in the folder (values files, READMEs, the HTTP add-on's -crds.yaml, which repeats two CRDs of
//! the full file) is ignored. A file with a pinned SHA-256 must match it.

use super::addons::{self, Addon, AddonFile};
use crate::core::error::{Error, Result};
use std::path::PathBuf;

/// Where the mirror is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Folder(PathBuf),
    Http(String),
}

impl Location {
    /// The setting's value: `http://…` or `https://…` is a URL, anything else a folder.
    pub fn parse(value: &str) -> Result<Location> {
        let v = value.trim();
        let bad = || {
            Error::bad_input(format!(
                "APPGEAR_ADDONS_MIRROR {value:?} is neither a folder nor an http(s) URL"
            ))
            .hint("set it to a folder with one folder per add-on (as `appgear cluster mirror --out DIR` writes), or to the http(s) URL serving one")
        };
        if v.is_empty() || v.chars().any(char::is_control) {
            return Err(bad());
        }
        let lower = v.to_ascii_lowercase();
        if lower.starts_with("http://") || lower.starts_with("https://") {
            let host = v.split_once("://").map_or("", |(_, rest)| rest);
            if host.is_empty() || v.chars().any(char::is_whitespace) {
                return Err(bad());
            }
            return Ok(Location::Http(v.trim_end_matches('/').to_string()));
        }
        if lower.contains("://") {
            return Err(bad());
        }
        Ok(Location::Folder(PathBuf::from(v)))
    }

    pub fn describe(&self) -> String {
        match self {
            Location::Folder(p) => format!("mirror {}", p.display()),
            Location::Http(u) => format!("mirror {u}"),
        }
    }
}

/// What a mirror (or the cache) holds for one add-on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    Absent,
    /// The add-on's rendered manifest files, in apply order.
    Manifests(Vec<AddonFile>),
    /// Only its chart package, to be rendered.
    Package(AddonFile),
}

/// Files by path relative to a mirror's root ('/'-separated).
pub trait FileSource {
    fn get(&self, rel: &str) -> Result<Option<Vec<u8>>>;
    fn describe(&self) -> String;
}

/// A mirror folder on disk.
pub struct Folder(pub PathBuf);

impl FileSource for Folder {
    fn get(&self, rel: &str) -> Result<Option<Vec<u8>>> {
        addons::read_file(&self.0.join(rel), addons::MAX_FILE_BYTES)
    }
    fn describe(&self) -> String {
        format!("mirror {}", self.0.display())
    }
}

/// An HTTP GET of at most `max` bytes: `None` for 404. `fetch::client::Client` is the real one.
pub trait HttpGet {
    fn get(&self, url: &str, max: u64) -> Result<Option<Vec<u8>>>;
}

/// A mirror served over http(s): `<base>/<addon>/<file>`.
pub struct Http<'a> {
    pub base: String,
    pub client: &'a dyn HttpGet,
}

impl FileSource for Http<'_> {
    fn get(&self, rel: &str) -> Result<Option<Vec<u8>>> {
        self.client
            .get(&format!("{}/{rel}", self.base), addons::MAX_FILE_BYTES)
    }
    fn describe(&self) -> String {
        format!("mirror {}", self.base)
    }
}

/// Read one add-on from a mirror: all of its manifest files, else its chart package, else
/// nothing. Half an add-on (some manifest files missing) is an error, not a miss: the mirror is
/// broken and the user should know.
pub fn lookup(src: &dyn FileSource, addon: Addon) -> Result<Found> {
    let place = src.describe();
    let mut present = Vec::new();
    let mut missing = Vec::new();
    for d in addon.manifest_files() {
        match src.get(&format!("{}/{}", addon.name(), d.file))? {
            Some(bytes) => present.push(AddonFile {
                name: d.file.to_string(),
                bytes,
            }),
            None => missing.push(d.file),
        }
    }
    if !present.is_empty() && !missing.is_empty() {
        return Err(Error::bad_input(format!(
            "{place} holds {}/{} but not {}/{}",
            addon.name(),
            present[0].name,
            addon.name(),
            missing.join(", ")
        ))
        .hint("the mirror is incomplete; write it again with `appgear cluster mirror --out DIR`"));
    }
    if !present.is_empty() {
        for f in &present {
            addons::check_sha256(addon, f, &place)?;
        }
        return Ok(Found::Manifests(present));
    }
    if let Some(p) = addon.package() {
        if let Some(bytes) = src.get(&format!("{}/{}", addon.name(), p.file))? {
            let f = AddonFile {
                name: p.file.to_string(),
                bytes,
            };
            addons::check_sha256(addon, &f, &place)?;
            return Ok(Found::Package(f));
        }
    }
    Ok(Found::Absent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_folders_and_urls() {
        assert_eq!(
            Location::parse("/srv/mirror").unwrap(),
            Location::Folder("/srv/mirror".into())
        );
        assert_eq!(
            Location::parse("https://mirror.example.com/addons/").unwrap(),
            Location::Http("https://mirror.example.com/addons".into())
        );
        for bad in ["", "ftp://x/y", "https://", "http://a b"] {
            let e = Location::parse(bad).unwrap_err();
            assert!(
                e.message.contains("APPGEAR_ADDONS_MIRROR"),
                "{bad}: {}",
                e.message
            );
        }
    }

    struct Fake(Vec<(&'static str, &'static [u8])>);
    impl FileSource for Fake {
        fn get(&self, rel: &str) -> Result<Option<Vec<u8>>> {
            Ok(self
                .0
                .iter()
                .find(|(p, _)| *p == rel)
                .map(|(_, b)| b.to_vec()))
        }
        fn describe(&self) -> String {
            "mirror fake".into()
        }
    }

    #[test]
    fn an_addon_is_all_of_its_files_or_its_package_or_absent() {
        let kong = Addon::named("kong").unwrap();
        assert_eq!(lookup(&Fake(vec![]), kong).unwrap(), Found::Absent);
        let f = Fake(vec![
            ("kong/kong-ingress.yaml", b"x"),
            ("kong/values-kind.yaml", b"y"),
        ]);
        assert_eq!(
            lookup(&f, kong).unwrap(),
            Found::Manifests(vec![AddonFile {
                name: "kong-ingress.yaml".into(),
                bytes: b"x".to_vec()
            }])
        );
        let airbyte = Addon::named("airbyte").unwrap();
        let e = lookup(
            &Fake(vec![("airbyte/airbyte-2.2.0.tgz", b"not the chart")]),
            airbyte,
        )
        .unwrap_err();
        assert!(e.message.contains("has SHA-256"), "{}", e.message);
    }

    #[test]
    fn an_http_mirror_without_a_client_says_so() {
        struct NoHttp;
        impl HttpGet for NoHttp {
            fn get(&self, url: &str, _max: u64) -> Result<Option<Vec<u8>>> {
                Err(Error::not_ready(format!("cannot fetch {url}")))
            }
        }
        let m = Http {
            base: "https://m.example.com".into(),
            client: &NoHttp,
        };
        let e = lookup(&m, Addon::named("keda").unwrap()).unwrap_err();
        assert_eq!(
            e.message,
            "cannot fetch https://m.example.com/keda/keda.yaml"
        );
    }
}

//! Where an add-on's files come from, in one decision: the mirror when one is set and holds the
//! add-on, else the cache, else upstream (then cached). A mirror replaces the network entirely:
//! with one set, an add-on it lacks and the cache lacks is an error, never a download.
//!
//! `decide` is the pure policy; `supply` carries it out with a mirror reader, the cache and an
//! `Upstream`: `fetch::upstream::Network` downloads release files and chart packages at their
//! pinned version; `Offline` stands for no network (tests, and what to say without one).

use super::addons::{self, Addon};
use super::cache::{Cache, Entry};
use super::manifests::Object;
use super::mirror::{self, FileSource, Found};
use crate::core::error::{Error, Result};
use std::path::PathBuf;

/// Where the files were taken from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The mirror, as the user named it.
    Mirror(String),
    Cache(PathBuf),
    Upstream,
}

/// The decision for one add-on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    UseMirror,
    UseCache,
    /// Fetch upstream, then cache it.
    Fetch,
    /// A mirror is set and neither it nor the cache has the add-on.
    NotInMirror,
}

/// `mirror` is `None` when no mirror is set, else what it holds for the add-on.
pub fn decide(mirror: Option<&Found>, cache: &Entry) -> Decision {
    match (mirror, cache) {
        (Some(found), _) if *found != Found::Absent => Decision::UseMirror,
        (_, Entry::Found(found)) if *found != Found::Absent => Decision::UseCache,
        (Some(_), _) => Decision::NotInMirror,
        (None, _) => Decision::Fetch,
    }
}

/// Fetches an add-on's files at their pinned version from upstream.
pub trait Upstream {
    fn fetch(&self, addon: Addon) -> Result<Found>;
}

/// No network: the clear error of the offline path.
pub struct Offline;

impl Upstream for Offline {
    fn fetch(&self, addon: Addon) -> Result<Found> {
        Err(Error::not_ready(format!(
            "add-on {} is not in the mirror or cache and the network fetch is not available",
            addon.describe()
        ))
        .hint("set APPGEAR_ADDONS_MIRROR to a folder with one folder per add-on (`appgear cluster mirror --out DIR` writes one on a machine with network)"))
    }
}

/// An add-on's files, where they came from, and (for rendered YAML) its checked objects.
#[derive(Debug, Clone)]
pub struct Supplied {
    pub addon: Addon,
    pub origin: Origin,
    pub found: Found,
    /// Empty for a chart package, which is rendered before it has objects.
    pub objects: Vec<Object>,
}

/// Supply one add-on: mirror → cache → upstream (see `decide`).
pub fn supply(
    addon: Addon,
    mirror: Option<&dyn FileSource>,
    cache: &Cache,
    upstream: &dyn Upstream,
) -> Result<Supplied> {
    let in_mirror = match mirror {
        Some(m) => Some(mirror::lookup(m, addon)?),
        None => None,
    };
    let cached = cache.get(addon)?;
    let (origin, found) = match decide(in_mirror.as_ref(), &cached) {
        Decision::UseMirror => (
            Origin::Mirror(mirror.map(|m| m.describe()).unwrap_or_default()),
            in_mirror.unwrap_or(Found::Absent),
        ),
        Decision::UseCache => match cached {
            Entry::Found(f) => (Origin::Cache(cache.dir(addon)), f),
            _ => (Origin::Cache(cache.dir(addon)), Found::Absent),
        },
        Decision::NotInMirror => {
            let place = mirror.map(|m| m.describe()).unwrap_or_default();
            return Err(Error::not_ready(format!(
                "add-on {} is not in the {place} or the cache",
                addon.describe()
            ))
            .hint(format!(
                "a mirror replaces the network: add {}/ to it (`appgear cluster mirror --out DIR` on a machine with network), or unset APPGEAR_ADDONS_MIRROR",
                addon.name()
            ))
            .detail(damage(&cached, cache, addon)));
        }
        Decision::Fetch => {
            let found = upstream
                .fetch(addon)
                .map_err(|e| e.detail(damage(&cached, cache, addon)))?;
            let files = match &found {
                Found::Manifests(f) => f.clone(),
                Found::Package(p) => vec![p.clone()],
                Found::Absent => Vec::new(),
            };
            for f in &files {
                addons::check_sha256(addon, f, "upstream")?;
            }
            cache.put(addon, &found)?;
            (Origin::Upstream, found)
        }
    };
    let place = match &origin {
        Origin::Mirror(m) => m.clone(),
        Origin::Cache(_) => "cache".to_string(),
        Origin::Upstream => "upstream".to_string(),
    };
    let objects = match &found {
        Found::Manifests(files) => addons::objects(addon, files, &place)?,
        Found::Package(_) | Found::Absent => Vec::new(),
    };
    Ok(Supplied {
        addon,
        origin,
        found,
        objects,
    })
}

/// A line about a damaged cache entry, for the error that follows it.
fn damage(cached: &Entry, cache: &Cache, addon: Addon) -> Vec<String> {
    match cached {
        Entry::Damaged(why) => vec![format!(
            "the cached copy in {} is damaged ({why}); it is replaced on the next fetch",
            cache.dir(addon).display()
        )],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology_b::addons::AddonFile;

    fn some() -> Found {
        Found::Manifests(vec![AddonFile {
            name: "a.yaml".into(),
            bytes: vec![],
        }])
    }

    #[test]
    fn mirror_then_cache_then_network_and_a_mirror_replaces_the_network() {
        let cached = Entry::Found(some());
        let damaged = Entry::Damaged("x".into());
        let absent = Found::Absent;
        assert_eq!(decide(Some(&some()), &cached), Decision::UseMirror);
        assert_eq!(decide(Some(&some()), &Entry::Absent), Decision::UseMirror);
        assert_eq!(decide(Some(&absent), &cached), Decision::UseCache);
        assert_eq!(decide(None, &cached), Decision::UseCache);
        assert_eq!(decide(Some(&absent), &Entry::Absent), Decision::NotInMirror);
        assert_eq!(decide(Some(&absent), &damaged), Decision::NotInMirror);
        assert_eq!(decide(None, &Entry::Absent), Decision::Fetch);
        assert_eq!(decide(None, &damaged), Decision::Fetch);
    }

    #[test]
    fn offline_without_mirror_or_cache_says_what_to_do() {
        let home = tempfile::tempdir().unwrap();
        let cache = Cache::in_home(home.path());
        let keda = Addon::named("keda").unwrap();
        let e = supply(keda, None, &cache, &Offline).unwrap_err();
        assert_eq!(e.kind, crate::core::error::Kind::NotReady);
        assert_eq!(
            e.message,
            "add-on keda v2.20.2 is not in the mirror or cache and the network fetch is not available"
        );
        assert!(e.hint.unwrap().contains("APPGEAR_ADDONS_MIRROR"));
    }

    #[test]
    fn a_fetch_is_checked_then_cached() {
        struct Fixed(&'static str);
        impl Upstream for Fixed {
            fn fetch(&self, _: Addon) -> Result<Found> {
                Ok(Found::Manifests(vec![AddonFile {
                    name: "local-path-storage.yaml".into(),
                    bytes: self.0.as_bytes().to_vec(),
                }]))
            }
        }
        let home = tempfile::tempdir().unwrap();
        let cache = Cache::in_home(home.path());
        let lp = Addon::named("local-path-provisioner").unwrap();
        let e = supply(lp, None, &cache, &Fixed("not the release")).unwrap_err();
        assert!(e.message.starts_with("upstream: "), "{}", e.message);
        assert_eq!(
            cache.get(lp).unwrap(),
            Entry::Absent,
            "nothing bad is cached"
        );
    }
}

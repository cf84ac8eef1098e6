//! The add-on cache in the home: what appgear fetched once, kept so that the next `cluster up`
//! needs no network.
//!
//! ```text
//! <home>/data/cache/<addon>/<version>/<file>...
//! <home>/data/cache/<addon>/<version>/SHA256SUMS     (sha256sum format, written last)
//! ```
//!
//! `SHA256SUMS` is written after every file and removed before any is replaced, so an entry
//! interrupted while being written has none and counts as absent. Every read checks each file
//! against it (and against the pin, where the pin has a checksum): a cache is on a disk the user
//! and other programs write to, and a damaged file must not reach the cluster.

use super::addons::{self, Addon, AddonFile};
use super::mirror::Found;
use crate::core::digest::sha256_hex;
use crate::core::error::{Error, Kind, Result};
use crate::core::files;
use std::path::{Path, PathBuf};

pub const SUMS: &str = "SHA256SUMS";

/// The cache under a root folder (`<home>/data/cache`).
#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
}

/// What the cache holds for an add-on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// Never cached, or interrupted while being written.
    Absent,
    Found(Found),
    /// Written completely once, changed since: the reason, for the user.
    Damaged(String),
}

impl Cache {
    pub fn in_home(home: &Path) -> Cache {
        Cache::new(home.join("data").join("cache"))
    }
    pub fn new(root: impl Into<PathBuf>) -> Cache {
        Cache { root: root.into() }
    }
    /// `<root>/<addon>/<version>`.
    pub fn dir(&self, addon: Addon) -> PathBuf {
        self.root.join(addon.name()).join(addon.version())
    }

    pub fn get(&self, addon: Addon) -> Result<Entry> {
        let dir = self.dir(addon);
        let Some(sums) = addons::read_file(&dir.join(SUMS), 1 << 20)? else {
            return Ok(Entry::Absent);
        };
        let Ok(sums) = String::from_utf8(sums) else {
            return Ok(Entry::Damaged(format!("{SUMS} is not text")));
        };
        let listed = match parse_sums(&sums) {
            Ok(l) => l,
            Err(why) => return Ok(Entry::Damaged(why)),
        };
        let manifests: Vec<&str> = addon.manifest_files().iter().map(|d| d.file).collect();
        let package = addon.package().map(|p| p.file);
        let names: Vec<&str> = listed.iter().map(|(_, n)| n.as_str()).collect();
        let is_manifests = {
            let mut a = names.clone();
            let mut b = manifests.clone();
            a.sort_unstable();
            b.sort_unstable();
            a == b
        };
        let is_package = package.is_some_and(|p| names == [p]);
        if !is_manifests && !is_package {
            return Ok(Entry::Damaged(format!(
                "{SUMS} lists {}, which is not what {} is made of",
                names.join(", "),
                addon.describe()
            )));
        }
        let mut files = Vec::new();
        // In the add-on's own order, whatever the order of the lines.
        let order: Vec<&str> = if is_manifests { manifests } else { names };
        for name in order {
            let Some((want, _)) = listed.iter().find(|(_, n)| n == name) else {
                continue;
            };
            let Some(bytes) = addons::read_file(&dir.join(name), addons::MAX_FILE_BYTES)? else {
                return Ok(Entry::Damaged(format!("{name} is missing")));
            };
            if sha256_hex(&bytes) != *want {
                return Ok(Entry::Damaged(format!(
                    "{name} changed after it was cached"
                )));
            }
            let file = AddonFile {
                name: name.to_string(),
                bytes,
            };
            if let Err(e) = addons::check_sha256(addon, &file, "cache") {
                return Ok(Entry::Damaged(e.message));
            }
            files.push(file);
        }
        Ok(Entry::Found(if is_manifests {
            Found::Manifests(files)
        } else {
            match files.pop() {
                Some(f) => Found::Package(f),
                None => Found::Absent,
            }
        }))
    }

    /// Store what was fetched; replaces an earlier entry of the same version.
    pub fn put(&self, addon: Addon, found: &Found) -> Result<()> {
        let files: Vec<&AddonFile> = match found {
            Found::Absent => return Ok(()),
            Found::Manifests(f) => f.iter().collect(),
            Found::Package(p) => vec![p],
        };
        let dir = self.dir(addon);
        let fail = |path: &Path, e: std::io::Error| {
            Error::new(
                Kind::NotReady,
                format!("cannot write the add-on cache {}: {e}", path.display()),
            )
            .hint("check that you own the home folder and that the disk is not full")
            .cause(e)
        };
        files::create_dir_all(&dir).map_err(|e| fail(&dir, e))?;
        let sums_path = dir.join(SUMS);
        match std::fs::remove_file(&sums_path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(fail(&sums_path, e)),
        }
        let mut sums = String::new();
        for f in files {
            if f.name.contains('/') || f.name.starts_with('.') || f.name == SUMS {
                return Err(Error::internal(format!(
                    "add-on file name {:?} cannot be cached",
                    f.name
                )));
            }
            let path = dir.join(&f.name);
            files::write_atomic(&path, &f.bytes, None).map_err(|e| fail(&path, e))?;
            sums.push_str(&format!("{}  {}\n", sha256_hex(&f.bytes), f.name));
        }
        files::write_atomic(&sums_path, sums.as_bytes(), None).map_err(|e| fail(&sums_path, e))
    }
}

/// `<64 hex>  <name>` lines (`sha256sum` output; `*name`, the binary marker, is accepted).
fn parse_sums(text: &str) -> std::result::Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let bad = || format!("{SUMS} has a line that is not `<sha256>  <file>`: {line:?}");
        let (hex, rest) = line.split_once(' ').ok_or_else(bad)?;
        let name = rest.trim_start_matches(' ').trim_start_matches('*');
        if !super::pins::is_sha256_hex(hex)
            || name.is_empty()
            || name.contains('/')
            || name.starts_with('.')
        {
            return Err(bad());
        }
        out.push((hex.to_string(), name.to_string()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, text: &str) -> AddonFile {
        AddonFile {
            name: name.into(),
            bytes: text.as_bytes().to_vec(),
        }
    }

    #[test]
    fn round_trip_and_layout() {
        let home = tempfile::tempdir().unwrap();
        let cache = Cache::in_home(home.path());
        let keda = Addon::named("keda").unwrap();
        assert_eq!(cache.get(keda).unwrap(), Entry::Absent);
        let found = Found::Manifests(vec![file("keda.yaml", "kind: x\n")]);
        cache.put(keda, &found).unwrap();
        let dir = home.path().join("data/cache/keda/v2.20.2");
        assert_eq!(cache.dir(keda), dir);
        assert!(dir.join("keda.yaml").is_file());
        assert_eq!(
            std::fs::read_to_string(dir.join(SUMS)).unwrap(),
            format!("{}  keda.yaml\n", sha256_hex(b"kind: x\n"))
        );
        assert_eq!(cache.get(keda).unwrap(), Entry::Found(found));
    }

    #[test]
    fn damage_and_interruption_are_noticed() {
        let home = tempfile::tempdir().unwrap();
        let cache = Cache::in_home(home.path());
        let keda = Addon::named("keda").unwrap();
        cache
            .put(keda, &Found::Manifests(vec![file("keda.yaml", "a\n")]))
            .unwrap();
        let dir = cache.dir(keda);
        std::fs::write(dir.join("keda.yaml"), "b\n").unwrap();
        assert_eq!(
            cache.get(keda).unwrap(),
            Entry::Damaged("keda.yaml changed after it was cached".into())
        );
        std::fs::remove_file(dir.join("keda.yaml")).unwrap();
        assert_eq!(
            cache.get(keda).unwrap(),
            Entry::Damaged("keda.yaml is missing".into())
        );
        std::fs::write(dir.join(SUMS), "nonsense\n").unwrap();
        assert!(
            matches!(cache.get(keda).unwrap(), Entry::Damaged(w) if w.contains("not `<sha256>  <file>`"))
        );
        // Interrupted before SHA256SUMS was written: absent, not damaged.
        std::fs::remove_file(dir.join(SUMS)).unwrap();
        assert_eq!(cache.get(keda).unwrap(), Entry::Absent);
    }

    #[test]
    fn a_pinned_checksum_is_checked_in_the_cache_too() {
        let home = tempfile::tempdir().unwrap();
        let cache = Cache::in_home(home.path());
        let lp = Addon::named("local-path-provisioner").unwrap();
        cache
            .put(
                lp,
                &Found::Manifests(vec![file("local-path-storage.yaml", "x")]),
            )
            .unwrap();
        assert!(matches!(cache.get(lp).unwrap(), Entry::Damaged(w) if w.contains("pins")));
    }

    #[test]
    fn a_chart_package_is_cached_as_itself() {
        let home = tempfile::tempdir().unwrap();
        let cache = Cache::in_home(home.path());
        let kong = Addon::named("kong").unwrap();
        let pkg = Found::Package(file("ingress-0.24.0.tgz", "tgz"));
        cache.put(kong, &pkg).unwrap();
        assert_eq!(cache.get(kong).unwrap(), Entry::Found(pkg));
    }
}

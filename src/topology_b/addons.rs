//! An add-on: a pinned upstream project (storage provisioner, Kong, Prometheus, KEDA, its HTTP
//! add-on, Airbyte) whose rendered manifests a stage applies. What version, from where and with
//! which checksum is in `pins`; this module says which files make an add-on and turns them into
//! checked objects.

use super::manifests::{self, Object};
use super::pins::{self, Download, Pin, Source};
use crate::core::error::{Error, Kind, Result};
use crate::core::yaml::{self, Links, ReadError};
use serde_json::json;
use std::path::Path;

/// No add-on file comes near this (KEDA's manifest, the largest, is under 1 MiB; Airbyte's chart
/// package is 60 KiB); anything bigger is not what appgear pinned.
pub const MAX_FILE_BYTES: u64 = 32 << 20;

/// A file of a mirror folder or of the cache, or `None` when it does not exist. A mirror is a
/// folder someone handed the user (a USB stick, a share), so it is read like untrusted input:
/// never through a link, never a FIFO or device, never more than `max` bytes.
pub fn read_file(path: &Path, max: u64) -> Result<Option<Vec<u8>>> {
    yaml::read_bytes(path, max, Links::Refuse).map_err(|e| match e {
        ReadError::NotAFile | ReadError::NotText => Error::bad_input(format!(
            "{} is a link or not a regular file; appgear reads add-on files only as regular files",
            path.display()
        ))
        .hint("replace it with the file itself (cp -L), or remove it"),
        ReadError::TooBig(max) => Error::bad_input(format!(
            "{} is larger than {}, more than any pinned add-on file",
            path.display(),
            yaml::size(max)
        ))
        .hint("the folder does not hold what appgear pinned; write it again with `appgear cluster mirror --out DIR`"),
        ReadError::Io(e) => Error::new(Kind::NotReady, format!("cannot read {}: {e}", path.display()))
            .hint("check that the folder is readable by you")
            .cause(e),
    })
}

/// Label on every object appgear applies for an add-on, so `cluster status` and the stage plan
/// can tell which add-on is installed at which version with one label query.
pub const LABEL_ADDON: &str = "appgear.io/addon";
pub const LABEL_VERSION: &str = "appgear.io/addon-version";

/// Whether a pin is an add-on: upstream files (release manifests or a chart) that a stage
/// applies. The add-ons are the pins of `pins::PINS` that are, in table order (the order the
/// stages install them), so a pin added there is an add-on here with no second list.
pub fn is_addon(pin: &Pin) -> bool {
    matches!(pin.source, Source::Release(_) | Source::Chart { .. })
}

/// One add-on: a pin for which `is_addon` holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Addon(pub &'static Pin);

/// What a file of an add-on holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Content {
    /// Rendered YAML, applied as it is.
    Manifests,
    /// A Helm chart package, rendered with `helm template` and appgear's values before use.
    Package,
}

/// One file of an add-on as read from a mirror, the cache or upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddonFile {
    pub name: String,
    pub bytes: Vec<u8>,
}

impl Addon {
    pub fn named(name: &str) -> Option<Addon> {
        pins::PINS
            .iter()
            .find(|p| p.name == name && is_addon(p))
            .map(Addon)
    }
    pub fn all() -> impl Iterator<Item = Addon> {
        pins::PINS.iter().filter(|p| is_addon(p)).map(Addon)
    }
    pub fn name(&self) -> &'static str {
        self.0.name
    }
    pub fn version(&self) -> &'static str {
        self.0.version
    }
    /// The rendered manifest files, in apply order, with the checksum where the bytes are
    /// upstream's own and stable. Charts have one rendered file and no checksum (the output
    /// depends on the values; Kong's even holds certificates generated at render time).
    pub fn manifest_files(&self) -> Vec<Download> {
        match self.0.source {
            Source::Release(files) => files.to_vec(),
            Source::Chart { rendered, .. } => vec![Download {
                file: rendered,
                url: "",
                sha256: None,
            }],
            Source::Binary(_) | Source::Image(_) => Vec::new(),
        }
    }
    /// The chart package a chart add-on is rendered from.
    pub fn package(&self) -> Option<Download> {
        match self.0.source {
            Source::Chart { package, .. } => Some(package),
            _ => None,
        }
    }
    /// The namespace a chart is rendered into. `helm template` writes no Namespace object, so
    /// appgear adds one.
    pub fn chart_namespace(&self) -> Option<&'static str> {
        match self.0.source {
            Source::Chart { namespace, .. } => Some(namespace),
            _ => None,
        }
    }
    /// The pinned SHA-256 of the file called `name`, if any.
    pub fn pinned_sha256(&self, name: &str) -> Option<&'static str> {
        self.manifest_files()
            .into_iter()
            .chain(self.package())
            .find(|d| d.file == name)
            .and_then(|d| d.sha256)
    }
    /// `keda v2.20.2`.
    pub fn describe(&self) -> String {
        format!("{} {}", self.name(), self.version())
    }
}

/// Check a file against its pinned SHA-256, if it has one.
pub fn check_sha256(addon: Addon, file: &AddonFile, place: &str) -> Result<()> {
    let Some(want) = addon.pinned_sha256(&file.name) else {
        return Ok(());
    };
    let got = crate::core::digest::sha256_hex(&file.bytes);
    if got != want {
        return Err(Error::bad_input(format!(
            "{place}: {}/{} has SHA-256 {got}, but {} pins {want}",
            addon.name(),
            file.name,
            addon.describe()
        ))
        .hint("the file is not the pinned upstream release (another version, or damaged); fetch it again or write the mirror again with `appgear cluster mirror --out DIR`"));
    }
    Ok(())
}

/// The add-on's rendered files → its objects: each file split (in order), the chart's
/// namespace added when the render lacks it, and the images checked against the pins (which is
/// how a mirror holding another version of the add-on is caught).
pub fn objects(addon: Addon, files: &[AddonFile], place: &str) -> Result<Vec<Object>> {
    let mut out = Vec::new();
    for f in files {
        let origin = format!("{place}/{}/{}", addon.name(), f.name);
        let text = std::str::from_utf8(&f.bytes).map_err(|_| {
            Error::bad_input(format!("{origin} is not UTF-8 text"))
                .hint("a mirror holds rendered YAML; write it again with `appgear cluster mirror --out DIR`")
        })?;
        out.extend(manifests::split(text, &origin)?);
    }
    if let Some(ns) = addon.chart_namespace() {
        let present = out
            .iter()
            .any(|o| o.kind == "Namespace" && o.group().is_empty() && o.name == ns);
        if !present {
            out.insert(
                0,
                namespace_object(ns, &format!("{place}/{}", addon.name())),
            );
        }
    }
    check_images(addon, &out, place)?;
    Ok(out)
}

/// A Namespace object, as appgear adds it for a chart.
pub fn namespace_object(name: &str, origin: &str) -> Object {
    Object {
        api_version: "v1".into(),
        kind: "Namespace".into(),
        name: name.into(),
        namespace: None,
        value: json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}),
        origin: format!("{origin} (added: helm template writes no Namespace)"),
    }
}

/// The images the manifests run must be exactly the add-on's pinned images (compared by
/// repository and tag; a digest in the manifest must equal a pinned digest). Add-ons whose images
/// are not pinned (Airbyte's come from its chart) are not checked.
pub fn check_images(addon: Addon, objects: &[Object], place: &str) -> Result<()> {
    let pinned = addon.0.images;
    if pinned.is_empty() {
        return Ok(());
    }
    let found = manifests::images(objects);
    let mut wrong = Vec::new();
    for image in &found {
        let (tagged, digest) = match image.split_once('@') {
            Some((t, d)) => (t, Some(d)),
            None => (image.as_str(), None),
        };
        let matching = pinned.iter().find(|p| p.tagged() == tagged);
        let ok = match (matching, digest) {
            (None, _) => false,
            (Some(p), Some(d)) => p.digest.is_none_or(|pd| pd == d),
            (Some(_), None) => true,
        };
        if !ok {
            wrong.push(image.clone());
        }
    }
    let missing: Vec<String> = pinned
        .iter()
        .filter(|p| {
            !found
                .iter()
                .any(|f| f.split('@').next() == Some(p.tagged().as_str()))
        })
        .map(|p| p.tagged())
        .collect();
    if wrong.is_empty() && missing.is_empty() {
        return Ok(());
    }
    let want: Vec<String> = pinned.iter().map(|p| p.tagged()).collect();
    Err(Error::bad_input(format!(
        "{place}/{}: the manifests run {}, but {} runs {}",
        addon.name(),
        if wrong.is_empty() {
            format!("no {}", missing.join(", "))
        } else {
            wrong.join(", ")
        },
        addon.describe(),
        want.join(", ")
    ))
    .hint(format!(
        "this is another version of {}; write the mirror again with `appgear cluster mirror --out DIR`, or delete the cached copy",
        addon.name()
    )))
}

/// Label every object with the add-on and version it belongs to. Pod templates are left alone:
/// a changed template label would restart the pods at every version bump of appgear's labels.
pub fn stamp(addon: Addon, objects: &mut [Object]) {
    for o in objects {
        let Some(map) = o.value.as_object_mut() else {
            continue;
        };
        let meta = map.entry("metadata").or_insert_with(|| json!({}));
        if let Some(meta) = meta.as_object_mut() {
            let labels = meta.entry("labels").or_insert_with(|| json!({}));
            if let Some(labels) = labels.as_object_mut() {
                labels.insert(LABEL_ADDON.into(), json!(addon.name()));
                labels.insert(LABEL_VERSION.into(), json!(addon.version()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(image: &str) -> String {
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: d, namespace: keda}}\nspec:\n  template:\n    spec:\n      containers: [{{name: c, image: \"{image}\"}}]\n"
        )
    }

    fn keda_files(images: &[&str]) -> Vec<AddonFile> {
        let text: Vec<String> = images.iter().map(|i| deployment(i)).collect();
        vec![AddonFile {
            name: "keda.yaml".into(),
            bytes: text.join("---\n").into_bytes(),
        }]
    }

    #[test]
    fn every_addon_has_files_and_only_charts_have_packages() {
        for a in Addon::all() {
            assert!(!a.manifest_files().is_empty(), "{}", a.name());
            assert_eq!(a.package().is_some(), a.chart_namespace().is_some());
        }
        assert_eq!(
            Addon::named("keda-http-add-on")
                .unwrap()
                .manifest_files()
                .iter()
                .map(|d| d.file)
                .collect::<Vec<_>>(),
            ["keda-add-ons-http-0.15.0.yaml"]
        );
        assert!(Addon::named("kind").is_none(), "a binary is not an add-on");
    }

    #[test]
    fn every_release_and_chart_pin_is_an_addon_in_table_order() {
        let from_pins: Vec<&str> = pins::PINS
            .iter()
            .filter(|p| matches!(p.source, Source::Release(_) | Source::Chart { .. }))
            .map(|p| p.name)
            .collect();
        let addons: Vec<&str> = Addon::all().map(|a| a.name()).collect();
        assert_eq!(addons, from_pins);
        for name in [
            "local-path-provisioner",
            "kong",
            "prometheus",
            "keda",
            "keda-http-add-on",
            "airbyte",
        ] {
            assert!(addons.contains(&name), "{name}");
        }
        assert!(
            Addon::named("core-redis").is_none(),
            "an image is not an add-on"
        );
    }

    #[test]
    fn images_must_be_the_pinned_ones() {
        let keda = Addon::named("keda").unwrap();
        let pinned = [
            "ghcr.io/kedacore/keda:2.20.2",
            "ghcr.io/kedacore/keda-metrics-apiserver:2.20.2",
            "ghcr.io/kedacore/keda-admission-webhooks:2.20.2",
        ];
        assert!(objects(keda, &keda_files(&pinned), "mirror").is_ok());

        let mut older = pinned;
        older[0] = "ghcr.io/kedacore/keda:2.19.0";
        let e = objects(keda, &keda_files(&older), "mirror").unwrap_err();
        assert!(
            e.message.contains("mirror/keda: the manifests run ghcr.io/kedacore/keda:2.19.0, but keda v2.20.2 runs"),
            "{}",
            e.message
        );
        let e = objects(keda, &keda_files(&pinned[..2]), "mirror").unwrap_err();
        assert!(
            e.message
                .contains("run no ghcr.io/kedacore/keda-admission-webhooks:2.20.2"),
            "{}",
            e.message
        );

        // A digest is accepted where no digest is pinned.
        let mut digested = pinned;
        let with = format!("{}@sha256:{}", pinned[0], "a".repeat(64));
        digested[0] = &with;
        assert!(objects(keda, &keda_files(&digested), "mirror").is_ok());
    }

    #[test]
    fn charts_get_their_namespace_and_checksums_are_checked() {
        let prom = Addon::named("prometheus").unwrap();
        let text = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: core-prometheus, namespace: observability}\nspec:\n  template:\n    spec:\n      containers:\n      - {name: a, image: \"quay.io/prometheus/prometheus:v3.14.0\"}\n      - {name: b, image: \"quay.io/prometheus-operator/prometheus-config-reloader:v0.93.1\"}\n";
        let files = [AddonFile {
            name: "prometheus.yaml".into(),
            bytes: text.into(),
        }];
        let objs = objects(prom, &files, "cache").unwrap();
        assert_eq!(objs[0].kind, "Namespace");
        assert_eq!(objs[0].name, "observability");

        let lp = Addon::named("local-path-provisioner").unwrap();
        let f = AddonFile {
            name: "local-path-storage.yaml".into(),
            bytes: b"not the release".to_vec(),
        };
        let e = check_sha256(lp, &f, "mirror /m").unwrap_err();
        assert!(
            e.message.starts_with(
                "mirror /m: local-path-provisioner/local-path-storage.yaml has SHA-256 "
            ),
            "{}",
            e.message
        );
        let other = AddonFile {
            name: "values.yaml".into(),
            bytes: vec![],
        };
        assert!(
            check_sha256(lp, &other, "m").is_ok(),
            "unpinned files are not checked"
        );
    }

    #[test]
    fn stamp_labels_objects() {
        let keda = Addon::named("keda").unwrap();
        let mut objs = manifests::split(&deployment("x:1"), "t").unwrap();
        stamp(keda, &mut objs);
        assert_eq!(objs[0].value["metadata"]["labels"][LABEL_ADDON], "keda");
        assert_eq!(
            objs[0].value["metadata"]["labels"][LABEL_VERSION],
            "v2.20.2"
        );
    }
}

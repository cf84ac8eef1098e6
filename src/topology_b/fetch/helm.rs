//! `helm template`: a chart package rendered into manifests with appgear's values, as
//! `helm template <release> <package.tgz> --namespace <ns> --include-crds -f values [flags]`.
//! Helm is the user's, found on PATH; appgear never installs it.

use super::chart::Recipe;
use crate::core::error::{Error, Kind, Result};
use crate::topology_b::addons::AddonFile;
use std::path::{Path, PathBuf};
use std::process::Command;

/// helm on PATH.
pub struct Helm {
    pub path: PathBuf,
}

impl Helm {
    pub fn find() -> Result<Helm> {
        which::which("helm")
            .map(|path| Helm { path })
            .map_err(|_| {
                Error::not_ready("helm is not on PATH; appgear renders chart add-ons (Kong, Prometheus, Airbyte) with `helm template`")
                    .hint("install helm 3 or 4 (https://helm.sh/docs/intro/install/) and put it on PATH, or set APPGEAR_ADDONS_MIRROR to a mirror that holds the rendered add-on")
            })
    }

    /// The rendered multi-document YAML of `package` with `recipe`.
    pub fn template(&self, recipe: &Recipe, package: &AddonFile) -> Result<String> {
        let work = Scratch::new()?;
        let chart = work.0.join(&package.name);
        let values = work.0.join("values.yaml");
        write(&chart, &package.bytes)?;
        write(&values, recipe.values.as_bytes())?;
        let mut cmd = Command::new(&self.path);
        cmd.arg("template")
            .arg(&recipe.release)
            .arg(&chart)
            .args(["--namespace", &recipe.namespace, "--include-crds"])
            .arg("--values")
            .arg(&values)
            .args(&recipe.args);
        let out = cmd.output().map_err(|e| {
            Error::new(
                Kind::NotReady,
                format!("cannot run {}: {e}", self.path.display()),
            )
            .hint("check that helm on PATH is an executable helm 3 or 4")
            .cause(e)
        })?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let first = stderr.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
            return Err(Error::new(
                Kind::NotReady,
                format!("helm template of {} failed: {first}", package.name),
            )
            .hint("run `helm version` (helm 3 or 4 is needed); the package itself passed its checksum")
            .detail(stderr.lines().skip(1).take(10).map(str::to_string).collect()));
        }
        String::from_utf8(out.stdout).map_err(|_| {
            Error::internal(format!("helm template of {} wrote non-UTF-8", package.name))
        })
    }
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).map_err(|e| crate::core::files::not_writable(path, e))
}

/// A folder only this user can read, removed when dropped: the package and values for helm.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Result<Scratch> {
        use std::os::unix::fs::DirBuilderExt;
        let mut random = [0u8; 8];
        getrandom::fill(&mut random)
            .map_err(|e| Error::internal(format!("no randomness for a temporary folder: {e}")))?;
        let name: String = random.iter().map(|b| format!("{b:02x}")).collect();
        let dir = std::env::temp_dir().join(format!("appgear-helm-{name}"));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(|e| crate::core::files::not_writable(&dir, e))?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A chart add-on's package → its checked objects: rendered with `recipe`, repeated objects
/// dropped, its namespace added and its images checked against the pin (`addons::objects`).
/// `place` says where the package came from, for messages.
pub fn objects(
    addon: crate::topology_b::addons::Addon,
    package: &AddonFile,
    recipe: &Recipe,
    place: &str,
) -> Result<Vec<crate::topology_b::manifests::Object>> {
    let text = Helm::find()?.template(recipe, package)?;
    let rendered = match addon.0.source {
        crate::topology_b::pins::Source::Chart { rendered, .. } => rendered,
        _ => package.name.as_str(),
    };
    let file = AddonFile {
        name: rendered.to_string(),
        bytes: text.into_bytes(),
    };
    let objects = crate::topology_b::addons::objects(addon, &[file], place)?;
    Ok(super::chart::drop_duplicates(objects))
}

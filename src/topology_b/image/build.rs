//! `appgear image build`: the suite's own image, made locally from the running binary and
//! imported through the Engine API (`POST /images/create?fromSrc=-`), without any registry.

use super::rootfs::{self, RootFs};
use crate::core::error::{Error, Result};
use crate::core::{digest, ui};
use crate::topology_a::stack::docker;
use futures_util::StreamExt;

/// Where the Deployments the suite renders look for it (`image: ghcr.io/appgear/appgear:<version>`).
pub const REPOSITORY: &str = "ghcr.io/appgear/appgear";
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
pub const SOURCE: &str = "https://github.com/appgear/appgear";
/// SHA-256 of the appgear binary inside.
pub const LABEL_BINARY: &str = "io.appgear.binary.sha256";
/// SHA-256 of the imported tar: same label, same files, nothing to do.
pub const LABEL_ROOTFS: &str = "io.appgear.rootfs.sha256";
/// Above this the image is not what a user should ship (a debug build, most likely).
pub const SIZE_BUDGET: u64 = 100 * 1024 * 1024;

/// `ghcr.io/appgear/appgear:<crate version>`.
pub fn default_reference() -> String {
    format!("{REPOSITORY}:{VERSION}")
}

/// The reference `--tag` asks for: a bare tag names a tag of `ghcr.io/appgear/appgear`, anything
/// with a `/` or `:` is a whole `name:tag`.
pub fn reference(tag: Option<&str>) -> Result<String> {
    let Some(t) = tag else {
        return Ok(default_reference());
    };
    let bad = |why: String| {
        Error::bad_input(format!("--tag {t:?} {why}")).hint(format!(
            "give a tag such as {VERSION} (for {REPOSITORY}:{VERSION}), or a whole name:tag such as registry.local:5000/appgear:{VERSION}"
        ))
    };
    if t.contains('/') || t.contains(':') {
        let (_, tag) = crate::topology_a::settings::split_image(t);
        if tag.is_none() {
            return Err(bad("has no tag".into()));
        }
        if t.contains('@') {
            return Err(bad(
                "has a digest; an imported image gets its digest when pushed".into(),
            ));
        }
        crate::topology_a::settings::valid_image(t).map_err(bad)?;
        return Ok(t.to_string());
    }
    let first_ok = t
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    let rest_ok = t
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if !first_ok || !rest_ok || t.len() > 128 {
        return Err(bad(
            "is not a tag (letters, digits, _ . -, not starting with . or -, at most 128)".into(),
        ));
    }
    if t == "latest" {
        return Err(bad(
            "is latest; name the version so every start gets the same image".into(),
        ));
    }
    Ok(format!("{REPOSITORY}:{t}"))
}

/// What `image build` did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Built {
    pub reference: String,
    pub id: String,
    pub size_bytes: u64,
    pub binary_sha256: String,
    pub rootfs_sha256: String,
    pub libraries: Vec<String>,
    pub ca_bundle: bool,
    /// True when an image with the same files was already there and nothing was imported.
    pub reused: bool,
}

/// The `changes` the import applies (Dockerfile instructions).
pub fn changes(fs: &RootFs, rootfs_sha256: &str) -> Vec<String> {
    let mut c = vec![
        format!("ENTRYPOINT [\"{}\"]", rootfs::BINARY),
        format!("USER {}:{}", rootfs::UID, rootfs::UID),
        format!("WORKDIR {}", rootfs::HOME),
    ];
    for (k, v) in &fs.env {
        c.push(format!("ENV {k}={}", quote(v)));
    }
    c.push(format!(
        "LABEL org.opencontainers.image.version={} org.opencontainers.image.source={} org.opencontainers.image.title=appgear {LABEL_BINARY}={} {LABEL_ROOTFS}={}",
        quote(VERSION),
        quote(SOURCE),
        fs.binary_sha256,
        rootfs_sha256
    ));
    c
}

fn quote(v: &str) -> String {
    format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Build the image from the running binary.
pub async fn build(tag: Option<&str>) -> Result<Built> {
    let exe = std::env::current_exe().map_err(|e| {
        Error::not_ready(format!("cannot find the running appgear binary: {e}"))
            .hint("run appgear from its installed path (see install.sh)")
    })?;
    build_from(&exe, tag).await
}

/// Build the image from the appgear binary at `exe` (tests give the one cargo built).
pub async fn build_from(exe: &std::path::Path, tag: Option<&str>) -> Result<Built> {
    let reference = reference(tag)?;
    let exe = exe.to_path_buf();
    // Docker first: a stopped Engine is said before any file is read.
    let engine = docker::connect().await?;
    let sp = ui::spinner(format!(
        "collecting {} and the libraries it links",
        exe.display()
    ));
    let collected = tokio::task::spawn_blocking(move || -> Result<(RootFs, Vec<u8>)> {
        let fs = rootfs::collect(&exe)?;
        let tar = rootfs::tar(&fs)?;
        Ok((fs, tar))
    })
    .await
    .map_err(|e| Error::internal(format!("collecting the image's files stopped: {e}")))?;
    sp.finish_and_clear();
    let (fs, tar) = collected?;
    let rootfs_sha256 = digest::sha256_hex(&tar);
    ui::step(&format!(
        "root filesystem: appgear, {} librar{}{}, {} MiB",
        fs.libraries.len(),
        if fs.libraries.len() == 1 { "y" } else { "ies" },
        if fs.ca_bundle {
            ", CA certificates"
        } else {
            ""
        },
        mib(tar.len() as u64)
    ));
    let mut replaced: Option<String> = None;
    if let Ok(found) = engine.inspect_image(&reference).await {
        let labels = found
            .config
            .as_ref()
            .and_then(|c| c.labels.clone())
            .unwrap_or_default();
        if labels.get(LABEL_ROOTFS).map(String::as_str) == Some(rootfs_sha256.as_str()) {
            ui::step(&format!(
                "{reference} already holds this appgear ({}…); nothing to import",
                &fs.binary_sha256[..12]
            ));
            return Ok(built(reference, found, &fs, rootfs_sha256, true));
        }
        // An earlier image build under this name: removed once the new one has the name, so
        // rebuilding does not pile up untagged images.
        if labels.contains_key(LABEL_ROOTFS) {
            replaced = found.id.clone();
        }
    }
    let (name, tag) = crate::topology_a::settings::split_image(&reference);
    let options = bollard::query_parameters::CreateImageOptionsBuilder::default()
        .from_src("-")
        .repo(name)
        .tag(tag.unwrap_or(VERSION))
        .message("appgear image build")
        .changes(changes(&fs, &rootfs_sha256))
        .platform(fs.platform.unwrap_or(""))
        .build();
    let sp = ui::spinner(format!("importing {reference} into Docker"));
    let mut stream = engine.create_image(Some(options), Some(bollard::body_full(tar.into())), None);
    while let Some(item) = stream.next().await {
        if let Err(e) = item {
            sp.finish_and_clear();
            return Err(Error::not_ready(format!(
                "Docker did not import {reference}: {}",
                docker::message(&e)
            ))
            .hint("check that Docker has free disk space (docker system df), then run image build again")
            .cause(e));
        }
    }
    sp.finish_and_clear();
    let found = engine.inspect_image(&reference).await.map_err(|e| {
        Error::internal(format!(
            "Docker imported {reference} but does not show it: {}",
            docker::message(&e)
        ))
    })?;
    let b = built(reference, found, &fs, rootfs_sha256, false);
    if let Some(old) = replaced.filter(|old| *old != b.id) {
        // Refused while a container uses it or another name points at it: then it stays.
        let _ = engine
            .remove_image(
                &old,
                None::<bollard::query_parameters::RemoveImageOptions>,
                None,
            )
            .await;
    }
    ui::step(&format!(
        "built {} ({} MiB, {})",
        b.reference,
        mib(b.size_bytes),
        short_id(&b.id)
    ));
    if b.size_bytes > SIZE_BUDGET {
        ui::warn(&format!(
            "{} is {} MiB, most likely because this appgear is a debug build; ./install.sh builds a release binary, which makes an image of about 16 MiB",
            b.reference,
            mib(b.size_bytes)
        ));
    }
    Ok(b)
}

fn built(
    reference: String,
    found: bollard::models::ImageInspect,
    fs: &RootFs,
    rootfs_sha256: String,
    reused: bool,
) -> Built {
    Built {
        reference,
        id: found.id.unwrap_or_default(),
        size_bytes: found.size.and_then(|s| u64::try_from(s).ok()).unwrap_or(0),
        binary_sha256: fs.binary_sha256.clone(),
        rootfs_sha256,
        libraries: fs.libraries.clone(),
        ca_bundle: fs.ca_bundle,
        reused,
    }
}

pub fn mib(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / (1024.0 * 1024.0))
}

fn short_id(id: &str) -> &str {
    let h = id.strip_prefix("sha256:").unwrap_or(id);
    &h[..h.len().min(12)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_and_whole_references() {
        assert_eq!(reference(None).unwrap(), default_reference());
        assert_eq!(
            reference(Some("dev-1")).unwrap(),
            "ghcr.io/appgear/appgear:dev-1"
        );
        assert_eq!(
            reference(Some("localhost:5000/appgear:0.1.0")).unwrap(),
            "localhost:5000/appgear:0.1.0"
        );
        for bad in [
            "latest",
            "-x",
            "a b",
            "",
            "localhost:5000/appgear",
            "x/y:latest",
            "a/b:1@sha256:00",
        ] {
            let e = reference(Some(bad)).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad}");
            assert!(e.hint.is_some());
        }
    }

    #[test]
    fn changes_set_entrypoint_user_and_labels() {
        let fs = rootfs::assemble(b"bin", vec![("/lib64/ld.so".into(), vec![], 0o755)], None);
        let c = changes(&fs, "abc");
        assert_eq!(c[0], "ENTRYPOINT [\"/usr/local/bin/appgear\"]");
        assert_eq!(c[1], "USER 10001:10001");
        assert_eq!(c[2], "WORKDIR /home/appgear");
        assert_eq!(c[3], "ENV LD_LIBRARY_PATH=\"/lib64\"");
        assert!(c[4].contains(&format!("org.opencontainers.image.version=\"{VERSION}\"")));
        assert!(c[4].contains(&format!("{LABEL_ROOTFS}=abc")));
        assert!(c[4].contains(&format!("{LABEL_BINARY}={}", fs.binary_sha256)));
    }
}

//! `appgear images save FILE` / `appgear images load FILE`: every pinned image of a topology and
//! profile in one archive, for a laptop without a registry. The archive is what Docker's own
//! `GET /images/get` writes (the format of `docker save`), read back by `POST /images/load`.

use super::build;
use crate::core::error::{Error, Result};
use crate::core::ui;
use crate::topology_a::stack::docker;
use crate::topology_b::pins;
use crate::topology_b::stages::Profile;
use futures_util::StreamExt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// Saving or loading gigabytes takes longer than the client's usual timeout.
const LONG: Duration = Duration::from_secs(2 * 60 * 60);
/// A manifest.json larger than this is not Docker's.
const MAX_MANIFEST: u64 = 16 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Topology {
    A,
    B,
}

impl Topology {
    pub fn parse(s: &str) -> Result<Topology> {
        match s {
            "a" | "A" => Ok(Topology::A),
            "b" | "B" => Ok(Topology::B),
            _ => Err(Error::bad_input(format!("topology {s:?} is not a or b"))
                .hint("use --topology a (Docker: Traefik and code-server) or --topology b (the kind cluster)")),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Topology::A => "a",
            Topology::B => "b",
        }
    }
}

/// One image an archive should hold.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Wanted {
    /// `repository:tag`: the name saved in the archive and the name it has after a load.
    pub name: String,
    /// `sha256:…` when pinned by digest.
    pub digest: Option<String>,
    /// How to get it onto this machine.
    pub how: String,
}

impl Wanted {
    fn pinned(i: &pins::Image) -> Wanted {
        Wanted {
            name: i.tagged(),
            digest: i.digest.map(str::to_string),
            how: format!("docker pull {}", i.reference()),
        }
    }
    /// An image named by the user or a test (a stand-in), fetched by `docker pull` of its name.
    pub fn named(name: &str) -> Wanted {
        Wanted {
            name: name.to_string(),
            digest: None,
            how: format!("docker pull {name}"),
        }
    }
}

/// Every pinned image of `topology` (and, for B, `profile`), each once.
///
/// Topology A: Traefik and code-server at appgear's defaults (a home that names other images in
/// `.env` needs those instead). Topology B: the kind node image, each add-on's images and helper
/// images, core-redis, the suite's own image (made by `appgear image build`, never pulled), and
/// with the full profile Airbyte's (its chart names them; the pins list none yet).
pub fn pinned_images(topology: Topology, profile: Profile) -> Vec<Wanted> {
    match topology {
        Topology::A => [
            crate::topology_a::keys::TRAEFIK_IMAGE,
            crate::topology_a::keys::CODE_SERVER_IMAGE,
        ]
        .iter()
        .map(|n| Wanted::named(n))
        .collect(),
        Topology::B => {
            let airbyte: Vec<pins::Image> = pins::AIRBYTE
                .images
                .iter()
                .chain(pins::AIRBYTE.extra_images)
                .copied()
                .collect();
            let mut out: Vec<Wanted> = pins::all_images()
                .iter()
                .filter(|i| profile == Profile::Full || !airbyte.contains(i))
                .map(Wanted::pinned)
                .collect();
            out.push(Wanted {
                name: build::default_reference(),
                digest: None,
                how: "appgear image build".into(),
            });
            out
        }
    }
}

/// The images of `topology` for the home: Topology A's as the home's `.env` (and the shell) name
/// them, once there is one; appgear's defaults before `init`. Topology B's are the pins.
pub fn wanted(
    home: &crate::topology_a::home::Home,
    topology: Topology,
    profile: Profile,
) -> Result<Vec<Wanted>> {
    if topology == Topology::A && home.env_path().exists() {
        let s = crate::topology_a::env_store::settings(home)?;
        return Ok(vec![
            Wanted::named(&s.traefik_image),
            Wanted::named(&s.code_server_image),
        ]);
    }
    Ok(pinned_images(topology, profile))
}

/// What `images save` wrote.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Saved {
    pub file: PathBuf,
    pub images: Vec<String>,
    pub bytes: u64,
}

/// Write every image of `wanted` into `file` (replaced atomically; a stopped save leaves no
/// half archive under that name). Images missing here are the error, each with how to get it.
pub async fn save(wanted: &[Wanted], file: &Path) -> Result<Saved> {
    let engine = docker::connect().await?.with_timeout(LONG);
    let mut missing: Vec<&Wanted> = Vec::new();
    let mut names: Vec<String> = Vec::new();
    let mut total: u64 = 0;
    for w in wanted {
        match engine.inspect_image(&w.name).await {
            Ok(found) => {
                if let (Some(d), Some(repo_digests)) = (&w.digest, &found.repo_digests) {
                    if !repo_digests.is_empty()
                        && !repo_digests.iter().any(|r| r.ends_with(&format!("@{d}")))
                    {
                        ui::warn(&format!(
                            "{} here is not the pinned {d}; saving it as it is",
                            w.name
                        ));
                    }
                }
                total += found.size.and_then(|s| u64::try_from(s).ok()).unwrap_or(0);
                names.push(w.name.clone());
            }
            Err(_) => {
                // Pulled by digest, Docker keeps the image without its tag: give it the tag, so
                // the archive carries the name the manifests use.
                let by_digest = match &w.digest {
                    Some(d) => {
                        let (repo, _) = crate::topology_a::settings::split_image(&w.name);
                        let r = format!("{repo}@{d}");
                        engine.inspect_image(&r).await.ok().map(|i| (r, i))
                    }
                    None => None,
                };
                match by_digest {
                    Some((r, found)) => {
                        let (repo, tag) = crate::topology_a::settings::split_image(&w.name);
                        let opts = bollard::query_parameters::TagImageOptionsBuilder::default()
                            .repo(repo)
                            .tag(tag.unwrap_or_default())
                            .build();
                        engine.tag_image(&r, Some(opts)).await.map_err(|e| {
                            Error::not_ready(format!(
                                "cannot tag {r} as {}: {}",
                                w.name,
                                docker::message(&e)
                            ))
                            .hint(format!("run `docker tag {r} {}`, then save again", w.name))
                        })?;
                        ui::step(&format!("tagged {r} as {}", w.name));
                        total += found.size.and_then(|s| u64::try_from(s).ok()).unwrap_or(0);
                        names.push(w.name.clone());
                    }
                    None => missing.push(w),
                }
            }
        }
    }
    if !missing.is_empty() {
        return Err(missing_error(&missing, wanted.len()));
    }
    let partial = partial_name(file)?;
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    // Ctrl-C removes the partial file too; FILE is left as it was.
    let written = tokio::select! {
        r = write_export(&engine, &refs, &partial, total) => r,
        _ = tokio::signal::ctrl_c() => Err(Error::interrupted()),
    };
    let bytes = match written {
        Ok(b) => b,
        Err(e) => {
            let _ = tokio::fs::remove_file(&partial).await;
            return Err(e);
        }
    };
    tokio::fs::rename(&partial, file).await.map_err(|e| {
        Error::not_ready(format!("cannot write {}: {e}", file.display()))
            .hint("choose a FILE in a folder you can write to")
    })?;
    ui::step(&format!(
        "saved {} images to {} ({} MiB)",
        names.len(),
        file.display(),
        build::mib(bytes)
    ));
    Ok(Saved {
        file: file.to_path_buf(),
        images: names,
        bytes,
    })
}

/// Exit 3: the missing images by name (the first two and a count when there are many), and one
/// detail line each with how to get it.
fn missing_error(missing: &[&Wanted], of: usize) -> Error {
    let mut names: Vec<&str> = missing.iter().map(|w| w.name.as_str()).collect();
    if names.len() > 3 {
        let more = format!("and {} more", names.len() - 2);
        names.truncate(2);
        names.push(&more);
        return missing_error_named(missing, of, &names.join(", "));
    }
    missing_error_named(missing, of, &names.join(", "))
}

fn missing_error_named(missing: &[&Wanted], of: usize, names: &str) -> Error {
    Error::not_ready(format!(
        "{} of {of} images are not in Docker here: {names}",
        missing.len()
    ))
    .hint("get each one as shown below (on a machine that reaches the registries), then run images save again")
    .detail(missing.iter().map(|w| format!("{}: {}", w.name, w.how)).collect())
}

fn partial_name(file: &Path) -> Result<PathBuf> {
    let name = file
        .file_name()
        .ok_or_else(|| {
            Error::bad_input(format!("{} is not a file name", file.display()))
                .hint("give the archive's path, e.g. appgear-images.tar")
        })?
        .to_string_lossy();
    Ok(file.with_file_name(format!(".{name}.partial")))
}

async fn write_export(
    engine: &bollard::Docker,
    refs: &[&str],
    partial: &Path,
    total: u64,
) -> Result<u64> {
    let cannot = |e: std::io::Error| {
        Error::not_ready(format!("cannot write {}: {e}", partial.display()))
            .hint("choose a FILE in a folder you can write to, with room for the images (docker system df shows their size)")
    };
    let mut out = tokio::fs::File::create(partial).await.map_err(cannot)?;
    let multi = indicatif::MultiProgress::new();
    let bar = ui::bytes_bar(&multi, format!("saving {} images", refs.len()));
    bar.set_length(total);
    let mut stream = engine.export_images(refs);
    let mut bytes: u64 = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            bar.abandon();
            Error::not_ready(format!("Docker stopped the export: {}", docker::message(&e)))
                .hint("check Docker's free disk space and that the images are still there, then save again")
        })?;
        out.write_all(&chunk).await.map_err(cannot)?;
        bytes += chunk.len() as u64;
        if bytes > total {
            bar.set_length(bytes);
        }
        bar.set_position(bytes);
    }
    out.flush().await.map_err(cannot)?;
    out.sync_all().await.map_err(cannot)?;
    bar.finish_and_clear();
    Ok(bytes)
}

/// The image names an archive holds (`RepoTags` of its manifest.json, or the image names of an
/// OCI index.json), read without loading anything. `cluster up` uses it to load what it finds.
pub fn list_archive(file: &Path) -> Result<Vec<String>> {
    let not_archive = |why: String| {
        Error::bad_input(format!(
            "{} is not an images archive: {why}",
            file.display()
        ))
        .hint("give a file written by `appgear images save` (or `docker save`)")
    };
    let f = std::fs::File::open(file).map_err(|e| {
        Error::bad_input(format!("cannot open {}: {e}", file.display()))
            .hint("check the path (appgear images save FILE writes one)")
    })?;
    let mut archive = tar::Archive::new(f);
    let not_tar = |e: std::io::Error| not_archive(format!("it is not a tar file ({e})"));
    let entries = archive.entries_with_seek().map_err(not_tar)?;
    let mut index: Option<Vec<u8>> = None;
    for entry in entries {
        let mut entry = entry.map_err(not_tar)?;
        let path = entry
            .path()
            .map_err(|e| not_archive(e.to_string()))?
            .to_string_lossy()
            .trim_start_matches("./")
            .to_string();
        if path != "manifest.json" && path != "index.json" {
            continue;
        }
        if entry.size() > MAX_MANIFEST {
            return Err(not_archive(format!("its {path} is too large")));
        }
        let mut buf = Vec::new();
        entry
            .by_ref()
            .take(MAX_MANIFEST)
            .read_to_end(&mut buf)
            .map_err(|e| not_archive(e.to_string()))?;
        if path == "manifest.json" {
            return names_in_manifest(&buf).map_err(not_archive);
        }
        index = Some(buf);
    }
    match index {
        Some(buf) => names_in_index(&buf).map_err(not_archive),
        None => Err(not_archive("it has no manifest.json".into())),
    }
}

/// `RepoTags` of Docker's manifest.json (`[{"Config":…,"RepoTags":[…],"Layers":[…]}]`).
pub fn names_in_manifest(bytes: &[u8]) -> std::result::Result<Vec<String>, String> {
    #[derive(serde::Deserialize)]
    struct Item {
        #[serde(rename = "RepoTags", default)]
        repo_tags: Option<Vec<String>>,
    }
    let items: Vec<Item> = serde_json::from_slice(bytes)
        .map_err(|e| format!("its manifest.json does not parse: {e}"))?;
    let mut out = Vec::new();
    for t in items
        .into_iter()
        .flat_map(|i| i.repo_tags.unwrap_or_default())
    {
        if !out.contains(&t) {
            out.push(t);
        }
    }
    Ok(out)
}

/// Image names of an OCI layout's index.json (containerd's annotation, else the ref name).
pub fn names_in_index(bytes: &[u8]) -> std::result::Result<Vec<String>, String> {
    let v: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| format!("its index.json does not parse: {e}"))?;
    let mut out = Vec::new();
    for m in v["manifests"].as_array().into_iter().flatten() {
        let a = &m["annotations"];
        let name = a["io.containerd.image.name"]
            .as_str()
            .or_else(|| a["org.opencontainers.image.ref.name"].as_str());
        if let Some(n) = name {
            if !out.iter().any(|o| o == n) {
                out.push(n.to_string());
            }
        }
    }
    Ok(out)
}

/// What `images load` did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Loaded {
    pub file: PathBuf,
    pub images: Vec<String>,
}

/// Load an archive into Docker.
pub async fn load(file: &Path) -> Result<Loaded> {
    let listed = {
        let f = file.to_path_buf();
        tokio::task::spawn_blocking(move || list_archive(&f))
            .await
            .map_err(|e| Error::internal(format!("reading the archive stopped: {e}")))??
    };
    let engine = docker::connect().await?.with_timeout(LONG);
    let f = tokio::fs::File::open(file).await.map_err(|e| {
        Error::bad_input(format!("cannot open {}: {e}", file.display()))
            .hint("check the path (appgear images save FILE writes one)")
    })?;
    let size = f.metadata().await.map(|m| m.len()).unwrap_or(0);
    let multi = indicatif::MultiProgress::new();
    let bar = ui::bytes_bar(&multi, format!("loading {} images", listed.len()));
    bar.set_length(size);
    let body = futures_util::stream::unfold((f, bar.clone()), |(mut f, bar)| async move {
        use tokio::io::AsyncReadExt;
        let mut buf = vec![0u8; 1 << 20];
        match f.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                bar.inc(n as u64);
                Some((
                    Ok::<_, std::io::Error>(axum::body::Bytes::from(buf)),
                    (f, bar),
                ))
            }
            Err(e) => Some((Err(e), (f, bar))),
        }
    });
    let opts = bollard::query_parameters::ImportImageOptionsBuilder::default()
        .quiet(true)
        .build();
    let mut stream = engine.import_image_stream(opts, body, None);
    let reading = async {
        let mut said = Vec::new();
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) => {
                    if let Some(s) = info.stream {
                        said.push(s.trim().to_string());
                    }
                }
                Err(e) => {
                    return Err(Error::not_ready(format!(
                        "Docker did not load {}: {}",
                        file.display(),
                        docker::message(&e)
                    ))
                    .hint("check Docker's free disk space (docker system df) and that the file is complete, then load again")
                    .cause(e));
                }
            }
        }
        Ok(said)
    };
    // Loading again after Ctrl-C is safe: Docker keeps what it has and adds the rest.
    let said = tokio::select! {
        r = reading => r,
        _ = tokio::signal::ctrl_c() => Err(Error::interrupted()),
    };
    let said = match said {
        Ok(s) => s,
        Err(e) => {
            bar.abandon();
            return Err(e);
        }
    };
    bar.finish_and_clear();
    let mut images: Vec<String> = said
        .iter()
        .filter_map(|s| s.strip_prefix("Loaded image: ").map(str::to_string))
        .collect();
    if images.is_empty() {
        images = listed;
    }
    ui::step(&format!(
        "loaded {} images from {}",
        images.len(),
        file.display()
    ));
    Ok(Loaded {
        file: file.to_path_buf(),
        images,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topology_b_core_holds_every_pin_and_the_suite_image() {
        let b = pinned_images(Topology::B, Profile::Core);
        let names: Vec<&str> = b.iter().map(|w| w.name.as_str()).collect();
        assert!(names.contains(&"kindest/node:v1.35.8"), "{names:?}");
        assert!(names.contains(&"docker.io/library/redis:8.8.1"));
        assert!(names.contains(&"docker.io/library/busybox:1.37.0"));
        assert_eq!(names.last(), Some(&build::default_reference().as_str()));
        assert_eq!(
            b.last().map(|w| w.how.as_str()),
            Some("appgear image build")
        );
        let redis = b.iter().find(|w| w.name.ends_with("redis:8.8.1")).unwrap();
        assert_eq!(
            redis.how,
            format!("docker pull {}", pins::REDIS_IMAGE.reference())
        );
        let mut dedup = names.clone();
        dedup.sort();
        dedup.dedup();
        assert_eq!(dedup.len(), names.len(), "each once");
        assert!(pinned_images(Topology::B, Profile::Full).len() >= b.len());
        let a = pinned_images(Topology::A, Profile::Core);
        assert_eq!(a.len(), 2);
        assert_eq!(a[0].name, crate::topology_a::keys::TRAEFIK_IMAGE);
    }

    #[test]
    fn many_missing_images_are_counted_and_each_is_in_the_detail() {
        let all = pinned_images(Topology::B, Profile::Core);
        let missing: Vec<&Wanted> = all.iter().take(5).collect();
        let e = missing_error(&missing, all.len());
        assert_eq!(e.exit_code(), 3);
        assert_eq!(
            e.message,
            format!(
                "5 of {} images are not in Docker here: kindest/node:v1.35.8, {}, and 3 more",
                all.len(),
                all[1].name
            )
        );
        assert_eq!(e.detail.len(), 5);
        assert!(e.detail[0]
            .starts_with("kindest/node:v1.35.8: docker pull kindest/node:v1.35.8@sha256:"));
    }

    #[test]
    fn before_init_topology_a_needs_appgears_default_images() {
        let dir = tempfile::tempdir().unwrap();
        let home = crate::topology_a::home::Home::new(dir.path().join("no-home-yet"));
        let a = wanted(&home, Topology::A, Profile::Core).unwrap();
        assert_eq!(a, pinned_images(Topology::A, Profile::Core));
        let b = wanted(&home, Topology::B, Profile::Full).unwrap();
        assert_eq!(b, pinned_images(Topology::B, Profile::Full));
    }

    #[test]
    fn topology_names() {
        assert_eq!(Topology::parse("b").unwrap(), Topology::B);
        let e = Topology::parse("c").unwrap_err();
        assert_eq!(e.exit_code(), 2);
    }

    #[test]
    fn names_from_docker_and_oci_archives() {
        let m = br#"[{"Config":"a.json","RepoTags":["redis:8.8.1","x:1"],"Layers":[]},{"Config":"b.json","RepoTags":null,"Layers":[]},{"Config":"c.json","RepoTags":["x:1"]}]"#;
        assert_eq!(names_in_manifest(m).unwrap(), ["redis:8.8.1", "x:1"]);
        assert!(names_in_manifest(b"{}").is_err());
        let i = br#"{"schemaVersion":2,"manifests":[{"annotations":{"io.containerd.image.name":"docker.io/library/redis:8.8.1","org.opencontainers.image.ref.name":"8.8.1"}},{"annotations":{"org.opencontainers.image.ref.name":"y:2"}},{}]}"#;
        assert_eq!(
            names_in_index(i).unwrap(),
            ["docker.io/library/redis:8.8.1", "y:2"]
        );
    }

    #[test]
    fn a_file_that_is_no_archive_is_bad_input() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.tar");
        std::fs::write(&p, b"not a tar at all").unwrap();
        let e = list_archive(&p).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(
            e.message.contains("is not an images archive"),
            "{}",
            e.message
        );
        let e = list_archive(&dir.path().join("absent.tar")).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(partial_name(Path::new("/")).is_err());
    }
}

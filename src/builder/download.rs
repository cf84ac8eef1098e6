//! `appgear builder download`: every artifact of a build's committed attempt into a folder, each
//! file created new (never over a file that is there) and checked against the manifest's
//! SHA-256; a file that does not match is removed.

use crate::builder::client::Client;
use crate::core::error::{Error, Result};
use crate::core::files;
use std::path::Path;

/// What a download wrote: the API's listing (build, attempt, state) and one entry per file.
pub struct Downloaded {
    pub list: serde_json::Value,
    pub files: Vec<serde_json::Value>,
}

pub async fn download(
    client: &Client,
    id: &str,
    out: &Path,
    each: &dyn Fn(&Path, u64, &str),
) -> Result<Downloaded> {
    let list = client.artifacts(id).await?;
    let artifacts: Vec<(String, u64, String)> = list["artifacts"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|x| {
                    (
                        x["name"].as_str().unwrap_or_default().to_string(),
                        x["size"].as_u64().unwrap_or(0),
                        x["sha256"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let cannot =
        |e: std::io::Error| files::refusal(&e).unwrap_or_else(|| files::not_writable(out, e));
    files::create_dir_all(out).map_err(cannot)?;
    let dir = files::Dir::open(out).map_err(cannot)?;
    // Every name is checked before anything is written, so a refusal leaves the folder as it was.
    for (name, _, _) in &artifacts {
        if !crate::builder::glob::is_safe_relative(name) {
            return Err(Error::internal(format!(
                "the API listed {name:?}, which is not a relative path"
            ))
            .hint("check the builder API's version"));
        }
        let there = match dir.entry(name) {
            Ok(e) => e.is_some(),
            // A folder on the way is missing: nothing is at the name.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(e) => return Err(cannot(e)),
        };
        if there {
            return Err(Error::bad_input(format!(
                "{} already exists; nothing was downloaded",
                dir.join(name).display()
            ))
            .hint("download into another folder with --out, or move that file away"));
        }
    }
    let mut done = Vec::new();
    for (name, size, sha256) in &artifacts {
        if let Some((parent, _)) = name.rsplit_once('/') {
            dir.create_dir_all(parent, 0o755).map_err(cannot)?;
        }
        let (file, created) = dir.open_rw(name, 0o644).map_err(cannot)?;
        if !created {
            return Err(Error::bad_input(format!(
                "{} appeared while downloading; it was left as it is",
                dir.join(name).display()
            ))
            .hint("download into another folder with --out"));
        }
        let mut file = tokio::fs::File::from_std(file);
        let got = match client.download(id, name, &mut file).await {
            Ok(g) => g,
            Err(e) => {
                // Only the file this run created is removed: a partial artifact is no artifact.
                let _ = dir.remove_file(name);
                return Err(e);
            }
        };
        if got.sha256 != *sha256 || got.bytes != *size {
            let _ = dir.remove_file(name);
            return Err(Error::check_failed(format!(
                "{name}: got {} bytes with sha256 {}, the manifest says {size} bytes with sha256 {sha256}; the file was removed",
                got.bytes, got.sha256
            ))
            .hint("download again; if it persists, the stored object differs from what the build recorded"));
        }
        each(&dir.join(name), got.bytes, &got.sha256);
        done.push(serde_json::json!({
            "name": name,
            "path": dir.join(name),
            "size": got.bytes,
            "sha256": got.sha256,
            "verified": true,
        }));
    }
    Ok(Downloaded { list, files: done })
}

//! An object store in a local folder, for running the builder on one machine without S3:
//! `<root>/objects/<key>` holds the bytes, `<root>/meta/<key>.json` what S3 keeps as metadata.
//! A create writes a temporary file and hard-links it into place, which fails if the key exists,
//! so a reader never sees half an object and nothing is overwritten.

use super::{body_bytes, Body, Listed, Meta, ObjectStore, StoreError};
use crate::builder::glob::is_safe_relative;
use std::io;
use std::path::{Path, PathBuf};

pub struct FsStore {
    root: PathBuf,
}

fn unavailable(what: &str, e: io::Error) -> StoreError {
    StoreError::Unavailable(format!("{what}: {e}"))
}

impl FsStore {
    pub fn new(root: impl Into<PathBuf>) -> FsStore {
        FsStore { root: root.into() }
    }

    fn object(&self, key: &str) -> Result<PathBuf, StoreError> {
        if !is_safe_relative(key) {
            return Err(StoreError::BadKey(key.to_string()));
        }
        Ok(self.root.join("objects").join(key))
    }

    fn meta(&self, key: &str) -> PathBuf {
        self.root.join("meta").join(format!("{key}.json"))
    }
}

fn put_blocking(
    root: &Path,
    obj: &Path,
    meta_path: &Path,
    key: &str,
    bytes: &[u8],
    meta: &Meta,
) -> Result<(), StoreError> {
    let tmp_dir = root.join("tmp");
    for d in [Some(tmp_dir.as_path()), obj.parent(), meta_path.parent()]
        .into_iter()
        .flatten()
    {
        std::fs::create_dir_all(d).map_err(|e| unavailable(&d.display().to_string(), e))?;
    }
    let mut rnd = [0u8; 8];
    getrandom::fill(&mut rnd).map_err(|e| StoreError::Unavailable(e.to_string()))?;
    let tmp = tmp_dir.join(crate::core::digest::hex(&rnd));
    std::fs::write(&tmp, bytes).map_err(|e| unavailable(&tmp.display().to_string(), e))?;
    // The metadata goes first, so an object that exists always has it.
    let m = serde_json::json!({"content_type": meta.content_type, "sha256": meta.sha256});
    let linked = std::fs::write(meta_path, m.to_string())
        .map_err(|e| unavailable(&meta_path.display().to_string(), e))
        .and_then(|()| match std::fs::hard_link(&tmp, obj) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                Err(StoreError::AlreadyExists(key.to_string()))
            }
            Err(e) => Err(unavailable(&obj.display().to_string(), e)),
        });
    let _ = std::fs::remove_file(&tmp);
    linked
}

fn list_blocking(dir: &Path, rel: &str, prefix: &str, out: &mut Vec<Listed>) -> io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let key = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        let ft = entry.file_type()?;
        if ft.is_dir() {
            if prefix.starts_with(&format!("{key}/"))
                || key.starts_with(prefix)
                || format!("{key}/").starts_with(prefix)
            {
                list_blocking(&entry.path(), &key, prefix, out)?;
            }
        } else if ft.is_file() && key.starts_with(prefix) {
            out.push(Listed {
                key,
                size: entry.metadata()?.len(),
            });
        }
    }
    Ok(())
}

impl ObjectStore for FsStore {
    async fn put_new(&self, key: &str, body: Body, meta: Meta) -> Result<(), StoreError> {
        let obj = self.object(key)?;
        let meta_path = self.meta(key);
        let bytes = body_bytes(key, body).await?;
        let (root, key) = (self.root.clone(), key.to_string());
        tokio::task::spawn_blocking(move || {
            put_blocking(&root, &obj, &meta_path, &key, &bytes, &meta)
        })
        .await
        .map_err(|e| StoreError::Unavailable(e.to_string()))?
    }

    async fn get(&self, key: &str) -> Result<(Vec<u8>, Meta), StoreError> {
        let obj = self.object(key)?;
        let bytes = match tokio::fs::read(&obj).await {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(StoreError::NotFound(key.to_string()))
            }
            Err(e) => return Err(unavailable(key, e)),
        };
        let meta_text = tokio::fs::read_to_string(self.meta(key))
            .await
            .map_err(|e| unavailable(key, e))?;
        let v: serde_json::Value = serde_json::from_str(&meta_text)
            .map_err(|e| StoreError::Unavailable(format!("metadata of {key}: {e}")))?;
        let field = |f: &str| {
            v.get(f)
                .and_then(|x| x.as_str())
                .unwrap_or_default()
                .to_string()
        };
        Ok((
            bytes,
            Meta {
                content_type: field("content_type"),
                sha256: field("sha256"),
            },
        ))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<Listed>, StoreError> {
        let dir = self.root.join("objects");
        let prefix = prefix.to_string();
        let mut out = tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            list_blocking(&dir, "", &prefix, &mut out).map(|()| out)
        })
        .await
        .map_err(|e| StoreError::Unavailable(e.to_string()))?
        .map_err(|e| unavailable("listing", e))?;
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    async fn ready(&self) -> Result<(), StoreError> {
        tokio::fs::create_dir_all(self.root.join("objects"))
            .await
            .map_err(|e| unavailable(&self.root.display().to_string(), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn creates_once_reads_back_and_lists_by_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let s = FsStore::new(dir.path());
        s.ready().await.unwrap();
        let meta = Meta {
            content_type: "application/json".into(),
            sha256: "ab".into(),
        };
        s.put_new(
            "ws-a/builds/b1/attempt-1/manifest.json",
            Body::Bytes(b"{}".to_vec()),
            meta.clone(),
        )
        .await
        .unwrap();
        s.put_new(
            "ws-a/builds/b1/attempt-1/artifacts/x/y.bin",
            Body::Bytes(vec![1, 2, 3]),
            meta.clone(),
        )
        .await
        .unwrap();
        s.put_new(
            "ws-a/builds/b10/attempt-1/SHA256SUMS",
            Body::Bytes(vec![]),
            meta.clone(),
        )
        .await
        .unwrap();
        assert_eq!(
            s.put_new(
                "ws-a/builds/b1/attempt-1/manifest.json",
                Body::Bytes(b"x".to_vec()),
                meta.clone()
            )
            .await,
            Err(StoreError::AlreadyExists(
                "ws-a/builds/b1/attempt-1/manifest.json".into()
            ))
        );
        assert_eq!(
            s.get("ws-a/builds/b1/attempt-1/manifest.json")
                .await
                .unwrap(),
            (b"{}".to_vec(), meta)
        );
        let listed = s.list("ws-a/builds/b1/").await.unwrap();
        assert_eq!(
            listed,
            vec![
                Listed {
                    key: "ws-a/builds/b1/attempt-1/artifacts/x/y.bin".into(),
                    size: 3
                },
                Listed {
                    key: "ws-a/builds/b1/attempt-1/manifest.json".into(),
                    size: 2
                },
            ]
        );
        assert_eq!(
            s.list("ws-a/builds/b1").await.unwrap().len(),
            3,
            "a prefix need not end at a folder"
        );
        assert!(matches!(
            s.get("../etc/passwd").await,
            Err(StoreError::BadKey(_))
        ));
        assert!(matches!(
            s.get("ws-a/none").await,
            Err(StoreError::NotFound(_))
        ));
    }
}

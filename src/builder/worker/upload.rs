//! Storing an attempt's outputs: each object created once, retried with backoff when the store
//! is unreachable. A create that finds the key already there after a failed try is accepted
//! only if the stored object carries the same SHA-256 (the earlier try did land).

use crate::builder::store::{Body, Meta, ObjectStore, StoreError};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    pub tries: u32,
    pub first_delay: Duration,
    pub max_delay: Duration,
}

impl Default for Retry {
    /// Five tries within about a minute, as the design notes ask.
    fn default() -> Self {
        Retry {
            tries: 5,
            first_delay: Duration::from_secs(2),
            max_delay: Duration::from_secs(30),
        }
    }
}

/// The Content-Type by extension, so a browser downloading an artifact knows what it got.
pub fn content_type(name: &str) -> &'static str {
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "deb" => "application/vnd.debian.binary-package",
        "rpm" => "application/x-rpm",
        "apk" => "application/vnd.android.package-archive",
        "aab" | "zip" => "application/zip",
        "gz" | "tgz" => "application/gzip",
        "json" => "application/json",
        "html" | "htm" => "text/html",
        "css" => "text/css",
        "js" | "mjs" => "text/javascript",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "txt" | "log" => "text/plain; charset=utf-8",
        "wasm" => "application/wasm",
        _ => "application/octet-stream",
    }
}

/// Create `key` from `body`, retrying an unreachable store.
pub async fn put<S: ObjectStore>(
    store: &S,
    key: &str,
    body: Body,
    meta: Meta,
    retry: Retry,
) -> Result<(), StoreError> {
    let mut delay = retry.first_delay;
    let mut last = StoreError::Unavailable("no try was made".into());
    for n in 0..retry.tries.max(1) {
        if n > 0 {
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(retry.max_delay);
        }
        match store.put_new(key, body.clone(), meta.clone()).await {
            Ok(()) => return Ok(()),
            Err(StoreError::AlreadyExists(k)) if n > 0 => {
                // Only the metadata: the object may be a large artifact.
                return match store.meta(key).await {
                    Ok(m) if m.sha256 == meta.sha256 => Ok(()),
                    _ => Err(StoreError::AlreadyExists(k)),
                };
            }
            Err(e @ StoreError::Unavailable(_)) => last = e,
            Err(e) => return Err(e),
        }
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builder::store::memory::MemoryStore;

    #[test]
    fn content_types() {
        assert_eq!(
            content_type("deb/app_1.0_amd64.deb"),
            "application/vnd.debian.binary-package"
        );
        assert_eq!(content_type("INDEX.HTML"), "text/html");
        assert_eq!(content_type("noext"), "application/octet-stream");
    }

    #[tokio::test]
    async fn retries_an_unavailable_store_and_refuses_an_overwrite() {
        let store = std::sync::Arc::new(MemoryStore::new());
        store.set_down(true);
        let retry = Retry {
            tries: 4,
            first_delay: Duration::from_millis(30),
            max_delay: Duration::from_millis(60),
        };
        let s2 = store.clone();
        let back = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            s2.set_down(false);
        });
        let meta = Meta {
            content_type: "text/plain".into(),
            sha256: "1".into(),
        };
        put(
            &*store,
            "k",
            Body::Bytes(b"a".to_vec()),
            meta.clone(),
            retry,
        )
        .await
        .unwrap();
        back.await.unwrap();
        assert!(matches!(
            put(&*store, "k", Body::Bytes(b"b".to_vec()), meta, retry).await,
            Err(StoreError::AlreadyExists(_))
        ));
        store.set_down(true);
        let quick = Retry {
            tries: 2,
            first_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(1),
        };
        assert!(matches!(
            put(&*store, "k2", Body::Bytes(vec![]), Meta::default(), quick).await,
            Err(StoreError::Unavailable(_))
        ));
    }
}

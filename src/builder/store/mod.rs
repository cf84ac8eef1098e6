//! Where attempts leave their outputs: an object store with the few operations the builder
//! needs. Every write is a create that refuses an existing key (S3 `If-None-Match: *`), because
//! keys are attempt-scoped and never reused: an overwrite can only be a bug or a zombie.
//!
//! Three stores implement it: S3 (object_store with `aws`, for Ceph RGW), a folder (local runs)
//! and memory (tests). `Store` is the one a command chose at start.

pub mod chosen;
pub mod fs;
pub mod memory;
pub mod s3;

pub use chosen::Store;

use axum::body::Bytes;
use futures_util::stream::BoxStream;
use std::future::Future;
use std::path::PathBuf;

/// What is stored beside an object's bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Meta {
    pub content_type: String,
    /// The SHA-256 the writer computed (S3: `x-amz-meta-sha256`): stores do not check it, so the
    /// builder computes it itself.
    pub sha256: String,
}

/// An object's bytes: in memory for small files, a local file for artifacts.
#[derive(Debug, Clone)]
pub enum Body {
    Bytes(Vec<u8>),
    File(PathBuf),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub key: String,
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// The key exists: nothing was written.
    AlreadyExists(String),
    NotFound(String),
    /// The key cannot be stored (escapes the store, is empty).
    BadKey(String),
    /// The store did not answer or failed; worth retrying.
    Unavailable(String),
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::AlreadyExists(k) => write!(f, "{k} already exists"),
            StoreError::NotFound(k) => write!(f, "{k} does not exist"),
            StoreError::BadKey(k) => write!(f, "{k:?} is not a valid object key"),
            StoreError::Unavailable(m) => write!(f, "object store unavailable: {m}"),
        }
    }
}

impl std::error::Error for StoreError {}

/// The operations the builder uses. Futures are `Send` so a worker can run uploads on any task.
pub trait ObjectStore: Send + Sync {
    /// Store `body` under `key` unless the key exists.
    fn put_new(
        &self,
        key: &str,
        body: Body,
        meta: Meta,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    fn get(&self, key: &str) -> impl Future<Output = Result<(Vec<u8>, Meta), StoreError>> + Send;

    /// Every key that starts with `prefix`, sorted.
    fn list(&self, prefix: &str) -> impl Future<Output = Result<Vec<Listed>, StoreError>> + Send;

    /// Whether the store answers (for `/readyz`).
    fn ready(&self) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// An object's metadata without its bytes (an artifact may be large). The local stores
    /// read the object.
    fn meta(&self, key: &str) -> impl Future<Output = Result<Meta, StoreError>> + Send {
        let key = key.to_string();
        async move { self.get(&key).await.map(|(_, m)| m) }
    }

    /// An object as a stream, for serving downloads without holding a large artifact in
    /// memory. The local stores read it whole (their objects are on this machine anyway).
    fn open(&self, key: &str) -> impl Future<Output = Result<Opened, StoreError>> + Send {
        let key = key.to_string();
        async move {
            let (bytes, meta) = self.get(&key).await?;
            let size = bytes.len() as u64;
            let body: ByteStream =
                Box::pin(futures_util::stream::once(
                    async move { Ok(Bytes::from(bytes)) },
                ));
            Ok(Opened { size, meta, body })
        }
    }
}

/// The chunks of an object being read.
pub type ByteStream = BoxStream<'static, Result<Bytes, StoreError>>;

/// An object opened for reading.
pub struct Opened {
    pub size: u64,
    pub meta: Meta,
    pub body: ByteStream,
}

/// The bytes of a body (the in-memory and folder stores read files whole).
pub(crate) async fn body_bytes(key: &str, body: Body) -> Result<Vec<u8>, StoreError> {
    match body {
        Body::Bytes(b) => Ok(b),
        Body::File(p) => tokio::fs::read(&p).await.map_err(|e| {
            StoreError::Unavailable(format!("cannot read {} for {key}: {e}", p.display()))
        }),
    }
}

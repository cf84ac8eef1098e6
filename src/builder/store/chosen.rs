//! The store a command runs with, chosen once at start (`setup::store`): S3 in a cluster, a
//! folder on one machine. An enum rather than a trait object, because the trait's methods
//! return `impl Future` and so cannot be called through `dyn`.

use super::fs::FsStore;
use super::s3::S3Store;
use super::{Body, Listed, Meta, ObjectStore, Opened, StoreError};
use std::path::PathBuf;

pub enum Store {
    S3(S3Store),
    /// The store and its folder (for messages).
    Folder(FsStore, PathBuf),
}

impl Store {
    pub fn folder(root: impl Into<PathBuf>) -> Store {
        let root = root.into();
        Store::Folder(FsStore::new(&root), root)
    }

    /// What the store is, for the start-up line (no credentials in it).
    pub fn describe(&self) -> String {
        match self {
            Store::S3(s) => s.describe(),
            Store::Folder(_, root) => format!("folder {}", root.display()),
        }
    }
}

impl ObjectStore for Store {
    async fn put_new(&self, key: &str, body: Body, meta: Meta) -> Result<(), StoreError> {
        match self {
            Store::S3(s) => s.put_new(key, body, meta).await,
            Store::Folder(f, _) => f.put_new(key, body, meta).await,
        }
    }

    async fn get(&self, key: &str) -> Result<(Vec<u8>, Meta), StoreError> {
        match self {
            Store::S3(s) => s.get(key).await,
            Store::Folder(f, _) => f.get(key).await,
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<Listed>, StoreError> {
        match self {
            Store::S3(s) => s.list(prefix).await,
            Store::Folder(f, _) => f.list(prefix).await,
        }
    }

    async fn ready(&self) -> Result<(), StoreError> {
        match self {
            Store::S3(s) => s.ready().await,
            Store::Folder(f, _) => f.ready().await,
        }
    }

    async fn meta(&self, key: &str) -> Result<Meta, StoreError> {
        match self {
            Store::S3(s) => s.meta(key).await,
            Store::Folder(f, _) => f.meta(key).await,
        }
    }

    async fn open(&self, key: &str) -> Result<Opened, StoreError> {
        match self {
            Store::S3(s) => s.open(key).await,
            Store::Folder(f, _) => f.open(key).await,
        }
    }
}

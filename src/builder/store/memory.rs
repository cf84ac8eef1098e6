//! An object store in memory, for tests: same create-only semantics as S3 with
//! `If-None-Match: *`, and a switch that makes it unavailable to exercise upload failures.

use super::{body_bytes, Body, Listed, Meta, ObjectStore, StoreError};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

#[derive(Default)]
pub struct MemoryStore {
    objects: Mutex<BTreeMap<String, (Vec<u8>, Meta)>>,
    down: AtomicBool,
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// While down, every call fails with `Unavailable`, as S3 does when it cannot be reached.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    fn check_up(&self) -> Result<(), StoreError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable("the store is down".into()));
        }
        Ok(())
    }

    fn objects(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, (Vec<u8>, Meta)>> {
        // A panic while holding the lock cannot leave a half-written map: each change is one
        // insert. So a poisoned lock is still a consistent map.
        self.objects.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl ObjectStore for MemoryStore {
    async fn put_new(&self, key: &str, body: Body, meta: Meta) -> Result<(), StoreError> {
        self.check_up()?;
        if key.is_empty() {
            return Err(StoreError::BadKey(key.to_string()));
        }
        let bytes = body_bytes(key, body).await?;
        let mut objects = self.objects();
        if objects.contains_key(key) {
            return Err(StoreError::AlreadyExists(key.to_string()));
        }
        objects.insert(key.to_string(), (bytes, meta));
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<(Vec<u8>, Meta), StoreError> {
        self.check_up()?;
        self.objects()
            .get(key)
            .cloned()
            .ok_or_else(|| StoreError::NotFound(key.to_string()))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<Listed>, StoreError> {
        self.check_up()?;
        Ok(self
            .objects()
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, (b, _))| Listed {
                key: k.clone(),
                size: b.len() as u64,
            })
            .collect())
    }

    async fn ready(&self) -> Result<(), StoreError> {
        self.check_up()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn create_only_list_and_down() {
        let s = MemoryStore::new();
        let meta = Meta {
            content_type: "text/plain".into(),
            sha256: "x".into(),
        };
        s.put_new("a/1", Body::Bytes(b"one".to_vec()), meta.clone())
            .await
            .unwrap();
        assert_eq!(
            s.put_new("a/1", Body::Bytes(b"two".to_vec()), meta.clone())
                .await,
            Err(StoreError::AlreadyExists("a/1".into()))
        );
        assert_eq!(s.get("a/1").await.unwrap(), (b"one".to_vec(), meta.clone()));
        s.put_new("a/2", Body::Bytes(vec![]), meta.clone())
            .await
            .unwrap();
        s.put_new("b/1", Body::Bytes(vec![]), meta.clone())
            .await
            .unwrap();
        let keys: Vec<String> = s
            .list("a/")
            .await
            .unwrap()
            .into_iter()
            .map(|l| l.key)
            .collect();
        assert_eq!(keys, vec!["a/1", "a/2"]);
        s.set_down(true);
        assert!(matches!(
            s.get("a/1").await,
            Err(StoreError::Unavailable(_))
        ));
        assert!(s.ready().await.is_err());
    }
}

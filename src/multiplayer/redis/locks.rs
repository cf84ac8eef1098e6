//! Advisory locks on a path inside a room: a Redis lease (`SET NX PX`, renewed by its owner,
//! released by compare-and-delete) plus a fencing token (`INCR`) handed out with each grant.
//!
//! An owner is a string: `yjs:<clientID>` for an editor that asked through its awareness state,
//! or `http:<token subject>` for an HTTP caller. The lease value is `<fencing>|<owner>`.

use crate::multiplayer::redis::link::{Keys, RedisLink};
use serde::Serialize;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

pub const MAX_PATH_LEN: usize = 1024;
pub const MAX_OWNER_LEN: usize = 256;
/// An editor may ask for this many locks at once; more are ignored.
pub const MAX_REQUESTS_PER_CLIENT: usize = 64;
/// The awareness field an editor sets to ask for locks: `{"lockRequests": ["src/a.ts"]}`.
pub const REQUEST_FIELD: &str = "lockRequests";

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Grant {
    pub granted: bool,
    pub path: String,
    /// The holder now (the caller when granted).
    pub owner: String,
    pub fencing: u64,
    pub ttl_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, PartialOrd, Ord)]
pub struct LockInfo {
    pub path: String,
    pub owner: String,
    pub fencing: u64,
    #[serde(rename = "expiresInMs")]
    pub expires_in_ms: u64,
}

/// A path is any non-empty text without control characters, up to 1 KiB.
pub fn valid_path(p: &str) -> bool {
    !p.is_empty() && p.len() <= MAX_PATH_LEN && !p.chars().any(char::is_control)
}

pub fn valid_owner(o: &str) -> bool {
    !o.is_empty() && o.len() <= MAX_OWNER_LEN && !o.chars().any(char::is_control)
}

/// The owner name of an editor client.
/// Owners of editor locks start with this; no HTTP caller may use it.
pub const EDITOR_OWNER_PREFIX: &str = "yjs:";

pub fn editor_owner(client_id: u64) -> String {
    format!("{EDITOR_OWNER_PREFIX}{client_id}")
}

/// The owner an HTTP caller acts as: the subject of its token.
pub fn http_owner(subject: &str) -> String {
    format!("http:{subject}")
}

/// The lock paths an awareness state asks for. Invalid entries are skipped; a state that is
/// not JSON or has no requests asks for nothing.
pub fn requested_paths(state_json: &str) -> BTreeSet<String> {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(state_json) else {
        return BTreeSet::new();
    };
    v.get(REQUEST_FIELD)
        .and_then(|r| r.as_array())
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i.as_str())
                .filter(|p| valid_path(p))
                .take(MAX_REQUESTS_PER_CLIENT)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// What to take and what to give back when an owner's wishes change from `prev` to `next`.
pub fn diff(prev: &BTreeSet<String>, next: &BTreeSet<String>) -> (Vec<String>, Vec<String>) {
    let acquire = next.difference(prev).cloned().collect();
    let release = prev.difference(next).cloned().collect();
    (acquire, release)
}

/// `"<fencing>|<owner>"` → parts.
pub fn parse_lease(v: &str) -> Option<(u64, &str)> {
    let (f, o) = v.split_once('|')?;
    Some((f.parse().ok()?, o))
}

/// Take the lease if free, renew it if ours; report the holder otherwise.
/// Returns `{granted, fencing, owner, pttl}`.
const ACQUIRE: &str = r#"
local v = redis.call('GET', KEYS[1])
if v then
  local f, o = string.match(v, '^(%d+)|(.*)$')
  if o == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    redis.call('SADD', KEYS[3], ARGV[3])
    return {1, f, o, tonumber(ARGV[2])}
  end
  return {0, f or '0', o or '', redis.call('PTTL', KEYS[1])}
end
local f = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], f .. '|' .. ARGV[1], 'NX', 'PX', ARGV[2])
redis.call('SADD', KEYS[3], ARGV[3])
return {1, tostring(f), ARGV[1], tonumber(ARGV[2])}
"#;

/// Drop paths from a room's index whose lease is gone, checked at the moment of removal: a
/// path re-locked since the caller looked stays listed. KEYS: index, then one lease per path in
/// ARGV.
const FORGET_EXPIRED: &str = r#"
for i, path in ipairs(ARGV) do
  if redis.call('EXISTS', KEYS[i + 1]) == 0 then
    redis.call('SREM', KEYS[1], path)
  end
end
return 0
"#;

/// Delete only if we hold it.
const RELEASE: &str = r#"
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
local f, o = string.match(v, '^(%d+)|(.*)$')
if o ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1
"#;

#[derive(Clone)]
pub struct LockStore {
    link: Arc<RedisLink>,
    keys: Keys,
}

impl LockStore {
    pub fn new(link: Arc<RedisLink>, keys: Keys) -> Self {
        LockStore { link, keys }
    }

    async fn conn(&self) -> Result<redis::aio::MultiplexedConnection, String> {
        self.link.conn().await.map_err(|e| e.to_string())
    }

    async fn fail(&self, e: redis::RedisError) -> String {
        self.link.on_error(&e).await;
        e.to_string()
    }

    pub async fn acquire(
        &self,
        room: &str,
        path: &str,
        owner: &str,
        ttl: Duration,
    ) -> Result<Grant, String> {
        let mut c = self.conn().await?;
        let r: redis::RedisResult<(i64, String, String, i64)> = redis::Script::new(ACQUIRE)
            .key(self.keys.lock(room, path))
            .key(self.keys.fence(room, path))
            .key(self.keys.lock_index(room))
            .arg(owner)
            .arg(ttl.as_millis() as u64)
            .arg(path)
            .invoke_async(&mut c)
            .await;
        let (granted, fencing, holder, pttl) = match r {
            Ok(v) => v,
            Err(e) => return Err(self.fail(e).await),
        };
        Ok(Grant {
            granted: granted == 1,
            path: path.to_string(),
            owner: holder,
            fencing: fencing.parse().unwrap_or(0),
            ttl_ms: pttl.max(0) as u64,
        })
    }

    pub async fn release(&self, room: &str, path: &str, owner: &str) -> Result<bool, String> {
        let mut c = self.conn().await?;
        let r: redis::RedisResult<i64> = redis::Script::new(RELEASE)
            .key(self.keys.lock(room, path))
            .arg(owner)
            .invoke_async(&mut c)
            .await;
        match r {
            Ok(v) => Ok(v == 1),
            Err(e) => Err(self.fail(e).await),
        }
    }

    /// Every live lease of a room; expired paths are dropped from the index on the way.
    pub async fn list(&self, room: &str) -> Result<Vec<LockInfo>, String> {
        let mut c = self.conn().await?;
        let index = self.keys.lock_index(room);
        let paths: Vec<String> = match redis::cmd("SMEMBERS").arg(&index).query_async(&mut c).await
        {
            Ok(p) => p,
            Err(e) => return Err(self.fail(e).await),
        };
        if paths.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for p in &paths {
            let k = self.keys.lock(room, p);
            pipe.get(&k).cmd("PTTL").arg(&k);
        }
        let values: Vec<(Option<String>, i64)> = match pipe.query_async(&mut c).await {
            Ok(v) => v,
            Err(e) => return Err(self.fail(e).await),
        };
        let mut out = Vec::new();
        let mut gone = Vec::new();
        for (path, (value, pttl)) in paths.into_iter().zip(values) {
            match value.as_deref().and_then(parse_lease) {
                Some((fencing, owner)) => out.push(LockInfo {
                    owner: owner.to_string(),
                    path,
                    fencing,
                    expires_in_ms: pttl.max(0) as u64,
                }),
                None => gone.push(path),
            }
        }
        if !gone.is_empty() {
            let script = redis::Script::new(FORGET_EXPIRED);
            let mut call = script.prepare_invoke();
            call.key(&index);
            for p in &gone {
                call.key(self.keys.lock(room, p)).arg(p);
            }
            let _: redis::RedisResult<i64> = call.invoke_async(&mut c).await;
        }
        out.sort();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn requests_from_awareness_state() {
        let s = r#"{"user":{"name":"ana"},"lockRequests":["src/a.ts","src/a.ts","",3,"b"]}"#;
        let got: Vec<_> = requested_paths(s).into_iter().collect();
        assert_eq!(got, vec!["b".to_string(), "src/a.ts".to_string()]);
        assert!(requested_paths("null").is_empty());
        assert!(requested_paths("not json").is_empty());
        assert!(requested_paths(r#"{"lockRequests":"x"}"#).is_empty());
    }

    #[test]
    fn lease_values() {
        assert_eq!(parse_lease("12|yjs:1"), Some((12, "yjs:1")));
        assert_eq!(parse_lease("12|a|b"), Some((12, "a|b")));
        assert_eq!(parse_lease("x|a"), None);
        assert_eq!(parse_lease("12"), None);
    }

    #[test]
    fn paths_and_owners() {
        assert!(valid_path("src/main.rs"));
        assert!(valid_path("ção/ü.ts"));
        assert!(!valid_path(""));
        assert!(!valid_path("a\nb"));
        assert!(!valid_path(&"x".repeat(MAX_PATH_LEN + 1)));
        assert!(valid_owner("yjs:1"));
        assert!(!valid_owner(""));
    }

    fn set() -> impl Strategy<Value = BTreeSet<String>> {
        proptest::collection::btree_set("[a-c]{1,2}", 0..6)
    }

    proptest! {
        #[test]
        fn diff_reaches_the_wished_state(prev in set(), next in set()) {
            let (acquire, release) = diff(&prev, &next);
            let mut now = prev.clone();
            for r in &release { prop_assert!(now.remove(r)); }
            for a in &acquire { prop_assert!(now.insert(a.clone())); }
            prop_assert_eq!(now, next);
        }

        #[test]
        fn request_parsing_never_panics(s in "\\PC{0,200}") {
            let r = requested_paths(&s);
            prop_assert!(r.len() <= MAX_REQUESTS_PER_CLIENT);
            prop_assert!(r.iter().all(|p| valid_path(p)));
        }

        #[test]
        fn lease_round_trips(f in any::<u64>(), o in "\\PC{1,40}") {
            let v = format!("{f}|{o}");
            prop_assert_eq!(parse_lease(&v), Some((f, o.as_str())));
        }
    }
}

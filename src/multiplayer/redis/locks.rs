//! Advisory locks on a path inside a room: a Redis lease (`SET PX`, renewed by its owner,
//! released by compare-and-delete) plus a fencing token handed out with each grant.
//!
//! An owner is a string: `yjs:<clientID>` for an editor that asked through its awareness state,
//! or `http:<token subject>` for an HTTP caller. The lease value is `<fencing>|<owner>`.
//!
//! Every key expires except one per workspace:
//! - the lease, after its TTL;
//! - the room's lock table (a hash `path → <expires at ms>|<fencing>|<owner>`, the listing and
//!   the counts the limits need), once its longest lease would have run out; entries whose
//!   time passed are dropped whenever the table is read;
//! - the fencing counter, one per workspace, which never expires. Fencing tokens must only
//!   grow for a path: a holder that stalled past its lease still carries its old token, and a
//!   storage that compares tokens must see every later holder's as higher. A counter per path
//!   left a key behind for every path ever locked (100,000 paths, 100,000 keys, forever); one
//!   that expired with its lock would start again at 1 below the stale holder's token. One
//!   counter for the whole workspace grows for every path at the cost of one key. Paths locked
//!   by earlier versions kept their own counter (`fence:<room>:<path>`): a new grant reads it
//!   and stays above it (older replicas, during a rolling upgrade, keep counting from there),
//!   and it expires a week after its last use.
//!
//! Limits, checked at each new grant against the table: a room holds at most `per_room` locks
//! and an owner at most `per_owner` of them; a renewal is never refused.

use crate::core::redis::RedisLink;
use crate::multiplayer::redis::keys::Keys;
use serde::Serialize;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

pub const MAX_PATH_LEN: usize = 1024;
pub const MAX_OWNER_LEN: usize = 256;
/// How long a per-path fencing counter of an earlier version lives after its last use.
const LEGACY_FENCE_TTL_MS: u64 = 7 * 24 * 3600 * 1000;
/// The awareness field an editor sets to ask for locks: `{"lockRequests": ["src/a.ts"]}`.
pub const REQUEST_FIELD: &str = "lockRequests";

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Grant {
    pub granted: bool,
    pub path: String,
    /// The holder now (the caller when granted; empty when a limit refused it).
    pub owner: String,
    pub fencing: u64,
    pub ttl_ms: u64,
    /// Not granted because of a limit, not because someone holds it.
    #[serde(skip)]
    pub over: Option<Over>,
}

/// Which limit refused a grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Over {
    /// The room holds `per_room` locks.
    Room(usize),
    /// The owner holds `per_owner` locks in the room.
    Owner(usize),
}

/// For messages: why the lock was not granted.
impl std::fmt::Display for Over {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Over::Room(n) => write!(
                f,
                "the room holds {n} locks, the most it may (--max-locks-per-room)"
            ),
            Over::Owner(n) => write!(
                f,
                "the holder holds {n} locks in this room, the most it may (--max-locks-per-owner)"
            ),
        }
    }
}

/// How many locks a room, and an owner in a room, may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockLimits {
    pub per_room: usize,
    pub per_owner: usize,
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

/// The lock paths an awareness state asks for, cut to the first `max` distinct valid ones, and
/// how many distinct valid paths it asked for. Invalid entries are skipped; a state that is not
/// JSON or has no requests asks for nothing.
pub fn requested_paths(state_json: &str, max: usize) -> (BTreeSet<String>, usize) {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(state_json) else {
        return (BTreeSet::new(), 0);
    };
    let Some(items) = v.get(REQUEST_FIELD).and_then(|r| r.as_array()) else {
        return (BTreeSet::new(), 0);
    };
    let mut kept = BTreeSet::new();
    let mut asked = BTreeSet::new();
    for p in items
        .iter()
        .filter_map(|i| i.as_str())
        .filter(|p| valid_path(p))
    {
        if asked.insert(p) && kept.len() < max {
            kept.insert(p.to_string());
        }
    }
    (kept, asked.len())
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

/// Redis' clock in milliseconds, so that every replica judges expiry alike. (Before Redis 5 a
/// script had to ask for effects replication to write after reading the time.)
const NOW: &str = r#"
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"#;

/// Take the lease if free and within the limits, renew it if ours; report the holder otherwise.
/// KEYS: lease, the workspace's fencing counter, the room's table, the path's counter of an
/// earlier version. ARGV: owner, ttl ms, path, per-room limit, per-owner limit, the old
/// counter's TTL. Returns `{status, fencing, holder, pttl}`: status 1 granted, 0 held by
/// someone else, 2 the room is full, 3 the owner holds its most.
const ACQUIRE: &str = r#"
local owner, ttl, path = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local function record(f)
  redis.call('HSET', KEYS[3], path, string.format('%d|%s|%s', now + ttl, f, owner))
  if redis.call('PTTL', KEYS[3]) < ttl then redis.call('PEXPIRE', KEYS[3], ttl) end
end
local v = redis.call('GET', KEYS[1])
if v then
  local f, o = string.match(v, '^(%d+)|(.*)$')
  if o == owner then
    redis.call('PEXPIRE', KEYS[1], ttl)
    record(f)
    return {1, f, o, ttl}
  end
  return {0, f or '0', o or '', redis.call('PTTL', KEYS[1])}
end
local held, mine = 0, 0
local entries = redis.call('HGETALL', KEYS[3])
for i = 1, #entries, 2 do
  local p = entries[i]
  local ends, o = string.match(entries[i + 1], '^(%d+)|%d+|(.*)$')
  if not ends or tonumber(ends) <= now then
    redis.call('HDEL', KEYS[3], p)
  elseif p ~= path then
    held = held + 1
    if o == owner then mine = mine + 1 end
  end
end
if held >= tonumber(ARGV[4]) then return {2, '0', '', 0} end
if mine >= tonumber(ARGV[5]) then return {3, '0', '', 0} end
local f = redis.call('INCR', KEYS[2])
local old = tonumber(redis.call('GET', KEYS[4]))
if old then
  if old >= f then
    f = old + 1
    redis.call('SET', KEYS[2], string.format('%d', f))
  end
  redis.call('SET', KEYS[4], string.format('%d', f), 'PX', ARGV[6])
end
f = string.format('%d', f)
redis.call('SET', KEYS[1], f .. '|' .. owner, 'PX', ttl)
record(f)
return {1, f, owner, ttl}
"#;

/// Delete only if we hold it. KEYS: lease, the room's table. ARGV: owner, path.
const RELEASE: &str = r#"
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
local f, o = string.match(v, '^(%d+)|(.*)$')
if o ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HDEL', KEYS[2], ARGV[2])
return 1
"#;

/// The room's live locks as `path, fencing, owner, ms left` groups; dead entries are dropped.
/// KEYS: the room's table.
const LIST: &str = r#"
local out = {}
local entries = redis.call('HGETALL', KEYS[1])
for i = 1, #entries, 2 do
  local ends, f, o = string.match(entries[i + 1], '^(%d+)|(%d+)|(.*)$')
  if not ends or tonumber(ends) <= now then
    redis.call('HDEL', KEYS[1], entries[i])
  else
    table.insert(out, entries[i])
    table.insert(out, f)
    table.insert(out, o)
    table.insert(out, string.format('%d', tonumber(ends) - now))
  end
end
return out
"#;

fn script(body: &str) -> redis::Script {
    redis::Script::new(&format!("{NOW}{body}"))
}

#[derive(Clone)]
pub struct LockStore {
    link: Arc<RedisLink>,
    keys: Keys,
    limits: LockLimits,
}

impl LockStore {
    /// Locks without limits; the gateway sets them with [`LockStore::limited`].
    pub fn new(link: Arc<RedisLink>, keys: Keys) -> Self {
        LockStore {
            link,
            keys,
            limits: LockLimits {
                per_room: usize::MAX,
                per_owner: usize::MAX,
            },
        }
    }

    pub fn limited(self, limits: LockLimits) -> Self {
        LockStore { limits, ..self }
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
        let r: redis::RedisResult<(i64, String, String, i64)> = script(ACQUIRE)
            .key(self.keys.lock(room, path))
            .key(self.keys.fence_counter())
            .key(self.keys.lock_table(room))
            .key(self.keys.fence(room, path))
            .arg(owner)
            .arg(ttl.as_millis() as u64)
            .arg(path)
            .arg(self.limits.per_room)
            .arg(self.limits.per_owner)
            .arg(LEGACY_FENCE_TTL_MS)
            .invoke_async(&mut c)
            .await;
        let (status, fencing, holder, pttl) = match r {
            Ok(v) => v,
            Err(e) => return Err(self.fail(e).await),
        };
        Ok(Grant {
            granted: status == 1,
            path: path.to_string(),
            owner: holder,
            fencing: fencing.parse().unwrap_or(0),
            ttl_ms: pttl.max(0) as u64,
            over: match status {
                2 => Some(Over::Room(self.limits.per_room)),
                3 => Some(Over::Owner(self.limits.per_owner)),
                _ => None,
            },
        })
    }

    pub async fn release(&self, room: &str, path: &str, owner: &str) -> Result<bool, String> {
        let mut c = self.conn().await?;
        let r: redis::RedisResult<i64> = redis::Script::new(RELEASE)
            .key(self.keys.lock(room, path))
            .key(self.keys.lock_table(room))
            .arg(owner)
            .arg(path)
            .invoke_async(&mut c)
            .await;
        match r {
            Ok(v) => Ok(v == 1),
            Err(e) => Err(self.fail(e).await),
        }
    }

    /// Every live lease of a room, by path.
    pub async fn list(&self, room: &str) -> Result<Vec<LockInfo>, String> {
        let mut c = self.conn().await?;
        let r: redis::RedisResult<Vec<String>> = script(LIST)
            .key(self.keys.lock_table(room))
            .invoke_async(&mut c)
            .await;
        let flat = match r {
            Ok(v) => v,
            Err(e) => return Err(self.fail(e).await),
        };
        let mut out: Vec<LockInfo> = flat
            .chunks_exact(4)
            .map(|l| LockInfo {
                path: l[0].clone(),
                fencing: l[1].parse().unwrap_or(0),
                owner: l[2].clone(),
                expires_in_ms: l[3].parse().unwrap_or(0),
            })
            .collect();
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
        let (got, asked) = requested_paths(s, 10);
        assert_eq!(
            Vec::from_iter(got),
            ["b".to_string(), "src/a.ts".to_string()]
        );
        assert_eq!(asked, 2);
        assert_eq!(requested_paths("null", 10), (BTreeSet::new(), 0));
        assert_eq!(requested_paths("not json", 10), (BTreeSet::new(), 0));
        assert_eq!(
            requested_paths(r#"{"lockRequests":"x"}"#, 10),
            (BTreeSet::new(), 0)
        );
    }

    #[test]
    fn requests_beyond_the_limit_are_cut_in_the_order_asked() {
        let s = r#"{"lockRequests":["c","a","c","b","d"]}"#;
        let (kept, asked) = requested_paths(s, 2);
        assert_eq!(Vec::from_iter(kept), ["a".to_string(), "c".to_string()]);
        assert_eq!(asked, 4);
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
            let (r, asked) = requested_paths(&s, 8);
            prop_assert!(r.len() <= 8 && r.len() <= asked);
            prop_assert!(r.iter().all(|p| valid_path(p)));
        }

        #[test]
        fn lease_round_trips(f in any::<u64>(), o in "\\PC{1,40}") {
            let v = format!("{f}|{o}");
            prop_assert_eq!(parse_lease(&v), Some((f, o.as_str())));
        }
    }
}

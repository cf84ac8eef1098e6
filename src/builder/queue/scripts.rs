//! The Lua scripts that make each queue change atomic. Policy is not here: the caller decides
//! the new state with `state::Status::apply` and the scripts only check that nothing changed
//! since it read the build (its `rev` and `attempt`), then write and move the stream entries in
//! the same step.

/// Submit. KEYS: job hash, target stream, idempotency key, index.
/// ARGV: idempotency TTL in seconds ('' without a key), build id, spec SHA-256, now (ms), group,
/// then field/value pairs of the new hash.
/// Returns `{1, id}` for a new build, `{0, "<id> <spec sha>"}` when the key was used before.
pub const SUBMIT: &str = r#"
if ARGV[1] ~= '' then
  local seen = redis.call('GET', KEYS[3])
  if seen then return {0, seen} end
end
-- The group starts at 0 so that it sees entries added before it existed.
pcall(redis.call, 'XGROUP', 'CREATE', KEYS[2], ARGV[5], '0', 'MKSTREAM')
local entry = redis.call('XADD', KEYS[2], '*', 'build', ARGV[2], 'attempt', '1')
redis.call('HSET', KEYS[1], 'entry', entry, unpack(ARGV, 6))
redis.call('ZADD', KEYS[4], ARGV[4], ARGV[2])
if ARGV[1] ~= '' then
  redis.call('SET', KEYS[3], ARGV[2] .. ' ' .. ARGV[3], 'EX', ARGV[1])
end
return {1, ARGV[2]}
"#;

/// Compare-and-set of a build. KEYS: job hash, target stream, log stream, counters hash.
/// ARGV: expected rev, expected attempt, group, entry to acknowledge (''), '1' to add an entry
/// for the next attempt (''), build id, attempt of the added entry, seconds to keep the build
/// and its log once written ('' to keep them), the number n of counter increments, n pairs of
/// counter field/amount (`counters::effects`), then field/value pairs of the build.
/// The counters move only after the check, so a refused (stale) write counts nothing.
/// Returns `{1, added entry id or ''}`, or `{0, rev, attempt}` as found when they differ.
pub const CAS: &str = r#"
local cur = redis.call('HMGET', KEYS[1], 'rev', 'attempt')
local rev, attempt = tostring(cur[1] or ''), tostring(cur[2] or '')
if rev ~= ARGV[1] or attempt ~= ARGV[2] then
  return {0, rev, attempt}
end
if ARGV[4] ~= '' then
  redis.call('XACK', KEYS[2], ARGV[3], ARGV[4])
end
local added = ''
if ARGV[5] == '1' then
  added = redis.call('XADD', KEYS[2], '*', 'build', ARGV[6], 'attempt', ARGV[7])
  redis.call('HSET', KEYS[1], 'entry', added)
end
local n = tonumber(ARGV[9])
for i = 0, n - 1 do
  redis.call('HINCRBY', KEYS[4], ARGV[10 + 2 * i], ARGV[11 + 2 * i])
end
redis.call('HSET', KEYS[1], 'rev', tostring(tonumber(rev) + 1), unpack(ARGV, 10 + 2 * n))
if ARGV[8] ~= '' then
  redis.call('EXPIRE', KEYS[1], ARGV[8])
  redis.call('EXPIRE', KEYS[3], ARGV[8])
end
return {1, added}
"#;

/// Skip the next undelivered entry of a stream (its build already ended), so the group's lag
/// stops counting it: deliver it to the reaper and acknowledge it at once. Done only if the
/// group's last delivered id is still the one the caller saw, so the entry skipped is the one
/// it looked at. KEYS: stream. ARGV: group, consumer, last delivered id seen, entry id expected.
/// Returns 1 when skipped, 0 when something moved (look again), -1 when another entry came.
pub const SKIP: &str = r#"
local last = nil
for _, g in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local name, ld
  for i = 1, #g, 2 do
    if g[i] == 'name' then name = g[i + 1] end
    if g[i] == 'last-delivered-id' then ld = g[i + 1] end
  end
  if name == ARGV[1] then last = ld end
end
if last ~= ARGV[3] then return 0 end
local r = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', 1, 'STREAMS', KEYS[1], '>')
if not r or #r == 0 or #r[1][2] == 0 then return 0 end
local id = r[1][2][1][1]
-- Ids only grow and entries are never deleted, so this cannot differ; if it ever did, the entry
-- stays pending and the reaper puts it back after the lease.
if id ~= ARGV[4] then return -1 end
redis.call('XACK', KEYS[1], ARGV[1], id)
return 1
"#;

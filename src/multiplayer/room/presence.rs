//! Who is present in a room, as a pure policy: the awareness table (client id → clock, state),
//! which connection owns which client id, and what follows from each awareness message. No IO,
//! no clock of its own (the time comes in as milliseconds): the room task hands it entries and
//! acts on the [`Effect`]s it returns.
//!
//! The rules, each with its reason:
//! - A client id belongs to the session that announced it first, until that session closes or
//!   the client says goodbye. Stock clients echo every presence change they hear back to the
//!   server, so a session sends entries of other clients all the time; entries for a client id
//!   owned by another session are dropped, so no connection can change or remove another
//!   editor's presence, and with it its locks. The gateway's own client id belongs to nobody.
//! - As in y-protocols, an entry is taken when its clock is higher than the one known, or when it
//!   is a removal at the same clock (the stock client says goodbye that way).
//! - When a session closes, its clients are removed at their own clocks, as y-protocols does for
//!   a remote client that went away. A client that comes back (on a connection that arrived
//!   after the removal) announces itself at that same clock; to be seen again at once, by us and
//!   by its peers, its clocks are moved up by one for every such return (and stay moved while
//!   the room is loaded). It keeps its lock wishes, so it keeps its locks.
//! - Presence from other replicas is taken as it comes; a client known through another replica
//!   moves here once it says something newer through one of our sessions (its replica died and
//!   it reconnected to us). Such presence that nobody renews goes stale and is dropped.
//! - A client's lock wishes (the `lockRequests` of its state) are passed on only when they
//!   change; a read-only session shows its presence but takes no locks.
//! - Bounds per connection: a session owns at most `client_ids_per_session` client ids (a stock
//!   client announces one); entries that would make it own more are dropped, and the room is
//!   told once per session so that it can log it. An editor's lock wishes are cut to the first
//!   `lock_wishes_per_client` paths, and the room is told whenever that cut wish is new.

use crate::multiplayer::redis::locks::{requested_paths, LockInfo};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

/// Presence from another replica not refreshed for this long belongs to a client that is gone
/// (stock clients renew theirs every 15 s).
pub const STALE_AFTER_MS: u64 = 35_000;
/// The state that means "gone".
const NULL: &str = "null";

/// One awareness entry as it travels: a client id, its clock and its state as JSON (`null`
/// for a removal).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub client: u64,
    pub clock: u32,
    pub json: Arc<str>,
}

impl Entry {
    pub fn removal(client: u64, clock: u32) -> Entry {
        Entry {
            client,
            clock,
            json: NULL.into(),
        }
    }

    pub fn is_removal(&self) -> bool {
        self.json.as_ref() == NULL
    }
}

/// What the room must do after an awareness message or a closed session, in this order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Pass what the client sent on, unchanged, to the room's other sessions and other replicas.
    RelayAsSent { except: u64 },
    /// Encode these entries and send them to the room's sessions (except one) and other replicas.
    Announce {
        entries: Vec<Entry>,
        except: Option<u64>,
    },
    /// This editor now wants exactly these lock paths (none: give them back).
    WantLocks {
        client: u64,
        paths: BTreeSet<String>,
    },
    /// These editors are gone: stop renewing their locks.
    ForgetLocks(Vec<u64>),
    /// Entries of a session were dropped because it owns the most client ids it may; `first`
    /// the first time for this session (to log it once).
    ClientIdsRefused {
        session: u64,
        dropped: usize,
        first: bool,
    },
    /// An editor asked for more lock paths than it may hold; only `kept` of `asked` are wished.
    LockWishesCut {
        client: u64,
        asked: usize,
        kept: usize,
    },
}

/// What one connection and one editor may hold in a room's presence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PresenceLimits {
    pub client_ids_per_session: usize,
    pub lock_wishes_per_client: usize,
}

/// What the room knows of one client (the table y-protocols keeps).
#[derive(Debug, Clone)]
struct Known {
    clock: u32,
    /// `None` once removed; the clock stays.
    state: Option<Arc<str>>,
    updated_ms: u64,
}

#[derive(Debug)]
pub struct Presence {
    /// The gateway's own client id in this room.
    me: u64,
    known: HashMap<u64, Known>,
    /// Client id → the session that announced it.
    owner: HashMap<u64, u64>,
    /// Client ids announced through other replicas.
    remote: HashSet<u64>,
    /// Client ids whose session closed → the first session id that may bring them back.
    departed: HashMap<u64, u64>,
    /// How far a returning client's clocks are moved up.
    clock_shift: HashMap<u64, u32>,
    /// Lock paths last asked for, per editor client id.
    lock_wishes: HashMap<u64, BTreeSet<String>>,
    limits: PresenceLimits,
    /// How many client ids each session owns (the counts of `owner`, kept alongside).
    owned: HashMap<u64, usize>,
    /// Sessions told already that they reached the client-id limit.
    warned: HashSet<u64>,
}

impl Presence {
    /// The presence of a room whose gateway entry is `me`, showing `own_state`.
    pub fn new(me: u64, own_state: String, now_ms: u64, limits: PresenceLimits) -> Presence {
        let mut p = Presence {
            me,
            known: HashMap::new(),
            owner: HashMap::new(),
            remote: HashSet::new(),
            departed: HashMap::new(),
            clock_shift: HashMap::new(),
            lock_wishes: HashMap::new(),
            limits,
            owned: HashMap::new(),
            warned: HashSet::new(),
        };
        p.set_own(own_state, now_ms);
        p
    }

    /// Change the gateway's own state (a new clock each time); returns the entry to send.
    pub fn set_own(&mut self, state: String, now_ms: u64) -> Entry {
        let json: Arc<str> = state.into();
        let k = self.known.entry(self.me).or_insert(Known {
            clock: 0,
            state: None,
            updated_ms: now_ms,
        });
        k.clock = k.clock.saturating_add(1);
        k.state = Some(json.clone());
        k.updated_ms = now_ms;
        Entry {
            client: self.me,
            clock: k.clock,
            json,
        }
    }

    /// Everyone present (the gateway included): what a joining or asking session is sent.
    pub fn snapshot(&self) -> Vec<Entry> {
        self.known
            .iter()
            .filter_map(|(client, k)| {
                k.state.as_ref().map(|json| Entry {
                    client: *client,
                    clock: k.clock,
                    json: json.clone(),
                })
            })
            .collect()
    }

    /// Entries a session sent. Only those it owns (or may take) and that bring something newer
    /// are taken; see the module's rules.
    pub fn client_update(
        &mut self,
        session: u64,
        read_only: bool,
        entries: Vec<Entry>,
        now_ms: u64,
    ) -> Vec<Effect> {
        let mut accepted = Vec::new();
        // Whether what we pass on differs from what the client sent.
        let mut rewritten = false;
        let mut wishes = Vec::new();
        let mut refused = 0;
        for mut entry in entries {
            let cid = entry.client;
            let mine = match self.owner.get(&cid) {
                Some(owner) => *owner == session,
                None => cid != self.me,
            };
            if !mine {
                rewritten = true;
                continue;
            }
            let removal = entry.is_removal();
            let shift = self.clock_shift.get(&cid).copied().unwrap_or(0);
            entry.clock = entry.clock.saturating_add(shift);
            rewritten |= shift != 0;
            let known = self.known.get(&cid).map(|k| (k.clock, k.state.is_some()));
            let returning = !removal
                && known == Some((entry.clock, false))
                && self
                    .departed
                    .get(&cid)
                    .is_some_and(|first| session >= *first);
            if returning {
                entry.clock = entry.clock.saturating_add(1);
                rewritten = true;
            }
            if !takes(known, &entry) {
                rewritten = true;
                continue;
            }
            let new_id = !removal && !self.owner.contains_key(&cid);
            if new_id && self.owned(session) >= self.limits.client_ids_per_session {
                refused += 1;
                rewritten = true;
                continue;
            }
            if returning {
                self.clock_shift.insert(cid, shift.saturating_add(1));
            }
            self.remote.remove(&cid);
            if removal {
                self.disown(cid);
                wishes.push((cid, (BTreeSet::new(), 0)));
            } else {
                if new_id {
                    self.own(cid, session);
                }
                self.departed.remove(&cid);
                if !read_only {
                    let max = self.limits.lock_wishes_per_client;
                    wishes.push((cid, requested_paths(&entry.json, max)));
                }
            }
            accepted.push(entry);
        }
        let mut effects = Vec::new();
        if refused > 0 {
            effects.push(Effect::ClientIdsRefused {
                session,
                dropped: refused,
                first: self.warned.insert(session),
            });
        }
        if accepted.is_empty() {
            return effects;
        }
        for entry in &accepted {
            self.apply(entry.clone(), now_ms);
        }
        effects.insert(
            0,
            if rewritten {
                Effect::Announce {
                    entries: accepted,
                    except: Some(session),
                }
            } else {
                Effect::RelayAsSent { except: session }
            },
        );
        for (client, (paths, asked)) in wishes {
            if self.lock_wishes.get(&client).unwrap_or(&BTreeSet::new()) == &paths {
                continue;
            }
            if paths.is_empty() {
                self.lock_wishes.remove(&client);
            } else {
                self.lock_wishes.insert(client, paths.clone());
            }
            if asked > paths.len() {
                effects.push(Effect::LockWishesCut {
                    client,
                    asked,
                    kept: paths.len(),
                });
            }
            effects.push(Effect::WantLocks { client, paths });
        }
        effects
    }

    /// How many client ids `session` owns.
    fn owned(&self, session: u64) -> usize {
        self.owned.get(&session).copied().unwrap_or(0)
    }

    fn own(&mut self, client: u64, session: u64) {
        if let Some(before) = self.owner.insert(client, session) {
            self.uncount(before);
        }
        *self.owned.entry(session).or_default() += 1;
    }

    fn disown(&mut self, client: u64) {
        if let Some(session) = self.owner.remove(&client) {
            self.uncount(session);
        }
    }

    fn uncount(&mut self, session: u64) {
        if let Some(n) = self.owned.get_mut(&session) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.owned.remove(&session);
            }
        }
    }

    /// Entries from another replica: taken as they come (that replica applied its own rules).
    /// The room passes them on to its sessions as received.
    pub fn remote_update(&mut self, entries: Vec<Entry>, now_ms: u64) {
        for entry in entries {
            if entry.is_removal() {
                self.remote.remove(&entry.client);
            } else if !self.owner.contains_key(&entry.client) {
                self.remote.insert(entry.client);
            }
            self.apply(entry, now_ms);
        }
    }

    /// A session closed (cleanly or not): its clients are removed at their own clocks, here and
    /// for everyone else. `next_session` is the id the next connection will get: only a
    /// connection from then on can be one of these clients coming back.
    pub fn session_closed(&mut self, session: u64, next_session: u64, now_ms: u64) -> Vec<Effect> {
        let ids: Vec<u64> = self
            .owner
            .iter()
            .filter(|(_, owner)| **owner == session)
            .map(|(client, _)| *client)
            .collect();
        self.warned.remove(&session);
        if ids.is_empty() {
            return Vec::new();
        }
        let mut removals = Vec::new();
        for id in &ids {
            if let Some(k) = self.known.get(id) {
                removals.push(Entry::removal(*id, k.clock));
            }
            self.lock_wishes.remove(id);
            self.disown(*id);
            self.departed.insert(*id, next_session);
        }
        let mut effects = vec![Effect::ForgetLocks(ids)];
        if !removals.is_empty() {
            for entry in &removals {
                self.apply(entry.clone(), now_ms);
            }
            effects.push(Effect::Announce {
                entries: removals,
                except: None,
            });
        }
        effects
    }

    /// Drop presence that no session of ours owns and nobody renewed for [`STALE_AFTER_MS`]: it
    /// came from another replica whose client vanished with it. Nothing is sent; every client
    /// prunes such entries itself. Returns the client ids dropped.
    pub fn prune(&mut self, now_ms: u64) -> Vec<u64> {
        let mut dropped = Vec::new();
        for (client, k) in &mut self.known {
            if *client != self.me
                && k.state.is_some()
                && !self.owner.contains_key(client)
                && now_ms.saturating_sub(k.updated_ms) > STALE_AFTER_MS
            {
                k.state = None;
                k.clock = k.clock.saturating_add(1);
                dropped.push(*client);
            }
        }
        for client in &dropped {
            self.remote.remove(client);
        }
        dropped
    }

    /// Apply an entry with y-protocols' rule; true if the table changed.
    fn apply(&mut self, entry: Entry, now_ms: u64) -> bool {
        let removal = entry.is_removal();
        match self.known.get_mut(&entry.client) {
            Some(k) => {
                if !takes(Some((k.clock, k.state.is_some())), &entry) {
                    return false;
                }
                if removal && entry.client == self.me && k.state.is_some() {
                    // Nobody removes the gateway's own entry: it stays, one clock ahead.
                    k.clock = entry.clock.saturating_add(1);
                } else {
                    k.clock = entry.clock;
                    k.state = (!removal).then_some(entry.json);
                }
                k.updated_ms = now_ms;
                true
            }
            None => {
                let state = (!removal).then_some(entry.json);
                let present = state.is_some();
                self.known.insert(
                    entry.client,
                    Known {
                        clock: entry.clock,
                        state,
                        updated_ms: now_ms,
                    },
                );
                present
            }
        }
    }

    /// The clock known for a client, if any.
    pub fn clock(&self, client: u64) -> Option<u32> {
        self.known.get(&client).map(|k| k.clock)
    }

    /// The state shown for a client, if it is present.
    pub fn state(&self, client: u64) -> Option<&str> {
        self.known.get(&client)?.state.as_deref()
    }

    /// The session that owns a client id.
    pub fn owner(&self, client: u64) -> Option<u64> {
        self.owner.get(&client).copied()
    }
}

/// y-protocols' rule: a higher clock wins, and so does a removal at the same clock of a client
/// that is present. Nothing is taken for an unknown client but a state.
fn takes(known: Option<(u32, bool)>, entry: &Entry) -> bool {
    match known {
        None => !entry.is_removal(),
        Some((clock, present)) => {
            entry.clock > clock || (entry.clock == clock && entry.is_removal() && present)
        }
    }
}

/// How much of the lock table the gateway's own entry lists. The entry goes to every client of
/// the room at each keepalive, so it must stay small however many locks the room holds.
pub const GATEWAY_LOCKS_BUDGET: usize = 16 * 1024;

/// The gateway's own presence state in a room: its role, the room and the room's locks (by
/// path, as many as fit [`GATEWAY_LOCKS_BUDGET`]; `lockCount` is the table's size, and
/// `truncated` says that some are left out: `GET /locks` lists them all). It has no cursor,
/// so editor bindings draw nothing for it.
pub fn gateway_state(room: &str, locks: &[LockInfo]) -> String {
    let mut listed = Vec::new();
    let mut size = 0;
    for lock in locks {
        size += serde_json::to_string(lock).map_or(0, |s| s.len() + 1);
        if size > GATEWAY_LOCKS_BUDGET {
            break;
        }
        listed.push(lock);
    }
    serde_json::json!({
        "appgear": {
            "role": "gateway",
            "room": room,
            "locks": listed,
            "lockCount": locks.len(),
            "truncated": listed.len() < locks.len(),
        }
    })
    .to_string()
}

#[cfg(test)]
mod tests;

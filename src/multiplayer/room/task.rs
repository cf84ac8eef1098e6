//! One task per loaded document: it owns the `yrs` Doc and Awareness, fans frames out to the
//! room's sessions (each frame encoded once), persists and publishes changes, and unloads the
//! document a grace period after the last session left.

use crate::multiplayer::log;
use crate::multiplayer::metrics::{inc, GaugeGuard};
use crate::multiplayer::protocol::close::{self, Close};
use crate::multiplayer::protocol::codec::{self, DocUpdate, Inbound};
use crate::multiplayer::redis::backplane::{self, BackplaneEvent, Envelope, Signal};
use crate::multiplayer::redis::locks::{requested_paths, LockInfo};
use crate::multiplayer::redis::persistence::apply_stored;
use crate::multiplayer::room::deps::RoomDeps;
use crate::multiplayer::room::link::{RoomCmd, SessionLink};
use crate::multiplayer::room::lock_keeper::{lock_requests, LockKeeper, LockRequests};
use axum::body::Bytes;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use yrs::sync::{Awareness, AwarenessUpdate};
use yrs::{Doc, ReadTxn, Transact};

/// Compact once the log since the last compaction outgrows the snapshot (and this floor), so
/// that Redis traffic per change stays proportional to the change.
const COMPACT_FLOOR_BYTES: usize = 256 * 1024;
/// Remote presence not refreshed for this long belongs to a client that is gone.
const AWARENESS_STALE_MS: u64 = 35_000;
/// Messages from other replicas waiting for the room; beyond this the room resyncs from storage.
const BACKPLANE_QUEUE: usize = 1024;
/// Messages waiting for the room's publisher. Document updates wait for room here (the room
/// slows down rather than dropping one); presence that finds it full is dropped and counted.
const PUBLISH_QUEUE: usize = 1024;

struct SessionState {
    link: SessionLink,
    /// Awareness client ids this connection announced (removed when it closes).
    client_ids: HashSet<u64>,
}

struct Room {
    name: String,
    deps: RoomDeps,
    awareness: Awareness,
    sessions: HashMap<u64, SessionState>,
    locks: LockRequests,
    lock_table: Vec<LockInfo>,
    /// Which session announced each local client id.
    presence_owner: HashMap<u64, u64>,
    /// Client ids announced through other replicas.
    remote_presence: HashSet<u64>,
    /// Lock paths last asked for, per editor client id.
    lock_wishes: HashMap<u64, BTreeSet<String>>,
    /// Client ids whose session closed → the first session id that may bring them back.
    departed: HashMap<u64, u64>,
    /// How far a returning client's awareness clocks are moved up (see `on_client_awareness`).
    clock_shift: HashMap<u64, u32>,
    /// To the room's one publisher task, so that other replicas get messages in our order.
    outbox: mpsc::Sender<Bytes>,
    log_bytes: usize,
    snapshot_bytes: usize,
    unload_at: Option<Instant>,
}

/// Why the room task stopped serving.
enum Exit {
    Idle,
    Shutdown(oneshot::Sender<()>),
    /// The document in memory can no longer be trusted (it holds an edit storage refused, or
    /// the CRDT failed): every session is closed with this transient code, reconnects to a
    /// room reloaded from storage, and resends what storage lacks.
    Broken(Close),
}

/// Serve the room `name` until it unloads, breaks or the gateway stops. `unlist` takes the room
/// off the registry's list; it is called as soon as the room stops taking sessions, so that a
/// session joining meanwhile gets a fresh room rather than this one.
pub async fn run(
    deps: RoomDeps,
    name: String,
    generation: u64,
    mut cmds: mpsc::Receiver<RoomCmd>,
    unlist: impl FnOnce(),
) {
    let metrics = deps.metrics.clone();
    let _loaded = GaugeGuard::new(&metrics.loaded_documents);
    let (bp_tx, mut bp_rx) = backplane::inbox(BACKPLANE_QUEUE);
    let (outbox, outbox_rx) = mpsc::channel(PUBLISH_QUEUE);
    tokio::spawn(publisher(deps.clone(), name.clone(), outbox_rx));
    let mut room = match Room::load(deps.clone(), name.clone(), generation, bp_tx, outbox).await {
        Ok(r) => r,
        Err(e) => {
            log::warn(format!("room {name:?}: cannot load: {e}"));
            unlist();
            cmds.close();
            while let Some(cmd) = cmds.recv().await {
                if let RoomCmd::Join { ack, .. } = cmd {
                    let _ = ack.send(Err(e.clone()));
                }
            }
            deps.backplane.unsubscribe(&name, generation).await;
            return;
        }
    };
    let (table_tx, mut table_rx) = mpsc::channel(4);
    let (lock_requests, lock_inbox) = lock_requests();
    room.locks = lock_requests;
    tokio::spawn(
        LockKeeper {
            room: name.clone(),
            store: deps.locks.clone(),
            ttl: deps.settings.lock_ttl,
            backplane: deps.backplane.clone(),
            origin: deps.gateway,
        }
        .run(lock_inbox, table_tx),
    );
    let mut keepalive = tokio::time::interval(deps.settings.keepalive);
    keepalive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let exit = loop {
        let unload_at = room.unload_at;
        tokio::select! {
            cmd = cmds.recv() => match cmd {
                Some(RoomCmd::Shutdown { done }) => break Exit::Shutdown(done),
                Some(cmd) => if let Err(why) = room.handle(cmd).await { break Exit::Broken(why) },
                None => break Exit::Idle,
            },
            Some(ev) = bp_rx.recv() => room.on_backplane(ev).await,
            Some(table) = table_rx.recv() => room.on_lock_table(table),
            _ = keepalive.tick() => room.on_keepalive(),
            _ = sleep_until(unload_at), if unload_at.is_some() => {
                if room.sessions.is_empty() { break Exit::Idle }
                room.unload_at = None;
            }
        }
    };
    // Stop taking commands; sessions that were joining retry and get a fresh room.
    unlist();
    cmds.close();
    while let Some(cmd) = cmds.recv().await {
        if let RoomCmd::Shutdown { done } = cmd {
            let _ = done.send(());
        }
    }
    if let Exit::Broken(why) = exit {
        for s in room.sessions.values() {
            let _ = s.link.control.send(why);
        }
    }
    room.flush().await;
    deps.backplane.unsubscribe(&name, generation).await;
    if let Exit::Shutdown(done) = exit {
        let _ = done.send(());
    }
}

/// Publish a room's messages one at a time, in the order the room produced them: an update that
/// depends on an earlier one must not overtake it (a replica would hold it back as pending).
async fn publisher(deps: RoomDeps, name: String, mut outbox: mpsc::Receiver<Bytes>) {
    while let Some(msg) = outbox.recv().await {
        if let Err(e) = deps.backplane.publish(&name, msg).await {
            log::warn(format!(
                "room {name:?}: cannot publish to other replicas: {e}"
            ));
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl Room {
    async fn load(
        deps: RoomDeps,
        name: String,
        generation: u64,
        inbox: backplane::Inbox,
        outbox: mpsc::Sender<Bytes>,
    ) -> Result<Room, String> {
        // Subscribe first: an update published while we read storage is then delivered later
        // rather than lost (applying it twice is harmless).
        deps.backplane.subscribe(&name, generation, inbox).await?;
        let stored = deps.store.load(&name).await?;
        let doc = Doc::with_client_id(random_client_id());
        apply_stored(&doc, &stored)?;
        let mut room = Room {
            snapshot_bytes: stored.total_bytes(),
            name,
            deps,
            awareness: Awareness::new(doc),
            sessions: HashMap::new(),
            locks: LockRequests::default(),
            lock_table: Vec::new(),
            lock_wishes: HashMap::new(),
            departed: HashMap::new(),
            clock_shift: HashMap::new(),
            outbox,
            presence_owner: HashMap::new(),
            remote_presence: HashSet::new(),
            log_bytes: 0,
            unload_at: None,
        };
        room.set_gateway_state();
        Ok(room)
    }

    /// An error when the document can no longer be trusted and the room must reload.
    async fn handle(&mut self, cmd: RoomCmd) -> Result<(), Close> {
        match cmd {
            RoomCmd::Join { session, ack } => self.join(session, ack),
            RoomCmd::Leave { session } => self.leave(session),
            RoomCmd::Message { session, msg } => return self.on_message(session, msg).await,
            RoomCmd::Shutdown { .. } => {}
        }
        Ok(())
    }

    fn join(&mut self, link: SessionLink, ack: oneshot::Sender<Result<(), String>>) {
        let id = link.id;
        if ack.send(Ok(())).is_err() {
            return;
        }
        self.sessions.insert(
            id,
            SessionState {
                link,
                client_ids: HashSet::new(),
            },
        );
        self.unload_at = None;
        // The reference server's order: our state vector first, then everyone's presence.
        let sv = self.awareness.doc().transact().state_vector();
        self.send(id, codec::sync_step1(&sv));
        if let Ok(update) = self.awareness.update() {
            self.send(id, codec::awareness_update(&update));
        }
    }

    fn leave(&mut self, id: u64) {
        let Some(state) = self.sessions.remove(&id) else {
            return;
        };
        self.forget_clients(state.client_ids);
        if self.sessions.is_empty() {
            self.unload_at = Some(Instant::now() + self.deps.settings.unload_grace);
        }
    }

    /// Remove presence of clients whose connection is gone, here and on other replicas. The
    /// removal keeps the client's clock (as y-protocols does for a remote client): a client
    /// that reconnects announces itself again at that same clock, see [`Room::on_client_awareness`].
    fn forget_clients(&mut self, ids: HashSet<u64>) {
        if ids.is_empty() {
            return;
        }
        let ids: Vec<u64> = ids.into_iter().collect();
        let next_session = self.deps.sessions.next();
        let mut removal = AwarenessUpdate {
            clients: HashMap::new(),
        };
        for id in &ids {
            let client = yrs::block::ClientID::new(*id);
            if let Some((clock, _)) = self.awareness.meta(client) {
                removal.clients.insert(
                    client,
                    yrs::sync::awareness::AwarenessUpdateEntry {
                        clock,
                        json: "null".into(),
                    },
                );
            }
            self.lock_wishes.remove(id);
            self.presence_owner.remove(id);
            self.departed.insert(*id, next_session);
        }
        self.locks.forget(&ids);
        if removal.clients.is_empty() {
            return;
        }
        use yrs::updates::encoder::Encode;
        let payload = Bytes::from(removal.encode_v1());
        let _ = self.awareness.apply_update(removal);
        self.broadcast(codec::awareness(&payload), None);
        self.publish(Signal::Awareness(payload));
    }

    async fn on_message(&mut self, id: u64, msg: Inbound) -> Result<(), Close> {
        inc(&self.deps.metrics.messages_received);
        let Some(read_only) = self.sessions.get(&id).map(|s| s.link.read_only) else {
            return Ok(());
        };
        match msg {
            Inbound::SyncStep1(sv) => {
                let diff = self
                    .awareness
                    .doc()
                    .transact()
                    .encode_state_as_update_v1(&sv);
                self.send(id, codec::sync_step2(&diff));
            }
            Inbound::SyncStep2(u) | Inbound::Update(u) => {
                if read_only {
                    inc(&self.deps.metrics.dropped_readonly_writes);
                    return Ok(());
                }
                return self.on_client_update(id, u).await;
            }
            Inbound::Awareness { raw, update } => {
                self.on_client_awareness(id, read_only, raw, update)
            }
            Inbound::QueryAwareness => {
                if let Ok(update) = self.awareness.update() {
                    self.send(id, codec::awareness_update(&update));
                }
            }
            Inbound::Ignored(_) => {}
        }
        Ok(())
    }

    /// Apply, persist, then relay: an edit is relayed only once Redis has it.
    async fn on_client_update(&mut self, id: u64, u: DocUpdate) -> Result<(), Close> {
        if u.decoded.is_empty() {
            return Ok(());
        }
        // Updates from other replicas may be held back waiting for this one; if so, what it
        // lets in goes to every session below (the raw bytes alone would not carry it).
        let held = {
            let txn = self.awareness.doc().transact();
            txn.has_missing_updates().then(|| txn.state_vector())
        };
        let applied = self.apply(u.decoded);
        match applied {
            Applied::Integrated | Applied::Pending => {}
            Applied::Nothing => return Ok(()),
            Applied::Rejected => {
                inc(&self.deps.metrics.malformed_frames);
                self.close_session(id, close::BAD_DATA);
                return Ok(());
            }
            Applied::Broken => return Err(close::RESYNC),
        }
        if let Err(e) = self.deps.store.append(&self.name, &u.raw).await {
            inc(&self.deps.metrics.redis_errors);
            log::warn(format!(
                "room {:?}: cannot persist an update: {e}; reloading the room",
                self.name
            ));
            // The edit is in memory but not in storage, and our state vector now claims it: a
            // client told "we have it" would never send it again. Drop the document instead;
            // every client reconnects to a room loaded from storage and resends what it lacks.
            return Err(close::STORAGE_UNAVAILABLE);
        }
        self.log_bytes += u.raw.len();
        self.broadcast(codec::sync_update(&u.raw), Some(id));
        if let (Some(sv), Applied::Integrated) = (held, applied) {
            self.broadcast_since(&sv);
        }
        self.publish_update(u.raw).await;
        self.maybe_compact();
        Ok(())
    }

    fn apply(&mut self, update: yrs::Update) -> Applied {
        let doc = self.awareness.doc();
        let sv_before = doc.transact().state_vector();
        let extends = update.extends(&sv_before);
        let fired = Arc::new(AtomicBool::new(false));
        let flag = fired.clone();
        // Only an update that changed the document is persisted and relayed; a reconnecting
        // client's SyncStep2 often repeats what we have.
        let key = "appgear-room-apply";
        let observing = doc
            .observe_update_v1(key, move |_, _| flag.store(true, Ordering::Relaxed))
            .is_ok();
        let result = catch_unwind(AssertUnwindSafe(|| doc.transact_mut().apply_update(update)));
        if observing {
            let _ = doc.unobserve_update_v1(key);
        }
        match result {
            Err(_) => {
                log::warn(format!(
                    "room {:?}: applying an update failed inside the CRDT; reloading the room",
                    self.name
                ));
                Applied::Broken
            }
            Ok(Err(_)) => Applied::Rejected,
            Ok(Ok(())) if fired.load(Ordering::Relaxed) => Applied::Integrated,
            Ok(Ok(())) if extends => Applied::Pending,
            Ok(Ok(())) => Applied::Nothing,
        }
    }

    /// Clients echo every presence change they hear back to the server (the stock client does),
    /// so a connection may send entries of other clients. Each client id belongs to the session
    /// that announced it first, until that session closes: entries of a client id from any
    /// other session are dropped, so no connection can take over or remove another's presence
    /// (and with it its locks). Only entries that bring something newer are applied and relayed.
    fn on_client_awareness(
        &mut self,
        id: u64,
        read_only: bool,
        raw: Bytes,
        update: AwarenessUpdate,
    ) {
        let me = self.awareness.client_id();
        let mut accepted = AwarenessUpdate {
            clients: HashMap::new(),
        };
        // Whether what we relay differs from what the client sent.
        let mut rewritten = false;
        let mut wishes = Vec::new();
        for (client, mut entry) in update.clients {
            let cid = client.get();
            // A client known through another replica moves here (its replica died, it
            // reconnected to us) once it says something newer than what that replica said.
            let from_elsewhere = self.remote_presence.contains(&cid);
            let mine = match self.presence_owner.get(&cid) {
                Some(owner) => *owner == id,
                None => client != me,
            };
            if !mine {
                rewritten = true;
                continue;
            }
            let is_null = entry.json.as_ref() == "null";
            // A client that came back after we recorded its removal shows itself at the clock of
            // that removal; we and its peers need a higher one, so its clocks are shifted by one
            // for every such return (and stay shifted while the room is loaded).
            let shift = self.clock_shift.get(&cid).copied().unwrap_or(0);
            entry.clock = entry.clock.saturating_add(shift);
            rewritten |= shift != 0;
            let (stored_clock, has_state) = match self.awareness.meta(client) {
                Some((clock, _)) => (
                    Some(clock),
                    self.awareness
                        .state::<serde::de::IgnoredAny>(client)
                        .is_some(),
                ),
                None => (None, false),
            };
            let returning = !is_null
                && !has_state
                && stored_clock == Some(entry.clock)
                && self.departed.get(&cid).is_some_and(|first| id >= *first);
            if returning {
                self.clock_shift.insert(cid, shift + 1);
                entry.clock = entry.clock.saturating_add(1);
                rewritten = true;
            }
            // As in y-protocols: a higher clock wins, and so does a removal at the same clock
            // (the stock client says goodbye that way when it disconnects).
            let newer = match stored_clock {
                None => !is_null,
                Some(clock) => {
                    entry.clock > clock || (entry.clock == clock && is_null && has_state)
                }
            };
            if !newer {
                rewritten = true;
                continue;
            }
            let Some(s) = self.sessions.get_mut(&id) else {
                continue;
            };
            if from_elsewhere {
                self.remote_presence.remove(&cid);
            }
            if is_null {
                s.client_ids.remove(&cid);
                self.presence_owner.remove(&cid);
                wishes.push((cid, BTreeSet::new()));
            } else {
                s.client_ids.insert(cid);
                self.presence_owner.insert(cid, id);
                self.departed.remove(&cid);
                // A read-only session shows its presence but takes no locks.
                if !read_only {
                    wishes.push((cid, requested_paths(&entry.json)));
                }
            }
            accepted.clients.insert(client, entry);
        }
        if accepted.clients.is_empty() {
            return;
        }
        let payload = if rewritten {
            use yrs::updates::encoder::Encode;
            Bytes::from(accepted.encode_v1())
        } else {
            raw
        };
        let _ = self.awareness.apply_update(accepted);
        self.broadcast(codec::awareness(&payload), Some(id));
        self.publish(Signal::Awareness(payload));
        for (cid, paths) in wishes {
            let prev = self.lock_wishes.get(&cid).cloned().unwrap_or_default();
            if prev != paths {
                if paths.is_empty() {
                    self.lock_wishes.remove(&cid);
                } else {
                    self.lock_wishes.insert(cid, paths.clone());
                }
                self.locks.desire(cid, paths);
            }
        }
    }

    async fn on_backplane(&mut self, ev: BackplaneEvent) {
        let bytes = match ev {
            BackplaneEvent::Message(b) => b,
            BackplaneEvent::Resync => return self.resync().await,
        };
        let Some(env) = Envelope::decode(&bytes) else {
            return;
        };
        match env.signal {
            Signal::LocksChanged => {
                self.locks.refresh();
            }
            _ if env.origin == self.deps.gateway => {}
            Signal::Update(raw) => {
                let frame = codec::sync_update(&raw);
                if let Ok(Inbound::Update(u)) = codec::decode_frame(&frame) {
                    // Another replica persisted it already; apply it and pass on what it let
                    // into the document. That can be more than this message (updates held back
                    // for a missing dependency that it brings) or nothing (held back itself),
                    // so send the difference rather than the bytes received.
                    let sv = self.awareness.doc().transact().state_vector();
                    if let Applied::Integrated = self.apply(u.decoded) {
                        self.broadcast_since(&sv);
                    }
                }
            }
            Signal::Awareness(raw) => {
                let frame = codec::awareness(&raw);
                if let Ok(Inbound::Awareness { update, .. }) = codec::decode_frame(&frame) {
                    for (client, entry) in &update.clients {
                        let cid = client.get();
                        if entry.json.as_ref() == "null" {
                            self.remote_presence.remove(&cid);
                        } else if !self.presence_owner.contains_key(&cid) {
                            self.remote_presence.insert(cid);
                        }
                    }
                    let _ = self.awareness.apply_update(update);
                    self.broadcast(frame, None);
                }
            }
        }
    }

    /// The backplane lost messages: read storage again and pass on what we had missed.
    async fn resync(&mut self) {
        // A lock change may have been among the lost messages.
        self.locks.refresh();
        let stored = match self.deps.store.load(&self.name).await {
            Ok(s) => s,
            Err(e) => {
                log::warn(format!("room {:?}: resync failed: {e}", self.name));
                return;
            }
        };
        let doc = self.awareness.doc();
        let sv = doc.transact().state_vector();
        if apply_stored(doc, &stored).is_ok() {
            let missed = doc.transact().encode_state_as_update_v1(&sv);
            self.broadcast(codec::sync_update(&missed), None);
        }
    }

    fn on_lock_table(&mut self, table: Vec<LockInfo>) {
        let same = table.len() == self.lock_table.len()
            && table
                .iter()
                .zip(&self.lock_table)
                .all(|(a, b)| a.path == b.path && a.owner == b.owner && a.fencing == b.fencing);
        self.lock_table = table;
        if !same {
            self.announce_gateway_state();
        }
    }

    /// Keep a lone client's connection alive (it drops one silent for 30 s) and keep our own
    /// presence entry from timing out on clients.
    fn on_keepalive(&mut self) {
        self.announce_gateway_state();
        self.prune_stale_presence();
    }

    fn set_gateway_state(&mut self) {
        let state = serde_json::json!({
            "appgear": {
                "role": "gateway",
                "room": self.name,
                "locks": self.lock_table,
            }
        });
        self.awareness.set_local_state_raw(state.to_string());
    }

    fn announce_gateway_state(&mut self) {
        self.set_gateway_state();
        let me = self.awareness.client_id();
        if let Ok(update) = self.awareness.update_with_clients([me]) {
            self.broadcast(codec::awareness_update(&update), None);
        }
    }

    /// Presence relayed from other replicas whose client vanished with its replica.
    fn prune_stale_presence(&mut self) {
        let now = now_ms();
        let local: HashSet<u64> = self
            .sessions
            .values()
            .flat_map(|s| s.client_ids.iter().copied())
            .collect();
        let me = self.awareness.client_id();
        let stale: Vec<_> = self
            .awareness
            .iter()
            .filter(|(id, st)| {
                *id != me
                    && st.data.is_some()
                    && !local.contains(&id.get())
                    && now.saturating_sub(st.last_updated) > AWARENESS_STALE_MS
            })
            .map(|(id, _)| id)
            .collect();
        for id in stale {
            self.awareness.remove_state(id);
            self.remote_presence.remove(&id.get());
        }
    }

    fn maybe_compact(&mut self) {
        if self.log_bytes < self.snapshot_bytes.max(COMPACT_FLOOR_BYTES) {
            return;
        }
        self.snapshot_bytes += self.log_bytes;
        self.log_bytes = 0;
        let store = self.deps.store.clone();
        let name = self.name.clone();
        tokio::spawn(async move {
            if let Err(e) = store.compact(&name).await {
                log::warn(format!("room {name:?}: compaction failed: {e}"));
            }
        });
    }

    /// On unload or shutdown: fold the log so the next load is one read.
    async fn flush(&mut self) {
        if self.log_bytes == 0 {
            return;
        }
        if let Err(e) = self.deps.store.compact(&self.name).await {
            // Nothing is lost: the log stays and the next load reads it.
            log::warn(format!("room {:?}: compaction failed: {e}", self.name));
        }
    }

    fn envelope(&self, signal: Signal) -> Bytes {
        Envelope {
            origin: self.deps.gateway,
            signal,
        }
        .encode()
    }

    /// A document update is never dropped on its way to other replicas: when the publisher is
    /// behind, the room waits for it.
    async fn publish_update(&self, raw: Bytes) {
        let msg = self.envelope(Signal::Update(raw));
        let _ = self.outbox.send(msg).await;
    }

    /// Presence is renewed by every client every 15 s, so when the publisher is far behind an
    /// entry may be dropped (counted as an overflow) rather than holding up the room.
    fn publish(&self, signal: Signal) {
        let msg = self.envelope(signal);
        if let Err(mpsc::error::TrySendError::Full(_)) = self.outbox.try_send(msg) {
            inc(&self.deps.metrics.queue_overflows);
        }
    }

    fn send(&mut self, id: u64, frame: Bytes) {
        let Some(s) = self.sessions.get(&id) else {
            return;
        };
        match s.link.frames.try_send(frame) {
            Ok(()) => inc(&self.deps.metrics.messages_sent),
            Err(mpsc::error::TrySendError::Full(_)) => self.overflow(id),
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }

    /// Send everyone what entered the document since `sv`: an applied update can let in more than
    /// its own bytes (updates held back for a dependency it brings), or nothing at all.
    fn broadcast_since(&mut self, sv: &yrs::StateVector) {
        let diff = self
            .awareness
            .doc()
            .transact()
            .encode_state_as_update_v1(sv);
        self.broadcast(codec::sync_update(&diff), None);
    }

    fn broadcast(&mut self, frame: Bytes, except: Option<u64>) {
        let mut overflowed = Vec::new();
        for (id, s) in &self.sessions {
            if Some(*id) == except {
                continue;
            }
            match s.link.frames.try_send(frame.clone()) {
                Ok(()) => inc(&self.deps.metrics.messages_sent),
                Err(mpsc::error::TrySendError::Full(_)) => overflowed.push(*id),
                Err(mpsc::error::TrySendError::Closed(_)) => {}
            }
        }
        for id in overflowed {
            self.overflow(id);
        }
    }

    /// A consumer that cannot keep up is closed with a transient code, so it reconnects and
    /// resyncs, rather than silently missing a frame.
    fn overflow(&mut self, id: u64) {
        inc(&self.deps.metrics.queue_overflows);
        self.close_session(id, close::TOO_SLOW);
    }

    fn close_session(&mut self, id: u64, why: Close) {
        if let Some(s) = self.sessions.get(&id) {
            let _ = s.link.control.send(why);
        }
        self.leave(id);
    }
}

enum Applied {
    /// The document changed.
    Integrated,
    /// New to us, but held back until a missing dependency arrives.
    Pending,
    Nothing,
    Rejected,
    Broken,
}

fn random_client_id() -> u64 {
    let mut b = [0u8; 8];
    let _ = getrandom::fill(&mut b);
    u64::from_le_bytes(b) & (codec::MAX_CLIENT_ID - 1)
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

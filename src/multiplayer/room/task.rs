//! One task per loaded document: the select loop and the room's IO. It owns the `yrs` document
//! and the room's presence, fans frames out to the room's sessions (each frame encoded once),
//! persists and publishes changes, and unloads the document a grace period after the last
//! session left. What to do with presence is decided by [`Presence`]; this file carries it out.

use crate::multiplayer::log;
use crate::multiplayer::metrics::{inc, GaugeGuard};
use crate::multiplayer::protocol::close::{self, Close};
use crate::multiplayer::protocol::codec::{self, DocUpdate, Inbound};
use crate::multiplayer::queue;
use crate::multiplayer::redis::backplane::{self, BackplaneEvent, Envelope, Signal};
use crate::multiplayer::redis::locks::LockInfo;
use crate::multiplayer::redis::persistence::apply_stored;
use crate::multiplayer::room::awareness;
use crate::multiplayer::room::deps::RoomDeps;
use crate::multiplayer::room::doc::{self, Applied};
use crate::multiplayer::room::link::{PushError, RoomCmd, SessionLink};
use crate::multiplayer::room::lock_keeper::{lock_requests, LockKeeper, LockRequests};
use crate::multiplayer::room::presence::{gateway_state, Effect, Presence, PresenceLimits};
use axum::body::Bytes;
use std::collections::HashMap;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use yrs::{Doc, StateVector};

/// Compact once the log since the last compaction outgrows the snapshot (and this floor), so
/// that Redis traffic per change stays proportional to the change.
const COMPACT_FLOOR_BYTES: usize = 256 * 1024;
/// Messages from other replicas waiting for the room; beyond this the room resyncs from storage.
const BACKPLANE_QUEUE: usize = 1024;
/// Most client updates the room applies before storing them in one Redis round trip (and
/// relaying them once stored), and the most bytes such a batch may hold.
const BATCH_UPDATES: usize = 64;
const BATCH_BYTES: usize = 1024 * 1024;
/// Most messages the publisher sends in one pipeline.
const PUBLISH_BATCH: usize = 64;
/// Messages waiting for the room's publisher. Document updates wait for room here (the room
/// slows down rather than dropping one); presence that finds it full is dropped and counted.
const PUBLISH_QUEUE: usize = 1024;

struct Room {
    name: String,
    deps: RoomDeps,
    doc: Doc,
    presence: Presence,
    sessions: HashMap<u64, SessionLink>,
    locks: LockRequests,
    lock_table: Vec<LockInfo>,
    /// To the room's one publisher task, so that other replicas get messages in our order.
    outbox: queue::Sender<Bytes>,
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
///
/// A loaded room is mostly waiting: the steps it awaits are boxed, so that its task holds their
/// state only while one runs, instead of the largest of them for as long as the room is loaded.
pub async fn run(
    deps: RoomDeps,
    name: String,
    generation: u64,
    mut cmds: queue::Receiver<RoomCmd>,
    unlist: impl FnOnce(),
) {
    let metrics = deps.metrics.clone();
    let _loaded = GaugeGuard::new(&metrics.loaded_documents);
    let (bp_tx, mut bp_rx) = backplane::inbox(BACKPLANE_QUEUE);
    let (outbox, outbox_rx) = queue::channel(PUBLISH_QUEUE);
    tokio::spawn(publisher(deps.clone(), name.clone(), outbox_rx));
    let (locks, lock_inbox) = lock_requests();
    let loaded = Box::pin(Room::load(
        deps.clone(),
        name.clone(),
        generation,
        bp_tx,
        outbox,
        locks,
    ))
    .await;
    let mut room = match loaded {
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
    let (table_tx, mut table_rx) = queue::channel(4);
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
        // Biased, the backplane first: its inbox is bounded and each overflow costs a reload of
        // the room's whole log, while sessions wait for room in `cmds` without losing anything.
        tokio::select! {
            biased;
            Some(ev) = bp_rx.recv() => Box::pin(room.on_backplane(ev)).await,
            cmd = cmds.recv() => match cmd {
                Some(RoomCmd::Shutdown { done }) => break Exit::Shutdown(done),
                Some(cmd) => {
                    // Client updates waiting behind this one are applied with it and stored in
                    // one round trip; the first other command waits until they are relayed.
                    let (updates, then) = take_batch(cmd, &mut cmds);
                    if let Err(why) = Box::pin(room.on_client_updates(updates)).await { break Exit::Broken(why) }
                    match then {
                        Some(RoomCmd::Shutdown { done }) => break Exit::Shutdown(done),
                        Some(cmd) => if let Err(why) = Box::pin(room.handle(cmd)).await { break Exit::Broken(why) },
                        None => {}
                    }
                }
                None => break Exit::Idle,
            },
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
            s.out.close(why);
        }
    }
    Box::pin(room.flush()).await;
    deps.backplane.unsubscribe(&name, generation).await;
    if let Exit::Shutdown(done) = exit {
        let _ = done.send(());
    }
}

/// A client's document update, as the room's loop takes it from its commands.
type ClientUpdate = (u64, DocUpdate);

/// `first` and the client updates queued right behind it (up to a batch), and the command that
/// ended the batch, if any. A command that is no client update is never part of a batch.
fn take_batch(
    first: RoomCmd,
    cmds: &mut queue::Receiver<RoomCmd>,
) -> (Vec<ClientUpdate>, Option<RoomCmd>) {
    let as_update = |cmd: RoomCmd| {
        let is_update = matches!(&cmd, RoomCmd::Message { msg, .. }
            if matches!(**msg, Inbound::Update(_) | Inbound::SyncStep2(_)));
        match cmd {
            RoomCmd::Message { session, msg } if is_update => match *msg {
                Inbound::Update(u) | Inbound::SyncStep2(u) => Ok((session, u)),
                other => Err(RoomCmd::Message {
                    session,
                    msg: Box::new(other),
                }),
            },
            other => Err(other),
        }
    };
    let mut batch = match as_update(first) {
        Ok(u) => vec![u],
        Err(other) => return (Vec::new(), Some(other)),
    };
    let mut bytes = batch[0].1.raw.len();
    while batch.len() < BATCH_UPDATES && bytes < BATCH_BYTES {
        let Ok(cmd) = cmds.try_recv() else { break };
        match as_update(cmd) {
            Ok(u) => {
                bytes += u.1.raw.len();
                batch.push(u);
            }
            Err(other) => return (batch, Some(other)),
        }
    }
    (batch, None)
}

/// Publish a room's messages in the order the room produced them (a pipeline of those waiting,
/// one round trip): an update that depends on an earlier one must not overtake it (a replica
/// would hold it back as pending).
async fn publisher(deps: RoomDeps, name: String, mut outbox: queue::Receiver<Bytes>) {
    while let Some(msg) = outbox.recv().await {
        let mut msgs = vec![msg];
        while msgs.len() < PUBLISH_BATCH {
            match outbox.try_recv() {
                Ok(m) => msgs.push(m),
                Err(_) => break,
            }
        }
        if let Err(e) = deps.backplane.publish_batch(&name, msgs).await {
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
        outbox: queue::Sender<Bytes>,
        locks: LockRequests,
    ) -> Result<Room, String> {
        // Subscribe first: an update published while we read storage is then delivered later
        // rather than lost (applying it twice is harmless).
        deps.backplane.subscribe(&name, generation, inbox).await?;
        let stored = deps.store.load(&name).await?;
        let doc = doc::new_doc();
        apply_stored(&doc, &stored)?;
        let limits = PresenceLimits {
            client_ids_per_session: deps.settings.limits.client_ids_per_connection,
            lock_wishes_per_client: deps.settings.limits.locks_per_owner,
        };
        let presence = Presence::new(
            doc.client_id().get(),
            gateway_state(&name, &[]),
            now_ms(),
            limits,
        );
        Ok(Room {
            snapshot_bytes: stored.total_bytes(),
            name,
            deps,
            doc,
            presence,
            sessions: HashMap::new(),
            locks,
            lock_table: Vec::new(),
            outbox,
            log_bytes: 0,
            unload_at: None,
        })
    }

    /// An error when the document can no longer be trusted and the room must reload.
    async fn handle(&mut self, cmd: RoomCmd) -> Result<(), Close> {
        match cmd {
            RoomCmd::Join { session, ack } => self.join(session, ack),
            RoomCmd::Leave { session } => self.leave(session),
            RoomCmd::Message { session, msg } => return self.on_message(session, *msg).await,
            RoomCmd::Shutdown { .. } => {}
        }
        Ok(())
    }

    fn join(&mut self, link: SessionLink, ack: oneshot::Sender<Result<(), String>>) {
        let id = link.id;
        if ack.send(Ok(())).is_err() {
            return;
        }
        self.sessions.insert(id, link);
        self.unload_at = None;
        // The reference server's order: our state vector first, then everyone's presence.
        self.send(id, codec::sync_step1(&doc::state_vector(&self.doc)));
        self.send_everyones_presence(id);
    }

    fn leave(&mut self, id: u64) {
        if self.sessions.remove(&id).is_none() {
            return;
        }
        let effects = self
            .presence
            .session_closed(id, self.deps.sessions.next(), now_ms());
        self.carry_out(effects, None);
        if self.sessions.is_empty() {
            self.unload_at = Some(Instant::now() + self.deps.settings.unload_grace);
        }
    }

    async fn on_message(&mut self, id: u64, msg: Inbound) -> Result<(), Close> {
        let msg = match msg {
            Inbound::SyncStep2(u) | Inbound::Update(u) => {
                return self.on_client_updates(vec![(id, u)]).await;
            }
            other => other,
        };
        inc(&self.deps.metrics.messages_received);
        let Some(read_only) = self.sessions.get(&id).map(|s| s.read_only) else {
            return Ok(());
        };
        match msg {
            Inbound::SyncStep1(sv) => {
                let diff = doc::since(&self.doc, &sv);
                self.send(id, codec::sync_step2(&diff));
            }
            // Taken above.
            Inbound::SyncStep2(_) | Inbound::Update(_) => {}
            Inbound::Awareness { raw, update } => {
                let entries = awareness::entries(update);
                let effects = self
                    .presence
                    .client_update(id, read_only, entries, now_ms());
                self.carry_out(effects, Some(&raw));
            }
            Inbound::QueryAwareness => self.send_everyones_presence(id),
            Inbound::Ignored(_) => {}
        }
        Ok(())
    }

    /// Apply a batch of client updates, store what they brought in one round trip, then relay:
    /// an edit is relayed only once Redis has it, so an edit anyone received survives any
    /// replica being killed.
    async fn on_client_updates(&mut self, batch: Vec<ClientUpdate>) -> Result<(), Close> {
        let mut accepted: Vec<(u64, Bytes)> = Vec::new();
        // The state before the first update that let held-back updates in: what entered since
        // then is more than the raw bytes carry, and goes to every session below.
        let mut since: Option<StateVector> = None;
        let mut broken = false;
        for (id, u) in batch {
            inc(&self.deps.metrics.messages_received);
            let Some(read_only) = self.sessions.get(&id).map(|s| s.read_only) else {
                continue;
            };
            if read_only {
                inc(&self.deps.metrics.dropped_readonly_writes);
                continue;
            }
            if u.decoded.is_empty() {
                continue;
            }
            // Updates from other replicas may be held back waiting for this one.
            let held = doc::held_back(&self.doc);
            match doc::apply(&self.doc, u.decoded) {
                Applied::Integrated => {
                    since = since.or(held);
                    accepted.push((id, u.raw));
                }
                Applied::Pending => accepted.push((id, u.raw)),
                Applied::Nothing => {}
                Applied::Rejected => {
                    inc(&self.deps.metrics.malformed_frames);
                    self.close_session(id, close::BAD_DATA);
                }
                Applied::Broken => {
                    broken = true;
                    break;
                }
            }
        }
        if accepted.is_empty() && !broken {
            return Ok(());
        }
        let raws: Vec<Bytes> = accepted.iter().map(|(_, raw)| raw.clone()).collect();
        let stored = self.deps.store.append_batch(&self.name, &raws).await;
        if broken {
            // What came before it is stored (best effort) but relayed to no one: the room
            // reloads, and its clients resend whatever storage lacks.
            self.warn_broken();
            return Err(close::RESYNC);
        }
        if let Err(e) = stored {
            inc(&self.deps.metrics.redis_errors);
            log::warn(format!(
                "room {:?}: cannot persist an update: {e}; reloading the room",
                self.name
            ));
            // The edits are in memory but not in storage, and our state vector now claims
            // them: a client told "we have it" would never send it again. Drop the document
            // instead; every client reconnects to a room loaded from storage and resends what
            // it lacks.
            return Err(close::STORAGE_UNAVAILABLE);
        }
        for (id, raw) in &accepted {
            self.log_bytes += raw.len();
            self.broadcast(codec::sync_update(raw), Some(*id));
        }
        if let Some(sv) = since {
            self.broadcast_since(&sv);
        }
        for (_, raw) in accepted {
            self.publish_update(raw).await;
        }
        self.maybe_compact();
        Ok(())
    }

    fn warn_broken(&self) {
        log::warn(format!(
            "room {:?}: applying an update failed inside the CRDT; reloading the room",
            self.name
        ));
    }

    /// Carry out what presence decided. `sent` is the client's awareness payload, for an
    /// effect that relays it unchanged.
    fn carry_out(&mut self, effects: Vec<Effect>, sent: Option<&Bytes>) {
        for effect in effects {
            match effect {
                Effect::RelayAsSent { except } => {
                    // Only a client's own message is relayed as sent, so `sent` is there.
                    if let Some(raw) = sent {
                        self.send_presence(raw.clone(), Some(except));
                    }
                }
                Effect::Announce { entries, except } => {
                    self.send_presence(awareness::payload(&entries), except);
                }
                Effect::WantLocks { client, paths } => self.locks.desire(client, paths),
                Effect::ForgetLocks(clients) => self.locks.forget(&clients),
                Effect::ClientIdsRefused {
                    session,
                    dropped,
                    first,
                } => {
                    let refused = &self.deps.metrics.client_ids_refused;
                    refused.fetch_add(dropped as u64, std::sync::atomic::Ordering::Relaxed);
                    if first {
                        log::warn(format!(
                            "room {:?}: connection {session} announced more client ids than the \
                             {} it may (--max-client-ids); presence for the others is dropped",
                            self.name, self.deps.settings.limits.client_ids_per_connection
                        ));
                    }
                }
                Effect::LockWishesCut {
                    client,
                    asked,
                    kept,
                } => log::warn(format!(
                    "room {:?}: editor yjs:{client} asked for {asked} locks; only the first \
                     {kept} are taken (--max-locks-per-owner)",
                    self.name
                )),
            }
        }
    }

    /// An awareness payload to the room's sessions (but one) and to other replicas.
    fn send_presence(&mut self, payload: Bytes, except: Option<u64>) {
        self.broadcast(codec::awareness(&payload), except);
        self.publish(Signal::Awareness(payload));
    }

    fn send_everyones_presence(&mut self, id: u64) {
        let everyone = awareness::payload(&self.presence.snapshot());
        self.send(id, codec::awareness(&everyone));
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
                    let sv = doc::state_vector(&self.doc);
                    match doc::apply(&self.doc, u.decoded) {
                        Applied::Integrated => self.broadcast_since(&sv),
                        Applied::Broken => self.warn_broken(),
                        _ => {}
                    }
                }
            }
            Signal::Awareness(raw) => {
                let frame = codec::awareness(&raw);
                if let Ok(Inbound::Awareness { update, .. }) = codec::decode_frame(&frame) {
                    self.presence
                        .remote_update(awareness::entries(update), now_ms());
                    self.broadcast(frame, None);
                }
            }
        }
    }

    /// The backplane lost messages: read storage again and pass on what we had missed.
    async fn resync(&mut self) {
        inc(&self.deps.metrics.backplane_resyncs);
        // A lock change may have been among the lost messages.
        self.locks.refresh();
        let stored = match self.deps.store.load(&self.name).await {
            Ok(s) => s,
            Err(e) => {
                log::warn(format!("room {:?}: resync failed: {e}", self.name));
                return;
            }
        };
        let sv = doc::state_vector(&self.doc);
        if apply_stored(&self.doc, &stored).is_ok() {
            let missed = doc::since(&self.doc, &sv);
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
        self.presence.prune(now_ms());
    }

    fn announce_gateway_state(&mut self) {
        let state = gateway_state(&self.name, &self.lock_table);
        let own = self.presence.set_own(state, now_ms());
        self.broadcast(codec::awareness(&awareness::payload(&[own])), None);
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
        match s.out.push(frame) {
            Ok(()) => inc(&self.deps.metrics.messages_sent),
            Err(PushError::Full) => self.overflow(id),
            Err(PushError::Closed) => {}
        }
    }

    /// Send everyone what entered the document since `sv`: an applied update can let in more than
    /// its own bytes (updates held back for a dependency it brings), or nothing at all.
    fn broadcast_since(&mut self, sv: &StateVector) {
        let diff = doc::since(&self.doc, sv);
        self.broadcast(codec::sync_update(&diff), None);
    }

    fn broadcast(&mut self, frame: Bytes, except: Option<u64>) {
        let mut overflowed = Vec::new();
        for (id, s) in &self.sessions {
            if Some(*id) == except {
                continue;
            }
            match s.out.push(frame.clone()) {
                Ok(()) => inc(&self.deps.metrics.messages_sent),
                Err(PushError::Full) => overflowed.push(*id),
                Err(PushError::Closed) => {}
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
            s.out.close(why);
        }
        self.leave(id);
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

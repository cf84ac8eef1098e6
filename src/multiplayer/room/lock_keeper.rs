//! A room's lock keeper: holds the leases its editors asked for (through their awareness
//! state), renews them, retries contended ones, and reports the room's lock table to the room.

use crate::multiplayer::log;
use crate::multiplayer::queue;
use crate::multiplayer::redis::backplane::{Backplane, Envelope, GatewayId, Signal};
use crate::multiplayer::redis::locks::{diff, editor_owner, LockInfo, LockStore};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// What the room asks of its keeper since the keeper last looked. Requests coalesce (only an
/// editor's latest wish counts), so this stays as small as the room's set of editors however
/// far the keeper (waiting on Redis) falls behind.
#[derive(Debug, Default)]
struct Pending {
    /// Editor `client_id` now wants exactly these paths.
    desires: HashMap<u64, BTreeSet<String>>,
    /// These editors left: stop renewing; their leases run out by themselves.
    forgets: HashSet<u64>,
    /// Someone (maybe another replica) took or released a lock.
    refresh: bool,
    /// The room is gone.
    closed: bool,
}

type Shared = Arc<(std::sync::Mutex<Pending>, Notify)>;

/// The room's side: never blocks and never grows beyond one entry per editor.
#[derive(Debug, Default)]
pub struct LockRequests(Shared);

/// The keeper's side.
pub struct LockInbox(Shared);

pub fn lock_requests() -> (LockRequests, LockInbox) {
    let shared: Shared = Arc::default();
    (LockRequests(shared.clone()), LockInbox(shared))
}

fn pending(s: &Shared) -> std::sync::MutexGuard<'_, Pending> {
    s.0.lock().unwrap_or_else(|p| p.into_inner())
}

impl LockRequests {
    pub fn desire(&self, client_id: u64, paths: BTreeSet<String>) {
        pending(&self.0).desires.insert(client_id, paths);
        self.0 .1.notify_one();
    }

    pub fn forget(&self, client_ids: &[u64]) {
        let mut p = pending(&self.0);
        for id in client_ids {
            // A wish not yet acted on dies with its editor.
            p.desires.remove(id);
            p.forgets.insert(*id);
        }
        drop(p);
        self.0 .1.notify_one();
    }

    pub fn refresh(&self) {
        pending(&self.0).refresh = true;
        self.0 .1.notify_one();
    }
}

impl Drop for LockRequests {
    fn drop(&mut self) {
        pending(&self.0).closed = true;
        self.0 .1.notify_one();
    }
}

impl LockInbox {
    /// Wait for requests; `None` once the room is gone.
    async fn next(&self) -> Option<Pending> {
        loop {
            {
                let mut p = pending(&self.0);
                if p.closed {
                    return None;
                }
                if p.refresh || !p.desires.is_empty() || !p.forgets.is_empty() {
                    return Some(std::mem::take(&mut *p));
                }
            }
            self.0 .1.notified().await;
        }
    }
}

pub struct LockKeeper {
    pub room: String,
    pub store: LockStore,
    pub ttl: Duration,
    pub backplane: Arc<dyn Backplane>,
    pub origin: GatewayId,
}

impl LockKeeper {
    /// Run until `cmds` closes (the room unloaded). Tables go to `report`.
    /// One task per loaded room, mostly waiting: its Redis calls are boxed, so that the task
    /// holds their state only while one runs.
    pub async fn run(self, inbox: LockInbox, report: queue::Sender<Vec<LockInfo>>) {
        let mut desired: HashMap<u64, BTreeSet<String>> = HashMap::new();
        let mut held = Leases::default();
        // Renew well before the lease runs out, even if one renewal is slow.
        let mut tick = tokio::time::interval(self.ttl / 3);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let mut changed = false;
            tokio::select! {
                req = inbox.next() => {
                    let Some(req) = req else { return };
                    // Forgets first: an editor that left and came back wants its new wish.
                    for id in req.forgets {
                        desired.remove(&id);
                        held.forget(id);
                    }
                    for (client_id, paths) in req.desires {
                        let prev = desired.remove(&client_id).unwrap_or_default();
                        let (acquire, release) = diff(&prev, &paths);
                        let owner = editor_owner(client_id);
                        for p in release {
                            held.drop_wish(client_id, &p);
                            changed |= Box::pin(self.store.release(&self.room, &p, &owner)).await.unwrap_or(false);
                        }
                        for p in acquire {
                            changed |= Box::pin(self.take(client_id, &p, &mut held)).await;
                        }
                        if !paths.is_empty() {
                            desired.insert(client_id, paths);
                        }
                    }
                    if req.refresh {
                        changed |= Box::pin(self.retry_waiting(&desired, &mut held)).await;
                    }
                },
                _ = tick.tick() => {
                    for (client_id, paths) in &desired {
                        for p in paths {
                            changed |= Box::pin(self.take(*client_id, p, &mut held)).await;
                        }
                    }
                }
            }
            if changed {
                let msg = Envelope {
                    origin: self.origin,
                    signal: Signal::LocksChanged,
                }
                .encode();
                if let Err(e) = self.backplane.publish(&self.room, msg).await {
                    log::warn(format!("locks: cannot announce a lock change: {e}"));
                }
            }
            match Box::pin(self.store.list(&self.room)).await {
                Ok(table) => {
                    if report.send(table).await.is_err() {
                        return;
                    }
                }
                Err(e) => log::warn(format!("locks: cannot list locks: {e}")),
            }
        }
    }

    /// Acquire or renew; true when the lock is newly ours. A wish a limit refuses waits like a
    /// contended one (it is retried each round, and taken once the room or the editor holds
    /// fewer); the first refusal of each wish is logged.
    async fn take(&self, client_id: u64, path: &str, held: &mut Leases) -> bool {
        let owner = editor_owner(client_id);
        let key = (client_id, path.to_string());
        match self.store.acquire(&self.room, path, &owner, self.ttl).await {
            Ok(g) if g.granted => {
                held.limited.remove(&key);
                held.held.insert(key)
            }
            Ok(g) => {
                if let Some(over) = g.over {
                    if held.limited.insert(key.clone()) {
                        log::warn(format!(
                            "room {:?}: lock {path:?} for {owner} waits: {over}",
                            self.room
                        ));
                    }
                }
                held.held.remove(&key);
                false
            }
            Err(e) => {
                log::warn(format!("locks: cannot take {path:?}: {e}"));
                false
            }
        }
    }

    async fn retry_waiting(
        &self,
        desired: &HashMap<u64, BTreeSet<String>>,
        held: &mut Leases,
    ) -> bool {
        let mut changed = false;
        for (client_id, paths) in desired {
            for p in paths {
                if !held.held.contains(&(*client_id, p.clone())) {
                    changed |= self.take(*client_id, p, held).await;
                }
            }
        }
        changed
    }
}

/// What the keeper holds for its editors, and which of their wishes a limit holds back.
#[derive(Debug, Default)]
struct Leases {
    held: HashSet<(u64, String)>,
    /// Wishes refused by a limit (logged once each).
    limited: HashSet<(u64, String)>,
}

impl Leases {
    fn forget(&mut self, client: u64) {
        self.held.retain(|(c, _)| *c != client);
        self.limited.retain(|(c, _)| *c != client);
    }

    fn drop_wish(&mut self, client: u64, path: &str) {
        let key = (client, path.to_string());
        self.held.remove(&key);
        self.limited.remove(&key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn requests_coalesce_to_one_entry_per_editor() {
        let (room, keeper) = lock_requests();
        for i in 0..10_000 {
            room.desire(i % 3, BTreeSet::from([format!("f{i}")]));
        }
        room.forget(&[2]);
        room.refresh();
        let p = keeper.next().await.expect("requests");
        assert_eq!(
            p.desires.len(),
            2,
            "only the latest wish of editors 0 and 1"
        );
        assert_eq!(p.desires[&0], BTreeSet::from(["f9999".to_string()]));
        assert!(p.forgets.contains(&2) && p.refresh);
        drop(room);
        assert!(
            keeper.next().await.is_none(),
            "the keeper stops with its room"
        );
    }
}

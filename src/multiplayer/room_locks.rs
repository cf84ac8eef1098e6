//! A room's lock keeper: holds the leases its editors asked for (through their awareness
//! state), renews them, retries contended ones, and reports the room's lock table to the room.

use crate::multiplayer::backplane::{Backplane, Envelope, GatewayId, Signal};
use crate::multiplayer::locks::{diff, editor_owner, LockInfo, LockStore};
use crate::multiplayer::log;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

#[derive(Debug)]
pub enum LockCmd {
    /// Editor `client_id` now wants exactly these paths.
    Desire {
        client_id: u64,
        paths: BTreeSet<String>,
    },
    /// These editors left: stop renewing; their leases run out by themselves.
    Forget { client_ids: Vec<u64> },
    /// Someone (maybe another replica) took or released a lock.
    Refresh,
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
    pub async fn run(
        self,
        mut cmds: mpsc::UnboundedReceiver<LockCmd>,
        report: mpsc::Sender<Vec<LockInfo>>,
    ) {
        let mut desired: HashMap<u64, BTreeSet<String>> = HashMap::new();
        let mut held: HashSet<(u64, String)> = HashSet::new();
        // Renew well before the lease runs out, even if one renewal is slow.
        let mut tick = tokio::time::interval(self.ttl / 3);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let mut changed = false;
            tokio::select! {
                cmd = cmds.recv() => match cmd {
                    None => return,
                    Some(LockCmd::Desire { client_id, paths }) => {
                        let prev = desired.remove(&client_id).unwrap_or_default();
                        let (acquire, release) = diff(&prev, &paths);
                        let owner = editor_owner(client_id);
                        for p in release {
                            held.remove(&(client_id, p.clone()));
                            changed |= self.store.release(&self.room, &p, &owner).await.unwrap_or(false);
                        }
                        for p in acquire {
                            changed |= self.take(client_id, &p, &mut held).await;
                        }
                        if !paths.is_empty() {
                            desired.insert(client_id, paths);
                        }
                    }
                    Some(LockCmd::Forget { client_ids }) => {
                        for id in client_ids {
                            desired.remove(&id);
                            held.retain(|(c, _)| *c != id);
                        }
                    }
                    Some(LockCmd::Refresh) => {
                        changed |= self.retry_waiting(&desired, &mut held).await;
                    }
                },
                _ = tick.tick() => {
                    for (client_id, paths) in &desired {
                        for p in paths {
                            changed |= self.take(*client_id, p, &mut held).await;
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
            match self.store.list(&self.room).await {
                Ok(table) => {
                    if report.send(table).await.is_err() {
                        return;
                    }
                }
                Err(e) => log::warn(format!("locks: cannot list locks: {e}")),
            }
        }
    }

    /// Acquire or renew; true when the lock is newly ours.
    async fn take(&self, client_id: u64, path: &str, held: &mut HashSet<(u64, String)>) -> bool {
        let owner = editor_owner(client_id);
        match self.store.acquire(&self.room, path, &owner, self.ttl).await {
            Ok(g) if g.granted => held.insert((client_id, path.to_string())),
            Ok(_) => {
                held.remove(&(client_id, path.to_string()));
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
        held: &mut HashSet<(u64, String)>,
    ) -> bool {
        let mut changed = false;
        for (client_id, paths) in desired {
            for p in paths {
                if !held.contains(&(*client_id, p.clone())) {
                    changed |= self.take(*client_id, p, held).await;
                }
            }
        }
        changed
    }
}

//! The loaded rooms of this gateway: finds a room's task, starts it on first use, and forgets it
//! when it unloads. A session that races an unloading room retries and gets a fresh one.

use crate::multiplayer::gateway::Gateway;
use crate::multiplayer::room::{self, RoomCmd, SessionLink};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};

/// Commands queued for a room before its sessions feel back-pressure.
const ROOM_QUEUE: usize = 1024;
const JOIN_ATTEMPTS: usize = 3;

#[derive(Default)]
pub struct Registry {
    rooms: Mutex<HashMap<String, (u64, mpsc::Sender<RoomCmd>)>>,
    next_generation: AtomicU64,
}

impl Registry {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, (u64, mpsc::Sender<RoomCmd>)>> {
        self.rooms.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn get_or_start(&self, gw: &Arc<Gateway>, name: &str) -> mpsc::Sender<RoomCmd> {
        let mut rooms = self.map();
        if let Some((_, tx)) = rooms.get(name) {
            if !tx.is_closed() {
                return tx.clone();
            }
        }
        let generation = self.next_generation.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(ROOM_QUEUE);
        rooms.insert(name.to_string(), (generation, tx.clone()));
        tokio::spawn(room::run(gw.clone(), name.to_string(), generation, rx));
        tx
    }

    /// Called by a room that stops: only removes the entry if it is still that room.
    pub fn remove_if(&self, name: &str, generation: u64) {
        let mut rooms = self.map();
        if rooms.get(name).is_some_and(|(g, _)| *g == generation) {
            rooms.remove(name);
        }
    }

    /// Join `name`; returns the room's command queue for the session's messages.
    pub async fn join(
        &self,
        gw: &Arc<Gateway>,
        name: &str,
        link: SessionLink,
    ) -> Result<mpsc::Sender<RoomCmd>, String> {
        for _ in 0..JOIN_ATTEMPTS {
            let tx = self.get_or_start(gw, name);
            let (ack, ack_rx) = oneshot::channel();
            let join = RoomCmd::Join {
                session: link.clone(),
                ack,
            };
            if tx.send(join).await.is_err() {
                continue;
            }
            match ack_rx.await {
                Ok(Ok(())) => return Ok(tx),
                Ok(Err(e)) => return Err(e),
                Err(_) => continue,
            }
        }
        Err("the room kept unloading while joining".to_string())
    }

    pub fn len(&self) -> usize {
        self.map().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Ask every room to flush and stop; waits for each.
    pub async fn shutdown_all(&self) {
        let rooms: Vec<mpsc::Sender<RoomCmd>> =
            self.map().values().map(|(_, t)| t.clone()).collect();
        let mut waits = Vec::new();
        for tx in rooms {
            let (done, rx) = oneshot::channel();
            if tx.send(RoomCmd::Shutdown { done }).await.is_ok() {
                waits.push(rx);
            }
        }
        for w in waits {
            let _ = w.await;
        }
    }
}

//! The loaded rooms of this gateway: finds a room's task, starts it on first use, and forgets it
//! when it unloads. A session that races an unloading room retries and gets a fresh one.
//!
//! The registry owns the list: a room is started with a callback that takes it off the list
//! (only if the entry is still that room), so a room never needs to know the registry.

use crate::multiplayer::queue;
use crate::multiplayer::room::deps::RoomDeps;
use crate::multiplayer::room::link::{RoomCmd, SessionLink};
use crate::multiplayer::room::task;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::oneshot;

/// Commands queued for a room before its sessions feel back-pressure.
const ROOM_QUEUE: usize = 1024;
const JOIN_ATTEMPTS: usize = 3;

/// Room name → (generation, command queue).
type Rooms = Arc<Mutex<HashMap<String, (u64, queue::Sender<RoomCmd>)>>>;

pub struct Registry {
    rooms: Rooms,
    next_generation: AtomicU64,
    deps: RoomDeps,
}

fn map(rooms: &Rooms) -> MutexGuard<'_, HashMap<String, (u64, queue::Sender<RoomCmd>)>> {
    // A panic elsewhere while holding the map does not make the map itself invalid.
    rooms.lock().unwrap_or_else(|p| p.into_inner())
}

impl Registry {
    pub fn new(deps: RoomDeps) -> Self {
        Registry {
            rooms: Rooms::default(),
            next_generation: AtomicU64::new(0),
            deps,
        }
    }

    fn get_or_start(&self, name: &str) -> queue::Sender<RoomCmd> {
        let mut rooms = map(&self.rooms);
        if let Some((_, tx)) = rooms.get(name) {
            if !tx.is_closed() {
                return tx.clone();
            }
        }
        let generation = self.next_generation.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = queue::channel(ROOM_QUEUE);
        rooms.insert(name.to_string(), (generation, tx.clone()));
        let list = self.rooms.clone();
        let key = name.to_string();
        // Only removes the entry if it is still this room: a newer one may have replaced it.
        let unlist = move || {
            let mut rooms = map(&list);
            if rooms.get(&key).is_some_and(|(g, _)| *g == generation) {
                rooms.remove(&key);
            }
        };
        tokio::spawn(task::run(
            self.deps.clone(),
            name.to_string(),
            generation,
            rx,
            unlist,
        ));
        tx
    }

    /// Join `name`; returns the room's command queue for the session's messages.
    pub async fn join(
        &self,
        name: &str,
        link: SessionLink,
    ) -> Result<queue::Sender<RoomCmd>, String> {
        for _ in 0..JOIN_ATTEMPTS {
            let tx = self.get_or_start(name);
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

    /// Ask every room to flush and stop; waits for each.
    pub async fn shutdown_all(&self) {
        let rooms: Vec<queue::Sender<RoomCmd>> =
            map(&self.rooms).values().map(|(_, t)| t.clone()).collect();
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

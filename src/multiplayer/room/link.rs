//! How sessions and a room talk: the commands a room takes, how it reaches a session's
//! connection, and the session numbering both rely on.

use crate::multiplayer::protocol::close::Close;
use crate::multiplayer::protocol::codec::Inbound;
use axum::body::Bytes;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot, Notify};

/// How a room reaches one session's connection.
#[derive(Clone, Debug)]
pub struct SessionLink {
    pub id: u64,
    pub frames: mpsc::Sender<Bytes>,
    pub control: Arc<Closer>,
    pub read_only: bool,
}

/// Asks a session to close its connection with a code: a flag and a wake-up, which jumps the
/// frame queue (a full queue is the usual reason to close). The first reason given wins.
#[derive(Debug, Default)]
pub struct Closer {
    why: Mutex<Option<Close>>,
    wake: Notify,
}

impl Closer {
    pub fn close(&self, why: Close) {
        self.why
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert(why);
        self.wake.notify_one();
    }

    /// The reason given, if any.
    pub fn reason(&self) -> Option<Close> {
        *self.why.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The reason, once one was given.
    pub async fn closed(&self) -> Close {
        loop {
            if let Some(why) = self.reason() {
                return why;
            }
            // A notification given before we wait is kept as a permit, so none is lost.
            self.wake.notified().await;
        }
    }
}

#[derive(Debug)]
pub enum RoomCmd {
    Join {
        session: SessionLink,
        ack: oneshot::Sender<Result<(), String>>,
    },
    Leave {
        session: u64,
    },
    Message {
        session: u64,
        msg: Inbound,
    },
    Shutdown {
        done: oneshot::Sender<()>,
    },
}

/// Session ids, in the order connections arrive. A room reads the next id to come when an
/// editor leaves: only a connection that arrived later can be that editor coming back.
#[derive(Debug)]
pub struct SessionIds(AtomicU64);

impl Default for SessionIds {
    fn default() -> Self {
        SessionIds(AtomicU64::new(1))
    }
}

impl SessionIds {
    /// The id of a new connection.
    pub fn take(&self) -> u64 {
        self.0.fetch_add(1, Ordering::Relaxed)
    }

    /// The id the next connection will get.
    pub fn next(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

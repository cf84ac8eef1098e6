//! How replicas of the gateway tell each other about a room's changes. The transport is behind
//! [`Backplane`] so that Redpanda can replace Redis pub/sub later without touching rooms.

use crate::multiplayer::queue;
use axum::body::Bytes;
use futures_util::future::BoxFuture;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc;

/// Identifies one gateway process, so that it can ignore its own messages.
pub type GatewayId = [u8; 16];

const VERSION: u8 = 1;

/// What one replica tells the others about a room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signal {
    /// A document update (Yjs v1 encoding), exactly as the editor sent it.
    Update(Bytes),
    /// An awareness update payload, exactly as the editor sent it (or as a removal).
    Awareness(Bytes),
    /// A lock was taken or released: re-read the lock table.
    LocksChanged,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub origin: GatewayId,
    pub signal: Signal,
}

impl Envelope {
    /// `[version][origin: 16 bytes][kind][payload]`
    pub fn encode(&self) -> Bytes {
        let (kind, payload): (u8, &[u8]) = match &self.signal {
            Signal::Update(b) => (0, b),
            Signal::Awareness(b) => (1, b),
            Signal::LocksChanged => (2, &[]),
        };
        let mut out = Vec::with_capacity(18 + payload.len());
        out.push(VERSION);
        out.extend_from_slice(&self.origin);
        out.push(kind);
        out.extend_from_slice(payload);
        Bytes::from(out)
    }

    /// Whether the encoded envelope `b` is an update or presence that `origin` sent: its rooms
    /// have it already. (A lock change is not: the HTTP lock API announces its own changes to
    /// the rooms of the same gateway through the backplane.)
    pub fn is_echo(b: &[u8], origin: &GatewayId) -> bool {
        b.len() >= 18 && b[0] == VERSION && b[1..17] == origin[..] && b[17] != 2
    }

    pub fn decode(b: &[u8]) -> Option<Envelope> {
        if b.len() < 18 || b[0] != VERSION {
            return None;
        }
        let mut origin = [0u8; 16];
        origin.copy_from_slice(&b[1..17]);
        let payload = Bytes::copy_from_slice(&b[18..]);
        let signal = match b[17] {
            0 => Signal::Update(payload),
            1 => Signal::Awareness(payload),
            2 => Signal::LocksChanged,
            _ => return None,
        };
        Some(Envelope { origin, signal })
    }
}

/// What a room receives from the backplane.
#[derive(Debug)]
pub enum BackplaneEvent {
    Message(Bytes),
    /// The transport lost messages (it reconnected): reload the room from storage.
    Resync,
}

/// Where the backplane delivers a room's messages: a bounded queue. A message that finds it full
/// is dropped and the room is told to resync from storage instead (every update reaches storage
/// before it is published, and presence is renewed by its clients), so a room that falls behind
/// costs a reload, never unbounded memory.
#[derive(Clone, Debug)]
pub struct Inbox {
    tx: queue::Sender<BackplaneEvent>,
    lagged: Arc<AtomicBool>,
}

/// The room's end of its [`Inbox`].
#[derive(Debug)]
pub struct InboxReceiver {
    rx: queue::Receiver<BackplaneEvent>,
    lagged: Arc<AtomicBool>,
    held: Option<BackplaneEvent>,
}

pub fn inbox(capacity: usize) -> (Inbox, InboxReceiver) {
    let (tx, rx) = queue::channel(capacity);
    let lagged = Arc::new(AtomicBool::new(false));
    (
        Inbox {
            tx,
            lagged: lagged.clone(),
        },
        InboxReceiver {
            rx,
            lagged,
            held: None,
        },
    )
}

impl Inbox {
    /// Never waits: a full queue turns into a resync.
    pub fn deliver(&self, ev: BackplaneEvent) {
        if let Err(mpsc::error::TrySendError::Full(_)) = self.tx.try_send(ev) {
            self.lagged.store(true, Ordering::Release);
        }
    }
}

impl InboxReceiver {
    pub async fn recv(&mut self) -> Option<BackplaneEvent> {
        if let Some(ev) = self.held.take() {
            return Some(ev);
        }
        let ev = self.rx.recv().await?;
        if self.lagged.swap(false, Ordering::AcqRel) {
            // Something was dropped: read storage first, then carry on with the queue.
            self.held = Some(ev);
            return Some(BackplaneEvent::Resync);
        }
        Some(ev)
    }
}

pub trait Backplane: Send + Sync {
    /// Deliver the room's messages to `inbox`. A later subscription of the same room (a newer
    /// `generation` of a reloaded room) replaces the earlier one.
    fn subscribe<'a>(
        &'a self,
        room: &'a str,
        generation: u64,
        inbox: Inbox,
    ) -> BoxFuture<'a, Result<(), String>>;
    /// Stop delivering, unless a newer generation subscribed meanwhile.
    fn unsubscribe<'a>(&'a self, room: &'a str, generation: u64) -> BoxFuture<'a, ()>;
    fn publish<'a>(&'a self, room: &'a str, message: Bytes) -> BoxFuture<'a, Result<(), String>>;
    /// Publish several messages, in order, in one round trip where the transport can.
    fn publish_batch<'a>(
        &'a self,
        room: &'a str,
        messages: Vec<Bytes>,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            for m in messages {
                self.publish(room, m).await?;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn envelopes_round_trip() {
        for signal in [
            Signal::Update(Bytes::from_static(b"\x01\x02")),
            Signal::Awareness(Bytes::new()),
            Signal::LocksChanged,
        ] {
            let e = Envelope {
                origin: [7; 16],
                signal,
            };
            let echo = e.signal != Signal::LocksChanged;
            assert_eq!(Envelope::is_echo(&e.encode(), &[7; 16]), echo);
            assert!(!Envelope::is_echo(&e.encode(), &[8; 16]));
            assert_eq!(Envelope::decode(&e.encode()), Some(e));
        }
    }

    #[tokio::test]
    async fn a_full_inbox_turns_into_a_resync() {
        let (inbox, mut rx) = inbox(2);
        for i in 0..100u8 {
            inbox.deliver(BackplaneEvent::Message(Bytes::from(vec![i])));
        }
        let mut got = Vec::new();
        while let Ok(Some(ev)) =
            tokio::time::timeout(std::time::Duration::from_millis(50), rx.recv()).await
        {
            got.push(ev);
        }
        assert!(matches!(got[0], BackplaneEvent::Resync), "{got:?}");
        assert_eq!(got.len(), 3, "{got:?}");
        assert!(matches!(&got[1], BackplaneEvent::Message(b) if b[..] == [0]));
    }

    proptest! {
        #[test]
        fn decode_never_panics(b in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = Envelope::decode(&b);
        }
    }
}

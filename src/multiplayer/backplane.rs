//! How replicas of the gateway tell each other about a room's changes. The transport is behind
//! [`Backplane`] so that Redpanda can replace Redis pub/sub later without touching rooms.

use axum::body::Bytes;
use futures_util::future::BoxFuture;
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

pub type Inbox = mpsc::UnboundedSender<BackplaneEvent>;

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
            assert_eq!(Envelope::decode(&e.encode()), Some(e));
        }
    }

    proptest! {
        #[test]
        fn decode_never_panics(b in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = Envelope::decode(&b);
        }
    }
}

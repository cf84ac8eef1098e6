//! The `--max-connections` budget. A slot is taken before the WebSocket handshake completes and
//! given back when the connection ends (or the handshake fails), so a burst of simultaneous
//! upgrades cannot slip past the limit while earlier ones are still starting.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

#[derive(Debug)]
pub struct ConnectionSlots {
    max: usize,
    taken: Arc<AtomicUsize>,
}

/// One reserved connection; dropping it frees the slot.
#[derive(Debug)]
pub struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl ConnectionSlots {
    pub fn new(max: usize) -> Self {
        ConnectionSlots {
            max,
            taken: Arc::default(),
        }
    }

    /// A slot, or `None` at the limit.
    pub fn try_take(&self) -> Option<Slot> {
        let before = self.taken.fetch_add(1, Ordering::AcqRel);
        let slot = Slot(self.taken.clone());
        (before < self.max).then_some(slot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_holds_until_a_slot_is_given_back() {
        let slots = ConnectionSlots::new(3);
        let held: Vec<Slot> = (0..3).filter_map(|_| slots.try_take()).collect();
        assert_eq!(held.len(), 3);
        assert!(slots.try_take().is_none(), "a fourth slot was handed out");
        assert!(
            slots.try_take().is_none(),
            "a refusal must not use up a slot"
        );
        drop(held);
        assert!(slots.try_take().is_some());
    }

    #[test]
    fn simultaneous_takers_never_exceed_the_limit() {
        let slots = Arc::new(ConnectionSlots::new(5));
        let taken: Vec<Option<Slot>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..32)
                .map(|_| {
                    let slots = slots.clone();
                    s.spawn(move || slots.try_take())
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(taken.iter().filter(|t| t.is_some()).count(), 5);
    }
}

//! Connections that are not (yet) an editor session: from `accept` until the WebSocket upgrade,
//! plain HTTP calls (health, metrics, locks) and refused upgrades until they close. Without a
//! bound these cost nothing to hold open: a peer that sends nothing, or trickles a request
//! header, kept its socket forever, and at the file-descriptor limit `accept` failed, so editors
//! could not connect and `/healthz` timed out while the peer stayed.
//!
//! Two bounds, both enforced on the socket (see `listener`):
//! - the header timeout: a connection must deliver a whole request head within it, counted from
//!   `accept` (or from the end of its previous response), however slowly the bytes trickle;
//! - `--max-pending-connections`: at the limit, a new connection takes the place of the one
//!   that has waited longest for its request head. The newcomer wins because an honest client
//!   sends its request at once (a probe, an editor), while the peers holding the limit are
//!   the ones that are not sending; a connection in the middle of a request is never closed.

use crate::multiplayer::metrics::Metrics;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;
use std::time::Duration;
use tokio::time::Instant;

/// Waiting for a request head: the deadline applies and the connection may make room.
const WAITING: u8 = 0;
/// A request is being answered: neither the deadline nor eviction applies.
const IN_REQUEST: u8 = 1;
/// An editor session: no longer pending, its reads are the session's business.
const SESSION: u8 = 2;
/// Closed to make room: its next read fails.
const EVICTED: u8 = 3;

/// What a read on a pending connection may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Read freely: a request is being answered, or the connection is a session.
    Free,
    /// Waiting for a request head: read until this deadline, then cut the connection.
    Until(Instant),
    /// Closed to make room for a newer connection (or for `accept` at the descriptor limit).
    Evicted,
}

#[derive(Debug)]
struct Conn {
    phase: AtomicU8,
    deadline: Mutex<Instant>,
    /// The task reading the socket, to wake when the connection is evicted.
    reader: Mutex<Option<Waker>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere while holding the lock does not make the value invalid.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[derive(Debug)]
struct Shared {
    max: usize,
    header_timeout: Duration,
    metrics: Arc<Metrics>,
    /// Pending connections by arrival.
    conns: Mutex<(u64, BTreeMap<u64, Arc<Conn>>)>,
}

/// The budget of pending connections.
#[derive(Debug, Clone)]
pub struct PendingConnections(Arc<Shared>);

/// One pending connection, shared by its socket and the requests it carries (they find it
/// in their extensions). Dropping the socket's handle gives the place back.
#[derive(Debug, Clone)]
pub struct ConnHandle {
    id: u64,
    conn: Arc<Conn>,
    set: Arc<Shared>,
}

impl PendingConnections {
    pub fn new(max: usize, header_timeout: Duration, metrics: Arc<Metrics>) -> Self {
        PendingConnections(Arc::new(Shared {
            max,
            header_timeout,
            metrics,
            conns: Mutex::new((0, BTreeMap::new())),
        }))
    }

    pub fn header_timeout(&self) -> Duration {
        self.0.header_timeout
    }

    /// A place for a connection just accepted, making room if needed; `None` when every place
    /// is taken by a connection in the middle of a request (the newcomer is closed).
    pub fn admit(&self) -> Option<ConnHandle> {
        let mut guard = lock(&self.0.conns);
        let (next, conns) = &mut *guard;
        if conns.len() >= self.0.max && !evict_one(conns, &self.0.metrics) {
            return None;
        }
        let id = *next;
        *next += 1;
        let conn = Arc::new(Conn {
            phase: AtomicU8::new(WAITING),
            deadline: Mutex::new(Instant::now() + self.0.header_timeout),
            reader: Mutex::new(None),
        });
        conns.insert(id, conn.clone());
        gauge(&self.0.metrics).store(conns.len() as i64, Ordering::Relaxed);
        Some(ConnHandle {
            id,
            conn,
            set: self.0.clone(),
        })
    }

    /// At the descriptor limit: close the connection that has waited longest for its request,
    /// so that `accept` can take the next one (a probe, an editor). False if none waits.
    pub fn make_room(&self) -> bool {
        let mut guard = lock(&self.0.conns);
        let evicted = evict_one(&mut guard.1, &self.0.metrics);
        gauge(&self.0.metrics).store(guard.1.len() as i64, Ordering::Relaxed);
        evicted
    }

    /// How many connections are pending now.
    pub fn len(&self) -> usize {
        lock(&self.0.conns).1.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn gauge(m: &Metrics) -> &AtomicI64 {
    &m.pending_connections
}

/// Evict the waiting connection whose deadline comes first (the one that has waited longest).
fn evict_one(conns: &mut BTreeMap<u64, Arc<Conn>>, metrics: &Metrics) -> bool {
    let oldest = conns
        .iter()
        .filter(|(_, c)| c.phase.load(Ordering::Acquire) == WAITING)
        .min_by_key(|(_, c)| *lock(&c.deadline))
        .map(|(id, _)| *id);
    let Some(id) = oldest else {
        return false;
    };
    if let Some(c) = conns.remove(&id) {
        // Only a connection still waiting is evicted; one whose request began meanwhile stays
        // (and no longer counts: it will free its place when it ends, one over at most).
        if c.phase
            .compare_exchange(WAITING, EVICTED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            metrics.pending_evicted.fetch_add(1, Ordering::Relaxed);
            if let Some(w) = lock(&c.reader).take() {
                w.wake();
            }
        }
    }
    true
}

impl ConnHandle {
    /// A request head arrived: until its answer is out, no deadline and no eviction.
    pub fn request_started(&self) {
        let _ = self.conn.phase.compare_exchange(
            WAITING,
            IN_REQUEST,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
    }

    /// The answer is out: the connection waits for its next request head, with a fresh deadline.
    pub fn request_finished(&self) {
        *lock(&self.conn.deadline) = Instant::now() + self.set.header_timeout;
        let _ = self.conn.phase.compare_exchange(
            IN_REQUEST,
            WAITING,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
    }

    /// The connection became an editor session: it leaves the pending budget (the
    /// `--max-connections` slot counts it from now on) and its reads are no longer timed.
    pub fn became_session(&self) {
        let was = self.conn.phase.swap(SESSION, Ordering::AcqRel);
        if was != EVICTED {
            self.forget();
        }
    }

    /// Before a read: what the read may do. `reader` is woken if the connection is evicted.
    pub fn check(&self, reader: &Waker) -> Access {
        match self.conn.phase.load(Ordering::Acquire) {
            WAITING => {}
            EVICTED => return Access::Evicted,
            _ => return Access::Free,
        }
        {
            let mut r = lock(&self.conn.reader);
            if !r.as_ref().is_some_and(|w| w.will_wake(reader)) {
                *r = Some(reader.clone());
            }
        }
        // Evicted between the first look and registering the waker: nobody will wake us.
        if self.conn.phase.load(Ordering::Acquire) == EVICTED {
            return Access::Evicted;
        }
        Access::Until(*lock(&self.conn.deadline))
    }

    /// The deadline passed while waiting for a request head.
    pub fn timed_out(&self) {
        self.set
            .metrics
            .header_timeouts
            .fetch_add(1, Ordering::Relaxed);
        self.forget();
    }

    /// Give the place back (the socket closed, or the connection became a session).
    pub fn forget(&self) {
        let mut guard = lock(&self.set.conns);
        guard.1.remove(&self.id);
        gauge(&self.set.metrics).store(guard.1.len() as i64, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::Wake;

    struct Flag(std::sync::atomic::AtomicBool);
    impl Wake for Flag {
        fn wake(self: Arc<Self>) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    fn waker() -> (Arc<Flag>, Waker) {
        let f = Arc::new(Flag(false.into()));
        (f.clone(), Waker::from(f))
    }

    fn pending(max: usize) -> PendingConnections {
        PendingConnections::new(max, Duration::from_secs(10), Arc::default())
    }

    #[tokio::test]
    async fn at_the_limit_the_longest_waiting_connection_makes_room() {
        let p = pending(2);
        let first = p.admit().expect("a place");
        let (woken, w) = waker();
        assert!(matches!(first.check(&w), Access::Until(_)));
        tokio::time::sleep(Duration::from_millis(5)).await;
        let second = p.admit().expect("a place");
        let third = p.admit().expect("room is made");
        assert_eq!(first.check(&w), Access::Evicted);
        assert!(
            woken.0.load(Ordering::SeqCst),
            "the evicted reader was not woken"
        );
        assert!(matches!(second.check(&w), Access::Until(_)));
        assert!(matches!(third.check(&w), Access::Until(_)));
        assert_eq!(p.len(), 2);
    }

    #[tokio::test]
    async fn a_connection_in_a_request_is_never_evicted() {
        let p = pending(1);
        let busy = p.admit().expect("a place");
        busy.request_started();
        assert!(p.admit().is_none(), "the newcomer is refused instead");
        let (_, w) = waker();
        assert_eq!(busy.check(&w), Access::Free, "no deadline during a request");
        busy.request_finished();
        assert!(matches!(busy.check(&w), Access::Until(_)));
        assert!(p.admit().is_some(), "waiting again, it makes room");
    }

    #[tokio::test]
    async fn a_session_leaves_the_budget_and_a_closed_socket_gives_its_place_back() {
        let p = pending(2);
        let a = p.admit().expect("a place");
        let b = p.admit().expect("a place");
        a.request_started();
        a.became_session();
        assert_eq!(p.len(), 1);
        let (_, w) = waker();
        assert_eq!(a.check(&w), Access::Free);
        // The end of the upgrade request does not make a session pending again.
        a.request_finished();
        assert_eq!(a.check(&w), Access::Free);
        b.forget();
        assert!(p.is_empty());
    }

    #[tokio::test]
    async fn make_room_evicts_only_waiting_connections() {
        let p = pending(10);
        let busy = p.admit().expect("a place");
        busy.request_started();
        assert!(!p.make_room());
        let idle = p.admit().expect("a place");
        assert!(p.make_room());
        let (_, w) = waker();
        assert_eq!(idle.check(&w), Access::Evicted);
        assert_eq!(p.len(), 1);
    }
}

//! A bounded many-to-one queue that holds memory only while items wait. A loaded room keeps
//! three queues (its commands, its backplane inbox, its publisher's outbox); tokio's channel
//! allocates its first block of 32 slots and a cache-padded state up front, about 1.5 KiB a
//! queue, which an idle room (most of them) never uses. Same contract as `tokio::sync::mpsc`'s
//! bounded channel for what the gateway uses of it: `send` waits for space, `try_send` does not,
//! `recv` yields what is queued and then `None` once every sender is gone or the receiver
//! closed, and dropping the receiver drops what waits (a `Join`'s answer channel with it).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::mpsc::error::{SendError, TryRecvError, TrySendError};
use tokio::sync::{Notify, Semaphore};

#[derive(Debug)]
struct Shared<T> {
    state: Mutex<State<T>>,
    /// Wakes the receiver: an item, or the last sender gone.
    ready: Notify,
    /// One permit per free slot; closed when the receiver is.
    space: Semaphore,
    senders: AtomicUsize,
}

#[derive(Debug)]
struct State<T> {
    items: VecDeque<T>,
    closed: bool,
}

impl<T> Shared<T> {
    fn state(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[derive(Debug)]
pub struct Sender<T>(Arc<Shared<T>>);

#[derive(Debug)]
pub struct Receiver<T>(Arc<Shared<T>>);

/// A queue of at most `capacity` items.
pub fn channel<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            items: VecDeque::new(),
            closed: false,
        }),
        ready: Notify::new(),
        space: Semaphore::new(capacity),
        senders: AtomicUsize::new(1),
    });
    (Sender(shared.clone()), Receiver(shared))
}

impl<T> Sender<T> {
    /// Queue `item` now, or hand it back: `Full` when `capacity` items wait, `Closed` when the
    /// receiver is gone.
    pub fn try_send(&self, item: T) -> Result<(), TrySendError<T>> {
        match self.0.space.try_acquire() {
            Ok(permit) => {
                permit.forget();
                self.push(item).map_err(TrySendError::Closed)
            }
            Err(tokio::sync::TryAcquireError::NoPermits) => Err(TrySendError::Full(item)),
            Err(tokio::sync::TryAcquireError::Closed) => Err(TrySendError::Closed(item)),
        }
    }

    /// Queue `item`, waiting for a free slot; hands it back when the receiver is gone.
    pub async fn send(&self, item: T) -> Result<(), SendError<T>> {
        match self.0.space.acquire().await {
            Ok(permit) => {
                permit.forget();
                self.push(item).map_err(SendError)
            }
            Err(_) => Err(SendError(item)),
        }
    }

    fn push(&self, item: T) -> Result<(), T> {
        {
            let mut st = self.0.state();
            if st.closed {
                return Err(item);
            }
            st.items.push_back(item);
        }
        self.0.ready.notify_one();
        Ok(())
    }

    /// The receiver is closed or gone: nothing sent will be read.
    pub fn is_closed(&self) -> bool {
        self.0.state().closed
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.0.senders.fetch_add(1, Ordering::AcqRel);
        Sender(self.0.clone())
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        if self.0.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.ready.notify_one();
        }
    }
}

impl<T> Receiver<T> {
    /// The next item, or `None` once nothing waits and no more can come. Cancel-safe: an item
    /// leaves the queue only when it is returned.
    pub async fn recv(&mut self) -> Option<T> {
        loop {
            match self.try_recv() {
                Ok(item) => return Some(item),
                Err(TryRecvError::Disconnected) => return None,
                // A wake-up that comes before the wait is kept by `Notify` as a permit.
                Err(TryRecvError::Empty) => self.0.ready.notified().await,
            }
        }
    }

    pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
        let mut st = self.0.state();
        match st.items.pop_front() {
            Some(item) => {
                // An idle queue holds no slots; the next item allocates them again.
                if st.items.is_empty() {
                    st.items = VecDeque::new();
                }
                drop(st);
                self.0.space.add_permits(1);
                Ok(item)
            }
            None if st.closed || self.0.senders.load(Ordering::Acquire) == 0 => {
                Err(TryRecvError::Disconnected)
            }
            None => Err(TryRecvError::Empty),
        }
    }

    /// Take no more items; those queued can still be received.
    pub fn close(&mut self) {
        self.0.state().closed = true;
        self.0.space.close();
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        self.close();
        // What waits is dropped now, as a channel's receiver does: a sender waiting for an
        // answer inside an item hears that none will come.
        let items = std::mem::take(&mut self.0.state().items);
        drop(items);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bounded_in_order_and_ends_when_senders_go() {
        let (tx, mut rx) = channel(2);
        tx.try_send(1).unwrap();
        tx.try_send(2).unwrap();
        assert!(matches!(tx.try_send(3), Err(TrySendError::Full(3))));
        assert_eq!(rx.recv().await, Some(1));
        tx.try_send(3).unwrap();
        let tx2 = tx.clone();
        drop(tx);
        assert_eq!(rx.recv().await, Some(2));
        tx2.send(4).await.unwrap();
        drop(tx2);
        assert_eq!(rx.recv().await, Some(3));
        assert_eq!(rx.recv().await, Some(4));
        assert_eq!(rx.recv().await, None);
    }

    #[tokio::test]
    async fn a_waiting_send_gets_space_or_its_item_back() {
        let (tx, mut rx) = channel(1);
        tx.try_send(1).unwrap();
        let waiting = tokio::spawn(async move {
            let sent = tx.send(2).await;
            (tx, sent)
        });
        assert_eq!(rx.recv().await, Some(1));
        let (tx, sent) = waiting.await.unwrap();
        assert!(sent.is_ok());
        rx.close();
        assert!(tx.is_closed());
        assert!(matches!(tx.send(3).await, Err(SendError(3))));
        assert_eq!(rx.recv().await, Some(2));
        assert_eq!(rx.recv().await, None);
    }

    #[tokio::test]
    async fn dropping_the_receiver_drops_what_waits() {
        let (tx, rx) = channel(4);
        let (ack, answer) = tokio::sync::oneshot::channel::<()>();
        tx.try_send(ack).unwrap();
        drop(rx);
        assert!(answer.await.is_err());
        assert!(tx.is_closed());
    }
}

//! How sessions and a room talk: the commands a room takes, how it reaches a session's
//! connection, and the session numbering both rely on.

use crate::multiplayer::protocol::close::Close;
use crate::multiplayer::protocol::codec::Inbound;
use axum::body::Bytes;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{oneshot, Notify};

/// How a room reaches one session's connection. Like a channel's sender: when the last copy
/// is dropped (the room let the session go, or stopped), the session hears of it.
#[derive(Debug)]
pub struct SessionLink {
    pub id: u64,
    pub out: Arc<Outbox>,
    pub read_only: bool,
}

impl SessionLink {
    pub fn new(id: u64, out: Arc<Outbox>, read_only: bool) -> Self {
        out.links.fetch_add(1, Ordering::AcqRel);
        SessionLink { id, out, read_only }
    }
}

impl Clone for SessionLink {
    fn clone(&self) -> Self {
        SessionLink::new(self.id, self.out.clone(), self.read_only)
    }
}

impl Drop for SessionLink {
    fn drop(&mut self) {
        if self.out.links.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.out.wake.notify_one();
        }
    }
}

/// What a session is to do next with its connection.
#[derive(Debug)]
pub enum Out {
    /// Close with this code (it jumps the queue).
    Close(Close),
    Frame(Bytes),
    /// The room let go of the session without a reason.
    RoomGone,
}

/// Why a frame was not queued.
#[derive(Debug, PartialEq, Eq)]
pub enum PushError {
    /// The session has `capacity` frames waiting: it is too slow.
    Full,
    /// The session has ended.
    Closed,
}

/// A session's bounded frame queue and close flag, in one allocation. Unlike a channel, it holds
/// no memory for frames while none wait, which is what an idle connection does.
#[derive(Debug)]
pub struct Outbox {
    state: Mutex<OutState>,
    wake: Notify,
    links: AtomicU64,
    capacity: usize,
}

#[derive(Debug, Default)]
struct OutState {
    frames: VecDeque<Bytes>,
    why: Option<Close>,
    ended: bool,
}

impl Outbox {
    pub fn new(capacity: usize) -> Arc<Self> {
        Arc::new(Outbox {
            state: Mutex::default(),
            wake: Notify::new(),
            links: AtomicU64::new(0),
            capacity,
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, OutState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn push(&self, frame: Bytes) -> Result<(), PushError> {
        {
            let mut st = self.state();
            if st.ended {
                return Err(PushError::Closed);
            }
            if st.frames.len() >= self.capacity {
                return Err(PushError::Full);
            }
            st.frames.push_back(frame);
        }
        self.wake.notify_one();
        Ok(())
    }

    /// Ask the session to close with `why`; the first reason given wins.
    pub fn close(&self, why: Close) {
        self.state().why.get_or_insert(why);
        self.wake.notify_one();
    }

    /// The reason given, if any.
    pub fn reason(&self) -> Option<Close> {
        self.state().why
    }

    /// The session has ended: frames pushed from now on are refused.
    pub fn end(&self) {
        let mut st = self.state();
        st.ended = true;
        st.frames = VecDeque::new();
    }

    /// The next thing to do: a close first, then frames in order, then the room's leaving.
    /// Cancel-safe: a frame leaves the queue only when it is returned.
    pub async fn next(&self) -> Out {
        loop {
            {
                let mut st = self.state();
                if let Some(why) = st.why {
                    return Out::Close(why);
                }
                if let Some(f) = st.frames.pop_front() {
                    // An idle session holds no slots: they are allocated again by the next
                    // frame (a small allocation beside the frame's write).
                    if st.frames.is_empty() {
                        st.frames = VecDeque::new();
                    }
                    return Out::Frame(f);
                }
                if self.links.load(Ordering::Acquire) == 0 {
                    return Out::RoomGone;
                }
            }
            // A wake-up given before we wait is kept as a permit, so none is lost.
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
    /// Boxed: every loaded room's queue allocates 32 commands' room up front, and a decoded
    /// message is four times the size of any other command.
    Message {
        session: u64,
        msg: Box<Inbound>,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::multiplayer::protocol::close;

    #[tokio::test]
    async fn a_close_jumps_the_queue_a_full_queue_refuses_and_the_last_link_ends_it() {
        let out = Outbox::new(2);
        let link = SessionLink::new(1, out.clone(), false);
        let copy = link.clone();
        assert_eq!(out.push(Bytes::from_static(b"a")), Ok(()));
        assert_eq!(out.push(Bytes::from_static(b"b")), Ok(()));
        assert_eq!(out.push(Bytes::from_static(b"c")), Err(PushError::Full));
        assert!(matches!(out.next().await, Out::Frame(f) if f[..] == b"a"[..]));
        out.close(close::TOO_SLOW);
        out.close(close::BAD_DATA);
        assert!(matches!(out.next().await, Out::Close(c) if c == close::TOO_SLOW));

        let out = Outbox::new(2);
        let link = SessionLink::new(1, out.clone(), false);
        let copy2 = link.clone();
        drop(link);
        assert_eq!(out.push(Bytes::from_static(b"x")), Ok(()));
        drop(copy2);
        // Frames queued before the room let go are still written, then the end is seen.
        assert!(matches!(out.next().await, Out::Frame(_)));
        assert!(matches!(out.next().await, Out::RoomGone));
        out.end();
        assert_eq!(out.push(Bytes::from_static(b"y")), Err(PushError::Closed));
        drop(copy);
    }
}

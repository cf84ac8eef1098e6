//! One transition to write: the next status and what goes with it. Its own file because both
//! the writer (`transition`) and the metrics it moves (`counters`) read it.

use crate::builder::state::{Reason, Status};

/// What to write for one transition.
#[derive(Debug, Clone)]
pub struct Change {
    pub next: Status,
    /// Fields besides the status (times, worker, exit code).
    pub extra: Vec<(&'static str, String)>,
    /// The stream entry to acknowledge with the write.
    pub ack: Option<String>,
    /// Add a stream entry for this attempt with the write (a re-queue).
    pub add: Option<u32>,
    /// Why the attempt was given back, when this is a re-queue (whatever state it leads to).
    pub requeued_for: Option<Reason>,
}

impl Change {
    pub fn to(next: Status) -> Change {
        Change {
            next,
            extra: Vec::new(),
            ack: None,
            add: None,
            requeued_for: None,
        }
    }
}

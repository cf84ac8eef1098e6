//! The heartbeat, on a task of its own so that no build output, upload or busy executor can
//! delay it (GitHub runner #3539: a starved renewal lost live jobs). It renews the lease and
//! brings back the cancel flag; a lost lease is final.

use crate::builder::queue::lease::{Claim, Heartbeat};
use crate::builder::queue::Queue;
use crate::builder::worker::control::Control;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Set `control` to the next order, keeping the first interruption (see `Control::then`).
pub fn order(control: &watch::Sender<Control>, next: Control) {
    control.send_if_modified(|c| {
        let after = c.then(next);
        let changed = after != *c;
        *c = after;
        changed
    });
}

/// Heartbeat every `every` until the lease is lost or the task is aborted. A Redis error is
/// retried at the next beat: if Redis stays away past the lease, the reaper re-queues the build
/// and the next beat finds the lease lost.
pub fn spawn(
    queue: Queue,
    claim: Claim,
    every: Duration,
    control: Arc<watch::Sender<Control>>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            match queue.heartbeat(&claim).await {
                Ok(Heartbeat::Held { cancel: true }) => order(&control, Control::Cancel),
                Ok(Heartbeat::Held { cancel: false }) | Err(_) => {}
                Ok(Heartbeat::Lost) => {
                    order(&control, Control::LeaseLost);
                    return;
                }
            }
        }
    })
}

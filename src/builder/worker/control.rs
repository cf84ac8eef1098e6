//! What may interrupt a running recipe, and which wins. Pure.

use crate::builder::worker::outcome::Exit;

/// The worker's standing order to its recipe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    Run,
    /// A user cancelled the build.
    Cancel,
    /// The worker itself is stopping (SIGTERM).
    Stop,
    /// The lease is gone: someone else owns the build.
    LeaseLost,
}

impl Control {
    /// The order after `next` arrives: the first interruption stands, except that a lost lease
    /// overrides everything (nothing may be written for a build that is not ours).
    pub fn then(self, next: Control) -> Control {
        match (self, next) {
            (_, Control::LeaseLost) => Control::LeaseLost,
            (Control::Run, n) => n,
            (s, _) => s,
        }
    }

    /// The order as the executors read it when it changes (`closed`: the sender is gone, which
    /// means the worker is stopping): how the recipe ends, and the log line that says why.
    /// `None` while the order is to run. One rule for both executors.
    pub fn stopping(self, closed: bool) -> Option<(Exit, &'static str)> {
        match if closed { Control::Stop } else { self } {
            Control::Run => None,
            Control::Cancel => Some((Exit::Cancelled, "the build was cancelled")),
            Control::Stop => Some((Exit::Stopped, "the worker is stopping")),
            Control::LeaseLost => Some((Exit::LeaseLost, "the worker lost its lease")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_interruption_stands_but_a_lost_lease_overrides() {
        assert_eq!(Control::Run.then(Control::Cancel), Control::Cancel);
        assert_eq!(Control::Cancel.then(Control::Stop), Control::Cancel);
        assert_eq!(Control::Stop.then(Control::LeaseLost), Control::LeaseLost);
        assert_eq!(Control::LeaseLost.then(Control::Run), Control::LeaseLost);
    }

    #[test]
    fn each_order_stops_the_recipe_its_own_way_and_a_closed_channel_is_a_stop() {
        assert_eq!(Control::Run.stopping(false), None);
        assert_eq!(
            Control::Cancel.stopping(false).map(|s| s.0),
            Some(Exit::Cancelled)
        );
        assert_eq!(
            Control::LeaseLost.stopping(false).map(|s| s.0),
            Some(Exit::LeaseLost)
        );
        assert_eq!(
            Control::Run.stopping(true).map(|s| s.0),
            Some(Exit::Stopped)
        );
    }
}

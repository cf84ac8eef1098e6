//! What may interrupt a running recipe, and which wins. Pure.

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
}

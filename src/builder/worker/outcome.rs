//! How a recipe's end becomes a build's end. Pure: the worker reports what happened, this
//! decides the state and reason, so the same facts always give the same answer.

use crate::builder::state::{Reason, State};

/// How the recipe's process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// It exited by itself with this code.
    Code(i64),
    /// It ran past the target's timeout and was stopped.
    TimedOut,
    /// A user cancelled the build and the recipe was stopped.
    Cancelled,
    /// The worker is stopping (SIGTERM) and stopped the recipe.
    Stopped,
    /// The worker lost its lease: someone else owns the build now.
    LeaseLost,
    /// The memory limit killed it.
    OomKilled,
    /// It could not be started (command not found, bad working directory).
    NotStarted,
    /// The target's image is not on this Docker Engine (the builder never pulls).
    ImageMissing,
}

/// What the worker does with the build after the recipe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Collect and upload the artifacts; the build succeeds if there are some.
    Collect,
    /// End the build in this state (the log is still uploaded).
    End(State, Option<Reason>),
    /// Give the build back as its next attempt.
    Requeue(Reason),
    /// Write nothing: the build is not ours any more.
    Abandon,
}

pub fn after_recipe(exit: Exit) -> Next {
    match exit {
        Exit::Code(0) => Next::Collect,
        Exit::Code(_) => Next::End(State::Failed, Some(Reason::ExitCode)),
        Exit::TimedOut => Next::End(State::TimedOut, Some(Reason::Timeout)),
        Exit::Cancelled => Next::End(State::Cancelled, Some(Reason::UserCancel)),
        Exit::Stopped => Next::Requeue(Reason::AgentStop),
        Exit::LeaseLost => Next::Abandon,
        Exit::OomKilled => Next::End(State::Failed, Some(Reason::OomKilled)),
        Exit::NotStarted => Next::End(State::Failed, Some(Reason::RecipeInvalid)),
        Exit::ImageMissing => Next::End(State::Failed, Some(Reason::ImageMissing)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builder::state::fits;

    #[test]
    fn every_end_is_a_valid_pair() {
        for e in [
            Exit::Code(0),
            Exit::Code(3),
            Exit::TimedOut,
            Exit::Cancelled,
            Exit::Stopped,
            Exit::LeaseLost,
            Exit::OomKilled,
            Exit::NotStarted,
            Exit::ImageMissing,
        ] {
            if let Next::End(s, r) = after_recipe(e) {
                assert!(fits(s, r), "{e:?}");
            }
        }
        assert_eq!(
            after_recipe(Exit::Code(3)),
            Next::End(State::Failed, Some(Reason::ExitCode))
        );
        assert_eq!(
            after_recipe(Exit::ImageMissing),
            Next::End(State::Failed, Some(Reason::ImageMissing))
        );
        assert_eq!(
            after_recipe(Exit::Stopped),
            Next::Requeue(Reason::AgentStop)
        );
    }
}

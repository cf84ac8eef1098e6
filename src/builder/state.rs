//! The build state machine: which state a build may move to, given who asks and for which
//! attempt. Pure: the queue reads a build, asks `Status::apply`, then writes the answer with a
//! compare-and-set, so the rules live here once and are property-tested.
//!
//! ```text
//! queued → running(preparing|building|collecting|uploading) → succeeded|failed|error|timed_out|cancelled
//! queued → expired|cancelled
//! running → queued (next attempt: worker_lost, upload_failed, agent_stop)
//! ```
//! Final states never change. Every write a worker makes names its attempt; a write for any other
//! attempt than the current one is refused (fencing), so a worker that lost its lease and comes
//! back cannot overwrite the attempt that replaced it.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Where a build is. `Running` carries its phase in `Status::phase`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Queued,
    Running,
    Succeeded,
    Failed,
    Error,
    TimedOut,
    Cancelled,
    Expired,
}

/// What a running build is doing, in the order it does it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Preparing,
    Building,
    Collecting,
    Uploading,
}

/// Why a build ended (or was re-queued). Stable codes: callers (N8n, retry policies) branch on
/// them, so they are never renamed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The recipe exited non-zero.
    ExitCode,
    /// The recipe succeeded but no file matched the target's artifact globs.
    NoArtifacts,
    /// The pinned image is not on the host (the builder never pulls).
    ImageMissing,
    /// The recipe could not be started as configured.
    RecipeInvalid,
    /// The recipe was killed for going over its memory limit.
    OomKilled,
    /// The source could not be fetched or did not match its SHA-256.
    SourceInvalid,
    /// The worker stopped heartbeating and its lease lapsed.
    WorkerLost,
    /// The worker was asked to stop (SIGTERM: node drain, scale-in).
    AgentStop,
    /// The artifacts could not be stored after retries.
    UploadFailed,
    /// The recipe ran past its timeout, or the build waited in the queue past the queue TTL.
    Timeout,
    /// Someone cancelled the build.
    UserCancel,
}

impl State {
    pub const ALL: [State; 8] = [
        State::Queued,
        State::Running,
        State::Succeeded,
        State::Failed,
        State::Error,
        State::TimedOut,
        State::Cancelled,
        State::Expired,
    ];

    pub fn is_final(self) -> bool {
        !matches!(self, State::Queued | State::Running)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            State::Queued => "queued",
            State::Running => "running",
            State::Succeeded => "succeeded",
            State::Failed => "failed",
            State::Error => "error",
            State::TimedOut => "timed_out",
            State::Cancelled => "cancelled",
            State::Expired => "expired",
        }
    }

    pub fn parse(s: &str) -> Option<State> {
        State::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

impl Phase {
    pub const ALL: [Phase; 4] = [
        Phase::Preparing,
        Phase::Building,
        Phase::Collecting,
        Phase::Uploading,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Preparing => "preparing",
            Phase::Building => "building",
            Phase::Collecting => "collecting",
            Phase::Uploading => "uploading",
        }
    }

    pub fn parse(s: &str) -> Option<Phase> {
        Phase::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

impl Reason {
    pub const ALL: [Reason; 11] = [
        Reason::ExitCode,
        Reason::NoArtifacts,
        Reason::ImageMissing,
        Reason::RecipeInvalid,
        Reason::OomKilled,
        Reason::SourceInvalid,
        Reason::WorkerLost,
        Reason::AgentStop,
        Reason::UploadFailed,
        Reason::Timeout,
        Reason::UserCancel,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::ExitCode => "exit_code",
            Reason::NoArtifacts => "no_artifacts",
            Reason::ImageMissing => "image_missing",
            Reason::RecipeInvalid => "recipe_invalid",
            Reason::OomKilled => "oom_killed",
            Reason::SourceInvalid => "source_invalid",
            Reason::WorkerLost => "worker_lost",
            Reason::AgentStop => "agent_stop",
            Reason::UploadFailed => "upload_failed",
            Reason::Timeout => "timeout",
            Reason::UserCancel => "user_cancel",
        }
    }

    pub fn parse(s: &str) -> Option<Reason> {
        Reason::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// Whether a re-queue for this reason uses up one of the build's attempts. A graceful stop
    /// of the worker is not the build's fault, so it does not.
    pub fn counts_as_attempt(self) -> bool {
        matches!(self, Reason::WorkerLost | Reason::UploadFailed)
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which reasons each final state can carry. A pair outside this table is a bug in the caller,
/// refused rather than stored, so a reader can trust `(state, reason)`.
pub fn fits(state: State, reason: Option<Reason>) -> bool {
    use Reason as R;
    match (state, reason) {
        (State::Succeeded, None) => true,
        (State::Failed, Some(r)) => matches!(
            r,
            R::ExitCode
                | R::NoArtifacts
                | R::ImageMissing
                | R::RecipeInvalid
                | R::OomKilled
                | R::SourceInvalid
        ),
        (State::Error, Some(r)) => matches!(r, R::WorkerLost | R::UploadFailed | R::AgentStop),
        (State::TimedOut, Some(R::Timeout)) => true,
        (State::Cancelled, Some(R::UserCancel)) => true,
        (State::Expired, Some(R::Timeout)) => true,
        _ => false,
    }
}

/// What is known about a build's progress: everything the rules need, nothing else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub state: State,
    /// Set while running.
    pub phase: Option<Phase>,
    /// Why it ended (final states except `succeeded`).
    pub reason: Option<Reason>,
    /// The current attempt, from 1. Every re-queue takes the next number, counted or not, so an
    /// attempt's object keys and its fencing token are never reused.
    pub attempt: u32,
    /// How many attempts were used up by losses that count (`worker_lost`, `upload_failed`).
    pub counted: u32,
    /// Why the build was last put back in the queue, if it was.
    pub requeued_by: Option<Reason>,
    /// A cancel was asked for while running; the worker sees it on its next heartbeat.
    pub cancel_requested: bool,
}

/// Something that wants to change a build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A worker took the queue entry of `attempt`.
    Claim { attempt: u32 },
    /// The worker of `attempt` moved on to a later phase.
    Advance { attempt: u32, phase: Phase },
    /// The worker of `attempt` ended the build.
    Finish {
        attempt: u32,
        state: State,
        reason: Option<Reason>,
    },
    /// `attempt` did not complete (its worker was lost, its upload failed, or it was stopped):
    /// put the build back as the next attempt, or end it `error` once `max_attempts` counted
    /// attempts are used up.
    Requeue {
        attempt: u32,
        reason: Reason,
        max_attempts: u32,
    },
    /// A user cancels: a queued build ends at once, a running one is flagged for its worker.
    Cancel,
    /// The build waited in the queue past the queue TTL.
    Expire,
}

/// Why an event was refused. Nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The build already ended; final states never change.
    Final(State),
    /// The event is for another attempt than the current one (a zombie worker, a stale entry).
    StaleAttempt { current: u32, given: u32 },
    /// The event does not apply in this state (e.g. claiming a running build).
    NotNow { state: State, phase: Option<Phase> },
    /// The caller asked for a state and reason that do not go together.
    Invalid(String),
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Final(s) => write!(f, "the build already ended ({s})"),
            Refusal::StaleAttempt { current, given } => write!(
                f,
                "attempt {given} is stale: the build is at attempt {current}"
            ),
            Refusal::NotNow { state, phase } => match phase {
                Some(p) => write!(f, "not allowed while {state} ({p})"),
                None => write!(f, "not allowed while {state}"),
            },
            Refusal::Invalid(m) => f.write_str(m),
        }
    }
}

impl Status {
    /// A build just submitted.
    pub fn new() -> Status {
        Status {
            state: State::Queued,
            phase: None,
            reason: None,
            attempt: 1,
            counted: 0,
            requeued_by: None,
            cancel_requested: false,
        }
    }

    fn fence(&self, attempt: u32) -> Result<(), Refusal> {
        if attempt != self.attempt {
            return Err(Refusal::StaleAttempt {
                current: self.attempt,
                given: attempt,
            });
        }
        Ok(())
    }

    fn not_now(&self) -> Refusal {
        Refusal::NotNow {
            state: self.state,
            phase: self.phase,
        }
    }

    /// The status after `event`, or why it is refused.
    pub fn apply(&self, event: Event) -> Result<Status, Refusal> {
        if self.state.is_final() {
            return Err(Refusal::Final(self.state));
        }
        let mut next = self.clone();
        match event {
            Event::Claim { attempt } => {
                self.fence(attempt)?;
                if self.state != State::Queued {
                    return Err(self.not_now());
                }
                next.state = State::Running;
                next.phase = Some(Phase::Preparing);
            }
            Event::Advance { attempt, phase } => {
                self.fence(attempt)?;
                if self.state != State::Running || self.phase.is_some_and(|p| p >= phase) {
                    return Err(self.not_now());
                }
                next.phase = Some(phase);
            }
            Event::Finish {
                attempt,
                state,
                reason,
            } => {
                self.fence(attempt)?;
                if self.state != State::Running {
                    return Err(self.not_now());
                }
                // Only a worker's outcomes: `expired` belongs to the queue.
                if !state.is_final() || state == State::Expired || !fits(state, reason) {
                    return Err(Refusal::Invalid(format!(
                        "a running build cannot end {state} with reason {}",
                        reason.map_or("(none)", Reason::as_str)
                    )));
                }
                next.state = state;
                next.phase = None;
                next.reason = reason;
            }
            Event::Requeue {
                attempt,
                reason,
                max_attempts,
            } => {
                self.fence(attempt)?;
                if self.state != State::Running {
                    return Err(self.not_now());
                }
                if !matches!(
                    reason,
                    Reason::WorkerLost | Reason::UploadFailed | Reason::AgentStop
                ) {
                    return Err(Refusal::Invalid(format!(
                        "a build is not re-queued for {reason}"
                    )));
                }
                next.phase = None;
                if reason.counts_as_attempt() {
                    next.counted = self.counted.saturating_add(1);
                }
                if next.counted >= max_attempts.max(1) {
                    next.state = State::Error;
                    next.reason = Some(reason);
                } else if self.cancel_requested {
                    // Nobody wants the next attempt any more.
                    next.state = State::Cancelled;
                    next.reason = Some(Reason::UserCancel);
                } else {
                    next.state = State::Queued;
                    next.attempt = self.attempt.saturating_add(1);
                    next.requeued_by = Some(reason);
                }
            }
            Event::Cancel => match self.state {
                State::Queued => {
                    next.state = State::Cancelled;
                    next.reason = Some(Reason::UserCancel);
                }
                _ if self.cancel_requested => return Err(self.not_now()),
                _ => next.cancel_requested = true,
            },
            Event::Expire => {
                if self.state != State::Queued {
                    return Err(self.not_now());
                }
                next.state = State::Expired;
                next.reason = Some(Reason::Timeout);
            }
        }
        Ok(next)
    }
}

impl Default for Status {
    fn default() -> Self {
        Status::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn running(attempt: u32) -> Status {
        let mut s = Status::new();
        s.attempt = attempt;
        s.apply(Event::Claim { attempt }).unwrap()
    }

    #[test]
    fn names_round_trip() {
        for s in State::ALL {
            assert_eq!(State::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        for p in Phase::ALL {
            assert_eq!(Phase::parse(p.as_str()), Some(p));
        }
        for r in Reason::ALL {
            assert_eq!(Reason::parse(r.as_str()), Some(r));
            assert_eq!(serde_json::to_value(r).unwrap(), r.as_str());
        }
        assert_eq!(State::parse("done"), None);
    }

    #[test]
    fn a_build_runs_its_phases_in_order_and_succeeds() {
        let mut s = running(1);
        for p in [Phase::Building, Phase::Collecting, Phase::Uploading] {
            s = s
                .apply(Event::Advance {
                    attempt: 1,
                    phase: p,
                })
                .unwrap();
        }
        assert!(s
            .apply(Event::Advance {
                attempt: 1,
                phase: Phase::Building
            })
            .is_err());
        let done = s
            .apply(Event::Finish {
                attempt: 1,
                state: State::Succeeded,
                reason: None,
            })
            .unwrap();
        assert_eq!(
            (done.state, done.reason, done.phase),
            (State::Succeeded, None, None)
        );
    }

    #[test]
    fn lost_workers_take_the_next_attempt_until_the_limit() {
        let mut s = running(1);
        for expected in 2..=3 {
            s = s
                .apply(Event::Requeue {
                    attempt: s.attempt,
                    reason: Reason::WorkerLost,
                    max_attempts: 3,
                })
                .unwrap();
            assert_eq!((s.state, s.attempt), (State::Queued, expected));
            assert_eq!(s.requeued_by, Some(Reason::WorkerLost));
            s = s.apply(Event::Claim { attempt: expected }).unwrap();
        }
        let end = s
            .apply(Event::Requeue {
                attempt: 3,
                reason: Reason::WorkerLost,
                max_attempts: 3,
            })
            .unwrap();
        assert_eq!(
            (end.state, end.reason),
            (State::Error, Some(Reason::WorkerLost))
        );
    }

    #[test]
    fn a_graceful_stop_takes_a_new_attempt_number_without_using_one_up() {
        let s = running(1)
            .apply(Event::Requeue {
                attempt: 1,
                reason: Reason::AgentStop,
                max_attempts: 1,
            })
            .unwrap();
        assert_eq!((s.state, s.attempt, s.counted), (State::Queued, 2, 0));
    }

    #[test]
    fn cancel_ends_a_queued_build_and_flags_a_running_one() {
        let q = Status::new().apply(Event::Cancel).unwrap();
        assert_eq!(
            (q.state, q.reason),
            (State::Cancelled, Some(Reason::UserCancel))
        );
        let r = running(1).apply(Event::Cancel).unwrap();
        assert_eq!((r.state, r.cancel_requested), (State::Running, true));
        // A lost worker of a build someone cancelled is not retried.
        let lost = r
            .apply(Event::Requeue {
                attempt: 1,
                reason: Reason::WorkerLost,
                max_attempts: 3,
            })
            .unwrap();
        assert_eq!(lost.state, State::Cancelled);
    }

    #[test]
    fn outcomes_must_fit_their_state() {
        let r = running(1);
        for (state, reason) in [
            (State::Succeeded, Some(Reason::ExitCode)),
            (State::Failed, None),
            (State::Failed, Some(Reason::WorkerLost)),
            (State::Expired, Some(Reason::Timeout)),
            (State::Queued, None),
        ] {
            assert!(
                matches!(
                    r.apply(Event::Finish {
                        attempt: 1,
                        state,
                        reason
                    }),
                    Err(Refusal::Invalid(_))
                ),
                "{state} {reason:?}"
            );
        }
        assert!(Status::new().apply(Event::Expire).is_ok());
        assert!(
            r.apply(Event::Expire).is_err(),
            "a running build does not expire"
        );
    }

    fn any_state() -> impl Strategy<Value = State> {
        prop::sample::select(State::ALL.to_vec())
    }
    fn any_reason() -> impl Strategy<Value = Option<Reason>> {
        prop::option::of(prop::sample::select(Reason::ALL.to_vec()))
    }
    fn any_event() -> impl Strategy<Value = Event> {
        let phase = prop::sample::select(Phase::ALL.to_vec());
        prop_oneof![
            (1u32..5).prop_map(|attempt| Event::Claim { attempt }),
            (1u32..5, phase).prop_map(|(attempt, phase)| Event::Advance { attempt, phase }),
            (1u32..5, any_state(), any_reason()).prop_map(|(attempt, state, reason)| {
                Event::Finish {
                    attempt,
                    state,
                    reason,
                }
            }),
            (1u32..5, prop::sample::select(Reason::ALL.to_vec()), 1u32..4).prop_map(
                |(attempt, reason, max_attempts)| Event::Requeue {
                    attempt,
                    reason,
                    max_attempts
                }
            ),
            Just(Event::Cancel),
            Just(Event::Expire),
        ]
    }

    fn attempt_of(e: Event) -> Option<u32> {
        match e {
            Event::Claim { attempt }
            | Event::Advance { attempt, .. }
            | Event::Finish { attempt, .. }
            | Event::Requeue { attempt, .. } => Some(attempt),
            Event::Cancel | Event::Expire => None,
        }
    }

    proptest! {
        /// Whatever happens, in any order: nothing leaves a final state, a worker's event for
        /// another attempt is refused, attempts only grow, and a final state carries a reason
        /// that fits it.
        #[test]
        fn final_states_are_final_and_stale_attempts_are_refused(
            events in prop::collection::vec(any_event(), 1..60)
        ) {
            let mut s = Status::new();
            for e in events {
                let r = s.apply(e);
                if s.state.is_final() {
                    prop_assert_eq!(r, Err(Refusal::Final(s.state)));
                    continue;
                }
                if let Some(a) = attempt_of(e) {
                    if a != s.attempt {
                        prop_assert_eq!(
                            r,
                            Err(Refusal::StaleAttempt { current: s.attempt, given: a })
                        );
                        continue;
                    }
                }
                if let Ok(next) = r {
                    prop_assert!(next.attempt >= s.attempt);
                    prop_assert!(next.attempt <= s.attempt + 1);
                    prop_assert_eq!(next.phase.is_some(), next.state == State::Running);
                    if next.state.is_final() {
                        prop_assert!(fits(next.state, next.reason), "{:?}", next);
                    }
                    s = next;
                }
            }
        }
    }
}

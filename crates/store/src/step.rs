//! The names of the persisted steps of jobs (`job_steps.step`) and where a
//! step stands (`job_steps.state`). A step is recorded before it runs and
//! after it ends, so a resumed job skips the steps that finished and a
//! retried one never repeats an outside effect.

use std::fmt;

/// A step of a job. Each outside effect (a pull request, a comment, a
/// resolve) is one step of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Step {
    /// A round: diagnose the incident's event.
    Diagnose,
    /// A round: look for a test that fails as production did.
    Reproduce,
    /// A round: climb the fix ladder from the saved diagnosis and
    /// reproduction.
    Heal,
    /// A round: open the pull request, the suggestion or the escalation.
    Propose,
    /// A forge event: apply a merge, a close or a `/suture` command.
    Apply,
    /// A verification: close the tracking issue of a fix that held.
    CloseIssue,
    /// A verification: resolve the Sentry issue or PagerDuty incident.
    ResolveUpstream,
    /// A verification: reopen the tracking issue of a fix that did not hold.
    ReopenIssue,
    /// A verification: note the recurrence on the PagerDuty incident.
    PagerdutyNote,
    /// After a fix was rejected or did not hold: the circuit breaker's
    /// check, and its pause and comment when it trips.
    Breaker,
}

impl Step {
    /// Every step.
    pub const ALL: [Step; 10] = [
        Step::Diagnose,
        Step::Reproduce,
        Step::Heal,
        Step::Propose,
        Step::Apply,
        Step::CloseIssue,
        Step::ResolveUpstream,
        Step::ReopenIssue,
        Step::PagerdutyNote,
        Step::Breaker,
    ];

    /// The step's name in the store, the timeline and the metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Diagnose => "diagnose",
            Step::Reproduce => "reproduce",
            Step::Heal => "heal",
            Step::Propose => "propose",
            Step::Apply => "apply",
            Step::CloseIssue => "close_issue",
            Step::ResolveUpstream => "resolve_upstream",
            Step::ReopenIssue => "reopen_issue",
            Step::PagerdutyNote => "pagerduty_note",
            Step::Breaker => "breaker",
        }
    }

    /// The step named `name`.
    pub fn parse(name: &str) -> Option<Step> {
        Step::ALL.into_iter().find(|step| step.as_str() == name)
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a step stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepState {
    /// Recorded as begun; still running, or its worker died.
    Started,
    /// Ended well; its output is kept.
    Finished,
    /// Ended with an error; it runs again if the job is retried.
    Failed,
}

impl StepState {
    /// The state's name in the store.
    pub fn as_str(self) -> &'static str {
        match self {
            StepState::Started => "started",
            StepState::Finished => "finished",
            StepState::Failed => "failed",
        }
    }

    /// The state named `name`.
    pub fn parse(name: &str) -> Option<StepState> {
        [StepState::Started, StepState::Finished, StepState::Failed]
            .into_iter()
            .find(|state| state.as_str() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Names round-trip, and no two steps share one.
    #[test]
    fn names_round_trip() {
        for step in Step::ALL {
            assert_eq!(Step::parse(step.as_str()), Some(step));
        }
        assert_eq!(Step::parse("route"), None);
        for state in [StepState::Started, StepState::Finished, StepState::Failed] {
            assert_eq!(StepState::parse(state.as_str()), Some(state));
        }
    }
}

//! Where an incident is in the loop ([`IncidentState`]), and the one table
//! of the moves between states ([`TRANSITIONS`]), which every write of
//! `incidents.state` goes through ([`enter_state!`]).
//!
//! An incident is born `new` (the write path inserts it). One round runs
//! along the main path; humans and the forge move it on from there:
//!
//! ```text
//! new ─► diagnosing ─► healing ─┬─► proposed ─┬─► verifying ─┬─► resolved ─► regressed
//!  │         │                  ├─► suggested └─► rejected   └─► regressed   (an event: the
//!  ▼         ▼                  └─► unfixed       (closed)       (recurred)   write path)
//! no_repo  diagnosed
//! observed (observe)
//! deferred
//!
//! from every state:  ─► new       `/suture retry` starts the next round
//!                    ─► stopped   `/suture stop`
//!                    ─► failed    a job ended for good
//! ```
//!
//! The table is wider than that path, and deliberately so: it holds each
//! writer to the check the writer itself makes. One incident carries
//! several rounds (a `/suture retry` on an open pull request starts round
//! n + 1 while round n's pull request is still open), so a merge, a close
//! or a verification about an earlier round lands whatever the newer round
//! is doing, and a job resumed after a crash repeats its last write. What
//! every writer does check is `stopped`: the pipeline, the propose step and
//! the verification read it first and skip, so a stopped incident moves
//! only when a human acts (`/suture retry`, a merge or a close of its pull
//! request) or a job ends for good. By who writes it, a state is entered
//! from:
//!
//! | state                                   | from              | written by |
//! |-----------------------------------------|-------------------|------------|
//! | `new`                                   | any state         | [`crate::Store::start_round`] (`/suture retry`) |
//! | `diagnosing`, `diagnosed`, `healing`, `no_repo`, `observed`, `deferred` | any but `stopped` | the pipeline round (its triage and limits) |
//! | `proposed`, `suggested`, `unfixed`      | any but `stopped` | the propose step |
//! | `verifying`, `rejected`                 | any state         | a forge event: the pull request merged, closed |
//! | `resolved`, `regressed`                 | any but `stopped` | the verification; the write path (`resolved` → `regressed`) |
//! | `stopped`                               | any state         | `/suture stop` |
//! | `failed`                                | any state         | a job that ended for good |
//!
//! Every state may be written again (a resumed job repeats its write).
//! `failed` is allowed from everywhere because a job that ends for good
//! fails its incident whatever the incident was doing, and a refusal there
//! would only send the job back to the queue. Refused, then, are the moves
//! out of `stopped` that only a race can make (a round, a proposal or a
//! verification finishing after `/suture stop` was obeyed) and any move to
//! `fixed`, which no writer makes. The store answers those with
//! [`StoreError::Transition`] and writes nothing; the job's next attempt
//! reads `stopped` and skips.
//!
//! **Invariant:** no statement writes `incidents.state` except the
//! write path's insert of a `new` incident and [`enter_state!`], whose
//! guard (`AND state IN (…)`) is derived from [`TRANSITIONS`].

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use crate::StoreError;

/// Where an incident is in the loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentState {
    /// Opened; nothing has run yet.
    New,
    /// The diagnose step is running.
    Diagnosing,
    /// Diagnosed, and the repository is in `observe` mode: nothing more runs.
    Diagnosed,
    /// Diagnosed; the heal step is next or running.
    Healing,
    /// The heal step proved a fix.
    Fixed,
    /// The pipeline ran and found no proven fix: a human takes it from here.
    Unfixed,
    /// No configured repository serves this incident's project.
    NoRepo,
    /// The pipeline failed for good (attempts exhausted or a permanent error).
    Failed,
    /// A pull request with the fix is open for review.
    Proposed,
    /// A tracking issue carries the proposed diff (`suggest` mode): a human
    /// applies it.
    Suggested,
    /// The fix was merged; the quiet window that verifies it runs.
    Verifying,
    /// The fix held through its quiet window; closed upstream.
    Resolved,
    /// The pull request was closed unmerged.
    Rejected,
    /// The error recurred after the fix; escalated to a human.
    Regressed,
    /// A human said `/suture stop`: nothing more runs for it.
    Stopped,
    /// Not worth a round on its own (an old error, too few events, the
    /// learning period): counted and shown; a spike or a human starts one.
    Observed,
    /// Worth a round, but over one of its repository's limits: the round
    /// starts when the limit allows.
    Deferred,
}

use IncidentState as S;

/// Every state: entered from anywhere.
const ANY: &[IncidentState] = &IncidentState::ALL;

/// Every state but `stopped`: what a writer that skips stopped incidents
/// may find.
const UNLESS_STOPPED: &[IncidentState] = &[
    S::New,
    S::Diagnosing,
    S::Diagnosed,
    S::Healing,
    S::Fixed,
    S::Unfixed,
    S::NoRepo,
    S::Failed,
    S::Proposed,
    S::Suggested,
    S::Verifying,
    S::Resolved,
    S::Rejected,
    S::Regressed,
    S::Observed,
    S::Deferred,
];

/// The one table of allowed moves: each state with the states it may be
/// entered from (see the module doc for who writes which). A state that is
/// not listed as a target (`fixed`, which nothing writes) is never entered.
pub(crate) const TRANSITIONS: &[(IncidentState, &[IncidentState])] = &[
    // `/suture retry` (`Store::start_round`): the next round, from anywhere.
    (S::New, ANY),
    // A pipeline round; it reads `stopped` first and skips the round.
    (S::Diagnosing, UNLESS_STOPPED),
    (S::Diagnosed, UNLESS_STOPPED),
    (S::Healing, UNLESS_STOPPED),
    (S::NoRepo, UNLESS_STOPPED),
    (S::Observed, UNLESS_STOPPED),
    (S::Deferred, UNLESS_STOPPED),
    // The propose step; it reads `stopped` again before proposing.
    (S::Proposed, UNLESS_STOPPED),
    (S::Suggested, UNLESS_STOPPED),
    (S::Unfixed, UNLESS_STOPPED),
    // A forge event about any round's pull request: a human merged or
    // closed it, whatever the incident is doing.
    (S::Verifying, ANY),
    (S::Rejected, ANY),
    // The verification (skipped when stopped); the write path's
    // `resolved` → `regressed` when an event arrives.
    (S::Resolved, UNLESS_STOPPED),
    (S::Regressed, UNLESS_STOPPED),
    // A human's `/suture stop`; a job that ends for good.
    (S::Stopped, ANY),
    (S::Failed, ANY),
];

impl IncidentState {
    /// Every state, for metrics that list all of them.
    pub const ALL: [IncidentState; 17] = [
        IncidentState::New,
        IncidentState::Diagnosing,
        IncidentState::Diagnosed,
        IncidentState::Healing,
        IncidentState::Fixed,
        IncidentState::Unfixed,
        IncidentState::NoRepo,
        IncidentState::Failed,
        IncidentState::Proposed,
        IncidentState::Suggested,
        IncidentState::Verifying,
        IncidentState::Resolved,
        IncidentState::Rejected,
        IncidentState::Regressed,
        IncidentState::Stopped,
        IncidentState::Observed,
        IncidentState::Deferred,
    ];

    /// The state's name in the database and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentState::New => "new",
            IncidentState::Diagnosing => "diagnosing",
            IncidentState::Diagnosed => "diagnosed",
            IncidentState::Healing => "healing",
            IncidentState::Fixed => "fixed",
            IncidentState::Unfixed => "unfixed",
            IncidentState::NoRepo => "no_repo",
            IncidentState::Failed => "failed",
            IncidentState::Proposed => "proposed",
            IncidentState::Suggested => "suggested",
            IncidentState::Verifying => "verifying",
            IncidentState::Resolved => "resolved",
            IncidentState::Rejected => "rejected",
            IncidentState::Regressed => "regressed",
            IncidentState::Stopped => "stopped",
            IncidentState::Observed => "observed",
            IncidentState::Deferred => "deferred",
        }
    }

    /// The states an incident may move to `self` from, per
    /// [`TRANSITIONS`]; empty for a state nothing may enter.
    pub(crate) const fn entered_from(self) -> &'static [IncidentState] {
        let mut i = 0;
        while i < TRANSITIONS.len() {
            if TRANSITIONS[i].0 as u8 == self as u8 {
                return TRANSITIONS[i].1;
            }
            i += 1;
        }
        &[]
    }

    /// Whether an incident in state `self` may move to `to` (the same
    /// state included): the one check every write of an incident's state
    /// makes, from the one table of transitions (see the module doc).
    pub const fn can_become(self, to: IncidentState) -> bool {
        let from = to.entered_from();
        let mut i = 0;
        while i < from.len() {
            if from[i] as u8 == self as u8 {
                return true;
            }
            i += 1;
        }
        false
    }
}

impl FromStr for IncidentState {
    type Err = StoreError;

    fn from_str(text: &str) -> Result<IncidentState, StoreError> {
        IncidentState::ALL
            .into_iter()
            .find(|state| state.as_str() == text)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown incident state {text:?}")))
    }
}

impl fmt::Display for IncidentState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The statement that moves an incident (`$1`) to `to` (`$2`) at `$3`,
/// guarded by the states `to` may be entered from: it changes no row when
/// the table refuses the move. The names are this module's constants, so
/// writing them into the text is safe.
pub(crate) fn enter_sql(to: IncidentState) -> String {
    let from: Vec<String> = to
        .entered_from()
        .iter()
        .map(|state| format!("'{}'", state.as_str()))
        .collect();
    let guard = if from.is_empty() {
        "1 = 0".to_owned()
    } else {
        format!("state IN ({})", from.join(", "))
    };
    format!("UPDATE incidents SET state = $2, updated_at = $3 WHERE id = $1 AND {guard}")
}

/// Why incident `incident_id`, found in state `from` (as stored), was not
/// moved to `to`.
pub(crate) fn refused(incident_id: i64, from: &str, to: IncidentState) -> StoreError {
    match from.parse::<IncidentState>() {
        Ok(from) => StoreError::Transition {
            incident_id,
            from,
            to,
        },
        Err(error) => error,
    }
}

/// Moves incident `$id` to state `$to` at `$now` (Unix milliseconds) in
/// transaction `$tx`, if [`TRANSITIONS`] allows it from the state the
/// incident is in: the one way the store changes a state (the write path's
/// insert of a `new` incident aside). Evaluates to `Ok(true)` when moved,
/// `Ok(false)` when there is no such incident, and
/// `Err(StoreError::Transition)` when the table refuses the move, in which
/// case nothing was written. One statement when it moves; a read of the
/// state only when it does not. Database errors return from the enclosing
/// function (`?`).
macro_rules! enter_state {
    ($tx:expr, $id:expr, $to:expr, $now:expr) => {{
        let (incident_id, to, now): (i64, crate::IncidentState, i64) = ($id, $to, $now);
        let moved = sqlx::query(sqlx::AssertSqlSafe(crate::incident_state::enter_sql(to)))
            .bind(incident_id)
            .bind(to.as_str())
            .bind(now)
            .execute(&mut *$tx)
            .await?
            .rows_affected();
        if moved > 0 {
            Ok::<bool, crate::StoreError>(true)
        } else {
            let from: Option<String> =
                sqlx::query_scalar("SELECT state FROM incidents WHERE id = $1")
                    .bind(incident_id)
                    .fetch_optional(&mut *$tx)
                    .await?;
            match from {
                Some(from) => Err(crate::incident_state::refused(incident_id, &from, to)),
                None => Ok(false),
            }
        }
    }};
}
pub(crate) use enter_state;

#[cfg(test)]
mod tests {
    use super::*;

    /// Names round-trip, and no two states share one.
    #[test]
    fn names_round_trip() {
        for state in IncidentState::ALL {
            assert_eq!(state.as_str().parse::<IncidentState>().unwrap(), state);
            assert_eq!(state.to_string(), state.as_str());
        }
        assert!(matches!(
            "closed".parse::<IncidentState>(),
            Err(StoreError::Corrupt(_))
        ));
    }

    /// Each state is a target at most once, `fixed` (which nothing writes)
    /// never, and `UNLESS_STOPPED` is every state but `stopped`.
    #[test]
    fn the_table_is_well_formed() {
        for state in IncidentState::ALL {
            let rows = TRANSITIONS.iter().filter(|(to, _)| *to == state).count();
            let expected = usize::from(state != IncidentState::Fixed);
            assert_eq!(rows, expected, "{state} is listed {rows} times");
        }
        let unless: Vec<_> = IncidentState::ALL
            .into_iter()
            .filter(|state| *state != IncidentState::Stopped)
            .collect();
        assert_eq!(unless, UNLESS_STOPPED);
    }

    /// What the service does today stays allowed: failing, stopping and
    /// retrying from anywhere, a round's main path, repeated writes; only
    /// racing past a stop is refused.
    #[test]
    fn the_service_moves_are_allowed() {
        for state in IncidentState::ALL {
            assert!(state.can_become(S::Failed), "{state} → failed");
            assert!(state.can_become(S::Stopped), "{state} → stopped");
            assert!(state.can_become(S::New), "{state} → new (retry)");
            if state != S::Fixed {
                assert!(state.can_become(state), "{state} → {state}");
            }
        }
        let path = [
            (S::New, S::NoRepo),
            (S::New, S::Diagnosing),
            (S::Diagnosing, S::Diagnosed),
            (S::Diagnosing, S::Healing),
            (S::Healing, S::Proposed),
            (S::Healing, S::Suggested),
            (S::Healing, S::Unfixed),
            (S::Proposed, S::Verifying),
            (S::Proposed, S::Rejected),
            (S::Verifying, S::Resolved),
            (S::Verifying, S::Regressed),
            (S::Resolved, S::Regressed),
        ];
        for (from, to) in path {
            assert!(from.can_become(to), "{from} → {to}");
        }
        for retried in [S::Rejected, S::Regressed, S::Unfixed, S::Failed] {
            assert!(retried.can_become(S::Diagnosing), "{retried} → diagnosing");
        }
        for raced in [S::Diagnosing, S::Healing, S::Proposed, S::Resolved] {
            assert!(!S::Stopped.can_become(raced), "stopped → {raced}");
        }
        assert!(!S::New.can_become(S::Fixed));
    }

    /// The guard lists exactly the table's states.
    #[test]
    fn the_guard_is_the_table() {
        assert_eq!(
            enter_sql(IncidentState::Failed).matches('\'').count(),
            2 * IncidentState::ALL.len()
        );
        let regressed = enter_sql(IncidentState::Regressed);
        assert!(regressed.contains("'resolved'"), "{regressed}");
        assert!(!regressed.contains("'stopped'"), "{regressed}");
        assert!(enter_sql(IncidentState::Fixed).ends_with("AND 1 = 0"));
    }
}

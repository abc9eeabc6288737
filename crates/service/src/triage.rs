//! Triage: is an incident worth a healing round on its own?
//!
//! A round starts for what is news: an error first seen on the project's
//! newest release (`new_release`), one back after its fix held
//! (`regression`, started by the verification), or a burst over the
//! incident's own baseline rate (`spike`). Everything else is `observed`:
//! counted and shown, with the reason on its timeline. During the first
//! `learning_seconds` after suture first sees a project its errors predate
//! suture, so they are not news either, unless they spike. A human's
//! `/suture retry` is `manual` and skips triage. `repos[].heal_on` says
//! which triggers act on their own.
//!
//! The first look happens when the incident's round-1 job runs (its first
//! event); an observed incident that receives more events is looked at
//! again by its `detect` job ([`crate::detect`]): a spike, or the
//! `min_events`-th event of an incident held back only for its count.

use chrono::{DateTime, Utc};
use domain::config::{RepoConfig, Trigger};
use serde_json::{Value, json};
use store::{Incident, Store, StoreError};

/// Baseline windows a spike is measured against, before the current one.
const BASELINE_WINDOWS: usize = 12;

/// Weight of the newer window in the baseline's moving average.
const EWMA_ALPHA: f64 = 0.3;

/// Why a round starts, as the incident's `trigger` shows it.
pub(crate) const MANUAL: &str = "manual";

/// What triage decided.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Verdict {
    /// Start a round, for this trigger (`new_release`, `spike`, …).
    Heal(&'static str),
    /// Hold it back as `observed`, for this reason.
    Observe(Reason),
}

/// Why an incident is only observed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reason {
    /// Seen during the project's learning period.
    Learning,
    /// First seen on a release older than the project's newest.
    OldRelease,
    /// Fewer events than `min_events`; `pending` is the trigger it waits
    /// with.
    MinEvents,
    /// Its trigger is not in `heal_on`.
    NotInHealOn,
}

impl Reason {
    /// The reason's name on the timeline, the API and the metric.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Reason::Learning => "learning",
            Reason::OldRelease => "old_release",
            Reason::MinEvents => "min_events",
            Reason::NotInHealOn => "heal_on",
        }
    }

    /// One line for the timeline.
    pub(crate) fn explain(self, repo: &RepoConfig) -> String {
        match self {
            Reason::Learning => format!(
                "observed: first seen during the project's learning period ({} s after suture first saw it); errors that predate suture are not news",
                repo.learning_seconds
            ),
            Reason::OldRelease => {
                "observed: first seen on a release older than the project's newest".to_owned()
            }
            Reason::MinEvents => format!(
                "observed: a round starts at {} events (repos[].min_events)",
                repo.min_events
            ),
            Reason::NotInHealOn => {
                "observed: new on the latest release, but `new_release` is not in repos[].heal_on"
                    .to_owned()
            }
        }
    }

    /// The incident's `held_back` while it is observed for this reason.
    pub(crate) fn held_back(self) -> Value {
        json!({"reason": self.as_str()})
    }
}

/// The first look at a new incident (its round-1 job).
pub(crate) async fn first_look(
    store: &Store,
    repo: &RepoConfig,
    incident: &Incident,
    now: DateTime<Utc>,
) -> Result<Verdict, StoreError> {
    if spiking(store, repo, incident, now).await? {
        return Ok(Verdict::Heal(Trigger::Spike.as_str()));
    }
    if let Some(project) = incident.project.as_deref() {
        if learning(store, repo, project, now).await? {
            return Ok(Verdict::Observe(Reason::Learning));
        }
        // Newest as of the incident's first event: a later deploy does not
        // make an error that was new on its release old.
        if let Some(release) = store.first_release(incident.id).await?
            && let Some(newest) = store
                .newest_release_at(project, incident.first_seen)
                .await?
            && newest != release
        {
            return Ok(Verdict::Observe(Reason::OldRelease));
        }
    }
    if !repo.heal_on.contains(&Trigger::NewRelease) {
        return Ok(Verdict::Observe(Reason::NotInHealOn));
    }
    if (incident.count.max(0) as u64) < repo.min_events {
        return Ok(Verdict::Observe(Reason::MinEvents));
    }
    Ok(Verdict::Heal(Trigger::NewRelease.as_str()))
}

/// Another look at an observed incident that received events: the trigger
/// of the round it now deserves, if any.
pub(crate) async fn look_again(
    store: &Store,
    repo: &RepoConfig,
    incident: &Incident,
    now: DateTime<Utc>,
) -> Result<Option<&'static str>, StoreError> {
    if spiking(store, repo, incident, now).await? {
        return Ok(Some(Trigger::Spike.as_str()));
    }
    let waiting_for_count = incident
        .held_back
        .as_ref()
        .and_then(|why| why.get("reason"))
        .and_then(Value::as_str)
        == Some(Reason::MinEvents.as_str());
    if waiting_for_count && (incident.count.max(0) as u64) >= repo.min_events {
        return Ok(Some(Trigger::NewRelease.as_str()));
    }
    Ok(None)
}

/// Whether `project` is still in its learning period.
async fn learning(
    store: &Store,
    repo: &RepoConfig,
    project: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    if repo.learning_seconds == 0 {
        return Ok(false);
    }
    let Some(first) = store.project_first_seen(project).await? else {
        return Ok(false);
    };
    let learning =
        chrono::Duration::seconds(i64::try_from(repo.learning_seconds).unwrap_or(i64::MAX / 1000));
    Ok(now < first + learning)
}

/// Whether the incident's events over the last `spike_window_seconds`
/// exceed `spike_factor` × its baseline (and `spike_min_events`), when
/// `spike` is a trigger of the repository.
async fn spiking(
    store: &Store,
    repo: &RepoConfig,
    incident: &Incident,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    if !repo.heal_on.contains(&Trigger::Spike) {
        return Ok(false);
    }
    let window_ms =
        i64::try_from(repo.spike_window_seconds.saturating_mul(1000)).unwrap_or(i64::MAX);
    let counts = store
        .event_windows(incident.id, now, window_ms, BASELINE_WINDOWS + 1)
        .await?;
    // Windows that ended before the incident existed say nothing of its rate.
    let first_window = counts.len() as i64
        - 1
        - ((now - incident.first_seen).num_milliseconds().max(0) / window_ms.max(1));
    let counts: Vec<i64> = counts
        .iter()
        .enumerate()
        .filter(|(index, _)| *index as i64 >= first_window)
        .map(|(_, count)| *count)
        .collect();
    Ok(is_spike(&counts, repo.spike_factor, repo.spike_min_events))
}

/// The spike rule over `counts` (the incident's windows, oldest first, the
/// current one last): the current count reaches `min_events` and exceeds
/// `factor` × the EWMA of the earlier windows.
fn is_spike(counts: &[i64], factor: f64, min_events: u64) -> bool {
    let Some((&current, earlier)) = counts.split_last() else {
        return false;
    };
    if (current.max(0) as u64) < min_events {
        return false;
    }
    let baseline = earlier.iter().fold(None, |average: Option<f64>, &count| {
        let count = count as f64;
        Some(match average {
            None => count,
            Some(average) => EWMA_ALPHA * count + (1.0 - EWMA_ALPHA) * average,
        })
    });
    current as f64 > factor * baseline.unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::is_spike;

    #[test]
    fn a_burst_over_a_quiet_baseline_is_a_spike() {
        assert!(is_spike(&[2, 1, 2, 30], 5.0, 20));
    }

    #[test]
    fn a_steady_rate_is_not_a_spike_however_high() {
        assert!(!is_spike(&[100, 110, 90, 105], 5.0, 20));
    }

    #[test]
    fn too_few_events_are_not_a_spike_even_over_nothing() {
        assert!(!is_spike(&[0, 0, 0, 19], 5.0, 20));
        assert!(is_spike(&[20], 5.0, 20));
    }

    #[test]
    fn the_baseline_follows_recent_windows_more_than_old_ones() {
        // An old burst ages out of the average: 30 after quiet windows is
        // a spike, right after a busy one it is not.
        assert!(is_spike(&[50, 0, 0, 0, 0, 0, 0, 30], 5.0, 20));
        assert!(!is_spike(&[0, 0, 0, 0, 0, 0, 50, 30], 5.0, 20));
    }
}

//! When an action may run: not while paused (the `[recovery]` switch or
//! `suture pause`), not more than `max_runs_per_hour`, and not within
//! `cooldown_seconds` of its last run. Pure: the caller reads the usage
//! from the store, so the rule is tested on its own.

use chrono::{DateTime, Utc};
use domain::config::ActionConfig;

/// Why an action may not run now: the `limit` of a `skipped_limit` run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Limit {
    /// Actions are paused, with the reason.
    Paused(String),
    /// `max_runs_per_hour` runs began in the last hour.
    Rate(u32),
    /// The last run began less than `cooldown_seconds` ago; the action may
    /// run again from `until`.
    Cooldown { until: DateTime<Utc> },
}

impl Limit {
    /// The limit's name, as the run's detail and the timeline say it.
    pub(super) fn name(&self) -> &'static str {
        match self {
            Limit::Paused(_) => "paused",
            Limit::Rate(_) => "max_runs_per_hour",
            Limit::Cooldown { .. } => "cooldown_seconds",
        }
    }

    /// One line for the timeline.
    pub(super) fn describe(&self) -> String {
        match self {
            Limit::Paused(reason) => format!("actions are paused: {reason}"),
            Limit::Rate(max) => format!("{max} run(s) in the last hour (max_runs_per_hour)"),
            Limit::Cooldown { until } => format!(
                "cooling down after its last run until {} (cooldown_seconds)",
                until.format("%H:%M:%S UTC")
            ),
        }
    }
}

/// What holds `action` back at `now`, given the pause (if any), how many
/// runs began in the last hour and when the last one began.
pub(super) fn limit(
    action: &ActionConfig,
    paused: Option<&str>,
    runs_last_hour: i64,
    last_run: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Option<Limit> {
    if let Some(reason) = paused {
        return Some(Limit::Paused(reason.to_owned()));
    }
    let cooldown = chrono::Duration::seconds(
        i64::try_from(action.cooldown_seconds)
            .unwrap_or(i64::MAX / 1000)
            .min(315_360_000),
    );
    if let Some(last) = last_run
        && now < last + cooldown
    {
        return Some(Limit::Cooldown {
            until: last + cooldown,
        });
    }
    (runs_last_hour >= i64::from(action.max_runs_per_hour))
        .then_some(Limit::Rate(action.max_runs_per_hour))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn action(max: u32, cooldown: u64) -> ActionConfig {
        ActionConfig {
            max_runs_per_hour: max,
            cooldown_seconds: cooldown,
            ..ActionConfig::default()
        }
    }

    /// A pause comes first, then the cooldown, then the hourly rate; a
    /// fresh action runs.
    #[test]
    fn limits_in_order() {
        let now = Utc::now();
        let minute_ago = Some(now - chrono::Duration::seconds(60));
        assert_eq!(limit(&action(2, 0), None, 0, None, now), None);
        assert_eq!(
            limit(&action(2, 0), Some("review"), 0, None, now).map(|l| l.name()),
            Some("paused")
        );
        assert_eq!(
            limit(&action(2, 1800), None, 1, minute_ago, now),
            Some(Limit::Cooldown {
                until: now - chrono::Duration::seconds(60) + chrono::Duration::seconds(1800)
            })
        );
        assert_eq!(limit(&action(2, 30), None, 1, minute_ago, now), None);
        assert_eq!(
            limit(&action(2, 30), None, 2, minute_ago, now),
            Some(Limit::Rate(2))
        );
    }
}

//! Which incidents an action answers: every field of its `match` that is
//! given must hold. Pure, so the rule is tested without a store.

use domain::config::{ActionConfig, ActionSource, SignalSource};

/// What matching reads of an incident.
#[derive(Debug, Clone, Copy)]
pub(super) struct Facts<'a> {
    /// The incident's source (`pagerduty`, `sentry_sdk`, …).
    pub(super) source: &'a str,
    /// Its PagerDuty service or Sentry project.
    pub(super) project: Option<&'a str>,
    pub(super) title: &'a str,
    pub(super) state: &'a str,
}

/// The action source an incident's source counts as; `None` for sources no
/// action answers (forge deliveries).
pub(super) fn action_source(source: &str) -> Option<ActionSource> {
    match SignalSource::parse(source)? {
        SignalSource::Pagerduty => Some(ActionSource::Pagerduty),
        SignalSource::SentrySdk | SignalSource::SentryWebhook => Some(ActionSource::Sentry),
        SignalSource::Github | SignalSource::LocalForge => None,
    }
}

/// Whether `action` answers an incident with these `facts`. A title
/// pattern that does not compile matches nothing (the configuration's
/// validation refuses it before suture starts).
pub(super) fn matches(action: &ActionConfig, facts: &Facts<'_>) -> bool {
    let rule = &action.r#match;
    let Some(source) = action_source(facts.source) else {
        return false;
    };
    if rule.source.is_some_and(|wanted| wanted != source) {
        return false;
    }
    // Services are PagerDuty's ids and projects Sentry's: a listed id
    // matches only on its own source.
    let listed = |ids: &[String], on: ActionSource| {
        ids.is_empty() || (source == on && ids.iter().any(|id| Some(id.as_str()) == facts.project))
    };
    if !listed(&rule.services, ActionSource::Pagerduty)
        || !listed(&rule.projects, ActionSource::Sentry)
    {
        return false;
    }
    if !rule.states.is_empty() && !rule.states.iter().any(|state| state == facts.state) {
        return false;
    }
    match &rule.title {
        None => true,
        Some(_) => rule
            .title_regex()
            .is_some_and(|regex| regex.is_match(facts.title)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn action(toml: &str) -> ActionConfig {
        let config = domain::config::Config::from_toml(&format!(
            "[[actions]]\nname = \"a\"\nrun = \"true\"\n{toml}"
        ))
        .unwrap();
        config.actions[0].clone()
    }

    const PAGE: Facts<'static> = Facts {
        source: "pagerduty",
        project: Some("PABC123"),
        title: "worker-3 down on checkout",
        state: "new",
    };

    /// The example: a PagerDuty page on the service whose title
    /// matches, and nothing else.
    #[test]
    fn every_given_field_must_hold() {
        let restart = action(
            "match = { source = \"pagerduty\", services = [\"PABC123\"], title = \"worker.*down\" }",
        );
        assert!(matches(&restart, &PAGE));
        assert!(!matches(
            &restart,
            &Facts {
                project: Some("POTHER"),
                ..PAGE
            }
        ));
        assert!(!matches(
            &restart,
            &Facts {
                title: "disk full",
                ..PAGE
            }
        ));
        assert!(!matches(
            &restart,
            &Facts {
                source: "sentry_sdk",
                ..PAGE
            }
        ));
        let states = action("match = { states = [\"new\", \"observed\"] }");
        assert!(matches(&states, &PAGE));
        assert!(!matches(
            &states,
            &Facts {
                state: "resolved",
                ..PAGE
            }
        ));
    }

    /// Sources map onto `pagerduty` and `sentry`; forge deliveries never
    /// match; projects are Sentry's and services PagerDuty's.
    #[test]
    fn sources_and_ids() {
        let any = action("");
        assert!(matches(&any, &PAGE));
        assert!(matches(
            &any,
            &Facts {
                source: "sentry_webhook",
                ..PAGE
            }
        ));
        assert!(!matches(
            &any,
            &Facts {
                source: "github",
                ..PAGE
            }
        ));
        let project = action("match = { projects = [\"PABC123\"] }");
        assert!(!matches(&project, &PAGE), "a service id is not a project");
        assert!(matches(
            &project,
            &Facts {
                source: "sentry_sdk",
                ..PAGE
            }
        ));
    }
}

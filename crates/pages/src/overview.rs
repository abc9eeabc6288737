//! `/`: incidents grouped by where they stand, newest first.
//!
//! States are grouped by their name, in the loop's order ([`STATE_ORDER`]);
//! a state this page does not know yet (one added to the store later) gets
//! its own group after the known ones, so nothing is ever hidden. Filters
//! (`?repo=NAME&state=STATE`) and pages (`&page=N`, [`PAGE_SIZE`] cards)
//! are plain links and a GET form.
//!
//! The filters run over the [`MAX_SCANNED`] incidents seen most recently:
//! the store lists incidents newest first, and the page is for what is
//! happening now, not for archaeology (the JSON API and the database are).

use axum::Extension;
use axum::extract::{Query, State};
use axum::response::Html;
use chrono::{DateTime, Utc};
use domain::config::ForgeKind;
use maud::{Markup, html};
use serde::Deserialize;
use store::{FixAttempt, Incident};

use crate::auth::{Viewer, percent_encode};
use crate::story::Story;
use crate::{Pages, PagesError, layout};

/// Cards per page.
pub const PAGE_SIZE: usize = 30;

/// Incidents the filters look through, most recently seen first.
pub const MAX_SCANNED: i64 = 5000;

/// The states in the loop's order, each with its group's heading.
pub const STATE_ORDER: &[(&str, &str)] = &[
    ("new", "New"),
    ("observed", "Observed"),
    ("deferred", "Deferred"),
    ("diagnosing", "Diagnosing"),
    ("diagnosed", "Diagnosed"),
    ("healing", "Healing"),
    ("fixed", "Fixed"),
    ("proposed", "Proposed"),
    ("suggested", "Suggested"),
    ("verifying", "Verifying"),
    ("resolved", "Resolved"),
    ("regressed", "Regressed"),
    ("unfixed", "Unfixed (escalated)"),
    ("failed", "Failed"),
    ("rejected", "Rejected"),
    ("stopped", "Stopped"),
    ("no_repo", "No repository"),
];

/// The heading of state `state`'s group.
pub fn state_label(state: &str) -> String {
    STATE_ORDER
        .iter()
        .find(|(name, _)| *name == state)
        .map_or_else(|| state.replace('_', " "), |(_, label)| (*label).to_owned())
}

/// Where `state` sorts among the groups.
fn state_rank(state: &str) -> usize {
    STATE_ORDER
        .iter()
        .position(|(name, _)| *name == state)
        .unwrap_or(STATE_ORDER.len())
}

/// The state's name as the store writes it.
pub(crate) fn state_name(incident: &Incident) -> &'static str {
    incident.state.as_str()
}

/// Query of `/`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct OverviewQuery {
    repo: Option<String>,
    state: Option<String>,
    page: Option<String>,
}

/// What a card shows beyond the incident itself.
pub(crate) struct CardFacts {
    pub(crate) story: Story,
    pub(crate) attempt: Option<FixAttempt>,
    pub(crate) releases: Vec<String>,
    pub(crate) repo: Option<String>,
}

/// Reads what the card (or the detail page's header) of `incident` shows.
pub(crate) async fn card_facts(
    pages: &Pages,
    incident: &Incident,
) -> Result<CardFacts, PagesError> {
    let store = pages.store();
    let jobs = store.incident_jobs(incident.id).await?;
    let attempt = store
        .attempts_for_fingerprint(&incident.fingerprint)
        .await?
        .into_iter()
        .filter(|attempt| attempt.incident_id == incident.id)
        .max_by_key(|attempt| (attempt.round, attempt.id));
    let releases = store
        .event_releases(incident.id, Utc::now() + chrono::Duration::minutes(1))
        .await?;
    Ok(CardFacts {
        story: Story::from_jobs(&jobs),
        attempt,
        releases,
        repo: repo_of(pages, incident),
    })
}

/// The repository that serves `incident`, by name.
pub(crate) fn repo_of(pages: &Pages, incident: &Incident) -> Option<String> {
    pages
        .config()
        .repo_for(&incident.source, incident.project.as_deref())
        .map(|repo| repo.name.clone())
}

/// The pull request of an incident's latest attempt: a link to the review
/// screen on the local forge, the forge's address elsewhere.
pub(crate) fn pull_request_link(facts: &CardFacts) -> Option<(String, String)> {
    if let Some(attempt) = &facts.attempt
        && let Some(number) = attempt.pr_number
    {
        let href = if attempt.forge == ForgeKind::Local.as_str() {
            format!(
                "/pulls/{number}?repo={}",
                percent_encode(&attempt.forge_repo)
            )
        } else {
            attempt
                .pr_url
                .clone()
                .filter(|url| url.starts_with("https://") || url.starts_with("http://"))?
        };
        return Some((href, format!("#{number}")));
    }
    let number = facts.story.pr_number()?;
    let url = facts
        .story
        .proposal
        .get("pr_url")
        .and_then(serde_json::Value::as_str)
        .filter(|url| url.starts_with("https://") || url.starts_with("http://"));
    let href = match url {
        Some(url) => url.to_owned(),
        None => match &facts.repo {
            Some(repo) => format!("/pulls/{number}?repo={}", percent_encode(repo)),
            None => format!("/pulls/{number}"),
        },
    };
    Some((href, format!("#{number}")))
}

/// A time for people, with its machine-readable form.
pub(crate) fn when(at: &DateTime<Utc>) -> Markup {
    html! {
        time datetime=(at.to_rfc3339()) { (at.format("%Y-%m-%d %H:%M UTC")) }
    }
}

/// A time to the second, for the quiet window's minutes.
pub(crate) fn when_precise(at: &DateTime<Utc>) -> Markup {
    html! {
        time datetime=(at.to_rfc3339()) { (at.format("%Y-%m-%d %H:%M:%S UTC")) }
    }
}

/// `GET /`.
pub(crate) async fn page(
    State(pages): State<Pages>,
    Extension(viewer): Extension<Viewer>,
    query: Result<Query<OverviewQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Html<String>, PagesError> {
    let query = query.map(|Query(query)| query).unwrap_or_default();
    let repo = query.repo.filter(|repo| !repo.is_empty());
    let state = query.state.filter(|state| !state.is_empty());
    let page_number = query
        .page
        .and_then(|page| page.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);

    let incidents: Vec<Incident> = pages
        .store()
        .list_incidents(MAX_SCANNED)
        .await?
        .into_iter()
        .filter(|incident| {
            state
                .as_deref()
                .is_none_or(|state| state_name(incident) == state)
        })
        .filter(|incident| {
            repo.as_deref()
                .is_none_or(|repo| repo_of(&pages, incident).as_deref() == Some(repo))
        })
        .collect();
    let total = incidents.len();
    let pages_count = total.div_ceil(PAGE_SIZE).max(1);
    let shown: Vec<&Incident> = incidents
        .iter()
        .skip((page_number - 1) * PAGE_SIZE)
        .take(PAGE_SIZE)
        .collect();

    // Grouped by state, each group newest first (the list's order).
    let mut groups: Vec<(&'static str, Vec<(&Incident, CardFacts)>)> = Vec::new();
    for incident in shown {
        let facts = card_facts(&pages, incident).await?;
        let name = state_name(incident);
        match groups.iter_mut().find(|(group, _)| *group == name) {
            Some((_, cards)) => cards.push((incident, facts)),
            None => groups.push((name, vec![(incident, facts)])),
        }
    }
    groups.sort_by_key(|(name, _)| (state_rank(name), *name));

    let link = |page: usize| {
        let mut href = format!("/?page={page}");
        if let Some(repo) = &repo {
            href.push_str(&format!("&repo={}", percent_encode(repo)));
        }
        if let Some(state) = &state {
            href.push_str(&format!("&state={}", percent_encode(state)));
        }
        href
    };
    let keys = pages.keys();
    let body = html! {
        h1 { "Incidents" }
        form.filters method="get" action="/" role="search" aria-label="Filter incidents" {
            div {
                label for="filter-repo" { "Repository" }
                select #filter-repo name="repo" {
                    option value="" selected[repo.is_none()] { "All repositories" }
                    @for configured in &pages.config().repos {
                        option value=(configured.name)
                            selected[repo.as_deref() == Some(configured.name.as_str())] {
                            (configured.name)
                        }
                    }
                }
            }
            div {
                label for="filter-state" { "State" }
                select #filter-state name="state" {
                    option value="" selected[state.is_none()] { "All states" }
                    @for (name, label) in STATE_ORDER {
                        option value=(name) selected[state.as_deref() == Some(*name)] { (label) }
                    }
                }
            }
            button type="submit" { "Filter" }
        }
        p.muted {
            (total) " incident" @if total != 1 { "s" }
            @if pages_count > 1 { ", page " (page_number) " of " (pages_count) }
        }
        @if groups.is_empty() {
            p.empty { "No incidents here yet. Point an SDK at the DSN suture printed and they will appear." }
        }
        @for (name, cards) in &groups {
            section id=(format!("state-{name}")) aria-labelledby=(format!("heading-{name}")) {
                h2 id=(format!("heading-{name}")) {
                    (state_label(name)) " " span.badge { (cards.len()) }
                }
                div.cards {
                    @for (incident, facts) in cards {
                        (card(incident, facts))
                    }
                }
            }
        }
        @if pages_count > 1 {
            nav.pager aria-label="Pages" {
                @if page_number > 1 {
                    a href=(link(page_number - 1)) rel="prev" { "Newer" }
                }
                @if page_number < pages_count {
                    a href=(link(page_number + 1)) rel="next" { "Older" }
                }
            }
        }
    };
    // What moves the overview on: an incident appearing or changing state.
    let shown: Vec<String> = groups
        .iter()
        .flat_map(|(name, cards)| {
            cards
                .iter()
                .map(move |(incident, _)| format!("{}:{name}:{}", incident.id, incident.round))
        })
        .chain(std::iter::once(total.to_string()))
        .collect();
    let shown: Vec<&str> = shown.iter().map(String::as_str).collect();
    Ok(layout::watched_page(
        "Incidents",
        viewer.signout(keys).as_deref(),
        Some(&layout::digest(&shown)),
        body,
    ))
}

/// One incident's card.
fn card(incident: &Incident, facts: &CardFacts) -> Markup {
    let href = format!("/incidents/{}", incident.id);
    html! {
        article.incident-card data-incident-id=(incident.id) data-state=(state_name(incident)) {
            h3 { a href=(href) { (incident.title) } }
            dl.facts {
                dt { "Events" } dd { (incident.count) }
                @if !facts.releases.is_empty() {
                    dt { "Releases" } dd { (facts.releases.join(", ")) }
                }
                dt { "First seen" } dd { (when(&incident.first_seen)) }
                dt { "Last seen" } dd { (when(&incident.last_seen)) }
                @if let Some(repo) = &facts.repo {
                    dt { "Repository" } dd { (repo) }
                }
                @if let Some(why) = held_back(incident) {
                    dt { "Held back" } dd { (why) }
                }
                @if let Some(trigger) = trigger(incident) {
                    dt { "Trigger" } dd { (trigger) }
                }
                @if let Some(culprit) = facts.story.culprit() {
                    dt { "Culprit" }
                    dd.culprit {
                        code { (culprit.short()) }
                        @if let Some(subject) = &culprit.subject { " " (subject) }
                        @if let Some(author) = &culprit.author { " — " (author) }
                    }
                }
                @if let Some(confidence) = facts.story.confidence() {
                    dt { "Confidence" } dd { (percent(confidence)) }
                }
                @if let Some(strategy) = facts.story.strategy() {
                    dt { "Strategy" }
                    dd {
                        (strategy)
                        @if let Some(outcome) = facts.story.outcome() { " (" (outcome) ")" }
                    }
                }
                @if let Some((href, label)) = pull_request_link(facts) {
                    dt { "Pull request" } dd { a href=(href) { (label) } }
                }
            }
        }
    }
}

/// What started the incident's latest round (`new release`, `spike`, …).
pub(crate) fn trigger(incident: &Incident) -> Option<String> {
    incident
        .trigger
        .as_deref()
        .filter(|trigger| !trigger.is_empty())
        .map(|trigger| trigger.replace('_', " "))
}

/// Why an observed or deferred incident waits: the triage's reason, or
/// the repository limit it is over.
pub(crate) fn held_back(incident: &Incident) -> Option<String> {
    if !matches!(state_name(incident), "observed" | "deferred") {
        return None;
    }
    let why = incident.held_back.as_ref()?;
    let field = |key: &str| why.get(key).and_then(serde_json::Value::as_str);
    match (field("reason"), field("limit")) {
        (Some(reason), _) => Some(reason.replace('_', " ")),
        (None, Some(limit)) => Some(format!("over repos[].{limit}")),
        (None, None) => None,
    }
}

/// A share from 0 to 1 as a whole percentage.
pub(crate) fn percent(share: f64) -> String {
    format!("{:.0}%", (share * 100.0).clamp(0.0, 100.0))
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use store::IncidentState;

    use super::*;

    fn incident(state: IncidentState, held_back: Option<serde_json::Value>) -> Incident {
        Incident {
            id: 1,
            fingerprint: "f".to_owned(),
            title: "t".to_owned(),
            state,
            source: "sentry_sdk".to_owned(),
            project: None,
            upstream_id: None,
            count: 1,
            event_signal_id: None,
            round: 1,
            first_seen: Utc::now(),
            last_seen: Utc::now(),
            trigger: Some("new_release".to_owned()),
            held_back,
        }
    }

    /// A waiting incident says why; one that moved on says nothing of an
    /// old reason.
    #[test]
    fn a_held_back_incident_says_why() {
        let observed = incident(
            IncidentState::Observed,
            Some(json!({"reason": "old_error"})),
        );
        assert_eq!(held_back(&observed).as_deref(), Some("old error"));
        let deferred = incident(
            IncidentState::Deferred,
            Some(json!({"limit": "max_concurrent_rounds", "trigger": "spike"})),
        );
        assert_eq!(
            held_back(&deferred).as_deref(),
            Some("over repos[].max_concurrent_rounds")
        );
        let moved_on = incident(IncidentState::Healing, Some(json!({"reason": "old_error"})));
        assert_eq!(held_back(&moved_on), None);
        assert_eq!(trigger(&moved_on).as_deref(), Some("new release"));
        assert_eq!(state_label("deferred"), "Deferred");
        assert_eq!(state_label("some_new_state"), "some new state");
    }
}

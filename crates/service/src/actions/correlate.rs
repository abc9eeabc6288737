//! One incident across sources: a PagerDuty page and a Sentry trace of the
//! same failure arrive as two incidents; they are linked when the page's
//! service is mapped to a repository (`repos[].pagerduty_services`) and
//! the trace's incident of that repository is open and active within
//! `pagerduty.correlate_seconds` of the page. Every such incident is
//! linked (the most recently active first), whichever arrived first.
//!
//! The link is what lets the code fix answer the page: when the fix of a
//! linked incident holds, the PagerDuty incident is resolved with a note
//! naming the pull request ([`resolve_linked`]); when it recurs, a note
//! says so ([`note_linked`]).

use domain::config::{Config, SignalSource};
use serde_json::{Value, json};
use store::{FixAttempt, Incident, IncidentState};

use crate::cause::Cause;
use crate::job::{Ctx, Stop};

/// Sources of Sentry-sourced incidents.
const SENTRY_SOURCES: &[&str] = &[
    SignalSource::SentrySdk.as_str(),
    SignalSource::SentryWebhook.as_str(),
];

/// States of incidents that are no longer open (`IncidentState::Resolved`,
/// `IncidentState::Stopped`).
const CLOSED: &[&str] = &["resolved", "stopped"];

/// Most incidents one incident is linked to at once.
const MAX_LINKS: i64 = 50;

/// Links `incident` to the incidents of the other source that are the same
/// failure; answers the ids newly linked.
pub(super) async fn link(ctx: &Ctx<'_>, incident: &Incident) -> Result<Vec<i64>, Stop> {
    let config = ctx.config();
    let store = ctx.store();
    let window = chrono::Duration::seconds(
        i64::try_from(config.pagerduty.correlate_seconds)
            .unwrap_or(i64::MAX)
            .min(315_360_000),
    );
    let is_page = incident.source == SignalSource::Pagerduty.as_str();
    let candidates = if is_page {
        let Some(repo) = mapped_repo(config, incident.project.as_deref()) else {
            return Ok(Vec::new());
        };
        let ids = store
            .active_incidents_near(
                SENTRY_SOURCES,
                None,
                CLOSED,
                incident.first_seen,
                window,
                MAX_LINKS,
            )
            .await?;
        let mut same_repo = Vec::new();
        for id in ids {
            if let Some(other) = store.incident(id).await?
                && config
                    .repo_for(&other.source, other.project.as_deref())
                    .is_some_and(|served| served.name == repo)
            {
                same_repo.push(other);
            }
        }
        same_repo
    } else if SENTRY_SOURCES.contains(&incident.source.as_str()) {
        let Some(repo) = config.repo_for(&incident.source, incident.project.as_deref()) else {
            return Ok(Vec::new());
        };
        let ids = store
            .active_incidents_near(
                &[SignalSource::Pagerduty.as_str()],
                Some(&repo.pagerduty_services),
                CLOSED,
                incident.first_seen,
                window,
                MAX_LINKS,
            )
            .await?;
        let mut pages = Vec::new();
        for id in ids {
            pages.extend(store.incident(id).await?);
        }
        pages
    } else {
        Vec::new()
    };
    let mut linked = Vec::new();
    for other in candidates.iter().filter(|other| other.id != incident.id) {
        let (page, trace) = if is_page {
            (incident, other)
        } else {
            (other, incident)
        };
        let on_page = format!(
            "linked to incident #{} ({}): the same failure as Sentry sees it",
            trace.id, trace.source
        );
        let on_trace = format!(
            "linked to PagerDuty incident {} (#{}): the same failure as PagerDuty pages it",
            page.upstream_id.as_deref().unwrap_or("?"),
            page.id
        );
        if store
            .link_incidents(page.id, trace.id, &on_page, &on_trace)
            .await?
        {
            linked.push(other.id);
        }
    }
    Ok(linked)
}

/// The `[[repos]]` name whose `pagerduty_services` lists `service`: only
/// an explicit mapping links a page to a repository's traces.
fn mapped_repo(config: &Config, service: Option<&str>) -> Option<String> {
    let service = service?;
    config
        .repos
        .iter()
        .find(|repo| repo.pagerduty_services.iter().any(|s| s == service))
        .map(|repo| repo.name.clone())
}

/// The PagerDuty incidents linked to `incident` that are still open in
/// suture, with their PagerDuty ids.
async fn linked_pages(ctx: &Ctx<'_>, incident: &Incident) -> Result<Vec<(Incident, String)>, Stop> {
    let mut pages = Vec::new();
    for id in ctx.store().linked_incidents(incident.id).await? {
        if let Some(page) = ctx.store().incident(id).await?
            && page.source == SignalSource::Pagerduty.as_str()
            && let Some(upstream) = page.upstream_id.clone()
        {
            pages.push((page, upstream));
        }
    }
    Ok(pages)
}

/// The fix of `incident` held: resolves every linked PagerDuty incident
/// on PagerDuty with a note naming the pull request, and in suture.
/// Answers what was done, for the verification's step output.
pub(crate) async fn resolve_linked(
    ctx: &Ctx<'_>,
    incident: &Incident,
    attempt: &FixAttempt,
) -> Result<Value, Stop> {
    let pages = linked_pages(ctx, incident).await?;
    if pages.is_empty() {
        return Ok(Value::Null);
    }
    let Some(pagerduty) = &ctx.forges().pagerduty else {
        return Ok(json!({"skipped": "PagerDuty's API is not configured"}));
    };
    let fix = fix_name(attempt);
    let mut resolved = Vec::new();
    for (page, upstream) in pages {
        if page.state == IncidentState::Resolved {
            continue;
        }
        let note = format!(
            "Resolved by suture: the code fix {fix} of the linked error (suture incident #{}) held \
             through its quiet window.",
            incident.id
        );
        pagerduty
            .add_note(&upstream, &note)
            .await
            .map_err(Cause::forge("adding a PagerDuty note"))?;
        pagerduty
            .resolve_incident(&upstream)
            .await
            .map_err(Cause::forge("resolving a linked PagerDuty incident"))?;
        ctx.store()
            .set_incident_state(
                page.id,
                IncidentState::Resolved,
                &format!(
                    "resolved on PagerDuty: the fix {fix} of linked incident #{} held",
                    incident.id
                ),
                Some(&json!({"linked": incident.id, "pr_number": attempt.pr_number})),
            )
            .await?;
        resolved.push(upstream);
    }
    Ok(json!({"resolved": resolved}))
}

/// The fix of `incident` did not hold (or the error came back): says so
/// on every linked PagerDuty incident. Answers the incidents noted.
pub(crate) async fn note_linked(
    ctx: &Ctx<'_>,
    incident: &Incident,
    attempt: &FixAttempt,
) -> Result<Vec<String>, Stop> {
    let pages = linked_pages(ctx, incident).await?;
    let Some(pagerduty) = &ctx.forges().pagerduty else {
        return Ok(Vec::new());
    };
    let mut noted = Vec::new();
    for (_, upstream) in pages {
        let note = format!(
            "The error came back after the code fix {} of the linked error (suture incident #{}): \
             it did not hold. A human takes it from here.",
            fix_name(attempt),
            incident.id
        );
        pagerduty
            .add_note(&upstream, &note)
            .await
            .map_err(Cause::forge("adding a PagerDuty note"))?;
        noted.push(upstream);
    }
    Ok(noted)
}

/// `pull request #N (URL)`, or what there is of it.
fn fix_name(attempt: &FixAttempt) -> String {
    match (attempt.pr_number, &attempt.pr_url) {
        (Some(number), Some(url)) => format!("in pull request #{number} ({url})"),
        (Some(number), None) => format!("in pull request #{number}"),
        _ => "suture proposed".to_owned(),
    }
}

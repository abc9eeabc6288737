//! Verify and close: at the end of a merged fix's quiet window, decide
//! whether it held. An event during the window wakes the verification
//! early: a recurrence is escalated at once; an event that does not count
//! sends it back to wait for the window's end.
//!
//! A recurrence is an event of the incident received after the merge on a
//! release other than those the error was seen on before the merge. Old
//! releases still serving traffic during a rollout do not count against
//! the fix. An event that names no release does not count either (unless
//! `verify.count_unreleased`): it cannot tell old code from new, and
//! anyone holding the DSN's public key could send one to fail a good fix;
//! such events are counted and shown in the summary.
//!
//! Held → the tracking issue is closed as completed with a summary, and the
//! Sentry issue or PagerDuty incident the error came from is resolved, and
//! so are the PagerDuty incidents linked to it (`actions::correlate`), with
//! a note naming the pull request; a recurrence is noted on them.
//! Recurred → the tracking issue is reopened with the new evidence, the
//! fix is remembered as failed for the fingerprint (never proposed again),
//! and the incident is escalated to a human. Each outside effect is its
//! own persisted step, so a retried job never comments twice. While paused
//! (`suture pause`) none of them happens: the job waits and decides once
//! resumed.

use domain::config::{ForgeKind, SignalSource, Trigger};
use serde_json::{Value, json};
use store::{AttemptState, FixAttempt, Incident, IncidentState, Step, StoredSignal};

use crate::cause::Cause;
use crate::forges::RepoForge;
use crate::job::{Ctx, Stop};

/// Recurrences read at most; enough to tell the story.
const MAX_RECURRENCES: i64 = 500;

/// Verifies fix attempt `attempt_id`.
pub(crate) async fn run(ctx: &Ctx<'_>, attempt_id: i64) -> Result<(), Stop> {
    let store = ctx.store();
    let Some((mut attempt, incident, forge)) = load(ctx, attempt_id).await? else {
        return Ok(());
    };
    if attempt.state != AttemptState::Merged {
        return Ok(());
    }
    if incident.state == IncidentState::Stopped {
        store
            .add_timeline(
                incident.id,
                "skipped",
                "verification not run: work on this incident was stopped",
                None,
            )
            .await?;
        return Ok(());
    }
    let merged_at = attempt.merged_at.unwrap_or(attempt.updated_at);
    let verify = &ctx.config().verify;
    let (recurrences, unreleased) = if verify.count_unreleased {
        let recurrences = store
            .event_signals(
                incident.id,
                merged_at,
                &attempt.releases_before,
                MAX_RECURRENCES,
            )
            .await?;
        (recurrences, 0)
    } else {
        let recurrences = store
            .released_event_signals(
                incident.id,
                merged_at,
                &attempt.releases_before,
                MAX_RECURRENCES,
            )
            .await?;
        let unreleased = store.unreleased_event_count(incident.id, merged_at).await?;
        (recurrences, unreleased)
    };
    let quiet = verify.quiet_seconds;
    // Woken early by an event that does not count (an old release still
    // reporting): the window is not over yet.
    if let Some(until) = attempt.verify_until
        && recurrences.is_empty()
        && chrono::Utc::now() < until
    {
        return Err(Stop::Reschedule(until));
    }
    // The kill switch: no issue is closed or reopened, nothing resolved,
    // while paused; the verdict is reached once resumed.
    let repo = ctx.repo_of(&forge);
    ctx.unless_paused(&repo, incident.id).await?;
    if recurrences.is_empty() {
        let summary = held_summary(&incident, &attempt, quiet, unreleased);
        once(ctx, Step::CloseIssue, async {
            match attempt.tracking_issue {
                Some(number) => {
                    close_issue(&forge, number, &summary).await?;
                    Ok(json!({"closed": number}))
                }
                None => Ok(json!({"skipped": "no tracking issue"})),
            }
        })
        .await?;
        let resolved = once(ctx, Step::ResolveUpstream, async {
            let mut resolved = resolve_upstream(ctx, &incident).await?;
            // The pages linked to this error are answered by its fix too.
            let linked = crate::actions::resolve_linked(ctx, &incident, &attempt).await?;
            if !linked.is_null() {
                resolved["linked"] = linked;
            }
            Ok(resolved)
        })
        .await?;
        attempt.state = AttemptState::Held;
        attempt.closed_at = Some(chrono::Utc::now());
        attempt.note = Some(format!(
            "no recurrence in the {quiet} s after the merge{}",
            unreleased_phrase(unreleased)
        ));
        store.save_attempt(&attempt).await?;
        let upstream = resolved
            .get("resolved")
            .and_then(Value::as_str)
            .map(|what| format!("; {what} resolved"))
            .unwrap_or_default();
        store
            .set_incident_state(
                incident.id,
                IncidentState::Resolved,
                &format!(
                    "the fix held: no recurrence in the {quiet} s after the merge{}; tracking issue closed{upstream}",
                    unreleased_phrase(unreleased)
                ),
                Some(&resolved),
            )
            .await?;
        ctx.milestone("resolved", &incident);
    } else {
        let evidence = recurrence_evidence(
            &recurrences,
            &format!("{} was merged", pr_name(&attempt)),
            "The fix did not hold, so suture will not propose it again. A human takes it from \
             here; comment `/suture retry` with guidance to start a new attempt.",
        );
        reopen_issue(ctx, &forge, &attempt, &evidence).await?;
        if incident.source == SignalSource::Pagerduty.as_str()
            && let (Some(id), Some(pagerduty)) = (&incident.upstream_id, &ctx.forges().pagerduty)
        {
            once(ctx, Step::PagerdutyNote, async {
                pagerduty
                    .add_note(id, &evidence)
                    .await
                    .map_err(Cause::forge("adding a PagerDuty note"))?;
                Ok(json!({"noted": id}))
            })
            .await?;
        } else {
            note_linked_pages(ctx, &incident, &attempt).await?;
        }
        attempt.state = AttemptState::Failed;
        attempt.closed_at = Some(chrono::Utc::now());
        attempt.note = Some(format!(
            "the error recurred {} time(s) after the merge",
            recurrences.len()
        ));
        store.save_attempt(&attempt).await?;
        crate::limits::breaker(ctx, &forge, &attempt).await?;
        store
            .set_incident_state(
                incident.id,
                IncidentState::Regressed,
                &format!(
                    "the fix did not hold: {} recurrence(s) after the merge; tracking issue reopened, escalated to a human",
                    recurrences.len()
                ),
                Some(&json!({"recurrences": recurrences.len(), "first_signal_id": recurrences[0].id})),
            )
            .await?;
    }
    Ok(())
}

/// The error came back after fix attempt `attempt_id` held and its
/// incident was resolved (the store flipped it to `regressed`): reopen the
/// tracking issue with the new evidence and leave it to a human. The fix
/// stays remembered as one that held: a clue, not a failure.
pub(crate) async fn regressed(ctx: &Ctx<'_>, attempt_id: i64) -> Result<(), Stop> {
    let store = ctx.store();
    let Some((mut attempt, incident, forge)) = load(ctx, attempt_id).await? else {
        return Ok(());
    };
    let since = attempt.closed_at.unwrap_or(attempt.updated_at);
    let recurrences = store
        .event_signals(incident.id, since, &[], MAX_RECURRENCES)
        .await?;
    if recurrences.is_empty() {
        return Ok(());
    }
    let repo = ctx.repo_of(&forge);
    ctx.unless_paused(&repo, incident.id).await?;
    let heal_again = ctx
        .config()
        .repos
        .iter()
        .any(|config| config.name == repo && config.heal_on.contains(&Trigger::Regression));
    let evidence = recurrence_evidence(
        &recurrences,
        &format!("{} held and this issue was closed", pr_name(&attempt)),
        if heal_again {
            "The fix had held through its quiet window, so this may be a new cause of the same \
             error. suture starts a new attempt (`regression` is in `heal_on`); comment \
             `/suture stop` to leave it to a human."
        } else {
            "The fix had held through its quiet window, so this may be a new cause of the same \
             error. A human takes it from here; comment `/suture retry` with guidance to start a \
             new attempt."
        },
    );
    reopen_issue(ctx, &forge, &attempt, &evidence).await?;
    note_linked_pages(ctx, &incident, &attempt).await?;
    attempt.note = Some(format!(
        "held through the quiet window, then the error recurred {} time(s) after the incident was resolved",
        recurrences.len()
    ));
    store.save_attempt(&attempt).await?;
    store
        .add_timeline(
            incident.id,
            "escalated",
            if heal_again {
                "tracking issue reopened with the new evidence"
            } else {
                "tracking issue reopened with the new evidence; a human takes it from here"
            },
            Some(&json!({"recurrences": recurrences.len()})),
        )
        .await?;
    // A job run again finds the round started (the state moved on).
    if heal_again && incident.state == IncidentState::Regressed {
        store
            .start_round(
                incident.id,
                Some(&json!({"trigger": Trigger::Regression.as_str()})),
                "regression: the error is back after its fix held; a new round starts",
            )
            .await?;
    }
    Ok(())
}

/// Tells the PagerDuty incidents linked to `incident` that its fix did not
/// hold, once.
async fn note_linked_pages(
    ctx: &Ctx<'_>,
    incident: &Incident,
    attempt: &FixAttempt,
) -> Result<(), Stop> {
    once(ctx, Step::PagerdutyNote, async {
        let noted = crate::actions::note_linked(ctx, incident, attempt).await?;
        Ok(json!({"noted": noted}))
    })
    .await
    .map(drop)
}

/// Runs `work` as step `step` unless it already finished: each outside
/// effect of a verification happens once.
async fn once(
    ctx: &Ctx<'_>,
    step: Step,
    work: impl std::future::Future<Output = Result<Value, Stop>> + Send,
) -> Result<Value, Stop> {
    if let Some(output) = ctx.saved(step).await? {
        return Ok(output);
    }
    ctx.run_step(step, work).await
}

/// Fix attempt `attempt_id`, its incident and its repository's forge;
/// `None` when the attempt or incident is gone.
async fn load(
    ctx: &Ctx<'_>,
    attempt_id: i64,
) -> Result<Option<(FixAttempt, Incident, RepoForge)>, Stop> {
    let store = ctx.store();
    let Some(attempt) = store.attempt(attempt_id).await? else {
        return Ok(None);
    };
    let Some(incident) = store.incident(attempt.incident_id).await? else {
        return Ok(None);
    };
    let Some(forge) = ForgeKind::parse(&attempt.forge)
        .and_then(|kind| ctx.forges().find(kind, &attempt.forge_repo))
        .cloned()
    else {
        return Err(Cause::UnknownForgeRepo {
            forge: attempt.forge,
            repo: attempt.forge_repo,
        }
        .into());
    };
    Ok(Some((attempt, incident, forge)))
}

/// Reopens the attempt's tracking issue with `evidence`, once.
async fn reopen_issue(
    ctx: &Ctx<'_>,
    forge: &RepoForge,
    attempt: &FixAttempt,
    evidence: &str,
) -> Result<Value, Stop> {
    once(ctx, Step::ReopenIssue, async {
        match attempt.tracking_issue {
            Some(number) => {
                forge
                    .forge
                    .reopen_issue(u64::try_from(number).unwrap_or_default(), evidence)
                    .await
                    .map_err(Cause::forge("reopening the tracking issue"))?;
                Ok(json!({"reopened": number}))
            }
            None => Ok(json!({"skipped": "no tracking issue"})),
        }
    })
    .await
}

async fn close_issue(forge: &RepoForge, number: i64, summary: &str) -> Result<(), Stop> {
    forge
        .forge
        .close_issue(u64::try_from(number).unwrap_or_default(), summary)
        .await
        .map_err(|error| Stop::from(Cause::forge("closing the tracking issue")(error)))
}

/// Resolves the Sentry issue or PagerDuty incident the error came from,
/// when suture can reach it.
async fn resolve_upstream(ctx: &Ctx<'_>, incident: &Incident) -> Result<Value, Stop> {
    let forges = ctx.forges();
    match SignalSource::parse(&incident.source) {
        Some(SignalSource::Pagerduty) => {
            let (Some(id), Some(pagerduty)) = (&incident.upstream_id, &forges.pagerduty) else {
                return Ok(json!({"skipped": "PagerDuty's API is not configured"}));
            };
            pagerduty
                .resolve_incident(id)
                .await
                .map_err(Cause::forge("resolving the PagerDuty incident"))?;
            Ok(json!({"resolved": format!("PagerDuty incident {id}")}))
        }
        Some(SignalSource::SentryWebhook | SignalSource::SentrySdk) => {
            let Some(sentry) = &forges.sentry else {
                return Ok(json!({"skipped": "Sentry's API is not configured"}));
            };
            let issue = match &incident.upstream_id {
                Some(id) => Some(id.clone()),
                None => sentry_issue_of_event(ctx, incident, sentry).await?,
            };
            let Some(issue) = issue else {
                return Ok(json!({"skipped": "Sentry has no issue for this event"}));
            };
            sentry
                .resolve_issue(&issue)
                .await
                .map_err(Cause::forge("resolving the Sentry issue"))?;
            Ok(json!({"resolved": format!("Sentry issue {issue}")}))
        }
        _ => Ok(json!({"skipped": "the source has no upstream to resolve"})),
    }
}

/// The Sentry issue an SDK event was grouped into, when the application
/// reports to Sentry as well: looked up by the event's id.
async fn sentry_issue_of_event(
    ctx: &Ctx<'_>,
    incident: &Incident,
    sentry: &forge::upstream::SentryClient,
) -> Result<Option<String>, Stop> {
    let Some(signal_id) = incident.event_signal_id else {
        return Ok(None);
    };
    let Some(signal) = ctx.store().signal(signal_id).await? else {
        return Ok(None);
    };
    let event: Value = serde_json::from_str(&signal.payload).unwrap_or(Value::Null);
    let (Some(event_id), Some(project)) = (
        event.get("event_id").and_then(Value::as_str),
        signal.project.as_deref(),
    ) else {
        return Ok(None);
    };
    sentry
        .issue_for_event(project, event_id)
        .await
        .map_err(|error| {
            Stop::from(Cause::forge("looking up the Sentry issue of the event")(
                error,
            ))
        })
}

/// ` (N events without a release did not count)`, or nothing.
fn unreleased_phrase(unreleased: i64) -> String {
    match unreleased {
        0 => String::new(),
        n => format!(" ({n} event(s) without a release did not count)"),
    }
}

fn held_summary(incident: &Incident, attempt: &FixAttempt, quiet: u64, unreleased: i64) -> String {
    let pr = attempt
        .pr_number
        .map(|number| format!(" in #{number}"))
        .unwrap_or_default();
    let title: String = incident
        .title
        .lines()
        .next()
        .unwrap_or_default()
        .chars()
        .take(200)
        .collect();
    format!(
        "The fix{pr} held: {} did not recur in the {quiet} s after the merge{}. \
         suture is closing this issue.",
        agent::markdown::code(&title),
        unreleased_phrase(unreleased)
    )
}

fn pr_name(attempt: &FixAttempt) -> String {
    attempt
        .pr_number
        .map(|number| format!("#{number}"))
        .unwrap_or_else(|| "the fix".to_owned())
}

/// What recurred, when and on which releases, then `conclusion`.
fn recurrence_evidence(recurrences: &[StoredSignal], after: &str, conclusion: &str) -> String {
    // Release names are the sender's text: short, and code in the comment.
    let mut releases: Vec<String> = recurrences
        .iter()
        .filter_map(|signal| signal.release.as_deref())
        .map(|release| release.chars().take(100).collect::<String>())
        .collect();
    releases.sort();
    releases.dedup();
    let releases: Vec<String> = releases
        .iter()
        .map(|release| agent::markdown::code(release))
        .collect();
    let first = &recurrences[0];
    let last = &recurrences[recurrences.len() - 1];
    format!(
        "The error recurred after {after}: {} event(s) between {} and {}{}.\n\n{conclusion}",
        recurrences.len(),
        first.received_at.format("%Y-%m-%d %H:%M:%S UTC"),
        last.received_at.format("%Y-%m-%d %H:%M:%S UTC"),
        if releases.is_empty() {
            " (no release named)".to_owned()
        } else {
            format!(" on release {}", releases.join(", "))
        }
    )
}

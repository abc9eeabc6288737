//! The limits a repository's rounds run within, each on the incident's
//! timeline when it bites.
//!
//! A round that triage says is worth running must still pass, in order:
//! the fingerprint's cooldown after a fix was rejected or did not hold
//! (`cooldown_seconds`; a human's `manual` round skips it), the open pull
//! requests (`max_open_pull_requests`), and the store's admission, which
//! counts running rounds (`max_concurrent_rounds`) and rounds started in
//! the last hour (`max_rounds_per_hour`) under one lock per repository.
//! Held back, the incident is `deferred` with the limit's name and its job
//! goes back to the queue until the limit may allow it; nothing is lost
//! and nothing runs twice.
//!
//! Two more guards act elsewhere through this module: the LLM rung gets
//! what is left of `llm_tokens_per_day` ([`llm_budget`], [`spend_tokens`]),
//! and the circuit breaker ([`breaker`]) pauses the repository after
//! `breaker_failures` consecutive fixes rejected or not held.

use chrono::{DateTime, Utc};
use domain::config::RepoConfig;
use serde_json::Value;
use serde_json::json;
use store::{
    Admission, AttemptState, FixAttempt, Incident, IncidentState, RoundLimits, Step, Store,
    StoreError,
};

use crate::cause::Cause;
use crate::forges::RepoForge;
use crate::job::{Ctx, Stop};
use crate::triage::MANUAL;

/// How long a round held by open pull requests waits before asking again.
const OPEN_PULL_REQUESTS_RECHECK: chrono::Duration = chrono::Duration::seconds(60);

/// Lets round `round` of `incident` start for `trigger`, or defers it:
/// `Err(Stop::Reschedule)` with the incident `deferred` and the limit named.
pub(crate) async fn admit(
    ctx: &Ctx<'_>,
    repo: &RepoConfig,
    incident: &Incident,
    round: i64,
    trigger: &str,
) -> Result<(), Stop> {
    let store = ctx.store();
    let now = Utc::now();
    if trigger != MANUAL
        && let Some(until) = cooldown_until(store, repo, incident).await?
        && until > now
    {
        return Err(defer(ctx, incident, trigger, "cooldown_seconds", until).await?);
    }
    let open = store.open_pull_requests(&repo.name).await?;
    if open >= i64::from(repo.max_open_pull_requests) {
        let retry_at = now + OPEN_PULL_REQUESTS_RECHECK;
        return Err(defer(ctx, incident, trigger, "max_open_pull_requests", retry_at).await?);
    }
    let limits = RoundLimits {
        per_hour: repo.max_rounds_per_hour,
        concurrent: repo.max_concurrent_rounds,
    };
    match store
        .admit_round(incident.id, round, &repo.name, trigger, limits)
        .await?
    {
        Admission::Admitted => Ok(()),
        Admission::Held { limit, retry_at } => {
            Err(defer(ctx, incident, trigger, limit, retry_at).await?)
        }
    }
}

/// The trigger a deferred round was deferred with, so asking again does
/// not triage again.
pub(crate) fn deferred_trigger(incident: &Incident) -> Option<&str> {
    if incident.state != IncidentState::Deferred {
        return None;
    }
    incident.held_back.as_ref()?.get("trigger")?.as_str()
}

/// Marks the incident deferred by `limit` (once per limit) and answers the
/// reschedule of its job.
async fn defer(
    ctx: &Ctx<'_>,
    incident: &Incident,
    trigger: &str,
    limit: &'static str,
    retry_at: DateTime<Utc>,
) -> Result<Stop, Stop> {
    let why = json!({"limit": limit, "trigger": trigger});
    let message = format!(
        "deferred by repos[].{limit}: the {trigger} round starts when the limit allows (next check {})",
        retry_at.format("%Y-%m-%d %H:%M:%S UTC")
    );
    let changed = ctx
        .store()
        .hold_back(incident.id, IncidentState::Deferred, &why, &message)
        .await?;
    if changed {
        ctx.metrics().round_deferred(limit);
        tracing::info!(limit, trigger, "round deferred");
    }
    Ok(Stop::Reschedule(retry_at))
}

/// When the fingerprint's cooldown ends, if its latest verdict was a fix
/// rejected or not held.
async fn cooldown_until(
    store: &Store,
    repo: &RepoConfig,
    incident: &Incident,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    let memory = store
        .attempts_for_fingerprint(&incident.fingerprint)
        .await?;
    let cooldown =
        chrono::Duration::seconds(i64::try_from(repo.cooldown_seconds).unwrap_or(i64::MAX / 1000));
    Ok(memory
        .iter()
        .filter(|attempt| attempt.state.did_not_hold())
        .map(|attempt| attempt.closed_at.unwrap_or(attempt.updated_at))
        .max()
        .map(|at| at + cooldown))
}

/// The UTC day `llm_tokens_per_day` counts in.
fn today() -> String {
    Utc::now().format("%Y-%m-%d").to_string()
}

/// Tokens the repository's LLM rung may still spend today.
pub(crate) async fn llm_budget(store: &Store, repo: &RepoConfig) -> Result<u64, StoreError> {
    let spent = store.llm_tokens(&repo.name, &today()).await?;
    Ok(repo.llm_tokens_per_day.saturating_sub(spent))
}

/// Counts `tokens` the repository's LLM spent.
pub(crate) async fn spend_tokens(
    ctx: &Ctx<'_>,
    repo: &RepoConfig,
    tokens: u64,
) -> Result<(), StoreError> {
    if tokens == 0 {
        return Ok(());
    }
    ctx.store()
        .add_llm_tokens(&repo.name, &today(), tokens)
        .await?;
    ctx.metrics().llm_tokens(&repo.name, tokens);
    Ok(())
}

/// The circuit breaker, after a fix of `forge`'s repository was rejected
/// or did not hold (`attempt`): `breaker_failures` consecutive such
/// verdicts pause the repository, and its tracking issue (else the pull
/// request) says why. Its own step, so the comment is made once.
pub(crate) async fn breaker(
    ctx: &Ctx<'_>,
    forge: &RepoForge,
    attempt: &FixAttempt,
) -> Result<(), Stop> {
    let name = ctx.repo_of(forge);
    let Some(repo) = ctx.config().repos.iter().find(|repo| repo.name == name) else {
        return Ok(());
    };
    if ctx.saved::<Value>(Step::Breaker).await?.is_some() {
        return Ok(());
    }
    let store = ctx.store();
    let work = async {
        let Some(reason) = tripped(store, repo).await? else {
            return Ok(json!({"tripped": false}));
        };
        store
            .pause(Some(&repo.name), &reason, Some("circuit breaker"))
            .await?;
        tracing::warn!(repo = %repo.name, "circuit breaker tripped: repository paused");
        ctx.metrics().round_deferred("breaker_failures");
        store
            .add_timeline(attempt.incident_id, "paused", &reason, None)
            .await?;
        if let Some(number) = attempt.tracking_issue.or(attempt.pr_number) {
            let body = format!(
                "suture paused itself for this repository. {reason}.\n\nNo round, pull request, \
                 issue or LLM request is made for it until a human runs `suture resume --repo {}`.",
                repo.name
            );
            forge
                .forge
                .comment(u64::try_from(number).unwrap_or_default(), &body)
                .await
                .map_err(Cause::forge("explaining the circuit breaker"))?;
        }
        Ok(json!({"tripped": true, "reason": reason}))
    };
    ctx.run_step(Step::Breaker, work).await.map(drop)
}

/// Why the breaker trips, when the repository's latest
/// `breaker_failures` verdicts were all fixes rejected or not held.
async fn tripped(store: &Store, repo: &RepoConfig) -> Result<Option<String>, StoreError> {
    let needed = i64::from(repo.breaker_failures);
    let verdicts = store.latest_verdicts(&repo.name, needed).await?;
    let tripped = verdicts.len() as i64 == needed
        && verdicts
            .iter()
            .all(|state| matches!(state, AttemptState::Rejected | AttemptState::Failed));
    Ok(tripped.then(|| {
        format!(
            "Circuit breaker: the last {needed} fixes for {} were rejected or did not hold \
             (repos[].breaker_failures = {needed})",
            repo.name
        )
    }))
}

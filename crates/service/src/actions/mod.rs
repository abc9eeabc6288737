//! Recovery actions and one incident across sources: a PagerDuty page gets
//! help at runtime (restart a worker, turn a flag off) while the code fix
//! is on its way, and a page and a trace of one failure are one incident.
//!
//! Two jobs. **Respond** (`respond/<signal>`, queued by the write path
//! with a PagerDuty trigger or a new Sentry-sourced incident) links the
//! incident across sources (`correlate`) and plans a run of every
//! `[[actions]]` entry it matches (`matching`): `dry_run` records what it
//! would do; a limit or a pause (`limits`) records `skipped_limit`;
//! `approve` waits for `/suture approve` (a user with write access, on the
//! tracking issue of the incident or of one linked to it) or `suture
//! action approve ID`; `auto` queues the run. **Action** (`action/<run>`)
//! runs it: the limits again, the pre-check (a healthy system needs no
//! action: `not_needed`), the command (`command`) or request (`http`),
//! then the post-check until it passes or `check_timeout_seconds` end
//! (`checks`). A failed run or post-check escalates (`escalate`) and the
//! cooldown keeps the action from running again meanwhile.
//!
//! **Invariants.** A run's effect is recorded as begun before it happens
//! and only a queued run begins, so a resumed job never repeats one. Event
//! text reaches a command only as `SUTURE_*` environment variables and a
//! request only as escaped JSON strings in its body; secrets named in
//! headers are never recorded. An action is a stop-gap, a fix the cure: a
//! run changes no incident state, so a recovered incident still gets its
//! healing round, and the pull request says what was done at runtime
//! ([`runtime_summary`]).

mod checks;
mod command;
mod correlate;
mod escalate;
mod http;
mod limits;
mod matching;

use std::collections::BTreeMap;
use std::time::Duration;

use domain::config::{ActionConfig, ActionMode, Config};
use serde_json::{Value, json};
use store::{ActionRun, Incident, NewActionRun, run_state};

pub(crate) use correlate::{note_linked, resolve_linked};

use crate::job::{Ctx, Stop};

/// Whether pages and new errors need answering at all: when recovery
/// actions are configured or a repository maps PagerDuty services. Without
/// either, the write path queues no respond job.
pub(crate) fn answers_incidents(config: &Config) -> bool {
    !config.actions.is_empty()
        || config
            .repos
            .iter()
            .any(|repo| !repo.pagerduty_services.is_empty())
}

/// Answers the incident delivery stored as signal `signal_id`: links the
/// incident across sources and plans the runs of the actions it matches.
pub(crate) async fn respond(ctx: &Ctx<'_>, signal_id: i64) -> Result<(), Stop> {
    let store = ctx.store();
    let Some(signal) = store.signal(signal_id).await? else {
        return Ok(());
    };
    let Some(incident) = store.incident(ctx.job.incident_id).await? else {
        return Ok(());
    };
    correlate::link(ctx, &incident).await?;
    let facts = matching::Facts {
        source: &incident.source,
        project: incident.project.as_deref(),
        title: &incident.title,
        state: incident.state.as_str(),
    };
    let triggered_by = format!("{} {} (signal {})", signal.source, signal.kind, signal.id);
    for action in ctx
        .config()
        .actions
        .iter()
        .filter(|action| matching::matches(action, &facts))
    {
        plan(ctx, action, &incident, signal_id, &triggered_by).await?;
    }
    Ok(())
}

/// Plans one run of `action` for `incident`.
async fn plan(
    ctx: &Ctx<'_>,
    action: &ActionConfig,
    incident: &Incident,
    signal_id: i64,
    triggered_by: &str,
) -> Result<(), Stop> {
    let name = &action.name;
    let mut new = NewActionRun {
        incident_id: incident.id,
        signal_id,
        action: name,
        mode: action.mode.as_str(),
        triggered_by,
        state: run_state::DONE,
        result: None,
        detail: None,
        message: "",
    };
    let message;
    let result = match (action.mode, held_back(ctx, action, incident).await?) {
        (ActionMode::DryRun, _) => {
            message = format!("action {name} (dry run): would {}", what(action));
            new.detail = Some(json!({"would": would(action)}));
            "dry_run"
        }
        (_, Some(limit)) => {
            message = format!("action {name} skipped: {}", limit.describe());
            new.detail = Some(json!({"limit": limit.name(), "why": limit.describe()}));
            "skipped_limit"
        }
        (ActionMode::Approve, None) => {
            message = format!(
                "action {name} awaits approval: comment `/suture approve` on the tracking issue, \
                 or run `suture action approve <id>` (GET /api/actions lists the id)"
            );
            new.state = run_state::AWAITING_APPROVAL;
            "awaiting_approval"
        }
        (ActionMode::Auto, None) => {
            message = format!("action {name} queued: it will {}", what(action));
            new.state = run_state::QUEUED;
            "queued"
        }
    };
    new.message = &message;
    if new.state == run_state::DONE {
        new.result = Some(result);
    }
    if ctx.store().plan_action_run(&new).await?.is_some() && result != "queued" {
        ctx.metrics().action(name, result);
    }
    Ok(())
}

/// What holds `action` back now for `incident`, if anything.
async fn held_back(
    ctx: &Ctx<'_>,
    action: &ActionConfig,
    incident: &Incident,
) -> Result<Option<limits::Limit>, Stop> {
    let config = ctx.config();
    let pauses = ctx.store().pauses().await?;
    let repo = config
        .repo_for(&incident.source, incident.project.as_deref())
        .map(|repo| repo.name.clone())
        .unwrap_or_default();
    let paused = if config.recovery.actions_paused {
        Some("recovery.actions_paused is set".to_owned())
    } else {
        pauses
            .for_repo(&repo)
            .map(|pause| format!("suture pause: {}", pause.reason))
    };
    let now = chrono::Utc::now();
    let (runs, last) = ctx
        .store()
        .action_usage(&action.name, now - chrono::Duration::hours(1))
        .await?;
    Ok(limits::limit(action, paused.as_deref(), runs, last, now))
}

/// Runs action run `run_id` (its job).
pub(crate) async fn run(ctx: &Ctx<'_>, run_id: i64) -> Result<(), Stop> {
    let store = ctx.store();
    let Some(run) = store.action_run(run_id).await? else {
        return Ok(());
    };
    match run.state.as_str() {
        run_state::QUEUED => {}
        run_state::RUNNING => {
            // It began before a crash or a lost lease: whatever it did is
            // done; it is never started twice.
            let detail = json!({"error": "interrupted after it began; not repeated"});
            let message = format!(
                "action {} interrupted after it began; not repeated",
                run.action
            );
            if store
                .finish_action_run(run.id, "failed", &detail, &message)
                .await?
            {
                ctx.metrics().action(&run.action, "failed");
            }
            return Ok(());
        }
        _ => return Ok(()),
    }
    let Some(incident) = store.incident(run.incident_id).await? else {
        return Ok(());
    };
    let Some(action) = ctx
        .config()
        .actions
        .iter()
        .find(|action| action.name == run.action)
        .cloned()
    else {
        let detail = json!({"error": "the action is no longer configured"});
        let message = format!("action {} not run: no longer configured", run.action);
        store
            .finish_action_run(run.id, "failed", &detail, &message)
            .await?;
        return Ok(());
    };
    let mut detail = json!({"triggered_by": run.triggered_by, "approved_by": run.approved_by});
    if let Some(limit) = held_back(ctx, &action, &incident).await? {
        detail["limit"] = json!(limit.name());
        let message = format!("action {} skipped: {}", action.name, limit.describe());
        return finish(ctx, &run, "skipped_limit", detail, &message).await;
    }
    let (env, fields) = incident_fields(ctx.config(), &action, &incident);
    if let Some((healthy, record)) = checks::once(&action, &env, &fields).await? {
        detail["check_before"] = record;
        if healthy {
            let message = format!(
                "action {} not run: its check passes, the system is healthy",
                action.name
            );
            return finish(ctx, &run, "not_needed", detail, &message).await;
        }
    }
    let cooldown = chrono::Duration::seconds(
        i64::try_from(action.cooldown_seconds)
            .unwrap_or(i64::MAX)
            .min(315_360_000),
    );
    if !store.start_action_run(run.id, cooldown).await? {
        // Still queued: another run of the action began first, between
        // the limits check and now.
        if store
            .action_run(run.id)
            .await?
            .is_some_and(|again| again.state == run_state::QUEUED)
        {
            detail["limit"] = json!("cooldown_seconds");
            let message = format!(
                "action {} skipped: another run of it began first (cooldown_seconds)",
                action.name
            );
            return finish(ctx, &run, "skipped_limit", detail, &message).await;
        }
        return Ok(());
    }
    let timeout = Duration::from_secs(action.timeout_seconds);
    let (ran, record) = match (&action.run, &action.http) {
        (Some(command), _) => {
            let ran = command::run(command, env.clone(), timeout).await?;
            (ran.passed, ran.record)
        }
        (None, Some(request)) => {
            let sent = http::send_request(request, &fields, timeout).await?;
            (sent.passed, sent.record)
        }
        (None, None) => (
            false,
            json!({"error": "neither run nor http is configured"}),
        ),
    };
    detail["run"] = record;
    let result = if !ran {
        "failed"
    } else {
        match checks::until_healthy(&action, &env, &fields).await? {
            Some((healthy, record)) => {
                detail["check_after"] = record;
                if healthy { "ok" } else { "check_failed" }
            }
            None => "ok",
        }
    };
    let message = match result {
        "ok" => format!("action {} ran{}", action.name, checked(&detail)),
        "failed" => format!("action {} failed", action.name),
        _ => format!(
            "action {} ran but its check still fails after {} s",
            action.name, action.check_timeout_seconds
        ),
    };
    if result != "ok" {
        // The run is over whatever the escalation does: a forge that
        // cannot be reached now is on the record, not a reason to leave
        // the run `running` (a retried job never starts it again).
        detail["escalated"] = match escalate::escalate(ctx, &incident, &action, &message).await {
            Ok(escalated) => escalated,
            Err(Stop::Failed(cause)) => json!({"error": cause.chain()}),
            Err(other) => return Err(other),
        };
    }
    finish(ctx, &run, result, detail, &message).await
}

/// Ends `run` with `result`, counted once.
async fn finish(
    ctx: &Ctx<'_>,
    run: &ActionRun,
    result: &'static str,
    mut detail: Value,
    message: &str,
) -> Result<(), Stop> {
    // A command's output is the operator's tools talking: whatever of
    // suture's own secrets it might echo stays off the record.
    let redactor = agent::redact::Redactor::from_env();
    redactor.redact_json(&mut detail);
    let message = redactor.redact(message);
    if ctx
        .store()
        .finish_action_run(run.id, result, &detail, &message)
        .await?
    {
        ctx.metrics().action(&run.action, result);
    }
    Ok(())
}

/// ` (checks: failing before, passing after)` when the run had checks.
fn checked(detail: &Value) -> String {
    if detail.get("check_after").is_some() {
        "; its check failed before and passes after".to_owned()
    } else {
        String::new()
    }
}

/// What `action` does, in a few words.
fn what(action: &ActionConfig) -> String {
    match (&action.run, &action.http) {
        (Some(command), _) => format!("run `{}`", one_line(command)),
        (None, Some(request)) => format!("send {} {}", request.method, request.url),
        (None, None) => "do nothing".to_owned(),
    }
}

/// What a dry run records it would do.
fn would(action: &ActionConfig) -> Value {
    match (&action.run, &action.http) {
        (Some(command), _) => json!({"command": command}),
        (None, Some(request)) => json!({
            "method": request.method,
            "url": request.url,
            "headers": request.headers,
            "body_template": request.body,
        }),
        (None, None) => Value::Null,
    }
}

fn one_line(text: &str) -> String {
    let line: String = text
        .lines()
        .next()
        .unwrap_or_default()
        .chars()
        .take(120)
        .collect();
    if line.len() < text.len() {
        format!("{line}…")
    } else {
        line
    }
}

/// The environment of an action's commands and the fields of its body
/// templates: the same incident facts, named for each.
fn incident_fields<'a>(
    config: &Config,
    action: &ActionConfig,
    incident: &Incident,
) -> (Vec<(String, String)>, BTreeMap<&'a str, String>) {
    let url = format!(
        "{}/api/incidents/{}",
        config
            .server
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", config.server.listen))
            .trim_end_matches('/'),
        incident.id
    );
    let fields = BTreeMap::from([
        ("action", action.name.clone()),
        ("incident_id", incident.id.to_string()),
        ("title", incident.title.clone()),
        ("source", incident.source.clone()),
        ("url", url),
        ("project", incident.project.clone().unwrap_or_default()),
    ]);
    let env = [
        ("SUTURE_ACTION", "action"),
        ("SUTURE_INCIDENT_ID", "incident_id"),
        ("SUTURE_INCIDENT_TITLE", "title"),
        ("SUTURE_INCIDENT_SOURCE", "source"),
        ("SUTURE_INCIDENT_URL", "url"),
        ("SUTURE_INCIDENT_PROJECT", "project"),
    ]
    .into_iter()
    .map(|(name, field)| (name.to_owned(), fields[field].clone()))
    .collect();
    (env, fields)
}

/// Approves, as `login`, every run awaiting approval on `incident_id` and
/// on the incidents linked to it; answers the runs approved.
pub(crate) async fn approve_pending(
    ctx: &Ctx<'_>,
    incident_id: i64,
    login: &str,
) -> Result<Vec<i64>, Stop> {
    let store = ctx.store();
    let mut incidents = vec![incident_id];
    incidents.extend(store.linked_incidents(incident_id).await?);
    let mut approved = Vec::new();
    for id in incidents {
        for run in store.incident_action_runs(id).await? {
            if run.state != run_state::AWAITING_APPROVAL {
                continue;
            }
            let message = format!("action {} approved by @{login}: queued", run.action);
            if let Some(before) = store.approve_action_run(run.id, login, &message).await?
                && before.state == run_state::AWAITING_APPROVAL
            {
                approved.push(run.id);
            }
        }
    }
    Ok(approved)
}

/// A section for the pull request body: what was done at runtime for this
/// incident and the incidents linked to it; empty when nothing was.
pub(crate) async fn runtime_summary(ctx: &Ctx<'_>, incident_id: i64) -> Result<String, Stop> {
    let store = ctx.store();
    let mut incidents = vec![incident_id];
    incidents.extend(store.linked_incidents(incident_id).await?);
    let mut lines = Vec::new();
    for id in incidents {
        for run in store.incident_action_runs(id).await? {
            let Some(result) = run.result.as_deref() else {
                continue;
            };
            if matches!(result, "ok" | "failed" | "check_failed") {
                lines.push(format!(
                    "- {} on incident #{} at {}: {result}",
                    agent::markdown::code(&run.action),
                    id,
                    run.started_at
                        .unwrap_or(run.created_at)
                        .format("%Y-%m-%d %H:%M UTC")
                ));
            }
        }
    }
    if lines.is_empty() {
        return Ok(String::new());
    }
    Ok(format!(
        "\n\n### Done at runtime\n\nRecovery actions ran while this fix was prepared (a \
         stop-gap; this change is the cure):\n\n{}\n",
        lines.join("\n")
    ))
}

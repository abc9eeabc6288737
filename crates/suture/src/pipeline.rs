//! A pipeline round of an incident: diagnose → heal → propose.
//!
//! Round 1 runs when the incident first has an event; later rounds start
//! with `/suture retry` (the comment is extra guidance). Before healing,
//! the fix memory of the fingerprint is read: fixes that did not hold
//! (merged and recurred, or rejected by a reviewer) are never proposed
//! again, and the whole history goes to the LLM agent as context.

use std::str::FromStr;
use std::time::Duration;

use agent::diagnose::DiagnoseOptions;
use agent::heal::AvoidedFix;
use domain::config::RepoConfig;
use repo::pathmap::CodeMapping;
use serde_json::{Value, json};
use store::{FixAttempt, IncidentState};

use crate::worker::{Ctx, Stop, blocking, error_chain};

/// Runs round `round` of the job's incident.
pub(crate) async fn run(ctx: &Ctx<'_>, round: i64) -> Result<(), Stop> {
    let store = ctx.store();
    let incident_id = ctx.job.incident_id;
    let Some(incident) = store.incident(incident_id).await? else {
        return Ok(());
    };
    if incident.state == IncidentState::Stopped {
        store
            .add_timeline(
                incident_id,
                "skipped",
                &format!("round {round} not run: work on this incident was stopped"),
                None,
            )
            .await?;
        return Ok(());
    }
    let signal = match incident.event_signal_id {
        Some(id) => store.signal(id).await?,
        None => None,
    };
    let Some(signal) = signal else {
        store
            .add_timeline(
                incident_id,
                "skipped",
                "no event with a stack trace to diagnose",
                None,
            )
            .await?;
        return Ok(());
    };
    let Some(repo_config) = ctx
        .config()
        .repo_for(&signal.source, signal.project.as_deref())
        .cloned()
    else {
        let message = format!(
            "no repository is configured for {} project {}: add one under [[repos]] in suture.toml",
            signal.source,
            signal.project.as_deref().unwrap_or("-")
        );
        store
            .set_incident_state(incident_id, IncidentState::NoRepo, &message, None)
            .await?;
        return Ok(());
    };
    let event = match domain::event::parse_event(signal.payload.as_bytes()) {
        Ok(parsed) => parsed.event,
        Err(error) => {
            return ctx
                .fail(&format!("the stored event cannot be read: {error}"))
                .await;
        }
    };
    let options = diagnose_options(&repo_config);

    if ctx.finished_output("diagnose").await?.is_none() {
        diagnose_step(ctx, &repo_config, &event, &options).await?;
        ctx.milestone("diagnosed", &incident);
    }
    if repo_config.mode == "observe" {
        store
            .set_incident_state(
                incident_id,
                IncidentState::Diagnosed,
                "diagnosed; the repository is in observe mode",
                None,
            )
            .await?;
        return Ok(());
    }

    let heal = match ctx.finished_output("heal").await? {
        Some(heal) => heal,
        None => {
            let memory = store
                .attempts_for_fingerprint(&incident.fingerprint)
                .await?;
            let guidance = ctx
                .job
                .payload
                .as_ref()
                .and_then(|payload| payload.get("guidance"))
                .and_then(Value::as_str)
                .map(str::to_owned);
            let mut heal_options = heal_options(&repo_config, options);
            heal_options.avoid = avoided(&memory);
            heal_options.history = history(&memory);
            heal_options.guidance = guidance;
            heal_step(ctx, &repo_config, event, heal_options).await?
        }
    };
    crate::propose::run(ctx, &incident, &repo_config, round, &heal).await
}

async fn diagnose_step(
    ctx: &Ctx<'_>,
    repo_config: &RepoConfig,
    event: &domain::event::Event,
    options: &DiagnoseOptions,
) -> Result<(), Stop> {
    let store = ctx.store();
    let incident_id = ctx.job.incident_id;
    store
        .set_incident_state(
            incident_id,
            IncidentState::Diagnosing,
            &format!("diagnosing against {}", repo_config.name),
            None,
        )
        .await?;
    let repo_path = repo_config.path.clone();
    let (event, options) = (event.clone(), options.clone());
    let work = blocking(move || {
        let repo =
            repo::git::Repo::open(std::path::Path::new(&repo_path)).map_err(|e| error_chain(&e))?;
        let mut index = repo::index::CodeIndex::new();
        let diagnosis = agent::diagnose::diagnose(&repo, &mut index, &event, &options)
            .map_err(|e| error_chain(&e))?;
        let mut output = serde_json::to_value(&diagnosis).map_err(|e| e.to_string())?;
        output["markdown"] = Value::String(diagnosis.to_markdown());
        Ok(output)
    });
    match ctx.run_step("diagnose", work).await? {
        Ok(diagnosis) => {
            let message = match diagnosis.get("culprit").and_then(Value::as_str) {
                Some(culprit) => {
                    format!("diagnosed: culprit {}", &culprit[..culprit.len().min(10)])
                }
                None => "diagnosed: no culprit with confidence".to_owned(),
            };
            ctx.finish("diagnose", true, &diagnosis, &message).await
        }
        Err(error) => {
            let message = format!("diagnose failed: {error}");
            ctx.finish("diagnose", false, &json!({"error": error}), &message)
                .await?;
            ctx.fail(&message).await
        }
    }
}

async fn heal_step(
    ctx: &Ctx<'_>,
    repo_config: &RepoConfig,
    event: domain::event::Event,
    heal_options: agent::heal::HealOptions,
) -> Result<Value, Stop> {
    let store = ctx.store();
    let incident_id = ctx.job.incident_id;
    store
        .set_incident_state(
            incident_id,
            IncidentState::Healing,
            "looking for the smallest safe fix",
            None,
        )
        .await?;
    let repo_path = repo_config.path.clone();
    let runtime = tokio::runtime::Handle::current();
    let work = blocking(move || {
        let repo =
            repo::git::Repo::open(std::path::Path::new(&repo_path)).map_err(|e| error_chain(&e))?;
        let mut index = repo::index::CodeIndex::new();
        let (report, transcript) =
            agent::heal::heal(&repo, &mut index, &event, &heal_options, &runtime)
                .map_err(|e| error_chain(&e))?;
        let mut output = serde_json::to_value(&report).map_err(|e| e.to_string())?;
        output["markdown"] = Value::String(report.to_markdown());
        if let Some(patch) = report.fix_patch() {
            output["fix_patch"] = Value::String(patch.to_owned());
            output["patch_sha"] = Value::String(agent::heal::patch_sha(patch));
        }
        if let Some(transcript) = transcript {
            output["transcript"] = serde_json::to_value(&transcript).map_err(|e| e.to_string())?;
        }
        Ok(output)
    });
    match ctx.run_step("heal", work).await? {
        Ok(report) => {
            let outcome = report
                .get("outcome")
                .and_then(Value::as_str)
                .unwrap_or("unknown")
                .to_owned();
            ctx.finish("heal", true, &report, &format!("heal finished: {outcome}"))
                .await?;
            Ok(report)
        }
        Err(error) => {
            let message = format!("heal failed: {error}");
            ctx.finish("heal", false, &json!({"error": error}), &message)
                .await?;
            ctx.fail(&message).await?;
            Err(Stop::Ended)
        }
    }
}

/// The fixes of the fingerprint that did not hold: never proposed again.
fn avoided(memory: &[FixAttempt]) -> Vec<AvoidedFix> {
    memory
        .iter()
        .filter(|attempt| attempt.state.did_not_hold() && !attempt.patch_sha.is_empty())
        .map(|attempt| AvoidedFix {
            patch_sha: attempt.patch_sha.clone(),
            reason: format!(
                "this {} fix was proposed in round {} and {}",
                attempt.strategy,
                attempt.round,
                outcome_phrase(attempt)
            ),
        })
        .collect()
}

/// The fix memory of the fingerprint as the agent and the report read it.
fn history(memory: &[FixAttempt]) -> Option<String> {
    if memory.is_empty() {
        return None;
    }
    let lines: Vec<String> = memory
        .iter()
        .map(|attempt| {
            let pr = attempt
                .pr_number
                .map(|number| format!(" (pull request #{number})"))
                .unwrap_or_default();
            let sha = attempt.patch_sha.get(..12).unwrap_or("-");
            format!(
                "- round {}: {} fix {sha}{pr} {}",
                attempt.round,
                attempt.strategy,
                outcome_phrase(attempt)
            )
        })
        .collect();
    Some(lines.join("\n"))
}

fn outcome_phrase(attempt: &FixAttempt) -> String {
    use store::AttemptState::*;
    let note = attempt
        .note
        .as_deref()
        .map(|note| format!(": {note}"))
        .unwrap_or_default();
    match attempt.state {
        Proposing | Open => "is open for review".to_owned(),
        Suggested => "was suggested in the tracking issue".to_owned(),
        Merged => "was merged and is being verified".to_owned(),
        Held => format!("was merged and held{note}"),
        Failed => format!("was merged but did not hold{note}"),
        Rejected => format!("was rejected by a reviewer{note}"),
        Abandoned => format!("was not proposed{note}"),
    }
}

pub(crate) fn diagnose_options(repo: &RepoConfig) -> DiagnoseOptions {
    DiagnoseOptions {
        days: repo.days,
        max_commits: repo.max_commits,
        code_mappings: repo
            .code_mappings
            .iter()
            .filter_map(|mapping| CodeMapping::from_str(mapping).ok())
            .collect(),
        ..DiagnoseOptions::default()
    }
}

fn heal_options(repo: &RepoConfig, diagnose: DiagnoseOptions) -> agent::heal::HealOptions {
    use repo::sandbox::{Backend, SandboxConfig};
    let backend = match repo.sandbox.as_str() {
        "process" => Backend::Process,
        "docker" => Backend::Docker {
            image: repo.docker_image.clone().unwrap_or_default(),
        },
        _ => Backend::Bubblewrap,
    };
    let mut scope = repo::scope::ScopePolicy::default();
    scope.deny.extend(repo.deny.iter().cloned());
    agent::heal::HealOptions {
        diagnose,
        test_command: repo.test_command.clone(),
        sandbox: SandboxConfig {
            backend,
            timeout: Duration::from_secs(repo.test_timeout_seconds),
            memory_bytes: repo.test_memory_mib.saturating_mul(1 << 20),
            ..SandboxConfig::default()
        },
        scope,
        llm: agent::llm::LlmConfig::from_env(),
        ..agent::heal::HealOptions::default()
    }
}

//! A pipeline round of an incident: diagnose → heal → propose.
//!
//! Round 1 runs when the incident first has an event; later rounds start
//! with `/suture retry` (the comment is extra guidance). Before healing,
//! the fix memory of the fingerprint is read: fixes that did not hold
//! (merged and recurred, or rejected by a reviewer) are never proposed
//! again, and the whole history goes to the LLM agent as context.

use std::str::FromStr;
use std::time::Duration;

use agent::diagnose::{DiagnoseOptions, Diagnosis, ReleaseRange};
use agent::heal::AvoidedFix;
use domain::config::{Config, Mode, RepoConfig, SandboxKind};
use repo::pathmap::CodeMapping;
use serde_json::Value;
use store::{FixAttempt, IncidentState, Step};

use crate::cause::Cause;
use crate::job::{Ctx, Stop, blocking};
use crate::outputs::{DiagnoseOutput, HealOutput, ReproduceOutput};
use crate::triage;

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
    let Some(trigger) = round_trigger(ctx, &repo_config, &incident, round).await? else {
        return Ok(());
    };
    crate::limits::admit(ctx, &repo_config, &incident, round, &trigger).await?;
    let event = domain::event::parse_event(signal.payload.as_bytes())
        .map_err(Cause::UnreadableEvent)?
        .event;
    let mut options = diagnose_options(&repo_config);
    options.deploy = deploy(store, incident_id, signal.project.as_deref()).await?;

    let diagnosis = match ctx.saved::<DiagnoseOutput>(Step::Diagnose).await? {
        Some(diagnosis) => diagnosis,
        None => {
            let diagnosis = diagnose_step(ctx, &repo_config, &event, &options).await?;
            ctx.milestone("diagnosed", &incident);
            diagnosis
        }
    };
    if repo_config.mode == Mode::Observe {
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

    let heal = match ctx.saved::<HealOutput>(Step::Heal).await? {
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
            let mut heal_options = heal_options(ctx.config(), &repo_config, options);
            heal_options.avoid = avoided(&memory);
            heal_options.history = history(&memory);
            heal_options.guidance = guidance;
            heal_options.llm = (heal_options.llm.take())
                .map(|llm| llm.with_stop(ctx.llm_stop_check(&repo_config.name)));
            within_token_budget(ctx, &repo_config, &mut heal_options).await?;
            let reproduced = match ctx.saved::<ReproduceOutput>(Step::Reproduce).await? {
                Some(saved) => saved,
                None => {
                    let reproduced = reproduce_step(
                        ctx,
                        &repo_config,
                        &event,
                        &diagnosis.diagnosis,
                        &heal_options,
                    )
                    .await?;
                    ctx.metrics()
                        .reproduction(reproduced.reproduced.record.kind.map(|kind| kind.as_str()));
                    let spent = (reproduced.reproduced.transcript.as_ref())
                        .map_or(0, agent::llm::Transcript::tokens);
                    crate::limits::spend_tokens(ctx, &repo_config, spent).await?;
                    within_token_budget(ctx, &repo_config, &mut heal_options).await?;
                    reproduced
                }
            };
            let heal = heal_step(
                ctx,
                &repo_config,
                event,
                diagnosis.diagnosis,
                reproduced.reproduced,
                heal_options,
            )
            .await?;
            ctx.metrics().heal_outcome(heal.report.outcome.as_str());
            let spent = heal.report.llm.as_ref().map_or(0, |llm| llm.tokens);
            crate::limits::spend_tokens(ctx, &repo_config, spent).await?;
            heal
        }
    };
    Box::pin(crate::propose::run(
        ctx,
        &incident,
        &repo_config,
        round,
        &heal,
    ))
    .await
}

async fn diagnose_step(
    ctx: &Ctx<'_>,
    repo_config: &RepoConfig,
    event: &domain::event::Event,
    options: &DiagnoseOptions,
) -> Result<DiagnoseOutput, Stop> {
    ctx.store()
        .set_incident_state(
            ctx.job.incident_id,
            IncidentState::Diagnosing,
            &format!("diagnosing against {}", repo_config.name),
            None,
        )
        .await?;
    let repo_path = repo_config.path.clone();
    let (event, options) = (event.clone(), options.clone());
    let work = blocking(move || {
        let repo = repo::git::Repo::open(std::path::Path::new(&repo_path))?;
        let mut index = repo::index::CodeIndex::new();
        let diagnosis = agent::diagnose::diagnose(&repo, &mut index, &event, &options)?;
        let markdown = diagnosis.to_markdown();
        Ok(DiagnoseOutput {
            diagnosis,
            markdown,
        })
    });
    ctx.run_step(Step::Diagnose, work).await
}

/// Looks for a test that fails as production did, before any fix.
async fn reproduce_step(
    ctx: &Ctx<'_>,
    repo_config: &RepoConfig,
    event: &domain::event::Event,
    diagnosis: &Diagnosis,
    heal_options: &agent::heal::HealOptions,
) -> Result<ReproduceOutput, Stop> {
    ctx.store()
        .set_incident_state(
            ctx.job.incident_id,
            IncidentState::Healing,
            "reproducing the error before any fix",
            None,
        )
        .await?;
    let repo_path = repo_config.path.clone();
    let runtime = tokio::runtime::Handle::current();
    let (event, diagnosis, heal_options) = (event.clone(), diagnosis.clone(), heal_options.clone());
    let work = blocking(move || {
        let repo = repo::git::Repo::open(std::path::Path::new(&repo_path))?;
        let mut index = repo::index::CodeIndex::new();
        let reproduced = agent::heal::reproduce_diagnosed(
            &repo,
            &mut index,
            &event,
            &diagnosis,
            &heal_options,
            &runtime,
        )?;
        Ok(ReproduceOutput { reproduced })
    });
    ctx.run_step(Step::Reproduce, work).await
}

/// Climbs the fix ladder from the saved `diagnosis` and reproduction, so
/// the pull request explains the same diagnosis the timeline shows and
/// every fix is checked against the same test.
async fn heal_step(
    ctx: &Ctx<'_>,
    repo_config: &RepoConfig,
    event: domain::event::Event,
    diagnosis: Diagnosis,
    reproduced: agent::reproduce::Reproduced,
    heal_options: agent::heal::HealOptions,
) -> Result<HealOutput, Stop> {
    ctx.store()
        .set_incident_state(
            ctx.job.incident_id,
            IncidentState::Healing,
            "looking for the smallest safe fix",
            None,
        )
        .await?;
    let repo_path = repo_config.path.clone();
    let runtime = tokio::runtime::Handle::current();
    let work = blocking(move || {
        let repo = repo::git::Repo::open(std::path::Path::new(&repo_path))?;
        let mut index = repo::index::CodeIndex::new();
        let (report, transcript) = agent::heal::heal_reproduced(
            &repo,
            &mut index,
            &event,
            diagnosis,
            reproduced,
            &heal_options,
            &runtime,
        )?;
        let transcript = transcript
            .map(|transcript| serde_json::to_value(&transcript))
            .transpose()
            .map_err(Cause::Output)?;
        Ok(HealOutput {
            markdown: report.to_markdown(),
            patch_sha: report.fix_sha(),
            fix_patch: report.fix_patch(),
            transcript,
            report,
        })
    });
    ctx.run_step(Step::Heal, work).await
}

/// Gives the LLM rungs what is left of the repository's
/// `llm_tokens_per_day`, or takes the endpoint away (said on the timeline)
/// when nothing is.
async fn within_token_budget(
    ctx: &Ctx<'_>,
    repo: &RepoConfig,
    options: &mut agent::heal::HealOptions,
) -> Result<(), Stop> {
    let Some(llm) = options.llm.as_mut() else {
        return Ok(());
    };
    let left = crate::limits::llm_budget(ctx.store(), repo).await?;
    if left > 0 {
        llm.max_tokens = llm.max_tokens.min(left);
        return Ok(());
    }
    options.llm = None;
    ctx.store()
        .add_timeline(
            ctx.job.incident_id,
            "limit",
            "repos[].llm_tokens_per_day is spent for today: no LLM request is made in this round",
            Some(&serde_json::json!({"limit": "llm_tokens_per_day"})),
        )
        .await?;
    Ok(())
}

/// Why round `round` runs: the trigger it was admitted or deferred with,
/// the one its starter named (`manual` for a human's retry), or triage's
/// first look. `None` when triage held the incident back as observed.
async fn round_trigger(
    ctx: &Ctx<'_>,
    repo: &RepoConfig,
    incident: &store::Incident,
    round: i64,
) -> Result<Option<String>, Stop> {
    let store = ctx.store();
    if let Some(trigger) = store.round_trigger(incident.id, round).await? {
        return Ok(Some(trigger));
    }
    if let Some(trigger) = crate::limits::deferred_trigger(incident) {
        return Ok(Some(trigger.to_owned()));
    }
    let named = ctx
        .job
        .payload
        .as_ref()
        .and_then(|payload| payload.get("trigger"))
        .and_then(Value::as_str);
    if let Some(trigger) = named {
        return Ok(Some(trigger.to_owned()));
    }
    if round > 1 {
        return Ok(Some(triage::MANUAL.to_owned()));
    }
    match triage::first_look(store, repo, incident, chrono::Utc::now()).await? {
        triage::Verdict::Heal(trigger) => Ok(Some(trigger.to_owned())),
        triage::Verdict::Observe(reason) => {
            let changed = store
                .hold_back(
                    incident.id,
                    IncidentState::Observed,
                    &reason.held_back(),
                    &reason.explain(repo),
                )
                .await?;
            if changed {
                ctx.metrics().incident_observed(reason.as_str());
            }
            Ok(None)
        }
    }
}

/// The fixes of the fingerprint never proposed again: those that did not
/// hold, and those merged already (a regression round looks for what the
/// merged fix missed, not for the same patch).
fn avoided(memory: &[FixAttempt]) -> Vec<AvoidedFix> {
    use store::AttemptState::{Held, Merged};
    memory
        .iter()
        .filter(|attempt| {
            (attempt.state.did_not_hold() || matches!(attempt.state, Held | Merged))
                && !attempt.patch_sha.is_empty()
        })
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

/// The deploy that brought the incident's error, as far as the store
/// knows it: the release of its earliest event and the project's release
/// first seen before that one. Diagnosis turns it into the window R0..R
/// when both name commits; otherwise the window is `repos[].days`.
async fn deploy(
    store: &store::Store,
    incident_id: i64,
    project: Option<&str>,
) -> Result<Option<ReleaseRange>, store::StoreError> {
    let (Some(project), Some(release)) = (project, store.first_release(incident_id).await?) else {
        return Ok(None);
    };
    Ok(store
        .release_before(project, &release)
        .await?
        .map(|previous| ReleaseRange { previous, release }))
}

/// The options every diagnosis of `repo` starts from; the deploy is the
/// incident's own (see [`deploy`]).
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

fn heal_options(
    config: &Config,
    repo: &RepoConfig,
    diagnose: DiagnoseOptions,
) -> agent::heal::HealOptions {
    use repo::sandbox::{Backend, SandboxConfig};
    let backend = match repo.sandbox {
        SandboxKind::Process => Backend::Process,
        SandboxKind::Docker => Backend::Docker {
            image: repo.docker_image.clone().unwrap_or_default(),
        },
        SandboxKind::Bubblewrap => Backend::Bubblewrap,
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
        llm: agent::llm::LlmConfig::from_config(config),
        ..agent::heal::HealOptions::default()
    }
}

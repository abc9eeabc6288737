//! The propose step: a proven fix becomes a pull request (`pr` mode) or a
//! tracking issue carrying the diff (`suggest` mode); no fix still gets a
//! tracking issue with the diagnosis, so on-call has it.
//!
//! A fix proven against a reproduction is labelled `suture:reproduced`. A
//! plausible one (the suite passes, the error was not reproduced) is
//! labelled `suture:unreproduced`: a plausible revert is still proposed,
//! a plausible model-written patch only goes into the tracking issue as a
//! suggestion unless the repository sets `propose_unreproduced`.
//!
//! While suture or the repository is paused (`suture pause`), the step
//! waits: the job is rescheduled before anything is recorded or pushed,
//! and proposes once resumed.
//!
//! **Invariant:** one pull request per incident round, whatever crashes or
//! retries happen. The fix attempt row is written before the forge is
//! called (keyed by incident and round), and the forge looks for the
//! round's branch, pull request and the incident's tracking issue before
//! creating any; a step that failed half-way (a rate limit, a timeout, a
//! restart) runs again and finds what already exists.

use std::path::Path;

use agent::heal::Strategy;
use agent::markdown;
use domain::config::Mode;
use forge::{FixProposal, ForgeError};
use store::{AttemptState, FixAttempt, Incident, IncidentState, NewFixAttempt, Step};

use crate::cause::Cause;
use crate::forges::RepoForge;
use crate::job::{Ctx, Stop};
use crate::outputs::{HealOutput, ProposeOutput, short};

/// What the forge made of the proposal.
struct Proposed {
    state: AttemptState,
    incident_state: IncidentState,
    output: ProposeOutput,
}

/// Runs the propose step of round `round` from the heal step's output.
pub(crate) async fn run(
    ctx: &Ctx<'_>,
    incident: &Incident,
    repo: &domain::config::RepoConfig,
    round: i64,
    heal: &HealOutput,
) -> Result<(), Stop> {
    if ctx.saved::<ProposeOutput>(Step::Propose).await?.is_some() {
        return Ok(());
    }
    // A human may have said `/suture stop` while the fix was being made.
    let current = ctx.store().incident(incident.id).await?;
    if current.is_some_and(|current| current.state == IncidentState::Stopped) {
        ctx.store()
            .add_timeline(
                incident.id,
                "skipped",
                "the fix is not proposed: work on this incident was stopped",
                None,
            )
            .await?;
        return Ok(());
    }
    // The kill switch: nothing is pushed or opened while paused.
    ctx.unless_paused(&repo.name, incident.id).await?;
    let Some(repo_forge) = ctx.forges().for_repo(&repo.name).cloned() else {
        return Err(Cause::NoForge(repo.name.clone()).into());
    };
    let on_branch = heal.branch_patch(repo.propose_unreproduced);
    let suggested = heal.suggested_patch(repo.propose_unreproduced);
    let (strategy, patch_sha) = match (on_branch.or(suggested), heal.report.strategy) {
        (Some((_, sha)), Some(strategy)) => (strategy.as_str().to_owned(), sha.to_owned()),
        _ => ("none".to_owned(), String::new()),
    };
    let mut attempt = ctx
        .store()
        .record_attempt(&NewFixAttempt {
            incident_id: incident.id,
            fingerprint: incident.fingerprint.clone(),
            round,
            strategy,
            patch_sha,
            mode: repo.mode.as_str().to_owned(),
            forge: repo_forge.kind.as_str().to_owned(),
            forge_repo: repo_forge.forge_repo.clone(),
        })
        .await?;
    let forge = repo_forge.clone();
    let source = repo.path.clone();
    let mode = repo.mode;
    // What recovery actions did meanwhile goes into the pull request.
    let runtime = crate::actions::runtime_summary(ctx, incident.id).await?;
    let work = async {
        let proposed = match (on_branch, suggested) {
            (Some((patch, _)), _) if mode == Mode::Pr => {
                Box::pin(open_pull_request(
                    &forge, incident, round, heal, patch, &source, &runtime,
                ))
                .await
            }
            (Some((patch, _)), _) | (None, Some((patch, _))) => {
                suggest(&forge, incident, heal, patch, mode).await
            }
            (None, None) => escalate(&forge, incident, heal).await,
        };
        proposed.map_err(|error| Stop::from(Cause::forge("proposing the fix")(error)))
    };
    let mut state = None;
    let work = async {
        let proposed = work.await?;
        state = Some((proposed.state, proposed.incident_state));
        Ok(proposed.output)
    };
    match ctx.run_step(Step::Propose, work).await {
        Ok(output) => {
            let (attempt_state, incident_state) =
                state.expect("the propose step ran and set its states");
            attempt.state = attempt_state;
            fill_attempt(&mut attempt, &output);
            ctx.store().save_attempt(&attempt).await?;
            ctx.store()
                .set_incident_state(
                    incident.id,
                    incident_state,
                    &output.message,
                    Some(&serde_json::to_value(&output).unwrap_or_default()),
                )
                .await?;
            if attempt.state == AttemptState::Open {
                ctx.milestone("pull_request", incident);
            }
            Ok(())
        }
        Err(Stop::Fail(failure)) => {
            // For good: the attempt says why it never became a proposal.
            attempt.state = AttemptState::Abandoned;
            attempt.note = Some(failure.message(false));
            ctx.store().save_attempt(&attempt).await?;
            Err(Stop::Fail(failure))
        }
        Err(stop) => Err(stop),
    }
}

fn fill_attempt(attempt: &mut FixAttempt, output: &ProposeOutput) {
    if output.pr_number.is_some() {
        attempt.pr_number = output.pr_number;
    }
    if output.pr_url.is_some() {
        attempt.pr_url = output.pr_url.clone();
    }
    if output.branch.is_some() {
        attempt.branch = output.branch.clone();
    }
    if output.tracking_issue.is_some() {
        attempt.tracking_issue = output.tracking_issue;
    }
}

async fn open_pull_request(
    forge: &RepoForge,
    incident: &Incident,
    round: i64,
    heal: &HealOutput,
    patch: &str,
    source: &str,
    runtime: &str,
) -> Result<Proposed, ForgeError> {
    let proposal = FixProposal {
        incident_id: incident_key(incident),
        round: u32::try_from(round).unwrap_or(u32::MAX),
        slug: slug(&incident.title),
        title: pr_title(incident, heal),
        body_markdown: format!("{}{runtime}", heal.markdown),
        patch: patch.to_owned(),
        base_revision: heal.report.revision.clone(),
        base_branch: forge.base_branch.clone(),
        strategy: heal
            .report
            .strategy
            .map(|strategy| strategy.as_str().to_owned())
            .unwrap_or_default(),
        reproduced: heal.reproduced(),
        touched_paths: heal
            .report
            .patch
            .as_ref()
            .map(|patch| patch.files.clone())
            .unwrap_or_default(),
        culprit_author_email: culprit_email(heal),
        culprit_author_login: None,
    };
    let opened = forge
        .forge
        .open_pull_request(&proposal, Path::new(source))
        .await?;
    Ok(Proposed {
        state: AttemptState::Open,
        incident_state: IncidentState::Proposed,
        output: ProposeOutput {
            message: format!(
                "pull request #{} {}: {}",
                opened.number,
                if opened.created { "opened" } else { "found" },
                opened.url
            ),
            pr_number: i64::try_from(opened.number).ok(),
            pr_url: Some(opened.url),
            branch: Some(opened.branch),
            head_sha: Some(opened.head_sha),
            tracking_issue: opened
                .tracking_issue
                .and_then(|number| i64::try_from(number).ok()),
            created: Some(opened.created),
        },
    })
}

async fn suggest(
    forge: &RepoForge,
    incident: &Incident,
    heal: &HealOutput,
    patch: &str,
    mode: Mode,
) -> Result<Proposed, ForgeError> {
    let why = if mode == Mode::Pr {
        "The error was not reproduced, so this model-written fix is only plausible: suture does \
         not put it on a branch (set `propose_unreproduced = true` to change that). Apply it \
         yourself if it looks right."
    } else {
        "suture is in `suggest` mode for this repository: apply this diff yourself if it looks \
         right."
    };
    let body = format!(
        "{}\n\n### Proposed diff\n\n{why}\n\n{}",
        heal.markdown.trim_end(),
        markdown::fenced(patch, "diff")
    );
    let number = forge
        .forge
        .open_tracking_issue(&incident_key(incident), &issue_title(incident), &body)
        .await?;
    Ok(Proposed {
        state: AttemptState::Suggested,
        incident_state: IncidentState::Suggested,
        output: ProposeOutput {
            message: format!("fix suggested in tracking issue #{number}"),
            tracking_issue: i64::try_from(number).ok(),
            ..ProposeOutput::default()
        },
    })
}

async fn escalate(
    forge: &RepoForge,
    incident: &Incident,
    heal: &HealOutput,
) -> Result<Proposed, ForgeError> {
    let number = forge
        .forge
        .open_tracking_issue(
            &incident_key(incident),
            &issue_title(incident),
            &heal.markdown,
        )
        .await?;
    Ok(Proposed {
        state: AttemptState::Abandoned,
        incident_state: IncidentState::Unfixed,
        output: ProposeOutput {
            message: format!(
                "no proven fix: a human takes it from here (tracking issue #{number} has the diagnosis)"
            ),
            tracking_issue: i64::try_from(number).ok(),
            ..ProposeOutput::default()
        },
    })
}

/// The incident's key on the forge: branch names and the tracking issue's
/// marker carry it.
fn incident_key(incident: &Incident) -> String {
    incident.id.to_string()
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

/// The incident's title for a pull request or issue title: the event's
/// text, cut short and escaped (the forges also quote it in bodies).
fn event_title(incident: &Incident) -> String {
    let title: String = first_line(&incident.title).chars().take(80).collect();
    markdown::inline(&title)
}

/// The tracking issue's title.
fn issue_title(incident: &Incident) -> String {
    format!("suture: {}", event_title(incident))
}

/// The pull request's title: what the fix does, about what.
fn pr_title(incident: &Incident, heal: &HealOutput) -> String {
    let title = event_title(incident);
    match (heal.report.strategy, &heal.report.culprit) {
        (Some(Strategy::Revert), Some(culprit)) => {
            format!("Revert {}: fixes {title}", short(culprit))
        }
        _ => format!("Fix {title}"),
    }
}

/// A few words of the title for the branch name.
fn slug(title: &str) -> String {
    first_line(title)
        .split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .take(5)
        .collect::<Vec<_>>()
        .join("-")
}

/// The email of the culprit commit's author, from the diagnosis in the
/// heal report.
fn culprit_email(heal: &HealOutput) -> Option<String> {
    let culprit = heal.report.culprit.as_deref()?;
    heal.report
        .diagnosis
        .suspects
        .iter()
        .find(|suspect| suspect.commit == culprit)
        .map(|suspect| suspect.email.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Branch slugs keep words, drop punctuation, stay short.
    #[test]
    fn slugs() {
        assert_eq!(
            slug("ZeroDivisionError: division by zero in checkout()"),
            "ZeroDivisionError-division-by-zero-in"
        );
        assert_eq!(slug("!!!"), "");
    }
}

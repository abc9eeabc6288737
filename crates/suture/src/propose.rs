//! The propose step: a proven fix becomes a pull request (`pr` mode) or a
//! tracking issue carrying the diff (`suggest` mode); no proven fix still
//! gets a tracking issue with the diagnosis, so on-call has it.
//!
//! **Invariant:** one pull request per incident round, whatever crashes or
//! retries happen. The fix attempt row is written before the forge is
//! called (keyed by incident and round), and the forge looks for the
//! round's branch, pull request and the incident's tracking issue before
//! creating any; a step that failed half-way (a rate limit, a timeout, a
//! restart) runs again and finds what already exists.

use std::path::Path;

use forge::{FixProposal, ForgeError};
use serde_json::{Value, json};
use store::{AttemptState, FixAttempt, Incident, IncidentState, NewFixAttempt};

use crate::forges::{RepoForge, is_transient};
use crate::worker::{Ctx, Stop, error_chain};

/// What the forge made of the proposal.
struct Proposed {
    state: AttemptState,
    incident_state: IncidentState,
    message: String,
    output: Value,
}

/// Runs the propose step of round `round` from the heal step's `heal`
/// output.
pub(crate) async fn run(
    ctx: &Ctx<'_>,
    incident: &Incident,
    repo: &domain::config::RepoConfig,
    round: i64,
    heal: &Value,
) -> Result<(), Stop> {
    if ctx.finished_output("propose").await?.is_some() {
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
    let Some(repo_forge) = ctx.forges().for_repo(&repo.name).cloned() else {
        return ctx
            .fail(&format!("repository {} has no forge", repo.name))
            .await;
    };
    let proven = heal.get("outcome").and_then(Value::as_str) == Some("proven");
    let patch = heal.get("fix_patch").and_then(Value::as_str);
    let (strategy, patch_sha) = match (proven, patch) {
        (true, Some(_)) => (
            heal.get("strategy")
                .and_then(Value::as_str)
                .unwrap_or("fix")
                .to_owned(),
            heal.get("patch_sha")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
        ),
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
            mode: repo.mode.clone(),
            forge: repo_forge.kind.to_owned(),
            forge_repo: repo_forge.forge_repo.clone(),
        })
        .await?;
    let forge = repo_forge.clone();
    let source = repo.path.clone();
    let mode = repo.mode.clone();
    let work = async {
        match (proven, patch) {
            (true, Some(patch)) if mode == "pr" => {
                open_pull_request(&forge, incident, round, heal, patch, &source).await
            }
            (true, Some(patch)) => suggest(&forge, incident, heal, patch).await,
            _ => escalate(&forge, incident, heal).await,
        }
    };
    match ctx.run_step("propose", work).await? {
        Ok(proposed) => {
            attempt.state = proposed.state;
            fill_attempt(&mut attempt, &proposed.output);
            ctx.store().save_attempt(&attempt).await?;
            ctx.finish("propose", true, &proposed.output, &proposed.message)
                .await?;
            ctx.store()
                .set_incident_state(
                    incident.id,
                    proposed.incident_state,
                    &proposed.message,
                    Some(&proposed.output),
                )
                .await?;
            if attempt.state == AttemptState::Open {
                ctx.milestone("pull_request", incident);
            }
            Ok(())
        }
        Err(error) => {
            let retry = is_transient(&error) && ctx.job.attempt < ctx.config().queue.max_attempts;
            let message = format!(
                "proposing the fix failed{}: {}",
                if retry { " (will retry)" } else { "" },
                error_chain(&error)
            );
            ctx.finish("propose", false, &json!({"error": message}), &message)
                .await?;
            if retry {
                return Err(Stop::Retry(message));
            }
            // For good: the attempt says why it never became a proposal.
            attempt.state = AttemptState::Abandoned;
            attempt.note = Some(message.clone());
            ctx.store().save_attempt(&attempt).await?;
            ctx.fail(&message).await
        }
    }
}

fn fill_attempt(attempt: &mut FixAttempt, output: &Value) {
    if let Some(number) = output.get("pr_number").and_then(Value::as_i64) {
        attempt.pr_number = Some(number);
    }
    if let Some(url) = output.get("pr_url").and_then(Value::as_str) {
        attempt.pr_url = Some(url.to_owned());
    }
    if let Some(branch) = output.get("branch").and_then(Value::as_str) {
        attempt.branch = Some(branch.to_owned());
    }
    if let Some(issue) = output.get("tracking_issue").and_then(Value::as_i64) {
        attempt.tracking_issue = Some(issue);
    }
}

async fn open_pull_request(
    forge: &RepoForge,
    incident: &Incident,
    round: i64,
    heal: &Value,
    patch: &str,
    source: &str,
) -> Result<Proposed, ForgeError> {
    let proposal = FixProposal {
        incident_id: incident_key(incident),
        round: u32::try_from(round).unwrap_or(u32::MAX),
        slug: slug(&incident.title),
        title: pr_title(incident, heal),
        body_markdown: text(heal, "markdown"),
        patch: patch.to_owned(),
        base_revision: text(heal, "revision"),
        base_branch: forge.base_branch.clone(),
        strategy: text(heal, "strategy"),
        touched_paths: heal
            .pointer("/patch/files")
            .and_then(Value::as_array)
            .map(|files| {
                files
                    .iter()
                    .filter_map(|file| file.as_str().map(str::to_owned))
                    .collect()
            })
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
        message: format!(
            "pull request #{} {}: {}",
            opened.number,
            if opened.created { "opened" } else { "found" },
            opened.url
        ),
        output: json!({
            "pr_number": opened.number,
            "pr_url": opened.url,
            "branch": opened.branch,
            "head_sha": opened.head_sha,
            "tracking_issue": opened.tracking_issue,
            "created": opened.created,
        }),
    })
}

async fn suggest(
    forge: &RepoForge,
    incident: &Incident,
    heal: &Value,
    patch: &str,
) -> Result<Proposed, ForgeError> {
    let fence = if patch.contains("```") { "~~~~" } else { "```" };
    let body = format!(
        "{}\n\n### Proposed diff\n\nsuture is in `suggest` mode for this repository: apply \
         this diff yourself if it looks right.\n\n{fence}diff\n{}\n{fence}\n",
        text(heal, "markdown").trim_end(),
        patch.trim_end()
    );
    let number = forge
        .forge
        .open_tracking_issue(
            &incident_key(incident),
            &format!("suture: {}", first_line(&incident.title)),
            &body,
        )
        .await?;
    Ok(Proposed {
        state: AttemptState::Suggested,
        incident_state: IncidentState::Suggested,
        message: format!("fix suggested in tracking issue #{number}"),
        output: json!({ "tracking_issue": number }),
    })
}

async fn escalate(
    forge: &RepoForge,
    incident: &Incident,
    heal: &Value,
) -> Result<Proposed, ForgeError> {
    let number = forge
        .forge
        .open_tracking_issue(
            &incident_key(incident),
            &format!("suture: {}", first_line(&incident.title)),
            &text(heal, "markdown"),
        )
        .await?;
    Ok(Proposed {
        state: AttemptState::Abandoned,
        incident_state: IncidentState::Unfixed,
        message: format!(
            "no proven fix: a human takes it from here (tracking issue #{number} has the diagnosis)"
        ),
        output: json!({ "tracking_issue": number }),
    })
}

/// The incident's key on the forge: branch names and the tracking issue's
/// marker carry it.
fn incident_key(incident: &Incident) -> String {
    incident.id.to_string()
}

fn text(value: &Value, key: &str) -> String {
    value
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

/// The pull request's title: what the fix does, about what.
fn pr_title(incident: &Incident, heal: &Value) -> String {
    let title: String = first_line(&incident.title).chars().take(80).collect();
    match heal.get("strategy").and_then(Value::as_str) {
        Some("revert") => {
            let culprit = text(heal, "culprit");
            format!(
                "Revert {}: fixes {title}",
                culprit.get(..10).unwrap_or(&culprit)
            )
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
fn culprit_email(heal: &Value) -> Option<String> {
    let culprit = heal.get("culprit").and_then(Value::as_str)?;
    heal.pointer("/diagnosis/suspects")?
        .as_array()?
        .iter()
        .find(|suspect| suspect.get("commit").and_then(Value::as_str) == Some(culprit))?
        .get("email")
        .and_then(Value::as_str)
        .map(str::to_owned)
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

//! What a forge tells suture, and what suture does about it: a fix's pull
//! request merged (the quiet window starts) or closed unmerged (the fix is
//! remembered as rejected), and `/suture stop|retry|explain|approve`
//! comments (`approve` queues the recovery actions awaiting approval on
//! the incident and the incidents linked to it).
//!
//! GitHub deliveries arrive through the webhook endpoint; the local forge's
//! come from `suture pr merge|close|comment`, in the same shapes. Either
//! way the delivery was committed with its job, so none is lost, and the
//! job runs its effect once: the effect is one persisted step.
//!
//! While the repository is paused (`suture pause`), a command waits: its
//! reply is an outside effect. Merges and closes are recorded at once.
//!
//! **Invariant:** a comment command is obeyed only from a user with write
//! access to the repository (admin, maintain or write); anyone else's is
//! ignored and recorded on the incident's timeline. Comments by bots
//! (suture's own replies included) are never commands.
//!
//! Replies are suture's own text: the commenter's login (reduced to login
//! characters) and the saved diagnosis, already rendered through
//! `agent::markdown`; nothing else from the delivery is echoed.

use domain::config::{ForgeKind, SignalSource};
use serde_json::{Value, json};
use store::{AttemptState, FixAttempt, IncidentState, JobKind, Step};

use crate::cause::Cause;
use crate::forges::RepoForge;
use crate::job::{Ctx, Stop};

/// Most characters of a comment kept as `/suture retry` guidance.
const MAX_GUIDANCE_CHARS: usize = 4_000;

/// A forge event suture acts on.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ForgeEvent {
    /// The repository, `owner/name` (GitHub) or the repository's name
    /// (local forge).
    pub(crate) repo: String,
    /// The pull request or issue number.
    pub(crate) number: i64,
    pub(crate) action: Action,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Action {
    /// A pull request was closed, merged or not.
    PullClosed {
        merged: bool,
        merge_commit_sha: Option<String>,
    },
    /// A comment (on an issue or a pull request, or a review body).
    Comment {
        login: String,
        body: String,
        bot: bool,
    },
}

impl ForgeEvent {
    /// The event of a delivery of `kind` (`<event>.<action>`), when it is
    /// one suture acts on.
    pub(crate) fn parse(kind: &str, payload: &Value) -> Option<ForgeEvent> {
        let repo = payload
            .pointer("/repository/full_name")?
            .as_str()?
            .to_owned();
        let text = |pointer: &str| payload.pointer(pointer).and_then(Value::as_str);
        let comment = |number: Option<i64>, author: &str, body: &str| {
            Some(ForgeEvent {
                repo: repo.clone(),
                number: number?,
                action: Action::Comment {
                    login: text(&format!("{author}/login"))?.to_owned(),
                    body: text(body).unwrap_or_default().to_owned(),
                    bot: text(&format!("{author}/type")) == Some("Bot"),
                },
            })
        };
        let pull_number = payload
            .pointer("/pull_request/number")
            .and_then(Value::as_i64);
        match kind {
            "pull_request.closed" => Some(ForgeEvent {
                repo: repo.clone(),
                number: pull_number?,
                action: Action::PullClosed {
                    merged: payload
                        .pointer("/pull_request/merged")
                        .and_then(Value::as_bool)
                        .unwrap_or(false),
                    merge_commit_sha: text("/pull_request/merge_commit_sha").map(str::to_owned),
                },
            }),
            "issue_comment.created" => comment(
                payload.pointer("/issue/number").and_then(Value::as_i64),
                "/comment/user",
                "/comment/body",
            ),
            "pull_request_review_comment.created" => {
                comment(pull_number, "/comment/user", "/comment/body")
            }
            "pull_request_review.submitted" => comment(pull_number, "/review/user", "/review/body"),
            _ => None,
        }
    }
}

/// A `/suture` command in a comment: the first non-empty line starting
/// with `/suture`, its word, and everything after the word as the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Command {
    pub(crate) word: String,
    pub(crate) rest: String,
}

impl Command {
    pub(crate) fn parse(body: &str) -> Option<Command> {
        let trimmed = body.trim_start();
        let after = trimmed.strip_prefix("/suture")?;
        if !after.is_empty() && !after.starts_with(char::is_whitespace) {
            return None;
        }
        let after = after.trim_start_matches([' ', '\t']);
        let (line, more) = after.split_once('\n').unwrap_or((after, ""));
        let (word, first) = line.trim().split_once(' ').unwrap_or((line.trim(), ""));
        let rest = format!("{}\n{}", first.trim(), more.trim())
            .trim()
            .to_owned();
        Some(Command {
            word: word.to_ascii_lowercase(),
            rest,
        })
    }
}

/// Runs the effect of the forge delivery stored as signal `signal_id`.
pub(crate) async fn run(ctx: &Ctx<'_>, signal_id: i64) -> Result<(), Stop> {
    if ctx.saved::<Value>(Step::Apply).await?.is_some() {
        return Ok(());
    }
    let store = ctx.store();
    let Some(signal) = store.signal(signal_id).await? else {
        return Ok(());
    };
    let forge_kind = match SignalSource::parse(&signal.source) {
        Some(SignalSource::Github) => ForgeKind::Github,
        Some(SignalSource::LocalForge) => ForgeKind::Local,
        _ => return Ok(()),
    };
    let payload: Value = serde_json::from_str(&signal.payload).unwrap_or(Value::Null);
    let Some(event) = ForgeEvent::parse(&signal.kind, &payload) else {
        return Ok(());
    };
    let Some(repo_forge) = ctx.forges().find(forge_kind, &event.repo) else {
        tracing::debug!(
            repo = event.repo,
            "a forge event about a repository suture does not serve"
        );
        return Ok(());
    };
    let repo_forge = repo_forge.clone();
    let Some(attempt) = store
        .attempt_by_number(forge_kind.as_str(), &repo_forge.forge_repo, event.number)
        .await?
    else {
        return Ok(());
    };
    // The kill switch holds suture's replies to commands; merges and
    // closes are a human's acts and are recorded at once (what they start
    // waits on its own).
    if let Action::Comment {
        body, bot: false, ..
    } = &event.action
        && Command::parse(body).is_some()
    {
        ctx.unless_paused(&ctx.repo_of(&repo_forge), attempt.incident_id)
            .await?;
    }
    let closed = attempt.clone();
    ctx.run_step(Step::Apply, apply(ctx, &repo_forge, attempt, &event))
        .await?;
    if let Action::PullClosed { merged: false, .. } = event.action
        && closed.pr_number == Some(event.number)
        && matches!(closed.state, AttemptState::Open | AttemptState::Proposing)
    {
        let Some(rejected) = store.attempt(closed.id).await? else {
            return Ok(());
        };
        crate::limits::breaker(ctx, &repo_forge, &rejected).await?;
    }
    Ok(())
}

async fn apply(
    ctx: &Ctx<'_>,
    forge: &RepoForge,
    attempt: FixAttempt,
    event: &ForgeEvent,
) -> Result<Value, Stop> {
    match &event.action {
        Action::PullClosed {
            merged,
            merge_commit_sha,
        } => {
            if attempt.pr_number != Some(event.number) {
                return Ok(json!({"message": "not a pull request of suture's"}));
            }
            if *merged {
                merged_pull(ctx, attempt, merge_commit_sha.as_deref()).await
            } else {
                closed_pull(ctx, attempt).await
            }
        }
        Action::Comment { login, body, bot } => {
            let Some(command) = Command::parse(body) else {
                return Ok(json!({"message": "a comment without a command"}));
            };
            if *bot {
                return Ok(json!({"message": "a bot's comment is never a command"}));
            }
            command_from(ctx, forge, attempt, event.number, login, &command).await
        }
    }
}

/// The fix was merged: record it, and schedule its verification at the end
/// of the quiet window.
async fn merged_pull(
    ctx: &Ctx<'_>,
    mut attempt: FixAttempt,
    merge_commit_sha: Option<&str>,
) -> Result<Value, Stop> {
    let store = ctx.store();
    if !matches!(attempt.state, AttemptState::Open | AttemptState::Proposing) {
        return Ok(json!({"message": format!("already {}", attempt.state)}));
    }
    let now = chrono::Utc::now();
    let quiet = ctx.config().verify.quiet_seconds;
    // At most ten years: a window longer than that is "watch forever".
    let verify_until = now + chrono::Duration::seconds(quiet.min(315_360_000) as i64);
    let releases = store.event_releases(attempt.incident_id, now).await?;
    // The verification is queued before the attempt says merged, so a
    // crash in between leaves a job that finds the attempt still open and
    // a rerun of this effect that queues nothing twice.
    store
        .enqueue_job(
            attempt.incident_id,
            &JobKind::Verify {
                attempt_id: attempt.id,
            },
            verify_until,
            None,
        )
        .await?;
    attempt.state = AttemptState::Merged;
    attempt.merged_at = Some(now);
    attempt.verify_until = Some(verify_until);
    attempt.releases_before = releases.clone();
    store.save_attempt(&attempt).await?;
    let number = attempt.pr_number.unwrap_or_default();
    let message = format!(
        "pull request #{number} merged{}; watching for a recurrence for {quiet} s",
        merge_commit_sha
            .map(|sha| format!(" as {}", sha.get(..10).unwrap_or(sha)))
            .unwrap_or_default()
    );
    store
        .set_incident_state(
            attempt.incident_id,
            IncidentState::Verifying,
            &message,
            Some(&json!({"pr_number": number, "verify_until": verify_until, "releases_before": releases})),
        )
        .await?;
    Ok(json!({"message": message, "incident_id": attempt.incident_id}))
}

/// The fix was closed unmerged: a reviewer rejected it; it is not proposed
/// again for this fingerprint.
async fn closed_pull(ctx: &Ctx<'_>, mut attempt: FixAttempt) -> Result<Value, Stop> {
    if !matches!(attempt.state, AttemptState::Open | AttemptState::Proposing) {
        return Ok(json!({"message": format!("already {}", attempt.state)}));
    }
    attempt.state = AttemptState::Rejected;
    attempt.closed_at = Some(chrono::Utc::now());
    attempt.note = Some("the pull request was closed without merging".to_owned());
    ctx.store().save_attempt(&attempt).await?;
    let message = format!(
        "pull request #{} was closed without merging: this fix will not be proposed again",
        attempt.pr_number.unwrap_or_default()
    );
    ctx.store()
        .set_incident_state(attempt.incident_id, IncidentState::Rejected, &message, None)
        .await?;
    Ok(json!({"message": message, "incident_id": attempt.incident_id}))
}

/// A `/suture` command from `login` on issue or pull request `number`.
async fn command_from(
    ctx: &Ctx<'_>,
    forge: &RepoForge,
    attempt: FixAttempt,
    number: i64,
    login: &str,
    command: &Command,
) -> Result<Value, Stop> {
    let store = ctx.store();
    let incident_id = attempt.incident_id;
    let shown = format!("/suture {}", command.word);
    let permission = forge
        .forge
        .permission(login)
        .await
        .map_err(Cause::forge("reading a commenter's permission"))?;
    let audit = json!({
        "login": login,
        "command": command.word,
        "number": number,
        "permission": format!("{permission:?}").to_ascii_lowercase(),
    });
    if !permission.can_write() {
        let message = format!(
            "ignored `{shown}` from @{login} on #{number}: no write access ({})",
            audit["permission"].as_str().unwrap_or_default()
        );
        store
            .add_timeline(incident_id, "command_ignored", &message, Some(&audit))
            .await?;
        return Ok(json!({"message": message}));
    }
    let reply_to = u64::try_from(number).unwrap_or_default();
    let (message, reply) = match command.word.as_str() {
        "stop" => {
            let message =
                format!("@{login} said `{shown}` on #{number}: work on this incident stopped");
            store
                .set_incident_state(incident_id, IncidentState::Stopped, &message, Some(&audit))
                .await?;
            (
                message,
                format!(
                    "suture stopped work on this incident at @{}'s request. \
                     Comment `/suture retry` to start again.",
                    agent::markdown::login(login)
                ),
            )
        }
        "retry" => {
            let guidance: String = command.rest.chars().take(MAX_GUIDANCE_CHARS).collect();
            let message = format!("@{login} said `{shown}` on #{number}: a new attempt starts");
            let round = store
                .start_round(
                    incident_id,
                    Some(
                        &json!({"guidance": guidance, "requested_by": login, "trigger": "manual"}),
                    ),
                    &message,
                )
                .await?;
            (
                format!("{message} (round {round})"),
                format!(
                    "suture is starting attempt {round} at @{}'s request{}. Fixes that did \
                     not hold are not proposed again.",
                    agent::markdown::login(login),
                    if guidance.is_empty() {
                        ""
                    } else {
                        ", with the comment as guidance"
                    }
                ),
            )
        }
        "explain" => {
            let explanation = latest_diagnosis(ctx, incident_id)
                .await?
                .unwrap_or_else(|| "suture has no diagnosis for this incident yet.".to_owned());
            (
                format!("@{login} said `{shown}` on #{number}: the diagnosis was posted"),
                explanation,
            )
        }
        "approve" => {
            let approved = crate::actions::approve_pending(ctx, incident_id, login).await?;
            let message = format!(
                "@{login} said `{shown}` on #{number}: {} recovery action run(s) approved",
                approved.len()
            );
            let reply = if approved.is_empty() {
                "No recovery action awaits approval here.".to_owned()
            } else {
                format!(
                    "suture queued {} recovery action run(s) at @{}'s request; the timeline \
                     and `GET /api/actions` show how each went.",
                    approved.len(),
                    agent::markdown::login(login)
                )
            };
            (message, reply)
        }
        other => {
            let message = format!("@{login} said `/suture {other}` on #{number}: not a command");
            (
                message,
                "suture knows `/suture stop`, `/suture retry [guidance]`, `/suture explain` and \
                 `/suture approve`."
                    .to_owned(),
            )
        }
    };
    if command.word != "stop" {
        store
            .add_timeline(incident_id, "command", &message, Some(&audit))
            .await?;
    }
    forge
        .forge
        .comment(reply_to, &reply)
        .await
        .map_err(Cause::forge("replying to a command"))?;
    Ok(json!({"message": message, "incident_id": incident_id}))
}

/// The markdown of the incident's latest diagnosis.
async fn latest_diagnosis(ctx: &Ctx<'_>, incident_id: i64) -> Result<Option<String>, Stop> {
    let jobs = ctx.store().incident_jobs(incident_id).await?;
    Ok(jobs
        .iter()
        .rev()
        .flat_map(|job| job.steps.iter())
        .filter(|step| step.step == Step::Diagnose.as_str() && step.state == "finished")
        .find_map(|step| {
            let output: Value = serde_json::from_str(step.output.as_deref()?).ok()?;
            output.get("markdown")?.as_str().map(str::to_owned)
        }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Commands are the first thing in the comment, any case of the word,
    /// with the rest as guidance; anything else is not a command.
    #[test]
    fn commands() {
        let retry = Command::parse("  /suture retry check the None case\nand the cache").unwrap();
        assert_eq!(retry.word, "retry");
        assert_eq!(retry.rest, "check the None case\nand the cache");
        assert_eq!(Command::parse("/suture STOP").unwrap().word, "stop");
        assert_eq!(Command::parse("/suture").unwrap().word, "");
        assert_eq!(Command::parse("please /suture stop"), None);
        assert_eq!(Command::parse("/suturexyz stop"), None);
    }

    fn fixture(name: &str) -> Value {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/fixtures/github")
            .join(name);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
        serde_json::from_str(&text).unwrap()
    }

    /// GitHub's own payloads (the shared fixtures) parse into the events
    /// suture acts on: a comment on its issue by its author, a review body,
    /// a pull request closed unmerged; other events are none of them.
    #[test]
    fn parses_github_payloads() {
        let comment = ForgeEvent::parse(
            "issue_comment.created",
            &fixture("issue_comment.created.payload.json"),
        )
        .unwrap();
        assert_eq!(comment.repo, "Codertocat/Hello-World");
        assert_eq!(comment.number, 1);
        assert_eq!(
            comment.action,
            Action::Comment {
                login: "Codertocat".into(),
                body: "You are totally right! I'll get this fixed right away.".into(),
                bot: false
            }
        );
        let review = ForgeEvent::parse(
            "pull_request_review.submitted",
            &fixture("pull_request_review.submitted.payload.json"),
        )
        .unwrap();
        assert_eq!(review.number, 2);
        assert!(
            matches!(review.action, Action::Comment { ref login, ref body, .. }
            if login == "Codertocat" && body.is_empty())
        );
        let closed = fixture("pull_request.closed.payload.json");
        let event = ForgeEvent::parse("pull_request.closed", &closed).unwrap();
        assert_eq!(event.number, 2);
        assert_eq!(
            event.action,
            Action::PullClosed {
                merged: false,
                merge_commit_sha: Some("c4295bd74fb0f4fda03689c3df3f2803b658fd85".into())
            }
        );
        assert_eq!(ForgeEvent::parse("push", &closed), None);
    }
}

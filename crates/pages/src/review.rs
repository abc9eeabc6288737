//! The local forge's review screen (`/pulls/{n}`), and the one way a
//! review action is taken: [`merge`], [`close`] and [`comment`] act on the
//! [`LocalForge`] and then deliver the forge event (source `local_forge`,
//! in GitHub's webhook shape) to the store with its job, exactly as
//! `suture pr` does — both call these. The service then reacts as it does
//! to GitHub: a merge starts the quiet window, a close rejects the fix, a
//! `/suture` comment is a command.
//!
//! The forge's calls block (its records may live in the store behind a
//! blocking bridge), so they run on blocking threads; call these from a
//! runtime. With several repositories on the local forge, pull request
//! numbers repeat across them: `?repo=NAME` picks one, else the only one,
//! else the first (by name) that has the number.

use axum::Extension;
use axum::extract::{Form, Path, Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use chrono::Utc;
use forge::{ForgeError, LocalForge, LocalPullRequest, MergeOutcome, PrState};
use maud::html;
use serde::Deserialize;
use serde_json::{Value, json};
use store::{NewSignal, Store, StoreError};

use crate::auth::{Viewer, percent_encode};
use crate::{Pages, PagesError, highlight, layout};

/// The source of the local forge's deliveries.
const SOURCE: &str = domain::config::SignalSource::LocalForge.as_str();

/// A review action that failed.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    /// The forge refused (no such pull request, not open) or failed.
    #[error(transparent)]
    Forge(#[from] ForgeError),
    /// The forge acted but its event could not be recorded for the
    /// service.
    #[error("recording the event for suture serve")]
    Store(#[source] StoreError),
    /// The blocking forge call panicked or was cancelled.
    #[error("the forge's task")]
    Join(#[from] tokio::task::JoinError),
}

impl ReviewError {
    /// Whether the person asked for something that cannot be done (no
    /// such pull request, or not open), rather than something failing.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            ReviewError::Forge(ForgeError::NotFound { .. } | ForgeError::WrongState { .. })
        )
    }
}

impl From<ReviewError> for PagesError {
    fn from(error: ReviewError) -> PagesError {
        match error {
            ReviewError::Forge(error) => PagesError::Forge(error),
            ReviewError::Store(error) => PagesError::Store(error),
            ReviewError::Join(error) => PagesError::Join(error),
        }
    }
}

/// Runs a blocking forge call off the runtime.
async fn blocking<T: Send + 'static>(
    forge: &LocalForge,
    call: impl FnOnce(&LocalForge) -> Result<T, ForgeError> + Send + 'static,
) -> Result<T, ReviewError> {
    let forge = forge.clone();
    Ok(tokio::task::spawn_blocking(move || call(&forge)).await??)
}

/// Commits one local forge delivery about repository `repo` to the store.
async fn deliver(
    store: &Store,
    repo: &str,
    kind: &str,
    dedup_key: String,
    payload: Value,
) -> Result<(), ReviewError> {
    let signal = NewSignal {
        source: SOURCE.to_owned(),
        dedup_key,
        project: Some(repo.to_owned()),
        kind: kind.to_owned(),
        title: format!("local forge {kind}"),
        fingerprint: None,
        upstream_id: None,
        has_event: false,
        release: None,
        payload: payload.to_string(),
        received_at: Utc::now(),
    };
    store
        .commit_signals(&[signal])
        .await
        .map(|_| ())
        .map_err(ReviewError::Store)
}

fn repository(repo: &str) -> Value {
    json!({ "full_name": repo, "name": repo })
}

/// A `pull_request` `closed` delivery in GitHub's shape: merged as
/// `merge_commit` when there is one.
fn pull_closed(pull: &LocalPullRequest, merge_commit: Option<&str>, repo: &str) -> Value {
    json!({
        "action": "closed",
        "pull_request": {
            "number": pull.number,
            "merged": merge_commit.is_some(),
            "merge_commit_sha": merge_commit,
            "head": {"ref": pull.branch},
            "base": {"ref": pull.base_branch},
        },
        "repository": repository(repo),
    })
}

/// Merges pull request `number` of repository `repo` into its base and
/// tells the service; returns the merge and the pull request after it.
///
/// # Errors
///
/// When the forge refuses or fails, or the event cannot be recorded.
pub async fn merge(
    forge: &LocalForge,
    store: &Store,
    repo: &str,
    number: u64,
) -> Result<(MergeOutcome, LocalPullRequest), ReviewError> {
    let (outcome, pull) = blocking(forge, move |forge| {
        let outcome = forge.merge(number)?;
        Ok((outcome, forge.show(number)?))
    })
    .await?;
    deliver(
        store,
        repo,
        "pull_request.closed",
        format!("pull_request.closed:{repo}:{number}"),
        pull_closed(&pull, Some(&outcome.commit), repo),
    )
    .await?;
    Ok((outcome, pull))
}

/// Closes pull request `number` of repository `repo` without merging and
/// tells the service (which will not propose the fix again).
///
/// # Errors
///
/// When the forge refuses or fails, or the event cannot be recorded.
pub async fn close(
    forge: &LocalForge,
    store: &Store,
    repo: &str,
    number: u64,
) -> Result<LocalPullRequest, ReviewError> {
    let pull = blocking(forge, move |forge| {
        forge.close(number)?;
        forge.show(number)
    })
    .await?;
    deliver(
        store,
        repo,
        "pull_request.closed",
        format!("pull_request.closed:{repo}:{number}"),
        pull_closed(&pull, None, repo),
    )
    .await?;
    Ok(pull)
}

/// Comments `body` as `login` on pull request or issue `number` of
/// repository `repo`, and tells the service (a `/suture …` comment is a
/// command).
///
/// # Errors
///
/// When the forge refuses or fails, or the event cannot be recorded.
pub async fn comment(
    forge: &LocalForge,
    store: &Store,
    repo: &str,
    number: u64,
    body: &str,
    login: &str,
) -> Result<(), ReviewError> {
    let text = format!("@{login}: {body}");
    blocking(forge, move |forge| forge.comment(number, &text)).await?;
    let now = Utc::now();
    deliver(
        store,
        repo,
        "issue_comment.created",
        format!(
            "issue_comment.created:{repo}:{number}:{}",
            now.timestamp_nanos_opt().unwrap_or_default()
        ),
        json!({
            "action": "created",
            "issue": {"number": number},
            "comment": {"body": body, "user": {"login": login, "type": "User"}},
            "repository": repository(repo),
        }),
    )
    .await
}

/// The pull request's change: its head against the revision it was built
/// on, read from the forge's bare repository. Blocking.
///
/// # Errors
///
/// When either commit cannot be read.
pub fn pull_diff(forge: &LocalForge, pull: &LocalPullRequest) -> Result<String, git2::Error> {
    use git2::{DiffFormat, Oid, Repository};
    let remote = Repository::open_bare(forge.remote())?;
    let head = remote.find_commit(Oid::from_str(&pull.head_sha)?)?.tree()?;
    let base = remote.find_commit(Oid::from_str(&pull.base_sha)?)?.tree()?;
    let diff = remote.diff_tree_to_tree(Some(&base), Some(&head), None)?;
    let mut text = String::new();
    diff.print(DiffFormat::Patch, |_, _, line| {
        let origin = line.origin();
        if matches!(origin, '+' | '-' | ' ') {
            text.push(origin);
        }
        text.push_str(&String::from_utf8_lossy(line.content()));
        true
    })?;
    Ok(text)
}

/// The longest comment taken from the form.
const MAX_COMMENT_BYTES: usize = 64 * 1024;

/// Query of `/pulls/{n}`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct PullQuery {
    repo: Option<String>,
    done: Option<String>,
}

/// The repository (by name) and local forge that hold pull request
/// `number` (see the module doc).
async fn pick_forge(
    pages: &Pages,
    repo: Option<&str>,
    number: u64,
) -> Result<(String, LocalForge), PagesError> {
    let forges = pages.local_forges();
    if let Some(repo) = repo.filter(|repo| !repo.is_empty()) {
        return forges
            .get(repo)
            .map(|forge| (repo.to_owned(), forge.clone()))
            .ok_or_else(|| {
                PagesError::NotFound(format!("repository {repo:?} on the local forge"))
            });
    }
    let mut names: Vec<&String> = forges.keys().collect();
    names.sort();
    if let [only] = names.as_slice() {
        return Ok(((*only).clone(), forges[*only].clone()));
    }
    for name in names {
        let forge = forges[name].clone();
        if blocking(&forge, move |forge| forge.show(number))
            .await
            .is_ok()
        {
            return Ok((name.clone(), forge));
        }
    }
    Err(PagesError::NotFound(format!(
        "pull request #{number} on the local forge"
    )))
}

fn parse_number(number: &str) -> Result<u64, PagesError> {
    number
        .parse()
        .map_err(|_| PagesError::NotFound(format!("pull request {number:?}")))
}

/// `GET /pulls/{n}`.
pub(crate) async fn page(
    State(pages): State<Pages>,
    Extension(viewer): Extension<Viewer>,
    Path(number): Path<String>,
    query: Result<Query<PullQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Html<String>, PagesError> {
    let number = parse_number(&number)?;
    let query = query.map(|Query(query)| query).unwrap_or_default();
    let (repo, forge) = pick_forge(&pages, query.repo.as_deref(), number).await?;
    let (pull, diff) = blocking(&forge, move |forge| {
        let pull = forge.show(number)?;
        let diff = pull_diff(forge, &pull).map_err(|error| error.message().to_owned());
        Ok((pull, diff))
    })
    .await?;
    let keys = pages.keys();
    let csrf = viewer.csrf(keys);
    let action = |verb: &str| format!("/pulls/{number}/{verb}");
    let done = match query.done.as_deref() {
        Some("merged") => {
            Some("Merged. suture now watches the quiet window before it closes the incident.")
        }
        Some("closed") => Some("Closed without merging. suture will not propose this fix again."),
        Some("commented") => Some("Comment posted."),
        _ => None,
    };
    let body = html! {
        p {
            a href="/" { "← All incidents" }
            " · " a href=(format!("/incidents/{}", pull.incident_id)) { "Incident " (pull.incident_id) }
        }
        h1 { "#" (pull.number) " " (pull.title) }
        @if let Some(done) = done { p.notice role="status" { (done) } }
        dl.facts {
            dt { "State" } dd { span.badge #pull-state data-state=(pull.state.to_string()) { (pull.state.to_string()) } }
            dt { "Repository" } dd { (repo) }
            dt { "Branch" } dd { code { (pull.branch) } " → " code { (pull.base_branch) } }
            dt { "Strategy" } dd { (pull.strategy) }
            dt { "Opened" } dd { (crate::overview::when(&pull.created_at)) }
            @if let Some(issue) = pull.tracking_issue { dt { "Tracking issue" } dd { "#" (issue) } }
            @if !pull.reviewers.is_empty() { dt { "Reviewers" } dd { (pull.reviewers.join(", ")) } }
            @if !pull.labels.is_empty() { dt { "Labels" } dd { (pull.labels.join(", ")) } }
            @if let Some(sha) = &pull.merge_commit_sha { dt { "Merged as" } dd { code { (sha) } } }
        }
        @if pull.state == PrState::Open {
            section #review-actions aria-labelledby="actions-heading" {
                h2 #actions-heading { "Review" }
                div.actions {
                    form #merge-form method="post" action=(action("merge")) {
                        input type="hidden" name="csrf" value=(csrf);
                        input type="hidden" name="repo" value=(repo);
                        button #merge-button.primary type="submit" { "Merge" }
                    }
                    form #close-form method="post" action=(action("close")) {
                        input type="hidden" name="csrf" value=(csrf);
                        input type="hidden" name="repo" value=(repo);
                        button #close-button.danger type="submit" { "Close without merging" }
                    }
                }
            }
        }
        section #report aria-labelledby="report-heading" {
            h2 #report-heading { "Report" }
            pre.wrap { (pull.body) }
        }
        section #pull-diff aria-labelledby="pull-diff-heading" {
            h2 #pull-diff-heading { "Diff" }
            @match &diff {
                Ok(diff) => { (highlight::diff(diff)) }
                Err(error) => { p.error { "The diff cannot be read: " (error) } }
            }
        }
        section #comments aria-labelledby="comments-heading" {
            h2 #comments-heading { "Comments" }
            @if pull.comments.is_empty() { p.empty { "No comments." } }
            @for comment in &pull.comments { pre.wrap.comment { (comment) } }
            form #comment-form.stacked method="post" action=(action("comment")) {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="repo" value=(repo);
                p {
                    label for="comment-body" { "Comment" }
                    textarea #comment-body name="body" required maxlength=(MAX_COMMENT_BYTES) {}
                }
                p.muted { "/suture stop, /suture retry [guidance] and /suture explain are commands." }
                p {
                    label for="comment-login" { "As" }
                    input #comment-login type="text" name="login" placeholder="operator" maxlength="64" autocomplete="username";
                }
                button #comment-button type="submit" { "Comment" }
            }
        }
    };
    Ok(layout::page(
        &format!("#{} {}", pull.number, pull.title),
        viewer.signout(keys).as_deref(),
        body,
    ))
}

/// Form of the review actions.
#[derive(Debug, Deserialize)]
pub(crate) struct ActionForm {
    csrf: Option<String>,
    repo: Option<String>,
    body: Option<String>,
    login: Option<String>,
}

type ActionFormResult = Result<Form<ActionForm>, axum::extract::rejection::FormRejection>;

/// Checks the form's CSRF token first (a form that does not parse carries
/// none), then finds the pull request's forge.
async fn accept(
    pages: &Pages,
    viewer: &Viewer,
    number: &str,
    form: ActionFormResult,
) -> Result<(u64, ActionForm, String, LocalForge), PagesError> {
    let Ok(Form(form)) = form else {
        return Err(PagesError::Forbidden("the form carries no CSRF token"));
    };
    viewer.check(pages.keys(), form.csrf.as_deref())?;
    let number = parse_number(number)?;
    let (repo, forge) = pick_forge(pages, form.repo.as_deref(), number).await?;
    Ok((number, form, repo, forge))
}

fn back(number: u64, repo: &str, done: &str) -> Response {
    Redirect::to(&format!(
        "/pulls/{number}?repo={}&done={done}",
        percent_encode(repo)
    ))
    .into_response()
}

/// `POST /pulls/{n}/merge`.
pub(crate) async fn merge_action(
    State(pages): State<Pages>,
    Extension(viewer): Extension<Viewer>,
    Path(number): Path<String>,
    form: ActionFormResult,
) -> Result<Response, PagesError> {
    let (number, _, repo, forge) = accept(&pages, &viewer, &number, form).await?;
    merge(&forge, pages.store(), &repo, number).await?;
    Ok(back(number, &repo, "merged"))
}

/// `POST /pulls/{n}/close`.
pub(crate) async fn close_action(
    State(pages): State<Pages>,
    Extension(viewer): Extension<Viewer>,
    Path(number): Path<String>,
    form: ActionFormResult,
) -> Result<Response, PagesError> {
    let (number, _, repo, forge) = accept(&pages, &viewer, &number, form).await?;
    close(&forge, pages.store(), &repo, number).await?;
    Ok(back(number, &repo, "closed"))
}

/// `POST /pulls/{n}/comment`.
pub(crate) async fn comment_action(
    State(pages): State<Pages>,
    Extension(viewer): Extension<Viewer>,
    Path(number): Path<String>,
    form: ActionFormResult,
) -> Result<Response, PagesError> {
    let (number, form, repo, forge) = accept(&pages, &viewer, &number, form).await?;
    let body = form.body.unwrap_or_default();
    if body.trim().is_empty() || body.len() > MAX_COMMENT_BYTES {
        return Err(PagesError::BadRequest(format!(
            "a comment is 1 to {MAX_COMMENT_BYTES} bytes"
        )));
    }
    let login = form
        .login
        .map(|login| login.trim().to_owned())
        .filter(|login| {
            !login.is_empty()
                && login.len() <= 64
                && login
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        })
        .unwrap_or_else(|| "operator".to_owned());
    comment(&forge, pages.store(), &repo, number, &body, &login).await?;
    Ok(back(number, &repo, "commented"))
}

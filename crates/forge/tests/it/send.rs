//! The forges' futures are `Send` for any borrow, so a service can box
//! them as `dyn Future + Send` or spawn them. A compile-time check: this
//! module fails to build when a future is not.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;

use forge::upstream::{PagerDutyClient, SentryClient};
use forge::{FixProposal, Forge, ForgeError, GitHubForge};

type Call<'a, T> = Pin<Box<dyn Future<Output = Result<T, ForgeError>> + Send + 'a>>;

fn forge_calls<'a>(
    forge: &'a Forge,
    proposal: &'a FixProposal,
    source: &'a Path,
    text: &'a str,
) -> Vec<Call<'a, ()>> {
    vec![
        Box::pin(async move { forge.open_pull_request(proposal, source).await.map(drop) }),
        Box::pin(async move { forge.open_tracking_issue(text, text, text).await.map(drop) }),
        Box::pin(forge.close_issue(1, text)),
        Box::pin(forge.reopen_issue(1, text)),
        Box::pin(forge.comment(1, text)),
        Box::pin(async move { forge.permission(text).await.map(drop) }),
        Box::pin(async move { forge.pr_state(1).await.map(drop) }),
    ]
}

fn github_calls<'a>(
    forge: &'a GitHubForge,
    proposal: &'a FixProposal,
    source: &'a Path,
) -> Vec<Call<'a, ()>> {
    vec![
        Box::pin(async move { forge.open_pull_request(proposal, source).await.map(drop) }),
        Box::pin(async move { forge.push_fix_branch(proposal, source).await.map(drop) }),
    ]
}

fn upstream_calls<'a>(
    sentry: &'a SentryClient,
    pagerduty: &'a PagerDutyClient,
    text: &'a str,
) -> Vec<Call<'a, ()>> {
    vec![
        Box::pin(sentry.resolve_issue(text)),
        Box::pin(sentry.resolve_issue_in_commit(text, text, text)),
        Box::pin(async move { sentry.issue_for_event(text, text).await.map(drop) }),
        Box::pin(pagerduty.resolve_incident(text)),
        Box::pin(pagerduty.add_note(text, text)),
    ]
}

/// Referenced so the checks above are compiled, not dropped as dead code.
#[test]
fn forge_futures_are_send() {
    let _ = (forge_calls, github_calls, upstream_calls);
}

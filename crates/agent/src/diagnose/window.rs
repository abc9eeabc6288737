//! Which revision was deployed and which commits count as recent.

use chrono::Utc;
use domain::event::Event;
use repo::git::{Repo, RepoError, WindowSpec};

use super::{DEFAULT_DAYS, DiagnoseOptions};

/// The deployed revision, how it was found, and the window spec.
pub(crate) struct Target {
    pub(crate) spec: WindowSpec,
    pub(crate) revision_source: &'static str,
    /// Event time (or now), Unix seconds: recency is measured from here.
    pub(crate) reference_time: i64,
    pub(crate) since: Option<String>,
    pub(crate) days: Option<u32>,
}

pub(crate) fn resolve(
    repo: &Repo,
    event: &Event,
    options: &DiagnoseOptions,
) -> Result<Target, RepoError> {
    let (tip, revision_source) = match &options.revision {
        Some(rev) => (repo.resolve(rev)?, "option"),
        None => match event
            .release
            .as_deref()
            .and_then(|r| release_commit(repo, r))
        {
            Some(tip) => (tip, "release"),
            None => (repo.head()?, "head"),
        },
    };
    let tip_time = repo.commit_info(tip)?.commit_time;
    let event_time = event.timestamp.map(|t| t.timestamp());
    let reference_time = event_time
        .unwrap_or_else(|| Utc::now().timestamp())
        .max(tip_time);
    let since = options
        .since
        .as_deref()
        .map(|rev| repo.resolve(rev))
        .transpose()?;
    let days = match (&options.since, options.days) {
        (Some(_), days) => days,
        (None, Some(days)) => Some(days),
        (None, None) => Some(DEFAULT_DAYS),
    };
    let not_before = days.map(|d| reference_time - i64::from(d) * 86_400);
    Ok(Target {
        spec: WindowSpec {
            tip,
            since,
            not_before,
            max_commits: options.max_commits,
        },
        revision_source,
        reference_time,
        since: options.since.clone(),
        days,
    })
}

/// A release names a commit when it is a sha or a tag, possibly behind a
/// `package@` prefix (`shop@1.4.2`, `shop@3fa9c2e`).
fn release_commit(repo: &Repo, release: &str) -> Option<repo::git2::Oid> {
    let version = release.rsplit_once('@').map_or(release, |(_, v)| v);
    let mut candidates = vec![release.to_string(), version.to_string()];
    if !version.starts_with('v') {
        candidates.push(format!("v{version}"));
    }
    candidates.into_iter().find_map(|rev| {
        let looks_like_ref = rev.len() >= 7 && rev.chars().all(|c| c.is_ascii_hexdigit())
            || repo
                .git()
                .find_reference(&format!("refs/tags/{rev}"))
                .is_ok();
        looks_like_ref.then(|| repo.resolve(&rev).ok()).flatten()
    })
}

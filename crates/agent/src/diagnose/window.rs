//! Which revision was deployed and which commits count as recent.
//!
//! The window is chosen in this order, and [`WindowSource`] says which:
//! `--since REV` as given (`since`); else the deploy that brought the
//! error, when it is known (`releases`): the incident's first release R and
//! the release before it R0 both name commits (see [`release_commit`]) and
//! R descends from R0, so the window is exactly R0..R; else the days
//! before the event (`days`). The deploy needs the store's view of the
//! project's releases, so only the service passes one; `suture diagnose`
//! uses `--since` or `--days`.

use chrono::Utc;
use domain::event::Event;
use repo::git::{Repo, RepoError, WindowSpec};
use repo::git2::Oid;

use super::{DEFAULT_DAYS, DiagnoseOptions, ReleaseRange, WindowSource};

/// The deployed revision, how it was found, and the window spec.
pub(crate) struct Target {
    pub(crate) spec: WindowSpec,
    pub(crate) revision_source: &'static str,
    /// Event time (or now), Unix seconds: recency is measured from here.
    pub(crate) reference_time: i64,
    pub(crate) since: Option<String>,
    pub(crate) days: Option<u32>,
    pub(crate) source: WindowSource,
    /// The releases whose commits bound the window, when `source` is
    /// `releases`.
    pub(crate) releases: Option<ReleaseRange>,
}

pub(crate) fn resolve(
    repo: &Repo,
    event: &Event,
    options: &DiagnoseOptions,
) -> Result<Target, RepoError> {
    if let Some((tip, base, releases)) = deploy_window(repo, options)? {
        return target(
            repo,
            event,
            options,
            (tip, "release"),
            Some((base, releases)),
        );
    }
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
    target(repo, event, options, (tip, revision_source), None)
}

/// The window's target at `tip`; `deploy`, the previous release's commit
/// and the releases, bounds it instead of `since` or `days` when known.
fn target(
    repo: &Repo,
    event: &Event,
    options: &DiagnoseOptions,
    (tip, revision_source): (Oid, &'static str),
    deploy: Option<(Oid, ReleaseRange)>,
) -> Result<Target, RepoError> {
    let tip_time = repo.commit_info(tip)?.commit_time;
    let event_time = event.timestamp.map(|t| t.timestamp());
    let reference_time = event_time
        .unwrap_or_else(|| Utc::now().timestamp())
        .max(tip_time);
    let releases = deploy.as_ref().map(|(_, releases)| releases.clone());
    let (since, since_text, days, source) = if let Some((base, _)) = deploy {
        (
            Some(base),
            Some(base.to_string()),
            None,
            WindowSource::Releases,
        )
    } else {
        let since = options
            .since
            .as_deref()
            .map(|rev| repo.resolve(rev))
            .transpose()?;
        let (days, source) = match (&options.since, options.days) {
            (Some(_), days) => (days, WindowSource::Since),
            (None, Some(days)) => (Some(days), WindowSource::Days),
            (None, None) => (Some(DEFAULT_DAYS), WindowSource::Days),
        };
        (since, options.since.clone(), days, source)
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
        since: since_text,
        days,
        source,
        releases,
    })
}

/// The deploy's tip (R's commit) and base (R0's commit), when the options
/// name a deploy, neither `since` nor `revision` overrides it, both
/// releases name commits and R0 is a strict ancestor of R: only then is
/// R0..R the deploy's diff (two names for one commit, or a release older
/// than the one before it, say nothing of what changed).
fn deploy_window(
    repo: &Repo,
    options: &DiagnoseOptions,
) -> Result<Option<(Oid, Oid, ReleaseRange)>, RepoError> {
    let Some(deploy) = &options.deploy else {
        return Ok(None);
    };
    if options.since.is_some() || options.revision.is_some() {
        return Ok(None);
    }
    let (Some(tip), Some(base)) = (
        release_commit(repo, &deploy.release),
        release_commit(repo, &deploy.previous),
    ) else {
        return Ok(None);
    };
    let descends = tip != base && repo.is_ancestor(base, tip)?;
    Ok(descends.then(|| (tip, base, deploy.clone())))
}

/// The commit `release` names in `repo`, if any: a release names a commit
/// when it is a sha (7 hex digits or more) or a tag, possibly behind a
/// `package@` prefix, and the version may be tagged with a `v` (`shop@1.4.2`
/// → tag `shop@1.4.2`, `1.4.2` or `v1.4.2`; `shop@3fa9c2e` → that commit).
/// Release text comes from events: nothing but a sha or an existing tag is
/// handed to revision parsing.
pub fn release_commit(repo: &Repo, release: &str) -> Option<Oid> {
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

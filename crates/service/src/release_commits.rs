//! The commits a project's releases name, for `GET /api/releases`: the
//! project's repository is found as a pipeline round finds it
//! (`Config::repo_for`), and each release is read by diagnosis's own rule
//! (`agent::diagnose::release_commit`), so the API and the window agree.

use std::path::Path;
use std::sync::Arc;

use domain::config::{Config, SignalSource};

/// Resolves releases in the configured repositories.
#[derive(Debug)]
pub(crate) struct RepoReleaseCommits {
    pub(crate) config: Arc<Config>,
}

impl ingest::ReleaseCommits for RepoReleaseCommits {
    fn commits(&self, project: &str, releases: &[String]) -> Vec<Option<String>> {
        let repo = self
            .config
            .repo_for(SignalSource::SentrySdk.as_str(), Some(project))
            .and_then(|repo| match repo::git::Repo::open(Path::new(&repo.path)) {
                Ok(opened) => Some(opened),
                Err(error) => {
                    tracing::warn!(repo = %repo.name, error = %error, "opening the repository to name releases' commits");
                    None
                }
            });
        let Some(repo) = repo else {
            return vec![None; releases.len()];
        };
        releases
            .iter()
            .map(|release| {
                agent::diagnose::release_commit(&repo, release).map(|commit| commit.to_string())
            })
            .collect()
    }
}

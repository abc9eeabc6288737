//! The forges and upstream clients the service acts through, built once
//! from the configuration: for each repository its [`Forge`] (GitHub, or
//! the local forge whose pull request records live in the store), and the
//! Sentry and PagerDuty clients the close step resolves incidents with.
//!
//! The local forge keeps its records as one document in the store
//! (`StoreRecords`), so the service and `suture pr …` in another process
//! see the same pull requests, on SQLite and PostgreSQL alike.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use domain::config::{Config, ForgeKind, RepoConfig};
use forge::upstream::{PagerDutyClient, PagerDutyConfig, SentryClient, SentryConfig};
use forge::{
    Forge, ForgeError, GitHubAuth, GitHubConfig, GitHubForge, LocalForge, RecordsBackend,
    RetryPolicy, SecretString,
};
use store::{Store, StoreError};

use crate::ServiceError;

/// One repository's forge.
#[derive(Debug, Clone)]
pub(crate) struct RepoForge {
    /// Where its fixes are proposed.
    pub(crate) forge: Forge,
    /// Which forge; its name is the `forge` of the repository's fix
    /// attempts.
    pub(crate) kind: ForgeKind,
    /// `owner/name` on GitHub; the repository's name on the local forge.
    pub(crate) forge_repo: String,
    /// The branch fixes target.
    pub(crate) base_branch: String,
}

/// Every repository's forge, and the upstream clients.
#[derive(Debug, Default)]
pub(crate) struct Forges {
    by_repo: HashMap<String, RepoForge>,
    pub(crate) sentry: Option<SentryClient>,
    pub(crate) pagerduty: Option<PagerDutyClient>,
}

impl Forges {
    /// Builds the forge of every configured repository (opening or creating
    /// local forges' bare repositories) and the upstream clients that are
    /// configured. Call it from a runtime's context: the local forge's
    /// records reach the store through `runtime`.
    pub(crate) fn build(
        config: &Config,
        store: &Store,
        runtime: &tokio::runtime::Handle,
    ) -> Result<Forges, ServiceError> {
        let mut by_repo = HashMap::new();
        for repo in &config.repos {
            let forge = repo_forge(config, repo, store, runtime)?;
            by_repo.insert(repo.name.clone(), forge);
        }
        let sentry = match (
            &config.sentry.organization,
            &config.secrets.sentry_api_token,
        ) {
            (Some(organization), Some(token)) => {
                let mut sentry = SentryConfig::new(organization, SecretString::from(token.clone()));
                sentry.base_url = config.sentry.api_url.clone();
                Some(
                    SentryClient::new(sentry).map_err(|source| ServiceError::Upstream {
                        service: "Sentry",
                        source: Box::new(source),
                    })?,
                )
            }
            _ => None,
        };
        let pagerduty = match (
            &config.pagerduty.from_email,
            &config.secrets.pagerduty_api_key,
        ) {
            (Some(from), Some(key)) => {
                let mut pagerduty = PagerDutyConfig::new(SecretString::from(key.clone()), from);
                pagerduty.base_url = config.pagerduty.api_url.clone();
                Some(
                    PagerDutyClient::new(pagerduty).map_err(|source| ServiceError::Upstream {
                        service: "PagerDuty",
                        source: Box::new(source),
                    })?,
                )
            }
            _ => None,
        };
        Ok(Forges {
            by_repo,
            sentry,
            pagerduty,
        })
    }

    /// The forge of the repository named `name`.
    pub(crate) fn for_repo(&self, name: &str) -> Option<&RepoForge> {
        self.by_repo.get(name)
    }

    /// The forge of the repository that is `forge_repo` on forge `kind`.
    pub(crate) fn find(&self, kind: ForgeKind, forge_repo: &str) -> Option<&RepoForge> {
        self.by_repo
            .values()
            .find(|forge| forge.kind == kind && forge.forge_repo.eq_ignore_ascii_case(forge_repo))
    }
}

fn repo_forge(
    config: &Config,
    repo: &RepoConfig,
    store: &Store,
    runtime: &tokio::runtime::Handle,
) -> Result<RepoForge, ServiceError> {
    let base_branch = base_branch(repo);
    let misconfigured = |reason| ServiceError::ForgeConfig {
        repo: repo.name.clone(),
        reason,
    };
    if repo.forge == ForgeKind::Github {
        let full_name = repo.github_repo.clone().unwrap_or_default();
        let (owner, name) = full_name
            .split_once('/')
            .ok_or_else(|| misconfigured("github_repo is not owner/name"))?;
        let auth = match (config.github.app_id, &config.secrets.github_app_private_key) {
            (Some(app_id), Some(key)) => GitHubAuth::App {
                app_id,
                installation_id: repo
                    .github_installation_id
                    .ok_or_else(|| misconfigured("github_installation_id is not set"))?,
                private_key_pem: SecretString::from(key.clone()),
            },
            _ => GitHubAuth::Token(SecretString::from(
                config.secrets.github_token.clone().ok_or_else(|| {
                    misconfigured("neither a GitHub App nor SUTURE_GITHUB_TOKEN is configured")
                })?,
            )),
        };
        let mut github = GitHubConfig::new(owner, name, auth);
        github.api_url = config.github.api_url.clone();
        github.push_url = Some(format!(
            "{}/{owner}/{name}.git",
            config.github.git_url.trim_end_matches('/')
        ));
        github.retry = RetryPolicy {
            request_timeout: Duration::from_secs(config.github.request_timeout_seconds.max(1)),
            ..RetryPolicy::default()
        };
        return Ok(RepoForge {
            forge: Forge::GitHub(GitHubForge::new(github).map_err(|source| {
                ServiceError::Forge {
                    repo: repo.name.clone(),
                    source: Box::new(source),
                }
            })?),
            kind: ForgeKind::Github,
            forge_repo: full_name,
            base_branch,
        });
    }
    Ok(RepoForge {
        forge: Forge::Local(local_forge(config, repo, store, runtime)?),
        kind: ForgeKind::Local,
        forge_repo: repo.name.clone(),
        base_branch,
    })
}

/// The local forge of `repo`: its bare repository (created when missing)
/// and its records in the store.
pub fn local_forge(
    config: &Config,
    repo: &RepoConfig,
    store: &Store,
    runtime: &tokio::runtime::Handle,
) -> Result<LocalForge, ServiceError> {
    let remote = local_remote(config, repo);
    let records = Arc::new(StoreRecords {
        store: store.clone(),
        name: format!("local_forge/{}", repo.name),
        runtime: runtime.clone(),
    });
    LocalForge::open_or_init(&remote, records).map_err(|source| ServiceError::LocalForge {
        path: remote.clone(),
        source: Box::new(source),
    })
}

/// The local forge's bare repository of `repo`.
pub fn local_remote(config: &Config, repo: &RepoConfig) -> PathBuf {
    match &repo.local_remote {
        Some(path) => PathBuf::from(path),
        None => Path::new(&config.store.data_dir)
            .join("forge")
            .join(format!("{}.git", repo.name)),
    }
}

/// The configured base branch, else the branch checked out in the
/// repository's clone, else `main`.
fn base_branch(repo: &RepoConfig) -> String {
    if let Some(branch) = &repo.base_branch {
        return branch.clone();
    }
    repo::git2::Repository::open(&repo.path)
        .ok()
        .and_then(|clone| {
            let head = clone.head().ok()?;
            head.is_branch()
                .then(|| head.shorthand().ok().map(str::to_owned))
                .flatten()
        })
        .unwrap_or_else(|| "main".to_owned())
}

/// The local forge's records as a document in the store. Its calls block:
/// the forge makes them from blocking tasks (the service) or the main
/// thread (the CLI), never from inside the runtime.
#[derive(Debug)]
pub(crate) struct StoreRecords {
    store: Store,
    name: String,
    runtime: tokio::runtime::Handle,
}

/// An edit's error, or the store's.
enum EditError {
    Store(StoreError),
    Forge(ForgeError),
}

impl From<StoreError> for EditError {
    fn from(error: StoreError) -> EditError {
        EditError::Store(error)
    }
}

fn records_error(error: &StoreError) -> ForgeError {
    ForgeError::records(format!("the store: {}", crate::worker::error_chain(error)))
}

impl RecordsBackend for StoreRecords {
    fn read(&self) -> Result<Option<String>, ForgeError> {
        self.runtime
            .block_on(self.store.document(&self.name))
            .map_err(|error| records_error(&error))
    }

    fn update(
        &self,
        edit: &mut dyn FnMut(Option<String>) -> Result<Option<String>, ForgeError>,
    ) -> Result<(), ForgeError> {
        let updated = self
            .runtime
            .block_on(self.store.update_document(&self.name, |doc| {
                edit(doc).map(|doc| (doc, ())).map_err(EditError::Forge)
            }));
        match updated {
            Ok(()) => Ok(()),
            Err(EditError::Forge(error)) => Err(error),
            Err(EditError::Store(error)) => Err(records_error(&error)),
        }
    }
}

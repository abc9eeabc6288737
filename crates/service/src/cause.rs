//! Why a job or one of its steps failed, as types: the step runner decides
//! from the cause alone whether the job is retried ([`Cause::is_transient`])
//! and renders it, with its sources, for the timeline.

use agent::diagnose::DiagnoseError;
use agent::heal::HealError;
use domain::event::EventError;
use forge::ForgeError;
use repo::git::RepoError;

/// A failure that ends a step or a job.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Cause {
    /// A forge or upstream (Sentry, PagerDuty) call failed.
    #[error("{what}")]
    Forge {
        /// What was being done, e.g. `closing the tracking issue`.
        what: &'static str,
        #[source]
        source: ForgeError,
    },
    /// The repository could not be opened.
    #[error(transparent)]
    Repo(#[from] RepoError),
    /// Diagnosis could not run.
    #[error(transparent)]
    Diagnose(#[from] DiagnoseError),
    /// The fix ladder could not run.
    #[error(transparent)]
    Heal(#[from] HealError),
    /// The stored event is not an event.
    #[error("the stored event cannot be read")]
    UnreadableEvent(#[source] EventError),
    /// The blocking task of a step panicked.
    #[error("the step panicked: {0}")]
    Panicked(String),
    /// A step's output could not be encoded or read back.
    #[error("the step's output")]
    Output(#[source] serde_json::Error),
    /// The configuration names no forge for the repository.
    #[error("repository {0} has no forge")]
    NoForge(String),
    /// No configured repository is the one a fix was proposed on.
    #[error("no configured repository is {forge} {repo}")]
    UnknownForgeRepo {
        /// `github` or `local`.
        forge: String,
        /// The repository on that forge.
        repo: String,
    },
    /// The job's kind is not one this version knows.
    #[error("unknown job kind {0:?}")]
    UnknownJob(String),
    /// The job was leased more times than `queue.max_attempts`.
    #[error("gave up after {0} attempts")]
    GaveUp(i64),
}

impl Cause {
    /// A forge failure while doing `what`.
    pub(crate) fn forge(what: &'static str) -> impl FnOnce(ForgeError) -> Cause {
        move |source| Cause::Forge { what, source }
    }

    /// Whether the failure may pass with time, so the job is retried.
    pub(crate) fn is_transient(&self) -> bool {
        match self {
            Cause::Forge { source, .. } => source.is_transient(),
            Cause::Repo(_)
            | Cause::Diagnose(_)
            | Cause::Heal(_)
            | Cause::UnreadableEvent(_)
            | Cause::Panicked(_)
            | Cause::Output(_)
            | Cause::NoForge(_)
            | Cause::UnknownForgeRepo { .. }
            | Cause::UnknownJob(_)
            | Cause::GaveUp(_) => false,
        }
    }

    /// The cause with its sources, `a: b: c`.
    pub(crate) fn chain(&self) -> String {
        crate::worker::error_chain(self)
    }
}

//! The forge's one error type: what can go wrong between a proven patch and
//! a pull request a human can review (git, the forge's HTTP API, the local
//! records), named after the failure.
//!
//! Messages never carry a token: HTTP failures quote the status and the
//! service's own message, git failures the operation and libgit2's text.

use std::path::PathBuf;

/// A failure of a forge or upstream operation.
#[derive(Debug, thiserror::Error)]
pub enum ForgeError {
    /// The configuration or a proposal is unusable (bad key, bad name, …).
    #[error("invalid {what}: {reason}")]
    Invalid {
        /// What was invalid, e.g. `proposal` or `github app private key`.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// A git operation failed.
    #[error("git: {context}")]
    Git {
        /// What was being done, e.g. `pushing suture/inc-1-fix`.
        context: String,
        /// libgit2's error.
        #[source]
        source: git2::Error,
    },
    /// The proven patch does not apply to its base revision (it should:
    /// the sandbox applied it to the same revision).
    #[error("the patch does not apply to {base}")]
    PatchDoesNotApply {
        /// The base revision.
        base: String,
        /// libgit2's reason.
        #[source]
        source: git2::Error,
    },
    /// The patch changes nothing at its base revision.
    #[error("the patch changes nothing at {base}")]
    EmptyPatch {
        /// The base revision.
        base: String,
    },
    /// The remote refused the branch push (e.g. not a fast-forward, a
    /// protected branch).
    #[error("the push of {branch} was rejected: {reason}")]
    PushRejected {
        /// The branch.
        branch: String,
        /// The remote's reason.
        reason: String,
    },
    /// The service answered with an error that retrying cannot fix.
    #[error("{service} answered {status} to {operation}: {message}")]
    Status {
        /// `github`, `sentry`, `pagerduty`, or `git remote` for a fix-branch
        /// push.
        service: &'static str,
        /// What was being done, e.g. `create pull request`.
        operation: String,
        /// The HTTP status.
        status: u16,
        /// The service's message, when it sent one.
        message: String,
    },
    /// Transient failures (rate limits, 5xx, timeouts) outlasted the retry
    /// budget. The caller records it and retries the job later.
    #[error("gave up on {operation} after {attempts} attempts: {last}")]
    GaveUp {
        /// What was being done.
        operation: String,
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        last: String,
    },
    /// The service answered something that is not what its API documents.
    #[error("unexpected answer from {service} to {operation}: {reason}")]
    Protocol {
        /// The service.
        service: &'static str,
        /// What was being done.
        operation: String,
        /// What was wrong.
        reason: String,
    },
    /// Signing the GitHub App JWT failed.
    #[error("signing the github app jwt")]
    Jwt(#[source] octocrab::jsonwebtoken::errors::Error),
    /// Building the HTTP client failed.
    #[error("building the http client for {service}")]
    Client {
        /// The service.
        service: &'static str,
        /// octocrab's error.
        #[source]
        source: octocrab::Error,
    },
    /// No pull request or issue with that number (local forge).
    #[error("no {kind} #{number}")]
    NotFound {
        /// `pull request` or `issue`.
        kind: &'static str,
        /// The number asked for.
        number: u64,
    },
    /// The pull request is not in a state that allows the operation.
    #[error("pull request #{number} is {state}, it cannot be {action}")]
    WrongState {
        /// The number.
        number: u64,
        /// Its state.
        state: String,
        /// What was asked, e.g. `merged`.
        action: &'static str,
    },
    /// Merging the pull request into its base conflicts.
    #[error("merging pull request #{number} conflicts in {}", paths.join(", "))]
    MergeConflict {
        /// The number.
        number: u64,
        /// Conflicting paths.
        paths: Vec<String>,
    },
    /// The local forge's records file could not be read, written or
    /// locked.
    #[error("local pull request records at {}", path.display())]
    RecordsFile {
        /// The records file (or its lock file).
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The local forge's records document is unusable: not the expected
    /// JSON, or another version. Retrying cannot mend it.
    #[error("local pull request records are unusable: {reason}")]
    CorruptRecords {
        /// What is wrong with the document.
        reason: String,
    },
    /// The [`crate::RecordsBackend`] keeping the local forge's records
    /// failed (a backend in another crate builds it from its own error's
    /// text with [`ForgeError::records`]).
    #[error("local pull request records: {message}")]
    Records {
        /// What went wrong, without secrets (no connection strings).
        message: String,
    },
    /// A blocking task (git) panicked or was cancelled.
    #[error("the {what} task did not finish")]
    Task {
        /// What the task did.
        what: &'static str,
        /// tokio's error.
        #[source]
        source: tokio::task::JoinError,
    },
}

impl ForgeError {
    pub(crate) fn git(context: impl Into<String>) -> impl FnOnce(git2::Error) -> ForgeError {
        let context = context.into();
        move |source| ForgeError::Git { context, source }
    }

    /// A [`ForgeError::Records`] with `message`: for [`crate::RecordsBackend`]
    /// implementations reporting their own failures.
    pub fn records(message: impl Into<String>) -> ForgeError {
        ForgeError::Records {
            message: message.into(),
        }
    }

    /// Whether the failure may pass with time (rate limits, outages,
    /// timeouts, a network that failed a push), so the caller retries
    /// later, or is permanent (the forge refused the request, the patch or
    /// the credentials are wrong): then retrying only delays the record.
    /// The match is exhaustive so that a new variant is classified, not
    /// defaulted.
    pub fn is_transient(&self) -> bool {
        match self {
            ForgeError::Status { status, .. } => *status >= 500 || matches!(status, 408 | 429),
            ForgeError::Git { .. }
            | ForgeError::GaveUp { .. }
            | ForgeError::Client { .. }
            | ForgeError::RecordsFile { .. }
            | ForgeError::Records { .. }
            | ForgeError::Task { .. } => true,
            ForgeError::Invalid { .. }
            | ForgeError::PatchDoesNotApply { .. }
            | ForgeError::EmptyPatch { .. }
            | ForgeError::PushRejected { .. }
            | ForgeError::Protocol { .. }
            | ForgeError::NotFound { .. }
            | ForgeError::WrongState { .. }
            | ForgeError::MergeConflict { .. }
            | ForgeError::CorruptRecords { .. }
            | ForgeError::Jwt(_) => false,
        }
    }

    pub(crate) fn invalid(what: &'static str, reason: impl Into<String>) -> ForgeError {
        ForgeError::Invalid {
            what,
            reason: reason.into(),
        }
    }
}

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
    /// A git operation failed. Whether it may pass depends on libgit2's
    /// error (see [`ForgeError::is_transient`]).
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
    /// The file system failed around a git operation (a scratch
    /// repository, the local remote's directory).
    #[error("{context}")]
    Io {
        /// What was being done, e.g. `creating a scratch repository`.
        context: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
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
            ForgeError::Git { source, .. } => git_failure_is_transient(source),
            ForgeError::Io { .. }
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

    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> ForgeError {
        let context = context.into();
        move |source| ForgeError::Io { context, source }
    }

    pub(crate) fn invalid(what: &'static str, reason: impl Into<String>) -> ForgeError {
        ForgeError::Invalid {
            what,
            reason: reason.into(),
        }
    }
}

/// Whether a libgit2 failure may pass with time: the network (a refused or
/// broken connection, a timeout: forge's HTTP transport reports every
/// stream failure as a `Net` error), the file system (`Os`: a full disk),
/// a lock another process holds, a reference moved meanwhile. Anything
/// else is about the repositories or the request themselves and comes back
/// on every attempt: an object missing from the source (a shallow clone's
/// history), an invalid refspec or revision, refused credentials or
/// certificate, a non-fast-forward, a corrupt object.
fn git_failure_is_transient(error: &git2::Error) -> bool {
    use git2::{ErrorClass, ErrorCode};
    match error.code() {
        ErrorCode::Locked | ErrorCode::Modified | ErrorCode::Timeout | ErrorCode::Eof => true,
        ErrorCode::NotFound
        | ErrorCode::Auth
        | ErrorCode::Certificate
        | ErrorCode::NotFastForward
        | ErrorCode::InvalidSpec
        | ErrorCode::Invalid
        | ErrorCode::Exists
        | ErrorCode::Ambiguous
        | ErrorCode::BareRepo
        | ErrorCode::UnbornBranch
        | ErrorCode::Peel
        | ErrorCode::HashsumMismatch
        | ErrorCode::Owner => false,
        _ => matches!(
            error.class(),
            ErrorClass::Net
                | ErrorClass::Os
                | ErrorClass::Http
                | ErrorClass::Ssl
                | ErrorClass::Ssh
                | ErrorClass::Thread
        ),
    }
}

#[cfg(test)]
mod tests {
    use git2::{ErrorClass, ErrorCode};

    use super::ForgeError;

    fn git(code: ErrorCode, class: ErrorClass, message: &str) -> ForgeError {
        ForgeError::Git {
            context: "pushing suture/inc-1-fix".to_string(),
            source: git2::Error::new(code, class, message),
        }
    }

    /// What libgit2 reports for a source that cannot give what the push
    /// needs, a bad refspec, refused credentials or certificate and a
    /// non-fast-forward comes back on every attempt: permanent.
    #[test]
    fn git_failures_of_the_repositories_or_the_request_are_permanent() {
        for error in [
            git(
                ErrorCode::NotFound,
                ErrorClass::Odb,
                "object not found - no match for id (0123456789abcdef)",
            ),
            git(
                ErrorCode::InvalidSpec,
                ErrorClass::Invalid,
                "'refs/heads/a b' is not a valid refspec",
            ),
            git(ErrorCode::Auth, ErrorClass::Net, "authentication required"),
            git(
                ErrorCode::Certificate,
                ErrorClass::Net,
                "certificate not trusted",
            ),
            git(
                ErrorCode::NotFastForward,
                ErrorClass::Reference,
                "cannot push non-fastforwardable reference",
            ),
            git(
                ErrorCode::NotFound,
                ErrorClass::Repository,
                "could not find repository",
            ),
            git(
                ErrorCode::GenericError,
                ErrorClass::Object,
                "failed to parse commit",
            ),
            git(ErrorCode::GenericError, ErrorClass::None, "not a transport"),
        ] {
            assert!(!error.is_transient(), "{error:?}");
        }
    }

    /// The network failing (refused or broken connections, timeouts, an
    /// early end of the stream), the disk, a held lock: transient.
    #[test]
    fn git_failures_of_the_network_or_the_moment_are_transient() {
        for error in [
            git(
                ErrorCode::GenericError,
                ErrorClass::Net,
                "connection refused",
            ),
            git(
                ErrorCode::GenericError,
                ErrorClass::Net,
                "the remote did not answer within 120 s",
            ),
            git(ErrorCode::Timeout, ErrorClass::Net, "timed out"),
            git(ErrorCode::Eof, ErrorClass::Net, "early EOF"),
            git(
                ErrorCode::GenericError,
                ErrorClass::Os,
                "No space left on device",
            ),
            git(
                ErrorCode::Locked,
                ErrorClass::Reference,
                "the ref is locked",
            ),
            git(ErrorCode::Modified, ErrorClass::Reference, "the ref moved"),
        ] {
            assert!(error.is_transient(), "{error:?}");
        }
        let io = ForgeError::Io {
            context: "creating a scratch repository".to_string(),
            source: std::io::Error::other("disk full"),
        };
        assert!(io.is_transient());
    }

    /// A refusal by HTTP status: 5xx, 408 and 429 may pass, other 4xx not.
    #[test]
    fn statuses_split_at_the_server() {
        let status = |status| ForgeError::Status {
            service: "git remote",
            operation: "push suture/inc-1-fix".to_string(),
            status,
            message: String::new(),
        };
        for transient in [500, 502, 503, 408, 429] {
            assert!(status(transient).is_transient(), "{transient}");
        }
        for permanent in [400, 401, 403, 404, 422] {
            assert!(!status(permanent).is_transient(), "{permanent}");
        }
    }
}

//! Why the scope guard refused a patch: one variant per failure, each naming
//! the offending path, glob or count.
//!
//! The messages go into the incident timeline, into the pull request body and
//! back to the model that wrote the patch, so they name exactly what was
//! wrong. Paths and snippets come from attacker-influenced text, so messages
//! print them `{:?}`-escaped: a path can never smuggle a newline into a log
//! line or a prompt.

use serde::Serialize;

/// A patch (or a set of edits) the scope guard refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ScopeViolation {
    /// Not a unified diff we can read unambiguously: garbage, an empty patch,
    /// a truncated hunk, hunk line counts that do not match its header, or
    /// text git would read differently from us.
    #[error("malformed patch: {reason}")]
    Malformed {
        /// What is wrong, with the line number where it helps.
        reason: String,
    },
    /// The path leaves the work tree or could reach outside it: absolute,
    /// a `..`, `.` or empty component, a `.git` component, a NUL, backslash
    /// or control character, or a symlink anywhere on the way (including a
    /// symlink being the file patched).
    #[error(
        "path {path:?} leaves the work tree (absolute, `..`, `.git`, control characters or a symlink on the way)"
    )]
    OutsideRepository {
        /// The path as the patch names it.
        path: String,
    },
    /// The path matches a deny glob of the policy.
    #[error("path {path:?} is denied by scope glob {glob:?}")]
    Denied {
        /// Repository-relative path.
        path: String,
        /// The first deny glob it matches.
        glob: String,
    },
    /// The path matches none of the policy's allow globs.
    #[error("path {path:?} is outside the allowed scope globs")]
    NotAllowed {
        /// Repository-relative path.
        path: String,
    },
    /// The patch touches more files than the policy allows.
    #[error("patch touches {files} files, the limit is {max}")]
    TooManyFiles {
        /// Files the patch touches (a rename counts once).
        files: usize,
        /// The policy's limit.
        max: usize,
    },
    /// The patch adds and removes more lines than the policy allows.
    #[error("patch changes {lines} lines, the limit is {max}")]
    TooManyLines {
        /// Added plus removed lines.
        lines: usize,
        /// The policy's limit.
        max: usize,
    },
    /// A binary change (`GIT binary patch`, `Binary files … differ`) or an
    /// edit whose text contains a NUL byte or is not UTF-8.
    #[error("binary change to {path:?}")]
    Binary {
        /// The path of the binary file.
        path: String,
    },
    /// A file mode the guard refuses: symlinks (120000), submodules (160000),
    /// anything but 100644/100755, or 100755 on a file that is not already
    /// executable in the work tree.
    #[error("mode {mode} for {path:?} is not allowed (no symlinks, submodules or new executables)")]
    ModeChange {
        /// Repository-relative path.
        path: String,
        /// The mode the patch asks for, in git's octal notation.
        mode: String,
    },
    /// A well-formed, in-scope patch that does not fit the work tree: its
    /// context does not match, it creates a file that exists, it deletes
    /// only part of a file.
    #[error("patch does not apply: {reason}")]
    DoesNotApply {
        /// Which file and why.
        reason: String,
    },
    /// A search-and-replace edit whose search text is not found exactly once.
    #[error("{}", search_mismatch_message(path, *matches))]
    SearchMismatch {
        /// Repository-relative path of the edited file.
        path: String,
        /// How often the search text occurs (0 or 2 and more).
        matches: usize,
    },
    /// A search-and-replace edit of a file that does not exist.
    #[error("cannot edit {path:?}: no such file (an empty search creates a new file)")]
    NoSuchFile {
        /// Repository-relative path.
        path: String,
    },
    /// A file-creating edit (empty search) for a path that already exists.
    #[error("cannot create {path:?}: it already exists (give a search text to edit it)")]
    FileExists {
        /// Repository-relative path.
        path: String,
    },
    /// A policy glob that does not compile; a configuration error, found at
    /// startup by [`ScopePolicy::validate`](super::ScopePolicy::validate).
    #[error("invalid scope glob {glob:?}: {reason}")]
    InvalidPolicy {
        /// The glob as configured.
        glob: String,
        /// Why it does not compile.
        reason: String,
    },
}

impl ScopeViolation {
    /// A short stable name for reports, metrics labels and the `kind` field
    /// of the serialised form.
    pub fn kind(&self) -> &'static str {
        match self {
            ScopeViolation::Malformed { .. } => "malformed",
            ScopeViolation::OutsideRepository { .. } => "outside_repository",
            ScopeViolation::Denied { .. } => "denied",
            ScopeViolation::NotAllowed { .. } => "not_allowed",
            ScopeViolation::TooManyFiles { .. } => "too_many_files",
            ScopeViolation::TooManyLines { .. } => "too_many_lines",
            ScopeViolation::Binary { .. } => "binary",
            ScopeViolation::ModeChange { .. } => "mode_change",
            ScopeViolation::DoesNotApply { .. } => "does_not_apply",
            ScopeViolation::SearchMismatch { .. } => "search_mismatch",
            ScopeViolation::NoSuchFile { .. } => "no_such_file",
            ScopeViolation::FileExists { .. } => "file_exists",
            ScopeViolation::InvalidPolicy { .. } => "invalid_policy",
        }
    }

    pub(super) fn malformed(reason: impl Into<String>) -> ScopeViolation {
        ScopeViolation::Malformed {
            reason: reason.into(),
        }
    }

    pub(super) fn outside(path: &str) -> ScopeViolation {
        ScopeViolation::OutsideRepository {
            path: path.to_string(),
        }
    }

    pub(super) fn does_not_apply(reason: impl Into<String>) -> ScopeViolation {
        ScopeViolation::DoesNotApply {
            reason: reason.into(),
        }
    }
}

fn search_mismatch_message(path: &str, matches: usize) -> String {
    match matches {
        0 => format!("search text not found in {path:?}, it must occur exactly once"),
        n => format!("search text occurs {n} times in {path:?}, it must occur exactly once"),
    }
}

/// Shortens attacker-controlled text quoted in a message, so one enormous
/// line cannot flood a report.
pub(super) fn snippet(text: &str) -> String {
    const MAX_CHARS: usize = 60;
    match text.char_indices().nth(MAX_CHARS) {
        Some((cut, _)) => format!("{:?}…", &text[..cut]),
        None => format!("{text:?}"),
    }
}

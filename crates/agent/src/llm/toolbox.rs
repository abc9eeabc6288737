//! What the model may do: the [`Toolbox`] the fix ladder hands the agent
//! loop, and the shapes of a submission and its verdict.
//!
//! **Boundary:** the loop never touches a repository or runs a command. It
//! turns the model's tool calls into `Toolbox` calls and their text back into
//! messages; everything that reads code, runs tests or checks a patch lives
//! behind this trait, in the heal stage.

use serde::{Deserialize, Serialize};

/// The model's tools, implemented by the heal stage over a worktree and the
/// sandbox. Every method returns text for the model (failures as text too,
/// e.g. `error: no such file`), bounded in size by the implementation; the
/// loop caps it again. Methods block; the loop calls them through
/// `tokio::task::block_in_place`.
///
/// Not `Send`: the heal stage's toolbox borrows a git repository. The loop's
/// future is therefore driven where it was created (`block_on`), not
/// spawned.
pub trait Toolbox {
    /// Lines `start_line..=end_line` (1-based) of `path`, with line
    /// numbers; about 100 lines when no range is given.
    fn read_file(&mut self, path: &str, start_line: Option<u32>, end_line: Option<u32>) -> String;
    /// Entries of directory `path` (`.` is the repository root).
    fn list_dir(&mut self, path: &str) -> String;
    /// Lines matching regex `pattern`, in files matching `path_glob` if
    /// given; bounded output.
    fn search_code(&mut self, pattern: &str, path_glob: Option<&str>) -> String;
    /// Where symbol `name` (function, class, method) is defined.
    fn find_symbol(&mut self, name: &str) -> String;
    /// Message and diff of commit `rev`.
    fn show_commit(&mut self, rev: &str) -> String;
    /// Which commit last changed each of lines `start_line..=end_line`.
    fn blame(&mut self, path: &str, start_line: u32, end_line: u32) -> String;
    /// Runs the configured test command in the sandbox at the deployed
    /// revision, unpatched (it shows the failure to fix; a candidate is
    /// tested by `submit`), and returns the exit status and the output's tail.
    fn run_tests(&mut self) -> String;
    /// Checks a patch: scope guard, clean apply to a fresh copy, tests in
    /// the sandbox. Only [`SubmitVerdict::Proven`] ends an attempt as a fix.
    /// Offered in a fix attempt ([`AgentTask::Fix`](super::AgentTask::Fix)) only.
    fn submit(&mut self, patch: Submission) -> SubmitVerdict;
    /// Checks a reproduction test: the scope guard, then that the patch only
    /// creates test files or adds lines to them, then the reproduction gate
    /// (the test fails at the deployed revision with the production
    /// exception, raised in the crashing function). Only
    /// [`SubmitVerdict::Proven`] ends an attempt as a reproduction. Offered
    /// in a reproduction attempt ([`AgentTask::Reproduce`](super::AgentTask::Reproduce)) only.
    fn submit_test(&mut self, patch: Submission) -> SubmitVerdict;
}

/// A change the model proposes. Either form is accepted; the toolbox turns
/// edits into a diff and guards the diff that results.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "patch", rename_all = "snake_case")]
pub enum Submission {
    /// A unified diff against the repository root (`a/` and `b/` prefixes
    /// optional).
    UnifiedDiff(String),
    /// Search/replace edits, applied in order.
    Edits(Vec<EditRequest>),
}

/// Replace the text `search` in `path` by `replace`. The prompt asks for an
/// exact match that occurs once; how a search that matches nowhere or twice
/// is refused is the toolbox's call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EditRequest {
    /// Path relative to the repository root.
    pub path: String,
    /// Exact text to find, whitespace included.
    pub search: String,
    /// Text to put in its place.
    pub replace: String,
}

/// What became of a submission.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum SubmitVerdict {
    /// The patch passed every gate; the attempt ends with it.
    Proven {
        /// One line on what was proven, e.g. which tests passed, or how the
        /// test reproduced the error.
        summary: String,
    },
    /// Refused by the scope guard, did not apply, or the tests failed (a
    /// fix); or not test-only, or not failing the way production failed (a
    /// reproduction test).
    Rejected {
        /// Why, for the model to act on in its next round.
        feedback: String,
    },
}

//! Diagnosis: given an error event and the application's repository, which
//! recent commit most likely broke it, where, and why.
//!
//! The steps go from the evidence outward: frames → repository files
//! (`frames`), the window of recent commits and what each did to the frames'
//! lines, functions, classes and files (`evidence`), a score per commit
//! (`score`), then the functions most likely to hold the fault, on the stack
//! or not (`locations`). `report` is the JSON a program reads, `markdown`
//! the reply a person reads.

mod evidence;
mod frames;
pub mod locals;
mod locations;
mod markdown;
mod report;
mod score;
mod window;

use std::time::Instant;

use domain::event::Event;
use repo::git::{Repo, RepoError, Window};
use repo::index::{CodeIndex, IndexError};
use repo::pathmap::CodeMapping;

pub use report::{
    Diagnosis, EvidenceItem, EvidenceKind, FrameReport, Location, ReleaseRange, Suspect,
    WindowReport, WindowSource,
};
pub use score::CULPRIT_CONFIDENCE;
pub use window::release_commit;

/// How to read the window and map the frames.
#[derive(Debug, Clone)]
pub struct DiagnoseOptions {
    /// Window start as a revision (`--since`); wins over `days`.
    pub since: Option<String>,
    /// Window length in days before the event (`--days`).
    pub days: Option<u32>,
    /// Upper bound on commits read.
    pub max_commits: usize,
    /// Sentry-style code mappings, tried before suffix matching.
    pub code_mappings: Vec<CodeMapping>,
    /// Deployed revision override; else the event's release, else `HEAD`.
    pub revision: Option<String>,
    /// The deploy that brought the error, as the store knows it: the
    /// incident's first release and the project's release before it. When
    /// both name commits and the first descends from the other, the window
    /// is exactly the commits between them, whatever `days` says; `since`
    /// and `revision` win over it.
    pub deploy: Option<ReleaseRange>,
}

impl Default for DiagnoseOptions {
    fn default() -> DiagnoseOptions {
        DiagnoseOptions {
            since: None,
            days: None,
            max_commits: DEFAULT_MAX_COMMITS,
            code_mappings: Vec::new(),
            revision: None,
            deploy: None,
        }
    }
}

/// Days of history looked at when neither `since` nor `days` is given.
pub const DEFAULT_DAYS: u32 = 14;
/// Commits read at most, whatever the window says.
pub const DEFAULT_MAX_COMMITS: usize = 1_000;

/// Why a diagnosis could not be made at all. A diagnosis with no suspect is
/// not an error.
#[derive(Debug, thiserror::Error)]
pub enum DiagnoseError {
    /// The repository could not be read.
    #[error(transparent)]
    Repo(#[from] RepoError),
    /// The code index could not read a file.
    #[error(transparent)]
    Index(#[from] IndexError),
}

/// Diagnoses `event` against `repo`. `index` is reused across calls so a
/// long-running service parses each blob once.
pub fn diagnose(
    repo: &Repo,
    index: &mut CodeIndex,
    event: &Event,
    options: &DiagnoseOptions,
) -> Result<Diagnosis, DiagnoseError> {
    let started = Instant::now();
    let target = window::resolve(repo, event, options)?;
    let window = Window::read(repo, &target.spec)?;
    let tip_tree = repo
        .git()
        .find_commit(target.spec.tip)
        .and_then(|commit| commit.tree())
        .map_err(RepoError::from)?;
    let frames = frames::resolve(repo, index, &tip_tree, event, options)?;
    let evidence = evidence::collect(repo, index, &window, &frames)?;
    let ranking = score::rank(&window, &frames, &evidence, target.reference_time);
    let locations = locations::rank(repo, index, &window, &frames, &ranking, &tip_tree)?;
    let diagnosis = report::build(
        event, &target, &window, &frames, &evidence, ranking, locations, started,
    );
    // Event text and commit metadata may carry secrets; a diagnosis is
    // printed, stored and sent, so it leaves here redacted.
    Ok(crate::redact::Redactor::from_env().redact_all(diagnosis))
}

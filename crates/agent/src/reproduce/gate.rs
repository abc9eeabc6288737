//! The reproduction gate: does a run's report show the production error?
//!
//! A candidate reproduces the error when a test fails with the event's
//! exception type, raised in the event's crash function: the innermost
//! frame of the failure's traceback that is application code (in the
//! repository, not a test file, not a library) is the crash frame's
//! function in the crash frame's file. Anything else is refused with the
//! reason: a test that passes, one that cannot load (an import or syntax
//! error), one that fails with its own assertion or another exception, one
//! that fails somewhere else.

use super::record::ReproTest;
use super::runner::{CaseResult, CaseStatus, Failure, TestReport};
use super::test_paths::is_test_path;

/// What the production error looked like.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Expected {
    /// The exception type, unqualified (`TypeError`).
    pub(crate) exception_type: String,
    /// The crash frame's repository-relative file.
    pub(crate) path: String,
    /// The crash frame's function, unqualified (`update_headers`).
    pub(crate) function: String,
}

/// The gate's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Judgement {
    /// These tests fail as production did.
    Reproduces(Vec<ReproTest>),
    /// Why not.
    Refused(String),
}

/// Judges the tests of `report` — only those in `files` when given (a
/// new test file), else every test (the suite: other failures are the
/// suite's own and do not count against it).
pub(crate) fn judge(
    report: &TestReport,
    root: &str,
    files: Option<&[String]>,
    expected: &Expected,
) -> Judgement {
    if let Some(error) = report.errors.first() {
        return Judgement::Refused(format!("the tests do not load: {}", describe(error)));
    }
    let mut reproducing = Vec::new();
    let mut refusals = Vec::new();
    let mut considered = 0usize;
    for case in &report.cases {
        let file = case.file.as_deref().map(|f| relative(f, root));
        if let Some(files) = files
            && !in_files(case, root, files)
        {
            continue;
        }
        considered += 1;
        let failure = match &case.status {
            CaseStatus::Passed | CaseStatus::Skipped => continue,
            CaseStatus::Failed(failure) | CaseStatus::Errored(failure) => failure,
        };
        match matches(failure, root, expected) {
            Ok(()) => reproducing.push(ReproTest {
                file: file.clone(),
                name: case.id.clone(),
            }),
            Err(reason) => refusals.push(format!("{}: {reason}", case.id)),
        }
    }
    if files.is_some() {
        // A new test is judged whole: every failure must be the error.
        if let Some(reason) = refusals.into_iter().next() {
            return Judgement::Refused(reason);
        }
        if considered == 0 {
            return Judgement::Refused("the runner reported no test from the file".to_string());
        }
    }
    if reproducing.is_empty() {
        return Judgement::Refused(if considered == 0 {
            "the runner reported no test".to_string()
        } else {
            format!(
                "no test fails with {} raised in {}",
                expected.exception_type, expected.function
            )
        });
    }
    Judgement::Reproduces(reproducing)
}

/// Which tests of a report are the reproduction.
pub(crate) enum Selection<'a> {
    /// Those of these files (a new test).
    Files(&'a [String]),
    /// These, by id (tests of the suite).
    Ids(&'a [String]),
}

/// Whether every selected test of `report` passed (and there was one).
pub(crate) fn all_pass(
    report: &TestReport,
    root: &str,
    selection: &Selection<'_>,
) -> Result<(), String> {
    if let Some(error) = report.errors.first() {
        return Err(format!("the tests do not load: {}", describe(error)));
    }
    let mut ran = 0;
    for case in &report.cases {
        let selected = match selection {
            Selection::Files(files) => in_files(case, root, files),
            Selection::Ids(ids) => ids.contains(&case.id),
        };
        if !selected {
            continue;
        }
        ran += 1;
        match &case.status {
            CaseStatus::Passed => {}
            CaseStatus::Skipped => return Err(format!("{} was skipped", case.id)),
            CaseStatus::Failed(failure) | CaseStatus::Errored(failure) => {
                return Err(format!("{} fails: {}", case.id, describe(failure)));
            }
        }
    }
    if ran == 0 {
        return Err("the runner reported no test from the file".to_string());
    }
    Ok(())
}

/// Whether a test belongs to one of `files`: by the file the runner
/// names, else by its id (pytest ids start with the file's path).
fn in_files(case: &CaseResult, root: &str, files: &[String]) -> bool {
    let file = case.file.as_deref().map(|f| relative(f, root));
    files.iter().any(|wanted| {
        file.as_deref() == Some(wanted.as_str())
            || case
                .id
                .strip_prefix(wanted.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
    })
}

fn matches(failure: &Failure, root: &str, expected: &Expected) -> Result<(), String> {
    let raised = failure
        .exception_type
        .as_deref()
        .unwrap_or("an unknown error");
    if raised != expected.exception_type {
        return Err(format!(
            "fails with {raised}, not {}",
            expected.exception_type
        ));
    }
    let site = failure.frames.iter().rev().find_map(|frame| {
        let path = application_path(&frame.file, root)?;
        Some((path, frame.function.as_deref().unwrap_or_default()))
    });
    match site {
        None => Err(format!("{raised} is not raised in the application's code")),
        Some((path, function)) => {
            let function = unqualified(function);
            if path == expected.path && function == unqualified(&expected.function) {
                Ok(())
            } else {
                Err(format!(
                    "{raised} is raised in {function} ({path}), not in {} ({})",
                    expected.function, expected.path
                ))
            }
        }
    }
}

/// The repository-relative path of an application file, or `None` for a
/// library, the runtime, or a test file.
fn application_path(file: &str, root: &str) -> Option<String> {
    let file = file.strip_prefix("file://").unwrap_or(file);
    if file.starts_with("node:") || file.starts_with('<') {
        return None;
    }
    let library = [
        "/site-packages/",
        "/dist-packages/",
        "/node_modules/",
        "/lib/python",
    ];
    let path = relative(file, root);
    if path.starts_with('/') || library.iter().any(|l| file.contains(l)) || is_test_path(&path) {
        return None;
    }
    Some(path)
}

/// `file` relative to the worktree `root` when it is under it.
fn relative(file: &str, root: &str) -> String {
    let root = root.trim_end_matches('/');
    match file
        .strip_prefix(root)
        .and_then(|rest| rest.strip_prefix('/'))
    {
        Some(rest) => rest.to_string(),
        None => file.trim_start_matches("./").to_string(),
    }
}

fn unqualified(function: &str) -> &str {
    let function = function
        .trim_start_matches("async ")
        .trim_start_matches("new ");
    function.rsplit('.').next().unwrap_or(function)
}

fn describe(failure: &Failure) -> String {
    let message: String = failure.message.chars().take(300).collect();
    match &failure.exception_type {
        Some(ty) => format!("{ty}: {message}"),
        None => message,
    }
}

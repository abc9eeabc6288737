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
        if let Some(reason) = refusals.first() {
            return Judgement::Refused(reason.clone());
        }
        if considered == 0 {
            return Judgement::Refused("the runner reported no test from the file".to_string());
        }
    }
    if reproducing.is_empty() {
        let none = format!(
            "no test fails with {} raised in {}",
            expected.exception_type, expected.function
        );
        return Judgement::Refused(match (considered, refusals.first()) {
            (0, _) => "the runner reported no test".to_string(),
            (_, Some(first)) => format!("{none} ({first})"),
            (_, None) => none,
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
    // Outside the worktree is the runtime or an installed library; inside
    // it, a vendored one (a venv or node_modules in the checkout).
    let path = relative(file, root);
    let vendored = ["site-packages/", "dist-packages/", "node_modules/"];
    if path.starts_with('/')
        || path.split('/').any(|part| part == "..")
        || vendored.iter().any(|v| path.contains(v))
        || is_test_path(&path)
    {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reproduce::runner::TraceFrame;

    const ROOT: &str = "/tmp/wt";

    fn expected() -> Expected {
        Expected {
            exception_type: "TypeError".into(),
            path: "app/cart.py".into(),
            function: "total".into(),
        }
    }

    fn frame(file: &str, function: &str) -> TraceFrame {
        TraceFrame {
            file: file.into(),
            line: Some(3),
            function: Some(function.into()),
        }
    }

    fn failing(id: &str, file: &str, ty: &str, frames: Vec<TraceFrame>) -> CaseResult {
        CaseResult {
            id: id.into(),
            file: Some(file.into()),
            status: CaseStatus::Failed(Failure::capped(Some(ty.into()), "boom", frames)),
        }
    }

    fn report(cases: Vec<CaseResult>) -> TestReport {
        TestReport {
            cases,
            errors: Vec::new(),
        }
    }

    fn judged(cases: Vec<CaseResult>, files: Option<&[String]>) -> Judgement {
        judge(&report(cases), ROOT, files, &expected())
    }

    fn refusal(judgement: Judgement) -> String {
        match judgement {
            Judgement::Refused(reason) => reason,
            Judgement::Reproduces(tests) => panic!("accepted: {tests:?}"),
        }
    }

    fn crash_frames() -> Vec<TraceFrame> {
        vec![
            frame("/tmp/wt/tests/test_cart.py", "test_total"),
            frame("/tmp/wt/app/cart.py", "total"),
            frame("/usr/lib/python3.11/functools.py", "reduce"),
        ]
    }

    /// The innermost application frame is the crash function: library
    /// frames below it do not count.
    #[test]
    fn the_event_s_exception_in_the_crash_function_reproduces() {
        let files = ["tests/test_cart.py".to_string()];
        let judgement = judged(
            vec![failing(
                "tests/test_cart.py::test_total",
                "tests/test_cart.py",
                "TypeError",
                crash_frames(),
            )],
            Some(&files),
        );
        assert_eq!(
            judgement,
            Judgement::Reproduces(vec![ReproTest {
                file: Some("tests/test_cart.py".into()),
                name: "tests/test_cart.py::test_total".into(),
            }])
        );
    }

    #[test]
    fn another_exception_an_own_assertion_or_another_site_is_refused() {
        let case = |ty: &str, frames| failing("t", "tests/test_cart.py", ty, frames);
        assert_eq!(
            refusal(judged(vec![case("AssertionError", crash_frames())], None)),
            "no test fails with TypeError raised in total (t: fails with AssertionError, not TypeError)"
        );
        let in_test = vec![frame("/tmp/wt/tests/test_cart.py", "test_total")];
        assert_eq!(
            refusal(judged(
                vec![case("TypeError", in_test)],
                Some(&["tests/test_cart.py".into()])
            )),
            "t: TypeError is not raised in the application's code"
        );
        let elsewhere = vec![frame("/tmp/wt/app/other.py", "helper")];
        assert_eq!(
            refusal(judged(
                vec![case("TypeError", elsewhere)],
                Some(&["tests/test_cart.py".into()])
            )),
            "t: TypeError is raised in helper (app/other.py), not in total (app/cart.py)"
        );
    }

    /// A venv or node_modules inside the checkout is a library, not the
    /// application; a directory merely named like one is not.
    #[test]
    fn vendored_code_in_the_checkout_is_a_library() {
        let frames = vec![
            frame("/tmp/wt/app/cart.py", "total"),
            frame("/tmp/wt/.venv/lib/python3.11/site-packages/x/y.py", "f"),
        ];
        assert!(matches!(
            judged(vec![failing("t", "tests/t.py", "TypeError", frames)], None),
            Judgement::Reproduces(_)
        ));
        assert_eq!(
            application_path("/tmp/wt/lib/python_utils/cart.py", ROOT).as_deref(),
            Some("lib/python_utils/cart.py")
        );
        assert_eq!(
            application_path("/usr/lib/python3.11/json/decoder.py", ROOT),
            None
        );
        assert_eq!(application_path("/tmp/wt/../other/app.py", ROOT), None);
        assert_eq!(application_path("node:internal/x", ROOT), None);
    }

    /// A new test file is judged whole and on its own tests; the suite is
    /// judged by the tests that reproduce, its other failures aside.
    #[test]
    fn new_files_are_judged_whole_and_suites_by_their_reproducing_tests() {
        let own = ["tests/test_new.py".to_string()];
        let other = failing(
            "tests/test_old.py::t",
            "tests/test_old.py",
            "TypeError",
            crash_frames(),
        );
        assert_eq!(
            refusal(judged(vec![other.clone()], Some(&own))),
            "the runner reported no test from the file"
        );
        let unrelated = failing(
            "tests/test_env.py::t",
            "tests/test_env.py",
            "OSError",
            vec![],
        );
        assert!(matches!(
            judged(vec![unrelated.clone(), other], None),
            Judgement::Reproduces(tests) if tests.len() == 1
        ));
        let passing = CaseResult {
            id: "tests/test_new.py::ok".into(),
            file: None,
            status: CaseStatus::Passed,
        };
        assert_eq!(
            refusal(judged(vec![passing], Some(&own))),
            "no test fails with TypeError raised in total"
        );
    }

    #[test]
    fn tests_that_do_not_load_are_refused() {
        let mut broken = report(Vec::new());
        broken.errors.push(Failure::capped(
            Some("SyntaxError".into()),
            "bad",
            Vec::new(),
        ));
        assert_eq!(
            refusal(judge(&broken, ROOT, None, &expected())),
            "the tests do not load: SyntaxError: bad"
        );
    }

    #[test]
    fn all_pass_needs_every_selected_test_and_at_least_one() {
        let passed = |id: &str| CaseResult {
            id: id.into(),
            file: Some("tests/test_new.py".into()),
            status: CaseStatus::Passed,
        };
        let ids = ["a".to_string()];
        let report = report(vec![
            passed("a"),
            failing("b", "tests/x.py", "TypeError", vec![]),
        ]);
        assert_eq!(all_pass(&report, ROOT, &Selection::Ids(&ids)), Ok(()));
        let both = ["a".to_string(), "b".to_string()];
        assert!(all_pass(&report, ROOT, &Selection::Ids(&both)).is_err());
        let none = ["c".to_string()];
        assert!(all_pass(&report, ROOT, &Selection::Ids(&none)).is_err());
    }
}

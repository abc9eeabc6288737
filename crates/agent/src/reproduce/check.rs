//! Running a reproduction: a test patch and the runner that reports on it,
//! at any revision (the deployed one, the window's base, a bisect step) or
//! with a candidate fix applied.

use std::path::Path;

use repo::git2::Oid;
use repo::sandbox::{self, SandboxConfig};
use repo::scope::{self, ScopePolicy};
use repo::worktree::Worktree;
use serde::{Deserialize, Serialize};

use super::gate::{self, Expected, Judgement};
use super::record::ReproductionKind;
use super::runner::{Runner, TestReport, read_report};
use crate::heal::HealError;
use crate::heal::RunRecord;
use crate::heal::gates::Gates;
use crate::redact::Redactor;

/// Where the runner writes its report, relative to the worktree root.
pub(crate) const REPORT_FILE: &str = ".suture/report";

/// How a fix is checked against the reproduction. Saved with the
/// reproduction step, so the heal step that follows (perhaps in another
/// process) checks fixes against the same test.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ReproCheck {
    pub(crate) kind: ReproductionKind,
    pub(crate) runner: Runner,
    /// The new test file(s) as a patch (replay, llm); `None` for a test of
    /// the suite, which the suite run already covers.
    pub(crate) patch: Option<String>,
    /// The files the patch adds.
    pub(crate) files: Vec<String>,
    /// The reproducing tests of the suite, by id (existing).
    pub(crate) ids: Vec<String>,
    pub(crate) expected: Expected,
    /// Whether the reproduction passed at the window's base, when it ran
    /// there.
    pub(crate) base_good: Option<bool>,
}

impl ReproCheck {
    /// The command that runs the reproduction on its own.
    pub(crate) fn command(&self) -> Option<String> {
        self.patch.as_ref()?;
        Some(self.runner.command_for_files(&self.files, REPORT_FILE))
    }

    /// Adds the test (and what its runner needs) to the worktree at `root`.
    pub(crate) fn add_to(&self, root: &Path, policy: &ScopePolicy) -> Result<(), String> {
        let Some(patch) = &self.patch else {
            return Ok(());
        };
        let checked = scope::check(policy, root, patch).map_err(|v| v.to_string())?;
        scope::apply(root, &checked).map_err(|v| v.to_string())?;
        write_support_files(&self.runner, root).map_err(|e| e.to_string())
    }

    /// Runs the reproduction in a worktree that holds a fix: whether every
    /// test of it passes now. A test of the suite (`existing`) passed with
    /// the suite, which the caller ran first.
    pub(crate) fn run_with_fix(
        &self,
        sandbox_config: &SandboxConfig,
        root: &Path,
        redactor: &Redactor,
    ) -> Result<(Option<RunRecord>, bool), HealError> {
        let Some(command) = self.command() else {
            return Ok((None, true));
        };
        let (run, report) = run_and_read(sandbox_config, root, &command, &self.runner, redactor)?;
        let passed = report
            .map(|report| self.own_cases(report))
            .map_err(|e| e.to_string())
            .and_then(|report| gate::all_pass(&report, &root_text(root), &self.selection()))
            .is_ok();
        Ok((Some(run), passed))
    }

    /// Runs the reproduction at `revision` in a fresh worktree and judges
    /// it; refused when the test does not even apply there.
    pub(crate) fn run_at(
        &self,
        gates: &Gates<'_>,
        revision: Oid,
    ) -> Result<(Option<RunRecord>, Judgement), HealError> {
        Ok(match self.run_in_fresh_worktree(gates, revision)? {
            Ran::NotRun(reason) => (None, Judgement::Refused(reason)),
            Ran::Run { run, report, .. } => match report {
                Ok((report, root)) => {
                    let files = self.patch.as_ref().map(|_| self.files.as_slice());
                    (
                        Some(run),
                        gate::judge(&report, &root, files, &self.expected),
                    )
                }
                Err(error) => (
                    Some(run),
                    Judgement::Refused(format!("no test report: {error}")),
                ),
            },
        })
    }

    /// Whether every reproducing test passes at `revision` (a run at the
    /// window's base, or a bisect step): `Some(true)` passes, `Some(false)`
    /// fails as production did, `None` could not be judged (it does not
    /// load there, fails otherwise).
    pub(crate) fn verdict_at(
        &self,
        gates: &Gates<'_>,
        revision: Oid,
    ) -> Result<(Option<RunRecord>, Option<bool>), HealError> {
        let (run, report) = match self.run_in_fresh_worktree(gates, revision)? {
            Ran::NotRun(_) => return Ok((None, None)),
            Ran::Run { run, report } => (run, report),
        };
        let Ok((report, root)) = report else {
            return Ok((Some(run), None));
        };
        if gate::all_pass(&report, &root, &self.selection()).is_ok() {
            return Ok((Some(run), Some(true)));
        }
        let files = self.patch.as_ref().map(|_| self.files.as_slice());
        let reproduces = match gate::judge(&report, &root, files, &self.expected) {
            Judgement::Reproduces(tests) => {
                self.patch.is_some() || tests.iter().any(|t| self.ids.contains(&t.name))
            }
            Judgement::Refused(_) => false,
        };
        Ok((Some(run), reproduces.then_some(false)))
    }

    /// Adds the test to a fresh worktree of `revision` and runs it (a test
    /// of the suite: the suite, with a report).
    fn run_in_fresh_worktree(&self, gates: &Gates<'_>, revision: Oid) -> Result<Ran, HealError> {
        let worktree = Worktree::create(gates.repo, revision).map_err(HealError::Worktree)?;
        if let Err(reason) = self.add_to(worktree.path(), gates.policy) {
            return Ok(Ran::NotRun(format!("the test does not apply: {reason}")));
        }
        let suite = || self.runner.suite_command(gates.test_command, REPORT_FILE);
        let Some(command) = self.command().or_else(suite) else {
            return Ok(Ran::NotRun("the test command writes no report".to_string()));
        };
        let (run, report) = run_and_read(
            gates.sandbox,
            worktree.path(),
            &command,
            &self.runner,
            gates.redactor,
        )?;
        let root = root_text(worktree.path());
        Ok(Ran::Run {
            run,
            report: report.map(|report| (self.own_cases(report), root)),
        })
    }

    /// `report` of a run of the reproduction, with every case that names
    /// no file attributed to the one new test file, when there is one.
    /// node's JUnit reporter (Node 20) writes no `file` for a test case,
    /// and the reproduction's own command runs only its files: a case of
    /// that run can come from nowhere else.
    fn own_cases(&self, mut report: TestReport) -> TestReport {
        if let (Some(_), [file]) = (&self.patch, self.files.as_slice()) {
            for case in report.cases.iter_mut().filter(|case| case.file.is_none()) {
                case.file = Some(file.clone());
            }
        }
        report
    }

    /// Which tests of a report are the reproduction.
    fn selection(&self) -> gate::Selection<'_> {
        if self.patch.is_some() {
            gate::Selection::Files(&self.files)
        } else {
            gate::Selection::Ids(&self.ids)
        }
    }
}

/// What running a reproduction in a fresh worktree gave.
enum Ran {
    /// It could not run there, and why.
    NotRun(String),
    /// The run, and its report with the worktree's root (or why there is
    /// no report).
    Run {
        run: RunRecord,
        report: Result<(TestReport, String), String>,
    },
}

/// Runs `command` in `root` and reads the runner's report.
pub(crate) fn run_and_read(
    sandbox_config: &SandboxConfig,
    root: &Path,
    command: &str,
    runner: &Runner,
    redactor: &Redactor,
) -> Result<(RunRecord, Result<TestReport, String>), HealError> {
    write_support_files(runner, root)?;
    // A report left by an earlier run must not pass for this one's.
    let _ = std::fs::remove_file(root.join(REPORT_FILE));
    let outcome = sandbox::run(sandbox_config, root, command)?;
    let run = RunRecord::new(&outcome, redactor);
    let report = read_report(root, REPORT_FILE)
        .and_then(|bytes| runner.parse_report(&bytes))
        .map_err(|e| e.to_string());
    Ok((run, report))
}

fn write_support_files(runner: &Runner, root: &Path) -> Result<(), HealError> {
    let prepare = |what: &str| {
        let what = what.to_string();
        move |source| HealError::Prepare { what, source }
    };
    std::fs::create_dir_all(root.join(".suture")).map_err(prepare(".suture"))?;
    for (path, contents) in runner.support_files() {
        std::fs::write(root.join(path), contents).map_err(prepare(path))?;
    }
    Ok(())
}

pub(crate) fn root_text(root: &Path) -> String {
    root.to_string_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What Node 20's JUnit reporter writes for a failing test: no `file`.
    const NODE_20_REPORT: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<testsuites>
	<testcase name="code replays the production event" time="0.001549" classname="test" failure="number.padStart is not a function">
		<failure type="testCodeFailure" message="number.padStart is not a function">
Error [ERR_TEST_FAILURE]: number.padStart is not a function
    at AsyncResource.runInAsyncScope (node:async_hooks:206:9) {
  code: 'ERR_TEST_FAILURE',
  failureType: 'testCodeFailure',
  cause: TypeError [Error]: number.padStart is not a function
      at code (file:///w/lib.js:2:44)
      at TestContext.&lt;anonymous> (file:///w/test/lib_code_replay.test.js:3:30)
      at Test.runInAsyncScope (node:async_hooks:206:9)
      at Test.run (node:internal/test_runner/test:796:25)
}
		</failure>
	</testcase>
	<!-- tests 1 -->
</testsuites>
"#;

    fn check(files: &[&str]) -> ReproCheck {
        ReproCheck {
            kind: ReproductionKind::Replay,
            runner: Runner::NodeTest {
                node: "node".to_string(),
            },
            patch: Some("a new test file".to_string()),
            files: files.iter().map(|f| f.to_string()).collect(),
            ids: Vec::new(),
            expected: Expected {
                exception_type: "TypeError".to_string(),
                path: "lib.js".to_string(),
                function: "code".to_string(),
            },
            base_good: None,
        }
    }

    #[test]
    fn a_node_20_case_belongs_to_the_one_test_file_that_ran() {
        let check = check(&["test/lib_code_replay.test.js"]);
        let report = check
            .runner
            .parse_report(NODE_20_REPORT.as_bytes())
            .unwrap();
        assert_eq!(report.cases[0].file, None, "Node 20 names no file");
        let judged = gate::judge(
            &check.own_cases(report),
            "/w",
            Some(&check.files),
            &check.expected,
        );
        match judged {
            Judgement::Reproduces(tests) => assert_eq!(
                tests[0].file.as_deref(),
                Some("test/lib_code_replay.test.js")
            ),
            Judgement::Refused(reason) => panic!("refused: {reason}"),
        }
    }

    #[test]
    fn cases_of_several_files_are_not_guessed() {
        let check = check(&["test/a.test.js", "test/b.test.js"]);
        let report = check
            .runner
            .parse_report(NODE_20_REPORT.as_bytes())
            .unwrap();
        assert_eq!(check.own_cases(report).cases[0].file, None);
    }
}

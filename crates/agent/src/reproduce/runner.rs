//! The test runners the reproduction gate understands, and what it reads
//! from them: per test, passed or not, and for a failure the exception type
//! and the traceback frames.
//!
//! The gate never greps a runner's text output: each runner is asked for a
//! structured report (pytest's and node's JUnit XML, and for unittest a
//! small reporter shim writing JSON). A runner is recognised only from a
//! test command it fully understands — one simple command, no shell
//! operators — because a guessed command that runs the wrong tests, or none,
//! would let the gate judge the wrong thing. Anything else is `None` and the
//! caller does without a reproduction.
//!
//! Reports are written by the code under test, so they are hostile input:
//! read with [`read_report`] (no symlinks, capped), parsed without DTDs,
//! messages and frames capped.

use std::io::Read;
use std::path::{Component, Path};

use serde::Deserialize;

use super::junit;

/// The unittest reporter shim, written into the worktree before a run.
const UNITTEST_SHIM: &str = include_str!("unittest_report.py");
/// Where the shim goes, relative to the worktree root.
const UNITTEST_SHIM_PATH: &str = ".suture/unittest_report.py";
/// The largest report read; a bigger one is refused unparsed.
pub(crate) const MAX_REPORT_BYTES: u64 = 16 * 1024 * 1024;
/// The longest failure message kept, in bytes.
pub(crate) const MAX_MESSAGE_BYTES: usize = 4 * 1024;
/// The most traceback frames kept per failure (the innermost ones).
pub(crate) const MAX_FRAMES: usize = 200;
/// The largest `package.json` read while detecting `npm test`.
const MAX_MANIFEST_BYTES: u64 = 1024 * 1024;

/// A test runner the gate can read structured results from. Saved with
/// the reproduction step.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum Runner {
    /// pytest. `prefix` is the command up to and including the pytest
    /// invocation (`python -m pytest`, `/venv/bin/python -m pytest`,
    /// `pytest`, `py.test`), with any leading variable assignments.
    Pytest {
        /// Shell text, already quoted.
        prefix: String,
    },
    /// `python -m unittest …`, run through the reporter shim. `python` is
    /// the interpreter word(s): assignments, interpreter, its flags.
    Unittest {
        /// Shell text, already quoted.
        python: String,
    },
    /// `node --test …`, directly or as `npm test` whose `scripts.test` is
    /// one. `node` is the node word(s) up to (not including) `--test`.
    NodeTest {
        /// Shell text, already quoted.
        node: String,
    },
}

/// A runner's report on a run.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct TestReport {
    /// Every test the runner reported, in report order.
    pub(crate) cases: Vec<CaseResult>,
    /// Failures not tied to one test (a crash of the run, a class or module
    /// fixture that failed): the tests did not all load or run.
    pub(crate) errors: Vec<Failure>,
}

/// One test's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CaseResult {
    /// The test as its runner names it: pytest's node id
    /// (`tests/test_x.py::TestA::test_b`), unittest's test id
    /// (`tests.test_x.TestA.test_b`), node's suite names and test name
    /// joined with ` > `. A module that failed to load is named by its file
    /// (pytest, node) or by unittest's `_FailedTest` id.
    pub(crate) id: String,
    /// The test's file, as the runner reports it (repository-relative for
    /// pytest and the shim, absolute for node's file-level failures), when
    /// known.
    pub(crate) file: Option<String>,
    /// How it went.
    pub(crate) status: CaseStatus,
}

/// How a test went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CaseStatus {
    /// It passed.
    Passed,
    /// It was skipped (or failed as expected).
    Skipped,
    /// It failed: an assertion, or an exception the runner counts as a
    /// failure.
    Failed(Failure),
    /// It could not run to a verdict: an error outside the test body, a
    /// module that failed to import or compile.
    Errored(Failure),
}

/// What a failing test raised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    /// The exception's type, unqualified (`TypeError` for
    /// `builtins.TypeError` or node's `TypeError [Error]`); `None` when
    /// the report does not say (a thrown string, a runner timeout).
    pub(crate) exception_type: Option<String>,
    /// The exception's message, at most [`MAX_MESSAGE_BYTES`].
    pub(crate) message: String,
    /// Where it was raised, outermost first; at most [`MAX_FRAMES`], the
    /// innermost kept.
    pub(crate) frames: Vec<TraceFrame>,
}

/// One traceback frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TraceFrame {
    /// The file as the runner reports it (usually absolute; `node:…` and
    /// `<frozen …>` for the runtime's own).
    pub(crate) file: String,
    /// The 1-based line, when reported.
    pub(crate) line: Option<u32>,
    /// The function, when reported (`<module>` for module level in Python).
    pub(crate) function: Option<String>,
}

/// Why a report could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReportError {
    /// The run wrote no report (it crashed before, or never ran the runner).
    #[error("the run wrote no report")]
    Missing,
    /// Over [`MAX_REPORT_BYTES`].
    #[error("the report is over {MAX_REPORT_BYTES} bytes")]
    TooLarge,
    /// The report path is a symlink, or goes through one, or is not a file.
    #[error("the report is not a regular file in the worktree")]
    NotAFile,
    /// The report path is not a plain relative path.
    #[error("the report path {0:?} is not a plain relative path")]
    BadPath(String),
    /// Reading it failed.
    #[error("reading the report: {0}")]
    Read(#[from] std::io::Error),
    /// Not well-formed XML (DTDs are refused, so no entity expansion).
    #[error("the report is not well-formed XML: {0}")]
    Xml(#[from] roxmltree::Error),
    /// Well-formed XML, but not a JUnit report.
    #[error("the report is not a JUnit report: {0}")]
    NotJunit(&'static str),
    /// Not the unittest shim's JSON.
    #[error("the report is not the unittest reporter's JSON: {0}")]
    Json(#[from] serde_json::Error),
}

impl Failure {
    /// A failure with the caps applied: the one place they are.
    pub(crate) fn capped(
        exception_type: Option<String>,
        message: &str,
        mut frames: Vec<TraceFrame>,
    ) -> Failure {
        if frames.len() > MAX_FRAMES {
            frames.drain(..frames.len() - MAX_FRAMES);
        }
        Failure {
            exception_type: exception_type.map(|t| unqualified_type(&t)),
            message: truncate(message.trim(), MAX_MESSAGE_BYTES).to_string(),
            frames,
        }
    }
}

/// `TypeError` from `builtins.TypeError`, `TypeError [Error]`,
/// `AssertionError [ERR_ASSERTION]`.
fn unqualified_type(name: &str) -> String {
    let name = name.split(" [").next().unwrap_or(name).trim();
    name.rsplit('.').next().unwrap_or(name).to_string()
}

/// `text` cut to at most `max` bytes, on a character boundary.
fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

impl Runner {
    /// The runner of `test_command` (run with `root`, the worktree root, as
    /// working directory), or `None` when the command is not one simple
    /// invocation of a runner this module understands.
    pub(crate) fn detect(test_command: &str, root: &Path) -> Option<Runner> {
        let words = simple_command(test_command)?;
        let invocation = invocation(&words)?;
        match invocation.kind {
            Kind::Pytest => Some(Runner::Pytest {
                prefix: join(&words[..invocation.prefix_end]),
            }),
            Kind::Unittest => Some(Runner::Unittest {
                python: join(&words[..invocation.prefix_end]),
            }),
            Kind::Node => Some(Runner::NodeTest {
                node: join(&words[..invocation.prefix_end]),
            }),
            Kind::Npm => {
                let script = npm_test_script(root)?;
                let script_words = simple_command(script.trim())?;
                let inner = invocation_of_node(&script_words)?;
                Some(Runner::NodeTest {
                    node: join(&script_words[..inner]),
                })
            }
        }
    }

    /// Runs only `test_files` (repository-relative) and writes the report
    /// to `report_file` (relative to the worktree root, the working
    /// directory). Paths are relative or `$PWD`-based, so the command works
    /// where the worktree keeps its host path (bubblewrap) and where it does
    /// not (docker). With no files the runner's own selection runs.
    pub(crate) fn command_for_files(&self, test_files: &[String], report_file: &str) -> String {
        let files: String = test_files
            .iter()
            .map(|f| format!(" {}", quote(f)))
            .collect();
        let report = quote(report_file);
        match self {
            Runner::Pytest { prefix } => format!(
                "{prefix} -p no:cacheprovider --junitxml=\"$PWD\"/{report} --tb=native \
                 -o junit_family=xunit1 --{files}"
            ),
            Runner::Unittest { python } => {
                format!("{python} {UNITTEST_SHIM_PATH} {report}{files}")
            }
            Runner::NodeTest { node } => format!(
                "{}{node} --test --test-reporter=spec --test-reporter-destination=stdout \
                 --test-reporter=junit --test-reporter-destination={report} --{files}",
                make_parent(report_file)
            ),
        }
    }

    /// The user's whole `test_command`, made to also write the report to
    /// `report_file`; `None` when that cannot be done without changing what
    /// the command runs (it names its own report, or for unittest is not
    /// exactly one `<python> -m unittest …`). pytest and node take the
    /// report through their environment variables (`PYTEST_ADDOPTS`,
    /// `NODE_OPTIONS`), so the command itself runs unchanged; the worktree
    /// path must then hold no `"` or `\`, and pytest expands `$VAR` and `~`
    /// in the report path (suture's own paths have none).
    pub(crate) fn suite_command(&self, test_command: &str, report_file: &str) -> Option<String> {
        let words = simple_command(test_command)?;
        let invocation = invocation(&words)?;
        let report = double_quoted(&option_quoted(report_file));
        match (self, invocation.kind) {
            (Runner::Pytest { .. }, Kind::Pytest) => {
                let own_report = words[invocation.args_start..].iter().any(|w| {
                    w.value.starts_with("--junitxml") || w.value.starts_with("--junit-xml")
                });
                if own_report {
                    return None;
                }
                Some(format!(
                    "export PYTEST_ADDOPTS=\"${{PYTEST_ADDOPTS:+$PYTEST_ADDOPTS }}\
                     --junitxml=\\\"$PWD/{report}\\\" --tb=native -o junit_family=xunit1\"; \
                     {test_command}"
                ))
            }
            (Runner::NodeTest { .. }, Kind::Node | Kind::Npm) => Some(format!(
                "{}export NODE_OPTIONS=\"${{NODE_OPTIONS:+$NODE_OPTIONS }}\
                 --test-reporter=spec --test-reporter-destination=stdout \
                 --test-reporter=junit --test-reporter-destination=\\\"{report}\\\"\"; \
                 {test_command}",
                make_parent(report_file)
            )),
            (Runner::Unittest { .. }, Kind::Unittest) => {
                let args = &words[invocation.args_start..];
                if args.iter().any(|w| w.expands) {
                    return None;
                }
                Some(format!(
                    "{} {UNITTEST_SHIM_PATH} {}{}",
                    join(&words[..invocation.prefix_end]),
                    quote(report_file),
                    args.iter()
                        .map(|w| format!(" {}", quote(&w.value)))
                        .collect::<String>()
                ))
            }
            _ => None,
        }
    }

    /// Files the commands need in the worktree besides the tests:
    /// (repository-relative path, contents).
    pub(crate) fn support_files(&self) -> Vec<(&'static str, &'static str)> {
        match self {
            Runner::Unittest { .. } => vec![(UNITTEST_SHIM_PATH, UNITTEST_SHIM)],
            Runner::Pytest { .. } | Runner::NodeTest { .. } => Vec::new(),
        }
    }

    /// Reads a report this runner's commands wrote.
    pub(crate) fn parse_report(&self, bytes: &[u8]) -> Result<TestReport, ReportError> {
        if bytes.len() as u64 > MAX_REPORT_BYTES {
            return Err(ReportError::TooLarge);
        }
        let text = String::from_utf8_lossy(bytes);
        match self {
            Runner::Pytest { .. } => junit::parse(&text, junit::Flavor::Pytest),
            Runner::NodeTest { .. } => junit::parse(&text, junit::Flavor::Node),
            Runner::Unittest { .. } => parse_shim_report(&text),
        }
    }
}

/// The report at `report_file` under `worktree`, read without following
/// a symlink anywhere on the way and without reading past the cap: the
/// code under test could have replaced it (or its directory) with a link
/// to a file outside the worktree, or with a huge file.
pub(crate) fn read_report(worktree: &Path, report_file: &str) -> Result<Vec<u8>, ReportError> {
    let relative = Path::new(report_file);
    let plain = relative
        .components()
        .all(|c| matches!(c, Component::Normal(_)));
    if report_file.is_empty() || !plain {
        return Err(ReportError::BadPath(report_file.to_string()));
    }
    let mut path = worktree.to_path_buf();
    let count = relative.components().count();
    for (index, component) in relative.components().enumerate() {
        path.push(component);
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(ReportError::Missing),
            Err(e) => return Err(e.into()),
        };
        let last = index + 1 == count;
        let expected = if last { meta.is_file() } else { meta.is_dir() };
        if !expected {
            return Err(ReportError::NotAFile);
        }
        if last && meta.len() > MAX_REPORT_BYTES {
            return Err(ReportError::TooLarge);
        }
    }
    let mut bytes = Vec::new();
    std::fs::File::open(&path)?
        .take(MAX_REPORT_BYTES + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_REPORT_BYTES {
        return Err(ReportError::TooLarge);
    }
    Ok(bytes)
}

/// The unittest shim's report (see `unittest_report.py`).
#[derive(Deserialize)]
struct ShimReport {
    tests: Vec<ShimTest>,
    #[serde(default)]
    errors: Vec<ShimError>,
}

#[derive(Deserialize)]
struct ShimTest {
    id: String,
    file: Option<String>,
    status: ShimStatus,
    failure: Option<ShimFailure>,
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum ShimStatus {
    Passed,
    Skipped,
    Failed,
    Errored,
}

#[derive(Deserialize)]
struct ShimError {
    failure: Option<ShimFailure>,
}

#[derive(Deserialize)]
struct ShimFailure {
    #[serde(rename = "type")]
    exception_type: Option<String>,
    #[serde(default)]
    message: String,
    #[serde(default)]
    frames: Vec<ShimFrame>,
}

#[derive(Deserialize)]
struct ShimFrame {
    file: String,
    line: Option<u32>,
    function: Option<String>,
}

impl ShimFailure {
    fn into_failure(self) -> Failure {
        let frames = self
            .frames
            .into_iter()
            .map(|f| TraceFrame {
                file: f.file,
                line: f.line,
                function: f.function,
            })
            .collect();
        Failure::capped(self.exception_type, &self.message, frames)
    }
}

fn parse_shim_report(text: &str) -> Result<TestReport, ReportError> {
    let report: ShimReport = serde_json::from_str(text)?;
    let unknown = || Failure::capped(None, "", Vec::new());
    let cases = report
        .tests
        .into_iter()
        .map(|test| {
            let failure = || test.failure.map_or_else(unknown, ShimFailure::into_failure);
            let status = match test.status {
                ShimStatus::Passed => CaseStatus::Passed,
                ShimStatus::Skipped => CaseStatus::Skipped,
                ShimStatus::Failed => CaseStatus::Failed(failure()),
                ShimStatus::Errored => CaseStatus::Errored(failure()),
            };
            CaseResult {
                id: test.id,
                file: test.file,
                status,
            }
        })
        .collect();
    let errors = report
        .errors
        .into_iter()
        .map(|e| e.failure.map_or_else(unknown, ShimFailure::into_failure))
        .collect();
    Ok(TestReport { cases, errors })
}

/// One word of a simple shell command: its value, and whether the shell
/// would expand it (an unquoted glob or leading tilde), so it cannot be
/// passed on re-quoted.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Word {
    value: String,
    expands: bool,
}

/// The words of `command` when it is one simple command: plain words,
/// single- and double-quoted strings without expansions. `None` for
/// anything else (operators, redirections, substitutions, escapes,
/// comments), which this module does not try to understand.
fn simple_command(command: &str) -> Option<Vec<Word>> {
    let mut words = Vec::new();
    let mut chars = command.chars().peekable();
    loop {
        while chars.next_if(|c| *c == ' ' || *c == '\t').is_some() {}
        let Some(&first) = chars.peek() else {
            break;
        };
        if first == '#' {
            return None;
        }
        let mut word = Word {
            value: String::new(),
            expands: first == '~',
        };
        while let Some(&c) = chars.peek() {
            match c {
                ' ' | '\t' => break,
                '\'' => {
                    chars.next();
                    loop {
                        match chars.next()? {
                            '\'' => break,
                            c => word.value.push(c),
                        }
                    }
                }
                '"' => {
                    chars.next();
                    loop {
                        match chars.next()? {
                            '"' => break,
                            '$' | '`' | '\\' | '!' => return None,
                            c => word.value.push(c),
                        }
                    }
                }
                '*' | '?' | '[' | ']' | '{' | '}' => {
                    word.expands = true;
                    word.value.push(c);
                    chars.next();
                }
                c if c.is_alphanumeric() || "-_./=:+,@%^~".contains(c) => {
                    word.value.push(c);
                    chars.next();
                }
                _ => return None,
            }
        }
        words.push(word);
    }
    (!words.is_empty()).then_some(words)
}

/// What a command invokes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Pytest,
    Unittest,
    Node,
    Npm,
}

/// A recognised invocation of a runner.
struct Invocation {
    kind: Kind,
    /// Words `..prefix_end` invoke the runner: assignments, program,
    /// interpreter flags, and `-m pytest` for pytest (for unittest the
    /// interpreter words end before `-m`, for node before `--test`).
    prefix_end: usize,
    /// Words `args_start..` are the runner's arguments.
    args_start: usize,
}

fn invocation(words: &[Word]) -> Option<Invocation> {
    let found = runner_words(words)?;
    // The prefix is passed on re-quoted, which would change a word the
    // shell expands.
    let expands = words[..found.prefix_end].iter().any(|w| w.expands);
    (!expands).then_some(found)
}

fn runner_words(words: &[Word]) -> Option<Invocation> {
    let program_at = words.iter().take_while(|w| is_assignment(&w.value)).count();
    let program = words.get(program_at)?;
    if program.expands {
        return None;
    }
    let name = program.value.rsplit('/').next().unwrap_or_default();
    match name {
        "pytest" | "py.test" => Some(Invocation {
            kind: Kind::Pytest,
            prefix_end: program_at + 1,
            args_start: program_at + 1,
        }),
        "node" | "nodejs" => invocation_of_node(words).map(|test_at| Invocation {
            kind: Kind::Node,
            prefix_end: test_at,
            args_start: test_at + 1,
        }),
        "npm" => is_npm_test(&words[program_at + 1..]).then_some(Invocation {
            kind: Kind::Npm,
            prefix_end: words.len(),
            args_start: words.len(),
        }),
        _ if is_python(name) => {
            let flags = words[program_at + 1..]
                .iter()
                .take_while(|w| is_python_flag(&w.value))
                .count();
            let m = program_at + 1 + flags;
            if words.get(m)?.value != "-m" {
                return None;
            }
            let kind = match words.get(m + 1)?.value.as_str() {
                "pytest" => Kind::Pytest,
                "unittest" => Kind::Unittest,
                _ => return None,
            };
            Some(Invocation {
                kind,
                prefix_end: if kind == Kind::Pytest { m + 2 } else { m },
                args_start: m + 2,
            })
        }
        _ => None,
    }
}

/// The end of the node words (before `--test`) when `words` is
/// `[assignments] node [node options] --test [args]` with no reporter of
/// its own.
fn invocation_of_node(words: &[Word]) -> Option<usize> {
    let program_at = words.iter().take_while(|w| is_assignment(&w.value)).count();
    let name = words.get(program_at)?.value.rsplit('/').next()?;
    if !matches!(name, "node" | "nodejs") || words[program_at].expands {
        return None;
    }
    if words.iter().any(|w| w.value.starts_with("--test-reporter")) {
        return None;
    }
    let mut index = program_at + 1;
    while let Some(word) = words.get(index) {
        let value = word.value.as_str();
        if value == "--test" {
            return Some(index);
        }
        if word.expands || !value.starts_with('-') || value == "--" {
            // A script (node runs it, not the test runner) or `--`.
            return None;
        }
        // Options whose value is the next word.
        index += if matches!(
            value,
            "--import" | "--require" | "-r" | "--loader" | "--experimental-loader"
        ) {
            2
        } else {
            1
        };
    }
    None
}

/// `npm test`, `npm t`, `npm run test`, with npm's own flags only.
fn is_npm_test(args: &[Word]) -> bool {
    let mut positional = args.iter().filter(|w| !w.value.starts_with('-'));
    let script_named = match positional.next().map(|w| w.value.as_str()) {
        Some("test" | "t" | "tst") => positional.next().is_none(),
        Some("run" | "run-script") => {
            positional.next().is_some_and(|w| w.value == "test") && positional.next().is_none()
        }
        _ => false,
    };
    // `--` passes arguments to the script: the files could not be chosen.
    script_named && !args.iter().any(|w| w.value == "--" || w.expands)
}

/// `scripts.test` of `root/package.json`, when there is no `pretest` (a
/// build step the per-file command would skip).
fn npm_test_script(root: &Path) -> Option<String> {
    let file = std::fs::File::open(root.join("package.json")).ok()?;
    let mut text = String::new();
    file.take(MAX_MANIFEST_BYTES)
        .read_to_string(&mut text)
        .ok()?;
    let manifest: serde_json::Value = serde_json::from_str(&text).ok()?;
    let scripts = manifest.get("scripts")?;
    if scripts.get("pretest").is_some() {
        return None;
    }
    scripts.get("test")?.as_str().map(str::to_string)
}

fn is_assignment(word: &str) -> bool {
    let Some((name, _)) = word.split_once('=') else {
        return false;
    };
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `python`, `python3`, `python3.12`.
fn is_python(name: &str) -> bool {
    name.strip_prefix("python")
        .is_some_and(|version| version.chars().all(|c| c.is_ascii_digit() || c == '.'))
}

/// Interpreter flags that take no value (`-B`, `-u`, `-bb`, …).
fn is_python_flag(word: &str) -> bool {
    word.strip_prefix('-')
        .is_some_and(|flags| !flags.is_empty() && flags.chars().all(|c| "BbdEIOPqsSuv".contains(c)))
}

/// Words re-joined as shell text (assignments keep their name bare).
fn join(words: &[Word]) -> String {
    words
        .iter()
        .map(|w| match w.value.split_once('=') {
            Some((name, value)) if is_assignment(&w.value) => format!("{name}={}", quote(value)),
            _ => quote(&w.value),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `mkdir -p` of the report's directory, for node's reporter, which does
/// not make it (pytest and the shim do).
fn make_parent(report_file: &str) -> String {
    match Path::new(report_file).parent().and_then(Path::to_str) {
        Some(parent) if !parent.is_empty() => format!("mkdir -p -- {} && ", quote(parent)),
        _ => String::new(),
    }
}

/// `text` as one shell word: bare when it is plainly safe, else in single
/// quotes.
pub(crate) fn quote(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:+,@%=".contains(c))
        && !text.starts_with('=');
    if plain {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

/// `text` for inside a double-quoted value of `PYTEST_ADDOPTS` (split by
/// Python's `shlex`) or `NODE_OPTIONS` (split by node): both take `\"` and
/// `\\` inside double quotes.
fn option_quoted(text: &str) -> String {
    text.replace('\\', r"\\").replace('"', "\\\"")
}

/// `text` for inside a shell double-quoted string.
fn double_quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '\\' | '"' | '$' | '`') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pytest(prefix: &str) -> Option<Runner> {
        Some(Runner::Pytest {
            prefix: prefix.to_string(),
        })
    }

    fn unittest(python: &str) -> Option<Runner> {
        Some(Runner::Unittest {
            python: python.to_string(),
        })
    }

    fn node(node: &str) -> Option<Runner> {
        Some(Runner::NodeTest {
            node: node.to_string(),
        })
    }

    fn project(package_json: Option<&str>) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("temp dir");
        if let Some(manifest) = package_json {
            std::fs::write(dir.path().join("package.json"), manifest).expect("package.json");
        }
        dir
    }

    #[test]
    fn detect_recognises_only_commands_it_understands() {
        let plain = project(None);
        let cases: &[(&str, Option<Runner>)] = &[
            ("pytest", pytest("pytest")),
            ("py.test -q", pytest("py.test")),
            ("python -m pytest", pytest("python -m pytest")),
            (
                "python3 -B -m pytest -x tests",
                pytest("python3 -B -m pytest"),
            ),
            (
                "/abs/venv/bin/python -m pytest -p no:cacheprovider -q tests/test_sessions.py --deselect x",
                pytest("/abs/venv/bin/python -m pytest"),
            ),
            (".venv/bin/pytest tests", pytest(".venv/bin/pytest")),
            (
                "'/opt/my venv/bin/pytest'",
                pytest("'/opt/my venv/bin/pytest'"),
            ),
            ("PYTHONPATH=src pytest -q", pytest("PYTHONPATH=src pytest")),
            ("FOO='a b' pytest", pytest("FOO='a b' pytest")),
            (
                "python3 -m unittest discover -s tests -t . -q",
                unittest("python3"),
            ),
            ("python3.12 -m unittest", unittest("python3.12")),
            ("node --test", node("node")),
            ("node --test test/", node("node")),
            ("node --import tsx --test", node("node --import tsx")),
            // Not understood, so not guessed.
            ("make test", None),
            ("cargo test", None),
            ("cd sub && pytest", None),
            ("pytest; rm -rf /", None),
            ("pytest | tee log", None),
            ("pytest > out.txt", None),
            ("pytest $(cat args)", None),
            ("pytest \"$ARGS\"", None),
            ("pytest `x`", None),
            ("pytest tests\\x", None),
            ("pytest # comment", None),
            ("python -m pip test", None),
            ("python -mpytest", None),
            ("python -W error -m pytest", None),
            ("python script.py", None),
            ("tox", None),
            ("uv run pytest", None),
            ("~/venv/bin/pytest", None),
            ("node test.js", None),
            ("node script.js --test", None),
            ("node --test --test-reporter=dot", None),
            ("npm test", None), // no package.json
            ("'unterminated", None),
            ("", None),
            ("pytest\nrm -rf /", None),
        ];
        for (command, expected) in cases {
            assert_eq!(
                &Runner::detect(command, plain.path()),
                expected,
                "detect({command:?})"
            );
        }
    }

    #[test]
    fn npm_test_is_node_test_only_when_its_script_is() {
        let script = |s: &str| format!(r#"{{"scripts": {{"test": {}}}}}"#, serde_json::json!(s));
        let cases: &[(&str, &str, Option<Runner>)] = &[
            ("npm test --silent", &script("node --test"), node("node")),
            ("npm test", &script("node --test test/"), node("node")),
            ("npm run test", &script("node --test"), node("node")),
            (
                "npm t -s",
                &script("NODE_ENV=test node --test"),
                node("NODE_ENV=test node"),
            ),
            ("npm test", &script("jest"), None),
            ("npm test", &script("node --test && eslint ."), None),
            ("npm test", &script("node --test --test-reporter=tap"), None),
            ("npm test -- test/a.test.js", &script("node --test"), None),
            ("npm run lint", &script("node --test"), None),
            ("npm install", &script("node --test"), None),
            (
                "npm test",
                r#"{"scripts": {"test": "node --test", "pretest": "tsc"}}"#,
                None,
            ),
            ("npm test", r#"{"scripts": {}}"#, None),
            ("npm test", "not json", None),
        ];
        for (command, manifest, expected) in cases {
            let dir = project(Some(manifest));
            assert_eq!(
                &Runner::detect(command, dir.path()),
                expected,
                "detect({command:?}) with {manifest}"
            );
        }
    }

    #[test]
    fn commands_for_files_quote_every_path() {
        let files = [
            "tests/test_a.py".to_string(),
            "tests/it's $(touch pwned) `x`.py".to_string(),
            "-rf.py".to_string(),
        ];
        let report = ".suture/report.xml";
        assert_eq!(
            pytest("/v/bin/python -m pytest")
                .expect("runner")
                .command_for_files(&files, report),
            "/v/bin/python -m pytest -p no:cacheprovider --junitxml=\"$PWD\"/.suture/report.xml \
             --tb=native -o junit_family=xunit1 -- tests/test_a.py \
             'tests/it'\\''s $(touch pwned) `x`.py' -rf.py"
        );
        assert_eq!(
            unittest("python3")
                .expect("runner")
                .command_for_files(&files[..1], "r'.json"),
            "python3 .suture/unittest_report.py 'r'\\''.json' tests/test_a.py"
        );
        assert_eq!(
            node("node")
                .expect("runner")
                .command_for_files(&files[..1], report),
            "mkdir -p -- .suture && node --test --test-reporter=spec \
             --test-reporter-destination=stdout --test-reporter=junit \
             --test-reporter-destination=.suture/report.xml -- tests/test_a.py"
        );
    }

    /// What `sh` makes of a command's words: the quoting is checked by the
    /// shell itself, not by reading the string.
    #[allow(
        clippy::disallowed_methods,
        reason = "the real shell checks the quoting; the sandbox is not under test"
    )]
    fn shell_words(command: &str) -> Vec<String> {
        let output = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("set -- {command}; printf '%s\\0' \"$@\""))
            .output()
            .expect("running sh");
        assert!(output.status.success(), "sh failed on {command:?}");
        String::from_utf8(output.stdout)
            .expect("utf-8")
            .split_terminator('\0')
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn hostile_file_names_reach_the_runner_as_one_argument_each() {
        let files = [
            "it's $(touch pwned) `x` \"q\" \\ ; & | * ~ \n.py".to_string(),
            "--junitxml=/etc/x".to_string(),
        ];
        for runner in [pytest("pytest"), unittest("python"), node("node")] {
            let runner = runner.expect("runner");
            let command = runner.command_for_files(&files, "r.xml");
            let words = shell_words(&command);
            assert_eq!(words[words.len() - 2..], files, "{command}");
        }
    }

    #[test]
    fn suite_commands_add_the_report_to_the_users_command() {
        let dir = project(Some(r#"{"scripts": {"test": "node --test"}}"#));
        let report = ".suture/report.xml";
        let suite = |command: &str| {
            Runner::detect(command, dir.path())
                .and_then(|runner| runner.suite_command(command, report))
        };
        assert_eq!(
            suite("/abs/venv/bin/python -m pytest -p no:cacheprovider -q tests/test_sessions.py --deselect x").as_deref(),
            Some(
                "export PYTEST_ADDOPTS=\"${PYTEST_ADDOPTS:+$PYTEST_ADDOPTS }\
                 --junitxml=\\\"$PWD/.suture/report.xml\\\" --tb=native -o junit_family=xunit1\"; \
                 /abs/venv/bin/python -m pytest -p no:cacheprovider -q tests/test_sessions.py --deselect x"
            )
        );
        assert_eq!(
            suite("npm test --silent").as_deref(),
            Some(
                "mkdir -p -- .suture && export NODE_OPTIONS=\"${NODE_OPTIONS:+$NODE_OPTIONS }\
                 --test-reporter=spec --test-reporter-destination=stdout \
                 --test-reporter=junit --test-reporter-destination=\\\".suture/report.xml\\\"\"; \
                 npm test --silent"
            )
        );
        assert_eq!(
            suite("python -m unittest discover -s tests -t . -q").as_deref(),
            Some("python .suture/unittest_report.py .suture/report.xml discover -s tests -t . -q")
        );
        assert_eq!(
            suite("python3 -m unittest 'tests/test a.py'").as_deref(),
            Some("python3 .suture/unittest_report.py .suture/report.xml 'tests/test a.py'")
        );
        // Its own report would replace ours; a glob would not survive
        // re-quoting; another runner's command is not this runner's.
        assert_eq!(suite("pytest --junitxml=out.xml"), None);
        assert_eq!(suite("python -m unittest tests/test_*.py"), None);
        assert_eq!(
            unittest("python")
                .expect("runner")
                .suite_command("pytest", report),
            None
        );
        assert_eq!(
            pytest("pytest")
                .expect("runner")
                .suite_command("make test", report),
            None
        );
    }

    #[test]
    fn only_unittest_needs_a_support_file() {
        let shim = unittest("python").expect("runner").support_files();
        assert_eq!(shim.len(), 1);
        assert_eq!(shim[0].0, ".suture/unittest_report.py");
        assert!(
            shim[0]
                .1
                .contains("class Recorder(unittest.TextTestResult)")
        );
        assert!(pytest("pytest").expect("runner").support_files().is_empty());
        assert!(node("node").expect("runner").support_files().is_empty());
    }

    #[test]
    fn read_report_refuses_links_escapes_and_huge_files() {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path();
        std::fs::create_dir(root.join(".suture")).expect("mkdir");
        assert!(matches!(
            read_report(root, ".suture/r.xml"),
            Err(ReportError::Missing)
        ));
        std::fs::write(root.join(".suture/r.xml"), "<testsuites/>").expect("write");
        assert_eq!(
            read_report(root, ".suture/r.xml").expect("read"),
            b"<testsuites/>"
        );

        let outside = tempfile::tempdir().expect("temp dir");
        std::fs::write(outside.path().join("secret"), "secret").expect("write");
        std::os::unix::fs::symlink(outside.path().join("secret"), root.join(".suture/link.xml"))
            .expect("symlink");
        assert!(matches!(
            read_report(root, ".suture/link.xml"),
            Err(ReportError::NotAFile)
        ));
        std::os::unix::fs::symlink(outside.path(), root.join("linked")).expect("symlink");
        assert!(matches!(
            read_report(root, "linked/secret"),
            Err(ReportError::NotAFile)
        ));
        assert!(matches!(
            read_report(root, ".suture"),
            Err(ReportError::NotAFile)
        ));
        for bad in ["../secret", "/etc/passwd", "", "./x"] {
            assert!(
                matches!(read_report(root, bad), Err(ReportError::BadPath(_))),
                "{bad}"
            );
        }

        let huge = std::fs::File::create(root.join("huge.xml")).expect("create");
        huge.set_len(MAX_REPORT_BYTES + 1).expect("sparse file");
        assert!(matches!(
            read_report(root, "huge.xml"),
            Err(ReportError::TooLarge)
        ));
        let runner = pytest("pytest").expect("runner");
        let too_many = vec![b' '; MAX_REPORT_BYTES as usize + 1];
        assert!(matches!(
            runner.parse_report(&too_many),
            Err(ReportError::TooLarge)
        ));
    }

    #[test]
    fn shim_reports_that_are_not_its_json_are_errors() {
        let runner = unittest("python").expect("runner");
        for bad in [
            &b"not json"[..],
            b"{}",
            b"{\"tests\": [{\"id\": 1}]}",
            b"[[[[[[[[[[[[",
        ] {
            assert!(matches!(
                runner.parse_report(bad),
                Err(ReportError::Json(_))
            ));
        }
        let deep = "[".repeat(100_000);
        assert!(matches!(
            runner.parse_report(deep.as_bytes()),
            Err(ReportError::Json(_))
        ));
    }

    #[test]
    fn shim_report_failures_are_capped() {
        let frames: Vec<_> = (0..300)
            .map(|i| serde_json::json!({"file": "a.py", "line": i, "function": format!("f{i}")}))
            .collect();
        let report = serde_json::json!({
            "version": 1,
            "tests": [{"id": "t", "file": null, "status": "errored", "failure": {
                "type": "builtins.TypeError", "message": "é".repeat(5000), "frames": frames}}],
            "errors": [{"id": "<run>", "failure": null}],
        });
        let report = unittest("python")
            .expect("runner")
            .parse_report(report.to_string().as_bytes())
            .expect("parses");
        let CaseStatus::Errored(failure) = &report.cases[0].status else {
            panic!("not errored: {report:?}");
        };
        assert_eq!(failure.exception_type.as_deref(), Some("TypeError"));
        assert!(failure.message.len() <= MAX_MESSAGE_BYTES && failure.message.len() > 4000);
        assert_eq!(failure.frames.len(), MAX_FRAMES);
        assert_eq!(failure.frames[0].function.as_deref(), Some("f100"));
        assert_eq!(failure.frames[199].function.as_deref(), Some("f299"));
        assert_eq!(report.errors.len(), 1);
    }

    // --- The real runners, on small projects -------------------------

    /// The interpreter with pytest: the test command's venv
    /// (`SUTURE_TEST_PYTHON`), else the venv `scripts/test` builds.
    fn test_python() -> String {
        let python = std::env::var("SUTURE_TEST_PYTHON").unwrap_or_else(|_| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../target/test-venv/bin/python")
                .display()
                .to_string()
        });
        assert!(
            Path::new(&python).exists(),
            "no Python with pytest at {python}: run scripts/test, or set SUTURE_TEST_PYTHON"
        );
        python
    }

    /// Runs `command` with `sh -c` in `root` (as the sandbox would) and
    /// returns the parsed report.
    #[allow(
        clippy::disallowed_methods,
        reason = "the real runners write the reports under test; the sandbox is not under test"
    )]
    fn run(runner: &Runner, root: &Path, command: &str, report: &str) -> TestReport {
        for (path, contents) in runner.support_files() {
            let path = root.join(path);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(path, contents).expect("support file");
        }
        let output = std::process::Command::new("sh")
            .arg("-c")
            .arg(command)
            .current_dir(root)
            .env_remove("PYTEST_ADDOPTS")
            .env_remove("NODE_OPTIONS")
            .output()
            .expect("running sh");
        let bytes = read_report(root, report).unwrap_or_else(|e| {
            panic!(
                "{command}: {e}\nstdout: {}\nstderr: {}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            )
        });
        runner.parse_report(&bytes).expect("report parses")
    }

    fn write(root: &Path, files: &[(&str, &str)]) {
        for (path, contents) in files {
            let path = root.join(path);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(path, contents).expect("write");
        }
    }

    const PY_MODULES: &[(&str, &str)] = &[
        ("pkg/__init__.py", ""),
        (
            "pkg/calc.py",
            "def outer(x):\n    return inner(x)\n\n\ndef inner(x):\n    return x + 1\n\n\n\
             def chained():\n    try:\n        {}['k']\n    except KeyError:\n        \
             raise ValueError('bad value')\n",
        ),
        ("pkg/broken.py", "def f(:\n    pass\n"),
        ("tests/__init__.py", ""),
    ];

    fn case<'a>(report: &'a TestReport, id: &str) -> &'a CaseResult {
        report
            .cases
            .iter()
            .find(|c| c.id == id)
            .unwrap_or_else(|| panic!("no case {id} in {report:#?}"))
    }

    fn failure(case: &CaseResult) -> &Failure {
        match &case.status {
            CaseStatus::Failed(f) | CaseStatus::Errored(f) => f,
            other => panic!("{} did not fail: {other:?}", case.id),
        }
    }

    /// The innermost frames as (file name, function), innermost last.
    fn innermost(failure: &Failure, count: usize) -> Vec<(String, String)> {
        let frames = &failure.frames[failure.frames.len().saturating_sub(count)..];
        frames
            .iter()
            .map(|f| {
                let name = f.file.rsplit('/').next().unwrap_or_default().to_string();
                (name, f.function.clone().unwrap_or_default())
            })
            .collect()
    }

    fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
        expected
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn real_pytest_reports_each_kind_of_failure() {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path();
        write(root, PY_MODULES);
        write(
            root,
            &[
                (
                    "tests/test_calc.py",
                    "from pkg.calc import outer, chained\n\n\
                     def test_pass():\n    assert outer(1) == 2\n\n\
                     def test_type_error():\n    outer('a')\n\n\
                     def test_assert():\n    assert outer(1) == 3\n\n\
                     def test_chained():\n    chained()\n\n\
                     class TestGroup:\n    def test_in_class(self):\n        pass\n",
                ),
                (
                    "tests/test_importerr.py",
                    "import no_such_module_xyz\n\ndef test_x():\n    pass\n",
                ),
                (
                    "tests/test_syntax.py",
                    "from pkg import broken\n\ndef test_x():\n    pass\n",
                ),
            ],
        );
        let python = quote(&test_python());
        let command = format!("{python} -m pytest -q tests");
        let runner = Runner::detect(&command, root).expect("pytest detected");
        let report_file = ".suture/report.xml";
        let files = vec!["tests/test_calc.py".to_string()];
        let report = run(
            &runner,
            root,
            &runner.command_for_files(&files, report_file),
            report_file,
        );
        assert!(report.errors.is_empty(), "{report:#?}");
        assert_eq!(report.cases.len(), 5, "{report:#?}");

        let passed = case(&report, "tests/test_calc.py::test_pass");
        assert_eq!(passed.status, CaseStatus::Passed);
        assert_eq!(passed.file.as_deref(), Some("tests/test_calc.py"));
        assert_eq!(
            case(&report, "tests/test_calc.py::TestGroup::test_in_class").status,
            CaseStatus::Passed
        );

        let type_error = case(&report, "tests/test_calc.py::test_type_error");
        assert!(matches!(type_error.status, CaseStatus::Failed(_)));
        let type_error = failure(type_error);
        assert_eq!(type_error.exception_type.as_deref(), Some("TypeError"));
        assert!(
            type_error.message.starts_with("can only concatenate str"),
            "{type_error:?}"
        );
        assert_eq!(
            innermost(type_error, 3),
            pairs(&[
                ("test_calc.py", "test_type_error"),
                ("calc.py", "outer"),
                ("calc.py", "inner")
            ])
        );
        assert_eq!(type_error.frames.last().and_then(|f| f.line), Some(6));

        let assertion = failure(case(&report, "tests/test_calc.py::test_assert"));
        assert_eq!(assertion.exception_type.as_deref(), Some("AssertionError"));
        assert_eq!(
            innermost(assertion, 1),
            pairs(&[("test_calc.py", "test_assert")])
        );

        let chained = failure(case(&report, "tests/test_calc.py::test_chained"));
        assert_eq!(chained.exception_type.as_deref(), Some("ValueError"));
        assert_eq!(chained.message, "bad value");
        assert_eq!(
            innermost(chained, 2),
            pairs(&[("test_calc.py", "test_chained"), ("calc.py", "chained")])
        );
        assert_eq!(chained.frames.last().and_then(|f| f.line), Some(13));

        // A module that does not import stops pytest before any test runs:
        // the whole suite reports only the modules.
        let suite_command = runner
            .suite_command(&command, report_file)
            .expect("suite command");
        let report = run(&runner, root, &suite_command, report_file);
        assert!(report.errors.is_empty(), "{report:#?}");
        assert_eq!(report.cases.len(), 2, "{report:#?}");
        let import = case(&report, "tests/test_importerr.py");
        assert!(
            matches!(import.status, CaseStatus::Errored(_)),
            "{import:?}"
        );
        assert_eq!(import.file.as_deref(), Some("tests/test_importerr.py"));
        let import = failure(import);
        assert_eq!(
            import.exception_type.as_deref(),
            Some("ModuleNotFoundError")
        );
        assert_eq!(
            innermost(import, 1),
            pairs(&[("test_importerr.py", "<module>")])
        );

        let syntax = case(&report, "tests/test_syntax.py");
        assert!(
            matches!(syntax.status, CaseStatus::Errored(_)),
            "{syntax:?}"
        );
        let syntax = failure(syntax);
        assert_eq!(syntax.exception_type.as_deref(), Some("SyntaxError"));
        assert_eq!(
            innermost(syntax, 1),
            pairs(&[("test_syntax.py", "<module>")])
        );
    }

    #[test]
    fn real_unittest_through_the_shim_reports_each_kind_of_failure() {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path();
        write(root, PY_MODULES);
        write(
            root,
            &[
                (
                    "tests/test_calc.py",
                    "import unittest\nfrom pkg.calc import outer, chained\n\n\n\
                     class CalcTest(unittest.TestCase):\n    \
                     def test_pass(self):\n        self.assertEqual(outer(1), 2)\n\n    \
                     def test_type_error(self):\n        outer('a')\n\n    \
                     def test_assert(self):\n        self.assertEqual(outer(1), 3)\n\n    \
                     def test_chained(self):\n        chained()\n\n    \
                     @unittest.skip('not today')\n    def test_skipped(self):\n        pass\n",
                ),
                (
                    "tests/test_importerr.py",
                    "import unittest\nimport no_such_module_xyz\n\n\n\
                     class T(unittest.TestCase):\n    def test_x(self):\n        pass\n",
                ),
                (
                    "tests/test_syntax.py",
                    "import unittest\nfrom pkg import broken\n\n\n\
                     class T(unittest.TestCase):\n    def test_x(self):\n        pass\n",
                ),
            ],
        );
        let python = quote(&test_python());
        let command = format!("{python} -m unittest discover -s tests -t . -q");
        let runner = Runner::detect(&command, root).expect("unittest detected");
        let report_file = ".suture/report.json";
        let suite_command = runner
            .suite_command(&command, report_file)
            .expect("suite command");
        let report = run(&runner, root, &suite_command, report_file);
        assert!(report.errors.is_empty(), "{report:#?}");
        assert_eq!(report.cases.len(), 7, "{report:#?}");

        let passed = case(&report, "tests.test_calc.CalcTest.test_pass");
        assert_eq!(passed.status, CaseStatus::Passed);
        assert_eq!(passed.file.as_deref(), Some("tests/test_calc.py"));
        assert_eq!(
            case(&report, "tests.test_calc.CalcTest.test_skipped").status,
            CaseStatus::Skipped
        );

        let type_error = case(&report, "tests.test_calc.CalcTest.test_type_error");
        assert!(matches!(type_error.status, CaseStatus::Errored(_)));
        let type_error = failure(type_error);
        assert_eq!(type_error.exception_type.as_deref(), Some("TypeError"));
        assert_eq!(
            innermost(type_error, 3),
            pairs(&[
                ("test_calc.py", "test_type_error"),
                ("calc.py", "outer"),
                ("calc.py", "inner")
            ])
        );
        assert_eq!(type_error.frames.last().and_then(|f| f.line), Some(6));

        let assertion = case(&report, "tests.test_calc.CalcTest.test_assert");
        assert!(matches!(assertion.status, CaseStatus::Failed(_)));
        let assertion = failure(assertion);
        assert_eq!(assertion.exception_type.as_deref(), Some("AssertionError"));
        assert_eq!(assertion.message, "2 != 3");

        let chained = failure(case(&report, "tests.test_calc.CalcTest.test_chained"));
        assert_eq!(chained.exception_type.as_deref(), Some("ValueError"));
        assert_eq!(innermost(chained, 1), pairs(&[("calc.py", "chained")]));

        let import = case(&report, "unittest.loader._FailedTest.tests.test_importerr");
        assert!(
            matches!(import.status, CaseStatus::Errored(_)),
            "{import:?}"
        );
        assert_eq!(import.file.as_deref(), Some("tests/test_importerr.py"));
        let import = failure(import);
        assert_eq!(
            import.exception_type.as_deref(),
            Some("ModuleNotFoundError")
        );
        assert_eq!(
            innermost(import, 1),
            pairs(&[("test_importerr.py", "<module>")])
        );

        let syntax = failure(case(
            &report,
            "unittest.loader._FailedTest.tests.test_syntax",
        ));
        assert_eq!(syntax.exception_type.as_deref(), Some("SyntaxError"));
        assert_eq!(
            innermost(syntax, 1),
            pairs(&[("test_syntax.py", "<module>")])
        );

        // Only the given files, by path.
        let files = vec!["tests/test_calc.py".to_string()];
        let report = run(
            &runner,
            root,
            &runner.command_for_files(&files, report_file),
            report_file,
        );
        assert_eq!(report.cases.len(), 5, "{report:#?}");
        assert!(
            report
                .cases
                .iter()
                .all(|c| c.id.starts_with("tests.test_calc."))
        );
    }

    #[test]
    fn real_unittest_crash_is_still_reported() {
        // A module that does not even compile, named on the command line:
        // unittest's loader lets the SyntaxError escape and the run dies.
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path();
        write(root, PY_MODULES);
        write(
            root,
            &[("tests/test_syntax.py", "from pkg import broken\n")],
        );
        let runner = Runner::Unittest {
            python: quote(&test_python()),
        };
        let files = vec!["tests/test_syntax.py".to_string()];
        let report = run(
            &runner,
            root,
            &runner.command_for_files(&files, "r.json"),
            "r.json",
        );
        assert!(report.cases.is_empty());
        let [crash] = &report.errors[..] else {
            panic!("{report:#?}");
        };
        assert_eq!(crash.exception_type.as_deref(), Some("SyntaxError"));
        assert_eq!(
            innermost(crash, 1),
            pairs(&[("test_syntax.py", "<module>")])
        );
    }

    #[test]
    fn real_unittest_reports_subtests_and_fixture_errors() {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path();
        write(
            root,
            &[
                (
                    "tests/test_sub.py",
                    "import unittest\n\n\nclass Sub(unittest.TestCase):\n    \
                     def test_values(self):\n        for i in range(3):\n            \
                     with self.subTest(i=i):\n                self.assertNotEqual(i, 1)\n\n    \
                     @unittest.expectedFailure\n    def test_known(self):\n        \
                     self.assertEqual(1, 2)\n",
                ),
                (
                    "tests/test_fixture.py",
                    "import unittest\n\n\nclass Broken(unittest.TestCase):\n    \
                     @classmethod\n    def setUpClass(cls):\n        raise OSError('no db')\n\n    \
                     def test_x(self):\n        pass\n",
                ),
            ],
        );
        let runner = Runner::Unittest {
            python: quote(&test_python()),
        };
        let files = vec![
            "tests/test_sub.py".to_string(),
            "tests/test_fixture.py".to_string(),
        ];
        let report = run(
            &runner,
            root,
            &runner.command_for_files(&files, "r.json"),
            "r.json",
        );
        let subtest = case(&report, "tests.test_sub.Sub.test_values (i=1)");
        assert!(
            matches!(subtest.status, CaseStatus::Failed(_)),
            "{subtest:?}"
        );
        assert_eq!(
            failure(subtest).exception_type.as_deref(),
            Some("AssertionError")
        );
        assert_eq!(
            case(&report, "tests.test_sub.Sub.test_known").status,
            CaseStatus::Skipped
        );
        let [fixture] = &report.errors[..] else {
            panic!("{report:#?}");
        };
        assert_eq!(fixture.exception_type.as_deref(), Some("OSError"));
        assert_eq!(fixture.message, "no db");
        assert_eq!(report.cases.len(), 2, "{report:#?}");
    }

    #[allow(
        clippy::disallowed_methods,
        reason = "checks node is there before the node tests run it"
    )]
    fn require_node() {
        let found = std::process::Command::new("node").arg("--version").output();
        assert!(
            found.is_ok_and(|o| o.status.success()),
            "node (20 or later) must be on PATH for the node test runner tests"
        );
    }

    #[test]
    fn real_node_test_reports_each_kind_of_failure() {
        require_node();
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path();
        write(
            root,
            &[
                (
                    "package.json",
                    r#"{"name": "x", "version": "1.0.0", "scripts": {"test": "node --test"}}"#,
                ),
                (
                    "src/calc.js",
                    "function inner(x) {\n  return x.toUpperCase();\n}\nfunction outer(x) {\n  return inner(x);\n}\n\
                     function chained() {\n  try {\n    JSON.parse('{');\n  } catch (e) {\n    \
                     throw new RangeError('bad value', { cause: e });\n  }\n}\n\
                     module.exports = { outer, chained };\n",
                ),
                ("src/broken.js", "function f( {\n"),
                (
                    "test/calc.test.js",
                    "const { describe, it } = require('node:test');\nconst assert = require('node:assert');\n\
                     const { outer, chained } = require('../src/calc');\n\
                     describe('calc', () => {\n\
                     it('passes', () => { assert.strictEqual(outer('a'), 'A'); });\n\
                     it('type error', () => { outer(1); });\n\
                     it('assertion', () => { assert.strictEqual(outer('a'), 'B'); });\n\
                     it('chained', () => { chained(); });\n\
                     it('throws a string', () => { throw 'str'; });\n\
                     it.skip('skipped', () => {});\n});\n",
                ),
                ("test/importerr.test.js", "require('no-such-module-xyz');\n"),
                ("test/syntax.test.js", "require('../src/broken');\n"),
            ],
        );
        let command = "npm test --silent";
        let runner = Runner::detect(command, root).expect("node test detected");
        assert_eq!(
            runner,
            Runner::NodeTest {
                node: "node".to_string()
            }
        );
        let report_file = ".suture/report.xml";
        let suite_command = runner
            .suite_command(command, report_file)
            .expect("suite command");
        let by_suite = run(&runner, root, &suite_command, report_file);
        let files: Vec<String> = [
            "test/calc.test.js",
            "test/importerr.test.js",
            "test/syntax.test.js",
        ]
        .map(String::from)
        .to_vec();
        let by_files = run(
            &runner,
            root,
            &runner.command_for_files(&files, report_file),
            report_file,
        );
        assert_eq!(by_files, by_suite, "the two commands report the same");
        let report = by_files;
        assert!(report.errors.is_empty(), "{report:#?}");
        assert_eq!(report.cases.len(), 8, "{report:#?}");

        assert_eq!(case(&report, "calc > passes").status, CaseStatus::Passed);
        assert_eq!(case(&report, "calc > skipped").status, CaseStatus::Skipped);

        let type_error = case(&report, "calc > type error");
        assert!(matches!(type_error.status, CaseStatus::Failed(_)));
        let type_error = failure(type_error);
        assert_eq!(type_error.exception_type.as_deref(), Some("TypeError"));
        assert_eq!(type_error.message, "x.toUpperCase is not a function");
        let inner = type_error.frames.last().expect("frames");
        assert!(inner.file.ends_with("/src/calc.js"), "{inner:?}");
        assert_eq!(
            (inner.line, inner.function.as_deref()),
            (Some(2), Some("inner"))
        );
        assert_eq!(
            innermost(type_error, 2),
            pairs(&[("calc.js", "outer"), ("calc.js", "inner")])
        );

        let assertion = failure(case(&report, "calc > assertion"));
        assert_eq!(assertion.exception_type.as_deref(), Some("AssertionError"));
        assert!(
            assertion
                .message
                .starts_with("Expected values to be strictly equal:")
        );
        assert!(
            innermost(assertion, 1)[0].0 == "calc.test.js",
            "{assertion:?}"
        );

        let chained = failure(case(&report, "calc > chained"));
        assert_eq!(chained.exception_type.as_deref(), Some("RangeError"));
        assert_eq!(chained.message, "bad value");
        assert_eq!(innermost(chained, 1), pairs(&[("calc.js", "chained")]));

        let thrown = failure(case(&report, "calc > throws a string"));
        assert_eq!(
            (thrown.exception_type.as_deref(), thrown.message.as_str()),
            (None, "str")
        );
        assert!(thrown.frames.is_empty());

        for file in ["importerr.test.js", "syntax.test.js"] {
            let failed = report
                .cases
                .iter()
                .find(|c| c.id.ends_with(&format!("/test/{file}")))
                .unwrap_or_else(|| panic!("no case for {file}: {report:#?}"));
            assert!(
                matches!(failed.status, CaseStatus::Errored(_)),
                "{failed:?}"
            );
            assert_eq!(failed.file.as_deref(), Some(failed.id.as_str()));
            // node's junit reporter says only that the file failed.
            assert_eq!(failure(failed).exception_type, None);
        }
    }

    #[test]
    fn real_runners_take_a_hostile_report_path() {
        require_node();
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path();
        write(
            root,
            &[
                ("tests/test_a.py", "def test_a():\n    pass\n"),
                ("test/a.test.js", "require('node:test')('a', () => {});\n"),
                (
                    "package.json",
                    r#"{"scripts": {"test": "node --test test/"}}"#,
                ),
            ],
        );
        // (pytest itself expands `$VAR` and `~` in the path.)
        let report_file = "it's \"q\" `x` \\ a.xml";
        let python = quote(&test_python());
        let command = format!("{python} -m pytest -p no:cacheprovider tests");
        let runner = Runner::detect(&command, root).expect("pytest");
        let suite = runner
            .suite_command(&command, report_file)
            .expect("suite command");
        assert_eq!(run(&runner, root, &suite, report_file).cases.len(), 1);
        let files = vec!["tests/test_a.py".to_string()];
        let report = run(
            &runner,
            root,
            &runner.command_for_files(&files, report_file),
            report_file,
        );
        assert_eq!(report.cases[0].id, "tests/test_a.py::test_a");

        let runner = Runner::detect("npm test", root).expect("node");
        let suite = runner
            .suite_command("npm test", report_file)
            .expect("suite command");
        assert_eq!(run(&runner, root, &suite, report_file).cases.len(), 1);
    }
}

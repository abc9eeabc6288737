//! Reading a test runner's JUnit XML report: which tests failed, with which
//! exception, raised where. The reproduction gate judges a test by this
//! report, never by grepping the runner's text output.
//!
//! Two writers, two dialects. pytest (run with `--tb=native` and
//! `junit_family=xunit1`) puts a native Python traceback in a failure's
//! text, or for a module that failed to import its own `path:N: in f` /
//! `E   Type: message` format, in a test case with an empty `classname`.
//! node's junit reporter puts `util.inspect` of its wrapper error, whose
//! `cause:` is the error the test threw, with V8's `at f (file:L:C)` lines,
//! innermost first; a test file that failed to load is one test case named
//! after the file, with no detail.
//!
//! The XML comes from the code under test: roxmltree refuses DTDs (so no
//! entity expansion), the node count is capped, and the walk over it is
//! iterative.

use std::sync::LazyLock;

use regex::Regex;
use roxmltree::{Document, Node, ParsingOptions};

use super::runner::{CaseResult, CaseStatus, Failure, ReportError, TestReport, TraceFrame};

/// Whose JUnit XML it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavor {
    /// pytest's `--junitxml`.
    Pytest,
    /// node's `--test-reporter=junit`.
    Node,
}

/// The most XML nodes parsed: far above any real report, and it bounds the
/// memory a hostile one can take.
const MAX_NODES: u32 = 1 << 20;
/// The most enclosing suites named in a node test's id.
const MAX_SUITE_DEPTH: usize = 32;

/// Parses a JUnit XML report written by `flavor`'s runner.
pub(crate) fn parse(text: &str, flavor: Flavor) -> Result<TestReport, ReportError> {
    let options = ParsingOptions {
        allow_dtd: false,
        nodes_limit: MAX_NODES,
        ..ParsingOptions::default()
    };
    let document = Document::parse_with_options(text, options)?;
    let root = document.root_element();
    if !matches!(root.tag_name().name(), "testsuites" | "testsuite") {
        return Err(ReportError::NotJunit(
            "the root is not <testsuites> or <testsuite>",
        ));
    }
    let mut report = TestReport::default();
    for node in root.descendants().filter(|n| n.is_element()) {
        match node.tag_name().name() {
            "testcase" => report.cases.push(match flavor {
                Flavor::Pytest => pytest_case(node),
                Flavor::Node => node_case(node),
            }),
            // An error of a suite itself, outside any test.
            "error" | "failure"
                if node
                    .parent_element()
                    .is_some_and(|p| p.tag_name().name() == "testsuite") =>
            {
                report.errors.push(failure_of(node, flavor));
            }
            _ => {}
        }
    }
    Ok(report)
}

/// The verdict children of a `<testcase>`, worst first.
fn status_of(case: Node<'_, '_>, flavor: Flavor, errored_if_failed: bool) -> CaseStatus {
    let child = |name: &str| {
        case.children()
            .find(|c| c.is_element() && c.tag_name().name() == name)
    };
    if let Some(failure) = child("failure") {
        let failure = failure_of(failure, flavor);
        if errored_if_failed {
            CaseStatus::Errored(failure)
        } else {
            CaseStatus::Failed(failure)
        }
    } else if let Some(error) = child("error") {
        CaseStatus::Errored(failure_of(error, flavor))
    } else if child("skipped").is_some() {
        CaseStatus::Skipped
    } else {
        CaseStatus::Passed
    }
}

fn failure_of(element: Node<'_, '_>, flavor: Flavor) -> Failure {
    let text: String = element
        .descendants()
        .filter(|n| n.is_text())
        .filter_map(|n| n.text())
        .collect();
    let failure = match flavor {
        Flavor::Pytest => python_failure(&text),
        Flavor::Node => node_failure(&text),
    };
    match element.attribute("message") {
        Some(message) if failure.message.is_empty() => {
            Failure::capped(failure.exception_type, message, failure.frames)
        }
        _ => failure,
    }
}

/// A pytest test case. Its id is pytest's node id, rebuilt from the
/// `file` and dotted `classname` (`tests.test_x.TestA` in
/// `tests/test_x.py` → `tests/test_x.py::TestA::test_b`).
fn pytest_case(case: Node<'_, '_>) -> CaseResult {
    let classname = case.attribute("classname").unwrap_or_default();
    let name = case.attribute("name").unwrap_or_default();
    let file = case.attribute("file").map(str::to_string);
    let collection_failure = case.children().any(|c| {
        c.tag_name().name() == "error" && c.attribute("message") == Some("collection failure")
    });
    if classname.is_empty() || collection_failure {
        // A module that failed to import: pytest names the case after the
        // module (with an empty classname); its node id is its file.
        return CaseResult {
            id: file.clone().unwrap_or_else(|| name.to_string()),
            file,
            status: status_of(case, Flavor::Pytest, true),
        };
    }
    let id = match &file {
        Some(file) => {
            let module = file.trim_end_matches(".py").replace('/', ".");
            match classname.strip_prefix(module.as_str()) {
                Some("") => format!("{file}::{name}"),
                Some(rest) if rest.starts_with('.') => {
                    format!("{file}{}::{name}", rest.replace('.', "::"))
                }
                _ => format!("{classname}::{name}"),
            }
        }
        None => format!("{classname}::{name}"),
    };
    CaseResult {
        id,
        file,
        status: status_of(case, Flavor::Pytest, false),
    }
}

/// A node test case. Its id is its enclosing suites' names and its own,
/// joined with ` > `. A case named after a file is the file itself having
/// failed (to load, usually): errored, with that file.
fn node_case(case: Node<'_, '_>) -> CaseResult {
    let name = case.attribute("name").unwrap_or_default();
    let mut path: Vec<&str> = case
        .ancestors()
        .skip(1)
        .filter(|a| a.is_element() && a.tag_name().name() == "testsuite")
        .take(MAX_SUITE_DEPTH)
        .map(|a| a.attribute("name").unwrap_or_default())
        .collect();
    path.reverse();
    path.push(name);
    let is_file = path.len() == 1 && looks_like_script(name);
    let file = case
        .attribute("file")
        .map(str::to_string)
        .or_else(|| is_file.then(|| name.to_string()));
    CaseResult {
        id: path.join(" > "),
        file,
        status: status_of(case, Flavor::Node, is_file),
    }
}

fn looks_like_script(name: &str) -> bool {
    let path = name.strip_prefix("file://").unwrap_or(name);
    (path.starts_with('/') || path.contains('/'))
        && [".js", ".mjs", ".cjs", ".ts", ".mts", ".cts"]
            .iter()
            .any(|ext| path.ends_with(ext))
}

static PY_FRAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#"^\s*File "(.*)", line (\d+), in (.*)$"#).expect("valid regex"));
static PYTEST_FRAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^(\S.*):(\d+): in (.+)$").expect("valid regex"));
static PY_EXCEPTION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^([A-Za-z_][A-Za-z0-9_.]*)(?::(?: (.*))?)?$").expect("valid regex")
});

/// The exception a pytest failure text shows: the last traceback's (a
/// chained traceback prints the one being handled first and the one
/// raised last).
pub(crate) fn python_failure(text: &str) -> Failure {
    let lines: Vec<&str> = text.lines().collect();
    let traceback = lines
        .iter()
        .rposition(|l| l.trim_end() == "Traceback (most recent call last):");
    let group = lines
        .iter()
        .rposition(|l| l.trim() == "+ Exception Group Traceback (most recent call last):");
    let group = group.filter(|g| traceback.is_none_or(|t| t < *g));
    match (group, traceback) {
        (Some(group), _) => {
            // The group is what was raised: its own traceback is the
            // `  | ` block right under the header (sub-exceptions follow,
            // nested deeper).
            let body: Vec<&str> = lines[group + 1..]
                .iter()
                .map_while(|l| l.strip_prefix("  | "))
                .collect();
            native_traceback(&body)
        }
        (None, Some(header)) => native_traceback(&lines[header + 1..]),
        (None, None) => pytest_traceback(&lines),
    }
}

/// `File "f", line N, in g` frames (each followed by indented source and
/// markers), then `Type: message` at column 0, the message running on.
/// An exception group's message is its first line, its sub-exceptions
/// being nested blocks that are not part of the body.
fn native_traceback(lines: &[&str]) -> Failure {
    let mut frames = Vec::new();
    for (index, line) in lines.iter().enumerate() {
        if let Some(frame) = PY_FRAME.captures(line) {
            frames.push(TraceFrame {
                file: frame[1].to_string(),
                line: frame[2].parse().ok(),
                function: Some(frame[3].to_string()),
            });
        } else if line.starts_with(char::is_whitespace) || line.is_empty() {
            // Source, carets, a SyntaxError's location: not frames.
        } else {
            let (exception_type, first) = exception_line(line);
            let mut message = first.to_string();
            for more in &lines[index + 1..] {
                message.push('\n');
                message.push_str(more);
            }
            return Failure::capped(exception_type, &message, frames);
        }
    }
    Failure::capped(None, "", frames)
}

/// pytest's own format (collection errors, or a command's `--tb=short`):
/// `path:N: in g` frames and `E   Type: message` lines, after the last
/// chaining separator.
fn pytest_traceback(lines: &[&str]) -> Failure {
    let start = lines
        .iter()
        .rposition(|l| {
            let l = l.trim();
            l == "The above exception was the direct cause of the following exception:"
                || l == "During handling of the above exception, another exception occurred:"
        })
        .map_or(0, |i| i + 1);
    let mut frames = Vec::new();
    let mut exception_type = None;
    let mut message: Vec<&str> = Vec::new();
    for line in &lines[start..] {
        if let Some(detail) = line.strip_prefix("E ") {
            let at_top = line.starts_with("E   ") && !line.starts_with("E    ");
            if exception_type.is_none() && at_top {
                let (found, first) = exception_line(line[4..].trim_end());
                if found.is_some() {
                    exception_type = found;
                    message = vec![first];
                    continue;
                }
            }
            if exception_type.is_some() {
                message.push(detail.trim_start());
            }
        } else if let Some(frame) = PYTEST_FRAME.captures(line) {
            frames.push(TraceFrame {
                file: frame[1].to_string(),
                line: frame[2].parse().ok(),
                function: Some(frame[3].to_string()),
            });
        }
    }
    Failure::capped(exception_type, &message.join("\n"), frames)
}

/// `ValueError: bad` → (`ValueError`, `bad`); anything else is all
/// message.
fn exception_line(line: &str) -> (Option<String>, &str) {
    match PY_EXCEPTION.captures(line) {
        Some(found) => (
            Some(found[1].to_string()),
            found.get(2).map_or("", |m| m.as_str()),
        ),
        None => (None, line),
    }
}

static V8_HEADER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\[?([A-Za-z_$][A-Za-z0-9_$]*)(?: \[[^\]]*\])?(?:: ?(.*))?$").expect("valid regex")
});

/// The error a node failure text shows: the wrapper's `cause:`, else the
/// wrapper itself. A thrown non-error (`cause: 'text'`) has no type.
pub(crate) fn node_failure(text: &str) -> Failure {
    let lines: Vec<&str> = text.lines().collect();
    let cause = lines
        .iter()
        .position(|l| l.trim_start().starts_with("cause: "));
    if cause.is_none()
        && let Some(value) = inline_cause(text)
    {
        return Failure::capped(None, value, Vec::new());
    }
    let (header, rest) = match cause {
        Some(index) => {
            let value = lines[index].trim_start()["cause: ".len()..].trim_end();
            if !value.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_' || c == '$') {
                // A string, number, object literal: no error, no stack.
                let value = value.trim_end_matches(',');
                let value = value.trim_matches(|c| c == '\'' || c == '"' || c == '`');
                return Failure::capped(None, value, Vec::new());
            }
            (value, &lines[index + 1..])
        }
        None => match lines.iter().position(|l| !l.trim().is_empty()) {
            Some(index) => (lines[index].trim(), &lines[index + 1..]),
            None => return Failure::capped(None, "", Vec::new()),
        },
    };
    let (exception_type, first) = match V8_HEADER.captures(header) {
        Some(found) => (
            Some(found[1].to_string()),
            found.get(2).map_or("", |m| m.as_str()),
        ),
        None => (None, header),
    };
    let mut message = vec![first];
    let mut innermost_first = Vec::new();
    for line in rest {
        let trimmed = line.trim();
        if let Some(at) = trimmed.strip_prefix("at ") {
            innermost_first.push(v8_frame(at.trim_end_matches(" {")));
        } else if trimmed.starts_with("... ") && trimmed.ends_with(" ...") {
            // "... N lines matching cause stack trace ..."
        } else if innermost_first.is_empty() {
            message.push(trimmed);
        } else {
            break;
        }
    }
    innermost_first.reverse();
    Failure::capped(exception_type, &message.join("\n"), innermost_first)
}

/// The value of a `cause:` that `util.inspect` put on one line with the
/// rest (`{ code: …, cause: 'str', exitCode: 1 }`): a thrown non-error, so
/// a primitive, quoted or not.
fn inline_cause(text: &str) -> Option<&str> {
    let (_, after) = text.split_once(" cause: ")?;
    let quote = after.chars().next()?;
    if matches!(quote, '\'' | '"' | '`') {
        let body = &after[1..];
        // inspect escapes a quote inside the string as \'.
        let mut escaped = false;
        for (index, c) in body.char_indices() {
            match c {
                '\\' if !escaped => escaped = true,
                c if c == quote && !escaped => return Some(&body[..index]),
                _ => escaped = false,
            }
        }
        return Some(body);
    }
    let end = after.find([',', ' ', '}']).unwrap_or(after.len());
    Some(&after[..end])
}

/// `f (file:L:C)`, `async f (file:L:C)`, `file:L:C`, `f (<anonymous>)`.
fn v8_frame(at: &str) -> TraceFrame {
    let at = at.strip_prefix("async ").unwrap_or(at);
    let (function, location) = match at.find(" (") {
        Some(open) if at.ends_with(')') => (Some(&at[..open]), &at[open + 2..at.len() - 1]),
        _ => (None, at),
    };
    let mut parts = location.rsplitn(3, ':');
    let (column, line, file) = (parts.next(), parts.next(), parts.next());
    let numeric =
        |p: Option<&str>| p.is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    let (file, line) = match file {
        Some(file) if numeric(column) && numeric(line) => (file, line.and_then(|l| l.parse().ok())),
        _ => (location, None),
    };
    TraceFrame {
        file: file.to_string(),
        line,
        function: function.map(str::to_string),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(file: &str, line: Option<u32>, function: Option<&str>) -> TraceFrame {
        TraceFrame {
            file: file.to_string(),
            line,
            function: function.map(str::to_string),
        }
    }

    #[test]
    fn dtds_and_entity_bombs_are_refused() {
        let bomb = r#"<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<testsuites><testcase classname="a" name="&lol4;"/></testsuites>"#;
        for flavor in [Flavor::Pytest, Flavor::Node] {
            assert!(matches!(
                parse(bomb, flavor),
                Err(ReportError::Xml(roxmltree::Error::DtdDetected))
            ));
        }
        let external = r#"<!DOCTYPE x SYSTEM "file:///etc/passwd"><testsuites/>"#;
        assert!(matches!(
            parse(external, Flavor::Pytest),
            Err(ReportError::Xml(roxmltree::Error::DtdDetected))
        ));
    }

    #[test]
    fn malformed_or_foreign_xml_is_an_error_not_a_panic() {
        for text in [
            "",
            "<testsuites>",
            "<a></b>",
            "not xml",
            "<testsuites>&bogus;</testsuites>",
        ] {
            assert!(
                matches!(parse(text, Flavor::Pytest), Err(ReportError::Xml(_))),
                "{text}"
            );
        }
        assert!(matches!(
            parse("<html/>", Flavor::Node),
            Err(ReportError::NotJunit(_))
        ));
        // Too many nodes for the cap: refused, not parsed into memory.
        let many = format!(
            "<testsuites>{}</testsuites>",
            "<a/>".repeat(MAX_NODES as usize + 1)
        );
        assert!(matches!(
            parse(&many, Flavor::Pytest),
            Err(ReportError::Xml(_))
        ));
    }

    #[test]
    fn deep_nesting_is_walked_without_recursion() {
        let depth = 100_000;
        let text = format!(
            "<testsuites>{}<testcase classname=\"c\" name=\"deep\"/>{}</testsuites>",
            "<testsuite name=\"s\">".repeat(depth),
            "</testsuite>".repeat(depth)
        );
        let report = parse(&text, Flavor::Node).expect("parses");
        assert_eq!(report.cases.len(), 1);
        assert_eq!(report.cases[0].id.matches(" > ").count(), MAX_SUITE_DEPTH);
    }

    #[test]
    fn pytest_ids_are_node_ids() {
        let text = r#"<testsuites><testsuite name="pytest">
            <testcase classname="tests.test_x" name="test_a[1-x.y]" file="tests/test_x.py" line="3"/>
            <testcase classname="tests.test_x.TestA.TestInner" name="test_b" file="tests/test_x.py"/>
            <testcase classname="test_x" name="test_c"/>
            <testcase classname="other.mod" name="test_d" file="tests/test_x.py"/>
            <testcase classname="t.T" name="test_e"><skipped type="pytest.skip" message="no"/></testcase>
        </testsuite></testsuites>"#;
        let report = parse(text, Flavor::Pytest).expect("parses");
        let ids: Vec<&str> = report.cases.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "tests/test_x.py::test_a[1-x.y]",
                "tests/test_x.py::TestA::TestInner::test_b",
                "test_x::test_c",
                "other.mod::test_d",
                "t.T::test_e",
            ]
        );
        assert_eq!(report.cases[0].status, CaseStatus::Passed);
        assert_eq!(report.cases[4].status, CaseStatus::Skipped);
    }

    #[test]
    fn pytest_collection_errors_are_the_modules_errors() {
        let text = r#"<testsuites><testsuite name="pytest">
            <testcase classname="" name="tests.test_a" file="tests/test_a.py">
              <error message="collection failure">tests/test_a.py:1: in &lt;module&gt;
    import nope
E   ModuleNotFoundError: No module named 'nope'</error></testcase>
            <testcase classname="tests" name="test_b">
              <error message="collection failure">E   ImportError: cannot import name 'x'</error></testcase>
        </testsuite></testsuites>"#;
        let report = parse(text, Flavor::Pytest).expect("parses");
        let ids: Vec<&str> = report.cases.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["tests/test_a.py", "test_b"]);
        let CaseStatus::Errored(failure) = &report.cases[0].status else {
            panic!("{report:?}");
        };
        assert_eq!(
            failure.exception_type.as_deref(),
            Some("ModuleNotFoundError")
        );
        assert_eq!(
            failure.frames,
            [frame("tests/test_a.py", Some(1), Some("<module>"))]
        );
        assert!(matches!(&report.cases[1].status, CaseStatus::Errored(f)
            if f.exception_type.as_deref() == Some("ImportError")));
    }

    #[test]
    fn a_python_traceback_names_the_exception_raised_last() {
        let text = "Traceback (most recent call last):
  File \"/app/a.py\", line 3, in load
    data[key]
KeyError: 'k'

The above exception was the direct cause of the following exception:

Traceback (most recent call last):
  File \"/app/tests/test_a.py\", line 9, in test_load
    load()
  File \"/app/a.py\", line 5, in load
    raise app.errors.LoadError(f\"no {key}\") from e
app.errors.LoadError: no k: with: colons
and a second line";
        let failure = python_failure(text);
        assert_eq!(failure.exception_type.as_deref(), Some("LoadError"));
        assert_eq!(failure.message, "no k: with: colons\nand a second line");
        assert_eq!(
            failure.frames,
            [
                frame("/app/tests/test_a.py", Some(9), Some("test_load")),
                frame("/app/a.py", Some(5), Some("load"))
            ]
        );
        // An exception group: the group is what was raised.
        let group = python_failure(
            "+ Exception Group Traceback (most recent call last):
  |   File \"/app/t.py\", line 2, in test_g
  |     raise ExceptionGroup(\"many\", [ValueError(\"a\")])
  | ExceptionGroup: many (1 sub-exception)
  +-+---------------- 1 ----------------
    | ValueError: a
    +------------------------------------",
        );
        assert_eq!(group.exception_type.as_deref(), Some("ExceptionGroup"));
        assert_eq!(group.message, "many (1 sub-exception)");
        assert_eq!(group.frames, [frame("/app/t.py", Some(2), Some("test_g"))]);
        // A bare exception name, no message.
        let bare = python_failure(
            "Traceback (most recent call last):\n  File \"a.py\", line 1, in f\n    x\nKeyboardInterrupt\n",
        );
        assert_eq!(bare.exception_type.as_deref(), Some("KeyboardInterrupt"));
        assert_eq!(bare.message, "");
    }

    #[test]
    fn pytests_own_format_is_read_after_the_last_chain() {
        let text = "tests/test_a.py:3: in test_a
    f()
E   KeyError: 'k'

The above exception was the direct cause of the following exception:
tests/test_a.py:3: in test_a
    f()
app.py:7: in f
    raise ValueError('bad') from e
E   ValueError: bad
E     and more";
        let failure = python_failure(text);
        assert_eq!(failure.exception_type.as_deref(), Some("ValueError"));
        assert_eq!(failure.message, "bad\nand more");
        assert_eq!(
            failure.frames,
            [
                frame("tests/test_a.py", Some(3), Some("test_a")),
                frame("app.py", Some(7), Some("f"))
            ]
        );
        // Text with no traceback at all: no type, nothing invented.
        let nothing = python_failure("[XPASS(strict)] reason");
        assert_eq!((nothing.exception_type, nothing.frames.len()), (None, 0));
    }

    #[test]
    fn failures_are_capped() {
        let mut text = String::from("Traceback (most recent call last):\n");
        for i in 0..300 {
            text.push_str(&format!("  File \"/app/a.py\", line {i}, in f{i}\n    x\n"));
        }
        text.push_str("ValueError: ");
        text.push_str(&"é".repeat(10_000));
        let xml = format!(
            "<testsuites><testcase classname=\"a\" name=\"t\"><failure>{text}</failure></testcase></testsuites>"
        );
        let report = parse(&xml, Flavor::Pytest).expect("parses");
        let CaseStatus::Failed(failure) = &report.cases[0].status else {
            panic!("{report:?}");
        };
        assert_eq!(failure.frames.len(), super::super::runner::MAX_FRAMES);
        assert_eq!(
            failure.frames.last().and_then(|f| f.function.as_deref()),
            Some("f299")
        );
        assert!(failure.message.len() <= super::super::runner::MAX_MESSAGE_BYTES);
        assert!(failure.message.starts_with('é'));
    }

    #[test]
    fn v8_frames_in_each_form() {
        assert_eq!(
            v8_frame("inner (/app/src/a.js:2:12)"),
            frame("/app/src/a.js", Some(2), Some("inner"))
        );
        assert_eq!(
            v8_frame("async Promise.all (index 0)"),
            frame("index 0", None, Some("Promise.all"))
        );
        assert_eq!(
            v8_frame("/app/src/a.js:5:1"),
            frame("/app/src/a.js", Some(5), None)
        );
        assert_eq!(
            v8_frame("file:///app/a.mjs:5:1"),
            frame("file:///app/a.mjs", Some(5), None)
        );
        assert_eq!(
            v8_frame("JSON.parse (<anonymous>)"),
            frame("<anonymous>", None, Some("JSON.parse"))
        );
        assert_eq!(
            v8_frame("new Session (/app/my (copy)/s.js:9:3)"),
            frame("/app/my (copy)/s.js", Some(9), Some("new Session"))
        );
        assert_eq!(v8_frame(""), frame("", None, None));
    }

    #[test]
    fn node_errors_without_a_cause_and_thrown_values() {
        // No wrapper: the error itself, innermost frame first.
        let failure = node_failure(
            "TypeError: x is not a function\n    at f (/app/a.js:1:1)\n    at g (/app/b.js:2:2)\n",
        );
        assert_eq!(failure.exception_type.as_deref(), Some("TypeError"));
        assert_eq!(failure.frames[1], frame("/app/a.js", Some(1), Some("f")));
        // A thrown number, multi-line form.
        let thrown =
            node_failure("Error [ERR_TEST_FAILURE]: 42\n    at x (<anonymous>) {\n  cause: 42\n}");
        assert_eq!(
            (thrown.exception_type, thrown.message.as_str()),
            (None, "42")
        );
        // A quote inside a thrown string.
        let quoted = node_failure(r"[Error: x] { code: 'E', cause: 'it\'s', exitCode: 1 }");
        assert_eq!(quoted.message, r"it\'s");
        for hostile in ["cause: ", " cause: '", "at ", "[", "cause: [", "\u{0}"] {
            let _ = node_failure(hostile);
            let _ = python_failure(hostile);
        }
    }
}

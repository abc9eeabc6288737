//! The tools as the model sees them (function definitions with JSON-schema
//! parameters) and the dispatch of one tool call onto the [`Toolbox`].
//!
//! Arguments come from the model and are checked here: malformed JSON,
//! missing fields, an unknown tool or one the task does not offer become an
//! error text for the model, never a crash. The model's only way to change
//! code is a submission, and a submission is only ever a request to the
//! toolbox, which guards it.
//!
//! Each [`AgentTask`] offers its own tools: a fix is submitted with
//! `submit_edits` or `submit_patch`, a reproduction test with `submit_test`;
//! the read tools, `run_tests` and `give_up` are shared.

use async_openai::types::chat::{ChatCompletionTool, ChatCompletionTools, FunctionObject};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::prompts::AgentTask;
use super::toolbox::{EditRequest, Submission, SubmitVerdict, Toolbox};

/// What the loop does after one tool call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// Send this text back as the tool's result and go on.
    Continue(String),
    /// A submission passed every gate: the attempt is proven.
    Proven(String),
    /// The model gave up, for this reason.
    GaveUp(String),
}

/// The tools of a fix attempt, in the order they are offered.
const FIX_TOOLS: [&str; 10] = [
    "read_file",
    "list_dir",
    "search_code",
    "find_symbol",
    "show_commit",
    "blame",
    "run_tests",
    "submit_edits",
    "submit_patch",
    "give_up",
];

/// The tools of a reproduction attempt, in the order they are offered.
const REPRODUCE_TOOLS: [&str; 9] = [
    "read_file",
    "list_dir",
    "search_code",
    "find_symbol",
    "show_commit",
    "blame",
    "run_tests",
    "submit_test",
    "give_up",
];

/// The names of the tools `task` offers, in the order they are offered.
pub(crate) fn tool_names(task: AgentTask) -> &'static [&'static str] {
    match task {
        AgentTask::Fix => &FIX_TOOLS,
        AgentTask::Reproduce => &REPRODUCE_TOOLS,
    }
}

/// The function definitions sent with every request of a `task` attempt.
pub(crate) fn definitions(task: AgentTask) -> Vec<ChatCompletionTools> {
    let offered = tool_names(task);
    every_definition()
        .into_iter()
        .filter(|tool| match tool {
            ChatCompletionTools::Function(tool) => offered.contains(&tool.function.name.as_str()),
            ChatCompletionTools::Custom(_) => false,
        })
        .collect()
}

/// Every tool of every task.
fn every_definition() -> Vec<ChatCompletionTools> {
    let path = json!({ "type": "string", "description": "path relative to the repository root" });
    let line = json!({ "type": "integer", "minimum": 1 });
    let edits = |replace: &str| {
        json!({
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "properties": {
                    "path": path,
                    "search": { "type": "string", "description": "exact text to replace" },
                    "replace": { "type": "string", "description": replace },
                },
                "required": ["path", "search", "replace"],
            },
        })
    };
    vec![
        function(
            "read_file",
            "Read a window of a file, with line numbers. Without a range you get about \
             100 lines from the start; ask for the lines around the one you need.",
            json!({
                "type": "object",
                "properties": { "path": path, "start_line": line, "end_line": line },
                "required": ["path"],
            }),
        ),
        function(
            "list_dir",
            "List the entries of a directory; \".\" is the repository root.",
            json!({
                "type": "object",
                "properties": { "path": path },
                "required": ["path"],
            }),
        ),
        function(
            "search_code",
            "Search the repository for lines matching a regular expression; the output \
             is bounded, so make the pattern specific.",
            json!({
                "type": "object",
                "properties": {
                    "pattern": { "type": "string", "description": "regular expression" },
                    "path_glob": { "type": "string", "description": "only files matching this glob, e.g. src/**/*.py" },
                },
                "required": ["pattern"],
            }),
        ),
        function(
            "find_symbol",
            "Find where a function, method or class is defined.",
            json!({
                "type": "object",
                "properties": { "name": { "type": "string", "description": "name or Class.method" } },
                "required": ["name"],
            }),
        ),
        function(
            "show_commit",
            "Show a commit's message and diff, e.g. a suspect from the diagnosis.",
            json!({
                "type": "object",
                "properties": { "rev": { "type": "string", "description": "commit id or revision" } },
                "required": ["rev"],
            }),
        ),
        function(
            "blame",
            "Show which commit last changed each line of a range.",
            json!({
                "type": "object",
                "properties": { "path": path, "start_line": line, "end_line": line },
                "required": ["path", "start_line", "end_line"],
            }),
        ),
        function(
            "run_tests",
            "Run the repository's test command in the sandbox at the deployed revision \
             (without any patch) and show the result.",
            json!({ "type": "object", "properties": {} }),
        ),
        function(
            "submit_edits",
            "Propose the fix as search/replace edits (preferred). Each search text must \
             match the file exactly, indentation included, and occur once. The edits are \
             checked, applied to a fresh copy and tested; you get the verdict back.",
            json!({
                "type": "object",
                "properties": { "edits": edits("text to put in its place") },
                "required": ["edits"],
            }),
        ),
        function(
            "submit_patch",
            "Propose the fix as a unified diff against the repository root. It is \
             checked, applied to a fresh copy and tested; you get the verdict back.",
            json!({
                "type": "object",
                "properties": { "diff": { "type": "string", "description": "unified diff" } },
                "required": ["diff"],
            }),
        ),
        function(
            "submit_test",
            "Propose the reproduction test: new test files, or lines added to existing \
             test files, nothing else. Give either edits (search/replace; an empty search \
             text creates a new file whose whole content is the replace text) or a unified \
             diff against the repository root, not both. The test is checked and run at \
             the deployed revision in the sandbox; it is accepted only if it fails with the \
             production exception raised in the crashing function. You get the verdict back.",
            json!({
                "type": "object",
                "properties": {
                    "edits": edits("text to put in its place; a new file's whole content when search is empty"),
                    "diff": { "type": "string", "description": "unified diff" },
                },
            }),
        ),
        function(
            "give_up",
            "Stop when you cannot find a fix (or write a reproduction test) you are \
             confident in. A wrong fix, or a test that fails for another reason, is worse \
             than none.",
            json!({
                "type": "object",
                "properties": { "reason": { "type": "string" } },
                "required": ["reason"],
            }),
        ),
    ]
}

/// Carries out tool call `name(arguments)` of a `task` attempt on
/// `toolbox`. Blocks while the toolbox works. A tool the task does not offer
/// is refused without calling the toolbox.
pub(crate) fn dispatch(
    toolbox: &mut dyn Toolbox,
    task: AgentTask,
    name: &str,
    arguments: &str,
) -> Step {
    match call(toolbox, task, name, arguments) {
        Ok(step) => step,
        Err(error) => Step::Continue(error),
    }
}

fn call(
    toolbox: &mut dyn Toolbox,
    task: AgentTask,
    name: &str,
    arguments: &str,
) -> Result<Step, String> {
    let offered = tool_names(task);
    if !offered.contains(&name) {
        let known = FIX_TOOLS
            .iter()
            .chain(&REPRODUCE_TOOLS)
            .any(|tool| *tool == name);
        return Err(if known {
            format!(
                "error: {name} is not offered in this attempt, which is to {}; the tools are {}",
                match task {
                    AgentTask::Fix => "fix the error (submit with submit_edits or submit_patch)",
                    AgentTask::Reproduce =>
                        "write a reproduction test (submit it with submit_test)",
                },
                offered.join(", ")
            )
        } else {
            format!(
                "error: there is no tool named {name:?}; the tools are {}",
                offered.join(", ")
            )
        });
    }
    let text = match name {
        "read_file" => {
            let args: ReadFile = parse(name, arguments)?;
            toolbox.read_file(&args.path, args.start_line, args.end_line)
        }
        "list_dir" => {
            let args: ListDir = parse(name, arguments)?;
            let path = if args.path.trim().is_empty() {
                "."
            } else {
                &args.path
            };
            toolbox.list_dir(path)
        }
        "search_code" => {
            let args: SearchCode = parse(name, arguments)?;
            toolbox.search_code(&args.pattern, args.path_glob.as_deref())
        }
        "find_symbol" => {
            let args: FindSymbol = parse(name, arguments)?;
            toolbox.find_symbol(&args.name)
        }
        "show_commit" => {
            let args: ShowCommit = parse(name, arguments)?;
            toolbox.show_commit(&args.rev)
        }
        "blame" => {
            let args: Blame = parse(name, arguments)?;
            toolbox.blame(&args.path, args.start_line, args.end_line)
        }
        "run_tests" => {
            let _: NoArguments = parse(name, arguments)?;
            toolbox.run_tests()
        }
        "submit_edits" => {
            let args: SubmitEdits = parse(name, arguments)?;
            if args.edits.is_empty() {
                return Err("error: submit_edits needs at least one edit".to_string());
            }
            return Ok(verdict(toolbox.submit(Submission::Edits(args.edits))));
        }
        "submit_patch" => {
            let args: SubmitPatch = parse(name, arguments)?;
            if args.diff.trim().is_empty() {
                return Err("error: submit_patch needs a non-empty diff".to_string());
            }
            return Ok(verdict(toolbox.submit(Submission::UnifiedDiff(args.diff))));
        }
        "submit_test" => {
            let args: SubmitTest = parse(name, arguments)?;
            let submission = match (args.edits, args.diff) {
                (Some(edits), None) if !edits.is_empty() => Submission::Edits(edits),
                (None, Some(diff)) if !diff.trim().is_empty() => Submission::UnifiedDiff(diff),
                _ => {
                    return Err(
                        "error: submit_test needs either a non-empty edits list or a \
                                non-empty diff, not both"
                            .to_string(),
                    );
                }
            };
            return Ok(verdict(toolbox.submit_test(submission)));
        }
        "give_up" => {
            let args: GiveUp = parse(name, arguments)?;
            let reason = args.reason.trim();
            let reason = if reason.is_empty() {
                "no reason given"
            } else {
                reason
            };
            return Ok(Step::GaveUp(reason.to_string()));
        }
        _ => {
            return Err(format!(
                "error: there is no tool named {name:?}; the tools are {}",
                offered.join(", ")
            ));
        }
    };
    Ok(Step::Continue(text))
}

fn verdict(verdict: SubmitVerdict) -> Step {
    match verdict {
        SubmitVerdict::Proven { summary } => Step::Proven(summary),
        SubmitVerdict::Rejected { feedback } => Step::Continue(format!(
            "rejected: {feedback}\n\nThe patch was not accepted and nothing was changed. \
             Fix the problem and submit again, or call give_up."
        )),
    }
}

/// The arguments of tool `name`, or an error text that tells the model what
/// was wrong and what was expected.
fn parse<T: DeserializeOwned>(name: &str, arguments: &str) -> Result<T, String> {
    // Some models send "" for a tool without parameters.
    let arguments = if arguments.trim().is_empty() {
        "{}"
    } else {
        arguments
    };
    let value: Value = serde_json::from_str(arguments).map_err(|error| {
        format!(
            "error: the arguments of {name} are not valid JSON ({error}); send one JSON \
             object matching the tool's parameters"
        )
    })?;
    serde_json::from_value(value).map_err(|error| {
        format!("error: the arguments of {name} do not match its parameters: {error}")
    })
}

fn function(name: &str, description: &str, parameters: Value) -> ChatCompletionTools {
    ChatCompletionTools::Function(ChatCompletionTool {
        function: FunctionObject {
            name: name.to_string(),
            description: Some(description.to_string()),
            parameters: Some(parameters),
            strict: None,
        },
    })
}

#[derive(Deserialize)]
struct ReadFile {
    path: String,
    start_line: Option<u32>,
    end_line: Option<u32>,
}

#[derive(Deserialize)]
struct ListDir {
    #[serde(default)]
    path: String,
}

#[derive(Deserialize)]
struct SearchCode {
    pattern: String,
    path_glob: Option<String>,
}

#[derive(Deserialize)]
struct FindSymbol {
    name: String,
}

#[derive(Deserialize)]
struct ShowCommit {
    rev: String,
}

#[derive(Deserialize)]
struct Blame {
    path: String,
    start_line: u32,
    end_line: u32,
}

#[derive(Deserialize)]
struct NoArguments {}

#[derive(Deserialize)]
struct SubmitEdits {
    edits: Vec<EditRequest>,
}

#[derive(Deserialize)]
struct SubmitPatch {
    diff: String,
}

#[derive(Deserialize)]
struct SubmitTest {
    edits: Option<Vec<EditRequest>>,
    diff: Option<String>,
}

#[derive(Deserialize)]
struct GiveUp {
    reason: String,
}

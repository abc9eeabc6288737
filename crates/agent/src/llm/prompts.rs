//! Renders the prompts of an attempt (compiled in from `prompts/`) with an
//! incident's facts: `system.md` and `task.md` for a fix,
//! `reproduce_system.md` and `reproduce_task.md` for a reproduction test.
//!
//! **Invariant:** text that came from outside suture (the event, the
//! diagnosis built from it and from commit messages, repository code, and
//! suture's record of earlier fixes, which quotes all of these) is
//! only ever placed inside a fenced data block labelled `untrusted`, and
//! cannot close that block: in event text every run of three or more
//! backticks or tildes is replaced by look-alike characters, and code keeps
//! its exact text inside a fence longer than any backtick run it holds.
//! Placeholder values are inserted in one pass and never expanded again, so
//! `{{…}}` inside a value stays literal.

use serde::{Deserialize, Serialize};

const SYSTEM_TEMPLATE: &str = include_str!("../../../../prompts/system.md");
const TASK_TEMPLATE: &str = include_str!("../../../../prompts/task.md");
const REPRODUCE_SYSTEM_TEMPLATE: &str = include_str!("../../../../prompts/reproduce_system.md");
const REPRODUCE_TASK_TEMPLATE: &str = include_str!("../../../../prompts/reproduce_task.md");

/// The placeholders the templates may use, as `{{name}}`.
pub const PLACEHOLDERS: [&str; 11] = [
    "title",
    "message",
    "frames",
    "diagnosis",
    "history",
    "code",
    "test_command",
    "guidance",
    "exception",
    "crash_function",
    "locals",
];

/// Longest event title kept, in characters.
const MAX_TITLE_CHARS: usize = 500;
/// Longest event message kept.
const MAX_MESSAGE_CHARS: usize = 4_000;
/// Longest diagnosis summary kept.
const MAX_DIAGNOSIS_CHARS: usize = 8_000;
/// Longest frame listing kept.
const MAX_FRAMES_CHARS: usize = 8_000;
/// Longest code context kept.
const MAX_CODE_CHARS: usize = 40_000;
/// Longest test command kept.
const MAX_TEST_COMMAND_CHARS: usize = 1_000;
/// Longest operator guidance kept.
const MAX_GUIDANCE_CHARS: usize = 4_000;
/// Longest record of earlier fixes kept.
const MAX_HISTORY_CHARS: usize = 4_000;
/// Longest exception type kept.
const MAX_EXCEPTION_CHARS: usize = 300;
/// Longest crash function description kept.
const MAX_CRASH_FUNCTION_CHARS: usize = 1_000;
/// Longest listing of the crash frame's local variables kept.
const MAX_LOCALS_CHARS: usize = 6_000;

/// What an attempt is for. It picks the prompts and, through them, the
/// tools the loop offers: the model cannot call a tool of the other task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentTask {
    /// Find the fault and submit a fix (`submit_edits`, `submit_patch`).
    Fix,
    /// Write a test that fails the way production failed, before any fix
    /// (`submit_test`: new test files or lines added to test files only).
    Reproduce,
}

/// What the task prompt is filled with. The caller redacts secrets before
/// building it; rendering fences and bounds it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromptInput {
    /// Event title, e.g. `ZeroDivisionError: division by zero` (untrusted).
    pub title: String,
    /// Event message (untrusted).
    pub message: String,
    /// Ranked suspects with their evidence, and likely locations (untrusted:
    /// built from the event and from commit messages).
    pub diagnosis_summary: String,
    /// The in-app frames, one per line, mapped to repository paths
    /// (untrusted).
    pub frames_text: String,
    /// Repository code around the frames, shown exactly so that the model
    /// can copy search text from it (untrusted).
    pub code_context: String,
    /// The test command that proves a fix (operator configuration).
    pub test_command: String,
    /// Extra instructions from the operator or a playbook (trusted: never
    /// event text).
    pub extra_guidance: Option<String>,
    /// suture's record of earlier fixes for this error and why they did not
    /// hold, one round a line (untrusted: it quotes commit subjects, pull
    /// request titles and events). None on the first round.
    pub history: Option<String>,
    /// The type of the exception production raised, e.g. `ZeroDivisionError`
    /// (untrusted). Used by the reproduction prompt.
    pub exception_type: String,
    /// The function that raised it and where, e.g.
    /// `ratio (app/stats.py:12)` (untrusted). Used by the reproduction prompt.
    pub crash_function: String,
    /// The crash frame's local variables as the SDK sent them, one
    /// `name = value` a line, redacted and capped by the caller (untrusted).
    /// Used by the reproduction prompt.
    pub crash_locals: String,
}

/// The rendered prompts of one attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prompts {
    /// What the attempt is for; the loop offers this task's tools only.
    pub kind: AgentTask,
    /// The system message.
    pub system: String,
    /// The first user message: the incident.
    pub task: String,
}

/// Renders the system and task templates of `kind` for `input`.
pub fn render_prompts(kind: AgentTask, input: &PromptInput) -> Prompts {
    let values = [
        (
            "title",
            data_block(&input.title, "the error report", MAX_TITLE_CHARS),
        ),
        (
            "message",
            data_block(&input.message, "the error report", MAX_MESSAGE_CHARS),
        ),
        (
            "frames",
            data_block(&input.frames_text, "the error report", MAX_FRAMES_CHARS),
        ),
        (
            "diagnosis",
            data_block(
                &input.diagnosis_summary,
                "the diagnosis",
                MAX_DIAGNOSIS_CHARS,
            ),
        ),
        ("history", history(input.history.as_deref())),
        (
            "code",
            exact_block(
                &input.code_context,
                "text untrusted repository code",
                MAX_CODE_CHARS,
            ),
        ),
        (
            "test_command",
            exact_block(&input.test_command, "sh", MAX_TEST_COMMAND_CHARS),
        ),
        ("guidance", guidance(input.extra_guidance.as_deref())),
        (
            "exception",
            data_block(
                &input.exception_type,
                "the error report",
                MAX_EXCEPTION_CHARS,
            ),
        ),
        (
            "crash_function",
            data_block(
                &input.crash_function,
                "the error report",
                MAX_CRASH_FUNCTION_CHARS,
            ),
        ),
        (
            "locals",
            data_block(&input.crash_locals, "the error report", MAX_LOCALS_CHARS),
        ),
    ];
    let (system, task) = match kind {
        AgentTask::Fix => (SYSTEM_TEMPLATE, TASK_TEMPLATE),
        AgentTask::Reproduce => (REPRODUCE_SYSTEM_TEMPLATE, REPRODUCE_TASK_TEMPLATE),
    };
    Prompts {
        kind,
        system: fill(system, &values),
        task: fill(task, &values),
    }
}

/// The `{{name}}` placeholders in `template`, in order.
pub fn placeholders(template: &str) -> Vec<&str> {
    let mut found = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        found.push(after[..end].trim());
        rest = &after[end + 2..];
    }
    found
}

/// The templates as compiled in: `(file name, text)`.
pub fn templates() -> [(&'static str, &'static str); 4] {
    [
        ("system.md", SYSTEM_TEMPLATE),
        ("task.md", TASK_TEMPLATE),
        ("reproduce_system.md", REPRODUCE_SYSTEM_TEMPLATE),
        ("reproduce_task.md", REPRODUCE_TASK_TEMPLATE),
    ]
}

/// `template` with each known `{{name}}` replaced by its value, in one pass.
/// An unknown placeholder is left as it is (a test keeps the templates
/// free of them).
fn fill(template: &str, values: &[(&str, String)]) -> String {
    let mut out = String::with_capacity(template.len() + 4_096);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let name = after[..end].trim();
        match values.iter().find(|(known, _)| *known == name) {
            Some((_, value)) => out.push_str(value),
            None => out.push_str(&rest[start..start + 2 + end + 2]),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

/// Event-derived `text` as a fenced block that it cannot break out of.
fn data_block(text: &str, source: &str, max_chars: usize) -> String {
    let text = neutralise_fences(&cut(&clean(text), max_chars));
    let text = text.trim_matches('\n');
    let text = if text.trim().is_empty() {
        "(empty)"
    } else {
        text
    };
    format!("````text untrusted data from {source}\n{text}\n````")
}

/// `text` exactly (code, a command) in a fence longer than any backtick run
/// inside it, so it cannot close the block and stays copyable.
fn exact_block(text: &str, info: &str, max_chars: usize) -> String {
    let text = cut(text, max_chars);
    let text = text.trim_matches('\n');
    let text = if text.trim().is_empty() {
        "(empty)"
    } else {
        text
    };
    let longest = longest_run(text, '`');
    let fence = "`".repeat(longest.max(3) + 1);
    format!("{fence}{info}\n{text}\n{fence}")
}

/// The record of earlier fixes as a data block, or `(none)` on the first
/// round so the model is not shown an empty block to puzzle over.
fn history(text: Option<&str>) -> String {
    match text.filter(|text| !text.trim().is_empty()) {
        None => "(none)".to_string(),
        Some(text) => data_block(text, "suture's record of earlier fixes", MAX_HISTORY_CHARS),
    }
}

fn guidance(text: Option<&str>) -> String {
    let text = text.map(|text| cut(&clean(text), MAX_GUIDANCE_CHARS));
    match text.as_deref().map(str::trim) {
        None | Some("") => "(none)".to_string(),
        Some(text) => text.to_string(),
    }
}

/// `text` without control and invisible direction characters, with
/// uniform line ends.
fn clean(text: &str) -> String {
    let text = text.replace("\r\n", "\n");
    text.chars()
        .filter_map(|c| match c {
            '\n' | '\t' => Some(c),
            '\r' | '\u{2028}' | '\u{2029}' => Some('\n'),
            // Bidirectional overrides and isolates ("trojan source"), zero
            // width space and byte order mark.
            '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200B}' | '\u{FEFF}' => None,
            c if c.is_control() => None,
            c => Some(c),
        })
        .collect()
}

/// Every run of three or more backticks or tildes, the Markdown fence
/// characters, replaced by the same number of look-alikes that no Markdown
/// reader (or model) takes for a fence.
fn neutralise_fences(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let run = chars[i..].iter().take_while(|&&d| d == c).count();
        let replacement = match c {
            '`' if run >= 3 => Some('\u{02CB}'), // ˋ modifier letter grave accent
            '~' if run >= 3 => Some('\u{02DC}'), // ˜ small tilde
            _ => None,
        };
        for _ in 0..run {
            out.push(replacement.unwrap_or(c));
        }
        i += run;
    }
    out
}

fn longest_run(text: &str, c: char) -> usize {
    let mut longest = 0;
    let mut current = 0;
    for d in text.chars() {
        current = if d == c { current + 1 } else { 0 };
        longest = longest.max(current);
    }
    longest
}

/// `text` cut to `max_chars` characters, marked when cut.
fn cut(text: &str, max_chars: usize) -> String {
    super::transcript::truncate(text, max_chars)
}

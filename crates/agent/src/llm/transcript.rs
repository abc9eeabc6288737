//! The audit trail of one agent attempt: prompts, every request and
//! response, every tool call with its arguments and (truncated) result, and
//! the outcome. It goes on the incident's timeline as JSON.
//!
//! **Invariant:** nothing from `LlmConfig` but the model name is recorded;
//! the API key never is.

use serde::{Deserialize, Serialize};

use super::run::AgentOutcome;

/// Longest text kept for one recorded field (a tool result, a message);
/// longer text is cut and marked.
pub(crate) const MAX_RECORDED_CHARS: usize = 16_000;
/// Longest tool-call arguments kept: patches are the point of the audit.
pub(crate) const MAX_RECORDED_ARGUMENT_CHARS: usize = 64_000;

/// Everything one attempt said and did, in order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Transcript {
    /// The entries, oldest first.
    pub entries: Vec<TranscriptEntry>,
}

/// One step of an attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TranscriptEntry {
    /// A prompt as first sent: `system` or `user` (the task).
    Prompt {
        /// `system` or `user`.
        role: String,
        /// The rendered prompt.
        content: String,
    },
    /// A chat completion request is sent.
    Request {
        /// 1-based round.
        round: u32,
        /// Model asked.
        model: String,
        /// Messages in the conversation so far.
        messages: usize,
        /// Milliseconds since the attempt started.
        elapsed_ms: u64,
    },
    /// The model's answer.
    Response {
        /// Round it answers.
        round: u32,
        /// Assistant text, if any.
        content: Option<String>,
        /// Refusal text, if the model refused.
        refusal: Option<String>,
        /// Tool calls asked for, in order.
        tool_calls: Vec<ToolCallRecord>,
        /// Why the model stopped (`stop`, `tool_calls`, `length`, …).
        finish_reason: Option<String>,
        /// Token usage as reported; `None` when the endpoint sent none.
        usage: Option<TokenUsage>,
        /// Tokens counted for this round: reported, or estimated when
        /// `usage` is missing.
        tokens: u64,
        /// Tokens counted for the attempt so far.
        tokens_total: u64,
    },
    /// A tool call was carried out; the result is what the model was sent.
    ToolResult {
        /// Round whose response asked for it.
        round: u32,
        /// The call's id.
        call_id: String,
        /// Tool name as the model sent it.
        name: String,
        /// Result text (cut at a bound, marked when cut).
        result: String,
    },
    /// The reminder sent after an answer with no tool call.
    Reminder {
        /// Round whose response had no tool call.
        round: u32,
        /// Text sent.
        content: String,
    },
    /// The endpoint failed (HTTP error after retries, timeout, bad body).
    ProviderError {
        /// Round that failed.
        round: u32,
        /// What failed.
        error: String,
    },
    /// How the attempt ended.
    Outcome {
        /// The outcome returned to the caller.
        outcome: AgentOutcome,
    },
}

/// A tool call as the model asked for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCallRecord {
    /// The call's id.
    pub id: String,
    /// Tool name.
    pub name: String,
    /// Arguments as sent (a JSON text when well formed), cut at a bound.
    pub arguments: String,
}

/// Token usage of one response, as reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenUsage {
    /// Tokens in the prompt.
    pub prompt_tokens: u64,
    /// Tokens generated.
    pub completion_tokens: u64,
    /// Their sum, as the endpoint counts it.
    pub total_tokens: u64,
}

impl Transcript {
    /// Adds `entry` at the end.
    pub fn push(&mut self, entry: TranscriptEntry) {
        self.entries.push(entry);
    }

    /// The tokens the attempt spent, as counted round by round.
    pub fn tokens(&self) -> u64 {
        self.entries
            .iter()
            .map(|entry| match entry {
                TranscriptEntry::Response { tokens, .. } => *tokens,
                _ => 0,
            })
            .sum()
    }

    /// The tool calls carried out, as `(name, result)`, in order.
    pub fn tool_results(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().filter_map(|entry| match entry {
            TranscriptEntry::ToolResult { name, result, .. } => {
                Some((name.as_str(), result.as_str()))
            }
            _ => None,
        })
    }
}

/// `text` cut to at most `max_chars` characters, with a marker saying how
/// much was cut.
pub(crate) fn truncate(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        None => text.to_string(),
        Some((cut, _)) => {
            let dropped = text[cut..].chars().count();
            format!("{}\n[… {dropped} more characters cut]", &text[..cut])
        }
    }
}

//! The agent loop over any OpenAI-compatible chat-completions endpoint
//! (async-openai) that investigates through a [`Toolbox`] and proposes
//! patches through it: the LLM rung of the fix ladder ([`AgentTask::Fix`]),
//! and the model-written reproduction test before it
//! ([`AgentTask::Reproduce`]).
//!
//! - `config`: [`LlmConfig`], the endpoint and the attempt's budget.
//! - `prompts`: [`render_prompts`] fills `prompts/*.md` for an
//!   [`AgentTask`], fencing untrusted text.
//! - `toolbox`: the [`Toolbox`] trait the heal stage implements, and the
//!   [`Submission`] / [`SubmitVerdict`] shapes.
//! - `tools`: the function definitions the model sees (per task), and
//!   argument checks.
//! - `run`: [`run_agent`], the loop and its budgets.
//! - `transcript`: the [`Transcript`] audit trail.
//!
//! **Boundary:** the model's only way to change code is a submission, and a
//! submission is only a request: the toolbox runs it through the scope
//! guard, a clean apply and the tests, and decides. Event text reaches the
//! model only inside fenced data blocks. The API key goes into the
//! `Authorization` header and nowhere else.

mod config;
mod prompts;
mod run;
mod toolbox;
mod tools;
mod transcript;

pub use config::{
    DEFAULT_MAX_ROUNDS, DEFAULT_MAX_TOKENS, DEFAULT_REQUEST_TIMEOUT, DEFAULT_WALL_TIME, LlmConfig,
    StopAnswer, StopCheck,
};
pub use prompts::{
    AgentTask, PLACEHOLDERS, PromptInput, Prompts, placeholders, render_prompts, templates,
};
pub use run::{AgentOutcome, BudgetReason, run_agent};
pub use toolbox::{EditRequest, Submission, SubmitVerdict, Toolbox};
pub use transcript::{TokenUsage, ToolCallRecord, Transcript, TranscriptEntry};

#[cfg(test)]
mod tests;

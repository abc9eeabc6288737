//! The agent loop: chat completions with tools until a submission is proven,
//! the model gives up, a budget runs out, or the endpoint fails.
//!
//! **Invariant:** only a [`SubmitVerdict::Proven`] from the toolbox ends an
//! attempt as a fix. A budget ends it as [`AgentOutcome::Exhausted`], never
//! with whatever patch was last on hand.
//!
//! [`SubmitVerdict::Proven`]: super::SubmitVerdict::Proven

use std::fmt;
use std::time::Duration;

use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use async_openai::types::chat::{
    ChatCompletionMessageToolCalls, ChatCompletionRequestAssistantMessage,
    ChatCompletionRequestAssistantMessageContent, ChatCompletionRequestMessage,
    ChatCompletionRequestSystemMessage, ChatCompletionRequestSystemMessageContent,
    ChatCompletionRequestToolMessage, ChatCompletionRequestToolMessageContent,
    ChatCompletionRequestUserMessage, ChatCompletionRequestUserMessageContent,
    ChatCompletionResponseMessage, ChatCompletionTools, CreateChatCompletionRequest,
    CreateChatCompletionResponse,
};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::config::LlmConfig;
use super::prompts::{AgentTask, Prompts};
use super::toolbox::Toolbox;
use super::tools::{self, Step};
use super::transcript::{
    MAX_RECORDED_ARGUMENT_CHARS, MAX_RECORDED_CHARS, TokenUsage, ToolCallRecord, Transcript,
    TranscriptEntry, truncate,
};
use crate::redact::Redactor;

/// Longest tool result sent to the model, in characters; the toolbox bounds
/// its output already, this holds whatever it returns.
const MAX_TOOL_RESULT_CHARS: usize = 16_000;
/// Tool calls carried out per answer; the rest are answered with an error.
const MAX_TOOL_CALLS_PER_ROUND: usize = 16;
/// Longest error text kept from the endpoint, and longest reason or summary
/// kept in an outcome.
const MAX_ERROR_CHARS: usize = 2_000;
/// Sent once when the model of a fix attempt answers without calling a
/// tool.
const FIX_REMINDER: &str = "You answered without calling a tool, and nothing changes unless you \
    call one. Investigate with the read-only tools, propose a fix with submit_edits or \
    submit_patch, or call give_up with the reason. A second answer without a tool call ends \
    the attempt.";
/// Sent once when the model of a reproduction attempt answers without
/// calling a tool.
const REPRODUCE_REMINDER: &str = "You answered without calling a tool, and nothing changes \
    unless you call one. Investigate with the read-only tools, propose the reproduction test \
    with submit_test, or call give_up with the reason. A second answer without a tool call ends \
    the attempt.";

/// How an attempt ended. Only `Proven` is a fix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum AgentOutcome {
    /// A submission passed every gate.
    Proven {
        /// Chat completion requests made.
        rounds: u32,
        /// Tokens spent (reported, or estimated where not).
        tokens: u64,
        /// The toolbox's summary of what was proven.
        summary: String,
    },
    /// A budget ran out first: unproven.
    Exhausted {
        /// Which budget.
        reason: BudgetReason,
        /// Chat completion requests made.
        rounds: u32,
        /// Tokens spent.
        tokens: u64,
    },
    /// The model called `give_up`, or stopped calling tools after the
    /// reminder.
    GaveUp {
        /// The model's reason.
        message: String,
        /// Chat completion requests made.
        rounds: u32,
        /// Tokens spent.
        tokens: u64,
    },
    /// The endpoint failed: an HTTP error after the client's retries, a
    /// timeout, or a body that is not a chat completion.
    ProviderError {
        /// What failed (the API key is never in it).
        error: String,
        /// Chat completion requests made, the failed one included.
        rounds: u32,
        /// Tokens spent.
        tokens: u64,
    },
}

/// The budget that ended an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BudgetReason {
    /// `max_rounds` requests were made.
    Rounds,
    /// `max_tokens` were spent.
    Tokens,
    /// `wall_time` passed.
    WallTime,
    /// The configuration's [`StopCheck`](super::StopCheck) said stop (an
    /// operator paused suture) before the next request.
    Paused,
}

impl AgentOutcome {
    /// Whether the attempt produced a proven fix.
    pub fn is_proven(&self) -> bool {
        matches!(self, AgentOutcome::Proven { .. })
    }

    /// Chat completion requests made.
    pub fn rounds(&self) -> u32 {
        match self {
            AgentOutcome::Proven { rounds, .. }
            | AgentOutcome::Exhausted { rounds, .. }
            | AgentOutcome::GaveUp { rounds, .. }
            | AgentOutcome::ProviderError { rounds, .. } => *rounds,
        }
    }

    /// Tokens spent.
    pub fn tokens(&self) -> u64 {
        match self {
            AgentOutcome::Proven { tokens, .. }
            | AgentOutcome::Exhausted { tokens, .. }
            | AgentOutcome::GaveUp { tokens, .. }
            | AgentOutcome::ProviderError { tokens, .. } => *tokens,
        }
    }
}

impl fmt::Display for BudgetReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BudgetReason::Rounds => "rounds",
            BudgetReason::Tokens => "tokens",
            BudgetReason::WallTime => "wall time",
            BudgetReason::Paused => "pause",
        })
    }
}

/// Runs one attempt: the model works through `toolbox` until a submission
/// is proven, it gives up, a budget of `config` runs out, or the endpoint
/// fails. Every step is appended to `transcript`.
///
/// `prompts.kind` decides what the attempt is for, and so which tools are
/// offered: a fix attempt submits with `submit_edits` or `submit_patch`
/// ([`Toolbox::submit`]), a reproduction attempt with `submit_test`
/// ([`Toolbox::submit_test`]). A call to a tool the task does not offer is
/// answered with an error and never reaches the toolbox.
///
/// Toolbox calls block; on a multi-threaded runtime they run in
/// `block_in_place`, elsewhere inline.
///
/// # Cancel safety
///
/// Dropping the future ends the attempt where it stands: `transcript` holds
/// the steps so far and nothing is left half-applied, since only the
/// toolbox's submissions touch code and each runs to completion once
/// started.
#[tracing::instrument(name = "llm_agent", skip_all, fields(model = %config.model))]
pub async fn run_agent(
    config: &LlmConfig,
    prompts: &Prompts,
    toolbox: &mut dyn Toolbox,
    transcript: &mut Transcript,
) -> AgentOutcome {
    let mut redactor = Redactor::from_env();
    if let Some(key) = config.api_key.as_deref() {
        redactor.add(key);
    }
    let mut attempt = Attempt {
        config,
        redactor,
        transcript,
        started: Instant::now(),
        rounds: 0,
        tokens: 0,
    };
    let outcome = attempt.run(prompts, toolbox).await;
    match &outcome {
        AgentOutcome::ProviderError { error, .. } => {
            tracing::warn!(rounds = outcome.rounds(), tokens = outcome.tokens(), error = %error, "llm endpoint failed");
        }
        _ => {
            tracing::info!(
                rounds = outcome.rounds(),
                tokens = outcome.tokens(),
                proven = outcome.is_proven(),
                "llm attempt ended"
            );
        }
    }
    attempt.transcript.push(TranscriptEntry::Outcome {
        outcome: outcome.clone(),
    });
    outcome
}

struct Attempt<'a> {
    config: &'a LlmConfig,
    /// The host's secrets, secret shapes and the API key: blanked from
    /// everything sent to the model or kept in the transcript.
    redactor: Redactor,
    transcript: &'a mut Transcript,
    started: Instant,
    /// Requests made so far.
    rounds: u32,
    /// Tokens counted so far.
    tokens: u64,
}

impl Attempt<'_> {
    async fn run(&mut self, prompts: &Prompts, toolbox: &mut dyn Toolbox) -> AgentOutcome {
        let client = client(self.config);
        let kind = prompts.kind;
        let tools = tools::definitions(kind);
        let reminder = match kind {
            AgentTask::Fix => FIX_REMINDER,
            AgentTask::Reproduce => REPRODUCE_REMINDER,
        };
        let system = self.redact(&prompts.system);
        let task = self.redact(&prompts.task);
        self.transcript.push(TranscriptEntry::Prompt {
            role: "system".to_string(),
            content: system.clone(),
        });
        self.transcript.push(TranscriptEntry::Prompt {
            role: "user".to_string(),
            content: task.clone(),
        });
        let mut messages = vec![system_message(system), user_message(task)];
        let mut reminded = false;
        loop {
            if let Some(reason) = self.budget_spent() {
                return self.exhausted(reason);
            }
            if let Some(stop) = &self.config.stop
                && let Some(why) = stop.reason().await
            {
                tracing::info!(reason = %why, "llm attempt stopped before its next request");
                return self.exhausted(BudgetReason::Paused);
            }
            let message = match self.complete(&client, &messages, &tools).await {
                Ok(message) => message,
                Err(outcome) => return outcome,
            };
            let round = self.rounds;
            let calls = message.tool_calls.clone().unwrap_or_default();
            messages.push(assistant_message(&message));
            if calls.is_empty() {
                if reminded {
                    let said = message.content.or(message.refusal).unwrap_or_default();
                    return AgentOutcome::GaveUp {
                        message: format!(
                            "stopped without a tool call after the reminder: {}",
                            truncate(self.redact(&said).trim(), 500)
                        ),
                        rounds: self.rounds,
                        tokens: self.tokens,
                    };
                }
                reminded = true;
                self.transcript.push(TranscriptEntry::Reminder {
                    round,
                    content: reminder.to_string(),
                });
                messages.push(user_message(reminder.to_string()));
                continue;
            }
            for (index, call) in calls.into_iter().enumerate() {
                let (id, name, step) = match call {
                    // Every call needs an answer, but only so many are
                    // carried out: a flood of calls would flood the context.
                    _ if index >= MAX_TOOL_CALLS_PER_ROUND => {
                        let (id, name) = call_id_and_name(&call);
                        let step = Step::Continue(format!(
                            "error: not carried out: at most {MAX_TOOL_CALLS_PER_ROUND} tool calls \
                             are carried out per turn"
                        ));
                        (id, name, step)
                    }
                    ChatCompletionMessageToolCalls::Function(call) => {
                        let step = blocking(|| {
                            tools::dispatch(
                                &mut *toolbox,
                                kind,
                                &call.function.name,
                                &call.function.arguments,
                            )
                        });
                        (call.id, call.function.name, step)
                    }
                    ChatCompletionMessageToolCalls::Custom(call) => {
                        let step = Step::Continue(format!(
                            "error: custom tools are not offered; call one of the functions: {}",
                            tools::tool_names(kind).join(", ")
                        ));
                        (call.id, call.custom_tool.name, step)
                    }
                };
                let result = match step {
                    Step::Proven(summary) => {
                        let summary = truncate(&self.redact(&summary), MAX_ERROR_CHARS);
                        self.record_tool(round, &id, &name, &format!("proven: {summary}"));
                        return AgentOutcome::Proven {
                            rounds: self.rounds,
                            tokens: self.tokens,
                            summary,
                        };
                    }
                    Step::GaveUp(reason) => {
                        self.record_tool(round, &id, &name, "gave up");
                        return AgentOutcome::GaveUp {
                            message: truncate(&self.redact(&reason), MAX_ERROR_CHARS),
                            rounds: self.rounds,
                            tokens: self.tokens,
                        };
                    }
                    Step::Continue(text) => truncate(&self.redact(&text), MAX_TOOL_RESULT_CHARS),
                };
                self.record_tool(round, &id, &name, &result);
                messages.push(tool_message(id, result));
                // A slow tool (the test suite) can spend the wall time; stop
                // before the next one rather than after the whole batch.
                if self.started.elapsed() >= self.config.wall_time {
                    return self.exhausted(BudgetReason::WallTime);
                }
            }
        }
    }

    /// One chat completion round: the assistant's message, or how the
    /// attempt ends.
    async fn complete(
        &mut self,
        client: &Client<OpenAIConfig>,
        messages: &[ChatCompletionRequestMessage],
        tools: &[ChatCompletionTools],
    ) -> Result<ChatCompletionResponseMessage, AgentOutcome> {
        self.rounds += 1;
        let round = self.rounds;
        let request = CreateChatCompletionRequest {
            model: self.config.model.clone(),
            messages: messages.to_vec(),
            tools: Some(tools.to_vec()),
            temperature: self.config.temperature,
            ..Default::default()
        };
        let request_bytes = serde_json::to_vec(&request).map_or(0, |body| body.len());
        self.transcript.push(TranscriptEntry::Request {
            round,
            model: self.config.model.clone(),
            messages: messages.len(),
            elapsed_ms: millis(self.started.elapsed()),
        });
        tracing::debug!(round, messages = messages.len(), "llm request");

        let remaining = self.config.wall_time.saturating_sub(self.started.elapsed());
        let limit = remaining.min(self.config.request_timeout);
        let response = match tokio::time::timeout(limit, client.chat().create(request)).await {
            Ok(Ok(response)) => response,
            Ok(Err(error)) => return Err(self.provider_error(describe(&error))),
            Err(_) if remaining <= self.config.request_timeout => {
                return Err(self.exhausted(BudgetReason::WallTime));
            }
            Err(_) => {
                return Err(self.provider_error(format!(
                    "no answer within the request timeout of {}s",
                    self.config.request_timeout.as_secs_f64()
                )));
            }
        };
        self.account(round, request_bytes, response)
    }

    /// Counts the response's tokens, records it, and returns its message.
    fn account(
        &mut self,
        round: u32,
        request_bytes: usize,
        response: CreateChatCompletionResponse,
    ) -> Result<ChatCompletionResponseMessage, AgentOutcome> {
        let usage = response.usage.map(|usage| TokenUsage {
            prompt_tokens: u64::from(usage.prompt_tokens),
            completion_tokens: u64::from(usage.completion_tokens),
            total_tokens: u64::from(usage.total_tokens),
        });
        let Some(choice) = response.choices.into_iter().next() else {
            return Err(self.provider_error("the response has no choices".to_string()));
        };
        let message = choice.message;
        let calls: Vec<ToolCallRecord> = message
            .tool_calls
            .iter()
            .flatten()
            .map(|call| match call {
                ChatCompletionMessageToolCalls::Function(call) => ToolCallRecord {
                    id: call.id.clone(),
                    name: call.function.name.clone(),
                    arguments: truncate(
                        &self.redact(&call.function.arguments),
                        MAX_RECORDED_ARGUMENT_CHARS,
                    ),
                },
                ChatCompletionMessageToolCalls::Custom(call) => ToolCallRecord {
                    id: call.id.clone(),
                    name: call.custom_tool.name.clone(),
                    arguments: truncate(
                        &self.redact(&call.custom_tool.input),
                        MAX_RECORDED_ARGUMENT_CHARS,
                    ),
                },
            })
            .collect();
        let tokens = match usage {
            Some(usage) => usage.total_tokens,
            None => {
                // No usage reported: estimate a token per 4 bytes so the
                // token budget still bounds the attempt.
                let answer_bytes = message.content.as_ref().map_or(0, String::len)
                    + calls.iter().map(|c| c.arguments.len()).sum::<usize>();
                ((request_bytes + answer_bytes) / 4).max(1) as u64
            }
        };
        self.tokens = self.tokens.saturating_add(tokens);
        self.transcript.push(TranscriptEntry::Response {
            round,
            content: message
                .content
                .as_deref()
                .map(|text| truncate(&self.redact(text), MAX_RECORDED_CHARS)),
            refusal: message.refusal.as_deref().map(|text| self.redact(text)),
            tool_calls: calls,
            finish_reason: choice.finish_reason.map(|reason| {
                serde_json::to_value(reason)
                    .ok()
                    .and_then(|value| value.as_str().map(str::to_string))
                    .unwrap_or_default()
            }),
            usage,
            tokens,
            tokens_total: self.tokens,
        });
        tracing::debug!(round, tokens, tokens_total = self.tokens, "llm response");
        Ok(message)
    }

    /// The budget that forbids another request, if any.
    fn budget_spent(&self) -> Option<BudgetReason> {
        if self.started.elapsed() >= self.config.wall_time {
            Some(BudgetReason::WallTime)
        } else if self.rounds >= self.config.max_rounds {
            Some(BudgetReason::Rounds)
        } else if self.tokens >= self.config.max_tokens {
            Some(BudgetReason::Tokens)
        } else {
            None
        }
    }

    fn exhausted(&self, reason: BudgetReason) -> AgentOutcome {
        AgentOutcome::Exhausted {
            reason,
            rounds: self.rounds,
            tokens: self.tokens,
        }
    }

    fn provider_error(&mut self, error: String) -> AgentOutcome {
        let error = truncate(&self.redact(&error), MAX_ERROR_CHARS);
        self.transcript.push(TranscriptEntry::ProviderError {
            round: self.rounds,
            error: error.clone(),
        });
        AgentOutcome::ProviderError {
            error,
            rounds: self.rounds,
            tokens: self.tokens,
        }
    }

    fn record_tool(&mut self, round: u32, id: &str, name: &str, result: &str) {
        self.transcript.push(TranscriptEntry::ToolResult {
            round,
            call_id: id.to_string(),
            name: name.to_string(),
            result: truncate(result, MAX_RECORDED_CHARS),
        });
    }

    /// `text` with secrets cut out, wherever it came from (the model's
    /// own replies included: it may echo what it was shown).
    fn redact(&self, text: &str) -> String {
        self.redactor.redact(text)
    }
}

fn client(config: &LlmConfig) -> Client<OpenAIConfig> {
    // Every field set explicitly: the defaults would read OPENAI_* variables
    // behind the configuration's back.
    let openai = OpenAIConfig::new()
        .with_api_base(config.base_url.trim_end_matches('/'))
        .with_api_key(config.api_key.clone().unwrap_or_default())
        .with_org_id("")
        .with_project_id("");
    Client::with_config(openai)
}

fn call_id_and_name(call: &ChatCompletionMessageToolCalls) -> (String, String) {
    match call {
        ChatCompletionMessageToolCalls::Function(call) => {
            (call.id.clone(), call.function.name.clone())
        }
        ChatCompletionMessageToolCalls::Custom(call) => {
            (call.id.clone(), call.custom_tool.name.clone())
        }
    }
}

fn describe(error: &OpenAIError) -> String {
    match error {
        OpenAIError::ApiError(api) => format!("http {}: {}", api.status_code, api.api_error),
        OpenAIError::JSONDeserialize(error, _) => {
            format!("the response is not a chat completion: {error}")
        }
        other => other.to_string(),
    }
}

/// Runs blocking `work`: in `block_in_place` on a multi-threaded runtime,
/// inline anywhere else (`block_in_place` would panic on a current-thread
/// runtime).
fn blocking<R>(work: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current().map(|handle| handle.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(work),
        _ => work(),
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

fn system_message(content: String) -> ChatCompletionRequestMessage {
    ChatCompletionRequestMessage::System(ChatCompletionRequestSystemMessage {
        content: ChatCompletionRequestSystemMessageContent::Text(content),
        name: None,
    })
}

fn user_message(content: String) -> ChatCompletionRequestMessage {
    ChatCompletionRequestMessage::User(ChatCompletionRequestUserMessage {
        content: ChatCompletionRequestUserMessageContent::Text(content),
        name: None,
    })
}

fn tool_message(tool_call_id: String, content: String) -> ChatCompletionRequestMessage {
    ChatCompletionRequestMessage::Tool(ChatCompletionRequestToolMessage {
        content: ChatCompletionRequestToolMessageContent::Text(content),
        tool_call_id,
    })
}

/// The model's message as it goes back into the conversation.
fn assistant_message(message: &ChatCompletionResponseMessage) -> ChatCompletionRequestMessage {
    let tool_calls = message.tool_calls.clone().filter(|calls| !calls.is_empty());
    // Endpoints refuse an assistant message with neither content nor tool
    // calls.
    let content = match (&message.content, &tool_calls) {
        (Some(text), _) => Some(text.clone()),
        (None, None) => Some(String::new()),
        (None, Some(_)) => None,
    };
    ChatCompletionRequestMessage::Assistant(ChatCompletionRequestAssistantMessage {
        content: content.map(ChatCompletionRequestAssistantMessageContent::Text),
        refusal: message.refusal.clone(),
        tool_calls,
        ..Default::default()
    })
}

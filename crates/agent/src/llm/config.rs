//! Which endpoint the LLM rung talks to and how much one attempt may spend.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use domain::config::{
    Config, LLM_DEFAULT_MAX_ROUNDS, LLM_DEFAULT_MAX_TOKENS, LLM_DEFAULT_REQUEST_TIMEOUT_SECONDS,
    LLM_DEFAULT_WALL_TIME_SECONDS,
};

/// Chat completions requests one attempt may make, unless configured.
pub const DEFAULT_MAX_ROUNDS: u32 = LLM_DEFAULT_MAX_ROUNDS;
/// Tokens (the sum of `usage.total_tokens`) one attempt may spend.
pub const DEFAULT_MAX_TOKENS: u64 = LLM_DEFAULT_MAX_TOKENS;
/// Wall time of one attempt, tool runs included.
pub const DEFAULT_WALL_TIME: Duration = Duration::from_secs(LLM_DEFAULT_WALL_TIME_SECONDS);
/// Longest wait for one chat completion, retries included.
pub const DEFAULT_REQUEST_TIMEOUT: Duration =
    Duration::from_secs(LLM_DEFAULT_REQUEST_TIMEOUT_SECONDS);

/// An OpenAI-compatible chat-completions endpoint and the budget of one
/// attempt. `Debug` redacts the API key.
#[derive(Clone, PartialEq)]
pub struct LlmConfig {
    /// Base URL up to and including the version, e.g.
    /// `https://api.openai.com/v1` or `http://localhost:11434/v1`.
    pub base_url: String,
    /// Model name as the endpoint knows it.
    pub model: String,
    /// Sent only as `Authorization: Bearer …`; never logged, never in a
    /// transcript or a prompt.
    pub api_key: Option<String>,
    /// Chat completion requests per attempt (a round is one request).
    pub max_rounds: u32,
    /// Sum of `usage.total_tokens` after which no new request is made. A
    /// response without `usage` counts an estimate (a token per 4 bytes of
    /// request and answer), so an endpoint that reports nothing is bounded
    /// too.
    pub max_tokens: u64,
    /// Wall time of the whole attempt; also bounds each request.
    pub wall_time: Duration,
    /// Longest wait for one request, including the client's retries.
    pub request_timeout: Duration,
    /// Sampling temperature; `None` leaves the endpoint's default.
    pub temperature: Option<f32>,
    /// Asked before each request whether the attempt must stop now (the
    /// service's kill switch); `None` never stops.
    pub stop: Option<StopCheck>,
}

/// The answer of a [`StopCheck`]: `Some(reason)` stops the attempt.
pub type StopAnswer = Pin<Box<dyn Future<Output = Option<String>> + Send>>;

/// A check the agent loop makes before each chat completion request: the
/// service passes one that reads its kill switch, so a pause stops the
/// spending at the next request. The agent knows nothing of where the
/// answer comes from (it never depends on the store).
#[derive(Clone)]
pub struct StopCheck(Arc<dyn Fn() -> StopAnswer + Send + Sync>);

impl StopCheck {
    /// A check that runs `check` before each request.
    pub fn new(check: impl Fn() -> StopAnswer + Send + Sync + 'static) -> StopCheck {
        StopCheck(Arc::new(check))
    }

    /// Why the attempt must stop now, if it must.
    pub async fn reason(&self) -> Option<String> {
        (self.0)().await
    }
}

/// Two checks are equal when they are the same check.
impl PartialEq for StopCheck {
    fn eq(&self, other: &StopCheck) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl fmt::Debug for StopCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StopCheck")
    }
}

impl LlmConfig {
    /// `model` at `base_url` with no key and the default budget.
    pub fn new(base_url: &str, model: &str) -> LlmConfig {
        LlmConfig {
            base_url: base_url.trim_end_matches('/').to_string(),
            model: model.to_string(),
            api_key: None,
            max_rounds: DEFAULT_MAX_ROUNDS,
            max_tokens: DEFAULT_MAX_TOKENS,
            wall_time: DEFAULT_WALL_TIME,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            temperature: None,
            stop: None,
        }
    }

    /// This configuration, with `stop` asked before each request.
    pub fn with_stop(mut self, stop: StopCheck) -> LlmConfig {
        self.stop = Some(stop);
        self
    }

    /// From the environment: `SUTURE_LLM_BASE_URL`, `SUTURE_LLM_MODEL` and
    /// `SUTURE_LLM_API_KEY` (else `OPENAI_API_KEY`); the budget from
    /// `SUTURE_LLM_MAX_ROUNDS`, `SUTURE_LLM_MAX_TOKENS`,
    /// `SUTURE_LLM_WALL_TIME_SECS` and `SUTURE_LLM_REQUEST_TIMEOUT_SECS`
    /// (defaults otherwise). `None` unless both the
    /// base URL and the model are set: code is never sent to an endpoint
    /// nobody named.
    pub fn from_env() -> Option<LlmConfig> {
        LlmConfig::from_lookup(|name| std::env::var(name).ok())
    }

    /// The service's endpoint: `[llm]` of the configuration (with its
    /// `SUTURE_LLM_*` overrides and the key from the environment), or None
    /// when no endpoint is configured.
    pub fn from_config(config: &Config) -> Option<LlmConfig> {
        let llm = &config.llm;
        let mut out = LlmConfig::new(llm.base_url.as_deref()?, llm.model.as_deref()?);
        out.api_key = config.secrets.llm_api_key.clone();
        out.max_rounds = llm.max_rounds;
        out.max_tokens = llm.max_tokens;
        out.wall_time = Duration::from_secs(llm.wall_time_seconds);
        out.request_timeout = Duration::from_secs(llm.request_timeout_seconds);
        Some(out)
    }

    /// [`LlmConfig::from_env`] over any variable lookup (tests pass a map).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Option<LlmConfig> {
        let get = |name: &str| {
            lookup(name)
                .map(|value| value.trim().to_string())
                .filter(|value| !value.is_empty())
        };
        let base_url = get("SUTURE_LLM_BASE_URL")?;
        let model = get("SUTURE_LLM_MODEL")?;
        let mut config = LlmConfig::new(&base_url, &model);
        config.api_key = get("SUTURE_LLM_API_KEY").or_else(|| get("OPENAI_API_KEY"));
        let number = |name: &str| -> Option<u64> {
            let value = get(name)?;
            match value.parse() {
                Ok(number) => Some(number),
                Err(_) => {
                    tracing::warn!(
                        variable = name,
                        "ignoring {name}={value:?}: not a whole number"
                    );
                    None
                }
            }
        };
        if let Some(rounds) = number("SUTURE_LLM_MAX_ROUNDS") {
            config.max_rounds = u32::try_from(rounds).unwrap_or(u32::MAX);
        }
        if let Some(tokens) = number("SUTURE_LLM_MAX_TOKENS") {
            config.max_tokens = tokens;
        }
        if let Some(secs) = number("SUTURE_LLM_WALL_TIME_SECS") {
            config.wall_time = Duration::from_secs(secs);
        }
        if let Some(secs) = number("SUTURE_LLM_REQUEST_TIMEOUT_SECS") {
            config.request_timeout = Duration::from_secs(secs);
        }
        Some(config)
    }
}

impl fmt::Debug for LlmConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LlmConfig")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "[redacted]"))
            .field("max_rounds", &self.max_rounds)
            .field("max_tokens", &self.max_tokens)
            .field("wall_time", &self.wall_time)
            .field("request_timeout", &self.request_timeout)
            .field("temperature", &self.temperature)
            .finish()
    }
}

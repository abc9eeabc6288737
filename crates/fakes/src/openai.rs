//! A fake OpenAI-compatible chat-completions server for tests of the LLM rung.
//!
//! [`FakeOpenAi`] is an axum server on `127.0.0.1:0` that speaks the real
//! `POST /v1/chat/completions` wire format (non-streaming) and answers from a
//! script: a queue of [`Reply`]s (assistant text, assistant tool calls, HTTP
//! errors, a hang). It is strict the way a test oracle has to be: every
//! request body is checked against the request schema and every body it is
//! about to send against the response schema of
//! `shared/contracts/openai-chat-completions-subset.json` (the official
//! OpenAPI 3.1 description, cut down and dereferenced). A contract violation,
//! a request the script did not expect, or any other surprise is recorded in
//! [`FakeOpenAi::errors`] and answered with a 500, so a test that asserts the
//! list is empty proves the client spoke the protocol.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The contract file, relative to this crate (the workspace sits next to
/// `shared/`).
const CONTRACT_PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/contracts/openai-chat-completions-subset.json"
);

/// Route of the one operation the fake serves, under [`FakeOpenAi::base_url`].
const CHAT_COMPLETIONS: &str = "/v1/chat/completions";

/// `created` of every completion: a fixed time keeps recorded bodies stable.
const CREATED: u64 = 1_700_000_000;

/// Token counts reported in `usage` unless a reply says otherwise.
pub const DEFAULT_PROMPT_TOKENS: u64 = 100;
/// See [`DEFAULT_PROMPT_TOKENS`].
pub const DEFAULT_COMPLETION_TOKENS: u64 = 20;

/// One scripted answer, consumed by one request.
#[derive(Debug, Clone)]
pub struct Reply {
    kind: ReplyKind,
    /// `(prompt_tokens, completion_tokens)`; `None` leaves `usage` out, as
    /// some compatible servers do.
    usage: Option<(u64, u64)>,
}

#[derive(Debug, Clone)]
enum ReplyKind {
    /// An assistant message: text, tool calls, or both.
    Assistant {
        content: Option<String>,
        tool_calls: Vec<ToolCall>,
    },
    /// An error status with the OpenAI error body.
    Status {
        status: u16,
        message: String,
        retry_after: Option<u64>,
    },
    /// Never answer (until the fake is dropped): for timeout tests.
    Hang,
    /// A 200 with exactly this body, still checked against the contract:
    /// for testing the fake's own checks.
    RawBody(Value),
}

/// A tool call the scripted assistant makes.
#[derive(Debug, Clone)]
pub struct ToolCall {
    /// `None`: the fake numbers it (`call_1`, `call_2`, …).
    pub id: Option<String>,
    /// Function name, e.g. `read_file`.
    pub name: String,
    /// The arguments exactly as the model would send them: a JSON text,
    /// or anything else for malformed-argument tests.
    pub arguments: String,
}

impl ToolCall {
    /// A call with well-formed JSON arguments.
    pub fn new(name: &str, arguments: Value) -> ToolCall {
        ToolCall {
            id: None,
            name: name.to_string(),
            arguments: arguments.to_string(),
        }
    }

    /// A call whose arguments are sent verbatim (need not be JSON).
    pub fn raw(name: &str, arguments: &str) -> ToolCall {
        ToolCall {
            id: None,
            name: name.to_string(),
            arguments: arguments.to_string(),
        }
    }

    /// Sets the call id instead of the generated one.
    pub fn with_id(mut self, id: &str) -> ToolCall {
        self.id = Some(id.to_string());
        self
    }
}

impl Reply {
    /// An assistant message with text and no tool call.
    pub fn text(content: &str) -> Reply {
        Reply::assistant(Some(content.to_string()), Vec::new())
    }

    /// An assistant message with one tool call with JSON arguments.
    pub fn tool_call(name: &str, arguments: Value) -> Reply {
        Reply::tool_calls(vec![ToolCall::new(name, arguments)])
    }

    /// An assistant message with one tool call whose arguments are sent
    /// verbatim.
    pub fn tool_call_raw(name: &str, arguments: &str) -> Reply {
        Reply::tool_calls(vec![ToolCall::raw(name, arguments)])
    }

    /// An assistant message with several tool calls (parallel tool calls).
    pub fn tool_calls(calls: Vec<ToolCall>) -> Reply {
        Reply::assistant(None, calls)
    }

    /// An error answer with the OpenAI error body, e.g. 500 or 400.
    pub fn status(status: u16, message: &str) -> Reply {
        Reply {
            kind: ReplyKind::Status {
                status,
                message: message.to_string(),
                retry_after: None,
            },
            usage: None,
        }
    }

    /// A 500 `server_error`.
    pub fn server_error() -> Reply {
        Reply::status(500, "the server had an error while processing your request")
    }

    /// A 429 rate-limit answer (no `Retry-After`, so clients back off by
    /// their own schedule).
    pub fn rate_limited() -> Reply {
        Reply::status(429, "rate limit reached for requests")
    }

    /// An answer that never comes: the request hangs until the client gives
    /// up or the fake is dropped.
    pub fn hang() -> Reply {
        Reply {
            kind: ReplyKind::Hang,
            usage: None,
        }
    }

    /// A 200 with exactly `body`. The body is still checked against the
    /// response schema, so a non-conforming one becomes an error and a 500.
    pub fn raw_body(body: Value) -> Reply {
        Reply {
            kind: ReplyKind::RawBody(body),
            usage: None,
        }
    }

    /// Adds assistant text next to the tool calls.
    pub fn with_content(mut self, text: &str) -> Reply {
        if let ReplyKind::Assistant { content, .. } = &mut self.kind {
            *content = Some(text.to_string());
        }
        self
    }

    /// Reports these token counts in `usage`.
    pub fn with_usage(mut self, prompt_tokens: u64, completion_tokens: u64) -> Reply {
        self.usage = Some((prompt_tokens, completion_tokens));
        self
    }

    /// Leaves `usage` out of the response.
    pub fn without_usage(mut self) -> Reply {
        self.usage = None;
        self
    }

    fn assistant(content: Option<String>, tool_calls: Vec<ToolCall>) -> Reply {
        Reply {
            kind: ReplyKind::Assistant {
                content,
                tool_calls,
            },
            usage: Some((DEFAULT_PROMPT_TOKENS, DEFAULT_COMPLETION_TOKENS)),
        }
    }
}

/// A request as the fake received it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// HTTP method, e.g. `POST`.
    pub method: String,
    /// Path and query, e.g. `/v1/chat/completions`.
    pub path: String,
    /// Every header, names lowercase, in arrival order.
    pub headers: Vec<(String, String)>,
    /// The body as text (lossy UTF-8).
    pub raw_body: String,
    /// The body parsed as JSON, `Value::Null` when it is not JSON.
    pub body: Value,
}

impl RecordedRequest {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The request's `messages` array (empty when absent).
    pub fn messages(&self) -> &[Value] {
        self.body["messages"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
    }
}

/// A running fake; dropping it stops the server and releases hung requests.
#[derive(Debug)]
pub struct FakeOpenAi {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    server: JoinHandle<()>,
}

#[derive(Debug)]
struct Shared {
    script: Mutex<VecDeque<Reply>>,
    requests: Mutex<Vec<RecordedRequest>>,
    errors: Mutex<Vec<String>>,
    /// Numbers generated tool-call and completion ids.
    next_id: AtomicU64,
    shutdown: watch::Receiver<bool>,
}

impl FakeOpenAi {
    /// Starts the fake on `127.0.0.1:0` with `script`, one reply per request.
    ///
    /// # Panics
    ///
    /// When the contract file cannot be read or compiled, or the port cannot
    /// be bound: both are broken test setups, not outcomes to test.
    pub async fn start(script: impl IntoIterator<Item = Reply>) -> FakeOpenAi {
        // Compile the contract before serving so a broken contract fails the
        // test here, not inside a handler.
        contract();
        let (shutdown, shutdown_rx) = watch::channel(false);
        let shared = Arc::new(Shared {
            script: Mutex::new(script.into_iter().collect()),
            requests: Mutex::new(Vec::new()),
            errors: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(1),
            shutdown: shutdown_rx,
        });
        let app = Router::new()
            .route(CHAT_COMPLETIONS, post(chat_completions))
            .fallback(unexpected)
            .layer(DefaultBodyLimit::disable())
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the fake openai server to 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address of the fake");
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .await
                .expect("serving the fake openai server");
        });
        FakeOpenAi {
            addr,
            shared,
            shutdown,
            server,
        }
    }

    /// The base URL to configure a client with, e.g. `http://127.0.0.1:4711/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.requests).clone()
    }

    /// Every contract violation or unexpected request so far. A test that
    /// passes asserts this is empty.
    pub fn errors(&self) -> Vec<String> {
        lock(&self.shared.errors).clone()
    }

    /// Replies not yet consumed.
    pub fn remaining(&self) -> usize {
        lock(&self.shared.script).len()
    }

    /// Appends a reply to the script.
    pub fn push(&self, reply: Reply) {
        lock(&self.shared.script).push_back(reply);
    }
}

impl Drop for FakeOpenAi {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        self.server.abort();
    }
}

/// Contract errors of a chat-completions request body (empty when it
/// conforms).
pub fn check_request(body: &Value) -> Vec<String> {
    check(&contract().request, body)
}

/// Contract errors of a 200 chat-completions response body.
pub fn check_response(body: &Value) -> Vec<String> {
    check(&contract().response_ok, body)
}

async fn chat_completions(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let n = record(&shared, &method, &uri, &headers, &body);
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return fail(&shared, format!("request {n}: body is not JSON"));
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !content_type.starts_with("application/json") {
        return fail(
            &shared,
            format!("request {n}: content-type is {content_type:?}, not application/json"),
        );
    }
    let violations = check(&contract().request, &request);
    if !violations.is_empty() {
        return fail(
            &shared,
            format!(
                "request {n} breaks the request schema: {}",
                violations.join("; ")
            ),
        );
    }
    if request["stream"] == json!(true) {
        return fail(
            &shared,
            format!("request {n}: streaming is not supported by the fake"),
        );
    }
    let Some(reply) = lock(&shared.script).pop_front() else {
        return fail(
            &shared,
            format!("request {n}: unexpected request, the script is exhausted"),
        );
    };
    let model = request["model"].as_str().unwrap_or_default().to_string();
    match reply.kind {
        ReplyKind::Assistant {
            content,
            tool_calls,
        } => {
            let body = completion(&shared, &model, content, &tool_calls, reply.usage);
            respond_ok(&shared, n, body)
        }
        ReplyKind::RawBody(body) => respond_ok(&shared, n, body),
        ReplyKind::Status {
            status,
            message,
            retry_after,
        } => respond_error(&shared, n, status, &message, retry_after),
        ReplyKind::Hang => {
            let mut shutdown = shared.shutdown.clone();
            let _ = shutdown.wait_for(|stopped| *stopped).await;
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    }
}

async fn unexpected(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let n = record(&shared, &method, &uri, &headers, &body);
    fail(
        &shared,
        format!("request {n}: unexpected request {method} {uri}"),
    )
}

/// Records the request; returns its 1-based number.
fn record(shared: &Shared, method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> usize {
    let recorded = RecordedRequest {
        method: method.to_string(),
        path: uri.to_string(),
        headers: headers
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_string(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect(),
        raw_body: String::from_utf8_lossy(body).into_owned(),
        body: serde_json::from_slice(body).unwrap_or(Value::Null),
    };
    let mut requests = lock(&shared.requests);
    requests.push(recorded);
    requests.len()
}

fn completion(
    shared: &Shared,
    model: &str,
    content: Option<String>,
    tool_calls: &[ToolCall],
    usage: Option<(u64, u64)>,
) -> Value {
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    let mut message = json!({
        "role": "assistant",
        "content": content,
        "refusal": null,
    });
    if !tool_calls.is_empty() {
        let calls: Vec<Value> = tool_calls
            .iter()
            .map(|call| {
                let call_id = call.id.clone().unwrap_or_else(|| {
                    format!("call_{}", shared.next_id.fetch_add(1, Ordering::Relaxed))
                });
                json!({
                    "id": call_id,
                    "type": "function",
                    "function": { "name": call.name, "arguments": call.arguments },
                })
            })
            .collect();
        message["tool_calls"] = Value::Array(calls);
    }
    let finish_reason = if tool_calls.is_empty() {
        "stop"
    } else {
        "tool_calls"
    };
    let mut body = json!({
        "id": format!("chatcmpl-fake-{id}"),
        "object": "chat.completion",
        "created": CREATED,
        "model": model,
        "choices": [{
            "index": 0,
            "message": message,
            "finish_reason": finish_reason,
            "logprobs": null,
        }],
    });
    if let Some((prompt_tokens, completion_tokens)) = usage {
        body["usage"] = json!({
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        });
    }
    body
}

fn respond_ok(shared: &Shared, n: usize, body: Value) -> Response {
    let violations = check(&contract().response_ok, &body);
    if !violations.is_empty() {
        return fail(
            shared,
            format!(
                "response {n} breaks the response schema: {}",
                violations.join("; ")
            ),
        );
    }
    json_response(StatusCode::OK, &body)
}

fn respond_error(
    shared: &Shared,
    n: usize,
    status: u16,
    message: &str,
    retry_after: Option<u64>,
) -> Response {
    let Ok(status) = StatusCode::from_u16(status) else {
        return fail(shared, format!("response {n}: {status} is not a status"));
    };
    let (kind, code) = match status.as_u16() {
        429 => ("requests", Some("rate_limit_exceeded")),
        400..=499 => ("invalid_request_error", None),
        _ => ("server_error", None),
    };
    let body = json!({
        "error": { "message": message, "type": kind, "param": null, "code": code },
    });
    // The contract gives an error body schema for 429 only.
    if status == StatusCode::TOO_MANY_REQUESTS {
        let violations = check(&contract().response_429, &body);
        if !violations.is_empty() {
            return fail(
                shared,
                format!(
                    "response {n} breaks the 429 schema: {}",
                    violations.join("; ")
                ),
            );
        }
    }
    let mut response = json_response(status, &body);
    if let Some(seconds) = retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

/// Records `error` and answers 500.
fn fail(shared: &Shared, error: String) -> Response {
    lock(&shared.errors).push(error.clone());
    let body = json!({
        "error": { "message": error, "type": "fake_error", "param": null, "code": null },
    });
    json_response(StatusCode::INTERNAL_SERVER_ERROR, &body)
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// Compiled validators of the contract, built once per test binary.
struct Contract {
    request: jsonschema::Validator,
    response_ok: jsonschema::Validator,
    response_429: jsonschema::Validator,
}

fn contract() -> &'static Contract {
    static CONTRACT: OnceLock<Contract> = OnceLock::new();
    CONTRACT.get_or_init(|| {
        let text = std::fs::read_to_string(CONTRACT_PATH)
            .unwrap_or_else(|error| panic!("reading {CONTRACT_PATH}: {error}"));
        let document: Value = serde_json::from_str(&text)
            .unwrap_or_else(|error| panic!("parsing {CONTRACT_PATH}: {error}"));
        let operation = &document["paths"]["/chat/completions"]["post"];
        let compile = |pointer: &str| {
            let schema = operation
                .pointer(pointer)
                .unwrap_or_else(|| panic!("{CONTRACT_PATH} has no {pointer}"));
            // OpenAPI 3.1 schema objects are JSON Schema 2020-12.
            jsonschema::draft202012::new(schema)
                .unwrap_or_else(|error| panic!("compiling {pointer}: {error}"))
        };
        Contract {
            request: compile("/requestBody/content/application~1json/schema"),
            response_ok: compile("/responses/200/content/application~1json/schema"),
            response_429: compile("/responses/429/content/application~1json/schema"),
        }
    })
}

/// Violations of `validator` by `instance`, without the (possibly huge)
/// instance values.
fn check(validator: &jsonschema::Validator, instance: &Value) -> Vec<String> {
    validator
        .iter_errors(instance)
        .take(5)
        .map(|error| {
            format!(
                "at {:?} (schema {}): {}",
                error.instance_path().to_string(),
                error.schema_path(),
                error.masked()
            )
        })
        .collect()
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panicking test thread must not hide the recorded requests.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests;

//! The server half shared by the contract-checked REST fakes (GitHub,
//! Sentry, PagerDuty): an axum server on `127.0.0.1:0` that records every
//! request, matches it to an operation of an OpenAPI 3.0 contract, checks
//! the request and the answer against it, and injects scripted faults.
//!
//! A fake supplies an `Api`: its contract, its error body, and the
//! stateful handler. Anything surprising (no such operation, a request or
//! answer that breaks the contract, a protocol mistake the handler notices)
//! is recorded in `Server::errors` and answered with a 500, so a test that
//! asserts the list is empty proves the client spoke the protocol.
//!
//! Faults ([`Fault`]) are queued per operation and consumed by the next
//! matching request. A fault either replaces the answer before anything
//! happens (the server refused), or, [`Fault::after_applying`], after the
//! request took effect (the server did it, the client never heard): the
//! case that makes a retried create open a duplicate.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::contract::{OpenApi, Route, parse_query};

/// A request as a fake received it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// HTTP method, e.g. `POST`.
    pub method: String,
    /// Path and query, e.g. `/repos/acme/shop/pulls?state=all`.
    pub path: String,
    /// The operation's path template, when the contract has one.
    pub template: Option<String>,
    /// Every header, names lowercase, in arrival order.
    pub headers: Vec<(String, String)>,
    /// The body as text (lossy UTF-8).
    pub raw_body: String,
    /// The body parsed as JSON, `Value::Null` when empty or not JSON.
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

    /// Whether this request is `method` on the operation `template`.
    pub fn is(&self, method: &str, template: &str) -> bool {
        self.method.eq_ignore_ascii_case(method) && self.template.as_deref() == Some(template)
    }
}

/// A scripted misbehaviour, consumed by one request of one operation.
#[derive(Debug, Clone)]
pub struct Fault {
    kind: FaultKind,
    after_applying: bool,
}

#[derive(Debug, Clone)]
enum FaultKind {
    Status(u16),
    RetryAfter { status: u16, seconds: u64 },
    RateLimitReset { status: u16, reset_in: u64 },
    SecondaryRateLimit,
    Hang,
}

impl Fault {
    /// An error status with the service's error body, e.g. 502.
    pub fn status(status: u16) -> Fault {
        Fault::new(FaultKind::Status(status))
    }

    /// A rate-limit answer (`status` 429, or 403 for GitHub) with
    /// `Retry-After: seconds`.
    pub fn retry_after(status: u16, seconds: u64) -> Fault {
        Fault::new(FaultKind::RetryAfter { status, seconds })
    }

    /// GitHub's primary rate limit: `x-ratelimit-remaining: 0` and
    /// `x-ratelimit-reset` `reset_in` seconds from now (wall clock).
    pub fn rate_limit_reset(status: u16, reset_in: u64) -> Fault {
        Fault::new(FaultKind::RateLimitReset { status, reset_in })
    }

    /// GitHub's secondary rate limit without `Retry-After`: a 403 whose
    /// message says so, with rate-limit headers that are not exhausted.
    pub fn secondary_rate_limit() -> Fault {
        Fault::new(FaultKind::SecondaryRateLimit)
    }

    /// No answer until the fake is dropped: the client's timeout must act.
    pub fn hang() -> Fault {
        Fault::new(FaultKind::Hang)
    }

    /// Applies the request first, then answers with the fault: the server
    /// did it but the client cannot know.
    pub fn after_applying(mut self) -> Fault {
        self.after_applying = true;
        self
    }

    fn new(kind: FaultKind) -> Fault {
        Fault {
            kind,
            after_applying: false,
        }
    }
}

/// An answer from a fake's handler.
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    /// `None`: an empty body (204 and the like).
    pub(crate) body: Option<Value>,
    /// Protocol mistakes the handler noticed; each becomes an error and the
    /// answer a 500.
    pub(crate) problems: Vec<String>,
}

impl Answer {
    pub(crate) fn json(status: u16, body: Value) -> Answer {
        Answer {
            status,
            headers: Vec::new(),
            body: Some(body),
            problems: Vec::new(),
        }
    }

    pub(crate) fn empty(status: u16) -> Answer {
        Answer {
            status,
            headers: Vec::new(),
            body: None,
            problems: Vec::new(),
        }
    }

    pub(crate) fn problem(message: String) -> Answer {
        Answer {
            status: 500,
            headers: Vec::new(),
            body: None,
            problems: vec![message],
        }
    }

    pub(crate) fn with_header(mut self, name: &str, value: impl ToString) -> Answer {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }
}

/// One request, as a handler sees it.
#[derive(Debug)]
pub(crate) struct Call<'a> {
    pub(crate) route: &'a Route,
    pub(crate) query: &'a [(String, String)],
    pub(crate) headers: &'a HeaderMap,
    pub(crate) body: Option<&'a Value>,
}

impl Call<'_> {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    pub(crate) fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What a fake supplies to the shared server.
pub(crate) trait Api: Send + Sync + 'static {
    /// The contract every request and answer is checked against.
    fn contract(&self) -> &'static OpenApi;

    /// Contract errors of a request; the default checks query and body.
    fn check_request(
        &self,
        route: &Route,
        query: &[(String, String)],
        body: Option<&Value>,
    ) -> Vec<String> {
        self.contract().check_request(route, query, body)
    }

    /// The service's error body for `status`.
    fn error_body(&self, status: u16, message: &str) -> Value;

    /// The answer to a fault; the default covers every kind.
    fn fault_answer(&self, fault: &Fault) -> Answer {
        match fault.kind {
            FaultKind::Status(status) => Answer::json(status, self.error_body(status, "injected fault")),
            FaultKind::RetryAfter { status, seconds } => {
                Answer::json(status, self.error_body(status, "rate limit exceeded"))
                    .with_header("retry-after", seconds)
            }
            FaultKind::RateLimitReset { status, reset_in } => {
                let reset = chrono::Utc::now().timestamp() + reset_in as i64;
                Answer::json(status, self.error_body(status, "API rate limit exceeded"))
                    .with_header("x-ratelimit-limit", 5000)
                    .with_header("x-ratelimit-remaining", 0)
                    .with_header("x-ratelimit-used", 5000)
                    .with_header("x-ratelimit-reset", reset)
                    .with_header("x-ratelimit-resource", "core")
            }
            FaultKind::SecondaryRateLimit => Answer::json(
                403,
                self.error_body(
                    403,
                    "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
                ),
            )
            .with_header("x-ratelimit-limit", 5000)
            .with_header("x-ratelimit-remaining", 4990)
            .with_header("x-ratelimit-used", 10),
            FaultKind::Hang => Answer::empty(503),
        }
    }

    /// Handles a request that conforms to the contract.
    fn handle(&self, call: &Call<'_>) -> Answer;
}

/// A running fake server; dropping it stops the server and releases hung
/// requests.
pub(crate) struct Server<A: Api> {
    addr: SocketAddr,
    shared: Arc<Shared<A>>,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl<A: Api> std::fmt::Debug for Server<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("addr", &self.addr).finish()
    }
}

struct Shared<A> {
    api: A,
    requests: Mutex<Vec<RecordedRequest>>,
    errors: Mutex<Vec<String>>,
    faults: Mutex<Vec<(String, String, Fault)>>,
    shutdown: watch::Receiver<bool>,
}

impl<A: Api> Server<A> {
    /// Serves `api` on `127.0.0.1:0`.
    ///
    /// # Panics
    ///
    /// When the port cannot be bound: a broken test setup.
    pub(crate) async fn start(api: A) -> Server<A> {
        let (shutdown, shutdown_rx) = watch::channel(false);
        let shared = Arc::new(Shared {
            api,
            requests: Mutex::new(Vec::new()),
            errors: Mutex::new(Vec::new()),
            faults: Mutex::new(Vec::new()),
            shutdown: shutdown_rx,
        });
        let app = Router::new()
            .fallback(serve::<A>)
            .layer(DefaultBodyLimit::disable())
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding a fake server to 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address of the fake");
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .await
                .expect("serving a fake server");
        });
        Server {
            addr,
            shared,
            shutdown,
            task,
        }
    }

    pub(crate) fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub(crate) fn api(&self) -> &A {
        &self.shared.api
    }

    pub(crate) fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.requests).clone()
    }

    pub(crate) fn errors(&self) -> Vec<String> {
        lock(&self.shared.errors).clone()
    }

    /// Queues `fault` for the next `method` request to the operation
    /// `template`.
    ///
    /// # Panics
    ///
    /// When the contract has no such operation: a broken test.
    pub(crate) fn inject(&self, method: &str, template: &str, fault: Fault) {
        let method = method.to_ascii_lowercase();
        let contract = self.shared.api.contract();
        let operation = contract
            .route(&method, &example_path(template))
            .filter(|route| route.template == template);
        assert!(
            operation.is_some(),
            "the contract has no operation {method} {template}"
        );
        lock(&self.shared.faults).push((method, template.to_string(), fault));
    }

    /// Faults not yet consumed.
    pub(crate) fn pending_faults(&self) -> usize {
        lock(&self.shared.faults).len()
    }
}

impl<A: Api> Drop for Server<A> {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        self.task.abort();
    }
}

/// A concrete path for `template` (each parameter replaced by `x`), to
/// check an injected template against the contract's routing.
fn example_path(template: &str) -> String {
    template
        .split('/')
        .map(|part| if part.starts_with('{') { "x" } else { part })
        .collect::<Vec<_>>()
        .join("/")
}

async fn serve<A: Api>(
    State(shared): State<Arc<Shared<A>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let api = &shared.api;
    let contract = api.contract();
    let route = contract.route(method.as_str(), uri.path());
    let json_body: Option<Value> = if body.is_empty() {
        None
    } else {
        serde_json::from_slice(&body).ok()
    };
    let n = {
        let mut requests = lock(&shared.requests);
        requests.push(RecordedRequest {
            method: method.to_string(),
            path: uri
                .path_and_query()
                .map(|p| p.as_str().to_string())
                .unwrap_or_default(),
            template: route.as_ref().map(|r| r.template.clone()),
            headers: headers
                .iter()
                .map(|(name, value)| {
                    (
                        name.as_str().to_string(),
                        String::from_utf8_lossy(value.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            raw_body: String::from_utf8_lossy(&body).into_owned(),
            body: json_body.clone().unwrap_or(Value::Null),
        });
        requests.len()
    };
    let fail = |error: String| {
        lock(&shared.errors).push(error.clone());
        respond(&Answer::json(500, api.error_body(500, &error)))
    };
    let Some(route) = route else {
        return fail(format!("request {n}: unexpected request {method} {uri}"));
    };
    if !body.is_empty() && json_body.is_none() {
        return fail(format!("request {n}: the body is not JSON"));
    }
    if json_body.is_some() {
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if !content_type.starts_with("application/json") {
            return fail(format!(
                "request {n}: content-type is {content_type:?}, not application/json"
            ));
        }
    }
    let query = parse_query(uri.query().unwrap_or_default());
    let violations = api.check_request(&route, &query, json_body.as_ref());
    if !violations.is_empty() {
        return fail(format!(
            "request {n} ({} {}) breaks the contract: {}",
            route.method,
            route.template,
            violations.join("; ")
        ));
    }
    let fault = {
        let mut faults = lock(&shared.faults);
        faults
            .iter()
            .position(|(m, t, _)| *m == route.method && *t == route.template)
            .map(|index| faults.remove(index).2)
    };
    if let Some(fault) = &fault
        && !fault.after_applying
    {
        return answer_fault(&shared, n, &route, fault).await;
    }
    let call = Call {
        route: &route,
        query: &query,
        headers: &headers,
        body: json_body.as_ref(),
    };
    let answer = api.handle(&call);
    if !answer.problems.is_empty() {
        return fail(format!("request {n}: {}", answer.problems.join("; ")));
    }
    let violations = contract.check_response(
        &route,
        answer.status,
        answer.body.as_ref().unwrap_or(&Value::Null),
    );
    if answer.body.is_some() && !violations.is_empty() {
        return fail(format!(
            "answer {n} ({} {} {}) breaks the contract: {}",
            route.method,
            route.template,
            answer.status,
            violations.join("; ")
        ));
    }
    if let Some(fault) = &fault {
        return answer_fault(&shared, n, &route, fault).await;
    }
    respond(&answer)
}

async fn answer_fault<A: Api>(
    shared: &Shared<A>,
    n: usize,
    route: &Route,
    fault: &Fault,
) -> Response {
    if let FaultKind::Hang = fault.kind {
        let mut shutdown = shared.shutdown.clone();
        let _ = shutdown.wait_for(|stopped| *stopped).await;
    }
    let answer = shared.api.fault_answer(fault);
    if let Some(body) = &answer.body {
        let violations = shared
            .api
            .contract()
            .check_response(route, answer.status, body);
        if !violations.is_empty() && !(200..300).contains(&answer.status) {
            lock(&shared.errors).push(format!(
                "fault answer {n} ({} {} {}) breaks the contract: {}",
                route.method,
                route.template,
                answer.status,
                violations.join("; ")
            ));
        }
    }
    respond(&answer)
}

fn respond(answer: &Answer) -> Response {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = match &answer.body {
        Some(body) => (
            status,
            [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
            body.to_string(),
        )
            .into_response(),
        None => status.into_response(),
    };
    for (name, value) in &answer.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            response.headers_mut().append(name, value);
        }
    }
    response
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panicking test thread must not hide the recorded requests.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
pub(crate) mod raw;

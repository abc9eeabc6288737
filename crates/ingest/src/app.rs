//! The HTTP application: shared state, the route table, and the middleware
//! every route shares (concurrency cap, request span, metrics).
//!
//! CPU work on a body (decompressing, framing, parsing, verifying a
//! signature) runs off the async runtime through [`AppState::parse`], at
//! most one job per core at once, so a large body never stalls the threads
//! that answer health checks and read other requests. A small uncompressed
//! body (at most [`INLINE_BYTES`]) is parsed in place: the hop to a
//! blocking thread would cost more than parsing it.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use domain::config::{Config, LimitsConfig, Secrets, SentryProject};
use store::Store;
use tokio::sync::Semaphore;
use tracing::Instrument;

use crate::body::Body;
use crate::envelope::EnvelopeLimits;
use crate::metrics::{Metrics, SignalResult};
use crate::rate_limit::RateLimiter;
use crate::writer::Writer;
use crate::{IngestError, api, sdk, webhooks};

/// The largest uncompressed body parsed on the async runtime.
pub(crate) const INLINE_BYTES: usize = 64 * 1024;

/// What the endpoints need from the configuration, resolved.
#[derive(Debug, Clone)]
pub struct IngestConfig {
    /// Sentry SDK projects: id → public key.
    pub projects: HashMap<String, String>,
    /// Body size limits.
    pub limits: LimitsConfig,
    /// Webhook secrets and the API token.
    pub secrets: Secrets,
    /// How far `Sentry-Hook-Timestamp` may be from now.
    pub sentry_webhook_tolerance: Duration,
    /// Most requests handled at once.
    pub max_concurrent_requests: usize,
    /// Longest a request may take before it is answered 503.
    pub request_timeout: Duration,
    /// The configured repositories' names (`/api/status`, `suture_paused`).
    pub repos: Vec<String>,
}

impl IngestConfig {
    /// Resolves `config`, with `projects` the effective SDK projects (the
    /// configured ones, or the generated default).
    pub fn new(config: &Config, projects: &[SentryProject]) -> IngestConfig {
        IngestConfig {
            projects: projects
                .iter()
                .map(|project| (project.id.clone(), project.public_key.clone()))
                .collect(),
            limits: config.limits.clone(),
            secrets: config.secrets.clone(),
            sentry_webhook_tolerance: Duration::from_secs(config.sentry.webhook_tolerance_seconds),
            max_concurrent_requests: config.server.max_concurrent_requests,
            request_timeout: Duration::from_secs(config.server.request_timeout_seconds),
            repos: config.repos.iter().map(|repo| repo.name.clone()).collect(),
        }
    }
}

/// Everything a handler can reach; cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    pub(crate) config: Arc<IngestConfig>,
    pub(crate) store: Store,
    pub(crate) writer: Writer,
    pub(crate) metrics: Arc<Metrics>,
    limiter: Arc<Semaphore>,
    /// The memory budget for request bodies, in KiB permits.
    pub(crate) body_budget: Arc<Semaphore>,
    /// One permit per core: parsing jobs running off the runtime at once.
    parse_slots: Arc<Semaphore>,
    pub(crate) rate_limiter: Arc<RateLimiter>,
    request_ids: Arc<AtomicU64>,
    /// Names releases' commits for `/api/releases`; none until the service
    /// gives one.
    pub(crate) release_commits: Option<Arc<dyn ReleaseCommits>>,
}

/// The commits a project's releases name in the repository the project
/// routes to. Ingest knows no git, so the service supplies this.
pub trait ReleaseCommits: std::fmt::Debug + Send + Sync {
    /// The commit (40-hex) each of `releases` names, in order: `None` for
    /// a release that names none, and for all of them when no repository
    /// routes `project`. Blocking: it is called off the async runtime.
    fn commits(&self, project: &str, releases: &[String]) -> Vec<Option<String>>;
}

impl AppState {
    /// State over `store`, committing through `writer`.
    pub fn new(
        config: IngestConfig,
        store: Store,
        writer: Writer,
        metrics: Arc<Metrics>,
    ) -> AppState {
        AppState {
            limiter: Arc::new(Semaphore::new(config.max_concurrent_requests.max(1))),
            body_budget: Arc::new(Semaphore::new(
                config.limits.max_inflight_bytes.div_ceil(1024).max(1),
            )),
            parse_slots: Arc::new(Semaphore::new(
                std::thread::available_parallelism().map_or(2, usize::from),
            )),
            rate_limiter: Arc::new(RateLimiter::new(
                config.limits.events_per_minute_per_project,
            )),
            config: Arc::new(config),
            store,
            writer,
            metrics,
            request_ids: Arc::new(AtomicU64::new(1)),
            release_commits: None,
        }
    }

    /// This state, naming releases' commits with `resolver`.
    pub fn with_release_commits(mut self, resolver: Arc<dyn ReleaseCommits>) -> AppState {
        self.release_commits = Some(resolver);
        self
    }

    /// The caps on an SDK envelope.
    pub(crate) fn envelope_limits(&self) -> EnvelopeLimits {
        let limits = &self.config.limits;
        EnvelopeLimits {
            max_items: limits.max_envelope_items,
            max_header_bytes: limits.max_envelope_header_bytes,
            max_depth: limits.max_json_depth,
        }
    }

    /// Runs `work` on `body`: in place when the body is small and not
    /// compressed, else on a blocking thread once a parse slot is free.
    pub(crate) async fn parse<T: Send + 'static>(
        &self,
        body: Body,
        work: impl FnOnce(Body) -> Result<T, IngestError> + Send + 'static,
    ) -> Result<T, IngestError> {
        if body.is_small(INLINE_BYTES) {
            return work(body);
        }
        let _slot = self
            .parse_slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| IngestError::ShuttingDown)?;
        tokio::task::spawn_blocking(move || work(body))
            .await
            .map_err(IngestError::Internal)?
    }

    /// Refuses an event of `project` past its rate limit.
    pub(crate) fn admit_event(&self, project: &str) -> Result<(), IngestError> {
        self.rate_limiter
            .admit(project, Instant::now())
            .map_err(|retry_after| IngestError::RateLimited {
                project: project.to_owned(),
                retry_after,
            })
    }

    /// Counts what became of a delivery from `source`.
    pub(crate) fn record<T>(
        &self,
        source: &'static str,
        result: &Result<T, IngestError>,
        outcome: impl Fn(&T) -> SignalResult,
    ) {
        let result = match result {
            Ok(value) => outcome(value),
            Err(IngestError::RateLimited { .. }) => SignalResult::RateLimited,
            Err(error) => SignalResult::Rejected(error.reason()),
        };
        self.metrics.signal(source, result);
    }
}

/// The whole route table.
///
/// Body limits are enforced by each handler (per endpoint, before and after
/// decompression), so axum's default limit is off.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/{project_id}/envelope/", post(sdk::envelope))
        .route("/api/{project_id}/store/", post(sdk::store))
        .route("/webhooks/sentry", post(webhooks::sentry))
        .route("/webhooks/pagerduty", post(webhooks::pagerduty))
        .route("/webhooks/github", post(webhooks::github))
        .route("/healthz", get(api::healthz))
        .route("/readyz", get(api::readyz))
        .route("/metrics", get(api::metrics))
        .route("/api/incidents", get(api::incidents))
        .route("/api/incidents/{id}", get(api::incident))
        .route("/api/releases", get(api::releases))
        .route("/api/status", get(api::status))
        .route("/api/actions", get(api::actions))
        .method_not_allowed_fallback(|| async { IngestError::MethodNotAllowed })
        .route_layer(middleware::from_fn_with_state(state.clone(), track))
        .fallback(|| async { IngestError::NotFound })
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
}

/// `routes` of another surface (the pages) under the same per-request
/// rules as ingest's own: the concurrency cap, the request timeout, the
/// span and the request metrics.
pub fn tracked(state: &AppState, routes: Router) -> Router {
    routes.route_layer(middleware::from_fn_with_state(state.clone(), track))
}

/// Caps concurrent requests, runs each in a span with its route and id,
/// and counts it by route and status.
async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Ok(_permit) = state.limiter.acquire().await else {
        return IngestError::ShuttingDown.into_response();
    };
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let request_id = request
        .headers()
        .get("request-id")
        .or_else(|| request.headers().get("x-request-id"))
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
        .unwrap_or_else(|| {
            state
                .request_ids
                .fetch_add(1, Ordering::Relaxed)
                .to_string()
        });
    let span = tracing::info_span!("request", method = %request.method(), route = %route, request_id = %request_id);
    let started = Instant::now();
    // A request past its time is answered 503 with a reason. Dropping the
    // handler is safe: a delivery already queued is still committed, and
    // the sender's retry is deduplicated.
    let response = match tokio::time::timeout(
        state.config.request_timeout,
        next.run(request).instrument(span),
    )
    .await
    {
        Ok(response) => response,
        Err(_) => IngestError::Timeout.into_response(),
    };
    state
        .metrics
        .request(&route, response.status().as_u16(), started.elapsed());
    response
}

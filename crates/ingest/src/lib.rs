//! suture's ingest surface: the HTTP server real senders talk to.
//!
//! Sentry SDKs (`/api/{project_id}/envelope/`, `/store/`), Sentry
//! integration webhooks, PagerDuty v3 and GitHub webhooks come in here; so do
//! health checks, Prometheus scrapes and the incidents read API. What it
//! owns, by module:
//!
//! - `app`: state, route table, shared middleware (concurrency cap, request
//!   span, request metrics).
//! - `sdk`, `webhooks`: the endpoints; `signature` (HMAC checks), `body`
//!   (limits, the memory budget and decompression), [`envelope`] (framing
//!   within caps), [`json_depth`] and `rate_limit` (per-project event
//!   limits) serve them.
//! - `writer`: the bounded queue and batched committer; a delivery is
//!   answered 2xx only after its batch is durable in the store.
//! - `api`: health, readiness, metrics, incidents and releases.
//! - [`error::IngestError`]: every refusal, mapped to HTTP in one place.
//!
//! **Invariant:** ingest knows nothing about git, and runs no pipeline: it
//! stores signals, groups them into incidents and enqueues jobs; the workers
//! that run diagnose and heal live in the binary.

mod api;
mod app;
pub mod body;
pub mod envelope;
pub mod error;
pub mod json_depth;
pub mod metrics;
mod rate_limit;
mod sdk;
pub mod signature;
mod webhooks;
pub mod writer;

pub use app::{AppState, IngestConfig, ReleaseCommits, router, tracked};
pub use error::IngestError;

/// A fresh 32-hex-char id for a delivery that carries none: unique per
/// process (a counter) and across processes and restarts (time, pid).
pub fn fresh_id() -> String {
    use sha2::{Digest, Sha256};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = Sha256::new();
    hasher.update(std::process::id().to_le_bytes());
    hasher.update(
        chrono::Utc::now()
            .timestamp_nanos_opt()
            .unwrap_or_default()
            .to_le_bytes(),
    );
    hasher.update(COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    hex::encode(&hasher.finalize()[..16])
}

//! The HTTP/1.1 accept loop in front of the ingest router, with the limits a
//! server on the internet needs and `axum::serve` does not set.
//!
//! - **Header read timeout** (`server.header_read_timeout_seconds`): a
//!   client must send a request's head within it, counted from the
//!   connection's start or the end of its previous answer (hyper's timer);
//!   a half-sent request cannot hold a connection.
//! - **Idle timeout** (`server.idle_timeout_seconds`): a kept-alive
//!   connection with no request in progress is closed after it.
//! - **Connection cap** (`server.max_connections`): past it, the loop stops
//!   accepting and new connections wait in the kernel's backlog, so idle
//!   sockets cannot use up the file descriptors the store and workers need.
//! - **Accept errors** (EMFILE, ENFILE, ENOBUFS, a connection reset before
//!   it was accepted) are logged and retried after a backoff of up to a
//!   second; the loop never ends on one.
//!
//! Shutdown: when the token is cancelled the loop stops accepting, every
//! connection finishes the request in progress and closes, and [`serve`]
//! returns once they all have; with them the router (and its writer
//! handles) is dropped.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

/// The connection limits, from `[server]`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) header_read_timeout: Duration,
    pub(crate) idle_timeout: Duration,
    pub(crate) max_connections: usize,
}

/// Serves `router` on `listener` until `shutdown` is cancelled, then waits
/// for open connections to finish their request.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: CancellationToken,
) {
    let connections = TaskTracker::new();
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut backoff = Duration::ZERO;
    loop {
        let slot = tokio::select! {
            () = shutdown.cancelled() => break,
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
        };
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => {
                backoff = Duration::ZERO;
                stream
            }
            Err(error) => {
                backoff = (backoff * 2).clamp(Duration::from_millis(10), Duration::from_secs(1));
                tracing::warn!(error = %error, retry_in_ms = backoff.as_millis() as u64, "accepting a connection failed");
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(backoff) => continue,
                }
            }
        };
        let router = router.clone();
        let shutdown = shutdown.clone();
        connections.spawn(async move {
            serve_connection(stream, router, limits, shutdown).await;
            drop(slot);
        });
    }
    drop(listener);
    drop(router);
    connections.close();
    connections.wait().await;
}

/// Requests in progress on one connection, and when the last one ended:
/// read by the idle watchdog, which wakes once per idle timeout rather
/// than on every request.
#[derive(Debug)]
struct Activity {
    in_progress: AtomicUsize,
    /// Milliseconds since `since` at which the last request ended.
    last_ended_ms: AtomicU64,
    since: Instant,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            in_progress: AtomicUsize::new(0),
            last_ended_ms: AtomicU64::new(0),
            since: Instant::now(),
        }
    }

    /// How long the connection has had no request in progress, if none is.
    fn idle_for(&self) -> Option<Duration> {
        if self.in_progress.load(Ordering::Acquire) > 0 {
            return None;
        }
        let last = Duration::from_millis(self.last_ended_ms.load(Ordering::Acquire));
        Some(self.since.elapsed().saturating_sub(last))
    }
}

/// Counts a request in progress until dropped.
struct InProgress(Arc<Activity>);

impl InProgress {
    fn start(activity: &Arc<Activity>) -> InProgress {
        activity.in_progress.fetch_add(1, Ordering::AcqRel);
        InProgress(activity.clone())
    }
}

impl Drop for InProgress {
    fn drop(&mut self) {
        let now = self.0.since.elapsed().as_millis() as u64;
        self.0.last_ended_ms.store(now, Ordering::Release);
        self.0.in_progress.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Resolves once `activity` has been idle for `timeout`.
async fn idle(activity: &Activity, timeout: Duration) {
    let mut wait = timeout;
    loop {
        tokio::time::sleep(wait).await;
        match activity.idle_for() {
            Some(idle) if idle >= timeout => return,
            Some(idle) => wait = timeout - idle,
            None => wait = timeout,
        }
    }
}

async fn serve_connection(
    stream: TcpStream,
    router: Router,
    limits: Limits,
    shutdown: CancellationToken,
) {
    let _ = stream.set_nodelay(true);
    let activity = Arc::new(Activity::new());
    let service = {
        let activity = activity.clone();
        hyper::service::service_fn(move |request: Request<Incoming>| {
            let in_progress = InProgress::start(&activity);
            let response = router.clone().oneshot(request.map(axum::body::Body::new));
            async move {
                let response = response.await;
                drop(in_progress);
                response
            }
        })
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    let idle = idle(&activity, limits.idle_timeout);
    tokio::pin!(idle);
    let mut closing = false;
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(error = %error, "connection ended with an error");
                }
                return;
            }
            () = shutdown.cancelled(), if !closing => {
                closing = true;
                connection.as_mut().graceful_shutdown();
            }
            () = &mut idle, if !closing => {
                closing = true;
                connection.as_mut().graceful_shutdown();
            }
        }
    }
}

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
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore};
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

/// Requests in progress on one connection, and a signal when one ends.
#[derive(Debug, Default)]
struct Activity {
    in_progress: AtomicUsize,
    ended: Notify,
}

/// Counts a request in progress until dropped.
struct InProgress(Arc<Activity>);

impl Drop for InProgress {
    fn drop(&mut self) {
        self.0.in_progress.fetch_sub(1, Ordering::AcqRel);
        self.0.ended.notify_one();
    }
}

async fn serve_connection(
    stream: TcpStream,
    router: Router,
    limits: Limits,
    shutdown: CancellationToken,
) {
    let _ = stream.set_nodelay(true);
    let activity = Arc::new(Activity::default());
    let service = {
        let activity = activity.clone();
        hyper::service::service_fn(move |request: Request<Incoming>| {
            activity.in_progress.fetch_add(1, Ordering::AcqRel);
            let in_progress = InProgress(activity.clone());
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
    let mut closing = false;
    loop {
        let idle = async {
            loop {
                let ended = activity.ended.notified();
                if activity.in_progress.load(Ordering::Acquire) == 0 {
                    // Idle: wait for the timeout, unless a request starts
                    // and ends meanwhile (which restarts the wait).
                    tokio::select! {
                        () = tokio::time::sleep(limits.idle_timeout) => {
                            if activity.in_progress.load(Ordering::Acquire) == 0 {
                                return;
                            }
                        }
                        () = ended => {}
                    }
                } else {
                    ended.await;
                }
            }
        };
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
            () = idle, if !closing => {
                closing = true;
                connection.as_mut().graceful_shutdown();
            }
        }
    }
}

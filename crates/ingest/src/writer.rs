//! The write path: a bounded queue in front of one task that commits
//! deliveries to the store in batches, answering each sender only once its
//! delivery is durable.
//!
//! Handlers [`Writer::submit`] a signal and wait. The writer task takes
//! whatever is queued (up to `batch_max`), commits it in one transaction and
//! replies to every sender with its [`SignalOutcome`]. Under load a batch
//! carries many deliveries per fsync; idle, a batch is one delivery and adds
//! no delay. When the queue is full the handler answers 503 with
//! `Retry-After` at once rather than wait (the full-policy of this queue).
//! When every [`Writer`] handle is dropped, the task commits what is left
//! and ends: that is the drain on shutdown.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use store::{NewSignal, SignalOutcome, Store, StoreError};
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;

use crate::IngestError;
use crate::metrics::Metrics;

/// A delivery waiting for its commit.
struct Pending {
    signal: NewSignal,
    reply: oneshot::Sender<Result<SignalOutcome, Arc<StoreError>>>,
}

/// The handlers' side of the write path; cheap to clone.
#[derive(Clone)]
pub struct Writer {
    queue: mpsc::Sender<Pending>,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("capacity", &self.queue.max_capacity())
            .finish()
    }
}

impl Writer {
    /// Starts the writer task on the current runtime; it ends after every
    /// `Writer` clone is dropped and the queue is drained.
    pub fn spawn(
        store: Store,
        capacity: usize,
        batch_max: usize,
        metrics: Arc<Metrics>,
    ) -> (Writer, tokio::task::JoinHandle<()>) {
        let (queue, inbox) = mpsc::channel(capacity.max(1));
        let task = tokio::spawn(
            run(store, inbox, batch_max.max(1), metrics.clone())
                .instrument(tracing::info_span!("writer")),
        );
        (Writer { queue, metrics }, task)
    }

    /// Queues `signal` and waits until it is committed (or refused).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future after it queued the signal does not withdraw it:
    /// it is still committed, only nobody hears the outcome.
    pub async fn submit(&self, signal: NewSignal) -> Result<SignalOutcome, IngestError> {
        let (reply, outcome) = oneshot::channel();
        // Counted before it is queued, so the writer never takes it off the
        // gauge first.
        let depth = &self.metrics.ingest_queue_depth;
        depth.fetch_add(1, Ordering::Relaxed);
        self.queue
            .try_send(Pending { signal, reply })
            .map_err(|error| {
                depth.fetch_sub(1, Ordering::Relaxed);
                match error {
                    mpsc::error::TrySendError::Full(_) => IngestError::QueueFull,
                    mpsc::error::TrySendError::Closed(_) => IngestError::ShuttingDown,
                }
            })?;
        match outcome.await {
            Ok(Ok(outcome)) => Ok(outcome),
            Ok(Err(error)) => Err(IngestError::Store(error)),
            Err(_) => Err(IngestError::ShuttingDown),
        }
    }
}

async fn run(
    store: Store,
    mut inbox: mpsc::Receiver<Pending>,
    batch_max: usize,
    metrics: Arc<Metrics>,
) {
    let mut batch: Vec<Pending> = Vec::with_capacity(batch_max);
    while inbox.recv_many(&mut batch, batch_max).await > 0 {
        metrics
            .ingest_queue_depth
            .fetch_sub(batch.len() as i64, Ordering::Relaxed);
        let (signals, replies): (Vec<NewSignal>, Vec<_>) = batch
            .drain(..)
            .map(|pending| (pending.signal, pending.reply))
            .unzip();
        match store.commit_signals(&signals).await {
            Ok(outcomes) => {
                tracing::debug!(count = signals.len(), "committed batch");
                for (reply, outcome) in replies.into_iter().zip(outcomes) {
                    let _ = reply.send(Ok(outcome));
                }
            }
            Err(error) => {
                tracing::error!(
                    error = %crate::error::DisplayChain(&error),
                    count = signals.len(),
                    "committing batch failed"
                );
                let error = Arc::new(error);
                for reply in replies {
                    let _ = reply.send(Err(error.clone()));
                }
            }
        }
    }
    tracing::info!("ingest queue drained");
}

//! The service behind `suture serve`: [`run`] opens the store (migrating
//! it), starts the HTTP surface (`ingest`), the batched writer and the
//! workers, announces where senders should point, and drains on shutdown.
//!
//! The workers (`worker`) lease jobs from the store and run them by kind:
//! a round of an incident (`pipeline`: diagnose → heal → `propose`), a
//! forge event (`forge_events`: a merge, a close, a `/suture` command),
//! the verification of a merged fix (`verify`), or the answer to a page or
//! a new error (`actions`: links across sources, recovery actions).
//! [`forges`] builds each repository's forge and the upstream clients
//! once, from the config. [`demo_app`] writes the application `suture demo`
//! heals.
//!
//! HTTP is served by `http_server`: HTTP/1.1 with a header read timeout,
//! an idle timeout and a connection cap (`[server]`). The routes are
//! ingest's and the pages' (`pages::router`: the overview, each incident,
//! the local forge's review screen).
//!
//! Shutdown, when the token is cancelled: the listener stops accepting and
//! in-flight requests finish; the writer commits what is queued and ends
//! (so every 2xx already sent stays true); workers finish their current
//! step within `server.drain_seconds` or release their lease; then the
//! store is closed.

mod actions;
mod announce;
mod cause;
pub mod demo_app;
mod detect;
mod error;
mod forge_events;
pub mod forges;
mod http_server;
mod job;
mod limits;
mod outputs;
mod pipeline;
pub mod private_files;
mod propose;
mod release_commits;
mod triage;
mod verify;
mod worker;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use domain::config::{Config, SentryProject};
use ingest::metrics::Metrics;
use ingest::writer::Writer;
use ingest::{AppState, IngestConfig};
use store::{Store, StoreOptions};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::forges::Forges;
use crate::worker::{Pipeline, run_worker};

pub use crate::error::ServiceError;

/// Runs the service on a validated `config` until `shutdown` is cancelled,
/// then drains.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<(), ServiceError> {
    let data_dir = create_data_dir(&config)?;
    let projects = sdk_projects(&config, &data_dir)?;
    let store = open_store(&config).await?;
    let forges = Forges::build(&config, &store, &tokio::runtime::Handle::current())?;

    let metrics = Arc::new(Metrics::default());
    let (writer, writer_task) = Writer::spawn(
        store.clone(),
        config.queue.ingest_capacity,
        config.queue.batch_max,
        metrics.clone(),
    );
    let state = AppState::new(
        IngestConfig::new(&config, &projects),
        store.clone(),
        writer,
        metrics.clone(),
    );
    let state = state.with_release_commits(Arc::new(release_commits::RepoReleaseCommits {
        config: Arc::new(config.clone()),
    }));
    // The pages' routes have no fallback: ingest's answers what neither has.
    let local_forges = config
        .repos
        .iter()
        .filter_map(|repo| match &forges.for_repo(&repo.name)?.forge {
            forge::Forge::Local(local) => Some((repo.name.clone(), local.clone())),
            forge::Forge::GitHub(_) => None,
        })
        .collect();
    let pages = pages::Pages::new(store.clone(), Arc::new(config.clone()), local_forges)
        .map_err(ServiceError::Pages)?;
    let pages = ingest::tracked(&state, pages::router(pages));
    let router = ingest::router(state).merge(pages);
    let listen = |source| ServiceError::Listen {
        address: config.server.listen.clone(),
        source,
    };
    let listener = tokio::net::TcpListener::bind(&config.server.listen)
        .await
        .map_err(listen)?;
    let address = listener.local_addr().map_err(listen)?;
    announce::announce(&config, address, &projects, &store);

    let workers = TaskTracker::new();
    let config = Arc::new(config);
    let pipeline = Arc::new(Pipeline {
        store: store.clone(),
        config: config.clone(),
        metrics,
        forges: Arc::new(forges),
        owner_prefix: format!("{}-{}", hostname(), std::process::id()),
        pause: job::StepPause::from_env(),
    });
    for index in 0..config.queue.workers {
        workers.spawn(run_worker(pipeline.clone(), index, shutdown.clone()));
    }
    workers.close();

    let limits = http_server::Limits {
        header_read_timeout: std::time::Duration::from_secs(
            config.server.header_read_timeout_seconds,
        ),
        idle_timeout: std::time::Duration::from_secs(config.server.idle_timeout_seconds),
        max_connections: config.server.max_connections,
    };
    http_server::serve(listener, router, limits, shutdown.clone()).await;
    tracing::info!("http server stopped; draining");
    // The router (and with it every writer handle) is gone: the writer
    // commits what is queued and ends.
    if let Err(error) = writer_task.await {
        tracing::error!(error = %error, "the writer task failed");
    }
    workers.wait().await;
    store.close().await;
    Ok(())
}

/// Opens (and migrates) the configured store: `store.database_url`, else
/// SQLite in `store.data_dir`.
pub async fn open_store(config: &Config) -> Result<Store, ServiceError> {
    let data_dir = create_data_dir(config)?;
    let database_url = config.store.database_url.clone().map_or_else(
        || {
            // suture's own database file: private from the start.
            let path = data_dir.join("suture.db");
            private_files::create_empty(&path).map_err(|source| ServiceError::DataDir {
                path: path.clone(),
                source,
            })?;
            Ok(format!("sqlite:{}", path.display()))
        },
        Ok,
    )?;
    let mut store = Store::open(
        &database_url,
        &StoreOptions {
            max_connections: config.store.max_connections,
            ..StoreOptions::default()
        },
    )
    .await
    .map_err(|source| ServiceError::Store {
        url: store::redact_url(&database_url),
        source,
    })?;
    store.answer_incidents(actions::answers_incidents(config));
    Ok(store)
}

fn create_data_dir(config: &Config) -> Result<PathBuf, ServiceError> {
    let data_dir = PathBuf::from(&config.store.data_dir);
    private_files::create_dir(&data_dir).map_err(|source| ServiceError::DataDir {
        path: data_dir.clone(),
        source,
    })?;
    Ok(data_dir)
}

/// The configured SDK projects, or project `1` with a key kept in `data_dir`
/// (generated on first start), so a bare `suture serve` has a DSN to print.
fn sdk_projects(config: &Config, data_dir: &Path) -> Result<Vec<SentryProject>, ServiceError> {
    if !config.sentry.projects.is_empty() {
        return Ok(config.sentry.projects.clone());
    }
    let path = data_dir.join("sentry-public-key");
    let kept = |source| ServiceError::DsnKey {
        path: path.clone(),
        source,
    };
    let key = match std::fs::read_to_string(&path) {
        Ok(key) if !key.trim().is_empty() => key.trim().to_owned(),
        _ => {
            let mut bytes = [0u8; 16];
            std::fs::File::open("/dev/urandom")
                .and_then(|mut random| std::io::Read::read_exact(&mut random, &mut bytes))
                .map_err(kept)?;
            let key = bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
            private_files::write(&path, format!("{key}\n")).map_err(kept)?;
            key
        }
    };
    Ok(vec![SentryProject {
        id: "1".to_owned(),
        public_key: key,
    }])
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "suture".to_owned())
}

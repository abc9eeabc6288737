//! `suture serve`: the long-running service. Loads and validates the
//! configuration, opens the store (migrating it), starts the HTTP server,
//! the batched writer and the pipeline workers, prints where senders should
//! point, and shuts down gracefully.
//!
//! Shutdown, on SIGTERM or SIGINT: the listener stops accepting and
//! in-flight requests finish; the writer commits what is queued and ends
//! (so every 2xx already sent stays true); workers finish their current
//! step within `server.drain_seconds` or release their lease; then the
//! store is closed and the process exits 0. A second signal exits at once
//! (status 130): everything answered 2xx is already durable, and leases of
//! unfinished jobs simply expire.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use domain::config::{Config, SentryProject};
use ingest::metrics::Metrics;
use ingest::writer::Writer;
use ingest::{AppState, IngestConfig};
use store::{Store, StoreOptions};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::CommandError;
use crate::check_config_cmd;
use crate::forges::Forges;
use crate::worker::{Pipeline, run_worker};

/// Flags of `suture serve`; each overrides its configuration key.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// The configuration file [default: suture.toml, when it exists].
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address to listen on (`server.listen`); port 0 picks a free port.
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// Directory for the embedded database and keys (`store.data_dir`).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<String>,
    /// Pipeline workers (`queue.workers`); 0 runs ingest only.
    #[arg(long, value_name = "N")]
    workers: Option<usize>,
}

pub(crate) fn run(args: &ServeArgs) -> Result<(), CommandError> {
    let (mut config, _) = check_config_cmd::load(args.config.as_deref())?;
    if let Some(listen) = &args.listen {
        config.server.listen = listen.clone();
    }
    if let Some(data_dir) = &args.data_dir {
        config.store.data_dir = data_dir.clone();
    }
    if let Some(workers) = args.workers {
        config.queue.workers = workers;
    }
    check_config_cmd::refuse_problems(&check_config_cmd::problems(&config))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
        .map_err(CommandError::failure)?;
    runtime.block_on(serve(config))
}

async fn serve(config: Config) -> Result<(), CommandError> {
    let data_dir = PathBuf::from(&config.store.data_dir);
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("creating the data directory {}", data_dir.display()))
        .map_err(CommandError::failure)?;
    let projects = sdk_projects(&config, &data_dir).map_err(CommandError::failure)?;
    let store = open_store(&config).await.map_err(CommandError::failure)?;
    let forges = Forges::build(&config, &store, &tokio::runtime::Handle::current())
        .map_err(CommandError::failure)?;

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
    let router = ingest::router(state);
    let listener = tokio::net::TcpListener::bind(&config.server.listen)
        .await
        .with_context(|| format!("listening on {}", config.server.listen))
        .map_err(CommandError::failure)?;
    let address = listener
        .local_addr()
        .context("reading the listening address")
        .map_err(CommandError::failure)?;
    announce(&config, address, &projects, &store);

    let shutdown = CancellationToken::new();
    tokio::spawn(watch_signals(shutdown.clone()));
    let workers = TaskTracker::new();
    let config = Arc::new(config);
    let pipeline = Arc::new(Pipeline {
        store: store.clone(),
        config: config.clone(),
        metrics,
        forges: Arc::new(forges),
        owner_prefix: format!("{}-{}", hostname(), std::process::id()),
    });
    for index in 0..config.queue.workers {
        workers.spawn(run_worker(pipeline.clone(), index, shutdown.clone()));
    }
    workers.close();

    let served = axum::serve(listener, router)
        .with_graceful_shutdown(shutdown.clone().cancelled_owned())
        .await;
    tracing::info!("http server stopped; draining");
    // The router (and with it every writer handle) is gone: the writer
    // commits what is queued and ends.
    if let Err(error) = writer_task.await {
        tracing::error!(error = %error, "the writer task failed");
    }
    workers.wait().await;
    store.close().await;
    served
        .context("serving http")
        .map_err(CommandError::failure)?;
    eprintln!("suture stopped");
    Ok(())
}

/// Opens (and migrates) the configured store: `store.database_url`, else
/// SQLite in `store.data_dir`.
pub(crate) async fn open_store(config: &Config) -> anyhow::Result<Store> {
    let data_dir = PathBuf::from(&config.store.data_dir);
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("creating the data directory {}", data_dir.display()))?;
    let database_url = config
        .store
        .database_url
        .clone()
        .unwrap_or_else(|| format!("sqlite:{}", data_dir.join("suture.db").display()));
    Store::open(
        &database_url,
        &StoreOptions {
            max_connections: config.store.max_connections,
            ..StoreOptions::default()
        },
    )
    .await
    .with_context(|| format!("opening the store {}", store::redact_url(&database_url)))
}

/// Cancels `shutdown` on the first SIGTERM or SIGINT; exits at once on the second.
async fn watch_signals(shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot listen for signals: shutdown needs SIGKILL");
        return;
    };
    for count in 0.. {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        if count == 0 {
            eprintln!("suture: shutting down (signal again to stop at once)");
            shutdown.cancel();
        } else {
            eprintln!("suture: stopping at once");
            std::process::exit(130);
        }
    }
}

/// The configured SDK projects, or project `1` with a key kept in `data_dir`
/// (generated on first start), so a bare `suture serve` has a DSN to print.
fn sdk_projects(config: &Config, data_dir: &Path) -> anyhow::Result<Vec<SentryProject>> {
    if !config.sentry.projects.is_empty() {
        return Ok(config.sentry.projects.clone());
    }
    let path = data_dir.join("sentry-public-key");
    let key = match std::fs::read_to_string(&path) {
        Ok(key) if !key.trim().is_empty() => key.trim().to_owned(),
        _ => {
            let mut bytes = [0u8; 16];
            std::fs::File::open("/dev/urandom")
                .and_then(|mut random| std::io::Read::read_exact(&mut random, &mut bytes))
                .context("reading /dev/urandom for a DSN key")?;
            let key = bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
            std::fs::write(&path, format!("{key}\n"))
                .with_context(|| format!("writing {}", path.display()))?;
            key
        }
    };
    Ok(vec![SentryProject {
        id: "1".to_owned(),
        public_key: key,
    }])
}

/// Prints where senders should point: the first line is what scripts and
/// tests read to learn the address.
fn announce(config: &Config, address: SocketAddr, projects: &[SentryProject], store: &Store) {
    let base = config
        .server
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{address}"));
    let base = base.trim_end_matches('/');
    let host = base.split_once("://").map_or(base, |(_, rest)| rest);
    let scheme = base.split_once("://").map_or("http", |(scheme, _)| scheme);
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "suture listening on http://{address}");
    for project in projects {
        let _ = writeln!(
            out,
            "  sentry dsn (project {}): {scheme}://{}@{host}/{}",
            project.id, project.public_key, project.id
        );
    }
    let _ = writeln!(out, "  sentry webhook:    {base}/webhooks/sentry");
    let _ = writeln!(out, "  pagerduty webhook: {base}/webhooks/pagerduty");
    let _ = writeln!(out, "  github webhook:    {base}/webhooks/github");
    let _ = writeln!(out, "  incidents:         {base}/api/incidents");
    let _ = writeln!(out, "  store:             {}", store.description());
    let _ = writeln!(out, "  workers:           {}", config.queue.workers);
    for repo in &config.repos {
        let target = match repo.forge.as_str() {
            "github" => format!("github {}", repo.github_repo.as_deref().unwrap_or("?")),
            _ => format!(
                "local forge {} (suture pr list)",
                crate::forges::local_remote(config, repo).display()
            ),
        };
        let _ = writeln!(out, "  repo {}: {} mode → {target}", repo.name, repo.mode);
    }
    let _ = out.flush();
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "suture".to_owned())
}

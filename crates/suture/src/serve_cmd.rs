//! `suture serve`: loads and validates the configuration, then runs
//! [`service::run`] until SIGTERM or SIGINT, which drains it and exits 0.
//! A second signal exits at once (status 130): everything answered 2xx is
//! already durable, and leases of unfinished jobs simply expire.
//!
//! A listener reachable from other machines without `SUTURE_API_TOKEN` is
//! refused on its own, in one line (exit 2), before anything else: it is
//! the mistake that exposes every incident.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use tokio_util::sync::CancellationToken;

use crate::CommandError;
use crate::check_config_cmd;

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
    if let Some(open) = check_config_cmd::open_api(&config) {
        return Err(CommandError::bad_input(anyhow::anyhow!(open)));
    }
    check_config_cmd::refuse_problems(&check_config_cmd::problems(&config))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
        .map_err(CommandError::failure)?;
    runtime.block_on(async {
        let shutdown = CancellationToken::new();
        tokio::spawn(watch_signals(shutdown.clone()));
        service::run(config, shutdown)
            .await
            .map_err(CommandError::failure)?;
        eprintln!("suture stopped");
        Ok(())
    })
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

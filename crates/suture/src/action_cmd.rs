//! `suture action approve ID`: approve a recovery action run that waits
//! for approval (mode `approve`), from the machine suture runs on, as
//! `/suture approve` on the tracking issue does from the forge.
//!
//! It writes to the store `suture serve` uses (the same `--config`): the
//! run becomes queued with its job, and a worker of any replica runs it
//! within its limits. The one running the command is who approved it (the
//! `USER`, else `--as`).

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};

use crate::CommandError;
use crate::check_config_cmd;

/// Flags of `suture action`.
#[derive(Debug, Args)]
pub(crate) struct ActionArgs {
    #[command(subcommand)]
    command: ActionCommand,
}

#[derive(Debug, Subcommand)]
enum ActionCommand {
    /// Approve the run with this id (`GET /api/actions` lists them).
    Approve {
        /// The run's id.
        id: i64,
        /// The configuration file [default: suture.toml, when it exists].
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Who approves, for the record [default: $USER].
        #[arg(long = "as", value_name = "NAME")]
        by: Option<String>,
    },
}

/// `suture action …`.
pub(crate) fn run(args: &ActionArgs) -> Result<(), CommandError> {
    let ActionCommand::Approve { id, config, by } = &args.command;
    let by = by
        .clone()
        .or_else(|| std::env::var("USER").ok())
        .filter(|by| !by.trim().is_empty())
        .unwrap_or_else(|| "an operator".to_owned());
    let (config, _) = check_config_cmd::load(config.as_deref())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
        .map_err(CommandError::failure)?;
    runtime.block_on(async {
        let store = service::open_store(&config)
            .await
            .map_err(CommandError::failure)?;
        let message = format!("action run {id} approved by {by} (suture action approve): queued");
        let result = store
            .approve_action_run(*id, &by, &message)
            .await
            .context("approving the run in the store")
            .map_err(CommandError::failure);
        store.close().await;
        match result? {
            None => Err(CommandError::bad_input(anyhow::anyhow!(
                "there is no action run {id} (GET /api/actions lists them)"
            ))),
            Some(run) if run.state == store::run_state::AWAITING_APPROVAL => {
                println!(
                    "approved run {id} of action {} on incident #{}: queued",
                    run.action, run.incident_id
                );
                Ok(())
            }
            Some(run) => Err(CommandError::bad_input(anyhow::anyhow!(
                "run {id} of action {} does not await approval: it is {}",
                run.action,
                run.result.as_deref().unwrap_or(&run.state)
            ))),
        }
    })
}

//! `suture pause` and `suture resume`: the kill switch.
//!
//! Both write the pauses into the store `suture serve` uses (the same
//! `--config`), so every replica reading that store honours them before its
//! next outside effect or LLM request; nothing has to be restarted or
//! signalled. The configuration is not validated beyond reading it: an
//! operator stopping suture in a hurry should not first have to fix an
//! unrelated problem. A `--repo` must name a configured repository, so a
//! typo never pauses nothing.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use domain::config::Config;
use store::{Pause, Pauses, Store};

use crate::CommandError;
use crate::check_config_cmd;

/// Flags of `suture pause`.
#[derive(Debug, Args)]
pub(crate) struct PauseArgs {
    /// The configuration file [default: suture.toml, when it exists].
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Pause only this repository (a `[[repos]]` name) [default: everything].
    #[arg(long, value_name = "NAME")]
    repo: Option<String>,
    /// Why, for the timeline and `GET /api/status`.
    #[arg(long, value_name = "TEXT", default_value = "paused by an operator")]
    reason: String,
}

/// Flags of `suture resume`.
#[derive(Debug, Args)]
pub(crate) struct ResumeArgs {
    /// The configuration file [default: suture.toml, when it exists].
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Resume only this repository [default: lift the global pause].
    #[arg(long, value_name = "NAME")]
    repo: Option<String>,
}

/// `suture pause`.
pub(crate) fn pause(args: &PauseArgs) -> Result<(), CommandError> {
    let reason = args.reason.trim();
    if reason.is_empty() {
        return Err(CommandError::bad_input(anyhow::anyhow!(
            "--reason is empty: say why, for whoever reads the timeline"
        )));
    }
    let by = std::env::var("USER").ok().filter(|user| !user.is_empty());
    with_store(
        args.config.as_ref(),
        args.repo.as_deref(),
        |store| async move {
            let pauses = store
                .pause(args.repo.as_deref(), reason, by.as_deref())
                .await?;
            match &args.repo {
                Some(repo) => println!("paused {repo}: {reason}"),
                None => println!("paused everything: {reason}"),
            }
            print_pauses(&pauses);
            Ok(())
        },
    )
}

/// `suture resume`.
pub(crate) fn resume(args: &ResumeArgs) -> Result<(), CommandError> {
    with_store(
        args.config.as_ref(),
        args.repo.as_deref(),
        |store| async move {
            let (lifted, pauses) = store.resume(args.repo.as_deref()).await?;
            let what = args.repo.as_deref().unwrap_or("everything");
            match lifted {
                Some(pause) => println!("resumed {what} (paused since {})", since(&pause)),
                None => println!("{what} was not paused"),
            }
            print_pauses(&pauses);
            Ok(())
        },
    )
}

/// Loads the configuration, checks `repo` names a configured repository,
/// opens the store and runs `work` on it.
pub(crate) fn with_store<F>(
    config: Option<&PathBuf>,
    repo: Option<&str>,
    work: impl FnOnce(Store) -> F,
) -> Result<(), CommandError>
where
    F: Future<Output = Result<(), store::StoreError>>,
{
    let (config, _) = check_config_cmd::load(config.map(PathBuf::as_path))?;
    check_repo(&config, repo)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
        .map_err(CommandError::failure)?;
    runtime.block_on(async {
        let store = service::open_store(&config)
            .await
            .map_err(CommandError::failure)?;
        let result = work(store.clone())
            .await
            .context("writing to the store")
            .map_err(CommandError::failure);
        store.close().await;
        result
    })
}

fn check_repo(config: &Config, repo: Option<&str>) -> Result<(), CommandError> {
    let Some(repo) = repo else {
        return Ok(());
    };
    if config
        .repos
        .iter()
        .any(|configured| configured.name == repo)
    {
        return Ok(());
    }
    let names: Vec<&str> = config.repos.iter().map(|r| r.name.as_str()).collect();
    Err(CommandError::bad_input(anyhow::anyhow!(
        "no repository is called {repo:?} in the configuration (known: {})",
        if names.is_empty() {
            "none".to_owned()
        } else {
            names.join(", ")
        }
    )))
}

/// What stays paused, one line each.
fn print_pauses(pauses: &Pauses) {
    if pauses.is_empty() {
        println!("nothing is paused");
        return;
    }
    if let Some(pause) = &pauses.global {
        println!("  everything: {} (since {})", pause.reason, since(pause));
    }
    for (repo, pause) in &pauses.repos {
        println!("  {repo}: {} (since {})", pause.reason, since(pause));
    }
}

fn since(pause: &Pause) -> String {
    let by = pause
        .by
        .as_deref()
        .map(|by| format!(" by {by}"))
        .unwrap_or_default();
    format!("{}{by}", pause.since.format("%Y-%m-%d %H:%M:%S UTC"))
}

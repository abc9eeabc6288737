//! `suture pr list|show|merge|close|comment`: the local forge's review
//! screen. A human reads suture's pull requests and acts on them here the
//! way they would on GitHub.
//!
//! Merging, closing and commenting go through `pages::review`, the one
//! place that acts on the forge and delivers the forge event (source
//! `local_forge`) to the store with its job — the review screen's buttons
//! call it too — so `suture serve` (running now or started later) reacts
//! exactly as it does to GitHub's webhooks: a merge starts the quiet
//! window, a close rejects the fix, a `/suture` comment is a command.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use domain::config::{Config, ForgeKind, RepoConfig};
use forge::{LocalForge, LocalPullRequest};
use pages::review;

use crate::CommandError;
use crate::check_config_cmd;

/// Flags of `suture pr`.
#[derive(Debug, Args)]
pub(crate) struct PrArgs {
    /// The configuration file [default: suture.toml, when it exists].
    #[arg(long, value_name = "FILE", global = true)]
    config: Option<PathBuf>,
    /// The repository (a `[[repos]]` name); needed when several use the
    /// local forge.
    #[arg(long, value_name = "NAME", global = true)]
    repo: Option<String>,
    #[command(subcommand)]
    action: PrAction,
}

#[derive(Debug, Subcommand)]
enum PrAction {
    /// List the pull requests, newest first.
    List {
        /// One JSON array instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// Show a pull request: its report, comments and diff.
    Show {
        /// The pull request's number.
        number: u64,
    },
    /// Merge a pull request into its base branch; suture then verifies
    /// the fix.
    Merge {
        /// The pull request's number.
        number: u64,
    },
    /// Close a pull request without merging; suture will not propose the
    /// fix again.
    Close {
        /// The pull request's number.
        number: u64,
    },
    /// Comment on a pull request or tracking issue (`/suture stop`,
    /// `/suture retry [guidance]`, `/suture explain` are commands).
    Comment {
        /// The pull request's or issue's number.
        number: u64,
        /// The comment.
        body: String,
        /// Who is commenting [default: $USER].
        #[arg(long = "as", value_name = "LOGIN")]
        login: Option<String>,
    },
}

pub(crate) fn run(args: &PrArgs) -> Result<(), CommandError> {
    let (config, _) = check_config_cmd::load(args.config.as_deref())?;
    let problems: Vec<String> = config.validate().iter().map(ToString::to_string).collect();
    check_config_cmd::refuse_problems(&problems)?;
    let repo = pick_repo(&config, args.repo.as_deref())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("starting the async runtime")
        .map_err(CommandError::failure)?;
    let store = runtime
        .block_on(service::open_store(&config))
        .map_err(CommandError::failure)?;
    let forge = service::forges::local_forge(&config, &repo, &store, runtime.handle())
        .map_err(CommandError::failure)?;
    let forge_error = |error: forge::ForgeError| match error {
        forge::ForgeError::NotFound { .. } | forge::ForgeError::WrongState { .. } => {
            CommandError::bad_input(error)
        }
        other => CommandError::failure(other),
    };
    let review_error = |error: pages::review::ReviewError| {
        if error.is_refusal() {
            CommandError::bad_input(error)
        } else {
            CommandError::failure(error)
        }
    };
    match &args.action {
        PrAction::List { json } => {
            let mut pulls = forge.list().map_err(forge_error)?;
            pulls.reverse();
            if *json {
                let text = serde_json::to_string_pretty(&pulls)
                    .context("writing JSON")
                    .map_err(CommandError::failure)?;
                println!("{text}");
            } else if pulls.is_empty() {
                println!("no pull requests");
            } else {
                for pull in &pulls {
                    println!(
                        "#{:<4} {:<7} {:<8} {}  ({})",
                        pull.number, pull.state, pull.strategy, pull.title, pull.branch
                    );
                }
            }
        }
        PrAction::Show { number } => {
            let pull = forge.show(*number).map_err(forge_error)?;
            print_pull(&forge, &pull);
        }
        PrAction::Merge { number } => {
            let (outcome, pull) = runtime
                .block_on(review::merge(&forge, &store, &repo.name, *number))
                .map_err(review_error)?;
            println!(
                "merged #{number} into {} ({}, {}); suture verifies the fix",
                pull.base_branch,
                outcome.commit.get(..10).unwrap_or(&outcome.commit),
                if outcome.fast_forward {
                    "fast-forward"
                } else {
                    "merge commit"
                }
            );
        }
        PrAction::Close { number } => {
            runtime
                .block_on(review::close(&forge, &store, &repo.name, *number))
                .map_err(review_error)?;
            println!("closed #{number} without merging; suture will not propose this fix again");
        }
        PrAction::Comment {
            number,
            body,
            login,
        } => {
            let login = login
                .clone()
                .or_else(|| std::env::var("USER").ok())
                .filter(|login| !login.trim().is_empty())
                .unwrap_or_else(|| "operator".to_owned());
            runtime
                .block_on(review::comment(
                    &forge, &store, &repo.name, *number, body, &login,
                ))
                .map_err(review_error)?;
            println!("commented on #{number}");
        }
    }
    Ok(())
}

/// The repository `name`, or the only one on the local forge.
fn pick_repo(config: &Config, name: Option<&str>) -> Result<RepoConfig, CommandError> {
    let local: Vec<&RepoConfig> = config
        .repos
        .iter()
        .filter(|repo| repo.forge == ForgeKind::Local)
        .collect();
    let picked = match name {
        Some(name) => local.into_iter().find(|repo| repo.name == name),
        None if local.len() == 1 => local.into_iter().next(),
        None if local.is_empty() => None,
        None => {
            return Err(CommandError::bad_input(anyhow::anyhow!(
                "several repositories use the local forge: name one with --repo ({})",
                config
                    .repos
                    .iter()
                    .filter(|repo| repo.forge == ForgeKind::Local)
                    .map(|repo| repo.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    };
    picked.cloned().ok_or_else(|| {
        CommandError::bad_input(anyhow::anyhow!(
            "no repository{} uses the local forge: see [[repos]] in suture.toml",
            name.map(|name| format!(" named {name:?}"))
                .unwrap_or_default()
        ))
    })
}

fn print_pull(forge: &LocalForge, pull: &LocalPullRequest) {
    println!("#{} {} [{}]", pull.number, pull.title, pull.state);
    println!(
        "  {} → {}   strategy {}   opened {}",
        pull.branch,
        pull.base_branch,
        pull.strategy,
        pull.created_at.format("%Y-%m-%d %H:%M UTC")
    );
    if let Some(issue) = pull.tracking_issue {
        println!("  tracking issue #{issue}");
    }
    if !pull.reviewers.is_empty() {
        println!("  reviewers {}", pull.reviewers.join(", "));
    }
    if let Some(sha) = &pull.merge_commit_sha {
        println!("  merged as {sha}");
    }
    println!("\n{}\n", pull.body.trim_end());
    for comment in &pull.comments {
        println!("--- comment\n{comment}\n");
    }
    match review::pull_diff(forge, pull) {
        Ok(diff) => println!("--- diff\n{diff}"),
        Err(error) => println!("--- diff unavailable: {}", error.message()),
    }
}

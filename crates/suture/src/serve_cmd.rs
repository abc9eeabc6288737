//! `suture serve`: loads and validates the configuration, then runs
//! [`service::run`] until SIGTERM or SIGINT, which drains it and exits 0.
//! A second signal exits at once (status 130): everything answered 2xx is
//! already durable, and leases of unfinished jobs simply expire.
//!
//! A listener reachable from other machines without `SUTURE_API_TOKEN` is
//! refused on its own, in one line (exit 2), before anything else: it is
//! the mistake that exposes every incident.
//!
//! `--repo PATH` is the way to try suture on one repository without writing
//! a configuration: it adds that repository as the only `[[repos]]` entry
//! (local forge, `pr` mode, every other key as configured or defaulted), so
//! every SDK project routes to it. A configuration that already lists
//! repositories is refused with `--repo` (exit 2) rather than merged:
//! which of them would an event go to is exactly what the flag cannot say.
//! The test command is `--test-cmd`, else detected from the tree now, so
//! a tree suture cannot test is refused at start rather than at the first
//! incident.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use domain::config::{Config, RepoConfig};
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
    /// Heal this repository (a local clone; only read): every SDK project
    /// routes to it, fixes go to the local forge. Refused when the
    /// configuration already lists `[[repos]]`.
    #[arg(long, value_name = "PATH")]
    repo: Option<PathBuf>,
    /// The test command of `--repo` [default: detected from its tree].
    #[arg(long, value_name = "CMD", requires = "repo")]
    test_cmd: Option<String>,
}

pub(crate) fn run(args: &ServeArgs) -> Result<(), CommandError> {
    let (mut config, path) = check_config_cmd::load(args.config.as_deref())?;
    if let Some(repo) = &args.repo {
        add_only_repo(&mut config, path.as_deref(), repo, args.test_cmd.as_deref())?;
    }
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
    runtime()?.block_on(async {
        let shutdown = CancellationToken::new();
        tokio::spawn(watch_signals(shutdown.clone()));
        service::run(config, shutdown)
            .await
            .map_err(CommandError::failure)?;
        eprintln!("suture stopped");
        Ok(())
    })
}

/// The multi-threaded runtime the service runs on.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, CommandError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
        .map_err(CommandError::failure)
}

/// Makes `repo` the configuration's one repository (see the module docs);
/// `file` is the configuration file read, for the refusal.
fn add_only_repo(
    config: &mut Config,
    file: Option<&Path>,
    repo: &Path,
    test_command: Option<&str>,
) -> Result<(), CommandError> {
    if !config.repos.is_empty() {
        let file = file.map_or("the configuration".to_owned(), |f| f.display().to_string());
        return Err(CommandError::bad_input(anyhow::anyhow!(
            "--repo serves one repository, and {file} already lists {} in [[repos]]: \
             drop --repo, or add {} there",
            config.repos.len(),
            repo.display()
        )));
    }
    let repo = only_repo(repo, test_command)?;
    // On stderr: stdout's first line is the address scripts wait for.
    eprintln!(
        "suture: every SDK project routes to {} ({}); its tests run with `{}`",
        repo.name,
        repo.path,
        repo.test_command.as_deref().unwrap_or_default()
    );
    config.repos.push(repo);
    Ok(())
}

/// The one repository `serve --repo` and `demo` heal: named after its
/// directory, with the local forge and `test_command` or the one its tree
/// implies. Every other key keeps its default.
pub(crate) fn only_repo(
    path: &Path,
    test_command: Option<&str>,
) -> Result<RepoConfig, CommandError> {
    let path = path
        .canonicalize()
        .with_context(|| format!("--repo {}", path.display()))
        .map_err(CommandError::bad_input)?;
    repo::git::Repo::open(&path)
        .with_context(|| format!("--repo {} is not a git repository", path.display()))
        .map_err(CommandError::bad_input)?;
    let test_command = match test_command {
        Some(command) => command.to_owned(),
        None => agent::heal::detect_test_command(&path).ok_or_else(|| {
            CommandError::bad_input(anyhow::anyhow!(
                "no test command detected in {} (cargo, npm, go, maven, pytest): \
                 pass --test-cmd",
                path.display()
            ))
        })?,
    };
    Ok(RepoConfig {
        name: repo_name(&path),
        path: path.display().to_string(),
        test_command: Some(test_command),
        ..RepoConfig::default()
    })
}

/// The directory's name, kept to what is safe in the local forge's path
/// (`<data_dir>/forge/<name>.git`) and in `suture pr --repo`.
fn repo_name(path: &Path) -> String {
    let name: String = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let name = name.trim_matches('-');
    if name.is_empty() {
        "app".to_owned()
    } else {
        name.to_owned()
    }
}

/// Cancels `shutdown` on the first SIGTERM or SIGINT; exits at once on the second.
pub(crate) async fn watch_signals(shutdown: CancellationToken) {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A git repository with a Python test tree, so pytest is detected.
    fn python_repo() -> tempfile::TempDir {
        let dir = tempfile::Builder::new()
            .prefix("shop (main)")
            .tempdir()
            .unwrap();
        repo::git2::Repository::init(dir.path()).unwrap();
        std::fs::create_dir(dir.path().join("tests")).unwrap();
        std::fs::write(dir.path().join("app.py"), "").unwrap();
        dir
    }

    #[test]
    fn repo_becomes_the_only_repository_with_the_detected_test_command() {
        let dir = python_repo();
        let mut config = Config::default();
        add_only_repo(&mut config, None, dir.path(), None).unwrap();
        let [repo] = config.repos.as_slice() else {
            panic!("one repository: {:?}", config.repos)
        };
        assert_eq!(
            repo.test_command.as_deref(),
            agent::heal::detect_test_command(dir.path()).as_deref()
        );
        assert!(repo.test_command.is_some());
        assert!(
            repo.sentry_projects.is_empty(),
            "every project routes to it"
        );
        assert_eq!(repo.forge, domain::config::ForgeKind::Local);
        assert!(
            repo.name.starts_with("shop--main-")
                && repo
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c)),
            "{}",
            repo.name
        );
        assert_eq!(
            Path::new(&repo.path),
            dir.path().canonicalize().unwrap().as_path()
        );
        assert!(config.validate().is_empty(), "{:?}", config.validate());
    }

    #[test]
    fn an_explicit_test_command_wins() {
        let dir = python_repo();
        let repo = only_repo(dir.path(), Some("make check")).unwrap();
        assert_eq!(repo.test_command.as_deref(), Some("make check"));
    }

    #[test]
    fn repo_is_refused_next_to_configured_repositories() {
        let dir = python_repo();
        let mut config = Config::from_toml("[[repos]]\nname = \"a\"\npath = \"/srv/a\"\n").unwrap();
        let error = add_only_repo(
            &mut config,
            Some(Path::new("suture.toml")),
            dir.path(),
            None,
        )
        .unwrap_err();
        assert_eq!(error.code, crate::EXIT_BAD_INPUT);
        let message = format!("{:#}", error.error.unwrap());
        assert!(
            message.contains("suture.toml already lists 1 in [[repos]]"),
            "{message}"
        );
        assert_eq!(config.repos.len(), 1, "nothing was added");
    }

    #[test]
    fn a_tree_without_a_test_command_or_a_repository_is_refused() {
        let plain = tempfile::tempdir().unwrap();
        let message = format!(
            "{:#}",
            only_repo(plain.path(), None).unwrap_err().error.unwrap()
        );
        assert!(message.contains("is not a git repository"), "{message}");
        repo::git2::Repository::init(plain.path()).unwrap();
        let message = format!(
            "{:#}",
            only_repo(plain.path(), None).unwrap_err().error.unwrap()
        );
        assert!(message.contains("no test command detected"), "{message}");
    }
}

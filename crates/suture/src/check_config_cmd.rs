//! `suture check-config`: read the configuration the way `suture serve`
//! would, and explain every problem; and the loading both commands share.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use domain::config::{Config, ForgeKind};

use crate::CommandError;

/// The file read when `--config` is not given, if it exists.
const DEFAULT_CONFIG: &str = "suture.toml";

/// Flags of `suture check-config`.
#[derive(Debug, Args)]
pub(crate) struct CheckConfigArgs {
    /// The configuration file [default: suture.toml, when it exists].
    #[arg(long, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
}

/// Reads the configuration: defaults, then the file (`path`, else
/// `suture.toml` when present), then the `SUTURE_*` environment. A file that
/// does not parse is bad input; values are not validated here.
pub(crate) fn load(path: Option<&Path>) -> Result<(Config, Option<PathBuf>), CommandError> {
    let path = match path {
        Some(path) => Some(path.to_owned()),
        None => Some(PathBuf::from(DEFAULT_CONFIG)).filter(|path| path.exists()),
    };
    let mut config = match &path {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))
                .map_err(CommandError::bad_input)?;
            Config::from_toml(&text)
                .with_context(|| format!("reading {}", path.display()))
                .map_err(CommandError::bad_input)?
        }
        None => Config::default(),
    };
    config.apply_env(|name| std::env::var(name).ok());
    if config.secrets.github_app_private_key.is_none()
        && let Some(key_path) = std::env::var_os("SUTURE_GITHUB_APP_PRIVATE_KEY_FILE")
    {
        let key = std::fs::read_to_string(&key_path)
            .with_context(|| {
                format!(
                    "reading SUTURE_GITHUB_APP_PRIVATE_KEY_FILE {}",
                    Path::new(&key_path).display()
                )
            })
            .map_err(CommandError::bad_input)?;
        config.secrets.github_app_private_key = Some(key);
    }
    Ok((config, path))
}

/// Every problem of `config`: its values, the repositories on disk, and a
/// read API open to the network.
pub(crate) fn problems(config: &Config) -> Vec<String> {
    let mut problems: Vec<String> = config.validate().iter().map(ToString::to_string).collect();
    problems.extend(open_api(config));
    for (idx, repo) in config.repos.iter().enumerate() {
        if repo.path.is_empty() {
            continue;
        }
        if let Err(error) = repo::git::Repo::open(Path::new(&repo.path)) {
            problems.push(format!(
                "repos[{idx}].path: {:?} is not a git repository: {error}",
                repo.path
            ));
        }
    }
    problems
}

/// The read API would be open to the network: a listener on a non-loopback
/// address (`0.0.0.0` included) without `SUTURE_API_TOKEN`, and no
/// `server.allow_open_api = true` saying that is meant.
pub(crate) fn open_api(config: &Config) -> Option<String> {
    if config.secrets.api_token.is_some() || config.server.allow_open_api {
        return None;
    }
    let listen: SocketAddr = config.server.listen.parse().ok()?;
    if listen.ip().is_loopback() {
        return None;
    }
    Some(format!(
        "server.listen: {listen} is reachable from other machines and SUTURE_API_TOKEN is not set, \
         so /api/incidents would be open to anyone: set SUTURE_API_TOKEN, listen on 127.0.0.1, \
         or set server.allow_open_api = true"
    ))
}

/// Refuses a configuration with problems, printing each: what `serve` and
/// `pr` do before they touch anything.
pub(crate) fn refuse_problems(problems: &[String]) -> Result<(), CommandError> {
    if problems.is_empty() {
        return Ok(());
    }
    for problem in problems {
        eprintln!("error: {problem}");
    }
    Err(CommandError::bad_input(anyhow::anyhow!(
        "{} problem(s) in the configuration: run `suture check-config`",
        problems.len()
    )))
}

pub(crate) fn run(args: &CheckConfigArgs) -> Result<(), CommandError> {
    let (config, path) = load(args.config.as_deref())?;
    let problems = problems(&config);
    let source = path.map_or("no file: defaults".to_owned(), |path| {
        path.display().to_string()
    });
    if !problems.is_empty() {
        for problem in &problems {
            eprintln!("error: {problem}");
        }
        return Err(CommandError::bad_input(anyhow::anyhow!(
            "{} problem(s) in the configuration ({source})",
            problems.len()
        )));
    }
    let set = |value: bool| if value { "set" } else { "unset" };
    println!("configuration ok ({source})");
    println!("  listen        {}", config.server.listen);
    println!(
        "  store         {}",
        config
            .store
            .database_url
            .as_deref()
            .map(store::redact_url)
            .unwrap_or_else(|| format!("sqlite in {}", config.store.data_dir))
    );
    println!("  sdk projects  {}", config.sentry.projects.len().max(1));
    println!("  repos         {}", config.repos.len());
    println!("  workers       {}", config.queue.workers);
    println!(
        "  sentry webhook secret     {}",
        set(config.secrets.sentry_client_secret.is_some())
    );
    println!(
        "  pagerduty webhook secrets {}",
        config.secrets.pagerduty_webhook_secrets.len()
    );
    println!(
        "  github webhook secret     {}",
        set(config.secrets.github_webhook_secret.is_some())
    );
    println!(
        "  api token                 {}",
        set(config.secrets.api_token.is_some())
    );
    for repo in &config.repos {
        let target = match repo.forge {
            ForgeKind::Github => format!("github {}", repo.github_repo.as_deref().unwrap_or("?")),
            ForgeKind::Local => "local forge".to_owned(),
        };
        println!("  repo {:<20} {} → {target}", repo.name, repo.mode);
    }
    println!("  quiet window  {} s", config.verify.quiet_seconds);
    match (&config.llm.base_url, &config.llm.model) {
        (Some(url), Some(model)) => println!(
            "  llm           {model} at {url} (key {})",
            set(config.secrets.llm_api_key.is_some())
        ),
        _ => println!("  llm           none: the deterministic rungs work alone"),
    }
    Ok(())
}

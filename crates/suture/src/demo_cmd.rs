//! `suture demo`: the whole loop on a machine with nothing but the README's
//! prerequisites. It creates a small Python application with a regression
//! in its history ([`service::demo_app`]), starts the service on it the way
//! `serve --repo` does, runs the application so that it crashes and
//! reports to the DSN, prints the incident's page, then keeps serving (and
//! prints each state the incident reaches) until Ctrl-C.
//!
//! What differs from `serve --repo`, and why:
//! - Everything lives in `DIR` (the application in `DIR/app`, the state in
//!   `DIR/.suture`, the configuration in `DIR/suture.toml`, for `suture pr
//!   --config` and a later `suture serve --config`); a directory that exists
//!   and is not empty is refused, so the demo never writes over anything.
//! - The configuration is the demo's own, not the working directory's
//!   `suture.toml` or the environment: a user's database, model or forge
//!   settings have no place in a demo. Only `SUTURE_API_TOKEN` is read, so
//!   the pages' sign-in can be seen too.
//! - The repository's `learning_seconds` is 0 (suture has just met the
//!   project, and its first incident is the point), the quiet window is
//!   `--quiet-seconds`, and idle workers look for jobs more often.
//! - Tests run in bubblewrap when it works here, else as plain processes
//!   (`sandbox = "process"`): the code under test is the demo's own, and
//!   bubblewrap is not among the README's prerequisites. No model is
//!   configured, so no model-written code runs either way.
//!
//! The application runs through the sandbox module's process backend
//! (a clean environment, a time limit, captured output), like every
//! process suture starts.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use domain::config::Config;
use repo::sandbox::{Backend, SandboxConfig};
use store::{IncidentState, Store};
use tokio_util::sync::CancellationToken;

use crate::CommandError;
use crate::serve_cmd;

/// How long the application may run.
const APP_TIMEOUT: Duration = Duration::from_secs(120);
/// How long the service may take to listen, and the incident to appear.
const STARTUP_LIMIT: Duration = Duration::from_secs(60);
/// How often the incident's state is read.
const WATCH_EVERY: Duration = Duration::from_millis(300);

/// Flags of `suture demo`.
#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Where the demo is created; must not exist, or be empty.
    #[arg(long, value_name = "DIR", default_value = "suture-demo")]
    dir: PathBuf,
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7878")]
    listen: String,
    /// The quiet window after a merge, in seconds (`verify.quiet_seconds`).
    #[arg(long, value_name = "SECONDS", default_value_t = 20)]
    quiet_seconds: u64,
}

pub(crate) fn run(args: &DemoArgs) -> Result<(), CommandError> {
    let dir = new_dir(&args.dir)?;
    let listen = resolve_listen(&args.listen)?;
    let python = python(&dir)?;
    let app = dir.join("app");
    let now = chrono::Utc::now().timestamp();
    let release = service::demo_app::create(&app, now).map_err(CommandError::failure)?;
    let key = random_key().map_err(CommandError::failure)?;
    let file = dir.join("suture.toml");
    let config = config(&file, &app, listen, &key, &python, args.quiet_seconds)?;
    if let Some(open) = crate::check_config_cmd::open_api(&config) {
        return Err(CommandError::bad_input(anyhow::anyhow!(open)));
    }
    crate::check_config_cmd::refuse_problems(&crate::check_config_cmd::problems(&config))?;
    let demo = Demo {
        file,
        base: format!("http://{listen}"),
        dsn: format!("http://{key}@{listen}/1"),
        app,
        python,
        release,
    };
    serve_cmd::runtime()?.block_on(demo.run(config, listen))
}

/// What the running demo needs to know.
struct Demo {
    /// The demo's `suture.toml`.
    file: PathBuf,
    /// `http://ADDR`, for the printed pages.
    base: String,
    dsn: String,
    app: PathBuf,
    python: String,
    release: String,
}

impl Demo {
    async fn run(self, config: Config, listen: SocketAddr) -> Result<(), CommandError> {
        let shutdown = CancellationToken::new();
        tokio::spawn(serve_cmd::watch_signals(shutdown.clone()));
        let mut service = tokio::spawn(service::run(config.clone(), shutdown.clone()));
        let stopped_early = |result: Result<Result<(), service::ServiceError>, _>| match result {
            Ok(Err(error)) => CommandError::failure(error),
            _ => CommandError::failure(anyhow::anyhow!("the service stopped while starting")),
        };
        tokio::select! {
            result = &mut service => return Err(stopped_early(result)),
            listening = wait_for_listener(listen) => listening?,
        }
        let store = service::open_store(&config)
            .await
            .map_err(CommandError::failure)?;
        let watched = tokio::select! {
            watched = self.crash_and_watch(&store, &config, &shutdown) => watched,
            _ = shutdown.cancelled() => Ok(()),
        };
        shutdown.cancel();
        store.close().await;
        let served = service.await;
        watched?;
        match served {
            Ok(Ok(())) => {
                eprintln!("suture stopped");
                Ok(())
            }
            Ok(Err(error)) => Err(CommandError::failure(error)),
            Err(error) => Err(CommandError::failure(error)),
        }
    }

    /// Runs the application, prints its incident's page, then each state
    /// the incident reaches, until `shutdown`.
    async fn crash_and_watch(
        &self,
        store: &Store,
        config: &Config,
        shutdown: &CancellationToken,
    ) -> Result<(), CommandError> {
        println!();
        println!(
            "demo: a tea shop's nightly checkout, in {}",
            self.app.display()
        );
        println!(
            "  four commits; the third, \"{}\", broke something",
            service::demo_app::CULPRIT_SUBJECT
        );
        println!("  pages:      {}/", self.base);
        println!("  sentry dsn: {}", self.dsn);
        println!(
            "  config:     {} (suture pr --config FILE list, from the command line)",
            self.file.display()
        );
        println!("demo: running the checkout with that DSN (python3 main.py DSN RELEASE)…");
        let output = self.run_app().await?;
        for line in output
            .lines()
            .rev()
            .take(3)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
        {
            println!("  | {line}");
        }
        let id = first_incident(store).await?;
        println!(
            "demo: the crash is incident {id}: {}/incidents/{id}",
            self.base
        );
        println!(
            "  suture now diagnoses it, reproduces it and proves a fix; the pull request \
             appears on that page. Merge it, and after {} s without the error the incident \
             is resolved. Ctrl-C stops.",
            config.verify.quiet_seconds
        );
        let mut shown = None;
        while !shutdown.is_cancelled() {
            let incident = store
                .incident(id)
                .await
                .map_err(CommandError::failure)?
                .context("the demo's incident disappeared")
                .map_err(CommandError::failure)?;
            if shown != Some(incident.state) {
                println!("demo: incident {id} is {}", incident.state);
                if incident.state == IncidentState::Proposed
                    && let Some(number) = pull_request(store, id).await?
                {
                    println!("  review it: {}/pulls/{number}", self.base);
                }
                shown = Some(incident.state);
            }
            tokio::time::sleep(WATCH_EVERY).await;
        }
        Ok(())
    }

    /// Runs `main.py` with the DSN and release; it must crash.
    async fn run_app(&self) -> Result<String, CommandError> {
        let command = format!(
            "{} main.py {} {}",
            shell_quote(&self.python),
            shell_quote(&self.dsn),
            shell_quote(&self.release)
        );
        let app = self.app.clone();
        let outcome = tokio::task::spawn_blocking(move || {
            repo::sandbox::run(&process_sandbox(APP_TIMEOUT), &app, &command)
        })
        .await
        .map_err(CommandError::failure)?
        .context("running the demo application")
        .map_err(CommandError::failure)?;
        let output = outcome.output.text();
        if outcome.passed() || !output.contains("crash reported") {
            return Err(CommandError::failure(anyhow::anyhow!(
                "the demo application was expected to crash and report it, but it {}: {}",
                if outcome.passed() {
                    "did not crash"
                } else {
                    "did not report"
                },
                outcome.output_tail(2000).trim()
            )));
        }
        Ok(output)
    }
}

/// `dir` created (with its parents) or found empty, made absolute.
fn new_dir(dir: &Path) -> Result<PathBuf, CommandError> {
    if dir.exists() {
        let mut entries = std::fs::read_dir(dir)
            .with_context(|| format!("{} exists and is not a readable directory", dir.display()))
            .map_err(CommandError::bad_input)?;
        if entries.next().is_some() {
            return Err(CommandError::bad_input(anyhow::anyhow!(
                "{} exists and is not empty: the demo creates its application and state \
                 there, so give it a new directory with --dir",
                dir.display()
            )));
        }
    }
    std::fs::create_dir_all(dir)
        .with_context(|| format!("creating {}", dir.display()))
        .map_err(CommandError::bad_input)?;
    dir.canonicalize()
        .with_context(|| format!("{}", dir.display()))
        .map_err(CommandError::bad_input)
}

/// The address to listen on, with port 0 replaced by a free port: the
/// DSN and the pages' URL are printed before the service could say.
fn resolve_listen(listen: &str) -> Result<SocketAddr, CommandError> {
    let addr: SocketAddr = listen
        .parse()
        .with_context(|| format!("--listen {listen:?} is not an ADDRESS:PORT"))
        .map_err(CommandError::bad_input)?;
    if addr.port() != 0 {
        return Ok(addr);
    }
    std::net::TcpListener::bind(addr)
        .and_then(|listener| listener.local_addr())
        .with_context(|| format!("finding a free port on {}", addr.ip()))
        .map_err(CommandError::failure)
}

/// The absolute path of the `python3` on `PATH`: the sandbox exposes a
/// program it is named by path, and a version manager's shim resolves to
/// the interpreter only with the manager's environment.
fn python(dir: &Path) -> Result<String, CommandError> {
    let outcome = repo::sandbox::run(
        &process_sandbox(Duration::from_secs(30)),
        dir,
        "python3 -c 'import sys; print(sys.executable)'",
    )
    .context("looking for python3")
    .map_err(CommandError::failure)?;
    let text = outcome.output.text();
    let path = text.lines().last().unwrap_or_default().trim();
    if !outcome.passed() || !path.starts_with('/') {
        return Err(CommandError::bad_input(anyhow::anyhow!(
            "the demo application needs python3 on PATH: {}",
            outcome.output_tail(500).trim()
        )));
    }
    Ok(path.to_owned())
}

/// The demo's configuration (see the module docs), written to `file` so
/// that `suture serve --config` runs the demo's service again and `suture
/// pr --config` reviews its pull requests, then read back as any
/// configuration file is.
fn config(
    file: &Path,
    app: &Path,
    listen: SocketAddr,
    key: &str,
    python: &str,
    quiet_seconds: u64,
) -> Result<Config, CommandError> {
    let repo = serve_cmd::only_repo(app, Some(&service::demo_app::test_command(python)))?;
    let sandbox = match repo::sandbox::probe(&Backend::Bubblewrap) {
        Ok(()) => "",
        Err(error) => {
            println!(
                "demo: tests run as plain processes (sandbox = \"process\"): {error}. \
                 Only the demo's own code runs there; install bubblewrap for your own \
                 repositories."
            );
            "sandbox = \"process\"\nunsafe_allow_process_sandbox = true\n"
        }
    };
    // A JSON string is a TOML basic string (the same escapes).
    let quoted = |text: &str| serde_json::Value::from(text).to_string();
    let data_dir = file.with_file_name(".suture");
    let text = format!(
        "# Written by `suture demo`. `suture serve --config` on this file runs the\n\
         # demo's service again; `suture pr --config` on it reviews its pull requests.\n\
         [server]\nlisten = {listen}\n\n\
         [store]\ndata_dir = {data_dir}\n\n\
         [queue]\npoll_millis = 200\nbackoff_seconds = 1\n\n\
         [verify]\nquiet_seconds = {quiet_seconds}\n\n\
         [[sentry.projects]]\nid = \"1\"\npublic_key = {key}\n\n\
         [[repos]]\nname = \"teashop\"\npath = {path}\ntest_command = {test_command}\n\
         # suture has just met this project: its first incident is the point.\n\
         learning_seconds = 0\n{sandbox}",
        listen = quoted(&listen.to_string()),
        data_dir = quoted(&data_dir.display().to_string()),
        key = quoted(key),
        path = quoted(&repo.path),
        test_command = quoted(repo.test_command.as_deref().unwrap_or_default()),
    );
    std::fs::write(file, &text)
        .with_context(|| format!("writing {}", file.display()))
        .map_err(CommandError::failure)?;
    let mut config = Config::from_toml(&text)
        .with_context(|| format!("reading back {}", file.display()))
        .map_err(CommandError::failure)?;
    config.apply_env(|name| {
        (name == "SUTURE_API_TOKEN")
            .then(|| std::env::var(name).ok())
            .flatten()
    });
    Ok(config)
}

/// The process backend with `timeout`: a clean environment and captured
/// output, no isolation (what runs is the demo's own code).
fn process_sandbox(timeout: Duration) -> SandboxConfig {
    SandboxConfig {
        backend: Backend::Process,
        timeout,
        ..SandboxConfig::default()
    }
}

/// A DSN public key: 16 random bytes in hex.
fn random_key() -> anyhow::Result<String> {
    let mut bytes = [0u8; 16];
    std::io::Read::read_exact(
        &mut std::fs::File::open("/dev/urandom").context("opening /dev/urandom")?,
        &mut bytes,
    )
    .context("reading /dev/urandom")?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

async fn wait_for_listener(addr: SocketAddr) -> Result<(), CommandError> {
    let deadline = tokio::time::Instant::now() + STARTUP_LIMIT;
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        if tokio::time::Instant::now() > deadline {
            return Err(CommandError::failure(anyhow::anyhow!(
                "the service did not listen on {addr} within {STARTUP_LIMIT:?}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// The id of the first incident, once the crash's event made one.
async fn first_incident(store: &Store) -> Result<i64, CommandError> {
    let deadline = tokio::time::Instant::now() + STARTUP_LIMIT;
    loop {
        let incidents = store
            .list_incidents(1)
            .await
            .map_err(CommandError::failure)?;
        if let Some(incident) = incidents.first() {
            return Ok(incident.id);
        }
        if tokio::time::Instant::now() > deadline {
            return Err(CommandError::failure(anyhow::anyhow!(
                "the application reported its crash, but no incident appeared within {STARTUP_LIMIT:?}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The number of the pull request the incident's latest proposal opened,
/// as its timeline records it.
async fn pull_request(store: &Store, id: i64) -> Result<Option<i64>, CommandError> {
    let timeline = store.timeline(id).await.map_err(CommandError::failure)?;
    Ok(timeline
        .iter()
        .rev()
        .find_map(|entry| entry.data.as_ref()?.get("pr_number")?.as_i64()))
}

/// `text` as one single-quoted shell word.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_with_anything_in_it_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("notes.txt"), "mine").unwrap();
        let error = new_dir(dir.path()).unwrap_err();
        let message = format!("{:#}", error.error.unwrap());
        assert!(message.contains("is not empty"), "{message}");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("notes.txt")).unwrap(),
            "mine"
        );
    }

    #[test]
    fn an_empty_or_missing_directory_is_used() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            new_dir(dir.path()).unwrap(),
            dir.path().canonicalize().unwrap()
        );
        let nested = dir.path().join("a/b");
        assert!(new_dir(&nested).unwrap().ends_with("a/b"));
    }

    #[test]
    fn port_zero_becomes_a_free_port() {
        let addr = resolve_listen("127.0.0.1:0").unwrap();
        assert_ne!(addr.port(), 0);
        assert_eq!(resolve_listen("127.0.0.1:7979").unwrap().port(), 7979);
        assert!(resolve_listen("localhost").is_err());
    }

    #[test]
    fn shell_quoting_keeps_one_word() {
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}

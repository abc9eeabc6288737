//! The `suture` command: parse flags, load inputs, run a stage, map errors to
//! exit codes. Everything of substance lives in the library crates.

mod action_cmd;
mod check_config_cmd;
mod cli;
mod demo_cmd;
mod diagnose_cmd;
mod event_file;
mod heal_cmd;
mod heal_incident_cmd;
mod pause_cmd;
mod pr_cmd;
mod serve_cmd;

use std::process::ExitCode;

use clap::Parser;

/// Exit code for a completed command (a diagnosis was made, even with no suspect).
const EXIT_OK: u8 = 0;
/// Exit code for a failure that is not the input's fault.
const EXIT_FAILURE: u8 = 1;
/// Exit code for bad input: unreadable repository, event or flags.
const EXIT_BAD_INPUT: u8 = 2;

/// An error with the exit code it should produce.
#[derive(Debug)]
pub(crate) struct CommandError {
    code: u8,
    /// What to print; None when the command already reported its result.
    error: Option<anyhow::Error>,
}

impl CommandError {
    /// The input was bad: exit 2.
    pub(crate) fn bad_input(error: impl Into<anyhow::Error>) -> CommandError {
        CommandError {
            code: EXIT_BAD_INPUT,
            error: Some(error.into()),
        }
    }

    /// Something else failed: exit 1.
    pub(crate) fn failure(error: impl Into<anyhow::Error>) -> CommandError {
        CommandError {
            code: EXIT_FAILURE,
            error: Some(error.into()),
        }
    }

    /// The command ran and reported; it ends with `code` (1: no proven fix).
    pub(crate) fn unsuccessful() -> CommandError {
        CommandError {
            code: EXIT_FAILURE,
            error: None,
        }
    }
}

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            return ExitCode::from(if error.use_stderr() {
                EXIT_BAD_INPUT
            } else {
                EXIT_OK
            });
        }
    };
    install_tracing(cli.verbose);
    let result = match cli.command {
        cli::Command::Diagnose(args) => diagnose_cmd::run(&args),
        cli::Command::Bench(args) => bench::run(&args).map_err(|error| match error {
            bench::BenchError::BadInput(error) => CommandError::bad_input(error),
            bench::BenchError::Failed(error) => CommandError::failure(error),
        }),
        cli::Command::Heal(args) => heal_cmd::run(&args),
        cli::Command::Serve(args) => serve_cmd::run(&args),
        cli::Command::Demo(args) => demo_cmd::run(&args),
        cli::Command::CheckConfig(args) => check_config_cmd::run(&args),
        cli::Command::Pr(args) => pr_cmd::run(&args),
        cli::Command::Pause(args) => pause_cmd::pause(&args),
        cli::Command::Resume(args) => pause_cmd::resume(&args),
        cli::Command::HealIncident(args) => heal_incident_cmd::run(&args),
        cli::Command::Action(args) => action_cmd::run(&args),
    };
    match result {
        Ok(()) => ExitCode::from(EXIT_OK),
        Err(CommandError { code, error }) => {
            if let Some(error) = error {
                let line = format!("{error:#}");
                eprintln!(
                    "error: {}",
                    agent::redact::Redactor::from_env().redact(&line)
                );
            }
            ExitCode::from(code)
        }
    }
}

/// Logs go to stderr so that `--json` output on stdout stays clean, each
/// line through the redactor: a logged error can quote a database URL, a
/// token echoed by a server, a line of test output.
fn install_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("SUTURE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(RedactedStderr::maker())
        .init();
}

/// Stderr behind a [`Redactor`](agent::redact::Redactor). The formatter
/// writes each event as one buffer, so a secret is never split across
/// two writes.
struct RedactedStderr(std::sync::Arc<agent::redact::Redactor>);

impl RedactedStderr {
    fn maker() -> impl Fn() -> RedactedStderr {
        let redactor = std::sync::Arc::new(agent::redact::Redactor::from_env());
        move || RedactedStderr(redactor.clone())
    }
}

impl std::io::Write for RedactedStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = self.0.redact(&String::from_utf8_lossy(buf));
        std::io::stderr().write_all(text.as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

//! An action's command (`run`, `check`): `sh -c` through the sandbox's
//! process runner (the one place suture spawns), on this host, with a
//! clean environment, a time limit and capped output.
//!
//! The command text is the operator's, verbatim. Incident text (a title
//! anyone who can page or send an event controls) reaches it only as
//! `SUTURE_*` environment variables: the shell never parses it, so quotes,
//! newlines and `$(…)` in a title stay data. No secret of suture's is in
//! that environment.

use std::time::Duration;

use repo::sandbox::{Backend, SandboxConfig};
use serde_json::{Value, json};

use crate::job::{Stop, blocking};

/// Bytes of output kept in the record.
const OUTPUT_TAIL_BYTES: usize = 2_000;

/// What a command did.
pub(super) struct Ran {
    /// It exited 0 within its time.
    pub(super) passed: bool,
    /// The record: command, exit, whether it timed out, output tail.
    pub(super) record: Value,
}

/// Runs `command` with `env` (the `SUTURE_*` incident variables) for at
/// most `timeout`.
pub(super) async fn run(
    command: &str,
    env: Vec<(String, String)>,
    timeout: Duration,
) -> Result<Ran, Stop> {
    let config = SandboxConfig {
        backend: Backend::Process,
        timeout,
        // The operator's own tools (systemctl, curl, kubectl): no
        // address-space or process cap that would break them.
        memory_bytes: 0,
        max_processes: 0,
        env_set: env,
        ..SandboxConfig::default()
    };
    let text = command.to_owned();
    let outcome =
        blocking(move || Ok(repo::sandbox::run(&config, &std::env::temp_dir(), &text))).await?;
    // A command that could not be started is a run that failed, on the
    // record like any other.
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(error) => {
            return Ok(Ran {
                passed: false,
                record: json!({"kind": "command", "command": command, "error": error.to_string()}),
            });
        }
    };
    Ok(Ran {
        passed: outcome.passed(),
        record: json!({
            "kind": "command",
            "command": command,
            "exit": outcome.exit,
            "timed_out": outcome.timed_out,
            "duration_ms": outcome.duration.as_millis() as u64,
            "output_tail": outcome.output_tail(OUTPUT_TAIL_BYTES),
        }),
    })
}

//! `suture heal`: diagnose, climb the fix ladder, prove the fix in the
//! sandbox, and write the pull-request-ready report.

use std::path::{Path, PathBuf};
use std::time::Duration;

use agent::heal::{HealOptions, HealReport, Outcome, heal};
use agent::llm::LlmConfig;
use anyhow::Context;
use clap::{Args, ValueEnum};
use repo::git::Repo;
use repo::index::CodeIndex;
use repo::sandbox::{Backend, SandboxConfig};
use repo::scope::ScopePolicy;

use crate::CommandError;
use crate::cli::DiagnoseOptionsArgs;
use crate::event_file;

/// Flags of `suture heal`.
#[derive(Debug, Args)]
pub(crate) struct HealArgs {
    /// The application's git repository; it is only read.
    #[arg(long)]
    repo: PathBuf,
    /// The event, in any shape `suture diagnose` reads.
    #[arg(long)]
    event: PathBuf,
    /// The repository's test command, run with `sh -c` at the repository
    /// root; detected from the tree when absent (cargo, npm, go, maven, pytest).
    #[arg(long = "test-cmd", value_name = "CMD")]
    test_cmd: Option<String>,
    /// Where report.json, report.md and fix.patch are written.
    #[arg(long, value_name = "DIR", default_value = "suture-heal")]
    out: PathBuf,
    #[command(flatten)]
    diagnose: DiagnoseOptionsArgs,
    /// Where tests run: bubblewrap (isolated), docker (production hosts) or
    /// process (no isolation, explicit opt-in only).
    #[arg(long, value_enum, default_value_t = SandboxKind::Bubblewrap)]
    sandbox: SandboxKind,
    /// The image for `--sandbox docker`.
    #[arg(long, value_name = "IMAGE", required_if_eq("sandbox", "docker"))]
    docker_image: Option<String>,
    /// Wall-clock limit of one test run, seconds.
    #[arg(long, value_name = "SECS", default_value_t = 600)]
    test_timeout: u64,
    /// Memory limit of one test run, MiB.
    #[arg(long, value_name = "MIB", default_value_t = 4096)]
    test_memory: u64,
    /// Also refuse patches touching these paths (glob, repeatable).
    #[arg(long = "deny", value_name = "GLOB")]
    deny: Vec<String>,
    /// Largest patch accepted, in files.
    #[arg(long, value_name = "N")]
    max_files: Option<usize>,
    /// Largest patch accepted, in changed lines.
    #[arg(long, value_name = "N")]
    max_lines: Option<usize>,
    /// Print report.json to stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum SandboxKind {
    Bubblewrap,
    Docker,
    Process,
}

pub(crate) fn run(args: &HealArgs) -> Result<(), CommandError> {
    let parsed = event_file::load(&args.event).map_err(CommandError::bad_input)?;
    let repo = Repo::open(&args.repo).map_err(CommandError::bad_input)?;
    let options = options(args);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")
        .map_err(CommandError::failure)?;
    let mut index = CodeIndex::new();
    let (report, transcript) = heal(&repo, &mut index, &parsed.event, &options, runtime.handle())
        .map_err(|error| {
        use agent::diagnose::DiagnoseError;
        use agent::heal::HealError;
        use repo::git::RepoError;
        match error {
            HealError::Diagnose(DiagnoseError::Repo(
                error @ (RepoError::UnknownRevision { .. } | RepoError::Empty),
            )) => CommandError::bad_input(error),
            error @ HealError::NoTestCommand => CommandError::bad_input(error),
            other => CommandError::failure(other),
        }
    })?;
    write_outputs(&args.out, &report, transcript.as_ref()).map_err(CommandError::failure)?;
    if args.json {
        let json = serde_json::to_string_pretty(&report)
            .context("encoding the report")
            .map_err(CommandError::failure)?;
        println!("{json}");
    } else {
        print_summary(&report, &args.out);
    }
    match report.outcome {
        Outcome::Proven => Ok(()),
        // A plausible fix is written out, but nothing proved it: only a
        // proven one is a success.
        Outcome::Plausible | Outcome::Unproven | Outcome::Escalated => {
            Err(CommandError::unsuccessful())
        }
    }
}

fn options(args: &HealArgs) -> HealOptions {
    let backend = match args.sandbox {
        SandboxKind::Bubblewrap => Backend::Bubblewrap,
        SandboxKind::Process => Backend::Process,
        SandboxKind::Docker => Backend::Docker {
            image: args.docker_image.clone().unwrap_or_default(),
        },
    };
    let sandbox = SandboxConfig {
        backend,
        timeout: Duration::from_secs(args.test_timeout),
        memory_bytes: args.test_memory.saturating_mul(1 << 20),
        ..SandboxConfig::default()
    };
    let mut scope = ScopePolicy::default();
    scope.deny.extend(args.deny.iter().cloned());
    if let Some(max) = args.max_files {
        scope.max_files = max;
    }
    if let Some(max) = args.max_lines {
        scope.max_changed_lines = max;
    }
    HealOptions {
        diagnose: args.diagnose.to_options(),
        test_command: args.test_cmd.clone(),
        sandbox,
        scope,
        llm: LlmConfig::from_env(),
        ..HealOptions::default()
    }
}

fn write_outputs(
    out: &Path,
    report: &HealReport,
    transcript: Option<&agent::llm::Transcript>,
) -> anyhow::Result<()> {
    // Reports quote event text and test output: private to suture's user.
    service::private_files::create_dir(out)
        .with_context(|| format!("creating {}", out.display()))?;
    let write = |name: &str, text: &str| {
        let path = out.join(name);
        service::private_files::write(&path, text)
            .with_context(|| format!("writing {}", path.display()))
    };
    write("report.json", &serde_json::to_string_pretty(report)?)?;
    write("report.md", &report.to_markdown())?;
    let fix = out.join("fix.patch");
    match report.fix_patch() {
        Some(patch) => write("fix.patch", &patch)?,
        // A stale patch from an earlier run must not pass for this run's fix.
        None if fix.exists() => {
            std::fs::remove_file(&fix).with_context(|| format!("removing {}", fix.display()))?
        }
        None => {}
    }
    if let Some(transcript) = transcript {
        write(
            "transcript.json",
            &serde_json::to_string_pretty(transcript)?,
        )?;
    }
    Ok(())
}

fn print_summary(report: &HealReport, out: &Path) {
    let outcome = report.outcome.as_str();
    println!("{}", report.title);
    println!(
        "outcome {outcome}{}",
        report
            .strategy
            .map(|s| format!(" ({})", s.as_str()))
            .unwrap_or_default()
    );
    match report.reproduction.kind {
        Some(kind) => println!(
            "  reproduce {} ({} tests)",
            kind.as_str(),
            report.reproduction.tests.len()
        ),
        None => println!(
            "  reproduce none: {}",
            report
                .reproduction
                .reason
                .as_deref()
                .unwrap_or("not reproduced")
        ),
    }
    for rung in &report.rungs {
        println!("  {:<9} {}", rung.rung, rung.reason);
    }
    println!("report: {}", out.join("report.md").display());
    if report.fix_patch().is_some() {
        println!("fix:    {}", out.join("fix.patch").display());
    }
}

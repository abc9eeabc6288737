//! Command-line flags.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use repo::pathmap::CodeMapping;

/// suture: a self-hosted self-healing service for code.
#[derive(Debug, Parser)]
#[command(name = "suture", version, about)]
pub(crate) struct Cli {
    /// More logging on stderr (-v info, -vv debug); SUTURE_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub(crate) verbose: u8,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Say which recent commit most likely broke an error event, where, and why.
    Diagnose(DiagnoseArgs),
    /// Measure indexing and diagnosis on a synthetic repository against git
    /// blame; `bench ingest` loads a running `suture serve` instead.
    Bench(bench::BenchArgs),
    /// Diagnose an error event, then find and prove the smallest safe fix.
    Heal(crate::heal_cmd::HealArgs),
    /// Run the service: ingest endpoints, the store and the pipeline workers.
    Serve(crate::serve_cmd::ServeArgs),
    /// Create a small Python application with a regression in its history,
    /// let it crash into a running service, and watch suture heal it.
    Demo(crate::demo_cmd::DemoArgs),
    /// Check the configuration `suture serve` would use, and explain any problem.
    CheckConfig(crate::check_config_cmd::CheckConfigArgs),
    /// Review suture's pull requests on the local forge: list, show,
    /// merge, close, comment.
    Pr(crate::pr_cmd::PrArgs),
    /// The kill switch: stop pushes, pull requests, issues, comments, LLM
    /// requests and recovery actions (everywhere, or for one repository)
    /// until `resume`.
    Pause(crate::pause_cmd::PauseArgs),
    /// Lift a pause made by `suture pause`.
    Resume(crate::pause_cmd::ResumeArgs),
    /// Start a healing round for an incident, whatever triage said of it.
    HealIncident(crate::heal_incident_cmd::HealIncidentArgs),
    /// Recovery actions: approve a run that waits for approval.
    Action(crate::action_cmd::ActionArgs),
}

/// Flags of `suture diagnose`.
#[derive(Debug, Args)]
pub(crate) struct DiagnoseArgs {
    /// The application's git repository (work tree or bare).
    #[arg(long)]
    pub(crate) repo: PathBuf,
    /// The event: Sentry SDK event JSON, an integration or legacy webhook
    /// body, or an SDK envelope.
    #[arg(long)]
    pub(crate) event: PathBuf,
    #[command(flatten)]
    pub(crate) diagnose: DiagnoseOptionsArgs,
    /// Print one JSON object instead of the human summary.
    #[arg(long)]
    pub(crate) json: bool,
}

/// Options shared by the commands that diagnose.
#[derive(Debug, Args)]
pub(crate) struct DiagnoseOptionsArgs {
    /// Look at commits after this revision (sha, tag, branch).
    #[arg(long, value_name = "REV", conflicts_with = "days")]
    pub(crate) since: Option<String>,
    /// Look at commits of the last N days before the event [default: 14].
    #[arg(long, value_name = "N")]
    pub(crate) days: Option<u32>,
    /// Map frame paths onto the repository: STACK_ROOT=SOURCE_ROOT (repeatable).
    #[arg(long = "code-mapping", value_name = "STACK_ROOT=SOURCE_ROOT")]
    pub(crate) code_mappings: Vec<CodeMapping>,
    /// The deployed revision; by default the event's release when it names a
    /// commit or tag, else HEAD.
    #[arg(long, value_name = "REV")]
    pub(crate) revision: Option<String>,
    /// Read at most this many commits.
    #[arg(long, value_name = "N", default_value_t = agent::diagnose::DEFAULT_MAX_COMMITS)]
    pub(crate) max_commits: usize,
}

impl DiagnoseOptionsArgs {
    pub(crate) fn to_options(&self) -> agent::diagnose::DiagnoseOptions {
        agent::diagnose::DiagnoseOptions {
            since: self.since.clone(),
            days: self.days,
            max_commits: self.max_commits,
            code_mappings: self.code_mappings.clone(),
            revision: self.revision.clone(),
            // The deploy comes from the store's releases; the command has
            // none, so the window is `--since` or `--days`.
            deploy: None,
        }
    }
}

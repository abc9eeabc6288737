//! `suture bench`: the performance benchmarks. They print figures; no test
//! asserts a time, because a loaded machine makes any limit flaky.
//!
//! - [`diagnose`]: indexing and diagnosis on a synthetic repository of
//!   production size (built by `workload`), against `git blame`;
//! - [`ingest`]: load on a real `suture serve` over HTTP.
//!
//! The benchmarks are tools, not the product: they may spawn processes
//! (`git blame`, the `suture serve` under load) and use `anyhow`.

pub mod diagnose;
pub mod ingest;
mod workload;

use std::path::PathBuf;

use clap::{Args, Subcommand};

/// How a benchmark failed.
#[derive(Debug)]
pub enum BenchError {
    /// The flags or the kept repository are not usable: exit 2.
    BadInput(anyhow::Error),
    /// The benchmark itself failed: exit 1.
    Failed(anyhow::Error),
}

/// Flags of `suture bench`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BenchArgs {
    /// Another benchmark than the diagnosis one.
    #[command(subcommand)]
    pub target: Option<BenchTarget>,
    /// Commits of the synthetic history.
    #[arg(long, value_name = "N", default_value_t = 20_000)]
    pub commits: usize,
    /// Source files of the synthetic repository.
    #[arg(long, value_name = "N", default_value_t = 2_000)]
    pub files: usize,
    /// Frames of the diagnosed stack trace.
    #[arg(long, value_name = "N", default_value_t = 30)]
    pub frames: usize,
    /// Build the repository in DIR and keep it; a later run with the same
    /// shape reuses it instead of building again.
    #[arg(long, value_name = "DIR")]
    pub keep: Option<PathBuf>,
    /// Diagnosis window in days, as `suture diagnose --days` [default: 14].
    #[arg(long, value_name = "N")]
    pub days: Option<u32>,
    /// Timed diagnoses per mode (cold and warm).
    #[arg(long, value_name = "N", default_value_t = 9)]
    pub iterations: usize,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// The benchmarks besides the default one.
#[derive(Debug, Subcommand)]
pub enum BenchTarget {
    /// Load a real `suture serve` over HTTP: events/s, latency, memory, durability.
    Ingest(ingest::BenchIngestArgs),
}

/// Runs the benchmark `args` name and prints its figures.
pub fn run(args: &BenchArgs) -> Result<(), BenchError> {
    match &args.target {
        Some(BenchTarget::Ingest(ingest)) => ingest::run(ingest),
        None => diagnose::run(args),
    }
}

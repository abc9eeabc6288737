//! `suture bench`: how fast indexing and diagnosis are on a repository of
//! production size, and how that compares with `git blame` doing only the
//! line lookups.
//!
//! Builds (or reuses) a synthetic repository, then measures a cold index of
//! its tree, a re-index after a one-file commit, cold and warm diagnoses of
//! a many-frame trace, and one `git blame -L` per frame, and prints the
//! figures. Timings are printed, never asserted: the test below checks
//! structure only, because a loaded CI machine makes any time limit flaky.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::workload::event::{PlantedEvent, TraceFrame};
use crate::workload::history::Shape;
use crate::workload::synthetic::{NotABenchRepository, Synthetic, prepare};
use agent::diagnose::{DEFAULT_DAYS, DiagnoseOptions, Diagnosis, diagnose};
use anyhow::Context;
use repo::git::Repo;
use repo::index::CodeIndex;
use serde_json::json;

use crate::{BenchArgs, BenchError};

/// What to build and measure.
#[derive(Debug, Clone)]
pub(crate) struct BenchConfig {
    pub(crate) shape: Shape,
    /// Frames of the trace.
    pub(crate) frames: usize,
    /// Build (or reuse) the repository here and keep it; else a temporary
    /// directory removed at the end.
    pub(crate) keep: Option<PathBuf>,
    /// The diagnosis window, as `suture diagnose --days`.
    pub(crate) days: Option<u32>,
    /// Timed diagnoses per mode.
    pub(crate) iterations: usize,
}

/// Every figure of one run.
#[derive(Debug, Clone)]
pub(crate) struct BenchReport {
    pub(crate) repo_path: PathBuf,
    pub(crate) shape: Shape,
    pub(crate) head: String,
    pub(crate) reused: bool,
    pub(crate) build: Duration,
    pub(crate) index: IndexFigures,
    pub(crate) reindex: ReindexFigures,
    pub(crate) diagnose: DiagnoseFigures,
    /// None when the git command is not available.
    pub(crate) git_blame: Option<BlameFigures>,
    /// Peak resident memory while building, MB.
    pub(crate) build_peak_rss_mb: Option<f64>,
    /// Peak resident memory while measuring (the kernel's high-water mark is
    /// reset after the build), MB; the whole process's peak when the reset
    /// is refused.
    pub(crate) peak_rss_mb: Option<f64>,
}

/// The cold index of the head tree.
#[derive(Debug, Clone)]
pub(crate) struct IndexFigures {
    pub(crate) files: usize,
    pub(crate) bytes: u64,
    pub(crate) elapsed: Duration,
}

/// Re-indexing after a commit that changed one file.
#[derive(Debug, Clone)]
pub(crate) struct ReindexFigures {
    pub(crate) path: String,
    pub(crate) parsed: usize,
    pub(crate) reused: usize,
    pub(crate) elapsed: Duration,
}

/// The diagnoses of the trace.
#[derive(Debug, Clone)]
pub(crate) struct DiagnoseFigures {
    pub(crate) frames: usize,
    /// Frames in files a window commit changed.
    pub(crate) recent_frames: usize,
    /// Frames the diagnosis mapped onto repository files.
    pub(crate) mapped_frames: usize,
    /// Mapped frames whose line the index placed inside a function.
    pub(crate) frames_in_functions: usize,
    pub(crate) window_commits: usize,
    /// Suspect commit ids, best first.
    pub(crate) suspects: Vec<String>,
    /// The commit that wrote the crash line.
    pub(crate) planted: String,
    /// Its rank among the suspects, 1-based.
    pub(crate) planted_rank: Option<usize>,
    /// A fresh index per call, as `suture diagnose` runs.
    pub(crate) cold: Timings,
    /// One index reused, as the service runs: the head tree indexed and one
    /// untimed call made first.
    pub(crate) warm: Timings,
}

/// `git blame -L n,n HEAD -- path`, once per frame, one after another.
#[derive(Debug, Clone)]
pub(crate) struct BlameFigures {
    pub(crate) calls: usize,
    pub(crate) total: Duration,
}

/// Wall times of repeated runs, milliseconds.
#[derive(Debug, Clone)]
pub(crate) struct Timings {
    pub(crate) runs: Vec<f64>,
}

impl Timings {
    fn sorted(&self) -> Vec<f64> {
        let mut runs = self.runs.clone();
        runs.sort_by(f64::total_cmp);
        runs
    }

    pub(crate) fn min(&self) -> f64 {
        self.sorted().first().copied().unwrap_or(f64::NAN)
    }

    pub(crate) fn median(&self) -> f64 {
        let runs = self.sorted();
        match runs.len() {
            0 => f64::NAN,
            n if n % 2 == 1 => runs[n / 2],
            n => (runs[n / 2 - 1] + runs[n / 2]) / 2.0,
        }
    }

    /// Nearest-rank 90th percentile.
    pub(crate) fn p90(&self) -> f64 {
        let runs = self.sorted();
        let rank = (runs.len() as f64 * 0.9).ceil() as usize;
        runs.get(rank.saturating_sub(1))
            .copied()
            .unwrap_or(f64::NAN)
    }
}

/// Runs the diagnosis benchmark and prints its figures.
pub fn run(args: &BenchArgs) -> Result<(), BenchError> {
    let config = BenchConfig {
        shape: Shape {
            files: args.files,
            commits: args.commits,
        },
        frames: args.frames,
        keep: args.keep.clone(),
        days: args.days,
        iterations: args.iterations,
    };
    if config.shape.commits < 2 || config.shape.files < 2 {
        return Err(BenchError::BadInput(anyhow::anyhow!(
            "the bench needs at least 2 commits and 2 files"
        )));
    }
    if config.frames == 0 || config.iterations == 0 {
        return Err(BenchError::BadInput(anyhow::anyhow!(
            "the bench needs at least 1 frame and 1 iteration"
        )));
    }
    let report = run_bench(&config).map_err(|error| {
        if error.is::<NotABenchRepository>() {
            BenchError::BadInput(error)
        } else {
            BenchError::Failed(error)
        }
    })?;
    if args.json {
        let json = serde_json::to_string_pretty(&to_json(&report))
            .context("encoding the bench figures")
            .map_err(BenchError::Failed)?;
        println!("{json}");
    } else {
        print!("{}", render(&report));
    }
    Ok(())
}

/// Builds or reuses the repository and measures every phase; progress goes
/// to stderr.
pub(crate) fn run_bench(config: &BenchConfig) -> anyhow::Result<BenchReport> {
    // `_temporary` lives to the end of the run: dropping it removes the
    // repository.
    let (dir, _temporary) = match &config.keep {
        Some(keep) => (keep.clone(), None),
        None => {
            let temporary = tempfile::Builder::new()
                .prefix("suture-bench-")
                .tempdir()
                .context("creating a temporary directory")?;
            (temporary.path().to_path_buf(), Some(temporary))
        }
    };
    let synthetic = prepare(&dir, config.shape)?;
    eprintln!(
        "bench: repository ready in {:.1} s",
        synthetic.elapsed.as_secs_f64()
    );
    let build_peak_rss_mb = peak_rss_mb();
    let rss_was_reset = reset_peak_rss();

    let repo = Repo::open(&dir).context("opening the bench repository")?;
    let (index, reindex) = measure_index(&repo, &synthetic)?;
    let days = config.days.unwrap_or(DEFAULT_DAYS);
    let event = crate::workload::event::build(&synthetic, config.frames, days);
    let diagnose = measure_diagnose(&dir, &event, config)?;
    let git_blame = measure_git_blame(&dir, &event.frames)?;
    let peak_rss = peak_rss_mb();
    Ok(BenchReport {
        repo_path: dir,
        shape: synthetic.shape,
        head: synthetic.head.to_string(),
        reused: synthetic.reused,
        build: synthetic.elapsed,
        index,
        reindex,
        diagnose,
        git_blame,
        build_peak_rss_mb: if rss_was_reset {
            build_peak_rss_mb
        } else {
            None
        },
        peak_rss_mb: peak_rss,
    })
}

/// A cold index of the head tree, then the index of a one-file commit on top
/// of it with the same cache.
fn measure_index(
    repo: &Repo,
    synthetic: &Synthetic,
) -> anyhow::Result<(IndexFigures, ReindexFigures)> {
    let git = repo.git();
    let head_tree = git.find_commit(synthetic.head)?.tree()?;
    eprintln!("bench: indexing the head tree");
    let mut index = CodeIndex::new();
    let cold = index.index_tree(git, &head_tree)?;
    let (commit, path) = synthetic.commit_one_file(git)?;
    let next_tree = git.find_commit(commit)?.tree()?;
    let again = index.index_tree(git, &next_tree)?;
    Ok((
        IndexFigures {
            files: cold.files,
            bytes: cold.bytes_parsed,
            elapsed: cold.elapsed,
        },
        ReindexFigures {
            path,
            parsed: again.parsed,
            reused: again.reused,
            elapsed: again.elapsed,
        },
    ))
}

fn measure_diagnose(
    dir: &Path,
    planted: &PlantedEvent,
    config: &BenchConfig,
) -> anyhow::Result<DiagnoseFigures> {
    let (event, problems) = domain::event::event_from_value(planted.json.clone());
    for problem in &problems {
        tracing::warn!(path = %problem.path, "bench event problem: {}", problem.message);
    }
    let options = DiagnoseOptions {
        days: config.days,
        ..DiagnoseOptions::default()
    };

    eprintln!(
        "bench: diagnosing a {}-frame trace, {} cold runs",
        planted.frames.len(),
        config.iterations
    );
    let mut cold = Vec::with_capacity(config.iterations);
    let mut last: Option<Diagnosis> = None;
    for _ in 0..config.iterations {
        // As `suture diagnose` does: a fresh handle and an empty index.
        let repo = Repo::open(dir)?;
        let mut index = CodeIndex::new();
        let started = Instant::now();
        let diagnosis = diagnose(&repo, &mut index, &event, &options)?;
        cold.push(millis(started.elapsed()));
        last = Some(diagnosis);
    }

    eprintln!("bench: {} warm runs", config.iterations);
    let repo = Repo::open(dir)?;
    let mut index = CodeIndex::new();
    let head_tree = repo.git().find_commit(repo.head()?)?.tree()?;
    index.index_tree(repo.git(), &head_tree)?;
    diagnose(&repo, &mut index, &event, &options)?;
    let mut warm = Vec::with_capacity(config.iterations);
    for _ in 0..config.iterations {
        let started = Instant::now();
        diagnose(&repo, &mut index, &event, &options)?;
        warm.push(millis(started.elapsed()));
    }

    let diagnosis = last.context("no diagnosis ran")?;
    let planted_id = planted.planted.to_string();
    let suspects: Vec<String> = diagnosis
        .suspects
        .iter()
        .map(|s| s.commit.clone())
        .collect();
    Ok(DiagnoseFigures {
        frames: planted.frames.len(),
        recent_frames: planted.recent_frames,
        mapped_frames: diagnosis.frames.iter().filter(|f| f.in_app).count(),
        frames_in_functions: diagnosis
            .frames
            .iter()
            .filter(|f| f.in_app && f.symbol.is_some())
            .count(),
        window_commits: diagnosis.window.commits,
        planted_rank: suspects
            .iter()
            .position(|s| *s == planted_id)
            .map(|r| r + 1),
        suspects,
        planted: planted_id,
        cold: Timings { runs: cold },
        warm: Timings { runs: warm },
    })
}

/// What a person (or a naive tool) would run to learn who last changed each
/// frame's line.
fn measure_git_blame(dir: &Path, frames: &[TraceFrame]) -> anyhow::Result<Option<BlameFigures>> {
    eprintln!("bench: git blame, {} calls", frames.len());
    let started = Instant::now();
    for frame in frames {
        let range = format!("{0},{0}", frame.line);
        #[allow(clippy::disallowed_methods)] // the bench compares against the git CLI itself
        #[allow(clippy::disallowed_methods)] // the benchmark times real git blame
        let output = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(["blame", "-L", &range, "HEAD", "--", &frame.path])
            .output();
        let output = match output {
            Ok(output) => output,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                eprintln!("bench: git not found, skipping the git blame comparison");
                return Ok(None);
            }
            Err(error) => return Err(error).context("running git blame"),
        };
        if !output.status.success() {
            anyhow::bail!(
                "git blame -L {range} HEAD -- {} failed: {}",
                frame.path,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
    }
    Ok(Some(BlameFigures {
        calls: frames.len(),
        total: started.elapsed(),
    }))
}

fn millis(elapsed: Duration) -> f64 {
    elapsed.as_secs_f64() * 1e3
}

/// The kernel's high-water mark of this process's resident memory, MB.
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Resets the high-water mark, so the measured phases are not charged for
/// the build's in-memory object database. False when the kernel refuses.
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn speedup(report: &BenchReport) -> Option<f64> {
    let blame = report.git_blame.as_ref()?;
    Some(millis(blame.total) / report.diagnose.cold.median())
}

fn megabytes(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// The figures as a compact table.
pub(crate) fn render(report: &BenchReport) -> String {
    let mut out = String::new();
    let index = &report.index;
    let index_s = index.elapsed.as_secs_f64();
    let diagnose = &report.diagnose;
    let _ = writeln!(
        out,
        "suture bench: {} files, {} commits, {}-frame trace",
        report.shape.files, report.shape.commits, diagnose.frames
    );
    let _ = writeln!(
        out,
        "  repository      {} in {:.1} s  {}",
        if report.reused { "reused" } else { "built" },
        report.build.as_secs_f64(),
        report.repo_path.display()
    );
    let _ = writeln!(
        out,
        "  cold index      {} files  {:.1} MB  {:.2} s  {:.0} files/s  {:.1} MB/s",
        index.files,
        megabytes(index.bytes),
        index_s,
        index.files as f64 / index_s,
        megabytes(index.bytes) / index_s
    );
    let _ = writeln!(
        out,
        "  re-index        {} parsed, {} reused  {:.1} ms  (target < 50 ms)",
        report.reindex.parsed,
        report.reindex.reused,
        millis(report.reindex.elapsed)
    );
    for (label, timings) in [
        ("diagnose cold", &diagnose.cold),
        ("diagnose warm", &diagnose.warm),
    ] {
        let _ = writeln!(
            out,
            "  {label}   min {:.1}  median {:.1}  p90 {:.1} ms  ({} runs{})",
            timings.min(),
            timings.median(),
            timings.p90(),
            timings.runs.len(),
            if label == "diagnose cold" {
                ", target < 300 ms"
            } else {
                ""
            }
        );
    }
    match (&report.git_blame, speedup(report)) {
        (Some(blame), Some(speedup)) => {
            let _ = writeln!(
                out,
                "  git blame       {} calls  {:.1} ms total  {:.1} ms/call",
                blame.calls,
                millis(blame.total),
                millis(blame.total) / blame.calls as f64
            );
            let _ = writeln!(
                out,
                "  speedup         {speedup:.1}x  (git blame total / cold diagnose median, target >= 10x)"
            );
        }
        _ => {
            let _ = writeln!(out, "  git blame       skipped: git not found");
        }
    }
    let rss = |mb: Option<f64>| mb.map_or("n/a".to_string(), |mb| format!("{mb:.0} MB"));
    let _ = writeln!(
        out,
        "  peak rss        {} measuring, {} building",
        rss(report.peak_rss_mb),
        rss(report.build_peak_rss_mb)
    );
    let _ = writeln!(
        out,
        "  trace           {}/{} frames mapped, {} inside functions, {} in files the window changed",
        diagnose.mapped_frames,
        diagnose.frames,
        diagnose.frames_in_functions,
        diagnose.recent_frames,
    );
    let _ = writeln!(
        out,
        "  diagnosis       {} commits in window, {} suspects, planted commit {}",
        diagnose.window_commits,
        diagnose.suspects.len(),
        diagnose
            .planted_rank
            .map_or("not a suspect".to_string(), |rank| format!("ranked {rank}"))
    );
    out
}

/// The figures as one JSON object; times in milliseconds unless named `_s`,
/// every figure rounded to three decimals.
pub(crate) fn to_json(report: &BenchReport) -> serde_json::Value {
    let round = |value: f64| (value * 1e3).round() / 1e3;
    let index = &report.index;
    let index_s = index.elapsed.as_secs_f64();
    let diagnose = &report.diagnose;
    let timings = |t: &Timings| {
        json!({
            "runs": t.runs.len(),
            "min_ms": round(t.min()),
            "median_ms": round(t.median()),
            "p90_ms": round(t.p90()),
        })
    };
    json!({
        "repository": {
            "path": report.repo_path.display().to_string(),
            "files": report.shape.files,
            "commits": report.shape.commits,
            "head": report.head,
            "reused": report.reused,
            "build_s": round(report.build.as_secs_f64()),
        },
        "index": {
            "files": index.files,
            "mb": round(megabytes(index.bytes)),
            "seconds": round(index_s),
            "files_per_s": round(index.files as f64 / index_s),
            "mb_per_s": round(megabytes(index.bytes) / index_s),
        },
        "reindex": {
            "path": report.reindex.path,
            "parsed": report.reindex.parsed,
            "reused": report.reindex.reused,
            "ms": round(millis(report.reindex.elapsed)),
        },
        "diagnose": {
            "frames": diagnose.frames,
            "frames_in_changed_files": diagnose.recent_frames,
            "mapped_frames": diagnose.mapped_frames,
            "frames_in_functions": diagnose.frames_in_functions,
            "window_commits": diagnose.window_commits,
            "suspects": diagnose.suspects.len(),
            "planted_commit": diagnose.planted,
            "planted_rank": diagnose.planted_rank,
            "cold": timings(&diagnose.cold),
            "warm": timings(&diagnose.warm),
        },
        "git_blame": report.git_blame.as_ref().map(|blame| json!({
            "calls": blame.calls,
            "total_ms": round(millis(blame.total)),
            "per_call_ms": round(millis(blame.total) / blame.calls as f64),
        })),
        "speedup": speedup(report).map(round),
        "peak_rss_mb": report.peak_rss_mb.map(round),
        "build_peak_rss_mb": report.build_peak_rss_mb.map(round),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny repository through the whole bench, twice: the history has the
    /// asked number of commits, re-indexing after a one-file commit parses
    /// that one file, every suspect is a commit of the history, and the
    /// second run reuses the kept repository. Timings are never checked.
    #[test]
    fn bench_measures_a_tiny_repository() {
        let scratch = tempfile::tempdir().unwrap();
        let dir = scratch.path().join("repo");
        let config = BenchConfig {
            shape: Shape {
                files: 40,
                commits: 200,
            },
            frames: 10,
            keep: Some(dir.clone()),
            days: None,
            iterations: 2,
        };

        let report = run_bench(&config).unwrap();

        let git = repo::git2::Repository::open(&dir).unwrap();
        let mut walk = git.revwalk().unwrap();
        walk.push_head().unwrap();
        let history: Vec<String> = walk.map(|id| id.unwrap().to_string()).collect();
        assert_eq!(history.len(), 200);
        assert_eq!(report.reindex.parsed, 1);
        assert_eq!(report.reindex.reused + 1, report.index.files);
        assert_eq!(report.diagnose.frames, 10);
        assert_eq!(report.diagnose.mapped_frames, 10);
        assert_eq!(report.diagnose.frames_in_functions, 10);
        assert!(!report.diagnose.suspects.is_empty());
        for suspect in &report.diagnose.suspects {
            assert!(history.contains(suspect), "{suspect} is not in the history");
        }
        assert!(history.contains(&report.diagnose.planted));
        assert!(!report.reused);

        let again = run_bench(&config).unwrap();
        assert!(again.reused);
        assert_eq!(again.head, report.head);
        assert_eq!(again.diagnose.planted, report.diagnose.planted);
    }
}

//! `suture diagnose`: print the diagnosis of one event.

use std::fmt::Write as _;

use agent::diagnose::{Diagnosis, diagnose};
use anyhow::Context;
use repo::git::Repo;
use repo::index::CodeIndex;

use crate::CommandError;
use crate::cli::DiagnoseArgs;
use crate::event_file;

pub(crate) fn run(args: &DiagnoseArgs) -> Result<(), CommandError> {
    let parsed = event_file::load(&args.event).map_err(CommandError::bad_input)?;
    for problem in &parsed.problems {
        tracing::info!(path = %problem.path, "event problem: {}", problem.message);
    }
    let repo = Repo::open(&args.repo).map_err(CommandError::bad_input)?;
    let mut index = CodeIndex::new();
    let diagnosis = diagnose(
        &repo,
        &mut index,
        &parsed.event,
        &args.diagnose.to_options(),
    )
    .map_err(|error| match error {
        agent::diagnose::DiagnoseError::Repo(
            error @ (repo::git::RepoError::UnknownRevision { .. } | repo::git::RepoError::Empty),
        ) => CommandError::bad_input(error),
        other => CommandError::failure(other),
    })?;
    if args.json {
        let json = serde_json::to_string_pretty(&diagnosis)
            .context("encoding the diagnosis")
            .map_err(CommandError::failure)?;
        println!("{json}");
    } else {
        print!("{}", render(&diagnosis));
    }
    Ok(())
}

/// The human summary: the error, the verdict, ranked suspects with their
/// evidence, likely locations, and the application frames.
pub(crate) fn render(diagnosis: &Diagnosis) -> String {
    let mut out = String::new();
    let short = |sha: &str| sha.chars().take(10).collect::<String>();
    let _ = writeln!(out, "{}", diagnosis.title);
    let window = match (&diagnosis.window.since, diagnosis.window.days) {
        (Some(since), _) => format!("since {since}"),
        (None, Some(days)) => format!("last {days} days"),
        (None, None) => "all history".to_string(),
    };
    let _ = writeln!(
        out,
        "revision {} ({}), {} commits in window ({window}{})",
        short(&diagnosis.revision),
        diagnosis.revision_source,
        diagnosis.window.commits,
        if diagnosis.window.truncated {
            ", truncated"
        } else {
            ""
        },
    );
    match &diagnosis.culprit {
        Some(culprit) => {
            let _ = writeln!(
                out,
                "culprit {} (confidence {:.2})",
                short(culprit),
                diagnosis.confidence
            );
        }
        None => {
            let _ = writeln!(out, "no culprit (confidence {:.2})", diagnosis.confidence);
        }
    }
    let _ = writeln!(out, "\nsuspects:");
    if diagnosis.suspects.is_empty() {
        let _ = writeln!(
            out,
            "  none: no commit in the window touched the application frames"
        );
    }
    for (rank, suspect) in diagnosis.suspects.iter().enumerate() {
        let _ = writeln!(
            out,
            "  {}. {}  {:.3}  {} <{}>  {}",
            rank + 1,
            suspect.short_id,
            suspect.score,
            suspect.author,
            suspect.email,
            suspect.subject
        );
        for item in suspect.evidence.iter().take(4) {
            let at = match (&item.path, item.line) {
                (Some(path), Some(line)) => format!("{path}:{line}"),
                (Some(path), None) => path.clone(),
                _ => String::new(),
            };
            let symbol = item
                .symbol
                .as_deref()
                .map(|s| format!(" in {s}"))
                .unwrap_or_default();
            let kind = serde_json::to_value(item.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "       {kind:<10} frame {} {at}{symbol}: {}",
                item.frame, item.detail
            );
        }
    }
    if !diagnosis.locations.is_empty() {
        let _ = writeln!(out, "\nlikely locations:");
        for location in diagnosis.locations.iter().take(5) {
            let _ = writeln!(
                out,
                "  {}:{}-{}  {}  {:.3}",
                location.path,
                location.start_line,
                location.end_line,
                location.symbol,
                location.score
            );
        }
    }
    let app_frames: Vec<_> = diagnosis.frames.iter().filter(|f| f.in_app).collect();
    let _ = writeln!(
        out,
        "\napplication frames ({} of {}):",
        app_frames.len(),
        diagnosis.frames.len()
    );
    for frame in app_frames.iter().take(10) {
        let _ = writeln!(
            out,
            "  #{} {}:{} {}{}",
            frame.index,
            frame.path.as_deref().unwrap_or_default(),
            frame.line.map(|l| l.to_string()).unwrap_or_default(),
            frame
                .symbol
                .as_deref()
                .or(frame.function.as_deref())
                .unwrap_or("?"),
            frame
                .blamed_commit
                .as_deref()
                .map(|c| format!("  (line from {})", short(c)))
                .unwrap_or_default()
        );
    }
    out
}

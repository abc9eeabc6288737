//! The event's frames, mapped onto the deployed tree: repository path, the
//! enclosing function and class at the frame's line, the line's text, and
//! the weight the frame carries in the diagnosis.

use std::collections::BTreeSet;

use domain::event::{Event, Frame};
use repo::git::{Repo, blob_paths};
use repo::git2::Tree;
use repo::index::{CodeIndex, FileSymbols, Language, Symbol, SymbolKind};
use repo::pathmap::{FrameLocation, MapOutcome, PathMapper};

use super::evidence::identifiers;
use super::{DiagnoseError, DiagnoseOptions};

/// Application frames looked at, at most: deep recursion adds no evidence.
const MAX_APP_FRAMES: usize = 40;
/// Weight lost per step away from the crash.
const FRAME_DECAY: f64 = 0.75;
/// The frame that raised weighs more than any caller.
const RAISING_FRAME_BONUS: f64 = 1.5;
/// Test code is seldom where a production fault lives.
const TEST_FRAME_FACTOR: f64 = 0.5;
/// Frames of a cause in an exception chain.
const CAUSE_FRAME_FACTOR: f64 = 0.5;

/// A symbol at the deployed revision.
#[derive(Debug, Clone)]
pub(crate) struct SymbolRef {
    pub(crate) name: String,
    pub(crate) qualified_name: String,
    pub(crate) kind: SymbolKind,
    pub(crate) start_line: u32,
    pub(crate) end_line: u32,
    pub(crate) calls: Vec<String>,
}

impl SymbolRef {
    fn new(symbol: &Symbol) -> SymbolRef {
        SymbolRef {
            name: symbol.name.clone(),
            qualified_name: symbol.qualified_name.clone(),
            kind: symbol.kind,
            start_line: symbol.start_line,
            end_line: symbol.end_line,
            calls: symbol.calls.clone(),
        }
    }
}

/// One frame of the event, resolved against the repository.
#[derive(Debug, Clone)]
pub(crate) struct ResolvedFrame {
    /// Position in the reported stack, 0 = the crash frame.
    pub(crate) index: usize,
    /// 0 for the raised exception, 1.. for its causes.
    pub(crate) chain: usize,
    pub(crate) function: Option<String>,
    pub(crate) module: Option<String>,
    pub(crate) line: Option<u32>,
    /// The SDK's source line, capped.
    pub(crate) context_line: Option<String>,
    /// The SDK's local variables, capped.
    pub(crate) vars: Option<serde_json::Map<String, serde_json::Value>>,
    pub(crate) outcome: MapOutcome,
    /// What the SDK said about in-app, for the report.
    pub(crate) sdk_in_app: Option<bool>,
    /// Enclosing function at the deployed revision.
    pub(crate) symbol: Option<SymbolRef>,
    /// Enclosing class, impl, trait… of that function.
    pub(crate) container: Option<SymbolRef>,
    /// The frame line's text at the deployed revision.
    pub(crate) line_text: Option<String>,
    /// Identifiers of that line that are distinctive in its file: a change
    /// mentioning them touches the state the line reads.
    pub(crate) line_tokens: BTreeSet<String>,
    /// How much this frame's evidence counts; 0 for library frames.
    pub(crate) weight: f64,
}

impl ResolvedFrame {
    /// The repository path, when the frame is application code.
    pub(crate) fn path(&self) -> Option<&str> {
        match &self.outcome {
            MapOutcome::Repo { path, .. } => Some(path),
            _ => None,
        }
    }

    /// Whether the frame maps to a file of the repository.
    pub(crate) fn in_app(&self) -> bool {
        self.path().is_some()
    }
}

pub(crate) fn resolve(
    repo: &Repo,
    index: &mut CodeIndex,
    tip_tree: &Tree<'_>,
    event: &Event,
    options: &DiagnoseOptions,
) -> Result<Vec<ResolvedFrame>, DiagnoseError> {
    let mapper = PathMapper::new(blob_paths(tip_tree)?, options.code_mappings.clone());
    let mut stack: Vec<(usize, &Frame)> =
        event.crash_frames().into_iter().map(|f| (0, f)).collect();
    stack.extend(
        event
            .chained_frames()
            .into_iter()
            .map(|(exception_idx, frame)| (event.exceptions.len() - exception_idx, frame)),
    );
    let outcomes: Vec<MapOutcome> = stack
        .iter()
        .map(|(_, frame)| mapper.map(&location(frame)))
        .collect();
    // Parse the frames' files up front, in parallel: most of a cold
    // diagnosis is parsing.
    let frame_blobs: Vec<_> = outcomes
        .iter()
        .filter_map(|outcome| {
            let MapOutcome::Repo { path, .. } = outcome else {
                return None;
            };
            let language = Language::from_path(path)?;
            let entry = tip_tree.get_path(std::path::Path::new(path)).ok()?;
            Some((entry.id(), language))
        })
        .collect();
    index.prefetch_blobs(repo.git(), &frame_blobs)?;
    let mut frames = Vec::with_capacity(stack.len());
    let mut app_rank = 0usize;
    for (frame_index, ((chain, frame), outcome)) in stack.into_iter().zip(outcomes).enumerate() {
        let mut resolved = ResolvedFrame {
            index: frame_index,
            chain,
            function: frame.function.clone(),
            module: frame.module.clone(),
            line: frame.lineno,
            context_line: super::locals::context_line(frame),
            vars: super::locals::vars(frame),
            outcome,
            sdk_in_app: frame.in_app,
            symbol: None,
            container: None,
            line_text: None,
            line_tokens: BTreeSet::new(),
            weight: 0.0,
        };
        if let (Some(path), Some(line)) = (resolved.path().map(str::to_string), frame.lineno)
            && app_rank < MAX_APP_FRAMES
        {
            if let Some(file) = index.file_at(repo.git(), tip_tree, &path)? {
                (resolved.symbol, resolved.container) = enclosing(&file, line);
            }
            if let Some(content) = blob_text(repo, tip_tree, &path) {
                resolved.line_text = content
                    .lines()
                    .nth(line.saturating_sub(1) as usize)
                    .map(|l| l.trim().to_string());
                resolved.line_tokens = resolved
                    .line_text
                    .as_deref()
                    .map(|text| distinctive_tokens(text, &content))
                    .unwrap_or_default();
            }
            let mut weight = FRAME_DECAY.powi(app_rank as i32);
            if frame_index == 0 {
                weight *= RAISING_FRAME_BONUS;
            }
            if is_test_path(&path) {
                weight *= TEST_FRAME_FACTOR;
            }
            if chain > 0 {
                weight *= CAUSE_FRAME_FACTOR;
            }
            resolved.weight = weight;
            app_rank += 1;
        }
        frames.push(resolved);
    }
    Ok(frames)
}

fn location(frame: &Frame) -> FrameLocation<'_> {
    FrameLocation {
        abs_path: frame.abs_path.as_deref(),
        filename: frame.filename.as_deref(),
        module: frame.module.as_deref(),
        in_app: frame.in_app,
    }
}

fn enclosing(file: &FileSymbols, line: u32) -> (Option<SymbolRef>, Option<SymbolRef>) {
    let chain = file.enclosing_chain(line);
    let function = chain.iter().find(|s| s.kind.is_function_like());
    let container = chain.iter().find(|s| {
        matches!(
            s.kind,
            SymbolKind::Class
                | SymbolKind::Struct
                | SymbolKind::Enum
                | SymbolKind::Interface
                | SymbolKind::Trait
                | SymbolKind::Impl
        )
    });
    (
        function.map(|s| SymbolRef::new(s)),
        container.map(|s| SymbolRef::new(s)),
    )
}

fn blob_text(repo: &Repo, tree: &Tree<'_>, path: &str) -> Option<String> {
    let entry = tree.get_path(std::path::Path::new(path)).ok()?;
    let blob = repo.git().find_blob(entry.id()).ok()?;
    Some(String::from_utf8_lossy(blob.content()).into_owned())
}

/// The identifiers of `line` that occur on few lines of `file`: on at most
/// one line in twenty (at least 3, at most 20). `self.config` or `time` in a
/// module that uses them everywhere says nothing about one change.
fn distinctive_tokens(line: &str, file: &str) -> BTreeSet<String> {
    let tokens = identifiers(line);
    if tokens.is_empty() {
        return tokens;
    }
    let mut lines_with: std::collections::HashMap<&str, usize> =
        tokens.iter().map(|t| (t.as_str(), 0)).collect();
    let mut n_lines = 0;
    for file_line in file.lines() {
        n_lines += 1;
        for token in identifiers(file_line) {
            if let Some(count) = lines_with.get_mut(token.as_str()) {
                *count += 1;
            }
        }
    }
    let limit = (n_lines / 20).clamp(3, 20);
    lines_with
        .into_iter()
        .filter(|&(_, n)| n <= limit)
        .map(|(token, _)| token.to_string())
        .collect()
}

/// Test code by the conventions of the supported languages.
pub(crate) fn is_test_path(path: &str) -> bool {
    let file = path.rsplit('/').next().unwrap_or(path);
    path.split('/')
        .any(|dir| matches!(dir, "test" | "tests" | "__tests__" | "spec" | "testing"))
        || file.starts_with("test_")
        || file.ends_with("_test.py")
        || file.ends_with("_test.go")
        || file.contains(".test.")
        || file.contains(".spec.")
        || (file.ends_with("Test.java") || file.ends_with("Tests.java"))
}

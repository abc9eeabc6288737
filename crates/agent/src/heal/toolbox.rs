//! The model's tools, over a read-only checkout of the deployed revision:
//! for the LLM rung of the fix ladder, and for the model-written
//! reproduction test before it.
//!
//! The model reads code through small windows, bounded searches and symbol
//! lookups. Its only way to change anything is a submission, and what it
//! may submit depends on the toolbox's mode. A fix toolbox
//! ([`HealToolbox::new`]) takes `submit`, which goes through the same gates
//! as every other candidate (scope guard, clean apply in a fresh worktree,
//! tests in the sandbox). A reproduction toolbox
//! ([`HealToolbox::for_reproduction`]) takes `submit_test`: the scope guard
//! with the policy for generated patches, then the caller's judge (test
//! files only, then the reproduction gate). Each refuses the other's
//! submission. Everything returned to the model is redacted.
//!
//! What the scope policy denies (secrets, keys, CI configuration, whatever
//! the repository's configuration adds) the tools do not show either: a
//! denied path is refused by `read_file`, `list_dir` and `blame`, left out
//! of listings, searches and symbol lookups, and its part of a commit's diff
//! is omitted. What a patch may not change, the model has no reason to read,
//! and a secret it never read it cannot echo.

use std::fmt::Write as _;
use std::path::{Component, Path, PathBuf};

use domain::event::Event;
use repo::git2::{BlameOptions, DiffFormat, Oid};
use repo::index::CodeIndex;
use repo::scope::{self, CheckedPatch, DeniedPaths, Edit};
use repo::worktree::Worktree;

use super::HealError;
use super::gates::Gates;
use super::report::{Attempt, Strategy};
use crate::diagnose::Diagnosis;
use crate::llm::{PromptInput, Submission, SubmitVerdict, Toolbox};

/// Lines shown by `read_file` when no range is asked for.
const READ_WINDOW: u32 = 100;
/// Most lines `read_file` shows at once.
const MAX_READ_LINES: u32 = 200;
/// Most matches `search_code` returns.
const MAX_MATCHES: usize = 50;
/// Most bytes any tool returns.
const MAX_TOOL_BYTES: usize = 12_000;
/// Files larger than this are not searched.
const MAX_SEARCH_FILE_BYTES: u64 = 1 << 20;
/// Most of the crash frame's local variables shown to the model.
const MAX_LOCALS: usize = 40;
/// Longest rendering of one local variable's value shown to the model.
const MAX_LOCAL_VALUE_CHARS: usize = 500;

/// The answer to `submit_test` in a fix toolbox.
const NO_TEST_IN_A_FIX: &str = "submit_test is not available: this attempt fixes the error; \
    submit the fix with submit_edits or submit_patch";
/// The answer to `submit` in a reproduction toolbox.
const NO_FIX_IN_A_REPRODUCTION: &str = "submit is not available: this attempt writes a \
    reproduction test, not a fix; submit the test with submit_test";

/// Judges a reproduction test the scope guard accepted, given the work tree
/// it was checked against: test files only, then the reproduction gate.
/// Its verdict's text is redacted and bounded by the toolbox.
pub(crate) type TestJudge<'g> = dyn FnMut(&CheckedPatch, &Path) -> SubmitVerdict + 'g;

pub(crate) struct HealToolbox<'g, 'a> {
    gates: &'g Gates<'a>,
    scratch: Worktree,
    index: &'g mut CodeIndex,
    indexed: bool,
    mode: Mode<'g>,
    frames: Vec<(String, u32)>,
    /// The policy's deny globs; `Err` (a glob that does not compile) denies
    /// every path.
    denied: Result<DeniedPaths, String>,
}

/// What the toolbox's submissions are for.
enum Mode<'g> {
    /// Fixes: `submit` runs the gates; what it tried is kept.
    Fix { attempts: Vec<Attempt> },
    /// A reproduction test: `submit_test` guards it and asks `judge`.
    Reproduce {
        judge: &'g mut TestJudge<'g>,
        /// The canonical text of the test the judge accepted.
        accepted: Option<String>,
    },
}

impl<'g, 'a> HealToolbox<'g, 'a> {
    /// A toolbox for the LLM rung: `submit` proposes a fix, `submit_test` is
    /// refused.
    pub(crate) fn new(
        gates: &'g Gates<'a>,
        index: &'g mut CodeIndex,
        diagnosis: &Diagnosis,
    ) -> Result<HealToolbox<'g, 'a>, HealError> {
        Self::with_mode(
            gates,
            index,
            diagnosis,
            Mode::Fix {
                attempts: Vec::new(),
            },
        )
    }

    /// A toolbox for writing a reproduction test: `submit_test` runs the
    /// scope guard (the policy for generated patches) and hands what it
    /// accepted, with the work tree it checked against, to `judge`, which
    /// must refuse anything but new test files and lines added to test files
    /// before it runs the reproduction gate. `submit` is refused.
    pub(crate) fn for_reproduction(
        gates: &'g Gates<'a>,
        index: &'g mut CodeIndex,
        diagnosis: &Diagnosis,
        judge: &'g mut TestJudge<'g>,
    ) -> Result<HealToolbox<'g, 'a>, HealError> {
        Self::with_mode(
            gates,
            index,
            diagnosis,
            Mode::Reproduce {
                judge,
                accepted: None,
            },
        )
    }

    fn with_mode(
        gates: &'g Gates<'a>,
        index: &'g mut CodeIndex,
        diagnosis: &Diagnosis,
        mode: Mode<'g>,
    ) -> Result<HealToolbox<'g, 'a>, HealError> {
        let frames = diagnosis
            .frames
            .iter()
            .filter_map(|f| Some((f.path.clone()?, f.line?)))
            .take(6)
            .collect();
        Ok(HealToolbox {
            scratch: gates.worktree()?,
            denied: gates.policy.denied_paths().map_err(|e| e.to_string()),
            gates,
            index,
            indexed: false,
            mode,
            frames,
        })
    }

    /// The attempts the model's fix submissions made (none for a
    /// reproduction toolbox).
    pub(crate) fn into_attempts(self) -> Vec<Attempt> {
        match self.mode {
            Mode::Fix { attempts } => attempts,
            Mode::Reproduce { .. } => Vec::new(),
        }
    }

    /// The canonical text of the reproduction test the judge accepted, if
    /// one was (never for a fix toolbox).
    pub(crate) fn into_accepted_test(self) -> Option<String> {
        match self.mode {
            Mode::Fix { .. } => None,
            Mode::Reproduce { accepted, .. } => accepted,
        }
    }

    /// What the prompt templates are filled with, redacted.
    pub(crate) fn prompt_input(
        &mut self,
        event: &Event,
        diagnosis: &Diagnosis,
        guidance: Option<&str>,
        history: Option<&str>,
    ) -> PromptInput {
        let redact = |text: &str| self.gates.redactor.redact(text);
        let mut summary = String::new();
        let _ = writeln!(summary, "confidence {:.2}", diagnosis.confidence);
        for suspect in diagnosis.suspects.iter().take(3) {
            let _ = writeln!(
                summary,
                "suspect {} {} (score {:.2})",
                suspect.short_id, suspect.subject, suspect.score
            );
            for item in suspect.evidence.iter().take(3) {
                let _ = writeln!(summary, "  - {}", item.detail);
            }
        }
        for location in diagnosis.locations.iter().take(5) {
            let _ = writeln!(
                summary,
                "location {}:{}-{} {}",
                location.path, location.start_line, location.end_line, location.symbol
            );
        }
        let mut frames = String::new();
        for frame in diagnosis.frames.iter().filter(|f| f.in_app).take(12) {
            let _ = writeln!(
                frames,
                "#{} {}:{} in {}",
                frame.index,
                frame.path.as_deref().unwrap_or("?"),
                frame.line.unwrap_or_default(),
                frame
                    .symbol
                    .as_deref()
                    .or(frame.function.as_deref())
                    .unwrap_or("?")
            );
        }
        let crash = diagnosis
            .frames
            .iter()
            .filter(|f| f.chain == 0)
            .find(|f| f.in_app)
            .or_else(|| diagnosis.frames.iter().find(|f| f.chain == 0));
        let crash_function = crash.map_or_else(String::new, |frame| {
            let mut text = frame
                .function
                .as_deref()
                .or(frame.symbol.as_deref())
                .unwrap_or("?")
                .to_string();
            if let Some(path) = &frame.path {
                let _ = write!(text, " ({path}:{})", frame.line.unwrap_or_default());
            }
            if let Some(symbol) = frame
                .symbol
                .as_deref()
                .filter(|s| Some(*s) != frame.function.as_deref())
            {
                let _ = write!(text, ", {symbol} at the deployed revision");
            }
            text
        });
        let crash_locals = crash
            .and_then(|frame| frame.vars.as_ref())
            .map(locals_text)
            .unwrap_or_default();
        let exception_type = event
            .primary_exception()
            .and_then(|exception| exception.ty.as_deref())
            .unwrap_or_default();
        let mut code = String::new();
        for (path, line) in self.frames.clone().iter().take(3) {
            let start = line.saturating_sub(15).max(1);
            let _ = writeln!(
                code,
                "{}",
                self.read_file(path, Some(start), Some(line + 15))
            );
        }
        PromptInput {
            title: redact(&diagnosis.title),
            message: redact(event.message.as_deref().unwrap_or_default()),
            diagnosis_summary: redact(&summary),
            frames_text: redact(&frames),
            code_context: code,
            test_command: redact(self.gates.test_command),
            extra_guidance: guidance.map(redact),
            history: history.map(redact),
            exception_type: redact(exception_type),
            crash_function: redact(&crash_function),
            crash_locals: redact(&crash_locals),
        }
    }

    /// Why the tools do not show `relative` (a `/`-separated path from the
    /// repository root), if they do not. A directory is denied when a glob
    /// covers what is inside it (`secrets/**`).
    fn refusal(&self, relative: &str, is_dir: bool) -> Option<String> {
        let denied = match &self.denied {
            Ok(denied) => denied,
            Err(error) => return Some(format!("error: the scope policy is invalid: {error}")),
        };
        let relative = relative.trim_end_matches('/');
        let glob = denied.glob_for(relative).or_else(|| {
            is_dir
                .then(|| denied.glob_for(&format!("{relative}/x")))
                .flatten()
        })?;
        Some(format!(
            "error: {relative:?} is denied by the scope policy ({glob:?}): it cannot be read or changed"
        ))
    }

    /// `full`, a path inside the scratch checkout, relative to its root.
    fn relative(&self, full: &Path) -> String {
        let root = self
            .scratch
            .path()
            .canonicalize()
            .unwrap_or_else(|_| self.scratch.path().to_path_buf());
        full.strip_prefix(&root)
            .or_else(|_| full.strip_prefix(self.scratch.path()))
            .unwrap_or(full)
            .to_string_lossy()
            .into_owned()
    }

    /// `path` inside the scratch checkout and not denied, or why not. Both
    /// the path as asked and where it leads (through symlinks) are checked.
    fn resolve(&self, path: &str) -> Result<PathBuf, String> {
        let full = self.locate(path)?;
        let is_dir = full.is_dir();
        for relative in [
            path.trim_start_matches("./").to_string(),
            self.relative(&full),
        ] {
            if let Some(refusal) = self.refusal(&relative, is_dir) {
                return Err(refusal);
            }
        }
        Ok(full)
    }

    /// `path` inside the scratch checkout, or why not.
    fn locate(&self, path: &str) -> Result<PathBuf, String> {
        let relative = Path::new(path.trim_start_matches("./"));
        let escapes = relative
            .components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir));
        if escapes || path.contains('\0') {
            return Err(format!(
                "error: {path:?} is not a path inside the repository"
            ));
        }
        let full = self.scratch.path().join(relative);
        let canonical = full
            .canonicalize()
            .map_err(|_| format!("error: {path} does not exist"))?;
        let root = self
            .scratch
            .path()
            .canonicalize()
            .map_err(|e| e.to_string())?;
        if !canonical.starts_with(&root) || canonical.starts_with(root.join(".git")) {
            return Err(format!(
                "error: {path:?} is not a path inside the repository"
            ));
        }
        Ok(canonical)
    }

    /// The unified diff a submission stands for: edits are turned into one
    /// against the scratch checkout; a diff is taken as it is (the scope
    /// guard judges it next).
    fn diff_of(&self, patch: Submission) -> Result<String, String> {
        match patch {
            Submission::UnifiedDiff(diff) => Ok(diff),
            Submission::Edits(edits) => {
                let edits: Vec<Edit> = edits
                    .into_iter()
                    .map(|e| Edit {
                        path: e.path,
                        search: e.search,
                        replace: e.replace,
                    })
                    .collect();
                scope::diff_from_edits(self.scratch.path(), &edits)
                    .map_err(|violation| format!("edits refused: {violation}"))
            }
        }
    }

    fn finish(&self, text: String) -> String {
        let mut text = self.gates.redactor.redact(&text);
        if text.len() > MAX_TOOL_BYTES {
            let mut cut = MAX_TOOL_BYTES;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
            text.push_str("\n[output truncated]");
        }
        text
    }
}

impl Toolbox for HealToolbox<'_, '_> {
    fn read_file(&mut self, path: &str, start_line: Option<u32>, end_line: Option<u32>) -> String {
        let full = match self.resolve(path) {
            Ok(full) => full,
            Err(error) => return error,
        };
        let Ok(bytes) = std::fs::read(&full) else {
            return format!("error: {path} is not a readable file");
        };
        let text = String::from_utf8_lossy(&bytes);
        let lines: Vec<&str> = text.lines().collect();
        let total = lines.len() as u32;
        let start = start_line.unwrap_or(1).max(1);
        let end = end_line
            .unwrap_or(start + READ_WINDOW - 1)
            .min(start + MAX_READ_LINES - 1)
            .min(total);
        let mut out = format!("{path} lines {start}-{end} of {total}\n");
        for number in start..=end {
            let _ = writeln!(out, "{number:>5} {}", lines[(number - 1) as usize]);
        }
        self.finish(out)
    }

    fn list_dir(&mut self, path: &str) -> String {
        let full = if path.is_empty() || path == "." {
            Ok(self.scratch.path().to_path_buf())
        } else {
            self.resolve(path)
        };
        let full = match full {
            Ok(full) => full,
            Err(error) => return error,
        };
        let Ok(entries) = std::fs::read_dir(&full) else {
            return format!("error: {path} is not a directory");
        };
        let mut names: Vec<String> = entries
            .flatten()
            .filter(|e| e.file_name() != ".git")
            .filter(|e| {
                self.refusal(&self.relative(&e.path()), e.path().is_dir())
                    .is_none()
            })
            .map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                if e.path().is_dir() {
                    format!("{name}/")
                } else {
                    name
                }
            })
            .collect();
        names.sort();
        names.truncate(300);
        self.finish(names.join("\n"))
    }

    fn search_code(&mut self, pattern: &str, path_glob: Option<&str>) -> String {
        let regex = match regex::RegexBuilder::new(pattern)
            .size_limit(1 << 20)
            .build()
        {
            Ok(regex) => regex,
            Err(error) => return format!("error: bad pattern: {error}"),
        };
        let glob = match path_glob.map(|g| globset::Glob::new(g).map(|g| g.compile_matcher())) {
            Some(Err(error)) => return format!("error: bad glob: {error}"),
            Some(Ok(glob)) => Some(glob),
            None => None,
        };
        let root = self.scratch.path().to_path_buf();
        let mut matches = Vec::new();
        let mut stack = vec![root.clone()];
        'walk: while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            let mut entries: Vec<_> = entries.flatten().collect();
            entries.sort_by_key(|e| e.file_name());
            for entry in entries {
                let path = entry.path();
                let Ok(meta) = entry.metadata() else { continue };
                if entry.file_name() == ".git" || meta.file_type().is_symlink() {
                    continue;
                }
                let relative = path
                    .strip_prefix(&root)
                    .unwrap_or(&path)
                    .to_string_lossy()
                    .into_owned();
                if self.refusal(&relative, meta.is_dir()).is_some() {
                    continue;
                }
                if meta.is_dir() {
                    stack.push(path);
                    continue;
                }
                if meta.len() > MAX_SEARCH_FILE_BYTES
                    || glob.as_ref().is_some_and(|g| !g.is_match(&relative))
                {
                    continue;
                }
                let Ok(text) = std::fs::read_to_string(&path) else {
                    continue;
                };
                for (number, line) in text.lines().enumerate() {
                    if regex.is_match(line) {
                        matches.push(format!("{relative}:{}: {}", number + 1, line.trim()));
                        if matches.len() >= MAX_MATCHES {
                            matches.push(format!("[stopped at {MAX_MATCHES} matches]"));
                            break 'walk;
                        }
                    }
                }
            }
        }
        if matches.is_empty() {
            return "no matches".to_string();
        }
        self.finish(matches.join("\n"))
    }

    fn find_symbol(&mut self, name: &str) -> String {
        let git = self.gates.repo.git();
        if !self.indexed {
            let indexed = git
                .find_commit(self.gates.revision)
                .and_then(|c| c.tree())
                .map_err(|e| e.to_string())
                .and_then(|tree| self.index.index_tree(git, &tree).map_err(|e| e.to_string()));
            if let Err(error) = indexed {
                return format!("error: indexing failed: {error}");
            }
            self.indexed = true;
        }
        let found: Vec<_> = self
            .index
            .find_symbols(name)
            .into_iter()
            .filter(|(path, _)| self.refusal(path, false).is_none())
            .collect();
        if found.is_empty() {
            return format!("no symbol named {name}");
        }
        let lines: Vec<String> = found
            .iter()
            .take(20)
            .map(|(path, s)| {
                format!(
                    "{path}:{}-{} {} {}",
                    s.start_line, s.end_line, s.kind, s.qualified_name
                )
            })
            .collect();
        self.finish(lines.join("\n"))
    }

    fn show_commit(&mut self, rev: &str) -> String {
        let repo = self.gates.repo;
        let oid = match repo.resolve(rev) {
            Ok(oid) => oid,
            Err(error) => return format!("error: {error}"),
        };
        let shown = (|| -> Result<String, repo::git2::Error> {
            let git = repo.git();
            let commit = git.find_commit(oid)?;
            let parent_tree = commit.parent(0).ok().map(|p| p.tree()).transpose()?;
            let diff = git.diff_tree_to_tree(parent_tree.as_ref(), Some(&commit.tree()?), None)?;
            let mut out = format!(
                "commit {oid}\nAuthor: {}\n\n{}\n\n",
                commit.author(),
                String::from_utf8_lossy(commit.message_bytes())
            );
            let mut body = Vec::new();
            diff.print(DiffFormat::Patch, |delta, _, line| {
                let denied = [delta.old_file().path(), delta.new_file().path()]
                    .into_iter()
                    .flatten()
                    .any(|path| self.refusal(&path.to_string_lossy(), false).is_some());
                if denied {
                    return true;
                }
                if matches!(line.origin(), '+' | '-' | ' ') {
                    body.push(line.origin() as u8);
                }
                body.extend_from_slice(line.content());
                body.len() < MAX_TOOL_BYTES
            })
            .ok();
            out.push_str(&String::from_utf8_lossy(&body));
            Ok(out)
        })();
        match shown {
            Ok(text) => self.finish(text),
            Err(error) => format!("error: {error}"),
        }
    }

    fn blame(&mut self, path: &str, start_line: u32, end_line: u32) -> String {
        let end_line = end_line.max(start_line).min(start_line + MAX_READ_LINES);
        if let Err(refusal) = self.resolve(path) {
            return refusal;
        }
        let git = self.gates.repo.git();
        let mut options = BlameOptions::new();
        options
            .newest_commit(self.gates.revision)
            .min_line(start_line as usize)
            .max_line(end_line as usize);
        let blame = match git.blame_file(Path::new(path), Some(&mut options)) {
            Ok(blame) => blame,
            Err(error) => return format!("error: {}", error.message()),
        };
        let mut out = String::new();
        for hunk in blame.iter() {
            let id: Oid = hunk.final_commit_id();
            let signature = hunk.final_signature();
            let _ = writeln!(
                out,
                "lines {}-{}: {} {}",
                hunk.final_start_line(),
                hunk.final_start_line() + hunk.lines_in_hunk() - 1,
                &id.to_string()[..10],
                signature
                    .as_ref()
                    .map(|s| String::from_utf8_lossy(s.name_bytes()).into_owned())
                    .unwrap_or_default()
            );
        }
        self.finish(out)
    }

    fn run_tests(&mut self) -> String {
        match self.gates.baseline() {
            Ok(run) => self.finish(format!(
                "test command at the deployed revision (unpatched): exit {:?}{}\n{}",
                run.exit,
                if run.timed_out { ", timed out" } else { "" },
                run.output_tail
            )),
            Err(error) => format!("error: {error}"),
        }
    }

    fn submit(&mut self, patch: Submission) -> SubmitVerdict {
        if matches!(self.mode, Mode::Reproduce { .. }) {
            return SubmitVerdict::Rejected {
                feedback: NO_FIX_IN_A_REPRODUCTION.to_string(),
            };
        }
        let diff = match self.diff_of(patch) {
            Ok(diff) => diff,
            Err(refusal) => {
                return SubmitVerdict::Rejected {
                    feedback: self.finish(refusal),
                };
            }
        };
        let attempt = match self.gates.attempt(Strategy::Llm, &diff) {
            Ok(attempt) => attempt,
            Err(error) => {
                return SubmitVerdict::Rejected {
                    feedback: format!("the patch could not be tested: {error}"),
                };
            }
        };
        let verdict = if attempt.proven || attempt.plausible {
            let files = attempt
                .patch
                .as_ref()
                .map(|p| p.files.join(", "))
                .unwrap_or_default();
            SubmitVerdict::Proven {
                summary: if attempt.proven {
                    format!(
                        "patch to {files} applies, the reproduction of the error passes and so does the test suite"
                    )
                } else {
                    format!(
                        "patch to {files} applies and the test suite passes (the error was not reproduced, so the fix is plausible, not proven)"
                    )
                },
            }
        } else if let Some(violation) = attempt
            .violation
            .as_ref()
            .filter(|v| v.is_previously_failed())
        {
            SubmitVerdict::Rejected {
                feedback: self.finish(format!(
                    "patch refused (previously_failed): this fix was proposed before and did not hold: {}. Find a different fix.",
                    violation.message
                )),
            }
        } else if let Some(violation) = &attempt.violation {
            SubmitVerdict::Rejected {
                feedback: format!("patch refused ({}): {}", violation.kind, violation.message),
            }
        } else if attempt.tests.as_ref().is_some_and(|t| t.passed()) {
            let tail = attempt
                .reproduction
                .as_ref()
                .map(|t| t.output_tail.clone())
                .unwrap_or_default();
            SubmitVerdict::Rejected {
                feedback: self.finish(format!(
                    "the patch applies and the suite passes, but the reproduction of the production error still fails:\n{tail}"
                )),
            }
        } else {
            let tail = attempt
                .tests
                .as_ref()
                .map(|t| t.output_tail.clone())
                .unwrap_or_default();
            SubmitVerdict::Rejected {
                feedback: self.finish(format!("the patch applies but the tests fail:\n{tail}")),
            }
        };
        if let Mode::Fix { attempts } = &mut self.mode {
            attempts.push(attempt);
        }
        verdict
    }

    fn submit_test(&mut self, patch: Submission) -> SubmitVerdict {
        if matches!(self.mode, Mode::Fix { .. }) {
            return SubmitVerdict::Rejected {
                feedback: NO_TEST_IN_A_FIX.to_string(),
            };
        }
        let diff = match self.diff_of(patch) {
            Ok(diff) => diff,
            Err(refusal) => {
                return SubmitVerdict::Rejected {
                    feedback: self.finish(refusal),
                };
            }
        };
        // A test is code the model wrote like any patch: the files that
        // decide what the runner executes stay out of its reach.
        let policy = self.gates.policy.for_generated_patches();
        let checked = match scope::check(&policy, self.scratch.path(), &diff) {
            Ok(checked) => checked,
            Err(violation) => {
                tracing::info!(
                    kind = violation.kind(),
                    "test rejected by the scope guard: {violation}"
                );
                return SubmitVerdict::Rejected {
                    feedback: self
                        .finish(format!("test refused ({}): {violation}", violation.kind())),
                };
            }
        };
        let (judge, accepted) = match &mut self.mode {
            Mode::Reproduce { judge, accepted } => (judge, accepted),
            Mode::Fix { .. } => {
                return SubmitVerdict::Rejected {
                    feedback: NO_TEST_IN_A_FIX.to_string(),
                };
            }
        };
        let verdict = judge(&checked, self.scratch.path());
        if matches!(verdict, SubmitVerdict::Proven { .. }) {
            *accepted = Some(checked.text);
        }
        match verdict {
            SubmitVerdict::Proven { summary } => SubmitVerdict::Proven {
                summary: self.finish(summary),
            },
            SubmitVerdict::Rejected { feedback } => SubmitVerdict::Rejected {
                feedback: self.finish(feedback),
            },
        }
    }
}

/// The crash frame's local variables, one `name = value` a line, each value
/// as the SDK's JSON and cut short; the caller redacts the whole.
fn locals_text(vars: &serde_json::Map<String, serde_json::Value>) -> String {
    let mut text = String::new();
    for (name, value) in vars.iter().take(MAX_LOCALS) {
        let value = value.to_string();
        let _ = match value.char_indices().nth(MAX_LOCAL_VALUE_CHARS) {
            None => writeln!(text, "{name} = {value}"),
            Some((cut, _)) => writeln!(text, "{name} = {} [cut]", &value[..cut]),
        };
    }
    if vars.len() > MAX_LOCALS {
        let _ = writeln!(text, "[{} more not shown]", vars.len() - MAX_LOCALS);
    }
    text
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use repo::git::Repo;
    use repo::git2::{Repository, Signature};
    use repo::sandbox::{Backend, SandboxConfig};
    use repo::scope::ScopePolicy;

    use super::*;
    use crate::redact::Redactor;

    /// A repository holding code, a secret, CI configuration and files
    /// that decide what the test runner executes.
    fn repository(dir: &Path) -> Oid {
        let git = Repository::init(dir).unwrap();
        let files = [
            ("app/stock.py", "def parse(text):\n    return int(text)\n"),
            (".env", "DB_PASSWORD=APP_SECRET_VALUE\n"),
            ("secrets/prod.txt", "APP_SECRET_VALUE\n"),
            (".github/workflows/ci.yml", "on: push # APP_SECRET_VALUE\n"),
            ("tests/conftest.py", "import os\n"),
            (
                "tests/test_stock.py",
                "def test_parse():\n    assert True\n",
            ),
        ];
        let mut index = git.index().unwrap();
        for (path, text) in files {
            let full = dir.join(path);
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::fs::write(&full, text).unwrap();
            index.add_path(Path::new(path)).unwrap();
        }
        let tree = git.find_tree(index.write_tree().unwrap()).unwrap();
        let me = Signature::now("Dev", "dev@example.test").unwrap();
        git.commit(Some("HEAD"), &me, &me, "start", &tree, &[])
            .unwrap()
    }

    fn diagnosis(revision: Oid) -> Diagnosis {
        serde_json::from_value(serde_json::json!({
            "title": "ValueError", "revision": revision.to_string(),
            "revision_source": "head",
            "window": {"commits": 0, "base": null, "truncated": false, "since": null, "days": null},
            "frames": [], "suspects": [], "locations": [], "confidence": 0.0,
            "culprit": null, "elapsed_ms": 0.0
        }))
        .unwrap()
    }

    /// Runs `check` with a fix toolbox over the repository, under the
    /// default scope policy.
    fn with_toolbox(check: impl FnOnce(&mut HealToolbox<'_, '_>)) {
        with_gates(|gates, index, diagnosis| {
            let mut toolbox = HealToolbox::new(gates, index, diagnosis).unwrap();
            check(&mut toolbox);
        });
    }

    /// Runs `check` with the gates over the repository, under the default
    /// scope policy.
    fn with_gates(check: impl FnOnce(&Gates<'_>, &mut CodeIndex, &Diagnosis)) {
        let dir = tempfile::tempdir().unwrap();
        let revision = repository(dir.path());
        let repo = Repo::open(dir.path()).unwrap();
        let sandbox = SandboxConfig {
            backend: Backend::Process,
            ..SandboxConfig::default()
        };
        let policy = ScopePolicy::default();
        let mut redactor = Redactor::default();
        redactor.add("APP_SECRET_VALUE");
        let gates = Gates {
            repo: &repo,
            revision,
            sandbox: &sandbox,
            test_command: "true",
            policy: &policy,
            redactor: &redactor,
            avoid: &[],
            reproduction: None,
        };
        let mut index = CodeIndex::new();
        check(&gates, &mut index, &diagnosis(revision));
    }

    /// Denied files and directories cannot be read, listed, blamed or
    /// searched; the code around them can.
    #[test]
    fn tools_refuse_what_the_scope_policy_denies() {
        with_toolbox(|tools| {
            for path in [
                ".env",
                "./.env",
                "secrets/prod.txt",
                ".github/workflows/ci.yml",
            ] {
                let read = tools.read_file(path, None, None);
                assert!(
                    read.contains("denied by the scope policy"),
                    "{path}: {read}"
                );
                assert!(!read.contains("APP_SECRET_VALUE"), "{read}");
            }
            for dir in ["secrets", ".github", ".github/workflows"] {
                let listed = tools.list_dir(dir);
                assert!(
                    listed.contains("denied by the scope policy"),
                    "{dir}: {listed}"
                );
            }
            let blamed = tools.blame(".env", 1, 1);
            assert!(blamed.contains("denied by the scope policy"), "{blamed}");

            let root = tools.list_dir(".");
            assert_eq!(
                root.lines().collect::<Vec<_>>(),
                ["app/", "tests/"],
                "{root}"
            );
            assert_eq!(tools.search_code("APP_SECRET_VALUE", None), "no matches");
            let found = tools.search_code("def ", None);
            assert!(found.contains("app/stock.py:1:"), "{found}");
            let read = tools.read_file("app/stock.py", None, None);
            assert!(read.contains("return int(text)"), "{read}");
            // What only a model may not change stays readable: the model
            // needs the test setup to understand a failure.
            let read = tools.read_file("tests/conftest.py", None, None);
            assert!(read.contains("import os"), "{read}");
        });
    }

    /// A symlink does not lead around a denial.
    #[test]
    fn a_symlink_to_a_denied_file_is_refused() {
        with_toolbox(|tools| {
            std::os::unix::fs::symlink(
                tools.scratch.path().join(".env"),
                tools.scratch.path().join("app/config.txt"),
            )
            .unwrap();
            let read = tools.read_file("app/config.txt", None, None);
            assert!(read.contains("denied by the scope policy"), "{read}");
        });
    }

    /// The model's patch to a file that decides what the test runner runs
    /// is refused by the scope guard, never tested.
    #[test]
    fn a_model_patch_to_a_ci_file_is_refused() {
        with_toolbox(|tools| {
            let verdict = tools.submit(Submission::UnifiedDiff(
                "--- a/tests/conftest.py\n+++ b/tests/conftest.py\n@@ -1 +1 @@\n-import os\n+import os, sys\n"
                    .to_string(),
            ));
            let SubmitVerdict::Rejected { feedback } = verdict else {
                panic!("accepted: {verdict:?}");
            };
            assert!(
                feedback.contains("denied") && feedback.contains("conftest.py"),
                "{feedback}"
            );
            let Mode::Fix { attempts } = &tools.mode else {
                panic!("a fix toolbox");
            };
            assert_eq!(attempts.len(), 1);
            assert!(attempts[0].tests.is_none(), "a refused patch is not tested");
        });
    }

    /// A fix toolbox does not take a test, and a reproduction toolbox does
    /// not take a fix: each says which submission its attempt expects.
    #[test]
    fn each_mode_refuses_the_other_submission() {
        let test = Submission::Edits(vec![crate::llm::EditRequest {
            path: "tests/test_repro.py".to_string(),
            search: String::new(),
            replace: "def test_x():\n    assert False\n".to_string(),
        }]);
        with_toolbox(|tools| {
            let verdict = tools.submit_test(test.clone());
            let SubmitVerdict::Rejected { feedback } = verdict else {
                panic!("accepted: {verdict:?}");
            };
            assert!(
                feedback.starts_with("submit_test is not available"),
                "{feedback}"
            );
        });
        with_gates(|gates, index, diagnosis| {
            let mut judge = |_: &CheckedPatch, _: &Path| -> SubmitVerdict {
                panic!("the judge is not asked about a fix")
            };
            let mut tools =
                HealToolbox::for_reproduction(gates, index, diagnosis, &mut judge).unwrap();
            let verdict = tools.submit(test.clone());
            let SubmitVerdict::Rejected { feedback } = verdict else {
                panic!("accepted: {verdict:?}");
            };
            assert!(
                feedback.starts_with("submit is not available"),
                "{feedback}"
            );
            assert_eq!(tools.into_accepted_test(), None);
        });
    }

    /// A reproduction toolbox runs the scope guard with the policy for
    /// generated patches first (a `conftest.py` never reaches the judge),
    /// then hands the judge the canonical patch and the tree it was checked
    /// against; what the judge accepts is remembered, its words redacted.
    #[test]
    fn a_reproduction_toolbox_guards_then_asks_the_judge() {
        with_gates(|gates, index, diagnosis| {
            let mut judged = Vec::new();
            let mut judge = |patch: &CheckedPatch, root: &Path| -> SubmitVerdict {
                assert!(root.join("app/stock.py").is_file());
                judged.push(patch.clone());
                if judged.len() == 1 {
                    SubmitVerdict::Rejected {
                        feedback: "it passes; DB_PASSWORD=APP_SECRET_VALUE".to_string(),
                    }
                } else {
                    SubmitVerdict::Proven {
                        summary: "fails with ValueError in parse".to_string(),
                    }
                }
            };
            let mut tools =
                HealToolbox::for_reproduction(gates, index, diagnosis, &mut judge).unwrap();

            let verdict = tools.submit_test(Submission::UnifiedDiff(
                "--- a/tests/conftest.py\n+++ b/tests/conftest.py\n@@ -1 +1,2 @@\n import os\n+import sys\n"
                    .to_string(),
            ));
            let SubmitVerdict::Rejected { feedback } = verdict else {
                panic!("accepted: {verdict:?}");
            };
            assert!(
                feedback.starts_with("test refused (denied)") && feedback.contains("conftest.py"),
                "{feedback}"
            );

            let test = |name: &str| {
                Submission::Edits(vec![crate::llm::EditRequest {
                    path: format!("tests/{name}"),
                    search: String::new(),
                    replace: "from app.stock import parse\n\n\ndef test_parse():\n    \
                              parse('x')\n"
                        .to_string(),
                }])
            };
            let verdict = tools.submit_test(test("test_first.py"));
            let SubmitVerdict::Rejected { feedback } = verdict else {
                panic!("accepted: {verdict:?}");
            };
            assert!(feedback.starts_with("it passes"), "{feedback}");
            assert!(!feedback.contains("APP_SECRET_VALUE"), "{feedback}");
            let verdict = tools.submit_test(test("test_repro.py"));
            assert_eq!(
                verdict,
                SubmitVerdict::Proven {
                    summary: "fails with ValueError in parse".to_string()
                }
            );
            let accepted = tools.into_accepted_test().unwrap();
            assert!(
                accepted.starts_with("diff --git a/tests/test_repro.py b/tests/test_repro.py\n"),
                "{accepted}"
            );
            assert_eq!(judged.len(), 2);
            assert_eq!(judged[1].text, accepted);
        });
    }
}

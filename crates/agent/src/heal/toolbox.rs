//! The LLM rung's tools, over a read-only checkout of the deployed revision.
//!
//! The model reads code through small windows, bounded searches and symbol
//! lookups; its only way to change anything is `submit`, which goes through
//! the same gates as every other candidate (scope guard, clean apply in a
//! fresh worktree, tests in the sandbox). Everything returned to the model
//! is redacted.

use std::fmt::Write as _;
use std::path::{Component, Path, PathBuf};

use domain::event::Event;
use repo::git2::{BlameOptions, DiffFormat, Oid};
use repo::index::CodeIndex;
use repo::scope::{self, Edit};
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

pub(crate) struct HealToolbox<'g, 'a> {
    gates: &'g Gates<'a>,
    scratch: Worktree,
    index: &'g mut CodeIndex,
    indexed: bool,
    attempts: Vec<Attempt>,
    frames: Vec<(String, u32)>,
}

impl<'g, 'a> HealToolbox<'g, 'a> {
    pub(crate) fn new(
        gates: &'g Gates<'a>,
        index: &'g mut CodeIndex,
        diagnosis: &Diagnosis,
    ) -> Result<HealToolbox<'g, 'a>, HealError> {
        let frames = diagnosis
            .frames
            .iter()
            .filter_map(|f| Some((f.path.clone()?, f.line?)))
            .take(6)
            .collect();
        Ok(HealToolbox {
            scratch: gates.worktree()?,
            gates,
            index,
            indexed: false,
            attempts: Vec::new(),
            frames,
        })
    }

    /// The attempts the model's submissions made.
    pub(crate) fn into_attempts(self) -> Vec<Attempt> {
        self.attempts
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
        }
    }

    /// `path` inside the scratch checkout, or why not.
    fn resolve(&self, path: &str) -> Result<PathBuf, String> {
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
                if meta.is_dir() {
                    stack.push(path);
                    continue;
                }
                let relative = path
                    .strip_prefix(&root)
                    .unwrap_or(&path)
                    .to_string_lossy()
                    .into_owned();
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
        let found = self.index.find_symbols(name);
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
            diff.print(DiffFormat::Patch, |_, _, line| {
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
        let diff = match patch {
            Submission::UnifiedDiff(diff) => diff,
            Submission::Edits(edits) => {
                let edits: Vec<Edit> = edits
                    .into_iter()
                    .map(|e| Edit {
                        path: e.path,
                        search: e.search,
                        replace: e.replace,
                    })
                    .collect();
                match scope::diff_from_edits(self.scratch.path(), &edits) {
                    Ok(diff) => diff,
                    Err(violation) => {
                        return SubmitVerdict::Rejected {
                            feedback: self.finish(format!("edits refused: {violation}")),
                        };
                    }
                }
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
        let verdict = if attempt.proven {
            let files = attempt
                .patch
                .as_ref()
                .map(|p| p.files.join(", "))
                .unwrap_or_default();
            SubmitVerdict::Proven {
                summary: format!("patch to {files} applies and the test suite passes"),
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
        self.attempts.push(attempt);
        verdict
    }
}

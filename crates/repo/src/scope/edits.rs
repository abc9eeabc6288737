//! Search-and-replace edits → a unified diff.
//!
//! Models edit more reliably with search-and-replace blocks than with
//! unified diffs, so the agent accepts both and turns edits into a diff here;
//! the diff then goes through [`check`](super::check) like any other patch.
//! Paths are validated and walked for symlinks *before* any file is read:
//! an edit naming `../../etc/passwd` must not pull that file's content into a
//! diff that ends up in a report or a prompt.

use std::fs;
use std::io::ErrorKind;
use std::path::Path;

use git2::{DiffOptions, Patch};
use serde::{Deserialize, Serialize};

use super::ScopeViolation;
use super::render::quote;
use super::resolve::validate_repo_path;
use super::tree::no_symlink_on_the_way;

/// One search-and-replace edit from a model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Edit {
    /// Repository-relative path, `/`-separated, no `a/` prefix.
    pub path: String,
    /// Text that must occur exactly once in the current file; empty to create
    /// a file that does not exist yet.
    pub search: String,
    /// Text that replaces it (the whole content of a created file).
    pub replace: String,
}

/// Turns edits into a git-style unified diff without changing anything.
///
/// Edits to the same path apply in order, each to the result of the one
/// before. The search text must occur exactly once in the current content
/// (overlapping occurrences count); an empty search creates a missing file.
/// Files the edits leave unchanged get no section.
pub fn diff_from_edits(worktree: &Path, edits: &[Edit]) -> Result<String, ScopeViolation> {
    let mut paths: Vec<&str> = Vec::new();
    for edit in edits {
        validate_repo_path(&edit.path)?;
        no_symlink_on_the_way(worktree, &edit.path)?;
        if !paths.contains(&edit.path.as_str()) {
            paths.push(&edit.path);
        }
    }
    let mut diff = String::new();
    for path in paths {
        let original = read_text(worktree, path)?;
        let mut content = original.clone();
        for edit in edits.iter().filter(|edit| edit.path == path) {
            content = Some(apply_edit(content, edit)?);
        }
        let content = content.unwrap_or_default();
        if content.contains('\0') {
            return Err(ScopeViolation::Binary {
                path: path.to_string(),
            });
        }
        match original {
            None => diff.push_str(&render_creation(path, &content)),
            Some(original) if original == content => {}
            Some(original) => diff.push_str(&render_modification(path, &original, &content)?),
        }
    }
    if diff.is_empty() {
        return Err(ScopeViolation::malformed("the edits change nothing"));
    }
    Ok(diff)
}

/// The file's text, `None` when it does not exist. Files that are not UTF-8
/// or contain a NUL byte are binary and never edited.
fn read_text(worktree: &Path, path: &str) -> Result<Option<String>, ScopeViolation> {
    let full_path = worktree.join(path);
    match fs::symlink_metadata(&full_path) {
        Ok(meta) if meta.is_file() => {}
        Ok(_) => {
            return Err(ScopeViolation::NoSuchFile {
                path: path.to_string(),
            });
        }
        Err(error) if matches!(error.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => {
            return Ok(None);
        }
        Err(error) => {
            return Err(ScopeViolation::does_not_apply(format!(
                "cannot read {path:?}: {}",
                error.kind()
            )));
        }
    }
    let bytes = fs::read(&full_path).map_err(|error| {
        ScopeViolation::does_not_apply(format!("cannot read {path:?}: {}", error.kind()))
    })?;
    match String::from_utf8(bytes) {
        Ok(text) if !text.contains('\0') => Ok(Some(text)),
        _ => Err(ScopeViolation::Binary {
            path: path.to_string(),
        }),
    }
}

fn apply_edit(content: Option<String>, edit: &Edit) -> Result<String, ScopeViolation> {
    let path = edit.path.clone();
    match (content, edit.search.is_empty()) {
        (None, true) => Ok(edit.replace.clone()),
        (None, false) => Err(ScopeViolation::NoSuchFile { path }),
        (Some(_), true) => Err(ScopeViolation::FileExists { path }),
        (Some(content), false) => match count_occurrences(&content, &edit.search) {
            1 => Ok(content.replacen(&edit.search, &edit.replace, 1)),
            matches => Err(ScopeViolation::SearchMismatch { path, matches }),
        },
    }
}

/// Counts occurrences including overlapping ones: `aa` occurs twice in
/// `aaa`, and an edit there is ambiguous.
fn count_occurrences(haystack: &str, needle: &str) -> usize {
    let mut count = 0;
    let mut start = 0;
    while let Some(offset) = haystack[start..].find(needle) {
        count += 1;
        let found = start + offset;
        let first_char_len = haystack[found..].chars().next().map_or(1, char::len_utf8);
        start = found + first_char_len;
    }
    count
}

fn header(path: &str) -> String {
    let (old, new) = (quote(&format!("a/{path}")), quote(&format!("b/{path}")));
    format!("diff --git {old} {new}\n")
}

fn render_creation(path: &str, content: &str) -> String {
    let new = quote(&format!("b/{path}"));
    let mut out = format!(
        "{}new file mode 100644\n--- /dev/null\n+++ {new}\n",
        header(path)
    );
    let lines: Vec<&str> = content.split_inclusive('\n').collect();
    if lines.is_empty() {
        return out;
    }
    out.push_str(&format!("@@ -0,0 +1,{} @@\n", lines.len()));
    for line in lines {
        out.push('+');
        out.push_str(line);
        if !line.ends_with('\n') {
            out.push_str("\n\\ No newline at end of file\n");
        }
    }
    out
}

/// Hunks from libgit2's own diff of the two texts, under a header built
/// here (libgit2's would carry a made-up `index` line).
fn render_modification(
    path: &str,
    original: &str,
    content: &str,
) -> Result<String, ScopeViolation> {
    let failed = |error: git2::Error| {
        ScopeViolation::malformed(format!("cannot diff {path:?}: {}", error.message()))
    };
    let mut options = DiffOptions::new();
    options.context_lines(3);
    let mut patch = Patch::from_buffers(
        original.as_bytes(),
        Some(Path::new(path)),
        content.as_bytes(),
        Some(Path::new(path)),
        Some(&mut options),
    )
    .map_err(failed)?;
    let buf = patch.to_buf().map_err(failed)?;
    let text = buf.as_str().unwrap_or_default();
    let Some(hunks_at) = text.find("\n@@ ").map(|idx| idx + 1) else {
        return Err(ScopeViolation::Binary {
            path: path.to_string(),
        });
    };
    let (old, new) = (quote(&format!("a/{path}")), quote(&format!("b/{path}")));
    Ok(format!(
        "{}--- {old}\n+++ {new}\n{}",
        header(path),
        &text[hunks_at..]
    ))
}

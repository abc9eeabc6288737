//! One file's change in one commit: its hunks, and the line map between the
//! old and the new version that bounded blame walks through.

use std::path::Path;

use git2::{Delta, DiffOptions, Oid, Patch};
use serde::Serialize;

use super::{Repo, RepoError};

/// How a file changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeStatus {
    /// New file.
    Added,
    /// File removed.
    Deleted,
    /// Content changed.
    Modified,
    /// Moved, possibly with changes.
    Renamed,
    /// Anything else git reports (type change, copy).
    Other,
}

/// A file touched by a commit, against its first parent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileChange {
    /// Path before the change (None when added).
    pub old_path: Option<String>,
    /// Path after the change (None when deleted).
    pub new_path: Option<String>,
    /// What happened to it.
    pub status: ChangeStatus,
    /// Blob before (zero when added).
    pub old_blob: Oid,
    /// Blob after (zero when deleted).
    pub new_blob: Oid,
}

impl FileChange {
    pub(crate) fn from_delta(delta: &git2::DiffDelta<'_>) -> FileChange {
        let status = match delta.status() {
            Delta::Added => ChangeStatus::Added,
            Delta::Deleted => ChangeStatus::Deleted,
            Delta::Modified => ChangeStatus::Modified,
            Delta::Renamed => ChangeStatus::Renamed,
            _ => ChangeStatus::Other,
        };
        let path =
            |file: git2::DiffFile<'_>| file.path().map(|p| p.to_string_lossy().replace('\\', "/"));
        let old_path = (status != ChangeStatus::Added)
            .then(|| path(delta.old_file()))
            .flatten();
        let new_path = (status != ChangeStatus::Deleted)
            .then(|| path(delta.new_file()))
            .flatten();
        FileChange {
            old_path,
            new_path,
            status,
            old_blob: delta.old_file().id(),
            new_blob: delta.new_file().id(),
        }
    }

    /// The path to show for this change: the new one, else the old one.
    pub fn path(&self) -> &str {
        self.new_path
            .as_deref()
            .or(self.old_path.as_deref())
            .unwrap_or_default()
    }
}

/// A contiguous change, in git's unified-diff coordinates (1-based). When
/// `new_lines` is 0 the hunk is a pure deletion after line `new_start`; when
/// `old_lines` is 0, a pure insertion after old line `old_start`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hunk {
    /// First old line (or the line before a pure insertion).
    pub old_start: u32,
    /// Number of old lines replaced.
    pub old_lines: u32,
    /// First new line (or the line before a pure deletion).
    pub new_start: u32,
    /// Number of new lines.
    pub new_lines: u32,
    /// The removed lines' text, without the line ending.
    pub removed: Vec<String>,
    /// The added lines' text, without the line ending.
    pub added: Vec<String>,
}

impl Hunk {
    /// Whether this hunk changes anything inside the new-side range
    /// `start..=end`: an added line in it, or a deletion between its lines.
    pub fn touches_new_range(&self, start: u32, end: u32) -> bool {
        if self.new_lines == 0 {
            start <= self.new_start && self.new_start <= end
        } else {
            self.new_start <= end && start < self.new_start + self.new_lines
        }
    }

    /// The new-side line that ends this hunk's region, exclusive; a pure
    /// deletion occupies the gap just after `new_start`.
    fn new_end(&self) -> u32 {
        if self.new_lines == 0 {
            self.new_start + 1
        } else {
            self.new_start + self.new_lines
        }
    }
}

/// Maps lines of a file's new version back onto its old version.
pub struct LineMap<'h> {
    hunks: &'h [Hunk],
}

/// Where a new-side line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mapped {
    /// The line is unchanged; this is its old line number.
    Old(u32),
    /// The line was added by hunk `hunk`; `near` is the old line it replaced
    /// or followed, for tracking ranges further back.
    Added {
        /// Index of the hunk that added it.
        hunk: usize,
        /// Nearest old line.
        near: u32,
    },
}

impl<'h> LineMap<'h> {
    /// A map over hunks sorted by position, as git produces them.
    pub fn new(hunks: &'h [Hunk]) -> LineMap<'h> {
        LineMap { hunks }
    }

    /// Maps new line `line` to the old version.
    pub fn to_old(&self, line: u32) -> Mapped {
        let mut offset: i64 = 0;
        for (idx, hunk) in self.hunks.iter().enumerate() {
            if hunk.new_lines > 0
                && hunk.new_start <= line
                && line < hunk.new_start + hunk.new_lines
            {
                return Mapped::Added {
                    hunk: idx,
                    near: hunk.old_start.max(1),
                };
            }
            if hunk.new_end() <= line {
                offset += i64::from(hunk.old_lines) - i64::from(hunk.new_lines);
            } else {
                break;
            }
        }
        Mapped::Old((i64::from(line) + offset).max(1) as u32)
    }

    /// Maps an inclusive new-side range to the old side, widening it over
    /// lines this change added or removed inside it.
    pub fn range_to_old(&self, start: u32, end: u32) -> (u32, u32) {
        let old_start = match self.to_old(start) {
            Mapped::Old(line) => line,
            // A pure insertion follows old line `old_start`, which lies
            // before the range: the range starts at the old line after it.
            Mapped::Added { hunk, .. } if self.hunks[hunk].old_lines == 0 => {
                self.hunks[hunk].old_start + 1
            }
            Mapped::Added { near, .. } => near,
        };
        let old_end = match self.to_old(end) {
            Mapped::Old(line) => line,
            Mapped::Added { hunk, .. } => {
                let hunk = &self.hunks[hunk];
                (hunk.old_start + hunk.old_lines)
                    .saturating_sub(1)
                    .max(hunk.old_start)
            }
        };
        (old_start.max(1), old_end.max(old_start.max(1)))
    }
}

/// Computes the hunks of one file change with zero context lines.
pub(crate) fn file_hunks(repo: &Repo, change: &FileChange) -> Result<Vec<Hunk>, RepoError> {
    let git = repo.git();
    let blob = |id: Oid| -> Result<Option<git2::Blob<'_>>, RepoError> {
        if id.is_zero() {
            Ok(None)
        } else {
            Ok(Some(git.find_blob(id)?))
        }
    };
    let old = blob(change.old_blob)?;
    let new = blob(change.new_blob)?;
    if old.as_ref().is_some_and(|b| b.is_binary()) || new.as_ref().is_some_and(|b| b.is_binary()) {
        return Ok(Vec::new());
    }
    let mut options = DiffOptions::new();
    options.context_lines(0);
    let patch = Patch::from_buffers(
        old.as_ref().map_or(&[][..], |b| b.content()),
        change.old_path.as_deref().map(Path::new),
        new.as_ref().map_or(&[][..], |b| b.content()),
        change.new_path.as_deref().map(Path::new),
        Some(&mut options),
    )?;
    patch_hunks(&patch)
}

/// The hunks of a computed patch, with their added and removed lines.
pub(crate) fn patch_hunks(patch: &Patch<'_>) -> Result<Vec<Hunk>, RepoError> {
    let mut hunks = Vec::with_capacity(patch.num_hunks());
    for hunk_idx in 0..patch.num_hunks() {
        let (header, n_lines) = patch.hunk(hunk_idx)?;
        let mut hunk = Hunk {
            old_start: header.old_start(),
            old_lines: header.old_lines(),
            new_start: header.new_start(),
            new_lines: header.new_lines(),
            removed: Vec::new(),
            added: Vec::new(),
        };
        for line_idx in 0..n_lines {
            let line = patch.line_in_hunk(hunk_idx, line_idx)?;
            let text = String::from_utf8_lossy(line.content())
                .trim_end_matches(['\n', '\r'])
                .to_string();
            match line.origin() {
                '+' => hunk.added.push(text),
                '-' => hunk.removed.push(text),
                _ => {}
            }
        }
        hunks.push(hunk);
    }
    Ok(hunks)
}

//! Bounded blame: which commit of the window last changed a line or a range
//! of the deployed file, walking back through the window only.
//!
//! `git blame` walks the whole history until every line is explained; a
//! diagnosis only needs to know whether a *recent* commit is responsible, so
//! the walk stops at the window's oldest commit and everything older is
//! reported as [`LineOrigin::BeforeWindow`].

use git2::Oid;
use serde::Serialize;

use super::diff::{ChangeStatus, LineMap, Mapped};
use super::window::Window;
use super::{RepoError, serialize_oid};

/// Who last changed a line, within the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LineOrigin {
    /// A window commit added or rewrote the line.
    Window {
        /// Index of the commit in `Window::commits`.
        commit_idx: usize,
        /// The commit.
        #[serde(serialize_with = "serialize_oid")]
        commit: Oid,
        /// The line's number in that commit's version of the file.
        line: u32,
        /// Whether that commit created the file (under this or an earlier
        /// name): it wrote every line, this one among them.
        created_file: bool,
    },
    /// The line is older than the window.
    BeforeWindow {
        /// The line's number at the window's base.
        line: u32,
    },
}

/// A window commit that changed lines inside a tracked range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeTouch {
    /// Index of the commit in `Window::commits`.
    pub commit_idx: usize,
    /// Lines the commit added inside the range.
    pub added: Vec<String>,
    /// Lines the commit removed inside the range.
    pub removed: Vec<String>,
    /// True when the commit created the file.
    pub created_file: bool,
}

impl Window<'_> {
    /// Blames `lines` (1-based, at the window's tip) of `path`.
    pub fn blame_lines(&self, path: &str, lines: &[u32]) -> Result<Vec<LineOrigin>, RepoError> {
        let mut current: Vec<Option<u32>> = lines.iter().map(|&l| Some(l)).collect();
        let mut origins: Vec<Option<LineOrigin>> = vec![None; lines.len()];
        let mut path_at = path.to_string();
        for commit_idx in 0..self.commits.len() {
            if current.iter().all(Option::is_none) {
                break;
            }
            let Some(change_idx) = self.change_of(commit_idx, &path_at) else {
                continue;
            };
            let commit = self.commits[commit_idx].info.id;
            let change = &self.commits[commit_idx].changes[change_idx];
            if change.status == ChangeStatus::Added {
                for (slot, origin) in current.iter_mut().zip(origins.iter_mut()) {
                    if let Some(line) = slot.take() {
                        *origin = Some(LineOrigin::Window {
                            commit_idx,
                            commit,
                            line,
                            created_file: true,
                        });
                    }
                }
                break;
            }
            let hunks = self.hunks(commit_idx, change_idx)?;
            let map = LineMap::new(&hunks);
            for (slot, origin) in current.iter_mut().zip(origins.iter_mut()) {
                let Some(line) = *slot else { continue };
                match map.to_old(line) {
                    Mapped::Old(old) => *slot = Some(old),
                    Mapped::Added { .. } => {
                        *origin = Some(LineOrigin::Window {
                            commit_idx,
                            commit,
                            line,
                            created_file: false,
                        });
                        *slot = None;
                    }
                }
            }
            if let Some(old_path) = &change.old_path {
                path_at.clone_from(old_path);
            }
        }
        Ok(origins
            .into_iter()
            .zip(current)
            .map(|(origin, line)| {
                origin.unwrap_or(LineOrigin::BeforeWindow {
                    line: line.unwrap_or_default(),
                })
            })
            .collect())
    }

    /// Every window commit that changed something inside `start..=end` of
    /// `path` at the tip, newest first, following the range back in time.
    pub fn range_touches(
        &self,
        path: &str,
        start: u32,
        end: u32,
    ) -> Result<Vec<RangeTouch>, RepoError> {
        let mut touches = Vec::new();
        let (mut start, mut end) = (start, end.max(start));
        let mut path_at = path.to_string();
        for commit_idx in 0..self.commits.len() {
            let Some(change_idx) = self.change_of(commit_idx, &path_at) else {
                continue;
            };
            let change = &self.commits[commit_idx].changes[change_idx];
            if change.status == ChangeStatus::Added {
                touches.push(RangeTouch {
                    commit_idx,
                    added: Vec::new(),
                    removed: Vec::new(),
                    created_file: true,
                });
                break;
            }
            let hunks = self.hunks(commit_idx, change_idx)?;
            let mut touch = RangeTouch {
                commit_idx,
                added: Vec::new(),
                removed: Vec::new(),
                created_file: false,
            };
            for hunk in hunks.iter().filter(|h| h.touches_new_range(start, end)) {
                // Keep only the added lines that fall inside the range.
                for (offset, text) in hunk.added.iter().enumerate() {
                    let line = hunk.new_start + offset as u32;
                    if (start..=end).contains(&line) {
                        touch.added.push(text.clone());
                    }
                }
                touch.removed.extend(hunk.removed.iter().cloned());
            }
            if !touch.added.is_empty() || !touch.removed.is_empty() {
                touches.push(touch);
            }
            let map = LineMap::new(&hunks);
            // This commit inserted the whole range: it did not exist before,
            // so older commits cannot have touched it.
            if let (Mapped::Added { hunk: first, .. }, Mapped::Added { hunk: last, .. }) =
                (map.to_old(start), map.to_old(end))
                && first == last
                && hunks[first].old_lines == 0
            {
                break;
            }
            (start, end) = map.range_to_old(start, end);
            if let Some(old_path) = &change.old_path {
                path_at.clone_from(old_path);
            }
        }
        Ok(touches)
    }
}

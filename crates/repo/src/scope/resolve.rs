//! File sections → file changes: what each section of a patch means, judged
//! from the text alone, without touching the disk.
//!
//! Every name a section carries is checked (both `diff --git` names, `---`,
//! `+++`, `rename from` and `rename to`), not only the one git ends up using,
//! and they must all agree: a name the guard skipped is a name an attacker
//! can hide a path in.

use std::collections::HashSet;

use super::ScopeViolation;
use super::parse::{GitNames, Hunk, Name, Section};
use super::tree::Mode;

/// One file's change, with validated repository-relative paths.
#[derive(Debug)]
pub(super) struct FileChange {
    /// 1-based line of the section in the patch, for messages.
    pub(super) line_no: usize,
    /// `None` when the patch creates the file.
    pub(super) old_path: Option<String>,
    /// `None` when the patch deletes the file.
    pub(super) new_path: Option<String>,
    /// For renames: git needs a similarity line before `rename from`.
    pub(super) similarity: u8,
    pub(super) modes: PatchModes,
    pub(super) hunks: Vec<Hunk>,
    /// The old file's mode in the work tree; filled in by
    /// [`super::tree::read_base_modes`], `None` when it does not exist.
    pub(super) base_mode: Option<Mode>,
}

/// Every mode a section states, as written (six octal digits).
#[derive(Debug, Default)]
pub(super) struct PatchModes {
    pub(super) old_mode: Option<String>,
    pub(super) new_mode: Option<String>,
    pub(super) new_file_mode: Option<String>,
    pub(super) deleted_file_mode: Option<String>,
    pub(super) index_mode: Option<String>,
}

impl PatchModes {
    fn all(&self) -> impl Iterator<Item = &str> {
        [
            &self.old_mode,
            &self.new_mode,
            &self.new_file_mode,
            &self.deleted_file_mode,
            &self.index_mode,
        ]
        .into_iter()
        .filter_map(|mode| mode.as_deref())
    }
}

impl FileChange {
    pub(super) fn is_add(&self) -> bool {
        self.old_path.is_none()
    }

    pub(super) fn is_delete(&self) -> bool {
        self.new_path.is_none()
    }

    pub(super) fn is_rename(&self) -> bool {
        matches!((&self.old_path, &self.new_path), (Some(old), Some(new)) if old != new)
    }

    /// The path to name in messages: the new one, or the deleted one.
    pub(super) fn path(&self) -> &str {
        self.new_path
            .as_deref()
            .or(self.old_path.as_deref())
            .unwrap_or_default()
    }

    /// Every distinct path the change touches, old first.
    pub(super) fn paths(&self) -> impl Iterator<Item = &str> {
        let old = self.old_path.as_deref();
        let new = self.new_path.as_deref().filter(|&new| Some(new) != old);
        old.into_iter().chain(new)
    }

    pub(super) fn added(&self) -> usize {
        self.hunks.iter().map(Hunk::added).sum()
    }

    pub(super) fn removed(&self) -> usize {
        self.hunks.iter().map(Hunk::removed).sum()
    }

    /// Whether any line of the section asks for an executable file.
    pub(super) fn requests_executable(&self) -> bool {
        [
            &self.modes.new_mode,
            &self.modes.new_file_mode,
            &self.modes.index_mode,
        ]
        .into_iter()
        .any(|mode| mode.as_deref() == Some(Mode::Executable.as_str()))
    }

    /// The mode the file ends up with: an explicit `new mode`, else the
    /// mode it has now.
    pub(super) fn target_mode(&self) -> Mode {
        match self.modes.new_mode.as_deref() {
            Some(mode) if mode == Mode::Executable.as_str() => Mode::Executable,
            Some(_) => Mode::Regular,
            None => self.base_mode.unwrap_or(Mode::Regular),
        }
    }
}

/// Resolves every section; binary sections are refused first, then every
/// name is checked for escapes before any section is interpreted.
pub(super) fn resolve(sections: &[Section]) -> Result<Vec<FileChange>, ScopeViolation> {
    if let Some(section) = sections.iter().find(|section| section.binary) {
        return Err(ScopeViolation::Binary {
            path: binary_path(section),
        });
    }
    for section in sections {
        for (raw, prefixed) in names(section) {
            repo_path(section.line_no, raw, prefixed)?;
        }
    }
    let files = sections
        .iter()
        .map(resolve_section)
        .collect::<Result<Vec<_>, _>>()?;
    let mut seen = HashSet::new();
    for file in &files {
        for path in file.paths() {
            if !seen.insert(path) {
                return Err(malformed(
                    file.line_no,
                    format!("{path:?} appears in more than one file section"),
                ));
            }
        }
    }
    Ok(files)
}

/// Refuses symlinks (120000), submodules (160000) and any other mode that is
/// not a plain or executable file, wherever in a section it appears.
pub(super) fn check_mode_values(files: &[FileChange]) -> Result<(), ScopeViolation> {
    for file in files {
        if let Some(mode) = file
            .modes
            .all()
            .find(|&mode| mode != Mode::Regular.as_str() && mode != Mode::Executable.as_str())
        {
            return Err(ScopeViolation::ModeChange {
                path: file.path().to_string(),
                mode: mode.to_string(),
            });
        }
    }
    Ok(())
}

/// Refuses a change that changes nothing once the work tree is known: a mode
/// "change" to the mode the file already has, with no hunks (libgit2 also
/// refuses a modification without hunks).
pub(super) fn check_not_empty(files: &[FileChange]) -> Result<(), ScopeViolation> {
    let is_empty = |file: &&FileChange| {
        !(file.is_add() || file.is_delete() || file.is_rename())
            && file.hunks.is_empty()
            && Some(file.target_mode()) == file.base_mode
    };
    match files.iter().find(is_empty) {
        Some(file) => Err(malformed(
            file.line_no,
            format!(
                "{:?} has no changes, its mode is {} already",
                file.path(),
                file.target_mode().as_str()
            ),
        )),
        None => Ok(()),
    }
}

/// Checks a repository-relative path: no absolute path, no empty, `.` or
/// `..` component, no `.git` component in any letter case (git's own files,
/// nested repositories included), no NUL, backslash or control character.
/// Non-canonical spellings are refused rather than normalised so that what
/// the globs see is exactly what git writes.
pub(super) fn validate_repo_path(path: &str) -> Result<(), ScopeViolation> {
    if path.is_empty() {
        return Err(ScopeViolation::malformed("empty path"));
    }
    let bad_char = |c: char| c == '\\' || c.is_control();
    let bad_component = |component: &str| {
        matches!(component, "" | "." | "..") || component.eq_ignore_ascii_case(".git")
    };
    if path.starts_with('/') || path.contains(bad_char) || path.split('/').any(bad_component) {
        return Err(ScopeViolation::outside(path));
    }
    Ok(())
}

fn malformed(line_no: usize, what: impl std::fmt::Display) -> ScopeViolation {
    ScopeViolation::malformed(format!("line {line_no}: {what}"))
}

/// Every raw name in a section, and whether it carries an `a/`/`b/` prefix.
fn names(section: &Section) -> Vec<(&str, bool)> {
    let mut names = Vec::new();
    if let Some(GitNames::Split { old, new }) = &section.git_names {
        names.extend([(old.as_str(), true), (new.as_str(), true)]);
    }
    for name in [&section.minus, &section.plus].into_iter().flatten() {
        if let Name::Path(path) = name {
            names.push((path.as_str(), true));
        }
    }
    for name in [&section.rename_from, &section.rename_to]
        .into_iter()
        .flatten()
    {
        names.push((name.as_str(), false));
    }
    names
}

/// Strips the one-letter prefix and validates what is left. libgit2 strips
/// the first component whatever it is, which is why `/etc/passwd` must be
/// caught here, before git ever sees it.
fn repo_path(line_no: usize, raw: &str, prefixed: bool) -> Result<String, ScopeViolation> {
    let path = if prefixed {
        match raw.strip_prefix("a/").or_else(|| raw.strip_prefix("b/")) {
            Some(path) => path,
            None if raw.starts_with('/') => return Err(ScopeViolation::outside(raw)),
            None => {
                return Err(malformed(
                    line_no,
                    format!("path {raw:?} does not start with a/ or b/"),
                ));
            }
        }
    } else {
        raw
    };
    validate_repo_path(path)?;
    Ok(path.to_string())
}

/// The name to report a binary section under, best effort: binary sections
/// are refused before their names are interpreted.
fn binary_path(section: &Section) -> String {
    let raw = match (&section.plus, &section.minus, &section.git_names) {
        (Some(Name::Path(path)), _, _) | (_, Some(Name::Path(path)), _) => path.as_str(),
        (_, _, Some(GitNames::Split { new, .. })) => new.as_str(),
        _ => "",
    };
    raw.strip_prefix("b/")
        .or_else(|| raw.strip_prefix("a/"))
        .unwrap_or(raw)
        .to_string()
}

fn resolve_section(section: &Section) -> Result<FileChange, ScopeViolation> {
    let line_no = section.line_no;
    if section.copy {
        return Err(malformed(
            line_no,
            "copies are not supported, create the new file in full",
        ));
    }
    let adds = section.new_file_mode.is_some() || section.minus == Some(Name::DevNull);
    let deletes = section.deleted_file_mode.is_some() || section.plus == Some(Name::DevNull);
    let renames = section.rename_from.is_some() || section.rename_to.is_some();
    let mode_change = section.old_mode.is_some() || section.new_mode.is_some();
    let problem = if adds && deletes {
        Some("the section both creates and deletes the file")
    } else if section.new_file_mode.is_some() && matches!(section.minus, Some(Name::Path(_))) {
        Some("a new file's `---` line must be /dev/null")
    } else if section.deleted_file_mode.is_some() && matches!(section.plus, Some(Name::Path(_))) {
        Some("a deleted file's `+++` line must be /dev/null")
    } else if renames && (section.rename_from.is_none() || section.rename_to.is_none()) {
        Some("a rename needs both `rename from` and `rename to`")
    } else if renames && (adds || deletes) {
        Some("a rename cannot create or delete the file")
    } else if mode_change && (section.old_mode.is_none() || section.new_mode.is_none()) {
        Some("a mode change needs both `old mode` and `new mode`")
    } else if mode_change && (adds || deletes) {
        Some("a new or deleted file cannot change mode")
    } else {
        None
    };
    if let Some(problem) = problem {
        return Err(malformed(line_no, problem));
    }

    let mut old_names = Vec::new();
    let mut new_names = Vec::new();
    if let Some(GitNames::Split { old, new }) = &section.git_names {
        old_names.push(repo_path(line_no, old, true)?);
        new_names.push(repo_path(line_no, new, true)?);
    }
    if let Some(Name::Path(old)) = &section.minus {
        old_names.push(repo_path(line_no, old, true)?);
    }
    if let Some(Name::Path(new)) = &section.plus {
        new_names.push(repo_path(line_no, new, true)?);
    }
    let (old, new) = match (&section.rename_from, &section.rename_to) {
        (Some(from), Some(to)) => (
            repo_path(line_no, from, false)?,
            repo_path(line_no, to, false)?,
        ),
        _ => {
            // Not a rename: every name is the same file.
            let Some(name) = old_names.iter().chain(&new_names).next() else {
                return Err(malformed(
                    line_no,
                    "cannot tell the file names apart on the `diff --git` line",
                ));
            };
            (name.clone(), name.clone())
        }
    };
    for (names, resolved) in [(&old_names, &old), (&new_names, &new)] {
        if let Some(other) = names.iter().find(|&name| name != resolved) {
            return Err(malformed(
                line_no,
                format!("file names disagree: {other:?} and {resolved:?}"),
            ));
        }
    }
    if renames && old == new {
        return Err(malformed(line_no, format!("renames {old:?} to itself")));
    }

    let modes = PatchModes {
        old_mode: section.old_mode.clone(),
        new_mode: section.new_mode.clone(),
        new_file_mode: section.new_file_mode.clone(),
        deleted_file_mode: section.deleted_file_mode.clone(),
        index_mode: section.index_mode.clone(),
    };
    if let Some(mode) = modes
        .all()
        .find(|mode| mode.len() != 6 || !mode.bytes().all(|byte| (b'0'..=b'7').contains(&byte)))
    {
        return Err(malformed(
            line_no,
            format!("bad file mode {}", super::violation::snippet(mode)),
        ));
    }
    check_hunks(section, adds, deletes)?;
    if !(adds || deletes || renames || mode_change) && section.hunks.is_empty() {
        return Err(malformed(line_no, format!("{old:?} has no changes")));
    }
    Ok(FileChange {
        line_no,
        old_path: (!adds).then_some(old),
        new_path: (!deletes).then_some(new),
        similarity: section.similarity.unwrap_or(100),
        modes,
        hunks: section.hunks.clone(),
        base_mode: None,
    })
}

/// A new file's hunks only add (`-0,0`), a deleted file's only remove
/// (`+0,0`), and hunks come in file order without overlapping, so the line
/// counts describe the change git makes.
fn check_hunks(section: &Section, adds: bool, deletes: bool) -> Result<(), ScopeViolation> {
    for hunk in &section.hunks {
        if adds && (hunk.old_start, hunk.old_lines) != (0, 0) {
            return Err(malformed(
                hunk.line_no,
                "a new file's hunk must start at -0,0",
            ));
        }
        if deletes && (hunk.new_start, hunk.new_lines) != (0, 0) {
            return Err(malformed(
                hunk.line_no,
                "a deleted file's hunk must end at +0,0",
            ));
        }
    }
    for pair in section.hunks.windows(2) {
        let (previous, hunk) = (&pair[0], &pair[1]);
        if hunk.old_start < previous.old_start + previous.old_lines.max(1) {
            return Err(malformed(
                hunk.line_no,
                format!(
                    "hunk overlaps or comes before the hunk at line {}",
                    previous.line_no
                ),
            ));
        }
    }
    Ok(())
}

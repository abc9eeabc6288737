//! What the work tree says about a patch: symlinks on the way, current file
//! modes, and whether each file is in the state the patch claims.
//!
//! Paths are walked component by component with `symlink_metadata`, never
//! followed: any symlink on the way is refused, including one inside the
//! tree, because `docs/ci -> ../.github/workflows` would let a patch write a
//! denied file under an allowed name. The checks and the write that follows
//! are not atomic; the guard relies on the work tree being suture's own
//! scratch checkout that nothing else writes to meanwhile.

use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::ScopeViolation;
use super::resolve::FileChange;

/// The two file modes a patch may leave behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    Regular,
    Executable,
}

impl Mode {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Mode::Regular => "100644",
            Mode::Executable => "100755",
        }
    }
}

/// Refuses any path of any change that reaches through, or is, a symlink.
pub(super) fn check_symlinks(worktree: &Path, files: &[FileChange]) -> Result<(), ScopeViolation> {
    for file in files {
        for path in file.paths() {
            no_symlink_on_the_way(worktree, path)?;
        }
    }
    Ok(())
}

/// Walks `path` (already validated as relative and canonical) from the work
/// tree's root, refusing a symlink at any existing component.
pub(super) fn no_symlink_on_the_way(worktree: &Path, path: &str) -> Result<(), ScopeViolation> {
    let mut current = worktree.to_path_buf();
    for component in path.split('/') {
        current.push(component);
        match fs::symlink_metadata(&current) {
            Ok(meta) if meta.file_type().is_symlink() => return Err(ScopeViolation::outside(path)),
            Ok(meta) if meta.is_dir() => {}
            // A file, or nothing: nothing further down exists to be a symlink.
            Ok(_) => return Ok(()),
            Err(error)
                if matches!(error.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) =>
            {
                return Ok(());
            }
            Err(error) => {
                return Err(ScopeViolation::does_not_apply(format!(
                    "cannot inspect {path:?}: {}",
                    error.kind()
                )));
            }
        }
    }
    Ok(())
}

/// The mode of a regular file in the work tree; `None` when it does not
/// exist or is something else. Executable means the owner may execute it,
/// as git decides.
pub(super) fn file_mode(worktree: &Path, path: &str) -> Option<Mode> {
    let meta = fs::symlink_metadata(worktree.join(path)).ok()?;
    if !meta.is_file() {
        return None;
    }
    Some(match meta.permissions().mode() & 0o100 {
        0 => Mode::Regular,
        _ => Mode::Executable,
    })
}

pub(super) fn read_base_modes(worktree: &Path, files: &mut [FileChange]) {
    for file in files {
        file.base_mode = file
            .old_path
            .as_deref()
            .and_then(|path| file_mode(worktree, path));
    }
}

/// 100755 is allowed only for a file that is executable already: a patch
/// may keep a script runnable, never make something runnable.
pub(super) fn check_executables(files: &[FileChange]) -> Result<(), ScopeViolation> {
    match files
        .iter()
        .find(|file| file.requests_executable() && file.base_mode != Some(Mode::Executable))
    {
        Some(file) => Err(ScopeViolation::ModeChange {
            path: file.path().to_string(),
            mode: Mode::Executable.as_str().to_string(),
        }),
        None => Ok(()),
    }
}

/// The work tree matches what each change assumes: changed, renamed and
/// deleted files exist as regular files, created and rename-target paths do
/// not exist yet (libgit2 would overwrite them, hiding the real size of the
/// change), and a deletion removes exactly the file's content (libgit2
/// deletes a file whose first lines match).
pub(super) fn check_state(worktree: &Path, files: &[FileChange]) -> Result<(), ScopeViolation> {
    for file in files {
        if let Some(old) = &file.old_path
            && file.base_mode.is_none()
        {
            return Err(ScopeViolation::does_not_apply(format!(
                "{old:?} does not exist or is not a regular file"
            )));
        }
        if let Some(new) = &file.new_path
            && (file.is_add() || file.is_rename())
        {
            check_creatable(worktree, new)?;
        }
        if let Some(old) = &file.old_path
            && file.is_delete()
        {
            check_deletes_everything(worktree, old, file)?;
        }
    }
    Ok(())
}

fn check_creatable(worktree: &Path, path: &str) -> Result<(), ScopeViolation> {
    let mut current = worktree.to_path_buf();
    let components: Vec<&str> = path.split('/').collect();
    for (idx, component) in components.iter().enumerate() {
        current.push(component);
        let is_last = idx + 1 == components.len();
        match fs::symlink_metadata(&current) {
            Err(error) if error.kind() == ErrorKind::NotFound => return Ok(()),
            Ok(meta) if meta.is_dir() && !is_last => {}
            Ok(_) if is_last => {
                return Err(ScopeViolation::does_not_apply(format!(
                    "{path:?} already exists"
                )));
            }
            Ok(_) => {
                return Err(ScopeViolation::does_not_apply(format!(
                    "cannot create {path:?}: {:?} is not a directory",
                    components[..=idx].join("/")
                )));
            }
            Err(error) => {
                return Err(ScopeViolation::does_not_apply(format!(
                    "cannot inspect {path:?}: {}",
                    error.kind()
                )));
            }
        }
    }
    Ok(())
}

fn check_deletes_everything(
    worktree: &Path,
    path: &str,
    file: &FileChange,
) -> Result<(), ScopeViolation> {
    let content = fs::read(worktree.join(path)).map_err(|error| {
        ScopeViolation::does_not_apply(format!("cannot read {path:?}: {}", error.kind()))
    })?;
    let mut removed = String::new();
    for line in file.hunks.iter().flat_map(|hunk| &hunk.lines) {
        if let Some(text) = line.strip_prefix('-') {
            removed.push_str(text);
            removed.push('\n');
        } else if line.starts_with('\\') {
            removed.pop();
        }
    }
    if removed.as_bytes() == content {
        return Ok(());
    }
    let n_lines = content.split_inclusive(|&byte| byte == b'\n').count();
    let reason = match file.removed() {
        n_removed if n_removed != n_lines => {
            format!("deleting {path:?} removes {n_removed} of its {n_lines} lines")
        }
        _ => format!("deleting {path:?}: the removed lines differ from its content"),
    };
    Err(ScopeViolation::does_not_apply(reason))
}

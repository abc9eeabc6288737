//! Files only suture's own user may read: its data directory, the DSN key
//! it generates, the SQLite database, the reports `suture heal` writes.
//! They hold event text, diffs, keys and test output, which may carry what
//! the redactor did not recognise.
//!
//! New directories are made 0700 and new files 0600. A file written again
//! is narrowed to 0600 too; an existing directory is left as its owner set
//! it (it may be a mounted volume shared on purpose).

use std::fs::{DirBuilder, OpenOptions, Permissions};
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;

/// Mode of the directories suture creates.
const DIR_MODE: u32 = 0o700;
/// Mode of the files suture writes.
const FILE_MODE: u32 = 0o600;

/// Creates `dir` and its missing parents, each new one 0700.
pub fn create_dir(dir: &Path) -> std::io::Result<()> {
    DirBuilder::new().recursive(true).mode(DIR_MODE).create(dir)
}

/// Writes `contents` to `path`, replacing what was there, as a 0600 file.
pub fn write(path: &Path, contents: impl AsRef<[u8]>) -> std::io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(FILE_MODE)
        .open(path)?;
    file.set_permissions(Permissions::from_mode(FILE_MODE))?;
    file.write_all(contents.as_ref())
}

/// Creates `path` empty as a 0600 file unless it exists, so that what
/// opens it next (SQLite, which gives its journal files the database
/// file's mode) finds it private.
pub fn create_empty(path: &Path) -> std::io::Result<()> {
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(error) => Err(error),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    /// New directories are 0700 and files 0600, also a file that existed
    /// with a wider mode; an existing file is not truncated by
    /// `create_empty`.
    #[test]
    fn directories_and_files_are_private() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("a/b");
        create_dir(&dir).unwrap();
        assert_eq!(mode(&root.path().join("a")), 0o700);
        assert_eq!(mode(&dir), 0o700);

        let file = dir.join("report.md");
        std::fs::write(&file, "old").unwrap();
        std::fs::set_permissions(&file, Permissions::from_mode(0o644)).unwrap();
        write(&file, "new").unwrap();
        assert_eq!(mode(&file), 0o600);
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "new");

        let db = dir.join("suture.db");
        create_empty(&db).unwrap();
        assert_eq!(mode(&db), 0o600);
        std::fs::write(&db, "data").unwrap();
        create_empty(&db).unwrap();
        assert_eq!(std::fs::read_to_string(&db).unwrap(), "data");
    }
}

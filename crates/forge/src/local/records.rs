//! Where the local forge keeps its records: one JSON document, read whole
//! and rewritten whole under an exclusive lock.
//!
//! [`RecordsBackend`] is the seam: the service (and `suture pr`) keep the
//! document in its database so that records survive with everything else
//! it stores and every replica sees the same ones; [`FileRecords`] keeps it
//! in a file, for a forge used as a library without a store. The forge never reads, changes and
//! writes in separate steps: each change is one [`RecordsBackend::update`],
//! so two processes (the service and a `suture pr merge`) take turns
//! instead of losing each other's writes.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::error::ForgeError;

/// Storage for the local forge's records document.
pub trait RecordsBackend: Send + Sync + std::fmt::Debug {
    /// The records document, None when none was written yet.
    fn read(&self) -> Result<Option<String>, ForgeError>;

    /// Runs `edit` on the current document under the backend's exclusive
    /// lock and writes what it returns (None: write nothing). An `Err` from
    /// `edit` writes nothing and is returned as it is.
    fn update(
        &self,
        edit: &mut dyn FnMut(Option<String>) -> Result<Option<String>, ForgeError>,
    ) -> Result<(), ForgeError>;
}

/// The records in a file, rewritten whole through a temp file and a rename
/// (a crash leaves the old or the new file, never half of one), under an
/// in-process mutex and, on Unix, an advisory `flock` on `<path>.lock`.
#[derive(Debug)]
pub struct FileRecords {
    path: PathBuf,
    /// Serialises this process's turns; `flock` alone would let two
    /// threads of one process in (the lock belongs to each open file).
    lock: Mutex<()>,
}

impl FileRecords {
    /// Records in `path` (created on first write; its directory must
    /// exist).
    pub fn new(path: &Path) -> FileRecords {
        FileRecords {
            path: path.to_path_buf(),
            lock: Mutex::new(()),
        }
    }

    /// The records file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn io(&self) -> impl Fn(std::io::Error) -> ForgeError + '_ {
        |source| ForgeError::RecordsFile {
            path: self.path.clone(),
            source,
        }
    }

    fn read_unlocked(&self) -> Result<Option<String>, ForgeError> {
        match std::fs::read_to_string(&self.path) {
            Ok(text) => Ok(Some(text)),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(self.io()(error)),
        }
    }

    fn write_unlocked(&self, text: &str) -> Result<(), ForgeError> {
        let io = self.io();
        let dir = self
            .path
            .parent()
            .filter(|dir| !dir.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let mut temp = tempfile::NamedTempFile::new_in(dir).map_err(&io)?;
        temp.write_all(text.as_bytes())
            .and_then(|()| temp.as_file().sync_all())
            .map_err(&io)?;
        temp.persist(&self.path).map_err(|error| io(error.error))?;
        Ok(())
    }
}

impl RecordsBackend for FileRecords {
    fn read(&self) -> Result<Option<String>, ForgeError> {
        let _guard = lock(&self.lock);
        let _file_lock = FileLock::acquire(&self.path)?;
        self.read_unlocked()
    }

    fn update(
        &self,
        edit: &mut dyn FnMut(Option<String>) -> Result<Option<String>, ForgeError>,
    ) -> Result<(), ForgeError> {
        let _guard = lock(&self.lock);
        let _file_lock = FileLock::acquire(&self.path)?;
        let current = self.read_unlocked()?;
        match edit(current)? {
            Some(text) => self.write_unlocked(&text),
            None => Ok(()),
        }
    }
}

fn lock(mutex: &Mutex<()>) -> std::sync::MutexGuard<'_, ()> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// An advisory exclusive lock on `<records>.lock`, released on drop (and by
/// the kernel if the process dies).
struct FileLock {
    #[cfg_attr(not(unix), allow(dead_code))]
    file: File,
}

impl FileLock {
    fn acquire(records: &Path) -> Result<FileLock, ForgeError> {
        let mut name = records.as_os_str().to_owned();
        name.push(".lock");
        let lock_path = PathBuf::from(name);
        let io = |source: std::io::Error| ForgeError::RecordsFile {
            path: lock_path.clone(),
            source,
        };
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io)?;
        #[cfg(unix)]
        {
            use std::os::fd::AsRawFd;
            // SAFETY: `flock` on a file descriptor this function owns for
            // the lock's lifetime; no memory is shared with the call.
            let result = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
            if result != 0 {
                return Err(io(std::io::Error::last_os_error()));
            }
        }
        Ok(FileLock { file })
    }
}

#[cfg(unix)]
impl Drop for FileLock {
    fn drop(&mut self) {
        use std::os::fd::AsRawFd;
        // SAFETY: as in `acquire`; closing the file would release it too.
        unsafe {
            libc::flock(self.file.as_raw_fd(), libc::LOCK_UN);
        }
    }
}

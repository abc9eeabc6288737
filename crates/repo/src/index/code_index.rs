//! [`CodeIndex`]: parsed files cached by git blob id, and lookups over the
//! current tree.
//!
//! A blob id names content, so a parse is valid for every commit that keeps the
//! blob: indexing a new commit re-parses only the blobs it changed. Blobs are
//! read on the calling thread (`git2::Repository` is not `Sync`) in bounded
//! batches and parsed in parallel on rayon.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use git2::{ErrorCode, ObjectType, Oid, Repository, Tree, TreeWalkMode, TreeWalkResult};
use rayon::prelude::*;

use super::select::{MAX_BLOB_BYTES, indexed_language, is_skipped_dir};
use super::{FileSymbols, Language, Symbol, parse_symbols};

/// How many blob bytes are held in memory at once while indexing a tree, so a
/// first index of a large repository does not load all of it.
const BATCH_BYTES: u64 = 32 * 1024 * 1024;

/// Git file mode of a symlink, whose blob is a target path, not code.
const SYMLINK_MODE: i32 = 0o120000;

/// The same bytes parse differently as `.js` and `.ts`, so the language is part
/// of the cache key.
type BlobKey = (Oid, Language);

/// Symbols of the files of a tree, with a parse cache shared across trees.
///
/// The cache holds the current tree's blobs plus any parsed lazily since
/// ([`CodeIndex::file_at`], [`CodeIndex::file_blob`]); [`CodeIndex::index_tree`]
/// drops the rest, so memory follows one tree rather than the whole history.
#[derive(Debug)]
pub struct CodeIndex {
    /// Parsed files by content.
    blobs: HashMap<BlobKey, Arc<FileSymbols>>,
    /// The current tree's indexed files, path → blob. Sorted so
    /// [`CodeIndex::find_symbols`] answers in a stable order.
    files: BTreeMap<String, BlobKey>,
    /// Blobs over this size are not parsed.
    max_blob_bytes: u64,
}

/// What one [`CodeIndex::index_tree`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexStats {
    /// Files of the tree now indexed (`parsed + reused`).
    pub files: usize,
    /// Blobs parsed by this call.
    pub parsed: usize,
    /// Files whose parse came from the cache.
    pub reused: usize,
    /// Supported files skipped for being over the size cap.
    pub skipped: usize,
    /// Source bytes parsed by this call.
    pub bytes_parsed: u64,
    /// Wall time of the whole call.
    pub elapsed: Duration,
}

/// A git failure while indexing; a file that does not parse is not an error.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// Listing a tree's entries failed.
    #[error("reading tree {tree}")]
    ReadTree {
        /// The tree being walked.
        tree: Oid,
        /// What libgit2 reported.
        #[source]
        source: git2::Error,
    },
    /// Looking a path up in a tree failed for a reason other than absence.
    #[error("looking up {path} in tree {tree}")]
    LookupPath {
        /// The path asked for.
        path: String,
        /// The tree searched.
        tree: Oid,
        /// What libgit2 reported.
        #[source]
        source: git2::Error,
    },
    /// Reading a blob (or its header) failed.
    #[error("reading blob {blob}")]
    ReadBlob {
        /// The blob being read.
        blob: Oid,
        /// What libgit2 reported.
        #[source]
        source: git2::Error,
    },
    /// [`CodeIndex::file_blob`] was asked for a blob over the size cap.
    #[error("blob {blob} is {size} bytes, over the index cap of {limit}")]
    BlobTooLarge {
        /// The blob asked for.
        blob: Oid,
        /// Its size in bytes.
        size: u64,
        /// The cap in bytes.
        limit: u64,
    },
}

impl Default for CodeIndex {
    fn default() -> Self {
        CodeIndex::new()
    }
}

impl CodeIndex {
    /// An empty index with the default [`MAX_BLOB_BYTES`] cap.
    pub fn new() -> Self {
        CodeIndex {
            blobs: HashMap::new(),
            files: BTreeMap::new(),
            max_blob_bytes: MAX_BLOB_BYTES,
        }
    }

    /// The same index with another blob size cap.
    pub fn with_max_blob_bytes(mut self, max_blob_bytes: u64) -> Self {
        self.max_blob_bytes = max_blob_bytes;
        self
    }

    /// Indexes every supported file of `tree` and makes it the current tree.
    ///
    /// Skips vendored and build directories, minified bundles, symlinks,
    /// submodules and blobs over the size cap. Only blobs not already cached
    /// are read and parsed. On error the previous current tree stays current.
    pub fn index_tree(
        &mut self,
        repo: &Repository,
        tree: &Tree<'_>,
    ) -> Result<IndexStats, IndexError> {
        let started = Instant::now();
        let mut stats = IndexStats::default();
        let mut files = BTreeMap::new();
        let mut pending: Vec<(BlobKey, u64)> = Vec::new();
        let mut pending_keys = HashSet::new();
        for (path, key) in supported_files(tree)? {
            if !self.blobs.contains_key(&key) && !pending_keys.contains(&key) {
                let size = blob_size(repo, key.0)?;
                if size > self.max_blob_bytes {
                    stats.skipped += 1;
                    continue;
                }
                pending.push((key, size));
                pending_keys.insert(key);
            }
            files.insert(path, key);
        }

        for batch in batches(&pending, BATCH_BYTES) {
            let contents = batch
                .iter()
                .map(|&(key, _)| Ok((key, read_blob(repo, key.0)?)))
                .collect::<Result<Vec<_>, IndexError>>()?;
            stats.bytes_parsed += contents
                .iter()
                .map(|(_, bytes)| bytes.len() as u64)
                .sum::<u64>();
            let parsed: Vec<_> = contents
                .into_par_iter()
                .map(|(key, bytes)| (key, Arc::new(parse_symbols(key.1, &bytes))))
                .collect();
            self.blobs.extend(parsed);
        }

        let live: HashSet<BlobKey> = files.values().copied().collect();
        self.blobs.retain(|key, _| live.contains(key));
        self.files = files;
        stats.files = self.files.len();
        stats.parsed = pending.len();
        stats.reused = stats.files - stats.parsed;
        stats.elapsed = started.elapsed();
        tracing::debug!(
            tree = %tree.id(),
            files = stats.files,
            parsed = stats.parsed,
            reused = stats.reused,
            skipped = stats.skipped,
            bytes_parsed = stats.bytes_parsed,
            elapsed_ms = stats.elapsed.as_millis() as u64,
            "indexed tree"
        );
        Ok(stats)
    }

    /// The symbols of one file of `tree`, parsed on demand and cached, without
    /// indexing the tree or changing the current one: diagnosis often needs a
    /// handful of files at an older commit.
    ///
    /// `None` when the path is absent or not a regular file, its language is
    /// unsupported, or its blob is over the size cap. Vendored paths are parsed:
    /// the caller asked for this file by name.
    pub fn file_at(
        &mut self,
        repo: &Repository,
        tree: &Tree<'_>,
        path: &str,
    ) -> Result<Option<Arc<FileSymbols>>, IndexError> {
        let Some(language) = Language::from_path(path) else {
            return Ok(None);
        };
        let entry = match tree.get_path(Path::new(path)) {
            Ok(entry) => entry,
            Err(error) if error.code() == ErrorCode::NotFound => return Ok(None),
            Err(source) => {
                return Err(IndexError::LookupPath {
                    path: path.to_owned(),
                    tree: tree.id(),
                    source,
                });
            }
        };
        if entry.kind() != Some(ObjectType::Blob) || entry.filemode() == SYMLINK_MODE {
            return Ok(None);
        }
        match self.file_blob(repo, entry.id(), language) {
            Ok(file) => Ok(Some(file)),
            Err(IndexError::BlobTooLarge { .. }) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// The symbols of one blob, parsed on demand and cached.
    pub fn file_blob(
        &mut self,
        repo: &Repository,
        blob: Oid,
        language: Language,
    ) -> Result<Arc<FileSymbols>, IndexError> {
        if let Some(file) = self.blobs.get(&(blob, language)) {
            return Ok(Arc::clone(file));
        }
        let size = blob_size(repo, blob)?;
        if size > self.max_blob_bytes {
            return Err(IndexError::BlobTooLarge {
                blob,
                size,
                limit: self.max_blob_bytes,
            });
        }
        let file = Arc::new(parse_symbols(language, &read_blob(repo, blob)?));
        self.blobs.insert((blob, language), Arc::clone(&file));
        Ok(file)
    }

    /// Parses the not-yet-cached blobs among `blobs` in parallel (reading them
    /// is sequential: git2 handles are not shared across threads), so that
    /// the `file_blob` calls that follow hit the cache. Blobs over the size
    /// cap are left out. Returns how many were parsed.
    pub fn prefetch_blobs(
        &mut self,
        repo: &Repository,
        blobs: &[(Oid, Language)],
    ) -> Result<usize, IndexError> {
        let mut pending: Vec<(BlobKey, u64)> = Vec::new();
        let mut seen = HashSet::new();
        for &key in blobs {
            if self.blobs.contains_key(&key) || !seen.insert(key) {
                continue;
            }
            let size = blob_size(repo, key.0)?;
            if size <= self.max_blob_bytes {
                pending.push((key, size));
            }
        }
        for batch in batches(&pending, BATCH_BYTES) {
            let contents = batch
                .iter()
                .map(|&(key, _)| Ok((key, read_blob(repo, key.0)?)))
                .collect::<Result<Vec<_>, IndexError>>()?;
            let parsed: Vec<_> = contents
                .into_par_iter()
                .map(|(key, bytes)| (key, Arc::new(parse_symbols(key.1, &bytes))))
                .collect();
            self.blobs.extend(parsed);
        }
        Ok(pending.len())
    }

    /// The symbols of a file of the current tree.
    pub fn file(&self, path: &str) -> Option<&Arc<FileSymbols>> {
        self.files.get(path).and_then(|key| self.blobs.get(key))
    }

    /// The indexed paths of the current tree, sorted.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.files.keys().map(String::as_str)
    }

    /// [`FileSymbols::enclosing_symbol`] for a file of the current tree.
    pub fn enclosing_symbol(&self, path: &str, line: u32) -> Option<&Symbol> {
        self.file(path)?.enclosing_symbol(line)
    }

    /// Every symbol of the current tree whose simple or qualified name is
    /// `name`, with its path; by path, then source order.
    pub fn find_symbols(&self, name: &str) -> Vec<(&str, &Symbol)> {
        let mut found = Vec::new();
        for (path, key) in &self.files {
            let Some(file) = self.blobs.get(key) else {
                continue;
            };
            let matching = file
                .symbols
                .iter()
                .filter(|symbol| symbol.name == name || symbol.qualified_name == name);
            found.extend(matching.map(|symbol| (path.as_str(), symbol)));
        }
        found
    }

    /// How many parsed blobs are cached.
    pub fn cached_blobs(&self) -> usize {
        self.blobs.len()
    }
}

/// Every indexable file of `tree` as `(path, blob key)`.
fn supported_files(tree: &Tree<'_>) -> Result<Vec<(String, BlobKey)>, IndexError> {
    let mut files = Vec::new();
    tree.walk(TreeWalkMode::PreOrder, |dir, entry| {
        // Non-UTF-8 names cannot match a frame's path.
        let Ok(name) = entry.name() else {
            return TreeWalkResult::Skip;
        };
        match entry.kind() {
            Some(ObjectType::Tree) if is_skipped_dir(name) => TreeWalkResult::Skip,
            Some(ObjectType::Blob) if entry.filemode() != SYMLINK_MODE => {
                let path = format!("{dir}{name}");
                if let Some(language) = indexed_language(&path) {
                    files.push((path, (entry.id(), language)));
                }
                TreeWalkResult::Ok
            }
            _ => TreeWalkResult::Ok,
        }
    })
    .map_err(|source| IndexError::ReadTree {
        tree: tree.id(),
        source,
    })?;
    Ok(files)
}

/// A blob's size from its header, without inflating it.
fn blob_size(repo: &Repository, blob: Oid) -> Result<u64, IndexError> {
    let read_header = || repo.odb()?.read_header(blob);
    let (size, _) = read_header().map_err(|source| IndexError::ReadBlob { blob, source })?;
    Ok(size as u64)
}

fn read_blob(repo: &Repository, blob: Oid) -> Result<Vec<u8>, IndexError> {
    let found = repo
        .find_blob(blob)
        .map_err(|source| IndexError::ReadBlob { blob, source })?;
    Ok(found.content().to_vec())
}

/// Consecutive runs of `pending` of about `limit` bytes each (a single larger
/// blob forms its own run).
fn batches(pending: &[(BlobKey, u64)], limit: u64) -> Vec<&[(BlobKey, u64)]> {
    let mut batches = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (idx, &(_, size)) in pending.iter().enumerate() {
        if bytes + size > limit && idx > start {
            batches.push(&pending[start..idx]);
            start = idx;
            bytes = 0;
        }
        bytes += size;
    }
    if start < pending.len() {
        batches.push(&pending[start..]);
    }
    batches
}

//! Which files of a tree the index parses.
//!
//! Vendored dependencies, build output and minified bundles are not the
//! service's own code: a frame there is never the commit's fault, and parsing
//! them would dominate the cost of indexing a JavaScript repository.

use super::Language;

/// Blobs above this size are skipped: generated or bundled code, expensive to
/// parse and useless for diagnosis.
pub const MAX_BLOB_BYTES: u64 = 1024 * 1024;

/// Directory names whose whole subtree is third-party or generated.
const SKIPPED_DIRS: &[&str] = &[
    "node_modules",
    "vendor",
    "dist",
    "bower_components",
    "__pycache__",
];

/// Whether a whole directory is skipped when walking a tree.
pub(super) fn is_skipped_dir(name: &str) -> bool {
    SKIPPED_DIRS.contains(&name)
}

/// The language to index `path` with, or `None` when it is unsupported or a
/// minified bundle. Directory skipping is the tree walk's job.
pub(super) fn indexed_language(path: &str) -> Option<Language> {
    let language = Language::from_path(path)?;
    let file_name = path.rsplit('/').next().unwrap_or(path);
    let minified = [".min.js", ".min.mjs", ".min.cjs", ".bundle.js"]
        .iter()
        .any(|suffix| file_name.ends_with(suffix));
    (!minified).then_some(language)
}

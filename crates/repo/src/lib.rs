//! suture's view of a code repository.
//!
//! Everything here is synchronous and CPU- or disk-bound: git history through
//! git2 (commit windows, bounded blame, diffs), mapping stack-frame paths onto
//! the tree, and the tree-sitter code index. Callers on an async runtime run
//! these on blocking threads.
//!
//! **Invariant:** this crate knows nothing about HTTP, LLMs or Sentry's wire
//! formats; it speaks in paths, lines, commits and symbols.

pub use git2;

pub mod git;
pub mod index;
pub mod pathmap;
pub mod sandbox;
pub mod scope;
pub mod worktree;

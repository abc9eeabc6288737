//! The tree-sitter code index: which function holds a frame's line, and what
//! that function calls.
//!
//! Diagnosis maps stack frames to code and ranks the callees of frame
//! functions; both need symbols (qualified names, line ranges, call names) for
//! the files of a commit. [`parse_symbols`] turns one file into
//! [`FileSymbols`]; [`CodeIndex`] caches those by git blob id, so moving to a
//! new commit re-parses only the blobs that changed.
//!
//! Reproduction asks one more thing of a symbol: how to call it. Python and
//! JS/TS symbols carry their parameters, decorators, `async`/`static` and a
//! class's bases (see [`Symbol::params`]), so a replay test can be written
//! from the index at the deployed revision without reading the source again.
//!
//! Layout: `language` picks a grammar from a path, `lang/` holds one table per
//! grammar family (what declares a symbol, what is a call), `parse` is the one
//! walker over any grammar, `symbol` the language-neutral result, `select`
//! which files of a tree are worth parsing, and `code_index` the cache.
//!
//! **Invariant:** parsing never fails; broken syntax gives the symbols
//! tree-sitter recovered and sets [`FileSymbols::has_errors`].

mod code_index;
mod lang;
mod language;
mod parse;
mod select;
mod symbol;

#[cfg(test)]
mod tests;

pub use code_index::{CodeIndex, IndexError, IndexStats};
pub use language::Language;
pub use parse::parse_symbols;
pub use select::MAX_BLOB_BYTES;
pub use symbol::{FileSymbols, Param, ParamKind, Symbol, SymbolKind};

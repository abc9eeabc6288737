//! The languages the code index understands, and how a path picks one.
//!
//! Detection is by extension only: frames and trees give us paths, and
//! sniffing content would mean reading blobs we may never parse.

use serde::{Deserialize, Serialize};

use super::lang::{self, Grammar};

/// A source language with a bundled tree-sitter grammar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    /// `.py`, `.pyi`
    Python,
    /// `.js`, `.mjs`, `.cjs`, `.jsx`
    JavaScript,
    /// `.ts`, `.mts`, `.cts`
    TypeScript,
    /// `.tsx`: its own grammar, because `<T>x` means a cast in `.ts` and JSX here.
    Tsx,
    /// `.rs`
    Rust,
    /// `.go`
    Go,
    /// `.java`
    Java,
}

impl Language {
    /// Every supported language, for tests and diagnostics.
    pub const ALL: [Language; 7] = [
        Language::Python,
        Language::JavaScript,
        Language::TypeScript,
        Language::Tsx,
        Language::Rust,
        Language::Go,
        Language::Java,
    ];

    /// The language of a file, from its extension (case-insensitive).
    pub fn from_path(path: &str) -> Option<Language> {
        let file_name = path.rsplit(['/', '\\']).next().unwrap_or(path);
        let (_, extension) = file_name.rsplit_once('.')?;
        let language = match extension.to_ascii_lowercase().as_str() {
            "py" | "pyi" => Language::Python,
            "js" | "mjs" | "cjs" | "jsx" => Language::JavaScript,
            "ts" | "mts" | "cts" => Language::TypeScript,
            "tsx" => Language::Tsx,
            "rs" => Language::Rust,
            "go" => Language::Go,
            "java" => Language::Java,
            _ => return None,
        };
        Some(language)
    }

    /// A stable lowercase name, for logs and prompts.
    pub fn name(&self) -> &'static str {
        match self {
            Language::Python => "python",
            Language::JavaScript => "javascript",
            Language::TypeScript => "typescript",
            Language::Tsx => "tsx",
            Language::Rust => "rust",
            Language::Go => "go",
            Language::Java => "java",
        }
    }

    /// The per-language table the shared walker reads.
    pub(super) fn grammar(self) -> &'static Grammar {
        match self {
            Language::Python => &lang::python::GRAMMAR,
            Language::JavaScript => &lang::ecmascript::JAVASCRIPT,
            Language::TypeScript => &lang::ecmascript::TYPESCRIPT,
            Language::Tsx => &lang::ecmascript::TSX,
            Language::Rust => &lang::rust::GRAMMAR,
            Language::Go => &lang::go::GRAMMAR,
            Language::Java => &lang::java::GRAMMAR,
        }
    }
}

impl std::fmt::Display for Language {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

//! The language-neutral result of parsing one file, and lookups by line and name.
//!
//! Diagnosis asks two questions of a file: "which function holds line N of this
//! frame?" and "where is the function called X?". Both are answered here from a
//! flat, source-ordered list, so the type stays cheap to cache and to serialise.

use serde::{Deserialize, Serialize};

use super::Language;

/// What a symbol declares, folded across languages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SymbolKind {
    /// A free function, a nested function, or a function value bound to a name
    /// (`const f = () => {}`).
    Function,
    /// A function declared in a class, impl, trait or interface, or with a Go receiver;
    /// Java and JS/TS constructors too.
    Method,
    /// A class (Python, JS/TS, Java, including Java records).
    Class,
    /// A Rust struct or union, or a Go struct type.
    Struct,
    /// An enum (Rust, TS, Java).
    Enum,
    /// A TS, Java or Go interface, or a Java annotation type.
    Interface,
    /// A Rust trait.
    Trait,
    /// A Rust `impl` block, named after its self type.
    Impl,
    /// A Rust `mod` or a TS `namespace` / `declare module`.
    Module,
    /// A Rust `const`/`static` or a Go `const`.
    Constant,
}

impl SymbolKind {
    /// A stable lowercase name, for logs, prompts and snapshots.
    pub fn name(&self) -> &'static str {
        match self {
            SymbolKind::Function => "function",
            SymbolKind::Method => "method",
            SymbolKind::Class => "class",
            SymbolKind::Struct => "struct",
            SymbolKind::Enum => "enum",
            SymbolKind::Interface => "interface",
            SymbolKind::Trait => "trait",
            SymbolKind::Impl => "impl",
            SymbolKind::Module => "module",
            SymbolKind::Constant => "constant",
        }
    }

    /// Whether frames point into it: the only kinds that get `calls`.
    pub fn is_function_like(&self) -> bool {
        matches!(self, SymbolKind::Function | SymbolKind::Method)
    }
}

impl std::fmt::Display for SymbolKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One declaration in a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Symbol {
    /// What it declares.
    pub kind: SymbolKind,
    /// The name as written: `update_headers`.
    pub name: String,
    /// The name joined to its lexical scopes with `.`: `Session.update_headers`,
    /// `Outer.Inner.method`, `Class.method.inner`. Rust impl members and Go
    /// methods are qualified by their self or receiver type (`Type.method`,
    /// pointer and generics stripped), which is what their frames print.
    pub qualified_name: String,
    /// First line, 1-based. Python decorators, TS decorators and Rust outer
    /// attributes count as part of the symbol, so a frame on a multi-line
    /// `@app.route(...)` lands in the function it decorates.
    pub start_line: u32,
    /// Last line, 1-based and inclusive.
    pub end_line: u32,
    /// Index of the lexically enclosing symbol in [`FileSymbols::symbols`].
    pub parent: Option<usize>,
    /// For functions and methods: the distinct simple names the body calls
    /// (`self.bar()` and `a.b.bar()` give `bar`), sorted. Calls made inside a
    /// nested named function or class belong to that symbol instead; calls in
    /// anonymous closures and lambdas count for the function they are written in,
    /// since that is usually where they run. Empty for other kinds.
    pub calls: Vec<String>,
}

impl Symbol {
    /// Whether `line` (1-based) falls inside this symbol.
    pub fn contains_line(&self, line: u32) -> bool {
        self.start_line <= line && line <= self.end_line
    }
}

/// Every symbol of one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileSymbols {
    /// The grammar it was parsed with.
    pub language: Language,
    /// In source order, so a parent always precedes its children.
    pub symbols: Vec<Symbol>,
    /// The parse hit syntax errors; the symbols are tree-sitter's best recovery
    /// and may miss or mis-bound declarations near the error.
    pub has_errors: bool,
}

impl FileSymbols {
    /// The innermost function or method containing `line`, else the innermost
    /// symbol of any kind (a line in a class body outside any method), else `None`.
    pub fn enclosing_symbol(&self, line: u32) -> Option<&Symbol> {
        let chain = self.enclosing_chain(line);
        let function = chain.iter().find(|symbol| symbol.kind.is_function_like());
        function.or(chain.first()).copied()
    }

    /// Every symbol containing `line`, innermost first.
    pub fn enclosing_chain(&self, line: u32) -> Vec<&Symbol> {
        // Source order is a pre-order walk, so the last symbol containing the line
        // is the deepest; its ancestors are the rest of the chain.
        let innermost = self
            .symbols
            .iter()
            .rposition(|symbol| symbol.contains_line(line));
        let mut chain = Vec::new();
        let mut next = innermost;
        while let Some(symbol_idx) = next {
            let symbol = &self.symbols[symbol_idx];
            if symbol.contains_line(line) {
                chain.push(symbol);
            }
            next = symbol.parent;
        }
        chain
    }

    /// The first symbol, in source order, with this exact qualified name. A Rust
    /// impl block shares its type's qualified name and comes after the type when
    /// both are in one file.
    pub fn by_qualified_name(&self, name: &str) -> Option<&Symbol> {
        self.symbols
            .iter()
            .find(|symbol| symbol.qualified_name == name)
    }

    /// Every symbol with this simple name, in source order.
    pub fn by_name<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Symbol> {
        self.symbols
            .iter()
            .filter(move |symbol| symbol.name == name)
    }
}

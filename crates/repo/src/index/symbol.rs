//! The language-neutral result of parsing one file, and lookups by line and name.
//!
//! Diagnosis asks two questions of a file: "which function holds line N of this
//! frame?" and "where is the function called X?". Both are answered here from a
//! flat, source-ordered list, so the type stays cheap to cache and to serialise.
//!
//! A third question comes from reproduction: "how is this function called?".
//! A replay test calls the crash function with the frame's local variables,
//! so a symbol also carries its declared parameters (kind, order, whether
//! they may be omitted), its Python decorators (a `staticmethod` takes no
//! `self`), whether it is `async` (it must be awaited) or a JS `static`
//! member, and a class's bases. These are read from the declaration's own
//! nodes only, never from the body, so they cost nothing on the walk. Every
//! new field is `#[serde(default)]`: a `Symbol` serialised before they
//! existed still loads.

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

/// How an argument binds to a declared parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParamKind {
    /// By position or (in Python) by name: `a`, JS `a`.
    Positional,
    /// By position only: Python parameters before a `/`.
    PositionalOnly,
    /// By name only: Python parameters after `*` or `*args`.
    KeywordOnly,
    /// Collects the remaining positional arguments: Python `*args`, JS `...rest`.
    VarPositional,
    /// Collects the remaining keyword arguments: Python `**kwargs`.
    VarKeyword,
    /// A destructuring pattern taking one positional argument (JS `{x, y}`,
    /// `[a, b]`, a Python 2 tuple parameter); its name is its source text.
    Pattern,
}

/// One declared parameter of a function or method.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Param {
    /// The name as written, without `*`, `**` or `...`; for a
    /// [`ParamKind::Pattern`], the pattern's source text.
    pub name: String,
    /// How arguments bind to it.
    pub kind: ParamKind,
    /// The caller may omit it: it has a default value, or it is a TS optional
    /// parameter (`a?: T`).
    pub has_default: bool,
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
    /// For functions and methods in Python and JavaScript/TypeScript: the
    /// declared parameters in declaration order. Python's `self`/`cls` are listed
    /// as written and a bare `*` or `/` is a marker, not a parameter; a TS
    /// `this:` parameter is a type annotation, not an argument, and is left out.
    /// Empty for other kinds and other languages, and for a parameterless function.
    #[serde(default)]
    pub params: Vec<Param>,
    /// Python functions, methods and classes: each decorator's dotted name
    /// without its call arguments (`@app.route("/x")` gives `app.route`), in
    /// source order. Empty elsewhere.
    #[serde(default)]
    pub decorators: Vec<String>,
    /// A Python `async def`, or a JS/TS `async` function, method or arrow.
    #[serde(default)]
    pub is_async: bool,
    /// A JS/TS `static` class member. Always false in Python, where a
    /// `staticmethod` or `classmethod` decorator says it.
    #[serde(default)]
    pub is_static: bool,
    /// Classes: the source text of each superclass expression in Python
    /// (keyword arguments such as `metaclass=` left out), or of the `extends`
    /// expression in JS/TS (type arguments and `implements` left out).
    #[serde(default)]
    pub bases: Vec<String>,
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

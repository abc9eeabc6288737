//! Per-language knowledge, one module per grammar family, as tables the shared
//! walker reads.
//!
//! A language answers two questions about a syntax node: "does it declare a
//! symbol, and what is it called?" and "is it a call, and to what simple
//! name?". Everything else (scopes, qualified names, line ranges, which symbol
//! owns a call) is the walker's, so adding a language never touches it.
//!
//! A definition may also describe how it is called (parameters, decorators,
//! `async`, `static`, bases). A language reads those from the declaring node's
//! own children (its parameter list, its decorators, its heritage clause), a
//! walk bounded by the declaration's header, never its body.

use tree_sitter::Node;

use super::{Param, SymbolKind};

pub(super) mod ecmascript;
pub(super) mod go;
pub(super) mod java;
pub(super) mod python;
pub(super) mod rust;

/// One language's table.
pub(super) struct Grammar {
    /// The tree-sitter grammar; a function because `tree_sitter::Language` is
    /// not const-constructible.
    pub(super) language: fn() -> tree_sitter::Language,
    /// The symbol `node` declares, if any.
    pub(super) definition: for<'tree> fn(Node<'tree>, &[u8]) -> Option<Definition<'tree>>,
    /// The simple name `node` calls, if it is a call with a nameable callee.
    pub(super) call: for<'source> fn(Node<'_>, &'source [u8]) -> Option<&'source str>,
}

/// A declaration as a language sees it; the walker adds scope and lines.
pub(super) struct Definition<'tree> {
    pub(super) kind: SymbolKind,
    pub(super) name: String,
    /// Qualifies the name in place of the lexical scope: a Go method's receiver
    /// type, which is how Go frames name methods.
    pub(super) receiver: Option<String>,
    /// The node the symbol's first line comes from, when it is not the declaring
    /// node itself: a decorator, attribute or `export` wrapping it.
    pub(super) first: Option<Node<'tree>>,
    /// Declared parameters, for functions and methods.
    pub(super) params: Vec<Param>,
    /// Decorator names, for Python definitions.
    pub(super) decorators: Vec<String>,
    /// An `async` function, method or arrow.
    pub(super) is_async: bool,
    /// A JS/TS `static` class member.
    pub(super) is_static: bool,
    /// Superclass expressions, for classes.
    pub(super) bases: Vec<String>,
}

impl<'tree> Definition<'tree> {
    fn new(kind: SymbolKind, name: impl Into<String>) -> Self {
        Definition {
            kind,
            name: name.into(),
            receiver: None,
            first: None,
            params: Vec::new(),
            decorators: Vec::new(),
            is_async: false,
            is_static: false,
            bases: Vec::new(),
        }
    }

    fn starting_at(mut self, first: Node<'tree>) -> Self {
        self.first = Some(first);
        self
    }
}

/// Whether `node` has the anonymous keyword token `keyword` (`async`,
/// `static`) as a direct child. Named children are skipped, so a parameter or
/// property that happens to be called `async` does not count.
fn has_keyword(node: Node<'_>, keyword: &str) -> bool {
    let mut cursor = node.walk();
    node.children(&mut cursor)
        .any(|child| !child.is_named() && child.kind() == keyword)
}

/// The source text of `node`. Lossy because a file with a stray invalid byte
/// should still index.
fn text(node: Node<'_>, source: &[u8]) -> String {
    String::from_utf8_lossy(&source[node.byte_range()]).into_owned()
}

/// The source text of `node`'s `field` child, when it is valid UTF-8 (callee
/// names that are not are useless for matching anyway).
fn field_str<'source>(node: Node<'_>, field: &str, source: &'source [u8]) -> Option<&'source str> {
    node.child_by_field_name(field)?.utf8_text(source).ok()
}

/// The name of `node`'s `field` child.
fn field_text(node: Node<'_>, field: &str, source: &[u8]) -> Option<String> {
    node.child_by_field_name(field)
        .map(|child| text(child, source))
}

/// The earliest of the consecutive named siblings right before `node` whose
/// kind is in `kinds`: the decorators or attributes that belong to it.
fn leading_siblings<'tree>(node: Node<'tree>, kinds: &[&str]) -> Option<Node<'tree>> {
    let mut first = None;
    let mut sibling = node.prev_named_sibling();
    while let Some(previous) = sibling.filter(|previous| kinds.contains(&previous.kind())) {
        first = Some(previous);
        sibling = previous.prev_named_sibling();
    }
    first
}

//! Parsing one file into [`FileSymbols`]: the shared walker over any grammar.
//!
//! One pre-order pass over the syntax tree with a stack of open symbols: a node
//! the language calls a definition opens a symbol under the innermost open one,
//! and a call is credited to the innermost open symbol, which is how calls in a
//! nested function stay out of its parent's list. The walk is iterative, so
//! deeply nested generated code cannot overflow a rayon worker's stack.
//! How a symbol is called (parameters, decorators, bases) is read by the
//! language from the declaring node's header when it opens, not by a second
//! pass.

use std::cell::RefCell;
use std::collections::BTreeSet;

use tree_sitter::{Node, Parser, Point, Tree};

use super::lang::{Definition, Grammar};
use super::{FileSymbols, Language, Symbol};

thread_local! {
    /// Parsers are neither `Sync` nor cheap to allocate per file; each rayon
    /// worker keeps one and re-targets it per file.
    static PARSER: RefCell<Parser> = RefCell::new(Parser::new());
}

/// Parses `source` and lists its symbols. Never fails: broken syntax yields
/// whatever tree-sitter recovered, with `has_errors` set.
///
/// # Panics
///
/// If a bundled grammar was generated for a tree-sitter ABI this runtime does
/// not support: a build defect, caught by the tests for every language.
pub fn parse_symbols(language: Language, source: &[u8]) -> FileSymbols {
    let grammar = language.grammar();
    let tree = PARSER.with_borrow_mut(|parser| {
        parser
            .set_language(&(grammar.language)())
            .expect("bundled grammar matches the tree-sitter runtime");
        parser.parse(source, None)
    });
    match tree {
        Some(tree) => symbols_of(language, grammar, &tree, source),
        // Only on cancellation, which we never request; treat as unreadable.
        None => FileSymbols {
            language,
            symbols: Vec::new(),
            has_errors: true,
        },
    }
}

/// A symbol whose node the walk is still inside.
struct Open {
    symbol_idx: usize,
    node_id: usize,
}

fn symbols_of(language: Language, grammar: &Grammar, tree: &Tree, source: &[u8]) -> FileSymbols {
    let mut symbols: Vec<Symbol> = Vec::new();
    // Kept apart from `symbols` so names are borrowed from `source` until the end.
    let mut calls: Vec<BTreeSet<&str>> = Vec::new();
    let mut open: Vec<Open> = Vec::new();
    let mut cursor = tree.walk();
    'walk: loop {
        let node = cursor.node();
        if node.is_named() {
            if let Some(definition) = (grammar.definition)(node, source) {
                let parent = open.last().map(|open| open.symbol_idx);
                open.push(Open {
                    symbol_idx: symbols.len(),
                    node_id: node.id(),
                });
                symbols.push(symbol(definition, node, parent, &symbols));
                calls.push(BTreeSet::new());
            } else if let (Some(innermost), Some(callee)) =
                (open.last(), (grammar.call)(node, source))
            {
                calls[innermost.symbol_idx].insert(callee);
            }
        }
        if cursor.goto_first_child() {
            continue;
        }
        // Leave finished nodes until one has a next sibling, closing their symbols.
        loop {
            if open
                .last()
                .is_some_and(|open| open.node_id == cursor.node().id())
            {
                open.pop();
            }
            if cursor.goto_next_sibling() {
                break;
            }
            if !cursor.goto_parent() {
                break 'walk;
            }
        }
    }
    for (symbol, calls) in symbols.iter_mut().zip(calls) {
        if symbol.kind.is_function_like() {
            symbol.calls = calls.into_iter().map(str::to_owned).collect();
        }
    }
    FileSymbols {
        language,
        symbols,
        has_errors: tree.root_node().has_error(),
    }
}

fn symbol(
    definition: Definition<'_>,
    node: Node<'_>,
    parent: Option<usize>,
    symbols: &[Symbol],
) -> Symbol {
    let scope = match (&definition.receiver, parent) {
        (Some(receiver), _) => Some(receiver.as_str()),
        (None, Some(parent_idx)) => Some(symbols[parent_idx].qualified_name.as_str()),
        (None, None) => None,
    };
    let qualified_name = match scope {
        Some(scope) => format!("{scope}.{}", definition.name),
        None => definition.name.clone(),
    };
    let start = definition.first.unwrap_or(node).start_position();
    Symbol {
        kind: definition.kind,
        name: definition.name,
        qualified_name,
        start_line: line_number(start.row),
        end_line: line_number(last_row(start, node.end_position())),
        parent,
        calls: Vec::new(),
        params: definition.params,
        decorators: definition.decorators,
        is_async: definition.is_async,
        is_static: definition.is_static,
        bases: definition.bases,
    }
}

/// The row of a node's last character: an end at column 0 is just past a newline.
fn last_row(start: Point, end: Point) -> usize {
    if end.column == 0 && end.row > start.row {
        end.row - 1
    } else {
        end.row
    }
}

/// 1-based, saturating: blobs over 4 billion lines are capped out long before.
fn line_number(row: usize) -> u32 {
    u32::try_from(row + 1).unwrap_or(u32::MAX)
}

//! Python: functions (sync and async), classes, methods, decorators.
//!
//! A decorated definition's symbol starts at its first decorator, so a frame
//! raised while evaluating `@app.route(...)` maps to the route it registers.
//! Calls inside decorators run in the enclosing scope and are counted there.

use tree_sitter::Node;

use super::{Definition, Grammar, field_str, field_text};
use crate::index::SymbolKind;

pub(in crate::index) static GRAMMAR: Grammar = Grammar {
    language,
    definition,
    call,
};

fn language() -> tree_sitter::Language {
    tree_sitter_python::LANGUAGE.into()
}

fn definition<'tree>(node: Node<'tree>, source: &[u8]) -> Option<Definition<'tree>> {
    let kind = match node.kind() {
        "class_definition" => SymbolKind::Class,
        "function_definition" if in_class_body(node) => SymbolKind::Method,
        "function_definition" => SymbolKind::Function,
        _ => return None,
    };
    let definition = Definition::new(kind, field_text(node, "name", source)?);
    match node
        .parent()
        .filter(|parent| parent.kind() == "decorated_definition")
    {
        Some(decorated) => Some(definition.starting_at(decorated)),
        None => Some(definition),
    }
}

/// Whether a `def` sits directly in a class body, decorated or not.
fn in_class_body(node: Node<'_>) -> bool {
    let mut parent = node.parent();
    if let Some(decorated) = parent.filter(|parent| parent.kind() == "decorated_definition") {
        parent = decorated.parent();
    }
    let class = parent
        .filter(|block| block.kind() == "block")
        .and_then(|block| block.parent());
    class.is_some_and(|class| class.kind() == "class_definition")
}

fn call<'source>(node: Node<'_>, source: &'source [u8]) -> Option<&'source str> {
    if node.kind() != "call" {
        return None;
    }
    let callee = node.child_by_field_name("function")?;
    match callee.kind() {
        "identifier" => callee.utf8_text(source).ok(),
        "attribute" => field_str(callee, "attribute", source),
        _ => None,
    }
}

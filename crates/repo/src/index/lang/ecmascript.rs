//! JavaScript, TypeScript and TSX: one family, three grammars.
//!
//! TypeScript's grammar extends JavaScript's and keeps its node kinds, so one
//! table serves all three; TS-only kinds simply never occur in a JS tree.
//! Besides declarations, a function or class value bound to a name
//! (`const f = () => {}`, `exports.f = function () {}`, a class field holding an
//! arrow) is a symbol under that name, since that is what its frames print.
//! Object-literal members are not: their names rarely match a frame. A symbol
//! starts at its `export` keyword and at its decorators. Rendering a capitalised
//! JSX element counts as calling that component.

use tree_sitter::Node;

use super::{Definition, Grammar, field_str, field_text, leading_siblings, text};
use crate::index::SymbolKind;

pub(in crate::index) static JAVASCRIPT: Grammar = Grammar {
    language: javascript,
    definition,
    call,
};
pub(in crate::index) static TYPESCRIPT: Grammar = Grammar {
    language: typescript,
    definition,
    call,
};
pub(in crate::index) static TSX: Grammar = Grammar {
    language: tsx,
    definition,
    call,
};

fn javascript() -> tree_sitter::Language {
    tree_sitter_javascript::LANGUAGE.into()
}

fn typescript() -> tree_sitter::Language {
    tree_sitter_typescript::LANGUAGE_TYPESCRIPT.into()
}

fn tsx() -> tree_sitter::Language {
    tree_sitter_typescript::LANGUAGE_TSX.into()
}

fn definition<'tree>(node: Node<'tree>, source: &[u8]) -> Option<Definition<'tree>> {
    let parent_kind = node.parent().map_or("", |parent| parent.kind());
    let definition = match node.kind() {
        "function_declaration" | "generator_function_declaration" => {
            Definition::new(SymbolKind::Function, field_text(node, "name", source)?)
        }
        "class_declaration" | "abstract_class_declaration" => {
            Definition::new(SymbolKind::Class, field_text(node, "name", source)?)
        }
        "interface_declaration" => {
            Definition::new(SymbolKind::Interface, field_text(node, "name", source)?)
        }
        "enum_declaration" => Definition::new(SymbolKind::Enum, field_text(node, "name", source)?),
        "internal_module" | "module" => {
            let name = field_text(node, "name", source)?;
            Definition::new(SymbolKind::Module, name.trim_matches(['"', '\'']))
        }
        "method_definition" | "abstract_method_signature" if parent_kind == "class_body" => {
            Definition::new(SymbolKind::Method, field_text(node, "name", source)?)
        }
        "method_signature" if parent_kind == "interface_body" => {
            Definition::new(SymbolKind::Method, field_text(node, "name", source)?)
        }
        "field_definition" | "public_field_definition" => {
            if !is_function(node.child_by_field_name("value")?) {
                return None;
            }
            let name = node
                .child_by_field_name("property")
                .or_else(|| node.child_by_field_name("name"))?;
            Definition::new(SymbolKind::Method, text(name, source))
        }
        "variable_declarator" => {
            let name = node
                .child_by_field_name("name")
                .filter(|name| name.kind() == "identifier")?;
            let value = node.child_by_field_name("value")?;
            let kind = match value.kind() {
                "class" => SymbolKind::Class,
                _ if is_function(value) => SymbolKind::Function,
                _ => return None,
            };
            let definition = Definition::new(kind, text(name, source));
            return Some(match single_declaration(node) {
                Some(declaration) => definition.starting_at(declaration),
                None => definition,
            });
        }
        "assignment_expression" => {
            if !is_function(node.child_by_field_name("right")?) {
                return None;
            }
            let left = node.child_by_field_name("left")?;
            let name = match left.kind() {
                "identifier" => text(left, source),
                "member_expression" => field_text(left, "property", source)?,
                _ => return None,
            };
            Definition::new(SymbolKind::Function, name)
        }
        _ => return None,
    };
    let first = match parent_kind {
        "export_statement" => Some(node.parent()?),
        _ => leading_siblings(node, &["decorator"]),
    };
    Some(match first {
        Some(first) => definition.starting_at(first),
        None => definition,
    })
}

fn is_function(value: Node<'_>) -> bool {
    matches!(
        value.kind(),
        "arrow_function" | "function_expression" | "function" | "generator_function"
    )
}

/// The `const`/`let`/`var` statement (with its `export`) a declarator is alone
/// in; a declarator sharing a statement keeps its own start.
fn single_declaration(declarator: Node<'_>) -> Option<Node<'_>> {
    let declaration = declarator
        .parent()
        .filter(|parent| {
            matches!(
                parent.kind(),
                "lexical_declaration" | "variable_declaration"
            )
        })
        .filter(|parent| parent.named_child_count() == 1)?;
    match declaration.parent() {
        Some(export) if export.kind() == "export_statement" => Some(export),
        _ => Some(declaration),
    }
}

fn call<'source>(node: Node<'_>, source: &'source [u8]) -> Option<&'source str> {
    let callee = match node.kind() {
        "call_expression" => node.child_by_field_name("function")?,
        "new_expression" => node.child_by_field_name("constructor")?,
        // Rendering `<Panel />` calls `Panel`; lowercase tags are DOM elements.
        "jsx_opening_element" | "jsx_self_closing_element" => {
            let name = node.child_by_field_name("name")?;
            let component = match name.kind() {
                "member_expression" => field_str(name, "property", source),
                _ => name.utf8_text(source).ok(),
            };
            return component.filter(|component| {
                component.starts_with(|first: char| first.is_ascii_uppercase())
            });
        }
        _ => return None,
    };
    match callee.kind() {
        "identifier" => callee.utf8_text(source).ok(),
        "member_expression" => field_str(callee, "property", source),
        _ => None,
    }
}

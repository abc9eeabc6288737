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
//!
//! Parameters, `async` and bases are read from the function or class value,
//! which for a bound function is the declarator's value rather than the
//! declaration: `const f = async (a) => {}` is an async function of `a`.
//! JavaScript has no keyword arguments, so a parameter is positional, a rest
//! parameter, or a destructuring pattern; a TS `this:` parameter only types
//! the receiver and is not an argument.

use tree_sitter::Node;

use super::{Definition, Grammar, field_str, field_text, has_keyword, leading_siblings, text};
use crate::index::{Param, ParamKind, SymbolKind};

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
    // The function or class node itself, when the declaring node only binds it.
    let mut value = node;
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
            value = node.child_by_field_name("value")?;
            if !is_function(value) {
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
            value = node.child_by_field_name("value")?;
            let kind = match value.kind() {
                "class" => SymbolKind::Class,
                _ if is_function(value) => SymbolKind::Function,
                _ => return None,
            };
            let definition = described(
                Definition::new(kind, text(name, source)),
                node,
                value,
                source,
            );
            return Some(match single_declaration(node) {
                Some(declaration) => definition.starting_at(declaration),
                None => definition,
            });
        }
        "assignment_expression" => {
            value = node.child_by_field_name("right")?;
            if !is_function(value) {
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
    let definition = described(definition, node, value, source);
    let first = match parent_kind {
        "export_statement" => Some(node.parent()?),
        _ => leading_siblings(node, &["decorator"]),
    };
    Some(match first {
        Some(first) => definition.starting_at(first),
        None => definition,
    })
}

/// Adds how the symbol is called: `declaration` is the declaring node (where
/// `static` sits), `value` the function or class.
fn described<'tree>(
    mut definition: Definition<'tree>,
    declaration: Node<'_>,
    value: Node<'_>,
    source: &[u8],
) -> Definition<'tree> {
    definition.is_static = has_keyword(declaration, "static");
    match definition.kind {
        SymbolKind::Function | SymbolKind::Method => {
            definition.params = params(value, source);
            definition.is_async = has_keyword(value, "async");
        }
        SymbolKind::Class => definition.bases = bases(value, source),
        _ => {}
    }
    definition
}

/// The parameters of a function, arrow or method, in order.
fn params(function: Node<'_>, source: &[u8]) -> Vec<Param> {
    // `x => x`: one bare identifier, no list.
    if let Some(parameter) = function.child_by_field_name("parameter") {
        return Vec::from_iter(pattern_param(parameter, false, source));
    }
    let Some(list) = function.child_by_field_name("parameters") else {
        return Vec::new();
    };
    let mut cursor = list.walk();
    list.named_children(&mut cursor)
        .filter_map(|child| match child.kind() {
            // TS wraps every parameter; `?` or an initializer makes it omittable.
            "required_parameter" | "optional_parameter" => {
                let pattern = child
                    .child_by_field_name("pattern")
                    .or_else(|| child.child_by_field_name("name"))?;
                let has_default = child.kind() == "optional_parameter"
                    || child.child_by_field_name("value").is_some();
                pattern_param(pattern, has_default, source)
            }
            "assignment_pattern" => pattern_param(child.child_by_field_name("left")?, true, source),
            _ => pattern_param(child, false, source),
        })
        // Error recovery invents zero-width names (`f(a, = 2)`); nobody can pass them.
        .filter(|param| !param.name.is_empty())
        .collect()
}

/// A parameter from its binding pattern; `None` for a TS `this`, comments and
/// error recovery debris.
fn pattern_param(pattern: Node<'_>, has_default: bool, source: &[u8]) -> Option<Param> {
    let (name, kind) = match pattern.kind() {
        "identifier" => (text(pattern, source), ParamKind::Positional),
        "rest_pattern" => {
            let mut cursor = pattern.walk();
            let name = pattern
                .named_children(&mut cursor)
                .find(|child| child.kind() != "comment")?;
            (text(name, source), ParamKind::VarPositional)
        }
        "object_pattern" | "array_pattern" => (text(pattern, source), ParamKind::Pattern),
        _ => return None,
    };
    Some(Param {
        name,
        kind,
        has_default,
    })
}

/// The `extends` expression of a class declaration or class value: JS has
/// one `class_heritage` expression, TS an `extends_clause` whose values are
/// expressions (type arguments are separate fields, `implements` another clause).
fn bases(class: Node<'_>, source: &[u8]) -> Vec<String> {
    let mut cursor = class.walk();
    let Some(heritage) = class
        .named_children(&mut cursor)
        .find(|child| child.kind() == "class_heritage")
    else {
        return Vec::new();
    };
    let mut cursor = heritage.walk();
    let mut bases = Vec::new();
    for clause in heritage.named_children(&mut cursor) {
        match clause.kind() {
            "extends_clause" => {
                let mut values = clause.walk();
                bases.extend(
                    clause
                        .children_by_field_name("value", &mut values)
                        .map(|value| text(value, source)),
                );
            }
            "implements_clause" | "comment" => {}
            _ => bases.push(text(clause, source)),
        }
    }
    bases
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

//! Rust: functions, impl blocks, traits, types, modules and constants.
//!
//! Impl blocks are named after their self type with paths, generics and
//! references stripped (`impl<T> fmt::Display for crate::Foo<T>` is `Foo`), so
//! their members qualify as `Foo.fmt` whether the impl is inherent or for a
//! trait: a frame's `<Foo as Display>::fmt` and `Foo::fmt` both end that way.
//! Outer attributes (`#[instrument(...)]`) count as part of the item.
//! Calls inside macro arguments are invisible: tree-sitter keeps them as tokens.

use tree_sitter::Node;

use super::{Definition, Grammar, field_str, field_text, leading_siblings, text};
use crate::index::SymbolKind;

pub(in crate::index) static GRAMMAR: Grammar = Grammar {
    language,
    definition,
    call,
};

fn language() -> tree_sitter::Language {
    tree_sitter_rust::LANGUAGE.into()
}

fn definition<'tree>(node: Node<'tree>, source: &[u8]) -> Option<Definition<'tree>> {
    let kind = match node.kind() {
        "function_item" | "function_signature_item" if in_impl_or_trait(node) => SymbolKind::Method,
        "function_item" | "function_signature_item" => SymbolKind::Function,
        "impl_item" => SymbolKind::Impl,
        "trait_item" => SymbolKind::Trait,
        "struct_item" | "union_item" => SymbolKind::Struct,
        "enum_item" => SymbolKind::Enum,
        "mod_item" => SymbolKind::Module,
        "const_item" | "static_item" => SymbolKind::Constant,
        _ => return None,
    };
    let name = match kind {
        SymbolKind::Impl => type_name(node.child_by_field_name("type")?, source)?,
        _ => field_text(node, "name", source)?,
    };
    let definition = Definition::new(kind, name);
    match leading_siblings(node, &["attribute_item"]) {
        Some(first) => Some(definition.starting_at(first)),
        None => Some(definition),
    }
}

fn in_impl_or_trait(node: Node<'_>) -> bool {
    let owner = node
        .parent()
        .filter(|list| list.kind() == "declaration_list")
        .and_then(|list| list.parent());
    owner.is_some_and(|owner| matches!(owner.kind(), "impl_item" | "trait_item"))
}

/// The bare name of a self type: `crate::Foo<T>` and `&'a Foo` are `Foo`.
fn type_name(node: Node<'_>, source: &[u8]) -> Option<String> {
    match node.kind() {
        "generic_type" | "reference_type" | "pointer_type" => {
            type_name(node.child_by_field_name("type")?, source)
        }
        "scoped_type_identifier" => field_text(node, "name", source),
        _ => Some(text(node, source)),
    }
}

fn call<'source>(node: Node<'_>, source: &'source [u8]) -> Option<&'source str> {
    if node.kind() != "call_expression" {
        return None;
    }
    callee_name(node.child_by_field_name("function")?, source)
}

/// `foo`, `self.foo`, `a::b::foo` and `foo::<T>` all call `foo`.
fn callee_name<'source>(callee: Node<'_>, source: &'source [u8]) -> Option<&'source str> {
    match callee.kind() {
        "identifier" => callee.utf8_text(source).ok(),
        "field_expression" => field_str(callee, "field", source),
        "scoped_identifier" => field_str(callee, "name", source),
        "generic_function" => callee_name(callee.child_by_field_name("function")?, source),
        _ => None,
    }
}

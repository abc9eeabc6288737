//! Java: classes, records, interfaces, enums, methods and constructors.
//!
//! Constructors are methods named after their class (`Outer.Outer`); Java
//! frames say `<init>`, which the mapping layer translates. Methods of an
//! anonymous class nest under the method that creates it (`Outer.start.run`).
//! Annotations live inside a declaration's modifiers, so ranges include them.

use tree_sitter::Node;

use super::{Definition, Grammar, field_str, field_text};
use crate::index::SymbolKind;

pub(in crate::index) static GRAMMAR: Grammar = Grammar {
    language,
    definition,
    call,
};

fn language() -> tree_sitter::Language {
    tree_sitter_java::LANGUAGE.into()
}

fn definition<'tree>(node: Node<'tree>, source: &[u8]) -> Option<Definition<'tree>> {
    let kind = match node.kind() {
        "class_declaration" | "record_declaration" => SymbolKind::Class,
        "interface_declaration" | "annotation_type_declaration" => SymbolKind::Interface,
        "enum_declaration" => SymbolKind::Enum,
        "method_declaration" | "constructor_declaration" | "compact_constructor_declaration" => {
            SymbolKind::Method
        }
        _ => return None,
    };
    Some(Definition::new(kind, field_text(node, "name", source)?))
}

fn call<'source>(node: Node<'_>, source: &'source [u8]) -> Option<&'source str> {
    match node.kind() {
        "method_invocation" => field_str(node, "name", source),
        "object_creation_expression" => type_name(node.child_by_field_name("type")?, source),
        _ => None,
    }
}

/// `new java.util.ArrayList<String>()` constructs `ArrayList`.
fn type_name<'source>(node: Node<'_>, source: &'source [u8]) -> Option<&'source str> {
    match node.kind() {
        "type_identifier" => node.utf8_text(source).ok(),
        "generic_type" | "scoped_type_identifier" => {
            let mut cursor = node.walk();
            let last = node
                .named_children(&mut cursor)
                .filter(|child| {
                    matches!(child.kind(), "type_identifier" | "scoped_type_identifier")
                })
                .last()?;
            type_name(last, source)
        }
        _ => None,
    }
}

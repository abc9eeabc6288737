//! Go: functions, methods, struct and interface types, constants.
//!
//! Methods are declared outside their type, so they are qualified by their
//! receiver type with the pointer and type parameters stripped: both
//! `func (s *Server) Serve()` and `func (s Server) Serve()` are `Server.Serve`,
//! matching what Go frames print (`(*Server).Serve` once the mapping layer
//! normalises it). A `const` spec declaring several names is named after its first.

use tree_sitter::Node;

use super::{Definition, Grammar, field_str, field_text, text};
use crate::index::SymbolKind;

pub(in crate::index) static GRAMMAR: Grammar = Grammar {
    language,
    definition,
    call,
};

fn language() -> tree_sitter::Language {
    tree_sitter_go::LANGUAGE.into()
}

fn definition<'tree>(node: Node<'tree>, source: &[u8]) -> Option<Definition<'tree>> {
    match node.kind() {
        "function_declaration" => Some(Definition::new(
            SymbolKind::Function,
            field_text(node, "name", source)?,
        )),
        "method_declaration" => {
            let mut method = Definition::new(SymbolKind::Method, field_text(node, "name", source)?);
            method.receiver = receiver_type(node, source);
            Some(method)
        }
        // Interface method signatures, qualified by the interface.
        "method_elem" => Some(Definition::new(
            SymbolKind::Method,
            field_text(node, "name", source)?,
        )),
        "type_spec" => {
            let kind = match node.child_by_field_name("type")?.kind() {
                "struct_type" => SymbolKind::Struct,
                "interface_type" => SymbolKind::Interface,
                _ => return None,
            };
            Some(Definition::new(kind, field_text(node, "name", source)?))
        }
        "const_spec" => Some(Definition::new(
            SymbolKind::Constant,
            field_text(node, "name", source)?,
        )),
        _ => None,
    }
}

/// `(s *Server[T])` is `Server`.
fn receiver_type(method: Node<'_>, source: &[u8]) -> Option<String> {
    let receivers = method.child_by_field_name("receiver")?;
    let mut cursor = receivers.walk();
    let parameter = receivers
        .named_children(&mut cursor)
        .find(|parameter| parameter.kind() == "parameter_declaration")?;
    let mut receiver = parameter.child_by_field_name("type")?;
    loop {
        receiver = match receiver.kind() {
            "pointer_type" | "parenthesized_type" => receiver.named_child(0)?,
            "generic_type" => receiver.child_by_field_name("type")?,
            _ => return Some(text(receiver, source)),
        };
    }
}

fn call<'source>(node: Node<'_>, source: &'source [u8]) -> Option<&'source str> {
    if node.kind() != "call_expression" {
        return None;
    }
    callee_name(node.child_by_field_name("function")?, source)
}

/// `f`, `pkg.F`, `s.f` and `f[T]` all call their last name.
fn callee_name<'source>(callee: Node<'_>, source: &'source [u8]) -> Option<&'source str> {
    match callee.kind() {
        "identifier" => callee.utf8_text(source).ok(),
        "selector_expression" => field_str(callee, "field", source),
        "index_expression" | "generic_type" => {
            let inner = callee
                .child_by_field_name("operand")
                .or_else(|| callee.child_by_field_name("type"))?;
            callee_name(inner, source)
        }
        "type_identifier" => callee.utf8_text(source).ok(),
        _ => None,
    }
}

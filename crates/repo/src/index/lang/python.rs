//! Python: functions (sync and async), classes, methods, decorators.
//!
//! A decorated definition's symbol starts at its first decorator, so a frame
//! raised while evaluating `@app.route(...)` maps to the route it registers.
//! Calls inside decorators run in the enclosing scope and are counted there.
//!
//! Parameters follow Python's binding rules, which depend on position: those
//! before a `/` are positional-only, those after `*` or `*args` keyword-only.
//! So the list is built in order and the `/` marker re-marks what came before
//! it. Decorators are kept by dotted name (`app.route`), since that is what
//! tells a `staticmethod` from a method; class keyword arguments such as
//! `metaclass=` are not bases.

use tree_sitter::Node;

use super::{Definition, Grammar, field_str, field_text, has_keyword, text};
use crate::index::{Param, ParamKind, SymbolKind};

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
    let mut definition = Definition::new(kind, field_text(node, "name", source)?);
    match kind {
        SymbolKind::Class => {
            if let Some(superclasses) = node.child_by_field_name("superclasses") {
                definition.bases = bases(superclasses, source);
            }
        }
        _ => {
            if let Some(parameters) = node.child_by_field_name("parameters") {
                definition.params = params(parameters, source);
            }
            definition.is_async = has_keyword(node, "async");
        }
    }
    match node
        .parent()
        .filter(|parent| parent.kind() == "decorated_definition")
    {
        Some(decorated) => {
            definition.decorators = decorators(decorated, source);
            Some(definition.starting_at(decorated))
        }
        None => Some(definition),
    }
}

/// The parameters of a `def`, in order.
fn params(parameters: Node<'_>, source: &[u8]) -> Vec<Param> {
    let mut params: Vec<Param> = Vec::new();
    let mut keyword_only = false;
    let mut cursor = parameters.walk();
    for child in parameters.named_children(&mut cursor) {
        match child.kind() {
            "positional_separator" => {
                for param in &mut params {
                    if param.kind == ParamKind::Positional {
                        param.kind = ParamKind::PositionalOnly;
                    }
                }
            }
            "keyword_separator" => keyword_only = true,
            _ => {
                // Error recovery invents zero-width names; nobody can pass them.
                let Some(param) =
                    param(child, keyword_only, source).filter(|param| !param.name.is_empty())
                else {
                    continue;
                };
                keyword_only |= param.kind == ParamKind::VarPositional;
                params.push(param);
            }
        }
    }
    params
}

/// One parameter node; `None` for comments and error recovery debris.
fn param(node: Node<'_>, keyword_only: bool, source: &[u8]) -> Option<Param> {
    let named = |kind| {
        if keyword_only {
            ParamKind::KeywordOnly
        } else {
            kind
        }
    };
    let (name, kind, has_default) = match node.kind() {
        "identifier" => (text(node, source), named(ParamKind::Positional), false),
        "default_parameter" | "typed_default_parameter" => {
            let name = node.child_by_field_name("name")?;
            let kind = match name.kind() {
                "tuple_pattern" => ParamKind::Pattern,
                _ => named(ParamKind::Positional),
            };
            (text(name, source), kind, true)
        }
        // `a: int`, `*args: int`, `**kw: int`: the annotated node is the first child.
        "typed_parameter" => {
            let inner = first_named_child(node)?;
            return match inner.kind() {
                "typed_parameter" => None,
                _ => param(inner, keyword_only, source),
            };
        }
        "list_splat_pattern" => (splat_name(node, source)?, ParamKind::VarPositional, false),
        "dictionary_splat_pattern" => (splat_name(node, source)?, ParamKind::VarKeyword, false),
        "tuple_pattern" => (text(node, source), ParamKind::Pattern, false),
        _ => return None,
    };
    Some(Param {
        name,
        kind,
        has_default,
    })
}

/// `args` of `*args`.
fn splat_name(splat: Node<'_>, source: &[u8]) -> Option<String> {
    first_named_child(splat).map(|name| text(name, source))
}

fn first_named_child(node: Node<'_>) -> Option<Node<'_>> {
    let mut cursor = node.walk();
    node.named_children(&mut cursor)
        .find(|child| child.kind() != "comment")
}

/// The dotted names of a decorated definition's decorators, in source order.
fn decorators(decorated: Node<'_>, source: &[u8]) -> Vec<String> {
    let mut cursor = decorated.walk();
    decorated
        .named_children(&mut cursor)
        .filter(|child| child.kind() == "decorator")
        .filter_map(|decorator| first_named_child(decorator))
        .map(|expression| dotted_name(expression, source))
        .collect()
}

/// `app.route` for `app.route("/x")`: call arguments dropped wherever they
/// occur in the chain. Iterative, so a generated thousand-link chain cannot
/// overflow the stack. Anything else (`buttons[0].connect`, PEP 614) is kept
/// as its source text from the first non-name link.
fn dotted_name(expression: Node<'_>, source: &[u8]) -> String {
    let mut links = Vec::new();
    let mut node = expression;
    loop {
        match node.kind() {
            "call" => match node.child_by_field_name("function") {
                Some(function) => node = function,
                None => break,
            },
            "attribute" => match (
                node.child_by_field_name("object"),
                node.child_by_field_name("attribute"),
            ) {
                (Some(object), Some(attribute)) => {
                    links.push(text(attribute, source));
                    node = object;
                }
                _ => break,
            },
            _ => break,
        }
    }
    links.push(text(node, source));
    links.reverse();
    links.join(".")
}

/// A class's superclass expressions as written, keyword arguments left out.
fn bases(superclasses: Node<'_>, source: &[u8]) -> Vec<String> {
    let mut cursor = superclasses.walk();
    superclasses
        .named_children(&mut cursor)
        .filter(|argument| {
            !matches!(
                argument.kind(),
                "keyword_argument" | "dictionary_splat" | "comment"
            )
        })
        .map(|argument| text(argument, source))
        .collect()
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

//! Tests for the code index: one module per language family, then lookups
//! and the blob cache. Language tests snapshot a compact rendering of every
//! symbol: `kind qualified_name start-end calls=[..]`, indented by nesting.
//! Signature tests snapshot how each symbol is called instead (see
//! [`check_signatures`]).

mod cache;
mod ecmascript;
mod go;
mod java;
mod lookup;
mod python;
mod rust;
mod serde_compat;

use expect_test::Expect;

use super::{FileSymbols, Language, Param, Symbol, parse_symbols};

/// Parses `source` (common indentation trimmed, so line 1 is the first line
/// after the opening quote) and snapshots its symbols.
fn check(language: Language, source: &str, expect: Expect) {
    let file = parse_symbols(language, trim_indent(source).as_bytes());
    expect.assert_eq(&render(&file));
}

/// Like [`check`], but each symbol's line shows how it is called:
/// `kind qualified_name [async] [static] (params) @decorators bases=[..]`, a
/// parameter as `name:kind` (the serde name) with `=` when it has a default.
fn check_signatures(language: Language, source: &str, expect: Expect) {
    let file = parse_symbols(language, trim_indent(source).as_bytes());
    let mut rendered = String::new();
    if file.has_errors {
        rendered.push_str("has_errors\n");
    }
    for symbol in &file.symbols {
        rendered.push_str(&render_signature(symbol));
        rendered.push('\n');
    }
    expect.assert_eq(&rendered);
}

fn render_signature(symbol: &Symbol) -> String {
    let mut line = format!("{} {}", symbol.kind, symbol.qualified_name);
    if symbol.is_async {
        line.push_str(" async");
    }
    if symbol.is_static {
        line.push_str(" static");
    }
    if symbol.kind.is_function_like() {
        let params: Vec<String> = symbol.params.iter().map(render_param).collect();
        line.push_str(&format!(" ({})", params.join(", ")));
    }
    for decorator in &symbol.decorators {
        line.push_str(&format!(" @{decorator}"));
    }
    if !symbol.bases.is_empty() {
        line.push_str(&format!(" bases=[{}]", symbol.bases.join(", ")));
    }
    line
}

fn render_param(param: &Param) -> String {
    let kind = serde_json::to_value(param.kind).expect("serialising a ParamKind");
    let kind = kind.as_str().expect("ParamKind serialises as a string");
    let default = if param.has_default { "=" } else { "" };
    format!("{}:{kind}{default}", param.name)
}

fn render(file: &FileSymbols) -> String {
    let mut rendered = String::new();
    if file.has_errors {
        rendered.push_str("has_errors\n");
    }
    for symbol in &file.symbols {
        let depth = std::iter::successors(symbol.parent, |&idx| file.symbols[idx].parent).count();
        let indent = "  ".repeat(depth);
        let (kind, name, start, end) = (
            symbol.kind,
            &symbol.qualified_name,
            symbol.start_line,
            symbol.end_line,
        );
        rendered.push_str(&format!("{indent}{kind} {name} {start}-{end}"));
        if !symbol.calls.is_empty() {
            rendered.push_str(&format!(" calls=[{}]", symbol.calls.join(", ")));
        }
        rendered.push('\n');
    }
    rendered
}

/// Drops the newline after the opening quote and the indentation every
/// non-blank line shares, so fixtures can sit indented in the test.
fn trim_indent(text: &str) -> String {
    let text = text.strip_prefix('\n').unwrap_or(text);
    let indent = text
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| line.len() - line.trim_start().len())
        .min()
        .unwrap_or(0);
    text.lines()
        .map(|line| line.get(indent..).unwrap_or("").trim_end())
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

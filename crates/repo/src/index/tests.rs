//! Tests for the code index: one module per language family, then lookups
//! and the blob cache. Language tests snapshot a compact rendering of every
//! symbol: `kind qualified_name start-end calls=[..]`, indented by nesting.

mod cache;
mod ecmascript;
mod go;
mod java;
mod lookup;
mod python;
mod rust;

use expect_test::Expect;

use super::{FileSymbols, Language, parse_symbols};

/// Parses `source` (common indentation trimmed, so line 1 is the first line
/// after the opening quote) and snapshots its symbols.
fn check(language: Language, source: &str, expect: Expect) {
    let file = parse_symbols(language, trim_indent(source).as_bytes());
    expect.assert_eq(&render(&file));
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

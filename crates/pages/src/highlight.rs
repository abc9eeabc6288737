//! Server-side syntax highlighting of diffs and code, with tree-sitter
//! and the grammars the code index already builds (Python, JavaScript,
//! TypeScript, Rust, Go, Java); other files are shown plain.
//!
//! A diff is highlighted per file and per side: the context and added
//! lines form the new text, the context and removed lines the old one,
//! each parsed whole (a line alone parses badly), and each diff line takes
//! its markup from its side. Lines carry `add`, `del`, `hunk` and `file`
//! classes whatever the language.
//!
//! The source text is untrusted: every byte goes through [`escape`] before
//! any markup is added around it, which is what makes the `PreEscaped`
//! below sound.

use std::sync::OnceLock;

use maud::{Markup, PreEscaped, html};
use tree_sitter_highlight::{HighlightConfiguration, HighlightEvent, Highlighter};

/// The highlight names recognised; each becomes the class `hl-<name>`.
const NAMES: [&str; 7] = [
    "comment", "constant", "function", "keyword", "number", "string", "type",
];

/// Files larger than this are shown plain: highlighting is for reading.
const MAX_HIGHLIGHTED_BYTES: usize = 256 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lang {
    Python,
    JavaScript,
    TypeScript,
    Tsx,
    Rust,
    Go,
    Java,
}

impl Lang {
    fn of_path(path: &str) -> Option<Lang> {
        let extension = path.rsplit_once('.')?.1;
        Some(match extension {
            "py" | "pyi" => Lang::Python,
            "js" | "mjs" | "cjs" | "jsx" => Lang::JavaScript,
            "ts" | "mts" | "cts" => Lang::TypeScript,
            "tsx" => Lang::Tsx,
            "rs" => Lang::Rust,
            "go" => Lang::Go,
            "java" => Lang::Java,
            _ => return None,
        })
    }

    /// The language's configuration, built once; `None` when its query
    /// does not compile (then its files are shown plain).
    fn config(self) -> Option<&'static HighlightConfiguration> {
        static CONFIGS: [OnceLock<Option<HighlightConfiguration>>; 7] =
            [const { OnceLock::new() }; 7];
        let typescript_query = || {
            format!(
                "{}\n{}",
                tree_sitter_typescript::HIGHLIGHTS_QUERY,
                tree_sitter_javascript::HIGHLIGHT_QUERY
            )
        };
        CONFIGS[self as usize]
            .get_or_init(|| {
                let (language, query): (tree_sitter::Language, String) = match self {
                    Lang::Python => (
                        tree_sitter_python::LANGUAGE.into(),
                        tree_sitter_python::HIGHLIGHTS_QUERY.to_owned(),
                    ),
                    Lang::JavaScript => (
                        tree_sitter_javascript::LANGUAGE.into(),
                        tree_sitter_javascript::HIGHLIGHT_QUERY.to_owned(),
                    ),
                    Lang::TypeScript => (
                        tree_sitter_typescript::LANGUAGE_TYPESCRIPT.into(),
                        typescript_query(),
                    ),
                    Lang::Tsx => (tree_sitter_typescript::LANGUAGE_TSX.into(), typescript_query()),
                    Lang::Rust => (
                        tree_sitter_rust::LANGUAGE.into(),
                        tree_sitter_rust::HIGHLIGHTS_QUERY.to_owned(),
                    ),
                    Lang::Go => (
                        tree_sitter_go::LANGUAGE.into(),
                        tree_sitter_go::HIGHLIGHTS_QUERY.to_owned(),
                    ),
                    Lang::Java => (
                        tree_sitter_java::LANGUAGE.into(),
                        tree_sitter_java::HIGHLIGHTS_QUERY.to_owned(),
                    ),
                };
                let mut config =
                    HighlightConfiguration::new(language, format!("{self:?}"), &query, "", "")
                        .inspect_err(|error| {
                            tracing::warn!(language = ?self, %error, "a highlight query does not compile; shown plain")
                        })
                        .ok()?;
                config.configure(&NAMES);
                Some(config)
            })
            .as_ref()
    }
}

/// `text` with `&`, `<`, `>`, `"` and `'` as entities.
pub fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            _ => escaped.push(c),
        }
    }
    escaped
}

/// `source`'s lines as escaped HTML, highlighted when `path` names a
/// known language; as many lines as `source.lines()` has.
fn highlight_lines(path: &str, source: &str) -> Vec<String> {
    let plain = || source.lines().map(escape).collect();
    if source.len() > MAX_HIGHLIGHTED_BYTES {
        return plain();
    }
    let Some(config) = Lang::of_path(path).and_then(Lang::config) else {
        return plain();
    };
    let mut highlighter = Highlighter::new();
    let Ok(events) = highlighter.highlight(config, source.as_bytes(), None, None, |_| None) else {
        return plain();
    };
    let mut lines = Vec::new();
    let mut line = String::new();
    // Open highlights, closed at each line's end and reopened on the next,
    // so every line is well-formed on its own.
    let mut open: Vec<&str> = Vec::new();
    for event in events {
        match event {
            Ok(HighlightEvent::HighlightStart(highlight)) => {
                let name = NAMES.get(highlight.0).copied().unwrap_or("none");
                open.push(name);
                line.push_str(&format!("<span class=\"hl-{name}\">"));
            }
            Ok(HighlightEvent::HighlightEnd) => {
                open.pop();
                line.push_str("</span>");
            }
            Ok(HighlightEvent::Source { start, end }) => {
                let Some(text) = source.get(start..end) else {
                    return plain();
                };
                let mut pieces = text.split('\n').peekable();
                while let Some(piece) = pieces.next() {
                    line.push_str(&escape(piece.trim_end_matches('\r')));
                    if pieces.peek().is_some() {
                        line.push_str(&"</span>".repeat(open.len()));
                        lines.push(std::mem::take(&mut line));
                        for name in &open {
                            line.push_str(&format!("<span class=\"hl-{name}\">"));
                        }
                    }
                }
            }
            Err(_) => return plain(),
        }
    }
    line.push_str(&"</span>".repeat(open.len()));
    lines.push(line);
    let count = source.lines().count();
    if lines.len() < count {
        return plain();
    }
    lines.truncate(count);
    lines
}

/// Lines `first..` of a file at `path`, numbered, the lines in `focus`
/// (1-based, inclusive) marked.
pub fn code(path: &str, source: &str, first: usize, focus: (usize, usize)) -> Markup {
    let lines = highlight_lines(path, source);
    html! {
        pre.code {
            code {
                @for (offset, line) in lines.iter().enumerate() {
                    @let number = first + offset;
                    span.line.focus[number >= focus.0 && number <= focus.1] {
                        span.num aria-hidden="true" { (number) }
                        (PreEscaped(line))
                    }
                }
            }
        }
    }
}

/// What a diff line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `diff --git`, `---`, `+++`, `index`, mode lines.
    File,
    /// `@@ … @@`.
    Hunk,
    Context,
    Add,
    Del,
    /// `\ No newline at end of file`, or anything else.
    Other,
}

fn kind(line: &str, in_hunk: bool) -> Kind {
    if line.starts_with("diff ") || (!in_hunk && !line.starts_with("@@")) {
        return Kind::File;
    }
    match line.as_bytes().first() {
        Some(b'@') if line.starts_with("@@") => Kind::Hunk,
        Some(b'+') => Kind::Add,
        Some(b'-') => Kind::Del,
        Some(b' ') | None => Kind::Context,
        _ => Kind::Other,
    }
}

/// The path a file header names (`+++ b/x`, else `--- a/x`).
fn header_path(headers: &[&str]) -> String {
    let named = |prefix: &str| {
        headers.iter().find_map(|line| {
            let path = line.strip_prefix(prefix)?.trim_end();
            (path != "/dev/null").then(|| {
                path.strip_prefix("b/")
                    .or_else(|| path.strip_prefix("a/"))
                    .unwrap_or(path)
                    .to_owned()
            })
        })
    };
    named("+++ ").or_else(|| named("--- ")).unwrap_or_default()
}

/// A unified diff, highlighted (see the module doc).
pub fn diff(patch: &str) -> Markup {
    let lines: Vec<&str> = patch.lines().collect();
    let mut rendered: Vec<(Kind, String)> = Vec::with_capacity(lines.len());
    let mut i = 0;
    while i < lines.len() {
        // One file: its header lines, then its hunks.
        let start = i;
        let mut headers = Vec::new();
        while i < lines.len() && kind(lines[i], false) == Kind::File {
            if i > start && lines[i].starts_with("diff ") {
                break;
            }
            headers.push(lines[i]);
            i += 1;
        }
        let body_start = i;
        while i < lines.len() && !lines[i].starts_with("diff ") {
            // A `--- ` right after a hunk's end begins the next file of a
            // diff without `diff --git` lines.
            if lines[i].starts_with("--- ")
                && lines
                    .get(i + 1)
                    .is_some_and(|next| next.starts_with("+++ "))
            {
                break;
            }
            i += 1;
        }
        let body = &lines[body_start..i];
        let path = header_path(&headers);
        for header in &headers {
            rendered.push((Kind::File, escape(header)));
        }
        let kinds: Vec<Kind> = body.iter().map(|line| kind(line, true)).collect();
        let side = |wanted: Kind| -> String {
            let mut text = String::new();
            for (line, kind) in body.iter().zip(&kinds) {
                if *kind == Kind::Context || *kind == wanted {
                    text.push_str(line.get(1..).unwrap_or(""));
                    text.push('\n');
                }
            }
            text
        };
        let new_side = highlight_lines(&path, &side(Kind::Add));
        let old_side = highlight_lines(&path, &side(Kind::Del));
        let (mut new_at, mut old_at) = (0, 0);
        for (line, kind) in body.iter().zip(kinds) {
            let marked = |side: &[String], at: usize| {
                side.get(at)
                    .cloned()
                    .unwrap_or_else(|| escape(line.get(1..).unwrap_or("")))
            };
            let html = match kind {
                Kind::Context => {
                    let html = marked(&new_side, new_at);
                    new_at += 1;
                    old_at += 1;
                    format!(" {html}")
                }
                Kind::Add => {
                    let html = marked(&new_side, new_at);
                    new_at += 1;
                    format!("+{html}")
                }
                Kind::Del => {
                    let html = marked(&old_side, old_at);
                    old_at += 1;
                    format!("-{html}")
                }
                Kind::File | Kind::Hunk | Kind::Other => escape(line),
            };
            rendered.push((kind, html));
        }
        if i == start {
            // Never stall on a line no rule consumed.
            rendered.push((Kind::Other, escape(lines[i])));
            i += 1;
        }
    }
    html! {
        pre.diff {
            code {
                @for (kind, html) in &rendered {
                    span.line.add[*kind == Kind::Add].del[*kind == Kind::Del]
                        .hunk[*kind == Kind::Hunk].file[*kind == Kind::File] {
                        (PreEscaped(html))
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATCH: &str = "diff --git a/app.py b/app.py\n\
        --- a/app.py\n\
        +++ b/app.py\n\
        @@ -1,3 +1,3 @@\n \
        def total(items):\n\
        -    return sum(items) / len(items)\n\
        +    return sum(items) / max(len(items), 1)  # \"<script>\"\n \
        # done\n";

    #[test]
    fn every_grammar_query_compiles() {
        for lang in [
            Lang::Python,
            Lang::JavaScript,
            Lang::TypeScript,
            Lang::Tsx,
            Lang::Rust,
            Lang::Go,
            Lang::Java,
        ] {
            assert!(lang.config().is_some(), "{lang:?}");
        }
    }

    #[test]
    fn a_diff_is_classed_by_line_and_highlighted_by_language() {
        let html = diff(PATCH).into_string();
        assert!(html.contains("<span class=\"line file\">diff --git a/app.py b/app.py</span>"));
        assert!(html.contains("<span class=\"line hunk\">@@ -1,3 +1,3 @@</span>"));
        assert!(html.contains("<span class=\"line del\">-"), "{html}");
        assert!(html.contains("<span class=\"line add\">+"), "{html}");
        assert!(
            html.contains("<span class=\"hl-keyword\">def</span>"),
            "{html}"
        );
        assert!(
            html.contains("<span class=\"hl-keyword\">return</span>"),
            "{html}"
        );
        // Text from the patch stays text, inside the comment's highlight.
        assert!(html.contains("&quot;&lt;script&gt;&quot;"), "{html}");
        assert!(!html.contains("<script>"));
        let lines = html.matches("class=\"line").count();
        assert_eq!(lines, PATCH.lines().count());
    }

    #[test]
    fn unknown_languages_and_odd_diffs_are_plain_escaped_text() {
        let html = diff("--- a/x.txt\n+++ b/x.txt\n@@ -1 +1 @@\n-<b>\n+<i>\n\\ No newline at end of file\nstray <tail>\n").into_string();
        assert!(
            html.contains("<span class=\"line del\">-&lt;b&gt;</span>"),
            "{html}"
        );
        assert!(
            html.contains("<span class=\"line add\">+&lt;i&gt;</span>"),
            "{html}"
        );
        assert!(html.contains("stray &lt;tail&gt;"), "{html}");
        assert!(!html.contains("<b>") && !html.contains("<i>"));
        assert_eq!(
            diff("").into_string(),
            "<pre class=\"diff\"><code></code></pre>"
        );
    }

    #[test]
    fn code_context_marks_the_focus_lines() {
        let html = code("m.py", "a = 1\nb = '<x>'\nc = 3\n", 10, (11, 11)).into_string();
        assert_eq!(html.matches("class=\"line focus\"").count(), 1);
        assert!(html.contains("<span class=\"num\" aria-hidden=\"true\">11</span>"));
        assert!(html.contains("&#39;&lt;x&gt;&#39;"), "{html}");
    }
}

//! Writing a replay test: a test file that calls one function with the
//! values a production event recorded.
//!
//! Event values enter the file only as data: one JSON document, written as
//! a string literal in which every character that could end the literal,
//! start an escape or a comment (quotes, backslashes, newlines, `*/`,
//! `"""`) is itself escaped, and decoded when the test runs. Nothing from
//! the event is ever code: names in the file (module, class, function,
//! parameters) come from the code index of the repository, and are checked
//! to be plain identifiers before they are written.
//!
//! The test calls the function and does nothing else: it fails when the
//! call raises (the exception propagates to the runner, which reports its
//! type and where it was raised) and passes when the call returns.
//!
//! The JSON document is `[constructor arguments, call arguments]`, each a
//! list in the order the call writes them. Values JSON has no form for are
//! tagged, and every mapping is, so that no plain JSON object is ever data:
//!
//! | value              | JSON                                   |
//! |--------------------|----------------------------------------|
//! | `None` / `null`    | `null`                                 |
//! | bool               | `true` / `false`                       |
//! | int                | its digits                             |
//! | float              | a number with `.` or an exponent       |
//! | str                | a string (ASCII, `\u` escapes)         |
//! | list               | an array                               |
//! | tuple              | `{"$tuple": [items]}`                  |
//! | bytes              | `{"$bytes": "hex"}`                    |
//! | dict               | `{"$dict": [[key, value], ...]}`       |
//!
//! A dict whose key is `"$bytes"` is `{"$dict": [["$bytes", ...]]}`: tags
//! are never keys of data. JavaScript reads a tuple as an array, bytes as a
//! `Buffer` and a dict as a plain object (keys as own properties, even
//! `__proto__`).

use std::fmt::Write as _;

use super::literal::Literal;

/// The test runner a replay test is written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TestFramework {
    /// A `unittest.TestCase` (pytest runs it too).
    PythonUnittest,
    /// Node's built-in `node:test`, the one JavaScript runner whose
    /// structured report the gate reads.
    NodeTest,
}

impl TestFramework {
    fn is_python(self) -> bool {
        self == Self::PythonUnittest
    }
}

/// What the test calls.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Callee {
    /// A module-level function.
    Function {
        /// Its name.
        name: String,
    },
    /// A Python `@staticmethod` or a JavaScript `static` method.
    StaticMethod {
        /// Its class.
        class: String,
        /// Its name.
        name: String,
    },
    /// A Python `@classmethod` (the test does not pass `cls`).
    ClassMethod {
        /// Its class.
        class: String,
        /// Its name.
        name: String,
    },
    /// A method, on a receiver built as `Class(init…)`.
    Method {
        /// Its class.
        class: String,
        /// Its name.
        name: String,
        /// The constructor's arguments.
        init: Vec<Arg>,
    },
}

/// One argument of the call.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Arg {
    /// The parameter's name (Python keywords use it; JS shows it in a comment).
    pub name: String,
    /// Its value.
    pub value: Literal,
    /// Passed by keyword (Python only); otherwise positionally, in order.
    pub keyword: bool,
}

/// Everything a replay test file is written from.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ReplayTest {
    /// The runner it is written for.
    pub framework: TestFramework,
    /// Python: the dotted module (`httpie.sessions`); JS: the module
    /// specifier relative to the test file (`../lib/cart.js`).
    pub module: String,
    /// JS only: the test file is an ES module.
    pub esm: bool,
    /// What it calls.
    pub callee: Callee,
    /// The call's arguments.
    pub args: Vec<Arg>,
    /// The callee is async: the test awaits it.
    pub is_async: bool,
    /// The exception production raised (`TypeError`); written only when it
    /// is a (dotted) identifier.
    pub exception_type: String,
    /// The event's id; written only when it is hex and dashes.
    pub event_id: String,
    /// The test's name: a Python identifier starting with `test`; for JS a
    /// title of letters, digits, `_` and spaces.
    pub test_name: String,
}

/// Why a test cannot be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum RenderError {
    /// A name to be written as code is not a plain identifier.
    #[error("the {what} {name:?} is not a plain identifier")]
    NotAnIdentifier {
        /// Which name (`module`, `class`, `function`, `parameter`, `test name`).
        what: &'static str,
        /// The name, cut to a readable length.
        name: String,
    },
    /// A parameter is passed by keyword twice.
    #[error("the parameter {0} is passed twice")]
    DuplicateKeyword(String),
    /// JavaScript has no keyword arguments.
    #[error("JavaScript has no keyword arguments ({0})")]
    KeywordInJs(String),
    /// A value the decoder could not rebuild (a non-finite float, an
    /// integer that is not digits, an unhashable Python dict key).
    #[error("a value cannot be written: {0}")]
    BadValue(&'static str),
    /// Values nested deeper than the writer goes.
    #[error("values are nested deeper than {MAX_NESTING} levels")]
    TooDeep,
}

/// Deeper values are refused (the literal reader stops far earlier).
const MAX_NESTING: usize = 200;
/// Longest identifier or module path written.
const MAX_NAME: usize = 200;
/// Characters of the escaped JSON per line of the source.
const CHUNK: usize = 76;

/// Writes the replay test file.
pub(crate) fn render(test: &ReplayTest) -> Result<String, RenderError> {
    let python = test.framework.is_python();
    check_names(test, python)?;
    let init = match &test.callee {
        Callee::Method { init, .. } => ordered(init, python)?,
        _ => Vec::new(),
    };
    let args = ordered(&test.args, python)?;
    let mut document = String::from("[[");
    write_values(&mut document, &init, python)?;
    document.push_str("],[");
    write_values(&mut document, &args, python)?;
    document.push_str("]]");
    let chunks = source_chunks(&document);
    let header = header(test);
    Ok(if python {
        python_file(test, &header, &chunks, &init, &args)
    } else {
        js_file(test, &header, &chunks, &init, &args)
    })
}

/// The arguments in the order they are written: positional ones first, in
/// order, then keywords (a keyword before a positional one is a syntax
/// error in Python; the call means the same).
fn ordered(args: &[Arg], python: bool) -> Result<Vec<&Arg>, RenderError> {
    let mut seen = std::collections::HashSet::new();
    for arg in args.iter().filter(|arg| arg.keyword) {
        if !python {
            return Err(RenderError::KeywordInJs(arg.name.clone()));
        }
        if !seen.insert(arg.name.as_str()) {
            return Err(RenderError::DuplicateKeyword(arg.name.clone()));
        }
    }
    let positional = args.iter().filter(|arg| !arg.keyword);
    let keyword = args.iter().filter(|arg| arg.keyword);
    Ok(positional.chain(keyword).collect())
}

fn write_values(out: &mut String, args: &[&Arg], python: bool) -> Result<(), RenderError> {
    for (i, arg) in args.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_json(out, &arg.value, python, 0)?;
    }
    Ok(())
}

/// The tagged JSON of one value (see the module docs), ASCII only.
fn write_json(
    out: &mut String,
    value: &Literal,
    python: bool,
    depth: usize,
) -> Result<(), RenderError> {
    if depth > MAX_NESTING {
        return Err(RenderError::TooDeep);
    }
    let items = |out: &mut String, items: &[Literal]| -> Result<(), RenderError> {
        out.push('[');
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            write_json(out, item, python, depth + 1)?;
        }
        out.push(']');
        Ok(())
    };
    match value {
        Literal::Null => out.push_str("null"),
        Literal::Bool(flag) => out.push_str(if *flag { "true" } else { "false" }),
        Literal::Int(digits) => {
            let magnitude = digits.strip_prefix('-').unwrap_or(digits);
            if magnitude.is_empty() || !magnitude.bytes().all(|b| b.is_ascii_digit()) {
                return Err(RenderError::BadValue(
                    "an integer that is not decimal digits",
                ));
            }
            out.push_str(digits);
        }
        Literal::Float(float) => {
            if !float.is_finite() {
                return Err(RenderError::BadValue("a float that is not finite"));
            }
            let text = serde_json::Number::from_f64(*float)
                .map(|number| number.to_string())
                .ok_or(RenderError::BadValue("a float that is not finite"))?;
            out.push_str(&text);
            // `1e16` and `1.0` read as floats; a bare `1` would be an int.
            if !text.contains(['.', 'e', 'E']) {
                out.push_str(".0");
            }
        }
        Literal::Str(text) => write_json_string(out, text),
        Literal::Bytes(bytes) => {
            out.push_str("{\"$bytes\":\"");
            out.push_str(&hex::encode(bytes));
            out.push_str("\"}");
        }
        Literal::List(list) => items(out, list)?,
        Literal::Tuple(tuple) => {
            out.push_str("{\"$tuple\":");
            items(out, tuple)?;
            out.push('}');
        }
        Literal::Dict(pairs) => {
            out.push_str("{\"$dict\":[");
            for (i, (key, item)) in pairs.iter().enumerate() {
                if python && !hashable(key) {
                    return Err(RenderError::BadValue("a dict key Python cannot hash"));
                }
                if i > 0 {
                    out.push(',');
                }
                out.push('[');
                write_json(out, key, python, depth + 1)?;
                out.push(',');
                write_json(out, item, python, depth + 1)?;
                out.push(']');
            }
            out.push_str("]}");
        }
    }
    Ok(())
}

fn hashable(literal: &Literal) -> bool {
    match literal {
        Literal::List(_) | Literal::Dict(_) => false,
        Literal::Tuple(items) => items.iter().all(hashable),
        _ => true,
    }
}

/// A JSON string in ASCII: everything else as `\u` escapes (UTF-16, so a
/// character outside the BMP is a surrogate pair, as JSON requires).
fn write_json_string(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out.push('"');
}

/// The ASCII JSON as the contents of string literals, one per line: every
/// character but letters, digits and ` ,:_-.[]{}` as a `\xHH` escape,
/// which Python and JavaScript read alike, so nothing in it can end the
/// literal or start anything else.
fn source_chunks(json: &str) -> Vec<String> {
    let mut chunks = Vec::new();
    let mut chunk = String::new();
    for byte in json.bytes() {
        if chunk.len() + 4 > CHUNK {
            chunks.push(std::mem::take(&mut chunk));
        }
        if byte.is_ascii_alphanumeric() || b" ,:_-.[]{}".contains(&byte) {
            chunk.push(char::from(byte));
        } else {
            let _ = write!(chunk, "\\x{byte:02x}");
        }
    }
    if !chunk.is_empty() || chunks.is_empty() {
        chunks.push(chunk);
    }
    chunks
}

const PYTHON_KEYWORDS: &[&str] = &[
    "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue",
    "def", "del", "elif", "else", "except", "finally", "for", "from", "global", "if", "import",
    "in", "is", "lambda", "nonlocal", "not", "or", "pass", "raise", "return", "try", "while",
    "with", "yield",
];

const JS_RESERVED: &[&str] = &[
    "await",
    "break",
    "case",
    "catch",
    "class",
    "const",
    "continue",
    "debugger",
    "default",
    "delete",
    "do",
    "else",
    "enum",
    "export",
    "extends",
    "false",
    "finally",
    "for",
    "function",
    "if",
    "implements",
    "import",
    "in",
    "instanceof",
    "interface",
    "let",
    "new",
    "null",
    "package",
    "private",
    "protected",
    "public",
    "return",
    "static",
    "super",
    "switch",
    "this",
    "throw",
    "true",
    "try",
    "typeof",
    "var",
    "void",
    "while",
    "with",
    "yield",
    "arguments",
    "eval",
    "__proto__",
    "prototype",
    "constructor",
];

fn is_identifier(name: &str, python: bool) -> bool {
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    let extra = |c: char| !python && c == '$';
    name.len() <= MAX_NAME
        && (first.is_ascii_alphabetic() || first == '_' || extra(first))
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || extra(c))
        && !if python { PYTHON_KEYWORDS } else { JS_RESERVED }.contains(&name)
}

fn identifier(what: &'static str, name: &str, python: bool) -> Result<(), RenderError> {
    if is_identifier(name, python) {
        Ok(())
    } else {
        Err(RenderError::NotAnIdentifier {
            what,
            name: name.chars().take(80).collect(),
        })
    }
}

/// A JS module specifier is written inside quotes: only path characters.
fn is_specifier(module: &str) -> bool {
    !module.is_empty()
        && module.len() <= MAX_NAME
        && module
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.@/-".contains(&b))
}

/// A JS test title is written inside quotes: words and spaces.
fn is_title(title: &str) -> bool {
    !title.trim().is_empty()
        && title.len() <= MAX_NAME
        && title
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b' ')
}

fn check_names(test: &ReplayTest, python: bool) -> Result<(), RenderError> {
    if python {
        if test.module.len() > MAX_NAME {
            return Err(RenderError::NotAnIdentifier {
                what: "module",
                name: test.module.chars().take(80).collect(),
            });
        }
        for part in test.module.split('.') {
            identifier("module", part, true)?;
        }
        identifier("test name", &test.test_name, true)?;
        if !test.test_name.starts_with("test") {
            // unittest and pytest collect only `test…` methods.
            return Err(RenderError::NotAnIdentifier {
                what: "test name",
                name: test.test_name.chars().take(80).collect(),
            });
        }
    } else {
        if !is_specifier(&test.module) {
            return Err(RenderError::NotAnIdentifier {
                what: "module",
                name: test.module.chars().take(80).collect(),
            });
        }
        if !is_title(&test.test_name) {
            return Err(RenderError::NotAnIdentifier {
                what: "test name",
                name: test.test_name.chars().take(80).collect(),
            });
        }
    }
    match &test.callee {
        Callee::Function { name } => identifier("function", name, python)?,
        Callee::StaticMethod { class, name } | Callee::ClassMethod { class, name } => {
            identifier("class", class, python)?;
            identifier("function", name, python)?;
        }
        Callee::Method { class, name, init } => {
            identifier("class", class, python)?;
            identifier("function", name, python)?;
            for arg in init {
                identifier("parameter", &arg.name, python)?;
            }
        }
    }
    for arg in &test.args {
        identifier("parameter", &arg.name, python)?;
    }
    Ok(())
}

/// The event id when it is only hex and dashes.
fn event_id(test: &ReplayTest) -> Option<&str> {
    let id = test.event_id.as_str();
    (!id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-'))
        .then_some(id)
}

/// The exception type when it is a (dotted) identifier.
fn exception_type(test: &ReplayTest, python: bool) -> Option<&str> {
    let name = test.exception_type.as_str();
    (!name.is_empty()
        && name.len() <= MAX_NAME
        && name.split('.').all(|part| is_identifier(part, python)))
    .then_some(name)
}

fn header(test: &ReplayTest) -> String {
    match event_id(test) {
        Some(id) => format!("Written by suture from production event {id}."),
        None => "Written by suture from a production event.".to_string(),
    }
}

/// `Class.name` / `name` as the call writes it after the module.
fn target(callee: &Callee) -> String {
    match callee {
        Callee::Function { name } => name.clone(),
        Callee::StaticMethod { class, name }
        | Callee::ClassMethod { class, name }
        | Callee::Method { class, name, .. } => format!("{class}.{name}"),
    }
}

/// `{head}(` and one argument per line (`args[0],  # name`,
/// `name=args[1],`), then `){tail}`; `{head}(){tail}` without arguments.
fn write_call(
    out: &mut String,
    head: &str,
    list: &str,
    args: &[&Arg],
    indent: &str,
    tail: &str,
    python: bool,
) {
    if args.is_empty() {
        let _ = writeln!(out, "{indent}{head}(){tail}");
        return;
    }
    let _ = writeln!(out, "{indent}{head}(");
    for (i, arg) in args.iter().enumerate() {
        let name = &arg.name;
        let _ = if arg.keyword {
            writeln!(out, "{indent}{indent}{name}={list}[{i}],")
        } else if python {
            writeln!(out, "{indent}{indent}{list}[{i}],  # {name}")
        } else {
            writeln!(out, "{indent}{indent}{list}[{i}], // {name}")
        };
    }
    let _ = writeln!(out, "{indent}){tail}");
}

const PYTHON_DECODER: &str = r#"def decode(value):
    """Rebuilds the values from their tagged JSON."""
    if isinstance(value, list):
        return [decode(item) for item in value]
    if isinstance(value, dict):
        ((tag, body),) = value.items()
        if tag == "$bytes":
            return bytes.fromhex(body)
        if tag == "$tuple":
            return tuple(decode(item) for item in body)
        if tag == "$dict":
            return {decode(key): decode(item) for key, item in body}
        raise ValueError("unknown tag " + tag)
    return value
"#;

const DOCUMENT_COMMENT: &str =
    "The arguments as JSON, [constructor arguments, call arguments], with bytes,
tuples and dicts tagged: {\"$bytes\": hex}, {\"$tuple\": [...]}, {\"$dict\": [[key, value], ...]}.";

fn comment(out: &mut String, prefix: &str, text: &str) {
    for line in text.lines() {
        let _ = writeln!(out, "{prefix} {line}");
    }
}

fn python_file(
    test: &ReplayTest,
    header: &str,
    chunks: &[String],
    init: &[&Arg],
    args: &[&Arg],
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# {header}");
    let shown = target(&test.callee);
    let what = match exception_type(test, true) {
        Some(exception) => format!("raised {exception} in production"),
        None => "failed in production".to_string(),
    };
    let _ = writeln!(
        out,
        "\"\"\"Calls {}.{shown} with the values it held when it {what}.\n\nThe test fails while the call raises and passes once it returns.\n\"\"\"",
        test.module
    );
    if test.is_async {
        out.push_str("import asyncio\n");
    }
    out.push_str("import json\nimport unittest\n\n");
    let _ = writeln!(out, "import {} as subject\n", test.module);
    comment(&mut out, "#", DOCUMENT_COMMENT);
    out.push_str("VALUES = (\n");
    for chunk in chunks {
        let _ = writeln!(out, "    \"{chunk}\"");
    }
    out.push_str(")\n\n\n");
    out.push_str(PYTHON_DECODER);
    out.push_str("\n\n");
    let (define, wait) = if test.is_async {
        ("async def", "await ")
    } else {
        ("def", "")
    };
    let _ = writeln!(out, "{define} replay(values):");
    out.push_str("    init, args = values\n");
    let call = match &test.callee {
        Callee::Method { class, name, .. } => {
            let head = format!("receiver = subject.{class}");
            write_call(&mut out, &head, "init", init, "    ", "", true);
            format!("receiver.{name}")
        }
        other => format!("subject.{}", target(other)),
    };
    write_call(
        &mut out,
        &format!("return {wait}{call}"),
        "args",
        args,
        "    ",
        "",
        true,
    );
    out.push_str("\n\n");
    let class = class_name(&test.test_name);
    let _ = writeln!(out, "class {class}(unittest.TestCase):");
    let _ = writeln!(out, "    def {}(self):", test.test_name);
    if test.is_async {
        out.push_str("        asyncio.run(replay(decode(json.loads(VALUES))))\n");
    } else {
        out.push_str("        replay(decode(json.loads(VALUES)))\n");
    }
    out.push_str("\n\nif __name__ == \"__main__\":\n    unittest.main()\n");
    out
}

/// `test_update_headers_x` → `TestUpdateHeadersX` (from a checked identifier).
fn class_name(test_name: &str) -> String {
    let mut name = String::from("Test");
    for part in test_name.trim_start_matches("test").split('_') {
        let mut chars = part.chars();
        if let Some(first) = chars.next() {
            name.push(first.to_ascii_uppercase());
            name.extend(chars);
        }
    }
    if name == "Test" {
        name.push_str("Replay");
    }
    name
}

const JS_DECODER: &str = "function decode(value) {
  // Rebuilds the values from their tagged JSON.
  if (Array.isArray(value)) {
    return value.map(decode);
  }
  if (value !== null && typeof value === 'object') {
    const [tag] = Object.keys(value);
    const body = value[tag];
    if (tag === '$bytes') {
      return Buffer.from(body, 'hex');
    }
    if (tag === '$tuple') {
      return body.map(decode);
    }
    if (tag === '$dict') {
      const object = {};
      for (const [key, item] of body) {
        Object.defineProperty(object, String(decode(key)), {
          value: decode(item),
          writable: true,
          enumerable: true,
          configurable: true,
        });
      }
      return object;
    }
    throw new Error('unknown tag ' + tag);
  }
  return value;
}
";

fn js_file(
    test: &ReplayTest,
    header: &str,
    chunks: &[String],
    init: &[&Arg],
    args: &[&Arg],
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "// {header}");
    let shown = target(&test.callee);
    let what = match exception_type(test, false) {
        Some(exception) => format!("threw {exception} in production"),
        None => "failed in production".to_string(),
    };
    let _ = writeln!(
        out,
        "// Calls {shown} with the values it held when it {what}.\n// The test fails while the call throws and passes once it returns."
    );
    if !test.esm {
        out.push_str("'use strict';\n");
    }
    out.push('\n');
    let module = &test.module;
    match (test.framework, test.esm) {
        (TestFramework::NodeTest, false) => out.push_str("const test = require('node:test');\n"),
        (TestFramework::NodeTest, true) => out.push_str("import test from 'node:test';\n"),
        (TestFramework::PythonUnittest, _) => {}
    }
    if test.esm {
        let _ = writeln!(out, "import * as subject from '{module}';\n");
    } else {
        let _ = writeln!(out, "const subject = require('{module}');\n");
    }
    comment(&mut out, "//", DOCUMENT_COMMENT);
    out.push_str("const VALUES = [\n");
    for chunk in chunks {
        let _ = writeln!(out, "  '{chunk}',");
    }
    out.push_str("].join('');\n\n");
    out.push_str(JS_DECODER);
    out.push('\n');
    let (define, wait) = if test.is_async {
        ("async function", "await ")
    } else {
        ("function", "")
    };
    let _ = writeln!(out, "{define} replay([init, args]) {{");
    let call = match &test.callee {
        Callee::Method { class, name, .. } => {
            let head = format!("const receiver = new subject.{class}");
            write_call(&mut out, &head, "init", init, "  ", ";", false);
            format!("receiver.{name}")
        }
        other => format!("subject.{}", target(other)),
    };
    write_call(
        &mut out,
        &format!("return {wait}{call}"),
        "args",
        args,
        "  ",
        ";",
        false,
    );
    out.push_str("}\n\n");
    let title = &test.test_name;
    let asyncness = if test.is_async { "async " } else { "" };
    let _ = writeln!(out, "test('{title}', {asyncness}() => {{");
    let _ = writeln!(out, "  {wait}replay(decode(JSON.parse(VALUES)));");
    out.push_str("});\n");
    out
}

#[cfg(test)]
#[allow(
    clippy::disallowed_methods,
    reason = "the rendered files are run by the real interpreters, the only proof they mean what they say"
)]
mod tests {
    use super::*;
    use serde_json::{Value, json};
    use std::path::Path;
    use std::process::{Command, Output};

    fn python() -> String {
        std::env::var("SUTURE_TEST_PYTHON")
            .ok()
            .filter(|path| Path::new(path).exists())
            .or_else(|| {
                ["/usr/bin/python3", "/usr/local/bin/python3"]
                    .into_iter()
                    .find(|path| Path::new(path).exists())
                    .map(String::from)
            })
            .unwrap_or_else(|| "python3".to_string())
    }

    const PYTHON_SUBJECT: &str = r#"import json, struct

def typed(v):
    if v is None: return ["none"]
    if isinstance(v, bool): return ["bool", v]
    if isinstance(v, int): return ["int", str(v)]
    if isinstance(v, float): return ["float", struct.pack(">d", v).hex()]
    if isinstance(v, str): return ["str", v]
    if isinstance(v, bytes): return ["bytes", v.hex()]
    if isinstance(v, list): return ["list", [typed(x) for x in v]]
    if isinstance(v, tuple): return ["tuple", [typed(x) for x in v]]
    if isinstance(v, dict): return ["dict", [[typed(k), typed(x)] for k, x in v.items()]]
    return ["other", repr(v)]

def record(where, args, kwargs):
    print("RECORDED " + json.dumps({"where": where, "args": [typed(a) for a in args],
                                    "kwargs": [[k, typed(v)] for k, v in kwargs.items()]}), flush=True)

def call(*args, **kwargs):
    record("call", args, kwargs)

async def acall(*args, **kwargs):
    record("acall", args, kwargs)

def fail(*args, **kwargs):
    raise LookupError("replayed failure")

class Box:
    def __init__(self, *args, **kwargs):
        record("init", args, kwargs)

    def method(self, *args, **kwargs):
        record("method", args, kwargs)

    @staticmethod
    def static(*args, **kwargs):
        record("static", args, kwargs)

    @classmethod
    def klass(cls, *args, **kwargs):
        record("klass " + cls.__name__, args, kwargs)
"#;

    const JS_TYPED: &str = r#"
function bits(n) { const b = Buffer.alloc(8); b.writeDoubleBE(n); return b.toString('hex'); }
function typed(v) {
  if (v === null) return ['none'];
  if (typeof v === 'boolean') return ['bool', v];
  if (typeof v === 'number') return ['number', bits(v)];
  if (typeof v === 'string') return ['str', v];
  if (Buffer.isBuffer(v)) return ['bytes', v.toString('hex')];
  if (Array.isArray(v)) return ['list', v.map(typed)];
  if (typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) {
    return ['dict', Object.keys(v).map((k) => [['str', k], typed(v[k])])];
  }
  return ['other', String(v)];
}
function record(where, args) {
  console.log('RECORDED ' + JSON.stringify({ where, args: args.map(typed), kwargs: [] }));
}
"#;

    const JS_BODY: &str = r#"
function call(...args) { record('call', args); }
async function acall(...args) { record('acall', args); }
function fail() { throw new RangeError('replayed failure'); }
class Box {
  constructor(...args) { record('init', args); }
  method(...args) { record('method', args); }
  static make(...args) { record('static', args); }
}
"#;

    fn s(text: &str) -> Literal {
        Literal::Str(text.to_string())
    }

    fn int(digits: &str) -> Literal {
        Literal::Int(digits.to_string())
    }

    /// Values that would break out of a carelessly written literal, each a
    /// way to run code if they did, every `Literal` variant, and sizes.
    fn hostile(marker: &Path, python: bool) -> Vec<Literal> {
        let marker = marker.display();
        let mut nested = s("bottom");
        for _ in 0..60 {
            nested = Literal::List(vec![nested]);
        }
        let mut values = vec![
            s(""),
            s("'"),
            s("\""),
            s("'''"),
            s("\"\"\""),
            s("\\"),
            s("\\x41\\u0041\\"),
            s("\n\r\t\0\u{b}\u{c}\u{7f}"),
            s("\u{2028}\u{2029}\u{feff}\u{85}"),
            s("*/ /* <!-- --> </script> ` ${x} #{x}"),
            s("${process.exit(1)}"),
            s(&format!(
                "${{require('fs').writeFileSync('{marker}', 'x')}}"
            )),
            s(&format!("__import__('os').system('touch {marker}')")),
            s(&format!(
                "'); require('fs').writeFileSync('{marker}', 'x'); ('"
            )),
            s(&format!(
                "\"); require('fs').writeFileSync('{marker}', 'x'); (\""
            )),
            s(&format!("\"\"\"); open('{marker}', 'w'); (\"\"\"")),
            s(&format!("'''); open('{marker}', 'w'); ('''")),
            s(&format!("\n__import__('os').system('touch {marker}')\n")),
            s(&"x\\\"'".repeat(100 * 1024 / 4)),
            s("😀 \u{10ffff} \u{1f600}\u{200d}"),
            nested,
            int("0"),
            int("-7"),
            int("123456789012345678901234567890123456789"),
            Literal::Float(-0.0),
            Literal::Float(1e-5),
            Literal::Float(1e300),
            Literal::Float(1.0),
            Literal::Float(0.1),
            Literal::Null,
            Literal::Bool(true),
            Literal::Bool(false),
            Literal::Bytes((0..=255).collect()),
            Literal::Bytes(Vec::new()),
            Literal::Tuple(vec![]),
            Literal::Tuple(vec![int("1"), s("$tuple")]),
            Literal::List(vec![]),
            Literal::Dict(vec![]),
            Literal::Dict(vec![
                (s("$bytes"), s("not hex")),
                (s("$tuple"), Literal::List(vec![])),
                (s("$dict"), Literal::Dict(vec![(s("$dict"), Literal::Null)])),
                (
                    s("__proto__"),
                    Literal::Dict(vec![(s("polluted"), Literal::Bool(true))]),
                ),
                (s("constructor"), s("x")),
                (s("'); x('"), s("\"\"\"")),
            ]),
        ];
        if python {
            values.push(Literal::Dict(vec![
                (int("1"), s("int key")),
                (
                    Literal::Tuple(vec![int("1"), Literal::Bytes(b"k".to_vec())]),
                    s("tuple key"),
                ),
                (Literal::Bytes(b"\0".to_vec()), s("bytes key")),
                (Literal::Null, s("None key")),
                (Literal::Float(2.5), s("float key")),
            ]));
        }
        values
    }

    fn args_of(values: Vec<Literal>, keywords: bool) -> Vec<Arg> {
        let count = values.len();
        values
            .into_iter()
            .enumerate()
            .map(|(i, value)| Arg {
                name: format!("value{i}"),
                value,
                // The last few by keyword, the first one too: the writer
                // moves keywords after positional arguments.
                keyword: keywords && (i == 0 || i + 3 >= count),
            })
            .collect()
    }

    /// What the subject should record: the Python typed form of a literal.
    fn python_typed(value: &Literal) -> Value {
        match value {
            Literal::Null => json!(["none"]),
            Literal::Bool(flag) => json!(["bool", flag]),
            Literal::Int(digits) => json!(["int", digits]),
            Literal::Float(float) => json!(["float", format!("{:016x}", float.to_bits())]),
            Literal::Str(text) => json!(["str", text]),
            Literal::Bytes(bytes) => json!(["bytes", hex::encode(bytes)]),
            Literal::List(items) => {
                json!(["list", items.iter().map(python_typed).collect::<Vec<_>>()])
            }
            Literal::Tuple(items) => {
                json!(["tuple", items.iter().map(python_typed).collect::<Vec<_>>()])
            }
            Literal::Dict(pairs) => json!([
                "dict",
                pairs
                    .iter()
                    .map(|(key, item)| json!([python_typed(key), python_typed(item)]))
                    .collect::<Vec<_>>()
            ]),
        }
    }

    /// The same for JavaScript: numbers are doubles, tuples arrays, keys strings.
    fn js_typed(value: &Literal) -> Value {
        let number = |float: f64| json!(["number", format!("{:016x}", float.to_bits())]);
        match value {
            Literal::Null => json!(["none"]),
            Literal::Bool(flag) => json!(["bool", flag]),
            Literal::Int(digits) => number(digits.parse().expect("digits")),
            Literal::Float(float) => number(*float),
            Literal::Str(text) => json!(["str", text]),
            Literal::Bytes(bytes) => json!(["bytes", hex::encode(bytes)]),
            Literal::List(items) | Literal::Tuple(items) => {
                json!(["list", items.iter().map(js_typed).collect::<Vec<_>>()])
            }
            Literal::Dict(pairs) => json!([
                "dict",
                pairs
                    .iter()
                    .map(|(key, item)| {
                        let Literal::Str(key) = key else {
                            panic!("JS keys are strings")
                        };
                        json!([["str", key], js_typed(item)])
                    })
                    .collect::<Vec<_>>()
            ]),
        }
    }

    /// The record the subject prints for `where` called with `args`.
    fn expected(where_: &str, args: &[Arg], typed: fn(&Literal) -> Value) -> Value {
        let positional: Vec<Value> = args
            .iter()
            .filter(|a| !a.keyword)
            .map(|a| typed(&a.value))
            .collect();
        let keywords: Vec<Value> = args
            .iter()
            .filter(|a| a.keyword)
            .map(|a| json!([a.name, typed(&a.value)]))
            .collect();
        json!({"where": where_, "args": positional, "kwargs": keywords})
    }

    fn records(output: &Output) -> Vec<Value> {
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| line.strip_prefix("RECORDED "))
            .map(|line| serde_json::from_str(line).expect("record JSON"))
            .collect()
    }

    fn run(program: &str, args: &[&str], cwd: &Path) -> Output {
        Command::new(program)
            .args(args)
            .current_dir(cwd)
            .env_remove("NODE_OPTIONS")
            .env_remove("PYTHONPATH")
            .output()
            .unwrap_or_else(|error| panic!("running {program}: {error}"))
    }

    fn describe(output: &Output) -> String {
        format!(
            "status {:?}\nstdout (cut): {}\nstderr (cut): {}",
            output.status,
            String::from_utf8_lossy(&output.stdout)
                .chars()
                .take(3000)
                .collect::<String>(),
            String::from_utf8_lossy(&output.stderr)
                .chars()
                .take(3000)
                .collect::<String>()
        )
    }

    fn python_test(callee: Callee, args: Vec<Arg>, is_async: bool) -> ReplayTest {
        ReplayTest {
            framework: TestFramework::PythonUnittest,
            module: "pkg.subject".to_string(),
            esm: false,
            callee,
            args,
            is_async,
            exception_type: "TypeError".to_string(),
            event_id: "0123456789abcdef0123456789abcdef".to_string(),
            test_name: "test_call_replays_production_event".to_string(),
        }
    }

    /// A temp dir with the Python subject package, the rendered test as
    /// `test_replay.py`, parsed by `ast` and run by `unittest`.
    fn run_python(test: &ReplayTest) -> (tempfile::TempDir, Output) {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("pkg")).expect("pkg");
        std::fs::write(dir.path().join("pkg/__init__.py"), "").expect("init");
        std::fs::write(dir.path().join("pkg/subject.py"), PYTHON_SUBJECT).expect("subject");
        let text = render(test).expect("renders");
        assert!(text.is_ascii(), "the file is ASCII");
        std::fs::write(dir.path().join("test_replay.py"), &text).expect("test file");
        let parsed = run(
            &python(),
            &[
                "-c",
                "import ast,sys; ast.parse(open(sys.argv[1]).read())",
                "test_replay.py",
            ],
            dir.path(),
        );
        assert!(
            parsed.status.success(),
            "the file parses: {}",
            describe(&parsed)
        );
        let output = run(
            &python(),
            &["-m", "unittest", "-v", "test_replay"],
            dir.path(),
        );
        (dir, output)
    }

    #[test]
    fn python_replay_delivers_hostile_values_exactly_and_runs_nothing_else() {
        let marker_dir = tempfile::tempdir().expect("tempdir");
        let marker = marker_dir.path().join("pwned");
        let args = args_of(hostile(&marker, true), true);
        let test = python_test(
            Callee::Function {
                name: "call".to_string(),
            },
            args.clone(),
            false,
        );
        let (_dir, output) = run_python(&test);
        assert!(
            output.status.success(),
            "the replay passes: {}",
            describe(&output)
        );
        assert_eq!(
            records(&output),
            vec![expected("call", &args, python_typed)]
        );
        assert!(!marker.exists(), "no event value ran as code");
    }

    #[test]
    fn python_replay_builds_receivers_and_awaits() {
        let values = || args_of(vec![s("a'b"), Literal::Bytes(vec![0, 255]), int("3")], true);
        let cases = [
            (
                Callee::Method {
                    class: "Box".to_string(),
                    name: "method".to_string(),
                    init: args_of(vec![Literal::Tuple(vec![int("1")])], false),
                },
                false,
                vec!["init", "method"],
            ),
            (
                Callee::StaticMethod {
                    class: "Box".into(),
                    name: "static".into(),
                },
                false,
                vec!["static"],
            ),
            (
                Callee::ClassMethod {
                    class: "Box".into(),
                    name: "klass".into(),
                },
                false,
                vec!["klass Box"],
            ),
            (
                Callee::Function {
                    name: "acall".into(),
                },
                true,
                vec!["acall"],
            ),
        ];
        for (callee, is_async, wheres) in cases {
            let test = python_test(callee.clone(), values(), is_async);
            let (_dir, output) = run_python(&test);
            assert!(output.status.success(), "{callee:?}: {}", describe(&output));
            let mut want = Vec::new();
            for where_ in wheres {
                let args = match (&callee, where_) {
                    (Callee::Method { init, .. }, "init") => init.clone(),
                    _ => values(),
                };
                want.push(expected(where_, &args, python_typed));
            }
            assert_eq!(records(&output), want, "{callee:?}");
        }
    }

    #[test]
    fn python_replay_fails_with_the_exception_the_call_raises() {
        let test = python_test(
            Callee::Function {
                name: "fail".into(),
            },
            args_of(vec![int("1")], false),
            false,
        );
        let (_dir, output) = run_python(&test);
        assert!(
            !output.status.success(),
            "a raising call fails the test: {}",
            describe(&output)
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("LookupError: replayed failure"),
            "{}",
            describe(&output)
        );
        assert!(
            stderr.contains("test_call_replays_production_event"),
            "{}",
            describe(&output)
        );
    }

    fn js_test(
        framework: TestFramework,
        esm: bool,
        callee: Callee,
        args: Vec<Arg>,
        is_async: bool,
    ) -> ReplayTest {
        ReplayTest {
            framework,
            module: if esm {
                "../lib/subject.mjs"
            } else {
                "../lib/subject.js"
            }
            .to_string(),
            esm,
            callee,
            args,
            is_async,
            exception_type: "TypeError".to_string(),
            event_id: "0123456789abcdef".to_string(),
            test_name: "call replays the production event".to_string(),
        }
    }

    /// A temp dir with the JS subject in `lib/` and the rendered test in
    /// `test/`, checked by `node --check` and run by node.
    fn run_node(test: &ReplayTest) -> (tempfile::TempDir, Output) {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("lib")).expect("lib");
        std::fs::create_dir(dir.path().join("test")).expect("test");
        let (subject, file) = if test.esm {
            (
                format!("{JS_TYPED}{JS_BODY}export {{ call, acall, fail, Box }};\n"),
                "test/replay.test.mjs",
            )
        } else {
            (
                format!("{JS_TYPED}{JS_BODY}module.exports = {{ call, acall, fail, Box }};\n"),
                "test/replay.test.js",
            )
        };
        let subject_file = if test.esm {
            "lib/subject.mjs"
        } else {
            "lib/subject.js"
        };
        std::fs::write(dir.path().join(subject_file), subject).expect("subject");
        let text = render(test).expect("renders");
        assert!(text.is_ascii(), "the file is ASCII");
        std::fs::write(dir.path().join(file), &text).expect("test file");
        let checked = run("node", &["--check", file], dir.path());
        assert!(
            checked.status.success(),
            "the file parses: {}",
            describe(&checked)
        );
        let output = run("node", &[file], dir.path());
        (dir, output)
    }

    #[test]
    fn node_replay_delivers_hostile_values_exactly_and_runs_nothing_else() {
        for esm in [false, true] {
            let marker_dir = tempfile::tempdir().expect("tempdir");
            let marker = marker_dir.path().join("pwned");
            let args = args_of(hostile(&marker, false), false);
            let test = js_test(
                TestFramework::NodeTest,
                esm,
                Callee::Function {
                    name: "call".into(),
                },
                args.clone(),
                false,
            );
            let (_dir, output) = run_node(&test);
            assert!(
                output.status.success(),
                "esm {esm}: the replay passes: {}",
                describe(&output)
            );
            assert_eq!(
                records(&output),
                vec![expected("call", &args, js_typed)],
                "esm {esm}"
            );
            assert!(!marker.exists(), "esm {esm}: no event value ran as code");
        }
    }

    #[test]
    fn node_replay_builds_receivers_and_awaits() {
        let values = || {
            args_of(
                vec![
                    s("a'b"),
                    int("3"),
                    Literal::Dict(vec![(s("k"), Literal::Null)]),
                ],
                false,
            )
        };
        let init = args_of(vec![s("init")], false);
        let cases = [
            (
                Callee::Method {
                    class: "Box".into(),
                    name: "method".into(),
                    init: init.clone(),
                },
                false,
                vec!["init", "method"],
            ),
            (
                Callee::StaticMethod {
                    class: "Box".into(),
                    name: "make".into(),
                },
                false,
                vec!["static"],
            ),
            (
                Callee::Function {
                    name: "acall".into(),
                },
                true,
                vec!["acall"],
            ),
        ];
        for (callee, is_async, wheres) in cases {
            for esm in [false, true] {
                let test = js_test(
                    TestFramework::NodeTest,
                    esm,
                    callee.clone(),
                    values(),
                    is_async,
                );
                let (_dir, output) = run_node(&test);
                assert!(
                    output.status.success(),
                    "{callee:?} esm {esm}: {}",
                    describe(&output)
                );
                let want: Vec<Value> = wheres
                    .iter()
                    .map(|where_| {
                        let args = if *where_ == "init" {
                            init.clone()
                        } else {
                            values()
                        };
                        expected(where_, &args, js_typed)
                    })
                    .collect();
                assert_eq!(records(&output), want, "{callee:?} esm {esm}");
            }
        }
    }

    #[test]
    fn node_replay_fails_with_the_error_the_call_throws() {
        for is_async in [false, true] {
            let test = js_test(
                TestFramework::NodeTest,
                false,
                Callee::Function {
                    name: "fail".into(),
                },
                args_of(vec![int("1")], false),
                is_async,
            );
            let (_dir, output) = run_node(&test);
            assert!(
                !output.status.success(),
                "a throwing call fails the test: {}",
                describe(&output)
            );
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
            assert!(
                text.contains("RangeError") && text.contains("replayed failure"),
                "{}",
                describe(&output)
            );
        }
    }

    #[test]
    fn names_that_are_not_plain_identifiers_are_refused() {
        let python = |change: &dyn Fn(&mut ReplayTest)| {
            let mut test = python_test(
                Callee::Function {
                    name: "call".into(),
                },
                args_of(vec![int("1")], false),
                false,
            );
            change(&mut test);
            render(&test)
        };
        let refused: [&dyn Fn(&mut ReplayTest); 10] = [
            &|t| t.module = "os; import sys".into(),
            &|t| t.module = "pkg.sub-ject".into(),
            &|t| t.module = "pkg..subject".into(),
            &|t| t.module = "pkg.class".into(),
            &|t| {
                t.callee = Callee::Function {
                    name: "__import__('os')".into(),
                }
            },
            &|t| {
                t.callee = Callee::Method {
                    class: "Box()".into(),
                    name: "m".into(),
                    init: Vec::new(),
                }
            },
            &|t| t.args[0].name = "x=1".into(),
            &|t| t.args[0].name = "lambda".into(),
            &|t| t.test_name = "test x".into(),
            &|t| t.test_name = "replay".into(),
        ];
        for change in refused {
            assert!(
                matches!(python(change), Err(RenderError::NotAnIdentifier { .. })),
                "{:?}",
                python(change)
            );
        }
        assert!(matches!(
            python(&|t| {
                t.args = args_of(vec![int("1"), int("2")], true);
                t.args[1].name = "value0".into();
            }),
            Err(RenderError::DuplicateKeyword(_))
        ));
        assert!(matches!(
            python(
                &|t| t.args[0].value = Literal::Dict(vec![(Literal::List(vec![]), Literal::Null)])
            ),
            Err(RenderError::BadValue(_))
        ));
        assert!(matches!(
            python(&|t| t.args[0].value = Literal::Float(f64::NAN)),
            Err(RenderError::BadValue(_))
        ));
        assert!(matches!(
            python(&|t| t.args[0].value = int("1); x(")),
            Err(RenderError::BadValue(_))
        ));

        let js = |change: &dyn Fn(&mut ReplayTest)| {
            let mut test = js_test(
                TestFramework::NodeTest,
                false,
                Callee::Function {
                    name: "call".into(),
                },
                args_of(vec![int("1")], false),
                false,
            );
            change(&mut test);
            render(&test)
        };
        let refused: [&dyn Fn(&mut ReplayTest); 6] = [
            &|t| t.module = "../lib/x.js'); process.exit(1); ('".into(),
            &|t| t.module = "..\\lib\\x.js".into(),
            &|t| t.test_name = "it's".into(),
            &|t| t.callee = Callee::Function { name: "new".into() },
            &|t| {
                t.callee = Callee::StaticMethod {
                    class: "Box".into(),
                    name: "__proto__".into(),
                }
            },
            &|t| t.args[0].name = "a-b".into(),
        ];
        for change in refused {
            assert!(
                matches!(js(change), Err(RenderError::NotAnIdentifier { .. })),
                "{:?}",
                js(change)
            );
        }
        assert!(matches!(
            js(&|t| t.args[0].keyword = true),
            Err(RenderError::KeywordInJs(_))
        ));
        assert!(
            js(&|t| t.callee = Callee::Function {
                name: "$call_2".into()
            })
            .is_ok()
        );
    }

    #[test]
    fn only_checked_event_text_reaches_the_file() {
        let mut test = python_test(
            Callee::Function {
                name: "call".into(),
            },
            Vec::new(),
            false,
        );
        test.event_id = "abc\n*/ import os".into();
        test.exception_type = "Type Error\"\"\"".into();
        let text = render(&test).expect("renders");
        assert!(
            text.starts_with("# Written by suture from a production event.\n"),
            "{text}"
        );
        assert!(
            !text.contains("import os") && !text.contains("Type Error"),
            "{text}"
        );
        test.event_id = "0123-abcd".into();
        test.exception_type = "requests.exceptions.HTTPError".into();
        let text = render(&test).expect("renders");
        assert!(
            text.starts_with("# Written by suture from production event 0123-abcd.\n"),
            "{text}"
        );
        assert!(
            text.contains("raised requests.exceptions.HTTPError in production"),
            "{text}"
        );
    }
}

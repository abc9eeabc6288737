//! Planning replay tests: which frame of the crash can a test call, with
//! which arguments, from the event alone.
//!
//! From the innermost in-app frame outwards, a frame is replayable when its
//! function can be called from a test — a module-level function, a static
//! or class method, or a method whose receiver can be built (its class's
//! constructor takes no required arguments, or only ones the frame holds as
//! literals) — and every parameter (from the code index at the deployed
//! revision) has a literal value in the frame's `vars`. The names written
//! into the test come from the code index; the values from the event, as
//! data only (see `render`).

use domain::event::Event;
use repo::index::{CodeIndex, FileSymbols, Language, ParamKind, Symbol, SymbolKind};

use super::layout;
use super::literal::{self, Literal, NotLiteral};
use super::render::{self, Arg, Callee, ReplayTest, TestFramework};
use super::runner::Runner;
use crate::diagnose::{Diagnosis, FrameReport};

/// Most frames a replay is planned for, innermost first.
pub(crate) const MAX_FRAMES: usize = 4;

/// One planned replay test.
#[derive(Debug, Clone)]
pub(crate) struct Planned {
    /// The frame it replays, for the report (`update_headers (httpie/sessions.py:104)`).
    pub(crate) what: String,
    /// The test file, repository-relative.
    pub(crate) path: String,
    /// The test file as a new-file patch.
    pub(crate) patch: String,
}

/// A frame that cannot be replayed, and why.
#[derive(Debug, Clone)]
pub(crate) struct NotReplayable {
    pub(crate) what: String,
    pub(crate) reason: String,
}

/// What the repository and event give the planner.
pub(crate) struct Inputs<'a> {
    pub(crate) repo: &'a repo::git::Repo,
    pub(crate) tree: &'a repo::git2::Tree<'a>,
    pub(crate) root: &'a std::path::Path,
    pub(crate) runner: &'a Runner,
    pub(crate) exception_type: &'a str,
}

/// Plans replay tests for the in-app frames of the raised exception,
/// innermost first.
pub(crate) fn plan(
    inputs: &Inputs<'_>,
    index: &mut CodeIndex,
    event: &Event,
    diagnosis: &Diagnosis,
) -> Vec<Result<Planned, NotReplayable>> {
    diagnosis
        .frames
        .iter()
        .filter(|frame| frame.chain == 0 && frame.in_app && frame.path.is_some())
        .take(MAX_FRAMES)
        .map(|frame| {
            let what = describe(frame);
            plan_frame(inputs, index, event, frame, &what).map_err(|reason| NotReplayable {
                what: what.clone(),
                reason,
            })
        })
        .collect()
}

fn describe(frame: &FrameReport) -> String {
    format!(
        "{} ({}:{})",
        frame
            .symbol
            .as_deref()
            .or(frame.function.as_deref())
            .unwrap_or("?"),
        frame.path.as_deref().unwrap_or("?"),
        frame.line.unwrap_or_default()
    )
}

fn plan_frame(
    inputs: &Inputs<'_>,
    index: &mut CodeIndex,
    event: &Event,
    frame: &FrameReport,
    what: &str,
) -> Result<Planned, String> {
    let path = frame.path.as_deref().unwrap_or_default();
    let line = frame.line.ok_or("the frame has no line number")?;
    let language = Language::from_path(path).ok_or("not a language suture replays")?;
    let framework = framework(language, inputs.runner)?;
    let python = framework == TestFramework::PythonUnittest;
    let vars = frame
        .vars
        .as_ref()
        .ok_or("the event holds no local variables for this frame")?;
    let file = index
        .file_at(inputs.repo.git(), inputs.tree, path)
        .map_err(|e| format!("reading the file: {e}"))?
        .ok_or("the file is not in the code index")?;
    let symbol = file
        .enclosing_symbol(line)
        .filter(|s| s.kind.is_function_like())
        .ok_or("the line is not inside a function")?;
    let read = |name: &str| -> Result<Literal, String> {
        let value = vars
            .get(name)
            .ok_or_else(|| format!("{name} is not among the frame's variables"))?;
        let literal = if python {
            literal::python_literal(value)
        } else {
            literal::js_literal(value)
        };
        literal.map_err(|why| {
            format!(
                "{name}: {}",
                match why {
                    NotLiteral::Object => "an object, not a literal",
                    NotLiteral::Truncated => "cut short by the SDK",
                    NotLiteral::Filtered => "filtered",
                    NotLiteral::TooLarge => "too large to replay",
                }
            )
        })
    };
    let (callee, skip_first) = callee(&file, symbol, python, &read)?;
    let mut args = Vec::new();
    for (position, param) in symbol.params.iter().enumerate() {
        if position == 0 && skip_first {
            continue;
        }
        match param.kind {
            ParamKind::VarPositional | ParamKind::VarKeyword => match vars.get(&param.name) {
                None => {}
                Some(_) => match read(&param.name)? {
                    Literal::List(items) | Literal::Tuple(items) if items.is_empty() => {}
                    Literal::Dict(items) if items.is_empty() => {}
                    _ => return Err(format!("{} collects extra arguments", param.name)),
                },
            },
            ParamKind::Pattern => {
                return Err("a destructured parameter has no name to read".to_string());
            }
            ParamKind::Positional | ParamKind::PositionalOnly | ParamKind::KeywordOnly => {
                args.push(Arg {
                    name: param.name.clone(),
                    value: read(&param.name)?,
                    keyword: param.kind == ParamKind::KeywordOnly,
                });
            }
        }
    }
    let function = &symbol.name;
    let (test_path, module) = if python {
        let module = python_module(frame.module.as_deref(), path)
            .ok_or("the file's module name is not importable")?;
        (
            layout::place_python_test(inputs.root, &module, function),
            module,
        )
    } else {
        layout::place_js_test(inputs.root, path, function)
    };
    let test = ReplayTest {
        framework,
        module,
        esm: !python && is_esm(inputs.root, &test_path),
        callee,
        args,
        is_async: symbol.is_async,
        exception_type: inputs.exception_type.to_string(),
        event_id: event.event_id.clone().unwrap_or_default(),
        test_name: test_name(function, python),
    };
    let text = render::render(&test).map_err(|e| format!("the test cannot be written: {e}"))?;
    Ok(Planned {
        what: what.to_string(),
        patch: new_file_patch(&test_path, &text),
        path: test_path,
    })
}

fn framework(language: Language, runner: &Runner) -> Result<TestFramework, String> {
    match (language, runner) {
        (Language::Python, Runner::Pytest { .. } | Runner::Unittest { .. }) => {
            Ok(TestFramework::PythonUnittest)
        }
        (Language::JavaScript | Language::TypeScript, Runner::NodeTest { .. }) => {
            Ok(TestFramework::NodeTest)
        }
        _ => Err(format!(
            "suture writes no {} test for this test command",
            language.name()
        )),
    }
}

/// How a test reaches `symbol`, and whether its first parameter is the
/// receiver (`self`/`cls`), which the test does not pass.
fn callee(
    file: &FileSymbols,
    symbol: &Symbol,
    python: bool,
    read: &dyn Fn(&str) -> Result<Literal, String>,
) -> Result<(Callee, bool), String> {
    let name = symbol.name.clone();
    let Some(parent) = symbol.parent.map(|i| &file.symbols[i]) else {
        return Ok((Callee::Function { name }, false));
    };
    if parent.kind != SymbolKind::Class || parent.parent.is_some() {
        return Err("a nested function cannot be called from a test".to_string());
    }
    let class = parent.name.clone();
    if python && name.starts_with("__") && !name.ends_with("__") {
        return Err("a name-mangled method cannot be called from a test".to_string());
    }
    if symbol.decorators.iter().any(|d| d == "staticmethod") || (!python && symbol.is_static) {
        return Ok((Callee::StaticMethod { class, name }, false));
    }
    if symbol.decorators.iter().any(|d| d == "classmethod") {
        return Ok((Callee::ClassMethod { class, name }, true));
    }
    if !python && name == "constructor" {
        return Err("a constructor is replayed by its caller".to_string());
    }
    let parent_index = symbol.parent;
    let constructor = file.symbols.iter().find(|s| {
        s.parent == parent_index
            && s.kind.is_function_like()
            && s.name == if python { "__init__" } else { "constructor" }
    });
    let mut init = Vec::new();
    match constructor {
        None => {
            let plain = parent.bases.iter().all(|b| b == "object");
            if !plain {
                return Err(format!(
                    "its class {class} inherits its constructor from {}",
                    parent.bases.join(", ")
                ));
            }
        }
        Some(constructor) => {
            for (position, param) in constructor.params.iter().enumerate() {
                if python && position == 0 {
                    continue;
                }
                if param.has_default
                    || matches!(param.kind, ParamKind::VarPositional | ParamKind::VarKeyword)
                {
                    continue;
                }
                let value = read(&param.name).map_err(|why| {
                    format!("the receiver cannot be built: {class}() needs an argument ({why})")
                })?;
                init.push(Arg {
                    name: param.name.clone(),
                    value,
                    keyword: param.kind == ParamKind::KeywordOnly,
                });
            }
        }
    }
    Ok((Callee::Method { class, name, init }, python))
}

/// The dotted module a Python test imports: the SDK's `module` when it is
/// one, else the path's.
fn python_module(reported: Option<&str>, path: &str) -> Option<String> {
    let valid = |module: &str| {
        !module.is_empty()
            && module.split('.').all(|part| {
                part.chars()
                    .next()
                    .is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
                    && part.chars().all(|c| c == '_' || c.is_ascii_alphanumeric())
            })
    };
    if let Some(module) = reported.filter(|m| valid(m) && *m != "__main__") {
        return Some(module.to_string());
    }
    let stem = path.strip_suffix(".py")?;
    let stem = stem.strip_prefix("src/").unwrap_or(stem);
    let stem = stem.strip_suffix("/__init__").unwrap_or(stem);
    let module = stem.replace('/', ".");
    valid(&module).then_some(module)
}

fn test_name(function: &str, python: bool) -> String {
    let cleaned: String = function
        .trim_matches('_')
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let cleaned = if cleaned.is_empty() {
        "call".to_string()
    } else {
        cleaned
    };
    if python {
        format!("test_{cleaned}_replays_production_event")
    } else {
        format!("{cleaned} replays the production event")
    }
}

/// Whether a JS test file is an ES module: `.mjs`, or `.js` in a
/// repository whose root `package.json` says `"type": "module"` (a nested
/// package with its own `type` is not looked for).
fn is_esm(root: &std::path::Path, test_path: &str) -> bool {
    if test_path.ends_with(".mjs") {
        return true;
    }
    if !test_path.ends_with(".js") {
        return false;
    }
    std::fs::read_to_string(root.join("package.json"))
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .is_some_and(|manifest| manifest["type"] == "module")
}

/// A unified diff that creates `path` with `text`.
pub(crate) fn new_file_patch(path: &str, text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut patch = format!(
        "diff --git a/{path} b/{path}\nnew file mode 100644\n--- /dev/null\n+++ b/{path}\n@@ -0,0 +1,{} @@\n",
        lines.len()
    );
    for line in lines {
        patch.push('+');
        patch.push_str(line);
        patch.push('\n');
    }
    patch
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modules_come_from_the_sdk_or_the_path() {
        assert_eq!(
            python_module(Some("httpie.sessions"), "httpie/sessions.py").as_deref(),
            Some("httpie.sessions")
        );
        assert_eq!(
            python_module(None, "src/shop/cart.py").as_deref(),
            Some("shop.cart")
        );
        assert_eq!(
            python_module(Some("__main__"), "pkg/__init__.py").as_deref(),
            Some("pkg")
        );
        assert_eq!(python_module(Some("os; rm"), "a-b/c.py"), None);
    }

    #[test]
    fn new_file_patches_count_their_lines() {
        let patch = new_file_patch("tests/test_x.py", "a\nb\n");
        assert!(patch.contains("@@ -0,0 +1,2 @@\n+a\n+b\n"), "{patch}");
    }
}

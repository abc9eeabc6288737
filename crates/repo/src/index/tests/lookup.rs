//! Lookups on a parsed file: enclosing symbol by line, symbols by name, and
//! language detection by path.

use expect_test::{Expect, expect};

use super::trim_indent;
use crate::index::{Language, parse_symbols};

/// Parses `source` with the line holding `$0` as the query line (the marker is
/// removed), and snapshots `enclosing symbol | chain, innermost first`.
fn check_enclosing(language: Language, source: &str, expect: Expect) {
    let source = trim_indent(source);
    let line_idx = source
        .lines()
        .position(|line| line.contains("$0"))
        .expect("fixture has a $0 marker");
    let file = parse_symbols(language, source.replace("$0", "").as_bytes());
    let line = u32::try_from(line_idx + 1).unwrap();
    let enclosing = file
        .enclosing_symbol(line)
        .map_or("-", |symbol| symbol.qualified_name.as_str());
    let chain: Vec<&str> = file
        .enclosing_chain(line)
        .iter()
        .map(|symbol| symbol.qualified_name.as_str())
        .collect();
    let chain = if chain.is_empty() {
        "-".to_owned()
    } else {
        chain.join(" < ")
    };
    expect.assert_eq(&format!("{enclosing} | {chain}"));
}

/// A class with a decorated method holding a nested function; `$0` marks the
/// decorator argument line, and [`session_at`] moves it.
const SESSION: &str = r#"
    class Session:
        @app.route(
            "/headers",$0
        )
        def update_headers(self, headers):
            def merge(extra):
                return {**headers, **extra}
            return merge(self.defaults)

        timeout = 30

    def after():
        pass
    "#;

/// [`SESSION`] with the marker at the end of the line containing `line_of_marker`.
fn session_at(line_of_marker: &str) -> String {
    SESSION
        .replace("$0", "")
        .replace(line_of_marker, &format!("{line_of_marker}$0"))
}

/// A frame in a method body maps to the method.
#[test]
fn in_a_method_body() {
    check_enclosing(
        Language::Python,
        &session_at("return merge(self.defaults)"),
        expect!["Session.update_headers | Session.update_headers < Session"],
    );
}

/// A frame on a decorator argument maps to the decorated method.
#[test]
fn on_a_decorator_line() {
    check_enclosing(
        Language::Python,
        SESSION,
        expect!["Session.update_headers | Session.update_headers < Session"],
    );
}

/// A frame in a function nested in a method maps to the nested function.
#[test]
fn in_a_nested_function() {
    check_enclosing(
        Language::Python,
        &session_at("return {**headers, **extra}"),
        expect![
            "Session.update_headers.merge | Session.update_headers.merge < Session.update_headers < Session"
        ],
    );
}

/// Class-level code has no function, so the class is the answer.
#[test]
fn in_a_class_body_outside_methods() {
    check_enclosing(
        Language::Python,
        &session_at("timeout = 30"),
        expect!["Session | Session"],
    );
}

/// A blank line between two functions belongs to neither.
#[test]
fn between_functions() {
    check_enclosing(
        Language::Python,
        r#"
        def a():
            pass
        $0
        def b():
            pass
        "#,
        expect!["- | -"],
    );
}

/// The `def` line itself belongs to the function.
#[test]
fn on_a_def_line() {
    check_enclosing(
        Language::Python,
        &session_at("def after():"),
        expect!["after | after"],
    );
}

/// A line past every symbol (stale frame, shorter file) finds nothing.
#[test]
fn past_the_end_of_the_file() {
    check_enclosing(
        Language::Python,
        "def a():\n    pass\n\n\n$0\n",
        expect!["- | -"],
    );
}

/// Rust impl methods qualify through modules and the self type.
#[test]
fn in_a_rust_impl_method_in_a_module() {
    check_enclosing(
        Language::Rust,
        r#"
        mod store {
            impl Cache {
                fn get(&self) {
                    self.load();$0
                }
            }
        }
        "#,
        expect!["store.Cache.get | store.Cache.get < store.Cache < store"],
    );
}

/// A frame inside an anonymous callback is attributed to the named method.
#[test]
fn in_a_js_callback_inside_a_method() {
    check_enclosing(
        Language::JavaScript,
        r#"
        class Feed {
          render() {
            this.items.map((item) => {
              return item.title;$0
            });
          }
        }
        "#,
        expect!["Feed.render | Feed.render < Feed"],
    );
}

/// Go methods qualify by receiver type, with no lexical parent.
#[test]
fn in_a_go_method() {
    check_enclosing(
        Language::Go,
        r#"
        package p

        func (s *Server) Run() {
            s.step()$0
        }
        "#,
        expect!["Server.Run | Server.Run"],
    );
}

/// A method of an anonymous class is innermost, under the method creating it.
#[test]
fn in_a_java_anonymous_class() {
    check_enclosing(
        Language::Java,
        r#"
        class Pool {
            void start() {
                new Thread() {
                    public void run() {
                        work();$0
                    }
                };
            }
        }
        "#,
        expect!["Pool.start.run | Pool.start.run < Pool.start < Pool"],
    );
}

/// `by_name` finds every symbol with a simple name; `by_qualified_name` the first exact one.
#[test]
fn by_name_and_qualified_name() {
    let source =
        "class A:\n    def run(self): pass\nclass B:\n    def run(self): pass\ndef run(): pass\n";
    let file = parse_symbols(Language::Python, source.as_bytes());
    let names: Vec<&str> = file
        .by_name("run")
        .map(|symbol| symbol.qualified_name.as_str())
        .collect();
    expect![[r#"["A.run", "B.run", "run"]"#]].assert_eq(&format!("{names:?}"));
    expect!["Some(4)"].assert_eq(&format!(
        "{:?}",
        file.by_qualified_name("B.run")
            .map(|symbol| symbol.start_line)
    ));
    expect!["None"].assert_eq(&format!("{:?}", file.by_qualified_name("C.run")));
}

/// Extension-based detection, case-insensitive, minified files included
/// (skipping those is the tree walk's business).
#[test]
fn language_from_path() {
    let paths = [
        "app/models.py",
        "stubs/x.pyi",
        "web/app.js",
        "a.mjs",
        "b.cjs",
        "C.JSX",
        "src/x.ts",
        "m.mts",
        "c.cts",
        "view.tsx",
        "src/lib.rs",
        "main.go",
        "Main.java",
        "README.md",
        "Makefile",
        "dir.py/file",
        ".py",
        "lib.min.js",
    ];
    let detected: Vec<String> = paths
        .iter()
        .map(|path| {
            format!(
                "{path}={}",
                Language::from_path(path).map_or("-", |language| language.name())
            )
        })
        .collect();
    expect![[r#"
        app/models.py=python
        stubs/x.pyi=python
        web/app.js=javascript
        a.mjs=javascript
        b.cjs=javascript
        C.JSX=javascript
        src/x.ts=typescript
        m.mts=typescript
        c.cts=typescript
        view.tsx=tsx
        src/lib.rs=rust
        main.go=go
        Main.java=java
        README.md=-
        Makefile=-
        dir.py/file=-
        .py=python
        lib.min.js=javascript"#]]
    .assert_eq(&detected.join("\n"));
}

/// Every bundled grammar loads into this tree-sitter runtime.
#[test]
fn every_grammar_loads() {
    for language in Language::ALL {
        let file = parse_symbols(language, b"");
        assert!(!file.has_errors, "{language} parses an empty file cleanly");
    }
}

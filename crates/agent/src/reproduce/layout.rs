//! Where a new test belongs in a repository: its test directory and naming
//! convention, so a reproduction test reads like one of the project's own.
//!
//! The repository decides by what it already has: the test directory that
//! exists, and the file-name pattern most of its tests use. A new test
//! never replaces a file: a taken name gets `_2`, `_3`, …. The name holds
//! the source's stem and the function, in identifier characters only, so
//! it is also a valid Python module name.
//!
//! The tree is a worktree of a repository suture does not control: the
//! scan stays below a few levels, stops after a bounded number of entries,
//! skips dependency and build directories, and follows no symlink.

use std::path::{Path, PathBuf};

/// Directories that hold Python tests, in order of preference.
const PYTHON_TEST_DIRS: [&str; 2] = ["tests", "test"];
/// Directories that hold JavaScript tests, in order of preference.
const JS_TEST_DIRS: [&str; 3] = ["test", "tests", "__tests__"];
/// Directories never scanned: dependencies, environments, build output.
const SKIPPED_DIRS: [&str; 10] = [
    "node_modules",
    "site-packages",
    "venv",
    "env",
    "dist",
    "build",
    "target",
    "coverage",
    "__pycache__",
    "vendor",
];
/// How deep below a scanned directory files are counted.
const SCAN_DEPTH: usize = 4;
/// Most directory entries looked at per scan.
const SCAN_ENTRIES: usize = 5_000;
/// Extensions a JavaScript or TypeScript test file may have.
const JS_EXTENSIONS: [&str; 8] = ["js", "mjs", "cjs", "ts", "mts", "cts", "jsx", "tsx"];

/// The repository-relative path for a replay test of `function` in the
/// Python module `module` (dotted).
pub(crate) fn place_python_test(root: &Path, module: &str, function: &str) -> String {
    let stem = module.rsplit('.').next().unwrap_or(module);
    let dir = python_test_dir(root, module);
    let files = file_names(&root.join(&dir));
    let prefixed = files
        .iter()
        .filter(|name| name.starts_with("test_") && name.ends_with(".py"))
        .count();
    let suffixed = files
        .iter()
        .filter(|name| name.ends_with("_test.py"))
        .count();
    let base = format!(
        "{}_{}_replay",
        identifier_chars(stem),
        identifier_chars(function)
    );
    free_path(root, &dir, |n| {
        let base = numbered(&base, n);
        if suffixed > prefixed {
            format!("{base}_test.py")
        } else {
            format!("test_{base}.py")
        }
    })
}

/// The test directory for `module`: `tests/` or `test/` at the root when
/// one exists (the one with more Python files when both do), else one
/// inside the module's top package, else a new `tests/` at the root.
fn python_test_dir(root: &Path, module: &str) -> String {
    let count = |dir: &str| {
        file_names(&root.join(dir))
            .iter()
            .filter(|name| name.ends_with(".py"))
            .count()
    };
    let existing = |prefix: &str| -> Option<String> {
        PYTHON_TEST_DIRS
            .iter()
            .enumerate()
            .map(|(preference, dir)| (preference, format!("{prefix}{dir}")))
            .filter(|(_, dir)| is_real_dir(&root.join(dir)))
            // More Python files first; at a tie, the order of preference.
            .max_by_key(|(preference, dir)| (count(dir), std::cmp::Reverse(*preference)))
            .map(|(_, dir)| dir)
    };
    if let Some(dir) = existing("") {
        return dir;
    }
    let package = module.split('.').next().unwrap_or(module);
    for parent in ["", "src/"] {
        let package_dir = format!("{parent}{package}");
        if is_real_dir(&root.join(&package_dir))
            && let Some(dir) = existing(&format!("{package_dir}/"))
        {
            return dir;
        }
    }
    PYTHON_TEST_DIRS[0].to_string()
}

/// The repository-relative path for a replay test of `function` in the
/// JavaScript or TypeScript file `source_path`, and the module specifier
/// that imports the source from that test (`../src/cart.js`).
pub(crate) fn place_js_test(root: &Path, source_path: &str, function: &str) -> (String, String) {
    let source_path = source_path.trim_start_matches("./");
    let (source_dir, source_file) = source_path.rsplit_once('/').unwrap_or(("", source_path));
    let (stem, source_ext) = source_file.rsplit_once('.').unwrap_or((source_file, "js"));
    let existing = JS_TEST_DIRS
        .iter()
        .filter(|dir| is_real_dir(&root.join(dir)))
        .max_by_key(|dir| {
            let tests = file_names(&root.join(dir))
                .iter()
                .filter(|name| js_style(name, true).is_some())
                .count();
            // More tests first; at a tie, the order of preference.
            (
                tests,
                std::cmp::Reverse(JS_TEST_DIRS.iter().position(|d| d == *dir)),
            )
        });
    let (dir, styles) = match existing {
        Some(dir) => {
            let styles: Vec<JsStyle> = file_names(&root.join(dir))
                .iter()
                .filter_map(|name| js_style(name, true))
                .collect();
            (dir.to_string(), styles)
        }
        None => {
            // No test directory: next to the source when the project keeps
            // its tests beside its code.
            let beside: Vec<JsStyle> = file_names(root)
                .iter()
                .filter_map(|name| js_style(name, false))
                .collect();
            if beside.is_empty() {
                (JS_TEST_DIRS[0].to_string(), beside)
            } else {
                (source_dir.to_string(), beside)
            }
        }
    };
    let kind = majority(styles.iter().map(|style| style.kind)).unwrap_or(Kind::Test);
    let ext = majority(styles.iter().map(|style| style.ext.as_str()))
        .unwrap_or(if JS_EXTENSIONS.contains(&source_ext) {
            source_ext
        } else {
            "js"
        })
        .to_string();
    let base = format!(
        "{}_{}_replay",
        identifier_chars(stem),
        identifier_chars(function)
    );
    let path = free_path(root, &dir, |n| {
        let base = numbered(&base, n);
        match kind {
            Kind::Test => format!("{base}.test.{ext}"),
            Kind::Spec => format!("{base}.spec.{ext}"),
            Kind::Plain => format!("{base}.{ext}"),
        }
    });
    let specifier = relative_specifier(&dir, source_path);
    (path, specifier)
}

/// How a JavaScript test file is named.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    /// `cart.test.js`
    Test,
    /// `cart.spec.js`
    Spec,
    /// `cart.js` (inside a test directory, where runners take every file)
    Plain,
}

#[derive(Debug)]
struct JsStyle {
    kind: Kind,
    ext: String,
}

/// The naming style of a test file; a plain name counts only inside a
/// test directory.
fn js_style(name: &str, in_test_dir: bool) -> Option<JsStyle> {
    let (rest, ext) = name.rsplit_once('.')?;
    if !JS_EXTENSIONS.contains(&ext) || rest.ends_with(".d") {
        return None;
    }
    let kind = if rest.ends_with(".test") {
        Kind::Test
    } else if rest.ends_with(".spec") {
        Kind::Spec
    } else if in_test_dir {
        Kind::Plain
    } else {
        return None;
    };
    Some(JsStyle {
        kind,
        ext: ext.to_string(),
    })
}

/// The most common value; at a tie, the one seen first.
fn majority<T: PartialEq + Copy>(values: impl Iterator<Item = T>) -> Option<T> {
    let mut counts: Vec<(T, usize)> = Vec::new();
    for value in values {
        match counts.iter_mut().find(|(seen, _)| *seen == value) {
            Some((_, count)) => *count += 1,
            None => counts.push((value, 1)),
        }
    }
    let best = counts.iter().map(|(_, count)| *count).max()?;
    counts
        .into_iter()
        .find(|(_, count)| *count == best)
        .map(|(value, _)| value)
}

/// `source` as a module specifier from a file in `dir` (both
/// repository-relative): `../src/cart.js`, `./cart.js`.
fn relative_specifier(dir: &str, source: &str) -> String {
    let from: Vec<&str> = dir.split('/').filter(|part| !part.is_empty()).collect();
    let to: Vec<&str> = source.split('/').filter(|part| !part.is_empty()).collect();
    let (to_dirs, file) = to.split_at(to.len().saturating_sub(1));
    let common = from.iter().zip(to_dirs).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<&str> = vec![".."; from.len() - common];
    if parts.is_empty() {
        parts.push(".");
    }
    parts.extend(&to_dirs[common..]);
    parts.extend(file);
    parts.join("/")
}

/// `name` with every character that is not an ASCII letter, digit or `_`
/// replaced by `_` (never empty).
fn identifier_chars(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let cleaned = cleaned.trim_matches('_');
    if cleaned.is_empty() {
        "call".to_string()
    } else {
        cleaned.to_string()
    }
}

fn numbered(base: &str, n: usize) -> String {
    if n == 1 {
        base.to_string()
    } else {
        format!("{base}_{n}")
    }
}

/// The first `dir/name(n)` that names nothing yet (not even a dangling
/// symlink), for n = 1, 2, ….
fn free_path(root: &Path, dir: &str, name: impl Fn(usize) -> String) -> String {
    let join = |file: String| {
        if dir.is_empty() {
            file
        } else {
            format!("{dir}/{file}")
        }
    };
    (1..)
        .map(|n| join(name(n)))
        .find(|path| std::fs::symlink_metadata(root.join(path)).is_err())
        .unwrap_or_default()
}

/// A directory, not a symlink to one.
fn is_real_dir(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|meta| meta.is_dir())
}

/// File names below `dir` (a few levels deep, bounded, no symlinks
/// followed, dependency and hidden directories skipped).
fn file_names(dir: &Path) -> Vec<String> {
    let mut names = Vec::new();
    let mut pending: Vec<(PathBuf, usize)> = vec![(dir.to_path_buf(), 0)];
    let mut budget = SCAN_ENTRIES;
    while let Some((dir, depth)) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            if budget == 0 {
                return names;
            }
            budget -= 1;
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let name = entry.file_name().to_string_lossy().into_owned();
            if kind.is_dir() {
                if depth + 1 < SCAN_DEPTH
                    && !name.starts_with('.')
                    && !SKIPPED_DIRS.contains(&name.as_str())
                {
                    pending.push((entry.path(), depth + 1));
                }
            } else if kind.is_file() {
                names.push(name);
            }
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A temp tree with `files` (empty contents).
    fn tree(files: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        for file in files {
            let path = dir.path().join(file);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("dirs");
            std::fs::write(path, "").expect("file");
        }
        dir
    }

    #[test]
    fn python_tests_follow_the_prefix_convention_of_tests_dir() {
        let root = tree(&[
            "httpie/sessions.py",
            "tests/__init__.py",
            "tests/test_sessions.py",
            "tests/test_cli.py",
        ]);
        assert_eq!(
            place_python_test(root.path(), "httpie.sessions", "update_headers"),
            "tests/test_sessions_update_headers_replay.py"
        );
    }

    #[test]
    fn python_tests_follow_the_suffix_convention_of_test_dir() {
        let root = tree(&[
            "sched/scheduler.py",
            "test/scheduler_test.py",
            "test/queue_test.py",
            "test/test_legacy.py",
        ]);
        assert_eq!(
            place_python_test(root.path(), "sched.scheduler", "run"),
            "test/scheduler_run_replay_test.py"
        );
    }

    #[test]
    fn python_tests_prefer_the_fuller_of_tests_and_test() {
        let root = tree(&["test/test_a.py", "tests/a_test.py", "tests/b_test.py"]);
        assert_eq!(
            place_python_test(root.path(), "pkg.mod", "f"),
            "tests/mod_f_replay_test.py"
        );
        let root = tree(&["test/test_a.py", "test/test_b.py", "tests/a_test.py"]);
        assert_eq!(
            place_python_test(root.path(), "pkg.mod", "f"),
            "test/test_mod_f_replay.py"
        );
        let root = tree(&["test/a_test.py", "tests/test_a.py"]);
        assert_eq!(
            place_python_test(root.path(), "pkg.mod", "f"),
            "tests/test_mod_f_replay.py"
        );
    }

    #[test]
    fn python_tests_go_inside_the_package_when_its_tests_live_there_else_to_a_new_tests_dir() {
        let root = tree(&["shop/cart.py", "shop/tests/test_cart.py"]);
        assert_eq!(
            place_python_test(root.path(), "shop.cart", "total"),
            "shop/tests/test_cart_total_replay.py"
        );
        let root = tree(&["src/shop/cart.py", "src/shop/test/cart_test.py"]);
        assert_eq!(
            place_python_test(root.path(), "shop.cart", "total"),
            "src/shop/test/cart_total_replay_test.py"
        );
        let root = tree(&["shop/cart.py", "setup.py"]);
        assert_eq!(
            place_python_test(root.path(), "shop.cart", "total"),
            "tests/test_cart_total_replay.py"
        );
    }

    #[test]
    fn python_tests_never_take_a_used_name() {
        let root = tree(&[
            "tests/test_cart_total_replay.py",
            "tests/test_cart_total_replay_2.py",
        ]);
        assert_eq!(
            place_python_test(root.path(), "shop.cart", "total"),
            "tests/test_cart_total_replay_3.py"
        );
        let root = tree(&["test/cart_total_replay_test.py"]);
        assert_eq!(
            place_python_test(root.path(), "shop.cart", "total"),
            "test/cart_total_replay_2_test.py"
        );
        // A dangling symlink is a used name too: writing through it would
        // land elsewhere.
        let root = tree(&["tests/test_x.py"]);
        std::os::unix::fs::symlink(
            "/nonexistent/target",
            root.path().join("tests/test_cart_total_replay.py"),
        )
        .expect("symlink");
        assert_eq!(
            place_python_test(root.path(), "shop.cart", "total"),
            "tests/test_cart_total_replay_2.py"
        );
    }

    #[test]
    fn names_hold_only_identifier_characters() {
        let root = tree(&[]);
        assert_eq!(
            place_python_test(root.path(), "shop.cart", "<lambda>"),
            "tests/test_cart_lambda_replay.py"
        );
        assert_eq!(
            place_python_test(root.path(), "shop.cart", "../../x y"),
            "tests/test_cart_x_y_replay.py"
        );
        assert_eq!(
            place_python_test(root.path(), "shop.cart", "<>"),
            "tests/test_cart_call_replay.py"
        );
        let (path, _) = place_js_test(root.path(), "lib/my-cart.js", "get total");
        assert_eq!(path, "test/my_cart_get_total_replay.test.js");
    }

    #[test]
    fn a_symlinked_test_dir_is_not_followed() {
        let elsewhere = tree(&["test_outside.py", "test_more.py"]);
        let root = tree(&["test/a_test.py"]);
        std::os::unix::fs::symlink(elsewhere.path(), root.path().join("tests")).expect("symlink");
        assert_eq!(
            place_python_test(root.path(), "m", "f"),
            "test/m_f_replay_test.py"
        );
    }

    #[test]
    fn js_tests_follow_the_test_dir_and_its_majority_style() {
        let root = tree(&[
            "lib/cart.js",
            "test/a.test.js",
            "test/b.test.js",
            "test/c.spec.js",
        ]);
        assert_eq!(
            place_js_test(root.path(), "lib/cart.js", "total"),
            (
                "test/cart_total_replay.test.js".to_string(),
                "../lib/cart.js".to_string()
            )
        );
        let root = tree(&[
            "src/cart.ts",
            "__tests__/a.spec.ts",
            "__tests__/b.spec.ts",
            "__tests__/c.test.js",
        ]);
        assert_eq!(
            place_js_test(root.path(), "src/cart.ts", "total"),
            (
                "__tests__/cart_total_replay.spec.ts".to_string(),
                "../src/cart.ts".to_string()
            )
        );
        let root = tree(&[
            "src/cart.mjs",
            "tests/unit/a.test.mjs",
            "tests/b.test.mjs",
            "test/readme.md",
        ]);
        assert_eq!(
            place_js_test(root.path(), "src/cart.mjs", "total"),
            (
                "tests/cart_total_replay.test.mjs".to_string(),
                "../src/cart.mjs".to_string()
            )
        );
        let root = tree(&["lib/cart.cjs", "test/cart.cjs", "test/util.cjs"]);
        assert_eq!(
            place_js_test(root.path(), "lib/cart.cjs", "total"),
            (
                "test/cart_total_replay.cjs".to_string(),
                "../lib/cart.cjs".to_string()
            )
        );
    }

    #[test]
    fn js_tests_sit_beside_the_source_when_the_project_keeps_them_there() {
        let root = tree(&[
            "src/shop/cart.js",
            "src/shop/other.test.js",
            "node_modules/x/a.spec.ts",
        ]);
        assert_eq!(
            place_js_test(root.path(), "src/shop/cart.js", "total"),
            (
                "src/shop/cart_total_replay.test.js".to_string(),
                "./cart.js".to_string()
            )
        );
        // Tests only inside dependencies do not count.
        let root = tree(&["packages/shop/lib/cart.mjs", "node_modules/x/a.spec.ts"]);
        assert_eq!(
            place_js_test(root.path(), "./packages/shop/lib/cart.mjs", "total"),
            (
                "test/cart_total_replay.test.mjs".to_string(),
                "../packages/shop/lib/cart.mjs".to_string()
            )
        );
    }

    #[test]
    fn js_tests_never_take_a_used_name() {
        let root = tree(&["lib/cart.js", "test/cart_total_replay.test.js"]);
        assert_eq!(
            place_js_test(root.path(), "lib/cart.js", "total").0,
            "test/cart_total_replay_2.test.js"
        );
    }

    #[test]
    fn specifiers_climb_only_as_far_as_needed() {
        assert_eq!(relative_specifier("test", "lib/cart.js"), "../lib/cart.js");
        assert_eq!(
            relative_specifier("src/shop", "src/shop/cart.js"),
            "./cart.js"
        );
        assert_eq!(
            relative_specifier("src/shop/__tests__", "src/shop/cart.js"),
            "../cart.js"
        );
        assert_eq!(relative_specifier("test/unit", "cart.js"), "../../cart.js");
        assert_eq!(relative_specifier("", "lib/cart.js"), "./lib/cart.js");
    }
}

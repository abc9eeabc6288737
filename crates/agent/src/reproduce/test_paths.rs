//! What a reproduction may touch: test files, and in them only new lines.
//!
//! A model writes the reproduction test from event text an attacker may
//! control, and the test is later committed next to the fix. If it could
//! change application code, the "reproduction" would be a patch of its own
//! that nobody reviews as one; if it could rewrite or delete existing tests,
//! it could weaken the suite that proves the fix. So a reproduction patch
//! creates test files or adds lines to existing ones, and nothing else.
//!
//! [`is_test_path`] is judged from the path alone, by the conventions of the
//! supported runners, and is deliberately narrow: a file that matches is one
//! the runner treats as test code. Files that decide what the runner runs
//! (`conftest.py`, runner configuration) are test paths too, but the scope
//! policy for generated patches denies them before this rule is asked.

use std::path::Path;

use repo::scope::CheckedPatch;

/// Directory names whose contents are test code: pytest and unittest
/// (`test`, `tests`), Jest (`__tests__`), RSpec and Jasmine (`spec`), and
/// Maven/Gradle source sets (`src/test/...`).
const TEST_DIRS: [&str; 4] = ["test", "tests", "__tests__", "spec"];

/// Extensions of JavaScript and TypeScript test files (`*.test.js`,
/// `*.spec.ts`, ...).
const JS_EXTENSIONS: [&str; 6] = ["js", "mjs", "cjs", "ts", "tsx", "jsx"];

/// Whether `path` (relative to the repository root, `/`-separated) is a test
/// file by the conventions of the supported runners:
///
/// - any directory on the way is named `test`, `tests`, `__tests__` or
///   `spec` (so `src/test/java/.../FooTest.java` is one, while a
///   `FooTest.java` under `src/main` is not: Maven would not run it);
/// - Python: `test_*.py`, `*_test.py`, `*_tests.py`, `tests.py` (Django's
///   per-app module), `conftest.py`;
/// - JavaScript and TypeScript: `*.test.{js,mjs,cjs,ts,tsx,jsx}` and
///   `*.spec.{...}`;
/// - Go: `*_test.go`.
///
/// Names match exactly (case-sensitively), as the runners match them.
pub(crate) fn is_test_path(path: &str) -> bool {
    let path = path.trim_start_matches("./");
    let mut components: Vec<&str> = path.split('/').collect();
    let Some(file) = components.pop().filter(|file| !file.is_empty()) else {
        return false;
    };
    components.iter().any(|dir| TEST_DIRS.contains(dir)) || is_test_file_name(file)
}

/// Whether a file name alone marks a test file.
fn is_test_file_name(file: &str) -> bool {
    if let Some(stem) = file.strip_suffix(".py") {
        return (stem.starts_with("test_") && stem.len() > "test_".len())
            || (stem.ends_with("_test") && stem.len() > "_test".len())
            || (stem.ends_with("_tests") && stem.len() > "_tests".len())
            || stem == "tests"
            || stem == "conftest";
    }
    if let Some(stem) = file.strip_suffix("_test.go") {
        return !stem.is_empty();
    }
    let Some((rest, extension)) = file.rsplit_once('.') else {
        return false;
    };
    if !JS_EXTENSIONS.contains(&extension) {
        return false;
    }
    ["test", "spec"].iter().any(|kind| {
        rest.rsplit_once('.')
            .is_some_and(|(name, marker)| marker == *kind && !name.is_empty())
    })
}

/// Refuses a checked patch that is not test-only: every file must be a test
/// path ([`is_test_path`]), none may be deleted or renamed, and an existing
/// file may only gain lines. `root` is the work tree the patch was checked
/// against: a file the patch creates must not exist there and a file it
/// extends must, so a hand-built [`CheckedPatch`] cannot pass an edit off
/// as a new file. The error names the file and the reason, for the model.
pub(crate) fn check_test_only(patch: &CheckedPatch, root: &Path) -> Result<(), String> {
    if patch.files.is_empty() {
        return Err("the patch changes no file".to_string());
    }
    for file in &patch.files {
        let (old, new) = match (&file.old_path, &file.new_path) {
            (Some(old), None) => {
                return Err(format!(
                    "{old}: the patch deletes this file; a reproduction only adds tests"
                ));
            }
            (None, None) => return Err("a file section names no path".to_string()),
            (old, Some(new)) => (old.as_deref(), new.as_str()),
        };
        if let Some(old) = old.filter(|old| *old != new) {
            return Err(format!(
                "{old} -> {new}: the patch renames or copies a file; a reproduction only adds tests"
            ));
        }
        if !is_test_path(new) {
            return Err(format!(
                "{new} is not a test file: a reproduction may only create test files or add \
                 lines to existing ones (test files live in a test, tests, __tests__ or spec \
                 directory, or are named like test_*.py, *_test.py, *.test.js, *.spec.ts, \
                 *_test.go)"
            ));
        }
        let exists = std::fs::symlink_metadata(root.join(new)).is_ok();
        match old {
            None if exists => {
                return Err(format!(
                    "{new}: the patch creates a file that already exists"
                ));
            }
            Some(_) if !exists => {
                return Err(format!(
                    "{new}: the patch changes a file that does not exist"
                ));
            }
            Some(_) if file.removed > 0 => {
                return Err(format!(
                    "{new}: the patch removes or changes {} existing line(s); an existing test \
                     file may only gain lines",
                    file.removed
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use repo::scope::PatchFile;

    use super::*;

    #[test]
    fn test_paths_by_directory() {
        for path in [
            "tests/test_app.py",
            "tests/helpers.py",
            "test/app.js",
            "pkg/tests/unit/check.py",
            "src/__tests__/parse.js",
            "spec/models/user_spec.rb",
            "src/test/java/com/example/ParserTest.java",
            "./tests/test_app.py",
        ] {
            assert!(is_test_path(path), "{path} is a test path");
        }
    }

    #[test]
    fn test_paths_by_file_name() {
        for path in [
            "test_app.py",
            "app/test_stock.py",
            "app/stock_test.py",
            "app/stock_tests.py",
            "app/tests.py",
            "app/conftest.py",
            "src/parse.test.js",
            "src/parse.test.mjs",
            "src/parse.test.cjs",
            "src/parse.spec.ts",
            "src/parse.spec.tsx",
            "src/Parse.test.jsx",
            "pkg/parse_test.go",
        ] {
            assert!(is_test_path(path), "{path} is a test path");
        }
    }

    #[test]
    fn application_and_configuration_paths_are_not_test_paths() {
        for path in [
            "app.py",
            "app/stock.py",
            "app/testing.py",
            "app/contest.py",
            "app/test_.py",
            "app/_test.py",
            "testing/helpers.py",
            "tests",
            "tests/",
            "",
            "src/parse.js",
            "src/test.js",
            "src/parse.test.py.js",
            "src/latest.js",
            "src/.test.js",
            "src/parse.test.json",
            "pkg/parse.go",
            "pkg/_test.go",
            "src/main/java/com/example/ParserTest.java",
            "Tests/app.py",
            "attest/app.py",
            "package.json",
            "setup.py",
            ".github/workflows/test.yml",
        ] {
            assert!(!is_test_path(path), "{path:?} is not a test path");
        }
    }

    fn file(old: Option<&str>, new: Option<&str>, added: usize, removed: usize) -> PatchFile {
        PatchFile {
            old_path: old.map(str::to_string),
            new_path: new.map(str::to_string),
            added,
            removed,
        }
    }

    fn patch(files: Vec<PatchFile>) -> CheckedPatch {
        CheckedPatch {
            text: String::new(),
            files,
        }
    }

    /// A tree with one existing test file and one application file.
    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("tests")).unwrap();
        std::fs::write(
            dir.path().join("tests/test_app.py"),
            "def test_a():\n    pass\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("app.py"), "x = 1\n").unwrap();
        dir
    }

    #[test]
    fn new_test_files_and_additions_to_test_files_pass() {
        let dir = tree();
        let checked = patch(vec![
            file(None, Some("tests/test_repro.py"), 12, 0),
            file(Some("tests/test_app.py"), Some("tests/test_app.py"), 4, 0),
        ]);
        assert_eq!(check_test_only(&checked, dir.path()), Ok(()));
    }

    #[test]
    fn each_refusal_names_the_file_and_why() {
        let dir = tree();
        let cases = [
            (
                file(Some("app.py"), Some("app.py"), 1, 0),
                "app.py is not a test file",
            ),
            (
                file(None, Some("app/new.py"), 3, 0),
                "app/new.py is not a test file",
            ),
            (
                file(Some("tests/test_app.py"), Some("tests/test_app.py"), 1, 1),
                "tests/test_app.py: the patch removes or changes 1 existing line(s)",
            ),
            (
                file(Some("tests/test_app.py"), None, 0, 2),
                "tests/test_app.py: the patch deletes this file",
            ),
            (
                file(Some("tests/test_app.py"), Some("tests/test_old.py"), 0, 0),
                "tests/test_app.py -> tests/test_old.py: the patch renames or copies a file",
            ),
            (
                file(None, Some("tests/test_app.py"), 2, 0),
                "tests/test_app.py: the patch creates a file that already exists",
            ),
            (
                file(Some("tests/test_gone.py"), Some("tests/test_gone.py"), 2, 0),
                "tests/test_gone.py: the patch changes a file that does not exist",
            ),
        ];
        for (changed, expected) in cases {
            let checked = patch(vec![file(None, Some("tests/test_repro.py"), 5, 0), changed]);
            let error = check_test_only(&checked, dir.path()).unwrap_err();
            assert!(error.starts_with(expected), "{error}");
        }
        assert_eq!(
            check_test_only(&patch(vec![]), dir.path()),
            Err("the patch changes no file".to_string())
        );
    }
}

//! The policy as configuration, and violations as report data.

use expect_test::expect;

use super::{check_patch_with, render_violation};
use crate::scope::{ScopePolicy, ScopeViolation};

/// A configuration that sets one field keeps the defaults for the rest; an
/// unknown field is an error, not silently ignored.
#[test]
fn config_defaults() {
    let policy: ScopePolicy =
        serde_json::from_str(r#"{"max_files": 2}"#).expect("a partial policy parses");
    assert_eq!(
        policy,
        ScopePolicy {
            max_files: 2,
            ..ScopePolicy::default()
        }
    );
    let error = serde_json::from_str::<ScopePolicy>(r#"{"max_file": 2}"#)
        .expect_err("a misspelt field is refused");
    assert!(
        error.to_string().starts_with("unknown field `max_file`"),
        "{error}"
    );
}

/// A glob that does not compile is found by `validate` at startup, and by
/// `check` if it gets that far.
#[test]
fn invalid_glob() {
    let policy = ScopePolicy {
        deny: vec!["src/[".to_string()],
        ..ScopePolicy::default()
    };
    let violation = policy.validate().expect_err("the glob is invalid");
    expect![[
        r#"invalid_policy: invalid scope glob "src/[": unclosed character class; missing ']'"#
    ]]
    .assert_eq(&render_violation(&violation));
    check_patch_with(
        &policy,
        "--- a/src/lib.rs\n+++ b/src/lib.rs\n@@ -2 +2 @@\n-    a - b\n+    a + b\n",
        expect![[
            r#"invalid_policy: invalid scope glob "src/[": unclosed character class; missing ']'"#
        ]],
    );
    assert_eq!(ScopePolicy::default().validate(), Ok(()));
}

/// Smaller limits from the configuration apply.
#[test]
fn configured_limits() {
    let policy = ScopePolicy {
        max_files: 1,
        max_changed_lines: 1,
        ..ScopePolicy::default()
    };
    check_patch_with(
        &policy,
        "--- a/src/lib.rs\n+++ b/src/lib.rs\n@@ -2 +2 @@\n-    a - b\n+    a + b\n",
        expect!["too_many_lines: patch changes 2 lines, the limit is 1"],
    );
}

/// Violations serialise with their `kind` as the tag, for reports.
#[test]
fn violations_serialise_with_their_kind() {
    let violations = [
        ScopeViolation::Denied {
            path: ".env".to_string(),
            glob: ".env".to_string(),
        },
        ScopeViolation::TooManyFiles { files: 9, max: 8 },
        ScopeViolation::SearchMismatch {
            path: "src/lib.rs".to_string(),
            matches: 0,
        },
    ];
    let rendered: Vec<String> = violations
        .iter()
        .map(|violation| {
            let json = serde_json::to_string(violation).expect("serialising");
            assert!(json.contains(&format!(r#""kind":"{}""#, violation.kind())));
            json
        })
        .collect();
    expect![[r#"
        {"kind":"denied","path":".env","glob":".env"}
        {"kind":"too_many_files","files":9,"max":8}
        {"kind":"search_mismatch","path":"src/lib.rs","matches":0}"#]]
    .assert_eq(&rendered.join("\n"));
}

/// A model's patch may not touch what decides what CI or the build runs,
/// at the root or in a subdirectory, in any spelling; ordinary code and the
/// configured policy's own rules stay as they were.
#[test]
fn generated_patches_keep_off_build_and_ci_files() {
    let base = ScopePolicy::default();
    let generated = base.for_generated_patches();
    let denied = generated.denied_paths().expect("the globs compile");
    for path in [
        "conftest.py",
        "tests/conftest.py",
        "Makefile",
        "sub/makefile",
        "rules.mk",
        "package.json",
        "web/package.json",
        "build.rs",
        ".cargo/config.toml",
        ".pre-commit-config.yaml",
        ".husky/pre-commit",
        ".github/workflows/ci.yml",
        "CODEOWNERS",
        "docs/CODEOWNERS",
        "setup.py",
        "setup.cfg",
        "pyproject.toml",
        "tox.ini",
        "noxfile.py",
    ] {
        assert!(denied.glob_for(path).is_some(), "{path} is not denied");
    }
    for path in [
        "app/models.py",
        "src/lib.rs",
        "tests/test_stock.py",
        "README.md",
    ] {
        assert_eq!(denied.glob_for(path), None, "{path}");
    }
    let base_denied = base.denied_paths().expect("the globs compile");
    assert_eq!(
        base_denied.glob_for("Makefile"),
        None,
        "a revert may touch it"
    );
    assert_eq!(base_denied.glob_for(".env"), Some(".env"));
    assert_eq!(
        generated.for_generated_patches(),
        generated,
        "adding the rule twice changes nothing"
    );
    check_patch_with(
        &generated,
        "--- a/tests/conftest.py\n+++ b/tests/conftest.py\n@@ -1 +1 @@\n-x = 1\n+x = 2\n",
        expect![[r#"denied: path "tests/conftest.py" is denied by scope glob "**/conftest.py""#]],
    );
}

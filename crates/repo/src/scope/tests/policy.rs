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

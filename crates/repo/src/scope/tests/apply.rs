//! `apply` on its own: it re-checks the text against the work tree it is
//! given, and either applies the whole patch or changes nothing.

use std::fs;

use expect_test::expect;

use super::{Fixture, dedent, render_violation};
use crate::scope::{CheckedPatch, PatchFile, ScopePolicy, check};

const FIX: &str = r#"
    diff --git a/src/lib.rs b/src/lib.rs
    --- a/src/lib.rs
    +++ b/src/lib.rs
    @@ -2 +2 @@
    -    a - b
    +    a + b
    "#;

/// Checked against one checkout, applied to a fresh one: the usual flow,
/// where the sandbox gets its own work tree.
#[test]
fn applies_to_another_checkout() {
    let checked_in = Fixture::new();
    let applied_in = Fixture::new();
    let checked = checked_in.check(&dedent(FIX)).expect("the fix is accepted");
    expect![[r#"
        changed src/lib.rs:
          |pub fn add(a: i32, b: i32) -> i32 {
          |    a + b
          |}
          |
          |pub fn double(x: i32) -> i32 {
          |    x * 2
          |}
    "#]]
    .assert_eq(&applied_in.apply(&checked));
}

/// The second checkout has moved on: the patch no longer applies and
/// nothing is written.
#[test]
fn stale_checkout_is_left_alone() {
    let checked_in = Fixture::new();
    let applied_in = Fixture::new();
    applied_in.write(
        "src/lib.rs",
        "pub fn add(a: i32, b: i32) -> i32 {\n    b + a\n}\n",
    );
    let checked = checked_in.check(&dedent(FIX)).expect("the fix is accepted");
    expect![[
        r#"does_not_apply: patch does not apply: "src/lib.rs": hunk at line 2 did not apply"#
    ]]
    .assert_eq(&applied_in.apply(&checked));
}

/// A symlink that appeared in the target checkout after the check (or a
/// checkout the check never saw) is caught by `apply` itself.
#[test]
fn symlink_in_target_checkout() {
    let checked_in = Fixture::new();
    let applied_in = Fixture::new();
    fs::remove_file(applied_in.root().join("src/lib.rs")).expect("removing lib.rs");
    std::os::unix::fs::symlink(
        applied_in.outside_dir.path().join("secret.txt"),
        applied_in.root().join("src/lib.rs"),
    )
    .expect("linking lib.rs");
    let checked = checked_in.check(&dedent(FIX)).expect("the fix is accepted");
    expect![[r#"outside_repository: path "src/lib.rs" leaves the work tree (absolute, `..`, `.git`, control characters or a symlink on the way)"#]]
        .assert_eq(&applied_in.apply(&checked));
}

/// A `CheckedPatch` built by hand (or loaded from storage) cannot skip the
/// checks: `apply` parses `text` again and ignores `files`.
#[test]
fn hand_built_patch_is_rechecked() {
    let fixture = Fixture::new();
    let forged = CheckedPatch {
        text: "diff --git a/../escape.txt b/../escape.txt\nnew file mode 100644\n--- /dev/null\n+++ b/../escape.txt\n@@ -0,0 +1 @@\n+x\n".to_string(),
        files: vec![PatchFile {
            old_path: None,
            new_path: Some("src/harmless.rs".to_string()),
            added: 1,
            removed: 0,
        }],
    };
    expect![[r#"outside_repository: path "../escape.txt" leaves the work tree (absolute, `..`, `.git`, control characters or a symlink on the way)"#]]
        .assert_eq(&fixture.apply(&forged));
    assert!(!fixture.root().join("../escape.txt").exists());
}

/// When the second of two files does not apply, the first is not written
/// either.
#[test]
fn all_or_nothing() {
    let checked_in = Fixture::new();
    let applied_in = Fixture::new();
    applied_in.write("src/util.rs", "pub fn id(y: i32) -> i32 {\n    y\n}\n");
    let patch = dedent(
        r#"
        diff --git a/src/lib.rs b/src/lib.rs
        --- a/src/lib.rs
        +++ b/src/lib.rs
        @@ -2 +2 @@
        -    a - b
        +    a + b
        diff --git a/src/util.rs b/src/util.rs
        --- a/src/util.rs
        +++ b/src/util.rs
        @@ -2 +2 @@
        -    x
        +    x + 0
        "#,
    );
    let checked = check(&ScopePolicy::default(), checked_in.root(), &patch).expect("accepted");
    expect![[
        r#"does_not_apply: patch does not apply: "src/util.rs": hunk at line 2 did not apply"#
    ]]
    .assert_eq(&applied_in.apply(&checked));
}

/// A directory that is not the root of a git work tree.
#[test]
fn not_a_work_tree() {
    let fixture = Fixture::new();
    let checked = fixture.check(&dedent(FIX)).expect("the fix is accepted");
    let violation = crate::scope::apply(fixture.outside_dir.path(), &checked)
        .expect_err("the outside directory is no repository");
    let rendered = hide_outside(&fixture, &render_violation(&violation));
    expect![[r#"does_not_apply: patch does not apply: "src/lib.rs" does not exist or is not a regular file"#]]
        .assert_eq(&rendered);
    fs::create_dir(fixture.outside_dir.path().join("src")).expect("creating src");
    fs::write(fixture.outside_dir.path().join("src/lib.rs"), super::LIB_RS).expect("writing");
    let violation = crate::scope::apply(fixture.outside_dir.path(), &checked)
        .expect_err("the outside directory is no repository");
    let rendered = hide_outside(&fixture, &render_violation(&violation));
    expect!["does_not_apply: patch does not apply: cannot use the work tree <outside>: could not find repository at '<outside>'"]
        .assert_eq(&rendered);
}

fn hide_outside(fixture: &Fixture, text: &str) -> String {
    let outside = fixture.outside_dir.path();
    text.replace(&format!("{outside:?}"), "<outside>")
        .replace(&outside.display().to_string(), "<outside>")
}

//! Search-and-replace edits turned into diffs, which then go through
//! `check` and `apply` like any patch.

use expect_test::{Expect, expect};

use super::{Fixture, render_checked, render_violation};
use crate::scope::{Edit, diff_from_edits};

fn edit(path: &str, search: &str, replace: &str) -> Edit {
    Edit {
        path: path.to_string(),
        search: search.to_string(),
        replace: replace.to_string(),
    }
}

/// Turns `edits` into a diff on a fresh fixture, then checks and applies
/// it; snapshots the diff, the verdict and the change to the tree (or the
/// first refusal).
fn check_edits(edits: &[Edit], expect: Expect) {
    let fixture = Fixture::new();
    let before = fixture.snapshot();
    let diff = diff_from_edits(fixture.root(), edits);
    assert_eq!(
        before,
        fixture.snapshot(),
        "diff_from_edits changed the tree"
    );
    let rendered = match diff {
        Err(violation) => render_violation(&violation),
        Ok(diff) => match fixture.check(&diff) {
            Ok(checked) => format!(
                "{diff}===\n{}===\n{}",
                render_checked(&checked),
                fixture.apply(&checked)
            ),
            Err(violation) => format!("{diff}===\n{}", render_violation(&violation)),
        },
    };
    expect.assert_eq(&rendered);
}

/// One edit whose search text occurs once: the diff passes `check`, and
/// applying it yields the edited file.
#[test]
fn single_match() {
    check_edits(
        &[edit("src/lib.rs", "    a - b\n", "    a + b\n")],
        expect![[r#"
            diff --git a/src/lib.rs b/src/lib.rs
            --- a/src/lib.rs
            +++ b/src/lib.rs
            @@ -1,5 +1,5 @@
             pub fn add(a: i32, b: i32) -> i32 {
            -    a - b
            +    a + b
             }
             
             pub fn double(x: i32) -> i32 {
            ===
            M src/lib.rs +1 -1
            ---
            diff --git a/src/lib.rs b/src/lib.rs
            index 0000000..0000000 100644
            --- a/src/lib.rs
            +++ b/src/lib.rs
            @@ -1,5 +1,5 @@
             pub fn add(a: i32, b: i32) -> i32 {
            -    a - b
            +    a + b
             }
             
             pub fn double(x: i32) -> i32 {
            ===
            changed src/lib.rs:
              |pub fn add(a: i32, b: i32) -> i32 {
              |    a + b
              |}
              |
              |pub fn double(x: i32) -> i32 {
              |    x * 2
              |}
        "#]],
    );
}

/// Search text that is not in the file, or is in it twice (overlapping
/// occurrences count: `x` appears in `x`, `x * 2`, …).
#[test]
fn zero_and_several_matches() {
    check_edits(
        &[edit("src/lib.rs", "a * b", "a + b")],
        expect![[
            r#"search_mismatch: search text not found in "src/lib.rs", it must occur exactly once"#
        ]],
    );
    check_edits(
        &[edit("src/lib.rs", "i32) -> i32 {", "i64) -> i64 {")],
        expect![[
            r#"search_mismatch: search text occurs 2 times in "src/lib.rs", it must occur exactly once"#
        ]],
    );
    check_edits(
        &[edit("README.md", "\n", "\r\n")],
        expect![[
            r#"search_mismatch: search text occurs 3 times in "README.md", it must occur exactly once"#
        ]],
    );
}

/// Overlapping occurrences make a search ambiguous even when
/// non-overlapping counting finds one.
#[test]
fn overlapping_matches_are_ambiguous() {
    let fixture = Fixture::new();
    fixture.write("src/data.txt", "aaa\n");
    let violation = diff_from_edits(fixture.root(), &[edit("src/data.txt", "aa", "b")])
        .expect_err("`aa` occurs twice in `aaa`");
    expect![[r#"search_mismatch: search text occurs 2 times in "src/data.txt", it must occur exactly once"#]]
        .assert_eq(&render_violation(&violation));
}

/// An empty search on a missing path creates the file; the diff passes
/// `check` and the file appears with exactly the replacement text.
#[test]
fn new_file() {
    check_edits(
        &[edit("src/math/mod.rs", "", "pub mod add;\npub mod sub;")],
        expect![[r#"
            diff --git a/src/math/mod.rs b/src/math/mod.rs
            new file mode 100644
            --- /dev/null
            +++ b/src/math/mod.rs
            @@ -0,0 +1,2 @@
            +pub mod add;
            +pub mod sub;
            \ No newline at end of file
            ===
            A src/math/mod.rs +2 -0
            ---
            diff --git a/src/math/mod.rs b/src/math/mod.rs
            new file mode 100644
            --- /dev/null
            +++ b/src/math/mod.rs
            @@ -0,0 +1,2 @@
            +pub mod add;
            +pub mod sub;
            \ No newline at end of file
            ===
            added src/math: Dir
            added src/math/mod.rs:
              |pub mod add;
              |pub mod sub;
        "#]],
    );
}

/// An empty search on an existing file, and a search in a missing one.
#[test]
fn create_existing_and_edit_missing() {
    check_edits(
        &[edit("src/lib.rs", "", "pub fn replaced() {}\n")],
        expect![[
            r#"file_exists: cannot create "src/lib.rs": it already exists (give a search text to edit it)"#
        ]],
    );
    check_edits(
        &[edit("src/missing.rs", "fn main", "fn start")],
        expect![[
            r#"no_such_file: cannot edit "src/missing.rs": no such file (an empty search creates a new file)"#
        ]],
    );
}

/// An edit to a CI workflow makes a perfectly good diff, which `check` then
/// denies.
#[test]
fn edit_to_ci_is_denied_by_check() {
    check_edits(
        &[edit(
            ".github/workflows/ci.yml",
            "jobs: {}",
            "jobs: {pwn: {}}",
        )],
        expect![[r#"
            diff --git a/.github/workflows/ci.yml b/.github/workflows/ci.yml
            --- a/.github/workflows/ci.yml
            +++ b/.github/workflows/ci.yml
            @@ -1,2 +1,2 @@
             on: push
            -jobs: {}
            +jobs: {pwn: {}}
            ===
            denied: path ".github/workflows/ci.yml" is denied by scope glob ".github/**""#]],
    );
}

/// Paths that leave the tree are refused before anything is read, so the
/// content of a file outside can never end up in a diff.
#[test]
fn escaping_paths_are_not_read() {
    check_edits(
        &[edit("../../etc/passwd", "root", "toor")],
        expect![[
            r#"outside_repository: path "../../etc/passwd" leaves the work tree (absolute, `..`, `.git`, control characters or a symlink on the way)"#
        ]],
    );
    check_edits(
        &[edit("notes.txt", "outside", "inside")],
        expect![[
            r#"outside_repository: path "notes.txt" leaves the work tree (absolute, `..`, `.git`, control characters or a symlink on the way)"#
        ]],
    );
    check_edits(
        &[edit("vendor/secret.txt", "outside", "inside")],
        expect![[
            r#"outside_repository: path "vendor/secret.txt" leaves the work tree (absolute, `..`, `.git`, control characters or a symlink on the way)"#
        ]],
    );
}

/// Several edits to one file apply in order, each to the previous result;
/// an executable script stays executable.
#[test]
fn sequential_edits_and_scripts() {
    check_edits(
        &[
            edit("scripts/run.sh", "echo run\n", "echo start\necho run\n"),
            edit("scripts/run.sh", "echo run\n", "echo done\n"),
            edit("src/util.rs", "    x\n", "    x + 0\n"),
        ],
        expect![[r#"
            diff --git a/scripts/run.sh b/scripts/run.sh
            --- a/scripts/run.sh
            +++ b/scripts/run.sh
            @@ -1,2 +1,3 @@
             #!/bin/sh
            -echo run
            +echo start
            +echo done
            diff --git a/src/util.rs b/src/util.rs
            --- a/src/util.rs
            +++ b/src/util.rs
            @@ -1,3 +1,3 @@
             pub fn id(x: i32) -> i32 {
            -    x
            +    x + 0
             }
            ===
            M scripts/run.sh +2 -1
            M src/util.rs +1 -1
            ---
            diff --git a/scripts/run.sh b/scripts/run.sh
            index 0000000..0000000 100755
            --- a/scripts/run.sh
            +++ b/scripts/run.sh
            @@ -1,2 +1,3 @@
             #!/bin/sh
            -echo run
            +echo start
            +echo done
            diff --git a/src/util.rs b/src/util.rs
            index 0000000..0000000 100644
            --- a/src/util.rs
            +++ b/src/util.rs
            @@ -1,3 +1,3 @@
             pub fn id(x: i32) -> i32 {
            -    x
            +    x + 0
             }
            ===
            changed scripts/run.sh (executable):
              |#!/bin/sh
              |echo start
              |echo done
            changed src/util.rs:
              |pub fn id(x: i32) -> i32 {
              |    x + 0
              |}
        "#]],
    );
}

/// Edits that change nothing, no edits at all, and a replacement with a
/// NUL byte.
#[test]
fn nothing_to_do_and_binary() {
    check_edits(
        &[edit("src/util.rs", "    x\n", "    x\n")],
        expect!["malformed: malformed patch: the edits change nothing"],
    );
    check_edits(
        &[],
        expect!["malformed: malformed patch: the edits change nothing"],
    );
    check_edits(
        &[edit("src/util.rs", "    x\n", "    x\0\n")],
        expect![[r#"binary: binary change to "src/util.rs""#]],
    );
}

//! Patches the guard accepts: checked, re-rendered canonically, applied, and
//! the tree changed exactly as intended.

use expect_test::expect;

use super::{Fixture, check_and_apply, check_patch, dedent};

/// A one-line fix in a source file: stats are right, the canonical text
/// carries the file's mode, and applying it changes that line only.
#[test]
fn small_fix_applies() {
    check_and_apply(
        r#"
        diff --git a/src/lib.rs b/src/lib.rs
        index 3b18e51..a8f9c2e 100644
        --- a/src/lib.rs
        +++ b/src/lib.rs
        @@ -1,3 +1,3 @@
         pub fn add(a: i32, b: i32) -> i32 {
        -    a - b
        +    a + b
         }
        "#,
        expect![[r#"
            M src/lib.rs +1 -1
            ---
            diff --git a/src/lib.rs b/src/lib.rs
            index 0000000..0000000 100644
            --- a/src/lib.rs
            +++ b/src/lib.rs
            @@ -1,3 +1,3 @@
             pub fn add(a: i32, b: i32) -> i32 {
            -    a - b
            +    a + b
             }
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

/// A plain `---`/`+++` diff (no `diff --git` line, timestamps after tabs,
/// libgit2 cannot read it) is accepted and rendered as a git diff.
#[test]
fn plain_diff_is_rendered_as_git_diff() {
    check_and_apply(
        "--- a/src/util.rs\t2024-05-01 10:00:00\n+++ b/src/util.rs\t2024-05-01 10:01:00\n@@ -2 +2 @@\n-    x\n+    x + 0\n",
        expect![[r#"
            M src/util.rs +1 -1
            ---
            diff --git a/src/util.rs b/src/util.rs
            index 0000000..0000000 100644
            --- a/src/util.rs
            +++ b/src/util.rs
            @@ -2,1 +2,1 @@
            -    x
            +    x + 0
            ===
            changed src/util.rs:
              |pub fn id(x: i32) -> i32 {
              |    x + 0
              |}
        "#]],
    );
}

/// One patch that creates, deletes and renames-with-an-edit: every file's
/// status and counts are reported and the tree ends up as described.
#[test]
fn create_delete_and_rename_apply_together() {
    check_and_apply(
        r#"
        diff --git a/src/new.rs b/src/new.rs
        new file mode 100644
        index 0000000..1111111
        --- /dev/null
        +++ b/src/new.rs
        @@ -0,0 +1,2 @@
        +// new module
        +pub const ANSWER: i32 = 42;
        diff --git a/README.md b/README.md
        deleted file mode 100644
        --- a/README.md
        +++ /dev/null
        @@ -1,3 +0,0 @@
        -# demo
        -
        -A demo project.
        diff --git a/src/util.rs b/src/helpers.rs
        similarity index 67%
        rename from src/util.rs
        rename to src/helpers.rs
        index 2222222..3333333 100644
        --- a/src/util.rs
        +++ b/src/helpers.rs
        @@ -1,3 +1,3 @@
         pub fn id(x: i32) -> i32 {
        -    x
        +    x.clone()
         }
        "#,
        expect![[r#"
            A src/new.rs +2 -0
            D README.md +0 -3
            R src/util.rs -> src/helpers.rs +1 -1
            ---
            diff --git a/src/new.rs b/src/new.rs
            new file mode 100644
            --- /dev/null
            +++ b/src/new.rs
            @@ -0,0 +1,2 @@
            +// new module
            +pub const ANSWER: i32 = 42;
            diff --git a/README.md b/README.md
            deleted file mode 100644
            --- a/README.md
            +++ /dev/null
            @@ -1,3 +0,0 @@
            -# demo
            -
            -A demo project.
            diff --git a/src/util.rs b/src/helpers.rs
            similarity index 67%
            rename from src/util.rs
            rename to src/helpers.rs
            index 0000000..0000000 100644
            --- a/src/util.rs
            +++ b/src/helpers.rs
            @@ -1,3 +1,3 @@
             pub fn id(x: i32) -> i32 {
            -    x
            +    x.clone()
             }
            ===
            removed README.md
            added src/helpers.rs:
              |pub fn id(x: i32) -> i32 {
              |    x.clone()
              |}
            added src/new.rs:
              |// new module
              |pub const ANSWER: i32 = 42;
            removed src/util.rs
        "#]],
    );
}

/// Editing an executable script keeps it executable, even when the patch's
/// `index` line (as a model might copy it) says 100644: libgit2 would drop
/// the bit without the mode the guard renders from the work tree.
#[test]
fn script_stays_executable() {
    check_and_apply(
        r#"
        diff --git a/scripts/run.sh b/scripts/run.sh
        index 1111111..2222222 100644
        --- a/scripts/run.sh
        +++ b/scripts/run.sh
        @@ -1,2 +1,2 @@
         #!/bin/sh
        -echo run
        +echo running
        "#,
        expect![[r#"
            M scripts/run.sh +1 -1
            ---
            diff --git a/scripts/run.sh b/scripts/run.sh
            index 0000000..0000000 100755
            --- a/scripts/run.sh
            +++ b/scripts/run.sh
            @@ -1,2 +1,2 @@
             #!/bin/sh
            -echo run
            +echo running
            ===
            changed scripts/run.sh (executable):
              |#!/bin/sh
              |echo running
        "#]],
    );
}

/// Asking for 100755 is fine for a file that is executable already (and
/// with nothing else to do, no change at all); a script may lose its
/// executable bit.
#[test]
fn executable_bit_kept_or_dropped() {
    check_patch(
        r#"
        diff --git a/scripts/run.sh b/scripts/run.sh
        old mode 100644
        new mode 100755
        --- a/scripts/run.sh
        +++ b/scripts/run.sh
        @@ -2 +2 @@
        -echo run
        +echo ran
        "#,
        expect![[r#"
            M scripts/run.sh +1 -1
            ---
            diff --git a/scripts/run.sh b/scripts/run.sh
            index 0000000..0000000 100755
            --- a/scripts/run.sh
            +++ b/scripts/run.sh
            @@ -2,1 +2,1 @@
            -echo run
            +echo ran
        "#]],
    );
    check_patch(
        r#"
        diff --git a/scripts/run.sh b/scripts/run.sh
        old mode 100644
        new mode 100755
        "#,
        expect![[
            r#"malformed: malformed patch: line 1: "scripts/run.sh" has no changes, its mode is 100755 already"#
        ]],
    );
    check_and_apply(
        r#"
        diff --git a/scripts/run.sh b/scripts/run.sh
        old mode 100755
        new mode 100644
        "#,
        expect![[r#"
            M scripts/run.sh +0 -0
            ---
            diff --git a/scripts/run.sh b/scripts/run.sh
            old mode 100755
            new mode 100644
            index 0000000..0000000
            --- a/scripts/run.sh
            +++ b/scripts/run.sh
            ===
            changed scripts/run.sh:
              |#!/bin/sh
              |echo run
        "#]],
    );
}

/// A pure rename of a script keeps its mode (libgit2 alone would make the
/// new file 100644).
#[test]
fn pure_rename_of_script() {
    check_and_apply(
        r#"
        diff --git a/scripts/run.sh b/scripts/start.sh
        similarity index 100%
        rename from scripts/run.sh
        rename to scripts/start.sh
        "#,
        expect![[r#"
            R scripts/run.sh -> scripts/start.sh +0 -0
            ---
            diff --git a/scripts/run.sh b/scripts/start.sh
            similarity index 100%
            rename from scripts/run.sh
            rename to scripts/start.sh
            index 0000000..0000000 100755
            --- a/scripts/run.sh
            +++ b/scripts/start.sh
            ===
            removed scripts/run.sh
            added scripts/start.sh (executable):
              |#!/bin/sh
              |echo run
        "#]],
    );
}

/// Names with spaces and non-ASCII characters, quoted the git way, and an
/// empty file created from a header alone (libgit2 needs the `---`/`+++`
/// lines the guard adds).
#[test]
fn quoted_names_and_empty_file() {
    check_and_apply(
        r#"
        diff --git "a/docs/user guide \303\274.md" "b/docs/user guide \303\274.md"
        new file mode 100644
        --- /dev/null
        +++ "b/docs/user guide \303\274.md"
        @@ -0,0 +1 @@
        +Grüße
        diff --git a/src/empty.rs b/src/empty.rs
        new file mode 100644
        index 0000000..e69de29
        "#,
        expect![[r#"
            A docs/user guide ü.md +1 -0
            A src/empty.rs +0 -0
            ---
            diff --git "a/docs/user guide \303\274.md" "b/docs/user guide \303\274.md"
            new file mode 100644
            --- /dev/null
            +++ "b/docs/user guide \303\274.md"
            @@ -0,0 +1,1 @@
            +Grüße
            diff --git a/src/empty.rs b/src/empty.rs
            new file mode 100644
            --- /dev/null
            +++ b/src/empty.rs
            ===
            added docs: Dir
            added docs/user guide ü.md:
              |Grüße
            added src/empty.rs:
        "#]],
    );
}

/// A blank line inside a hunk is an empty context line (as GNU patch and
/// git read it; libgit2 does not, so the guard renders it as " "), and a
/// last line without a newline keeps git's marker.
#[test]
fn blank_context_and_missing_newline() {
    let fixture = Fixture::new();
    let patch = dedent(
        r#"
        diff --git a/src/lib.rs b/src/lib.rs
        --- a/src/lib.rs
        +++ b/src/lib.rs
        @@ -3,5 +3,5 @@
         }

         pub fn double(x: i32) -> i32 {
        -    x * 2
        +    x + x
         }
        diff --git a/README.md b/README.md
        --- a/README.md
        +++ b/README.md
        @@ -3 +3 @@
        -A demo project.
        +A demo project, without a newline.
        \ No newline at end of file
        "#,
    );
    let checked = fixture.check(&patch).expect("the patch is accepted");
    assert!(
        checked.text.contains("\n }\n \n pub fn double"),
        "{}",
        checked.text
    );
    expect![[r#"
        changed README.md:
          |# demo
          |
          |A demo project, without a newline.
        changed src/lib.rs:
          |pub fn add(a: i32, b: i32) -> i32 {
          |    a - b
          |}
          |
          |pub fn double(x: i32) -> i32 {
          |    x + x
          |}
    "#]]
    .assert_eq(&fixture.apply(&checked));
    assert_eq!(
        fixture.read("README.md"),
        "# demo\n\nA demo project, without a newline."
    );
}

/// Blank lines between hunks (as models like to write them) separate the
/// hunks; they are not context.
#[test]
fn blank_lines_between_hunks() {
    check_patch(
        r#"
        diff --git a/src/lib.rs b/src/lib.rs
        --- a/src/lib.rs
        +++ b/src/lib.rs

        @@ -2 +2 @@
        -    a - b
        +    a + b

        @@ -6 +6 @@
        -    x * 2
        +    x + x

        "#,
        expect![[r#"
            M src/lib.rs +2 -2
            ---
            diff --git a/src/lib.rs b/src/lib.rs
            index 0000000..0000000 100644
            --- a/src/lib.rs
            +++ b/src/lib.rs
            @@ -2,1 +2,1 @@
            -    a - b
            +    a + b
            @@ -6,1 +6,1 @@
            -    x * 2
            +    x + x
        "#]],
    );
}

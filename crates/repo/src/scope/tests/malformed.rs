//! Text that is not a unified diff the guard can read one way only. Each
//! message carries the line number, because it goes back to the model.

use expect_test::expect;

use super::check_patch;

/// Prose instead of a diff.
#[test]
fn garbage() {
    check_patch(
        "Sure! Here is the fix:\nchange a - b to a + b\n",
        expect![[
            r#"malformed: malformed patch: line 1: expected `diff --git` or `---`, found "Sure! Here is the fix:""#
        ]],
    );
}

/// Text before the first header: git would skip it, the guard reads
/// exactly what it is given.
#[test]
fn prose_before_the_diff() {
    check_patch(
        r#"
        Here is the fix:
        diff --git a/src/lib.rs b/src/lib.rs
        --- a/src/lib.rs
        +++ b/src/lib.rs
        @@ -2 +2 @@
        -    a - b
        +    a + b
        "#,
        expect![[
            r#"malformed: malformed patch: line 1: expected `diff --git` or `---`, found "Here is the fix:""#
        ]],
    );
}

/// Nothing, or only blank lines.
#[test]
fn empty_patch() {
    check_patch("", expect!["malformed: malformed patch: empty patch"]);
    check_patch(
        "\n  \n\n",
        expect!["malformed: malformed patch: empty patch"],
    );
}

/// The patch ends in the middle of a hunk.
#[test]
fn truncated_hunk() {
    check_patch(
        r#"
        diff --git a/src/lib.rs b/src/lib.rs
        --- a/src/lib.rs
        +++ b/src/lib.rs
        @@ -1,3 +1,3 @@
         pub fn add(a: i32, b: i32) -> i32 {
        -    a - b
        "#,
        expect![
            "malformed: malformed patch: line 4: truncated hunk, the patch ends 1 old and 2 new lines early"
        ],
    );
}

/// The header counts more lines than the hunk has before the next file.
#[test]
fn hunk_shorter_than_its_header() {
    check_patch(
        r#"
        diff --git a/src/lib.rs b/src/lib.rs
        --- a/src/lib.rs
        +++ b/src/lib.rs
        @@ -1,4 +1,4 @@
         pub fn add(a: i32, b: i32) -> i32 {
        -    a - b
        +    a + b
         }
        diff --git a/src/util.rs b/src/util.rs
        --- a/src/util.rs
        +++ b/src/util.rs
        @@ -2 +2 @@
        -    x
        +    x + 0
        "#,
        expect![[
            r#"malformed: malformed patch: line 9: "diff --git a/src/util.rs b/src/util.rs" ends the hunk at line 4 before its header's count (1 old and 1 new lines missing)"#
        ]],
    );
}

/// The header counts fewer lines than the hunk has: libgit2 would silently
/// drop the extra `+` line, the guard refuses.
#[test]
fn hunk_longer_than_its_header() {
    check_patch(
        r#"
        diff --git a/src/lib.rs b/src/lib.rs
        --- a/src/lib.rs
        +++ b/src/lib.rs
        @@ -2 +2 @@
        -    a - b
        +    a + b
        +    // and one more line git would not see
        "#,
        expect![[
            r#"malformed: malformed patch: line 7: unexpected "+    // and one more line git would not see" after the hunk at line 4 (its header counts fewer lines)"#
        ]],
    );
    check_patch(
        r#"
        diff --git a/src/lib.rs b/src/lib.rs
        --- a/src/lib.rs
        +++ b/src/lib.rs
        @@ -1,2 +1,2 @@
         pub fn add(a: i32, b: i32) -> i32 {
        -    a - b
        -    a - b
        +    a + b
        "#,
        expect![
            "malformed: malformed patch: line 7: the hunk at line 4 has more lines than its header counts"
        ],
    );
}

/// A hunk with no file header, and a file header with no hunks.
#[test]
fn headers_and_hunks_out_of_place() {
    check_patch(
        "@@ -1 +1 @@\n-a\n+b\n",
        expect!["malformed: malformed patch: line 1: hunk header outside a file section"],
    );
    check_patch(
        "--- a/src/lib.rs\n+++ b/src/lib.rs\n",
        expect!["malformed: malformed patch: line 1: file header without hunks"],
    );
    check_patch(
        "diff --git a/src/lib.rs b/src/lib.rs\n",
        expect![[r#"malformed: malformed patch: line 1: "src/lib.rs" has no changes"#]],
    );
}

/// A bad hunk header.
#[test]
fn bad_hunk_header() {
    check_patch(
        "--- a/src/lib.rs\n+++ b/src/lib.rs\n@@ -x +1 @@\n-a\n+b\n",
        expect![[r#"malformed: malformed patch: line 3: bad hunk header "@@ -x +1 @@""#]],
    );
}

/// CRLF line endings would otherwise surface as a path ending in `\r`.
#[test]
fn crlf_line_endings() {
    check_patch(
        "--- a/src/lib.rs\r\n+++ b/src/lib.rs\r\n@@ -2 +2 @@\r\n-    a - b\r\n+    a + b\r\n",
        expect![
            "malformed: malformed patch: line 1: header line ends with a carriage return (CRLF line endings)"
        ],
    );
}

/// Plain diffs need the `a/`/`b/` prefixes git and libgit2 assume.
#[test]
fn missing_prefix() {
    check_patch(
        "--- src/lib.rs\n+++ src/lib.rs\n@@ -2 +2 @@\n-    a - b\n+    a + b\n",
        expect![[
            r#"malformed: malformed patch: line 1: path "src/lib.rs" does not start with a/ or b/"#
        ]],
    );
}

/// The `diff --git` line and the `---`/`+++` lines name different files.
#[test]
fn names_disagree() {
    check_patch(
        r#"
        diff --git a/src/lib.rs b/src/lib.rs
        --- a/src/util.rs
        +++ b/src/util.rs
        @@ -2 +2 @@
        -    x
        +    x + 0
        "#,
        expect![[
            r#"malformed: malformed patch: line 1: file names disagree: "src/util.rs" and "src/lib.rs""#
        ]],
    );
}

/// Copies are refused; a new file is written out in full instead.
#[test]
fn copies() {
    check_patch(
        r#"
        diff --git a/src/util.rs b/src/util2.rs
        similarity index 100%
        copy from src/util.rs
        copy to src/util2.rs
        "#,
        expect![
            "malformed: malformed patch: line 1: copies are not supported, create the new file in full"
        ],
    );
}

/// Hunks out of order, and the same file in two sections.
#[test]
fn overlapping_hunks_and_repeated_files() {
    check_patch(
        r#"
        diff --git a/src/lib.rs b/src/lib.rs
        --- a/src/lib.rs
        +++ b/src/lib.rs
        @@ -6 +6 @@
        -    x * 2
        +    x + x
        @@ -2 +2 @@
        -    a - b
        +    a + b
        "#,
        expect![
            "malformed: malformed patch: line 7: hunk overlaps or comes before the hunk at line 4"
        ],
    );
    check_patch(
        r#"
        diff --git a/src/lib.rs b/src/lib.rs
        --- a/src/lib.rs
        +++ b/src/lib.rs
        @@ -2 +2 @@
        -    a - b
        +    a + b
        diff --git a/src/lib.rs b/src/lib.rs
        --- a/src/lib.rs
        +++ b/src/lib.rs
        @@ -6 +6 @@
        -    x * 2
        +    x + x
        "#,
        expect![[
            r#"malformed: malformed patch: line 7: "src/lib.rs" appears in more than one file section"#
        ]],
    );
}

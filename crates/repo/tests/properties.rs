//! Property tests of the two readers of hostile text in `repo`: the scope
//! guard's unified-diff parser (through [`repo::scope::check`], its only
//! door) and path mapping ([`repo::pathmap`]). Whatever the text, neither
//! panics; the guard accepts nothing over its size caps and quotes no more
//! than a snippet of an offending line; a mapped frame is always a file of
//! the tree.
//!
//! Case counts are modest (the whole file runs in seconds): each case of
//! the guard reads a real work tree, set up once per property.

use std::fs;
use std::path::Path;

use git2::{IndexAddOption, Repository, Signature};
use proptest::prelude::*;
use proptest::test_runner::Config;
use repo::pathmap::{CodeMapping, FrameLocation, MapOutcome, PathMapper, library_kind};
use repo::scope::{ScopePolicy, ScopeViolation, check};

/// Files of the work tree the guard checks patches against; `FILES[i]`
/// holds `LINES` lines `line <n>`.
const FILES: [&str; 4] = ["src/a.py", "src/b.py", "lib/c.py", "d.txt"];
const LINES: usize = 6;

/// The guard's caps in these tests: small, so generated patches cross them.
fn policy() -> ScopePolicy {
    ScopePolicy {
        max_files: 2,
        max_changed_lines: 6,
        ..ScopePolicy::default()
    }
}

fn config(cases: u32) -> Config {
    Config {
        cases,
        // A failure prints its shrunk input; nothing is written into the
        // source tree.
        failure_persistence: None,
        ..Config::default()
    }
}

fn file_text() -> String {
    (1..=LINES).map(|n| format!("line {n}\n")).collect()
}

/// A committed work tree holding [`FILES`].
fn worktree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for path in FILES {
        let full = dir.path().join(path);
        fs::create_dir_all(full.parent().unwrap()).unwrap();
        fs::write(full, file_text()).unwrap();
    }
    let git = Repository::init(dir.path()).unwrap();
    let mut index = git.index().unwrap();
    index.add_all(["*"], IndexAddOption::DEFAULT, None).unwrap();
    index.write().unwrap();
    let tree = git.find_tree(index.write_tree().unwrap()).unwrap();
    let signature = Signature::now("fixture", "fixture@example.com").unwrap();
    git.commit(Some("HEAD"), &signature, &signature, "c1", &tree, &[])
        .unwrap();
    dir
}

/// What `check` must hold to whatever it is given: an accepted patch is
/// within the caps (and counts what it changes), a violation's message
/// quotes no more than a snippet of the text (60 characters, escaped) on
/// top of its own words when no name in the patch is long.
fn assert_guard_holds(worktree: &Path, patch: &str, names_are_short: bool) {
    let policy = policy();
    match check(&policy, worktree, patch) {
        Ok(checked) => {
            assert!(checked.files.len() <= policy.max_files, "{patch:?}");
            assert!(
                checked.changed_lines() <= policy.max_changed_lines,
                "{patch:?}"
            );
            assert!(!checked.files.is_empty(), "{patch:?}");
        }
        Err(violation) => {
            if let ScopeViolation::TooManyFiles { files, max } = &violation {
                assert!(files > max, "{patch:?}");
            }
            if let ScopeViolation::TooManyLines { lines, max } = &violation {
                assert!(lines > max, "{patch:?}");
            }
            // 60 characters escaped as `\u{10ffff}` at worst, plus words.
            let bound = 60 * 10 + 400;
            if names_are_short {
                let message = violation.to_string();
                assert!(
                    message.chars().count() <= bound,
                    "{} characters: {message}",
                    message.chars().count()
                );
            }
        }
    }
}

/// One line of something diff-shaped: headers, hunk headers with any
/// counts, body lines, garbage; names from a short alphabet (quoted or
/// not), so that a long message can only come from quoting a long line.
fn diff_line() -> impl Strategy<Value = String> {
    let name = prop_oneof![
        Just("src/a.py".to_string()),
        Just("d.txt".to_string()),
        Just("/dev/null".to_string()),
        "[a-c/. \"\\\\]{0,12}",
    ];
    let number = prop_oneof![0usize..8, Just(999_999_999), Just(1_000_000_000)];
    let garbage = "\\PC{0,40}";
    prop_oneof![
        (name.clone(), name.clone()).prop_map(|(a, b)| format!("diff --git a/{a} b/{b}")),
        (name.clone(), name.clone()).prop_map(|(a, b)| format!("diff --git \"a/{a}\" \"b/{b}\"")),
        name.clone().prop_map(|a| format!("--- a/{a}")),
        name.clone().prop_map(|b| format!("+++ b/{b}")),
        Just("--- /dev/null".to_string()),
        (number.clone(), number.clone(), number.clone(), number)
            .prop_map(|(a, b, c, d)| format!("@@ -{a},{b} +{c},{d} @@")),
        "[ +\\-\\\\][a-z ]{0,10}",
        prop_oneof![
            Just("new file mode 100644"),
            Just("deleted file mode 100644"),
            Just("old mode 100644"),
            Just("new mode 100755"),
            Just("new mode 120000"),
            Just("similarity index 90%"),
            Just("dissimilarity index 100%"),
            Just("similarity index 101%"),
            Just("index 0123abc..4567def 100644"),
            Just("GIT binary patch"),
            Just("Binary files a/x and b/x differ"),
            Just("\\ No newline at end of file"),
            Just(""),
        ]
        .prop_map(str::to_string),
        name.clone().prop_map(|a| format!("rename from {a}")),
        name.prop_map(|b| format!("rename to {b}")),
        garbage.prop_map(|text: String| text),
    ]
}

/// A valid patch replacing line `1 + i` of each of the first `files` files
/// with `added` lines: `files` files, `added + 1` changed lines each.
fn valid_patch(files: usize, added: usize) -> String {
    let mut patch = String::new();
    for path in &FILES[..files] {
        patch.push_str(&format!(
            "diff --git a/{path} b/{path}\n--- a/{path}\n+++ b/{path}\n@@ -1,2 +1,{} @@\n line 1\n-line 2\n",
            added + 1
        ));
        for n in 0..added {
            patch.push_str(&format!("+new {n}\n"));
        }
    }
    patch
}

proptest! {
    #![proptest_config(config(256))]

    /// Any text at all: no panic, and nothing over the caps is accepted.
    #[test]
    fn the_guard_takes_any_text(text in "\\PC{0,400}") {
        let tree = worktree_once();
        assert_guard_holds(tree, &text, false);
    }
}

proptest! {
    #![proptest_config(config(192))]

    /// Diff-shaped text (headers, hunks with any counts up to ones that
    /// would overflow, modes, renames, binaries, garbage) in any order: no
    /// panic, nothing over the caps, messages bounded.
    #[test]
    fn the_guard_takes_any_diff_shaped_text(
        lines in proptest::collection::vec(diff_line(), 0..24),
        crlf in any::<bool>(),
    ) {
        let tree = worktree_once();
        let ending = if crlf { "\r\n" } else { "\n" };
        let text: String = lines.iter().map(|line| format!("{line}{ending}")).collect();
        assert_guard_holds(tree, &text, true);
    }

    /// One enormous line anywhere in a patch (after a quoted name, in a
    /// hunk header, a body, after a header) is quoted as a snippet at most.
    /// (A long *name* is quoted whole: messages name the offending path.)
    #[test]
    fn an_enormous_line_is_quoted_as_a_snippet(
        at in 0usize..7,
        filler in "[a-z\"\\\\ ]{1,8}",
        times in 500usize..2000,
    ) {
        let tree = worktree_once();
        let long = filler.repeat(times);
        let mut lines = [
            "diff --git a/src/a.py b/src/a.py".to_string(),
            "--- a/src/a.py".to_string(),
            "+++ b/src/a.py".to_string(),
            "@@ -1,2 +1,2 @@".to_string(),
            " line 1".to_string(),
            "-line 2".to_string(),
            "+line two".to_string(),
        ];
        lines[at] = match at {
            // A quoted first name, then no second name: only a snippet.
            0 => format!("diff --git \"a/src/a.py\"x{long}"),
            3 => format!("@@ -1,2 +1,2 @@{long}x"),
            _ => format!("{}{long}", lines[at]),
        };
        let text: String = lines.iter().map(|line| format!("{line}\n")).collect();
        // Only the line being long is the point: a long name in the `diff
        // --git` line is refused by the parser itself.
        let names_are_short = !matches!(at, 1 | 2);
        assert_guard_holds(tree, &text, names_are_short);
    }

    /// Valid patches on both sides of the caps: accepted exactly when
    /// within them, else refused naming the cap crossed.
    #[test]
    fn the_caps_decide_valid_patches(files in 1usize..=4, added in 0usize..5) {
        let tree = worktree_once();
        let policy = policy();
        let patch = valid_patch(files, added);
        let lines = files * (added + 1);
        let outcome = check(&policy, tree, &patch);
        assert_guard_holds(tree, &patch, true);
        match outcome {
            Ok(checked) => {
                prop_assert!(files <= policy.max_files && lines <= policy.max_changed_lines);
                prop_assert_eq!(checked.changed_lines(), lines);
            }
            Err(ScopeViolation::TooManyFiles { files: counted, .. }) => {
                prop_assert!(files > policy.max_files);
                prop_assert_eq!(counted, files);
            }
            Err(ScopeViolation::TooManyLines { lines: counted, .. }) => {
                prop_assert!(files <= policy.max_files && lines > policy.max_changed_lines);
                prop_assert_eq!(counted, lines);
            }
            Err(other) => prop_assert!(false, "{patch}: {other}"),
        }
    }
}

/// One work tree for every case of every property (`check` writes nothing
/// to it).
fn worktree_once() -> &'static Path {
    static TREE: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    TREE.get_or_init(worktree).path()
}

/// Frame paths of every shape: absolute, relative, URLs, Windows paths,
/// `~`, queries, library paths, and arbitrary text.
fn frame_path() -> impl Strategy<Value = String> {
    prop_oneof![
        "(/|\\./|~/|[A-Z]:\\\\|webpack:///|app:///|https?://[a-z]{0,5}/)?([a-z_.]{0,6}[/\\\\]){0,4}[a-z_]{0,6}(\\.py|\\.ts)?([?#][a-z]{0,3})?",
        "/usr/lib/python3\\.[0-9]{1,2}/[a-z]{1,5}\\.py",
        "([a-z/]{0,10}/)?(node_modules|site-packages|vendor|\\.cargo/registry)/[a-z/]{0,10}",
        "\\PC{0,60}",
    ]
}

fn tree_path() -> impl Strategy<Value = String> {
    prop_oneof!["([a-z_]{1,4}/){0,3}[a-z_]{1,6}\\.(py|ts)", "\\PC{1,20}"]
}

proptest! {
    #![proptest_config(config(512))]

    /// Any frame against any tree and code mappings: no panic, and a frame
    /// mapped to the repository names a file of the tree.
    #[test]
    fn mapping_any_frame_names_a_tree_file_or_nothing(
        tree in proptest::collection::vec(tree_path(), 0..20),
        mappings in proptest::collection::vec((frame_path(), "[a-z/]{0,8}"), 0..3),
        abs_path in proptest::option::of(frame_path()),
        filename in proptest::option::of(frame_path()),
        module in proptest::option::of("\\PC{0,20}|[a-z_]{1,5}(\\.[a-z_]{1,5}){0,3}"),
        in_app in proptest::option::of(any::<bool>()),
    ) {
        let mappings: Vec<CodeMapping> = mappings
            .into_iter()
            .filter_map(|(stack, source)| format!("{stack}={source}").parse().ok())
            .collect();
        let mapper = PathMapper::new(tree.clone(), mappings);
        let frame = FrameLocation {
            abs_path: abs_path.as_deref(),
            filename: filename.as_deref(),
            module: module.as_deref(),
            in_app,
        };
        match mapper.map(&frame) {
            MapOutcome::Repo { path, .. } => {
                prop_assert!(tree.contains(&path), "{path:?} is not in the tree");
                prop_assert!(mapper.contains(&path));
            }
            MapOutcome::Library { reason } => prop_assert!(!reason.is_empty()),
            MapOutcome::Unmapped => {}
        }
    }

    /// Parsing a code mapping and recognising a library path take any
    /// text; a parsed mapping has a stack root.
    #[test]
    fn code_mappings_and_library_paths_take_any_text(text in "\\PC{0,80}") {
        if let Ok(mapping) = text.parse::<CodeMapping>() {
            prop_assert!(!mapping.stack_root.is_empty());
            prop_assert!(!mapping.source_root.starts_with('/'));
        }
        let _ = library_kind(&text);
    }

    /// A path under a tree file's exact name, behind any deployment prefix,
    /// maps to that file when no other file shares its last two components.
    #[test]
    fn a_deployed_path_maps_back_to_its_file(
        prefix in "(/[a-z]{1,6}){0,3}",
        index in 0usize..4,
    ) {
        let tree: Vec<String> = FILES.iter().map(|path| path.to_string()).collect();
        let mapper = PathMapper::new(tree.clone(), Vec::new());
        let abs_path = format!("{prefix}/{}", tree[index]);
        // A deployment prefix such as `/vendor` says "library" on purpose.
        prop_assume!(library_kind(&abs_path).is_none());
        let frame = FrameLocation {
            abs_path: Some(&abs_path),
            ..FrameLocation::default()
        };
        let outcome = mapper.map(&frame);
        let mapped = match outcome {
            MapOutcome::Repo { path, .. } => Some(path),
            _ => None,
        };
        // `d.txt` is top level: its whole path is one component.
        prop_assert_eq!(mapped.as_deref(), Some(tree[index].as_str()), "{}", abs_path);
    }
}

//! The blob cache against real git repositories built in a tempdir.

use std::path::Path;

use expect_test::expect;
use git2::{Oid, Repository, Signature};

use crate::index::{CodeIndex, IndexError, IndexStats, Language};

/// A scratch repository whose commits are built from in-memory files.
struct Fixture {
    _dir: tempfile::TempDir,
    repo: Repository,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("creating a tempdir");
        let repo = Repository::init(dir.path()).expect("initialising a repository");
        Fixture { _dir: dir, repo }
    }

    /// Writes `files` into the work tree, stages them, commits, and returns the tree id.
    fn commit(&self, files: &[(&str, &str)]) -> Oid {
        let workdir = self.repo.workdir().expect("non-bare repository");
        let mut index = self.repo.index().expect("opening the index");
        for (path, content) in files {
            let full = workdir.join(path);
            std::fs::create_dir_all(full.parent().expect("file has a parent"))
                .expect("creating dirs");
            std::fs::write(&full, content).expect("writing a file");
            index.add_path(Path::new(path)).expect("staging a file");
        }
        index.write().expect("writing the index");
        let tree_id = index.write_tree().expect("writing the tree");
        let tree = self.repo.find_tree(tree_id).expect("finding the tree");
        let signature = Signature::now("test", "test@example.com").expect("a signature");
        let parent = self
            .repo
            .head()
            .ok()
            .and_then(|head| head.peel_to_commit().ok());
        let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
        self.repo
            .commit(
                Some("HEAD"),
                &signature,
                &signature,
                "change",
                &tree,
                &parents,
            )
            .expect("committing");
        tree_id
    }

    fn index(&self, index: &mut CodeIndex, tree_id: Oid) -> IndexStats {
        let tree = self.repo.find_tree(tree_id).expect("finding the tree");
        index
            .index_tree(&self.repo, &tree)
            .expect("indexing the tree")
    }
}

const FILES: &[(&str, &str)] = &[
    (
        "app/session.py",
        "class Session:\n    def update_headers(self):\n        return merge()\n",
    ),
    (
        "web/src/cart.ts",
        "export class Cart {\n  total() { return sum(); }\n}\n",
    ),
    ("web/src/app.js", "function start() {\n  boot();\n}\n"),
    (
        "server/main.go",
        "package main\n\nfunc (s *Server) Run() {\n\tserve()\n}\n",
    ),
    ("core/src/lib.rs", "impl Store {\n    fn get(&self) {}\n}\n"),
    (
        "java/Main.java",
        "class Main {\n  void run() { go(); }\n}\n",
    ),
    ("README.md", "# not code\n"),
    (
        "web/node_modules/left-pad/index.js",
        "function leftPad() {}\n",
    ),
    ("vendor/lib/dep.go", "package dep\n\nfunc Dep() {}\n"),
    ("web/dist/app.js", "function bundled() {}\n"),
    ("web/src/lib.min.js", "function minified(){}\n"),
];

/// Counts only what matters across runs: elapsed time varies.
fn counts(stats: &IndexStats) -> String {
    let IndexStats {
        files,
        parsed,
        reused,
        skipped,
        bytes_parsed,
        elapsed: _,
    } = stats;
    format!(
        "files={files} parsed={parsed} reused={reused} skipped={skipped} bytes_parsed={bytes_parsed}"
    )
}

/// A first index parses every supported file and skips vendored, built,
/// minified and non-code files.
#[test]
fn first_index_parses_supported_files() {
    let fixture = Fixture::new();
    let tree_id = fixture.commit(FILES);
    let mut index = CodeIndex::new();
    let stats = fixture.index(&mut index, tree_id);
    expect!["files=6 parsed=6 reused=0 skipped=0 bytes_parsed=273"].assert_eq(&counts(&stats));
    expect![[r#"
        app/session.py
        core/src/lib.rs
        java/Main.java
        server/main.go
        web/src/app.js
        web/src/cart.ts"#]]
    .assert_eq(&index.paths().collect::<Vec<_>>().join("\n"));
}

/// Committing a change to one file re-parses only that file's blob, and the
/// index reflects the change.
#[test]
fn new_commit_reparses_only_changed_blobs() {
    let fixture = Fixture::new();
    let mut index = CodeIndex::new();
    let first = fixture.index(&mut index, fixture.commit(FILES));
    let changed = "class Session:\n    def update_headers(self):\n        return merge()\n\n    def close(self):\n        return release()\n";
    let second = fixture.index(&mut index, fixture.commit(&[("app/session.py", changed)]));

    assert_eq!(second.parsed, 1);
    assert_eq!(second.reused, second.files - 1);
    assert_eq!(second.files, first.files);
    let close = index
        .enclosing_symbol("app/session.py", 6)
        .map(|symbol| symbol.qualified_name.as_str());
    assert_eq!(close, Some("Session.close"));
    assert_eq!(
        index.cached_blobs(),
        first.files,
        "the replaced blob is evicted"
    );
}

/// Re-indexing the same tree parses nothing.
#[test]
fn same_tree_twice_parses_nothing() {
    let fixture = Fixture::new();
    let tree_id = fixture.commit(FILES);
    let mut index = CodeIndex::new();
    fixture.index(&mut index, tree_id);
    let stats = fixture.index(&mut index, tree_id);
    expect!["files=6 parsed=0 reused=6 skipped=0 bytes_parsed=0"].assert_eq(&counts(&stats));
}

/// Identical content at two paths is parsed once.
#[test]
fn identical_blobs_parse_once() {
    let fixture = Fixture::new();
    let tree_id = fixture.commit(&[
        ("a/util.py", "def f():\n    pass\n"),
        ("b/util.py", "def f():\n    pass\n"),
    ]);
    let mut index = CodeIndex::new();
    let stats = fixture.index(&mut index, tree_id);
    expect!["files=2 parsed=1 reused=1 skipped=0 bytes_parsed=18"].assert_eq(&counts(&stats));
    expect![[r#"[("a/util.py", "f"), ("b/util.py", "f")]"#]].assert_eq(&format!(
        "{:?}",
        index
            .find_symbols("f")
            .iter()
            .map(|(path, symbol)| (*path, symbol.qualified_name.as_str()))
            .collect::<Vec<_>>()
    ));
}

/// Blobs over the cap are skipped and counted.
#[test]
fn oversized_blobs_are_skipped() {
    let fixture = Fixture::new();
    let big = "def f():\n    pass\n".repeat(10);
    let tree_id = fixture.commit(&[("big.py", &big), ("small.py", "def g():\n    pass\n")]);
    let mut index = CodeIndex::new().with_max_blob_bytes(100);
    let stats = fixture.index(&mut index, tree_id);
    expect!["files=1 parsed=1 reused=0 skipped=1 bytes_parsed=18"].assert_eq(&counts(&stats));
}

/// `find_symbols` matches simple and qualified names across the current tree.
#[test]
fn find_symbols_across_files() {
    let fixture = Fixture::new();
    let mut index = CodeIndex::new();
    fixture.index(&mut index, fixture.commit(FILES));
    let found = |name: &str| {
        let found = index.find_symbols(name);
        found
            .iter()
            .map(|(path, symbol)| format!("{path}:{}", symbol.qualified_name))
            .collect::<Vec<_>>()
            .join(" ")
    };
    expect!["app/session.py:Session.update_headers"].assert_eq(&found("update_headers"));
    expect!["server/main.go:Server.Run"].assert_eq(&found("Server.Run"));
    expect![""].assert_eq(&found("leftPad"));
}

/// `file_at` parses one file of any tree on demand, caches it by blob, and
/// leaves the current tree alone.
#[test]
fn file_at_is_lazy() {
    let fixture = Fixture::new();
    let old_tree_id = fixture.commit(FILES);
    let new_tree_id = fixture.commit(&[("app/session.py", "def replaced():\n    pass\n")]);
    let mut index = CodeIndex::new();
    let old_tree = fixture.repo.find_tree(old_tree_id).unwrap();

    let file = index
        .file_at(&fixture.repo, &old_tree, "app/session.py")
        .unwrap()
        .expect("file exists");
    assert_eq!(file.language, Language::Python);
    assert_eq!(file.symbols[1].qualified_name, "Session.update_headers");
    assert_eq!(index.cached_blobs(), 1, "only the asked-for file is parsed");
    assert_eq!(index.paths().count(), 0, "file_at does not index the tree");

    let again = index
        .file_at(&fixture.repo, &old_tree, "app/session.py")
        .unwrap()
        .unwrap();
    assert!(
        std::sync::Arc::ptr_eq(&file, &again),
        "a second call is served from the cache"
    );

    let new_tree = fixture.repo.find_tree(new_tree_id).unwrap();
    let stats = fixture.index(&mut index, new_tree_id);
    assert_eq!(stats.reused, 0, "the old blob is not in the new tree");
    let newer = index
        .file_at(&fixture.repo, &new_tree, "app/session.py")
        .unwrap()
        .unwrap();
    assert_eq!(newer.symbols[0].qualified_name, "replaced");
}

/// Absent, unsupported and directory paths are `None`, not errors.
#[test]
fn file_at_missing_or_unsupported() {
    let fixture = Fixture::new();
    let tree = fixture.repo.find_tree(fixture.commit(FILES)).unwrap();
    let mut index = CodeIndex::new();
    for path in ["app/missing.py", "README.md", "app", "web/src"] {
        assert!(
            index.file_at(&fixture.repo, &tree, path).unwrap().is_none(),
            "{path}"
        );
    }
}

/// `file_blob` refuses a blob over the cap with a precise error.
#[test]
fn file_blob_over_the_cap() {
    let fixture = Fixture::new();
    let blob = fixture.repo.blob(&[b'x'; 64]).unwrap();
    let mut index = CodeIndex::new().with_max_blob_bytes(10);
    let error = index
        .file_blob(&fixture.repo, blob, Language::Rust)
        .unwrap_err();
    assert!(matches!(
        error,
        IndexError::BlobTooLarge {
            size: 64,
            limit: 10,
            ..
        }
    ));
    expect!["blob 2036367ceafc6ad317a509db8f6b9c2773f731e0 is 64 bytes, over the index cap of 10"]
        .assert_eq(&error.to_string());
}

/// A dangling blob id is a read error naming the blob.
#[test]
fn file_blob_missing_object() {
    let fixture = Fixture::new();
    let missing = Oid::from_str("0123456789abcdef0123456789abcdef01234567").unwrap();
    let error = CodeIndex::new()
        .file_blob(&fixture.repo, missing, Language::Go)
        .unwrap_err();
    expect!["reading blob 0123456789abcdef0123456789abcdef01234567"].assert_eq(&error.to_string());
}

//! Fix branches built in a shallow clone (`git clone --depth 1`, as CI
//! checkouts and many deployments are): the local forge seeds a fresh bare
//! remote from one, and that remote is a valid shallow repository (git's
//! own `fsck` and `log` say so); the GitHub forge pushes from one to a
//! remote that holds the whole history and moved on, by path and over
//! smart HTTP to git's own server; what cannot work fails once, as a
//! permanent error, instead of being retried.

use std::path::Path;
use std::sync::Arc;

use forge::{FileRecords, ForgeError, LocalForge};
use git2::{Oid, Repository};

use crate::http_push::{forge_pushing_to, git_http_backend, http_server};
use crate::support::*;

/// Runs the git CLI in `dir`; its output, after checking it succeeded.
fn git(dir: &Path, args: &[&str]) -> String {
    #[allow(clippy::disallowed_methods)] // real git makes and checks the clones
    let output = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_INDEX_FILE")
        .output()
        .expect("the tests run the git cli");
    assert!(
        output.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// The scene with a second commit (README only) as the base, and `source`
/// replaced by a `git clone --depth 1` of it: the base is the clone's
/// shallow boundary, its parent is not in the clone. The scene's remote
/// holds the whole history, `main` at the base.
fn shallow_scene() -> Scene {
    let mut scene = Scene::new(true);
    let full = Repository::open(&scene.source).unwrap();
    let first = scene.base.clone();
    write(
        &scene.source,
        "README.md",
        "# shop\n\nNow with a checkout.\n",
    );
    let base = commit_all(&full, "document the checkout");
    let remote = scene.remote_repo();
    copy_objects(&full, &remote);
    remote
        .reference("refs/heads/main", base.parse().unwrap(), true, "advance")
        .unwrap();
    let clone = scene.dir.path().join("shallow-source");
    let url = format!("file://{}", scene.source.display());
    git(
        scene.dir.path(),
        &[
            "clone",
            "--quiet",
            "--depth",
            "1",
            &url,
            clone.to_str().unwrap(),
        ],
    );
    assert_eq!(
        std::fs::read_to_string(clone.join(".git/shallow")).unwrap(),
        format!("{base}\n")
    );
    let cloned = Repository::open(&clone).unwrap();
    assert!(cloned.is_shallow());
    assert!(cloned.find_commit(first.parse().unwrap()).is_err());
    scene.source = clone;
    scene.base = base;
    scene
}

/// A local forge on a bare remote at `remote` (created when absent).
fn local_forge(scene: &Scene, remote: &Path) -> LocalForge {
    let records = Arc::new(FileRecords::new(&scene.dir.path().join("prs.json")));
    LocalForge::open_or_init(remote, records).unwrap()
}

/// The local forge seeds a fresh remote from a shallow clone: the fix
/// branch (parent: the base) and the seeded `main` land, the remote's
/// history ends at the base and says so in its own `shallow` file, and
/// git finds it sound (`fsck`, `log`). Merging after `main` moved makes a
/// merge commit on that history, still sound; a second round pushes
/// again.
#[test]
fn the_local_forge_seeds_a_fresh_remote_from_a_shallow_clone() {
    let mut scene = shallow_scene();
    scene.remote = scene.dir.path().join("fresh.git");
    let forge = local_forge(&scene, &scene.remote);

    let opened = forge
        .open_pull_request(&scene.proposal("inc-shallow"), &scene.source)
        .unwrap();

    assert!(opened.created);
    assert_eq!(scene.tip("main").as_deref(), Some(scene.base.as_str()));
    assert_eq!(scene.file_on(&opened.branch, "app/checkout.py"), FIXED);
    let remote = scene.remote_repo();
    let head = remote
        .find_commit(Oid::from_str(&opened.head_sha).unwrap())
        .unwrap();
    assert_eq!(head.parent_id(0).unwrap().to_string(), scene.base);
    assert_eq!(
        std::fs::read_to_string(scene.remote.join("shallow")).unwrap(),
        format!("{}\n", scene.base)
    );
    assert_eq!(
        forge.show(opened.number).unwrap().reviewers,
        ["alice", "acme/backend", "other-org/ops"]
    );
    git(&scene.remote, &["fsck", "--no-progress", "--strict"]);
    assert_eq!(
        git(&scene.remote, &["log", "--format=%H", &opened.branch]),
        format!("{}\n{}\n", opened.head_sha, scene.base)
    );

    let moved = scene.advance_main("README.md", "# shop, now with docs\n");
    let merged = forge.merge(opened.number).unwrap();

    assert!(!merged.fast_forward);
    assert_eq!(scene.file_on("main", "app/checkout.py"), FIXED);
    assert_eq!(
        scene.file_on("main", "README.md"),
        "# shop, now with docs\n"
    );
    let merge = remote
        .find_commit(Oid::from_str(&merged.commit).unwrap())
        .unwrap();
    let parents: Vec<String> = merge.parent_ids().map(|id| id.to_string()).collect();
    assert_eq!(parents, [moved, opened.head_sha.clone()]);
    git(&scene.remote, &["fsck", "--no-progress", "--strict"]);

    let mut second = scene.proposal("inc-shallow");
    second.round = 2;
    let reopened = forge.open_pull_request(&second, &scene.source).unwrap();
    assert!(reopened.created);
    assert_eq!(scene.file_on(&reopened.branch, "app/checkout.py"), FIXED);
    git(&scene.remote, &["fsck", "--no-progress", "--strict"]);
}

/// A remote that already holds the history behind the boundary is not
/// made shallow: the push from the shallow clone just adds the fix.
#[test]
fn a_remote_with_the_history_stays_complete() {
    let scene = shallow_scene();
    let forge = local_forge(&scene, &scene.remote);

    let opened = forge
        .open_pull_request(&scene.proposal("inc-complete"), &scene.source)
        .unwrap();

    assert_eq!(scene.file_on(&opened.branch, "app/checkout.py"), FIXED);
    assert!(!scene.remote.join("shallow").exists());
    assert_eq!(
        git(&scene.remote, &["rev-list", "--count", &opened.branch]),
        "3\n"
    );
    git(&scene.remote, &["fsck", "--no-progress", "--strict"]);
}

/// Today's failure, kept as the error it should be: a source missing the
/// history it claims (a shallow clone whose `shallow` file was lost) makes
/// libgit2 fail on the missing parent, and that is permanent, not retried.
#[test]
fn a_source_missing_its_history_is_a_permanent_error() {
    let mut scene = shallow_scene();
    std::fs::remove_file(scene.source.join(".git/shallow")).unwrap();
    scene.remote = scene.dir.path().join("fresh.git");
    let forge = local_forge(&scene, &scene.remote);

    let error = forge
        .open_pull_request(&scene.proposal("inc-broken"), &scene.source)
        .unwrap_err();

    assert!(matches!(error, ForgeError::Git { .. }), "{error:?}");
    assert!(!error.is_transient(), "{error:?}");
    assert_eq!(scene.tip("main"), None);
}

/// The GitHub forge pushes from the shallow clone to a remote whose
/// `main` moved past the clone (its tip is not in the clone): the pull
/// request opens, the branch's parent is the base, the remote stays a
/// complete repository.
#[tokio::test]
async fn the_github_forge_pushes_from_a_shallow_clone() {
    let scene = shallow_scene();
    let moved = scene.advance_main("docs/notes.md", "later work\n");
    let fake = fake_github(&scene).await;
    let forge = github_forge(&fake, &scene, token_auth());

    let opened = forge
        .open_pull_request(&scene.proposal("inc-gh-shallow"), &scene.source)
        .await
        .unwrap();

    assert_eq!(fake.errors(), Vec::<String>::new());
    assert!(opened.created);
    assert_eq!(fake.pulls().len(), 1);
    assert_eq!(scene.file_on(&opened.branch, "app/checkout.py"), FIXED);
    let remote = scene.remote_repo();
    let head = remote
        .find_commit(Oid::from_str(&opened.head_sha).unwrap())
        .unwrap();
    assert_eq!(head.parent_id(0).unwrap().to_string(), scene.base);
    assert_eq!(scene.tip("main"), Some(moved));
    assert!(!scene.remote.join("shallow").exists());
    git(&scene.remote, &["fsck", "--no-progress", "--strict"]);
}

/// The same over forge's smart-HTTP transport to git's own server, which
/// checks that the pushed commits connect to history it holds.
#[tokio::test]
async fn a_shallow_push_over_smart_http_lands_the_branch() {
    let scene = shallow_scene();
    scene.advance_main("docs/notes.md", "later work\n");
    let server = http_server(Box::new(git_http_backend(scene.dir.path().to_path_buf())));
    let (fake, forge) =
        forge_pushing_to(&scene, format!("http://{}/remote.git", server.addr)).await;
    let proposal = scene.proposal("inc-http-shallow");

    let sha = forge
        .push_fix_branch(&proposal, &scene.source)
        .await
        .unwrap();

    server.finish();
    assert_eq!(scene.tip(&proposal.branch()), Some(sha));
    assert_eq!(scene.file_on(&proposal.branch(), "app/checkout.py"), FIXED);
    assert_eq!(fake.errors(), Vec::<String>::new());
    git(&scene.remote, &["fsck", "--no-progress", "--strict"]);
}

/// A remote over HTTP that lacks the history behind the boundary (here an
/// empty repository) cannot take a shallow push: git's server refuses it,
/// and the push fails once with a permanent error, leaving no branch.
#[tokio::test]
async fn a_shallow_push_to_a_remote_without_the_history_is_refused_for_good() {
    let scene = shallow_scene();
    let root = scene.dir.path().join("served");
    Repository::init_bare(root.join("empty.git")).unwrap();
    let server = http_server(Box::new(git_http_backend(root.clone())));
    let (_fake, forge) =
        forge_pushing_to(&scene, format!("http://{}/empty.git", server.addr)).await;
    let proposal = scene.proposal("inc-empty");

    let error = forge
        .push_fix_branch(&proposal, &scene.source)
        .await
        .unwrap_err();

    server.finish();
    match &error {
        ForgeError::PushRejected { reason, .. } => {
            assert!(reason.contains("missing necessary objects"), "{reason}");
            assert!(reason.contains("shallow clone"), "{reason}");
        }
        other => panic!("expected a rejected push, got {other:?}"),
    }
    assert!(!error.is_transient(), "{error:?}");
    let empty = Repository::open_bare(root.join("empty.git")).unwrap();
    assert!(
        empty
            .find_reference(&format!("refs/heads/{}", proposal.branch()))
            .is_err()
    );
}

//! The local forge: a real bare repository and a records file, driven the
//! way `suture pr list|show|merge|close` and the pipeline drive it.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use forge::{FileRecords, Forge, ForgeError, LocalForge, PrState, RecordsBackend};

use crate::support::*;

fn local(scene: &Scene) -> LocalForge {
    LocalForge::open(&scene.remote, &scene.dir.path().join("prs.json")).unwrap()
}

/// Open → list/show → merge: the pull request is recorded with its labels,
/// reviewers and tracking issue; the merge fast-forwards `main` of the
/// bare repository to the fix; merging again returns the same commit, and
/// a merged pull request cannot be closed.
#[test]
fn opens_lists_shows_and_merges() {
    let scene = Scene::new(true);
    let forge = local(&scene);
    let proposal = scene.proposal("inc-7f3a");

    let opened = forge.open_pull_request(&proposal, &scene.source).unwrap();

    assert!(opened.created);
    let listed = forge.list().unwrap();
    assert_eq!(listed.len(), 1);
    let pull = forge.show(opened.number).unwrap();
    assert_eq!(pull, listed[0]);
    assert_eq!(pull.state, PrState::Open);
    assert_eq!(pull.branch, "suture/inc-7f3a-zero-division-in-checkout");
    assert_eq!(pull.labels, ["suture", "revert", "suture:reproduced"]);
    assert_eq!(pull.reviewers, ["alice", "acme/backend", "other-org/ops"]);
    assert!(pull.body.starts_with("## What broke"));
    assert_eq!(scene.file_on(&pull.branch, "app/checkout.py"), FIXED);
    let issues = forge.issues().unwrap();
    assert_eq!(issues.len(), 1);
    assert_eq!(Some(issues[0].number), pull.tracking_issue);
    assert_eq!(issues[0].pull_requests, [pull.number]);

    let merged = forge.merge(pull.number).unwrap();

    assert!(merged.fast_forward);
    assert_eq!(merged.commit, pull.head_sha);
    assert_eq!(scene.tip("main").as_deref(), Some(pull.head_sha.as_str()));
    assert_eq!(scene.file_on("main", "app/checkout.py"), FIXED);
    let shown = forge.show(pull.number).unwrap();
    assert_eq!(shown.state, PrState::Merged);
    assert_eq!(
        shown.merge_commit_sha.as_deref(),
        Some(merged.commit.as_str())
    );
    assert_eq!(forge.merge(pull.number).unwrap().commit, merged.commit);
    let error = forge.close(pull.number).unwrap_err();
    assert!(matches!(error, ForgeError::WrongState { .. }), "{error}");
}

/// When `main` moved after the fix was built, the merge makes a merge
/// commit holding both changes.
#[test]
fn merging_after_main_moved_makes_a_merge_commit() {
    let scene = Scene::new(false);
    let forge = local(&scene);
    let opened = forge
        .open_pull_request(&scene.proposal("inc-1"), &scene.source)
        .unwrap();
    let moved = scene.advance_main("README.md", "# shop, now with docs\n");

    let merged = forge.merge(opened.number).unwrap();

    assert!(!merged.fast_forward);
    let repo = scene.remote_repo();
    let commit = repo
        .find_commit(git2::Oid::from_str(&merged.commit).unwrap())
        .unwrap();
    let parents: Vec<String> = commit.parent_ids().map(|id| id.to_string()).collect();
    assert_eq!(parents, [moved, opened.head_sha]);
    assert_eq!(scene.file_on("main", "app/checkout.py"), FIXED);
    assert_eq!(
        scene.file_on("main", "README.md"),
        "# shop, now with docs\n"
    );
}

/// A merge that conflicts names the paths and changes nothing: `main`
/// stays, the pull request stays open.
#[test]
fn a_conflicting_merge_changes_nothing() {
    let scene = Scene::new(false);
    let forge = local(&scene);
    let opened = forge
        .open_pull_request(&scene.proposal("inc-1"), &scene.source)
        .unwrap();
    let moved = scene.advance_main(
        "app/checkout.py",
        "def total(items, count):\n    return 0\n",
    );

    let error = forge.merge(opened.number).unwrap_err();

    match error {
        ForgeError::MergeConflict { number, paths } => {
            assert_eq!(number, opened.number);
            assert_eq!(paths, ["app/checkout.py"]);
        }
        other => panic!("expected a conflict, got {other}"),
    }
    assert_eq!(scene.tip("main"), Some(moved));
    assert_eq!(forge.show(opened.number).unwrap().state, PrState::Open);
}

/// Opening twice finds the first pull request (also from a new handle on
/// the same files); after a crash that lost the records but not the
/// pushed branch, the branch is reused, not pushed again.
#[test]
fn opening_is_idempotent_across_restarts_and_crashes() {
    let scene = Scene::new(true);
    let records = scene.dir.path().join("prs.json");
    let proposal = scene.proposal("inc-7f3a");
    let first = local(&scene)
        .open_pull_request(&proposal, &scene.source)
        .unwrap();
    let again = local(&scene)
        .open_pull_request(&proposal, &scene.source)
        .unwrap();
    assert!(!again.created);
    assert_eq!(
        (again.number, &again.head_sha),
        (first.number, &first.head_sha)
    );
    assert_eq!(local(&scene).list().unwrap().len(), 1);
    assert_eq!(local(&scene).issues().unwrap().len(), 1);

    std::fs::remove_file(&records).unwrap();
    let objects = scene.object_files();
    let recovered = local(&scene)
        .open_pull_request(&proposal, &scene.source)
        .unwrap();
    assert!(recovered.created);
    assert_eq!(recovered.head_sha, first.head_sha);
    assert_eq!(scene.object_files(), objects, "no second push");
}

/// Close, issue updates and state through the async `Forge`, as the
/// pipeline uses it; unknown numbers are `NotFound`.
#[tokio::test]
async fn the_pipeline_drives_it_through_forge() {
    let scene = Scene::new(false);
    let local = local(&scene);
    let forge = Forge::Local(local.clone());
    let opened = forge
        .open_pull_request(&scene.proposal("inc-1"), &scene.source)
        .await
        .unwrap();
    let issue = opened.tracking_issue.unwrap();
    assert_eq!(
        forge.open_tracking_issue("inc-1", "t", "b").await.unwrap(),
        issue
    );

    forge.comment(opened.number, "looks right").await.unwrap();
    forge.close_issue(issue, "held for a day").await.unwrap();
    forge.close_issue(issue, "held for a day").await.unwrap();
    let closed = &local.issues().unwrap()[0];
    assert_eq!(
        (closed.state.as_str(), closed.state_reason.as_deref()),
        ("closed", Some("completed"))
    );
    assert_eq!(closed.comments, ["held for a day"]);
    forge.reopen_issue(issue, "it came back").await.unwrap();
    assert_eq!(
        local.issues().unwrap()[0].state_reason.as_deref(),
        Some("reopened")
    );

    local.close(opened.number).unwrap();
    assert_eq!(
        forge.pr_state(opened.number).await.unwrap(),
        PrState::Closed
    );
    assert_eq!(local.show(opened.number).unwrap().comments, ["looks right"]);
    let error = local.merge(opened.number).unwrap_err();
    assert!(matches!(error, ForgeError::WrongState { .. }), "{error}");
    let error = local.show(99).unwrap_err();
    assert!(
        matches!(error, ForgeError::NotFound { number: 99, .. }),
        "{error}"
    );
    assert_eq!(scene.tip("main").as_deref(), Some(scene.base.as_str()));
}

/// A remote that is not a bare repository is refused when opening.
#[test]
fn a_missing_remote_is_refused() {
    let scene = Scene::new(false);
    let error = LocalForge::open(
        &scene.dir.path().join("nope.git"),
        &scene.dir.path().join("r.json"),
    )
    .unwrap_err();
    assert!(matches!(error, ForgeError::Git { .. }), "{error}");
}

/// Round 2 of an incident gets its own branch (`-r2-`) and pull request,
/// linked from the same tracking issue; opening round 2 again finds it.
#[test]
fn a_second_round_opens_a_second_pull_request_on_the_same_issue() {
    let scene = Scene::new(false);
    let forge = local(&scene);
    let first = forge
        .open_pull_request(&scene.proposal("inc-7"), &scene.source)
        .unwrap();
    forge.close(first.number).unwrap();
    let mut proposal = scene.proposal("inc-7");
    proposal.round = 2;

    let second = forge.open_pull_request(&proposal, &scene.source).unwrap();
    let again = forge.open_pull_request(&proposal, &scene.source).unwrap();

    assert!(second.created);
    assert_ne!(second.number, first.number);
    assert_eq!(second.branch, "suture/inc-7-r2-zero-division-in-checkout");
    assert_eq!(second.tracking_issue, first.tracking_issue);
    assert_eq!((again.created, again.number), (false, second.number));
    assert_eq!(scene.file_on(&second.branch, "app/checkout.py"), FIXED);
    let shown = forge.show(second.number).unwrap();
    assert_eq!((shown.round, shown.state), (2, PrState::Open));
    assert_eq!(forge.show(first.number).unwrap().round, 1);
    let issue = forge.issue(first.tracking_issue.unwrap()).unwrap();
    assert_eq!(issue.pull_requests, [first.number, second.number]);
    assert!(
        issue
            .body
            .contains(&format!("Proposed fix: #{}", second.number)),
        "{}",
        issue.body
    );
    assert_eq!(forge.issues().unwrap().len(), 1);
    let error = forge.issue(second.number).unwrap_err();
    assert!(
        matches!(error, ForgeError::NotFound { kind: "issue", .. }),
        "{error}"
    );
}

/// A proposal of round 0 is refused before anything is written.
#[test]
fn round_zero_is_refused() {
    let scene = Scene::new(false);
    let forge = local(&scene);
    let mut proposal = scene.proposal("inc-1");
    proposal.round = 0;
    let error = forge
        .open_pull_request(&proposal, &scene.source)
        .unwrap_err();
    assert!(matches!(error, ForgeError::Invalid { .. }), "{error}");
    assert_eq!(forge.list().unwrap(), []);
    assert_eq!(forge.issues().unwrap(), []);
}

/// Records kept in memory, as the service keeps them in its database:
/// the forge only ever reads and updates the document through the
/// backend, and a backend failure reaches the caller as `Records`.
#[derive(Debug, Default)]
struct MemoryRecords {
    document: Mutex<Option<String>>,
    updates: AtomicUsize,
    fail: AtomicBool,
}

impl RecordsBackend for MemoryRecords {
    fn read(&self) -> Result<Option<String>, ForgeError> {
        Ok(self.document.lock().unwrap().clone())
    }

    fn update(
        &self,
        edit: &mut dyn FnMut(Option<String>) -> Result<Option<String>, ForgeError>,
    ) -> Result<(), ForgeError> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(ForgeError::records("database is unavailable"));
        }
        self.updates.fetch_add(1, Ordering::SeqCst);
        let mut document = self.document.lock().unwrap();
        if let Some(text) = edit(document.clone())? {
            *document = Some(text);
        }
        Ok(())
    }
}

/// A fresh data directory: `open_or_init` creates the bare remote (and its
/// parents), the first pull request seeds `main` at the proposal's base
/// from the source repository, and the records live in the backend, not
/// in any file.
#[test]
fn a_fresh_remote_and_another_backend_work() {
    let scene = Scene::new(true);
    let remote = scene.dir.path().join("data/forge/remote.git");
    let backend = Arc::new(MemoryRecords::default());
    let forge = LocalForge::open_or_init(&remote, backend.clone()).unwrap();
    let repo = git2::Repository::open_bare(&remote).unwrap();
    assert!(repo.find_reference("refs/heads/main").is_err());

    let opened = forge
        .open_pull_request(&scene.proposal("inc-1"), &scene.source)
        .unwrap();

    let main = repo.find_reference("refs/heads/main").unwrap();
    assert_eq!(main.peel_to_commit().unwrap().id().to_string(), scene.base);
    assert_eq!(repo.head().unwrap().name().ok(), Some("refs/heads/main"));
    assert!(
        repo.references_glob("refs/suture/*")
            .unwrap()
            .next()
            .is_none()
    );
    let head = repo
        .find_reference(&format!("refs/heads/{}", opened.branch))
        .unwrap()
        .peel_to_commit()
        .unwrap();
    assert_eq!(head.parent_id(0).unwrap().to_string(), scene.base);
    let document = backend.document.lock().unwrap().clone().unwrap();
    assert!(document.contains(&opened.branch), "{document}");
    assert_eq!(backend.updates.load(Ordering::SeqCst), 1);
    let files: Vec<_> = std::fs::read_dir(scene.dir.path().join("data/forge"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert_eq!(files, ["remote.git"], "no records file");

    let merged = forge.merge(opened.number).unwrap();
    assert_eq!(merged.commit, opened.head_sha);
    assert_eq!(forge.show(opened.number).unwrap().state, PrState::Merged);
    let reopened = LocalForge::open_or_init(&remote, backend.clone()).unwrap();
    assert_eq!(
        reopened.list().unwrap().len(),
        1,
        "an existing remote is kept"
    );

    backend.fail.store(true, Ordering::SeqCst);
    let error = forge.comment(opened.number, "hello").unwrap_err();
    match error {
        ForgeError::Records { message } => assert_eq!(message, "database is unavailable"),
        other => panic!("expected a records error, got {other}"),
    }
}

/// Seeding never moves a base branch that exists: with `main` ahead of
/// the proposal's base, the fix branch is still built on the base and
/// `main` stays where it was.
#[test]
fn an_existing_base_branch_is_never_moved() {
    let scene = Scene::new(false);
    let moved = scene.advance_main("README.md", "# shop, moved on\n");
    let forge = LocalForge::open_or_init(
        &scene.remote,
        Arc::new(FileRecords::new(&scene.dir.path().join("prs.json"))),
    )
    .unwrap();

    let opened = forge
        .open_pull_request(&scene.proposal("inc-1"), &scene.source)
        .unwrap();

    assert_eq!(scene.tip("main"), Some(moved));
    assert_eq!(scene.file_on(&opened.branch, "README.md"), "# shop\n");
    assert!(scene.dir.path().join("prs.json").exists());
}

/// A path that holds something other than a bare repository is refused,
/// not turned into one.
#[test]
fn open_or_init_refuses_a_non_repository() {
    let scene = Scene::new(false);
    let occupied = scene.dir.path().join("occupied");
    std::fs::create_dir_all(&occupied).unwrap();
    std::fs::write(occupied.join("notes.txt"), "mine").unwrap();
    let error =
        LocalForge::open_or_init(&occupied, Arc::new(MemoryRecords::default())).unwrap_err();
    assert!(matches!(error, ForgeError::Git { .. }), "{error}");
    assert!(!occupied.join("HEAD").exists());
}

/// A records document that is not the forge's is an error naming it, not
/// an empty forge.
#[test]
fn a_corrupt_document_is_an_error() {
    let scene = Scene::new(false);
    let backend = Arc::new(MemoryRecords::default());
    *backend.document.lock().unwrap() =
        Some(r#"{"version":9,"next_number":1,"pull_requests":[],"issues":[]}"#.to_string());
    let forge = LocalForge::with_backend(&scene.remote, backend).unwrap();
    let error = forge.list().unwrap_err();
    assert!(
        matches!(error, ForgeError::CorruptRecords { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("version 9"), "{error}");
}

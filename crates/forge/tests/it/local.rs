//! The local forge: a real bare repository and a records file, driven the
//! way `suture pr list|show|merge|close` and the pipeline drive it.

use forge::{Forge, ForgeError, LocalForge, PrState};

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
    assert_eq!(pull.labels, ["suture", "revert"]);
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

//! The GitHub forge against the fake GitHub: the pull request end to end,
//! reviewers, idempotency, authentication, and the close-step calls.

use fakes::github::{self as gh, Fault};
use forge::{Forge, ForgeError, Permission, PrState};

use crate::support::*;

/// A plain token opens the pull request end to end: the fix branch lands
/// in the real bare repository with base + patch, the pull request carries
/// the report, a link to the tracking issue, both labels and the
/// CODEOWNERS reviewers (users and the organisation's team; another
/// organisation's team is left out); the tracking issue links back.
#[tokio::test]
async fn opens_a_pull_request_end_to_end() {
    let scene = Scene::new(true);
    let fake = fake_github(&scene).await;
    let forge = github_forge(&fake, &scene, token_auth());
    let proposal = scene.proposal("inc-7f3a");

    let opened = forge
        .open_pull_request(&proposal, &scene.source)
        .await
        .unwrap();

    assert_eq!(fake.errors(), Vec::<String>::new());
    let branch = "suture/inc-7f3a-zero-division-in-checkout";
    assert_eq!(opened.branch, branch);
    assert!(opened.created);
    assert_eq!(scene.tip(branch).as_deref(), Some(opened.head_sha.as_str()));
    assert_eq!(scene.file_on(branch, "app/checkout.py"), FIXED);
    assert_eq!(scene.file_on(branch, "README.md"), "# shop\n");
    let repo = scene.remote_repo();
    let commit = repo
        .find_commit(git2::Oid::from_str(&opened.head_sha).unwrap())
        .unwrap();
    assert_eq!(commit.parent_id(0).unwrap().to_string(), scene.base);
    assert_eq!(
        commit.author().email().ok(),
        Some("suture@users.noreply.github.com")
    );
    let message = commit.message().unwrap();
    assert!(
        message.contains("inc-7f3a") && message.contains("revert"),
        "{message}"
    );
    assert_eq!(
        scene.tip("main").as_deref(),
        Some(scene.base.as_str()),
        "main untouched"
    );

    let pulls = fake.pulls();
    assert_eq!(pulls.len(), 1);
    let pull = &pulls[0];
    assert_eq!(pull.number, opened.number);
    assert_eq!(
        opened.url,
        format!("https://github.com/acme/shop/pull/{}", pull.number)
    );
    assert_eq!(pull.title, proposal.title);
    assert_eq!(pull.head_ref, branch);
    assert_eq!(pull.base_ref, "main");
    let body = pull.body.as_deref().unwrap();
    assert!(
        body.starts_with(&proposal.body_markdown.trim_end().to_string()),
        "{body}"
    );
    let issue_number = opened.tracking_issue.unwrap();
    assert!(
        body.contains(&format!("Tracking issue: #{issue_number}")),
        "{body}"
    );
    assert!(body.contains("<!-- suture:incident=inc-7f3a -->"));
    assert_eq!(pull.labels, ["revert", "suture:reproduced", "suture"]);
    assert_eq!(pull.requested_reviewers, ["alice"]);
    assert_eq!(pull.requested_teams, ["backend"]);

    let issues = fake.issues();
    assert_eq!(issues.len(), 1);
    let issue = &issues[0];
    assert_eq!(issue.number, issue_number);
    assert_eq!(issue.labels, ["suture"]);
    let issue_body = issue.body.as_deref().unwrap();
    assert!(
        issue_body.starts_with("<!-- suture:incident=inc-7f3a -->\n"),
        "{issue_body}"
    );
    assert!(
        issue_body.contains(&format!("Proposed fix: #{}", pull.number)),
        "{issue_body}"
    );
}

/// Without CODEOWNERS the culprit's author is asked, after checking they
/// are a collaborator; a culprit with no access is not asked at all.
#[tokio::test]
async fn reviewers_fall_back_to_the_culprit_author() {
    let scene = Scene::new(false);
    let fake = fake_github(&scene).await;
    let forge = github_forge(&fake, &scene, token_auth());

    forge
        .open_pull_request(&scene.proposal("inc-1"), &scene.source)
        .await
        .unwrap();
    let mut stranger = scene.proposal("inc-2");
    stranger.culprit_author_login = None;
    stranger.culprit_author_email = Some("9999+mallory@users.noreply.github.com".to_string());
    forge
        .open_pull_request(&stranger, &scene.source)
        .await
        .unwrap();

    let pulls = fake.pulls();
    assert_eq!(pulls[0].requested_reviewers, ["bob"]);
    assert_eq!(pulls[1].requested_reviewers, Vec::<String>::new());
    let asked: Vec<String> = fake
        .requests_to("GET", gh::COLLABORATOR_PERMISSION)
        .iter()
        .map(|r| r.path.clone())
        .collect();
    assert_eq!(
        asked,
        [
            "/repos/acme/shop/collaborators/bob/permission",
            "/repos/acme/shop/collaborators/mallory/permission"
        ]
    );
    assert!(fake.requests_to("POST", gh::REQUESTED_REVIEWERS).len() == 1);
    assert_eq!(fake.errors(), Vec::<String>::new());
}

/// The pull request's author (the App's bot) is never asked to review,
/// even when CODEOWNERS names it.
#[tokio::test]
async fn the_author_is_never_a_reviewer() {
    let scene = Scene::new(false);
    write(
        &scene.source,
        ".github/CODEOWNERS",
        "* @suture[bot] @carol\n",
    );
    let repo = git2::Repository::open(&scene.source).unwrap();
    let mut proposal = scene.proposal("inc-3");
    proposal.base_revision = commit_all(&repo, "codeowners");
    let fake = fake_github(&scene).await;
    let forge = github_forge(&fake, &scene, token_auth());

    forge
        .open_pull_request(&proposal, &scene.source)
        .await
        .unwrap();

    assert_eq!(fake.pulls()[0].requested_reviewers, ["carol"]);
    assert_eq!(fake.errors(), Vec::<String>::new());
}

/// Opening the same incident twice gives one branch push, one pull
/// request, one tracking issue; the second call reports it found them.
#[tokio::test]
async fn opening_twice_opens_once() {
    let scene = Scene::new(true);
    let fake = fake_github(&scene).await;
    let forge = Forge::GitHub(github_forge(&fake, &scene, token_auth()));
    let proposal = scene.proposal("inc-7f3a");

    let first = forge
        .open_pull_request(&proposal, &scene.source)
        .await
        .unwrap();
    let second = forge
        .open_pull_request(&proposal, &scene.source)
        .await
        .unwrap();

    assert!(first.created);
    assert!(!second.created);
    assert_eq!(first.number, second.number);
    assert_eq!(first.tracking_issue, second.tracking_issue);
    assert_eq!(first.head_sha, second.head_sha);
    assert_eq!(fake.pulls().len(), 1);
    assert_eq!(fake.issues().len(), 1);
    assert_eq!(fake.requests_to("POST", gh::PULLS).len(), 1);
    assert_eq!(fake.requests_to("POST", gh::ISSUES).len(), 1);
    assert_eq!(fake.requests_to("POST", gh::REQUESTED_REVIEWERS).len(), 1);
    assert_eq!(
        fake.requests_to("PATCH", gh::ISSUE).len(),
        1,
        "the issue is linked once"
    );
    assert_eq!(fake.errors(), Vec::<String>::new());
}

/// A crash after the branch was pushed and before the pull request was
/// opened: the restart finds the branch (no second push, same commit) and
/// opens exactly one pull request on it.
#[tokio::test]
async fn a_crash_between_push_and_pull_request_is_recovered() {
    let scene = Scene::new(true);
    let fake = fake_github(&scene).await;
    let proposal = scene.proposal("inc-7f3a");
    let pushed = {
        let before_crash = github_forge(&fake, &scene, token_auth());
        before_crash
            .push_fix_branch(&proposal, &scene.source)
            .await
            .unwrap()
    };
    let objects_before = scene.object_files();

    let after_restart = github_forge(&fake, &scene, token_auth());
    let opened = after_restart
        .open_pull_request(&proposal, &scene.source)
        .await
        .unwrap();

    assert_eq!(opened.head_sha, pushed);
    assert_eq!(scene.tip(&opened.branch).as_deref(), Some(pushed.as_str()));
    assert_eq!(scene.object_files(), objects_before, "no second push");
    assert_eq!(fake.pulls().len(), 1);
    assert_eq!(fake.issues().len(), 1);
    assert_eq!(fake.errors(), Vec::<String>::new());
}

/// GitHub creates the pull request but the answer is lost (a 502 after
/// applying): the retry finds it instead of opening a second one, and the
/// interrupted labelling and review requests are finished.
#[tokio::test(start_paused = true)]
async fn a_lost_answer_does_not_duplicate_the_pull_request() {
    let scene = Scene::new(true);
    let fake = fake_github(&scene).await;
    fake.inject("POST", gh::PULLS, Fault::status(502).after_applying());
    fake.inject("POST", gh::ISSUES, Fault::hang().after_applying());
    let forge = github_forge(&fake, &scene, token_auth());

    let opened = forge
        .open_pull_request(&scene.proposal("inc-7f3a"), &scene.source)
        .await
        .unwrap();

    assert!(
        opened.created,
        "this call created it, though it only found it"
    );
    assert_eq!(fake.pulls().len(), 1);
    assert_eq!(fake.issues().len(), 1);
    assert_eq!(
        fake.pulls()[0].labels,
        ["revert", "suture:reproduced", "suture"]
    );
    assert_eq!(fake.pulls()[0].requested_reviewers, ["alice"]);
    assert_eq!(fake.requests_to("POST", gh::PULLS).len(), 1);
    assert_eq!(fake.requests_to("POST", gh::ISSUES).len(), 1);
    assert_eq!(fake.pending_faults(), 0);
    assert_eq!(fake.errors(), Vec::<String>::new());
}

/// An interrupted run left an unlabelled pull request without reviewers:
/// the next run finishes it (reviewers, then labels) and stops there.
#[tokio::test]
async fn an_unfinished_pull_request_is_finished() {
    let scene = Scene::new(true);
    let fake = fake_github(&scene).await;
    fake.inject("POST", gh::ISSUE_LABELS, Fault::status(403));
    let forge = github_forge(&fake, &scene, token_auth());
    let proposal = scene.proposal("inc-7f3a");

    let error = forge
        .open_pull_request(&proposal, &scene.source)
        .await
        .unwrap_err();
    assert!(
        matches!(error, ForgeError::Status { status: 403, .. }),
        "{error}"
    );
    assert!(fake.pulls()[0].labels.is_empty());

    let opened = forge
        .open_pull_request(&proposal, &scene.source)
        .await
        .unwrap();
    assert!(!opened.created);
    assert_eq!(
        fake.pulls()[0].labels,
        ["revert", "suture:reproduced", "suture"]
    );
    assert_eq!(fake.pulls()[0].requested_reviewers, ["alice"]);
    assert_eq!(fake.requests_to("POST", gh::REQUESTED_REVIEWERS).len(), 1);
    assert_eq!(fake.errors(), Vec::<String>::new());
}

/// With a GitHub App, one installation token is minted (from a JWT whose
/// shape the fake checks) and reused for the whole flow and later calls;
/// a token GitHub refuses is dropped and a fresh one minted once.
#[tokio::test]
async fn app_tokens_are_cached_and_refreshed_on_401() {
    let scene = Scene::new(true);
    let fake = fake_github(&scene).await;
    let forge = github_forge(&fake, &scene, app_auth());

    let opened = forge
        .open_pull_request(&scene.proposal("inc-7f3a"), &scene.source)
        .await
        .unwrap();
    assert_eq!(forge.pr_state(opened.number).await.unwrap(), PrState::Open);
    assert_eq!(fake.issued_tokens().len(), 1);
    assert_eq!(fake.requests_to("POST", gh::ACCESS_TOKENS).len(), 1);
    let jwt_request = &fake.requests_to("POST", gh::ACCESS_TOKENS)[0];
    // The token is for this repository only, with what the flow needs.
    assert_eq!(
        jwt_request.body,
        serde_json::json!({
            "repositories": [REPO],
            "permissions": {
                "contents": "write",
                "pull_requests": "write",
                "issues": "write",
                "metadata": "read"
            }
        })
    );
    assert!(
        jwt_request
            .header("authorization")
            .unwrap()
            .starts_with("Bearer ey")
    );
    let first = fake.issued_tokens()[0].clone();
    let used = fake.requests_to("GET", gh::PULL)[0]
        .header("authorization")
        .unwrap()
        .to_string();
    assert_eq!(used, format!("Bearer {first}"));

    fake.revoke_tokens();
    fake.merge_pull(opened.number);
    assert_eq!(
        forge.pr_state(opened.number).await.unwrap(),
        PrState::Merged
    );
    assert_eq!(fake.issued_tokens().len(), 2);
    assert_eq!(fake.errors(), Vec::<String>::new());
}

/// An installation token within five minutes of expiring is replaced
/// before use; a fresh one is kept.
#[tokio::test]
async fn app_tokens_are_refreshed_before_they_expire() {
    let scene = Scene::new(true);
    let short_lived = fakes::github::FakeGitHub::builder(OWNER, REPO)
        .git_dir(&scene.remote)
        .app(APP_ID, INSTALLATION_ID)
        .token_ttl(std::time::Duration::from_secs(4 * 60))
        .start()
        .await;
    let forge = github_forge(&short_lived, &scene, app_auth());
    forge.permission("alice").await.unwrap();
    forge.permission("alice").await.unwrap();
    assert_eq!(
        short_lived.issued_tokens().len(),
        2,
        "each call needed a new token"
    );

    let long_lived = fake_github(&scene).await;
    let forge = github_forge(&long_lived, &scene, app_auth());
    forge.permission("alice").await.unwrap();
    forge.permission("alice").await.unwrap();
    assert_eq!(long_lived.issued_tokens().len(), 1);
    assert_eq!(short_lived.errors(), Vec::<String>::new());
    assert_eq!(long_lived.errors(), Vec::<String>::new());
}

/// A private key that is not one is refused when the forge is made.
#[tokio::test]
async fn a_bad_private_key_is_refused() {
    let scene = Scene::new(false);
    let fake = fake_github(&scene).await;
    let auth = forge::GitHubAuth::App {
        app_id: APP_ID,
        installation_id: INSTALLATION_ID,
        private_key_pem: forge::SecretString::from("not a key".to_string()),
    };
    let error = forge::GitHubForge::new(config(&fake, &scene, auth)).unwrap_err();
    assert!(matches!(error, ForgeError::Invalid { .. }), "{error}");
}

/// The close-step calls: close the tracking issue as completed with one
/// summary comment (however often it is retried), reopen it, comment on the
/// pull request, read permissions and the pull request's state.
#[tokio::test]
async fn closes_reopens_comments_and_reads() {
    let scene = Scene::new(true);
    let fake = fake_github(&scene).await;
    let forge = Forge::GitHub(github_forge(&fake, &scene, token_auth()));
    let opened = forge
        .open_pull_request(&scene.proposal("inc-7f3a"), &scene.source)
        .await
        .unwrap();
    let issue = opened.tracking_issue.unwrap();

    forge
        .close_issue(issue, "Held for 24 h: closing.")
        .await
        .unwrap();
    forge
        .close_issue(issue, "Held for 24 h: closing.")
        .await
        .unwrap();
    let closed = &fake.issues()[0];
    assert_eq!(closed.state, "closed");
    assert_eq!(closed.state_reason.as_deref(), Some("completed"));
    assert_eq!(closed.comments.len(), 1, "{:?}", closed.comments);
    assert!(closed.comments[0].starts_with("Held for 24 h: closing."));

    forge.reopen_issue(issue, "It came back.").await.unwrap();
    let reopened = &fake.issues()[0];
    assert_eq!(
        (reopened.state.as_str(), reopened.state_reason.as_deref()),
        ("open", Some("reopened"))
    );
    assert_eq!(reopened.comments.len(), 2);

    forge
        .comment(opened.number, "/suture explain: the culprit was …")
        .await
        .unwrap();
    assert_eq!(fake.pulls()[0].comments.len(), 1);

    assert_eq!(forge.permission("carol").await.unwrap(), Permission::Admin);
    assert_eq!(forge.permission("alice").await.unwrap(), Permission::Write);
    assert!(!forge.permission("tri").await.unwrap().can_write());
    assert_eq!(forge.permission("nobody").await.unwrap(), Permission::None);
    assert_eq!(forge.pr_state(opened.number).await.unwrap(), PrState::Open);
    fake.close_pull(opened.number);
    assert_eq!(
        forge.pr_state(opened.number).await.unwrap(),
        PrState::Closed
    );
    assert_eq!(fake.errors(), Vec::<String>::new());
}

/// The tracking issue is found by its marker on a later page of the issue
/// list (100 newer suture issues in front of it), not opened again.
#[tokio::test]
async fn the_tracking_issue_is_found_on_a_later_page() {
    let scene = Scene::new(false);
    let fake = fake_github(&scene).await;
    let forge = github_forge(&fake, &scene, token_auth());
    let target = forge
        .open_tracking_issue("inc-old", "old", "body")
        .await
        .unwrap();
    for n in 0..100 {
        forge
            .open_tracking_issue(&format!("inc-{n}"), "newer", "body")
            .await
            .unwrap();
    }

    let found = forge
        .open_tracking_issue("inc-old", "old", "body")
        .await
        .unwrap();

    assert_eq!(found, target);
    assert_eq!(fake.issues().len(), 101);
    let last = fake
        .requests_to("GET", gh::ISSUES)
        .last()
        .unwrap()
        .path
        .clone();
    assert!(last.ends_with("page=2"), "{last}");
    assert_eq!(fake.errors(), Vec::<String>::new());
}

/// Round 2 pushes its own branch and opens its own pull request, and the
/// incident's tracking issue (found by its marker) links both; opening
/// round 2 again finds its pull request.
#[tokio::test]
async fn a_second_round_links_the_same_tracking_issue() {
    let scene = Scene::new(false);
    let fake = fake_github(&scene).await;
    let forge = github_forge(&fake, &scene, token_auth());
    let first = forge
        .open_pull_request(&scene.proposal("inc-7"), &scene.source)
        .await
        .unwrap();
    fake.close_pull(first.number);
    let mut proposal = scene.proposal("inc-7");
    proposal.round = 2;

    let second = forge
        .open_pull_request(&proposal, &scene.source)
        .await
        .unwrap();
    let again = forge
        .open_pull_request(&proposal, &scene.source)
        .await
        .unwrap();

    assert!(second.created);
    assert_eq!(second.branch, "suture/inc-7-r2-zero-division-in-checkout");
    assert_eq!(
        scene.tip(&second.branch).as_deref(),
        Some(second.head_sha.as_str())
    );
    assert_eq!(second.tracking_issue, first.tracking_issue);
    assert_eq!((again.created, again.number), (false, second.number));
    let pulls = fake.pulls();
    assert_eq!(pulls.len(), 2);
    assert_eq!(pulls[1].head_ref, second.branch);
    assert!(
        pulls[1].body.as_deref().unwrap().contains("round 2"),
        "{:?}",
        pulls[1].body
    );
    let issues = fake.issues();
    assert_eq!(issues.len(), 1);
    let body = issues[0].body.as_deref().unwrap();
    for number in [first.number, second.number] {
        assert_eq!(
            body.matches(&format!("Proposed fix: #{number} ")).count(),
            1,
            "{body}"
        );
    }
    assert_eq!(fake.errors(), Vec::<String>::new());
}

/// After the merge button, the pull request reads as merged and the base
/// branch of the remote holds the merge commit the fake reports.
#[tokio::test]
async fn a_merged_pull_request_reads_as_merged() {
    let scene = Scene::new(false);
    let fake = fake_github(&scene).await;
    let forge = Forge::GitHub(github_forge(&fake, &scene, token_auth()));
    let opened = forge
        .open_pull_request(&scene.proposal("inc-1"), &scene.source)
        .await
        .unwrap();

    let merge_commit = fake.merge_pull(opened.number);

    assert_eq!(
        forge.pr_state(opened.number).await.unwrap(),
        PrState::Merged
    );
    assert_eq!(scene.tip("main").as_deref(), Some(merge_commit.as_str()));
    assert_eq!(scene.file_on("main", "app/checkout.py"), FIXED);
    let payload = fake.pull_request_closed_webhook(opened.number);
    assert_eq!(
        payload["pull_request"]["merge_commit_sha"],
        merge_commit.as_str()
    );
    assert_eq!(
        payload["pull_request"]["head"]["sha"],
        opened.head_sha.as_str()
    );
    assert_eq!(fake.errors(), Vec::<String>::new());
}

/// A tracking issue is found by its marker on the first line only: an
/// issue that quotes another incident's marker in its text (event text
/// does) is not taken for that incident's tracking issue.
#[tokio::test]
async fn a_quoted_marker_does_not_find_a_tracking_issue() {
    let scene = Scene::new(false);
    let fake = fake_github(&scene).await;
    let forge = github_forge(&fake, &scene, token_auth());
    let quoting = forge
        .open_tracking_issue(
            "inc-1",
            "t",
            "ValueError\n<!-- suture:incident=inc-2 -->\n```\n<!-- suture:incident=inc-2 -->\n```",
        )
        .await
        .unwrap();
    let own = forge
        .open_tracking_issue("inc-2", "t", "body")
        .await
        .unwrap();
    assert_ne!(own, quoting);
    assert_eq!(
        forge
            .open_tracking_issue("inc-2", "t", "body")
            .await
            .unwrap(),
        own
    );
    assert_eq!(fake.issues().len(), 2);
    assert_eq!(fake.errors(), Vec::<String>::new());
}

//! Webhook payloads, signatures and the merge button, checked against the
//! webhook contract and a real bare repository.

use std::path::Path;

use git2::{Oid, Repository, Signature};
use serde_json::{Value, json};

use super::*;
use crate::github::FakeGitHub;
use crate::server::raw;

/// A real bare repository: `main` with one commit, `suture/fix` one commit
/// ahead of it, and `main` one unrelated commit further (so the merge
/// cannot fast-forward). Returns `(dir, main, fix)`.
fn repository() -> (tempfile::TempDir, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repository::init_bare(dir.path()).unwrap();
    let signature = Signature::now("Dev", "dev@example.com").unwrap();
    let commit = |files: &[(&str, &str)], parents: &[Oid], branch: &str| -> Oid {
        let mut builder = repo.treebuilder(None).unwrap();
        for (name, text) in files {
            let blob = repo.blob(text.as_bytes()).unwrap();
            builder.insert(name, blob, 0o100644).unwrap();
        }
        let tree = repo.find_tree(builder.write().unwrap()).unwrap();
        let parents: Vec<git2::Commit<'_>> = parents
            .iter()
            .map(|id| repo.find_commit(*id).unwrap())
            .collect();
        let parents: Vec<&git2::Commit<'_>> = parents.iter().collect();
        let oid = repo
            .commit(None, &signature, &signature, branch, &tree, &parents)
            .unwrap();
        repo.reference(&format!("refs/heads/{branch}"), oid, true, "test")
            .unwrap();
        oid
    };
    let base = commit(&[("app.py", "bug\n")], &[], "main");
    let fix = commit(&[("app.py", "fixed\n")], &[base], "suture/fix");
    let main = commit(
        &[("app.py", "bug\n"), ("README", "docs\n")],
        &[base],
        "main",
    );
    (dir, main.to_string(), fix.to_string())
}

async fn fake(git_dir: &Path) -> FakeGitHub {
    FakeGitHub::builder("acme", "shop")
        .git_dir(git_dir)
        .token("ghp_test")
        .app(1, 77)
        .collaborator("alice", "write")
        .start()
        .await
}

async fn call(fake: &FakeGitHub, method: &str, path: &str, body: Option<Value>) -> raw::RawAnswer {
    let body = body.map(|b| b.to_string());
    raw::send(
        &fake.base_url(),
        method,
        path,
        &[
            ("authorization", "Bearer ghp_test"),
            ("user-agent", "fakes-test"),
        ],
        body.as_deref(),
    )
    .await
}

/// Issue #1, then pull request #2 from `suture/fix` into `main`.
async fn open_pull(fake: &FakeGitHub) {
    let issue = json!({ "title": "incident", "body": "tracking", "labels": ["suture"] });
    let created = call(fake, "POST", "/repos/acme/shop/issues", Some(issue)).await;
    assert_eq!(created.status, 201, "{:?}", fake.errors());
    let pull =
        json!({ "title": "Fix checkout", "head": "suture/fix", "base": "main", "body": "report" });
    let created = call(fake, "POST", "/repos/acme/shop/pulls", Some(pull)).await;
    assert_eq!(created.status, 201, "{:?}", fake.errors());
    assert_eq!(created.body["number"], 2);
}

/// GitHub's documented example: this secret and body give this signature.
#[test]
fn signs_like_github() {
    assert_eq!(
        sign_github_webhook("It's a Secret to Everybody", b"Hello, World!"),
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    );
    assert_ne!(
        sign_github_webhook("another secret", b"Hello, World!"),
        sign_github_webhook("It's a Secret to Everybody", b"Hello, World!")
    );
}

/// The merge button writes a merge commit of `main`'s tip and the head
/// into the bare repository and moves `main` to it; the closed delivery
/// then says merged, by whom, with that commit, and fits the contract.
#[tokio::test]
async fn a_merged_pull_request_moves_the_base_and_says_so() {
    let (git, main, fix) = repository();
    let fake = fake(git.path()).await;
    open_pull(&fake).await;

    let merge_commit = fake.merge_pull(2);

    let repo = Repository::open_bare(git.path()).unwrap();
    let tip = repo.refname_to_id("refs/heads/main").unwrap();
    assert_eq!(tip.to_string(), merge_commit);
    let commit = repo.find_commit(tip).unwrap();
    let parents: Vec<String> = commit.parent_ids().map(|id| id.to_string()).collect();
    assert_eq!(parents, [main, fix.clone()]);
    assert!(
        commit
            .message()
            .unwrap()
            .starts_with("Merge pull request #2 from acme/suture/fix")
    );
    let app = commit.tree().unwrap().get_name("app.py").unwrap().id();
    assert_eq!(repo.find_blob(app).unwrap().content(), b"fixed\n");
    assert_eq!(
        fake.pulls()[0].merge_commit_sha.as_deref(),
        Some(merge_commit.as_str())
    );

    let payload = fake.pull_request_closed_webhook(2);

    assert_eq!(
        check_webhook("pull-request-closed", &payload),
        Vec::<String>::new()
    );
    assert_eq!(payload["action"], "closed");
    assert_eq!(payload["number"], 2);
    let pull = &payload["pull_request"];
    assert_eq!(pull["number"], 2);
    assert_eq!(pull["title"], "Fix checkout");
    assert_eq!(pull["state"], "closed");
    assert_eq!(pull["merged"], true);
    assert!(pull["merged_at"].is_string());
    assert_eq!(pull["merged_by"]["login"], "acme");
    assert_eq!(pull["merge_commit_sha"], merge_commit.as_str());
    assert_eq!(pull["head"]["ref"], "suture/fix");
    assert_eq!(pull["head"]["sha"], fix.as_str());
    assert_eq!(pull["base"]["ref"], "main");
    assert_eq!(pull["html_url"], "https://github.com/acme/shop/pull/2");
    assert_eq!(payload["repository"]["full_name"], "acme/shop");
    assert_eq!(payload["repository"]["name"], "shop");
    assert_eq!(payload["repository"]["owner"]["login"], "acme");
    assert_eq!(payload["installation"]["id"], 77);
    let text = payload.to_string();
    assert!(
        !text.contains("Codertocat") && !text.contains("Hello-World"),
        "{text}"
    );
    assert_eq!(fake.errors(), Vec::<String>::new());
}

/// Closed without merging: `merged` false and no merge commit; `main`
/// stays where it was. Without an App, the delivery names no installation.
#[tokio::test]
async fn a_closed_pull_request_is_not_merged() {
    let (git, main, _) = repository();
    let fake = FakeGitHub::builder("acme", "shop")
        .git_dir(git.path())
        .token("ghp_test")
        .start()
        .await;
    open_pull(&fake).await;

    fake.close_pull(2);
    let payload = fake.pull_request_closed_webhook(2);

    assert_eq!(
        check_webhook("pull-request-closed", &payload),
        Vec::<String>::new()
    );
    let pull = &payload["pull_request"];
    assert_eq!(pull["merged"], false);
    assert_eq!(pull["merged_at"], Value::Null);
    assert_eq!(pull["merge_commit_sha"], Value::Null);
    assert_eq!(pull["merged_by"], Value::Null);
    assert!(payload.get("installation").is_none());
    let repo = Repository::open_bare(git.path()).unwrap();
    assert_eq!(
        repo.refname_to_id("refs/heads/main").unwrap().to_string(),
        main
    );
}

/// A comment on the pull request carries `issue.pull_request`, one on the
/// issue does not; the commenter is the comment's user and the sender,
/// with GitHub's association; the REST API lists the comment by its id.
#[tokio::test]
async fn comments_are_delivered_and_listed() {
    let (git, _, _) = repository();
    let fake = fake(git.path()).await;
    open_pull(&fake).await;

    let on_pull = fake.issue_comment_webhook(2, "alice", "/suture explain");
    let on_issue = fake.issue_comment_webhook(1, "mallory", "me too");

    for payload in [&on_pull, &on_issue] {
        assert_eq!(
            check_webhook("issue-comment-created", payload),
            Vec::<String>::new()
        );
        assert_eq!(payload["action"], "created");
        assert_eq!(payload["repository"]["full_name"], "acme/shop");
        assert_eq!(
            payload["sender"]["login"],
            payload["comment"]["user"]["login"]
        );
    }
    assert_eq!(on_pull["issue"]["number"], 2);
    assert_eq!(on_pull["issue"]["title"], "Fix checkout");
    assert!(on_pull["issue"]["pull_request"]["url"].is_string());
    assert_eq!(on_pull["comment"]["body"], "/suture explain");
    assert_eq!(on_pull["comment"]["user"]["login"], "alice");
    assert_eq!(on_pull["comment"]["author_association"], "COLLABORATOR");
    assert_eq!(on_issue["issue"]["number"], 1);
    assert!(on_issue["issue"].get("pull_request").is_none());
    assert_eq!(on_issue["comment"]["author_association"], "NONE");

    let listed = call(&fake, "GET", "/repos/acme/shop/issues/2/comments", None).await;
    assert_eq!(listed.status, 200);
    assert_eq!(listed.body[0]["id"], on_pull["comment"]["id"]);
    assert_eq!(listed.body[0]["user"]["login"], "alice");
    assert_eq!(fake.errors(), Vec::<String>::new());
}

/// The contract check is not a formality: a delivery without its sender,
/// or with `merged` not a boolean, is refused.
#[test]
fn the_contract_refuses_broken_payloads() {
    let text =
        std::fs::read_to_string(format!("{FIXTURES}/pull_request.closed.payload.json")).unwrap();
    let payload: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        check_webhook("pull-request-closed", &payload),
        Vec::<String>::new()
    );
    let mut no_sender = payload.clone();
    no_sender.as_object_mut().unwrap().remove("sender");
    assert!(!check_webhook("pull-request-closed", &no_sender).is_empty());
    let mut wrong_type = payload;
    wrong_type["pull_request"]["merged"] = json!("yes");
    assert!(!check_webhook("pull-request-closed", &wrong_type).is_empty());
}

/// Permission lookups answer per the contract: a collaborator's role as
/// `role_name` (and GitHub's base level as `permission`), an unknown login
/// GitHub's 404.
#[tokio::test]
async fn permissions_follow_the_contract() {
    let fake = FakeGitHub::builder("acme", "shop")
        .token("ghp_test")
        .collaborator("alice", "write")
        .collaborator("mo", "maintain")
        .collaborator("tri", "triage")
        .collaborator("root", "admin")
        .start()
        .await;
    for (login, permission, role) in [
        ("alice", "write", "write"),
        ("mo", "write", "maintain"),
        ("tri", "read", "triage"),
        ("root", "admin", "admin"),
    ] {
        let path = format!("/repos/acme/shop/collaborators/{login}/permission");
        let answer = call(&fake, "GET", &path, None).await;
        assert_eq!(answer.status, 200, "{login}");
        assert_eq!(answer.body["permission"], permission, "{login}");
        assert_eq!(answer.body["role_name"], role, "{login}");
        assert_eq!(answer.body["user"]["login"], login);
    }
    let unknown = call(
        &fake,
        "GET",
        "/repos/acme/shop/collaborators/nobody/permission",
        None,
    )
    .await;
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.body["message"], "Not Found");
    assert_eq!(fake.errors(), Vec::<String>::new());
}

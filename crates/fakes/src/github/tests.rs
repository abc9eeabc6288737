//! The fake GitHub's own checks, over raw HTTP so that the fake is tested
//! without the forge client.

use super::*;
use crate::server::raw;

const SHA_MAIN: &str = "1111111111111111111111111111111111111111";
const SHA_FIX: &str = "2222222222222222222222222222222222222222";

/// A "bare repository" with just the refs the fake reads: `main` loose and
/// `suture/fix` in `packed-refs`.
fn git_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("refs/heads")).unwrap();
    std::fs::write(dir.path().join("refs/heads/main"), format!("{SHA_MAIN}\n")).unwrap();
    std::fs::write(
        dir.path().join("packed-refs"),
        format!("# pack-refs with: peeled fully-peeled sorted\n{SHA_FIX} refs/heads/suture/fix\n"),
    )
    .unwrap();
    dir
}

async fn fake(git: &tempfile::TempDir) -> FakeGitHub {
    FakeGitHub::builder("acme", "shop")
        .git_dir(git.path())
        .token("ghp_test")
        .collaborator("alice", "write")
        .team("backend")
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
            ("accept", "application/vnd.github+json"),
        ],
        body.as_deref(),
    )
    .await
}

/// The pull request flow answers as GitHub does: refs read from the bare
/// repository, a pull request numbered after the issue before it, a second
/// pull request for the same head refused with 422, labels and reviewers
/// added, and every answer within the contract.
#[tokio::test]
async fn serves_the_pull_request_flow() {
    let git = git_dir();
    let fake = fake(&git).await;

    let reference = call(
        &fake,
        "GET",
        "/repos/acme/shop/git/ref/heads/suture/fix",
        None,
    )
    .await;
    assert_eq!(reference.status, 200);
    assert_eq!(reference.body["object"]["sha"], SHA_FIX);
    let missing = call(&fake, "GET", "/repos/acme/shop/git/ref/heads/nope", None).await;
    assert_eq!(missing.status, 404);

    let issue = call(
        &fake,
        "POST",
        "/repos/acme/shop/issues",
        Some(json!({ "title": "incident", "body": "marker", "labels": ["suture"] })),
    )
    .await;
    assert_eq!(issue.status, 201, "{:?}", fake.errors());
    assert_eq!(issue.body["number"], 1);

    let create = json!({ "title": "fix", "head": "suture/fix", "base": "main", "body": "report" });
    let pull = call(
        &fake,
        "POST",
        "/repos/acme/shop/pulls",
        Some(create.clone()),
    )
    .await;
    assert_eq!(pull.status, 201);
    assert_eq!(pull.body["number"], 2);
    assert_eq!(pull.body["head"]["sha"], SHA_FIX);
    assert_eq!(pull.body["base"]["sha"], SHA_MAIN);
    let again = call(&fake, "POST", "/repos/acme/shop/pulls", Some(create)).await;
    assert_eq!(again.status, 422);

    let listed = call(
        &fake,
        "GET",
        "/repos/acme/shop/pulls?head=acme:suture/fix&state=all",
        None,
    )
    .await;
    assert_eq!(listed.body.as_array().unwrap().len(), 1);

    let labels = call(
        &fake,
        "POST",
        "/repos/acme/shop/issues/2/labels",
        Some(json!({ "labels": ["suture", "revert"] })),
    )
    .await;
    assert_eq!(labels.status, 200);
    let reviewers = call(
        &fake,
        "POST",
        "/repos/acme/shop/pulls/2/requested_reviewers",
        Some(json!({ "reviewers": ["alice"], "team_reviewers": ["backend"] })),
    )
    .await;
    assert_eq!(reviewers.status, 201, "{:?}", fake.errors());
    let author = call(
        &fake,
        "POST",
        "/repos/acme/shop/pulls/2/requested_reviewers",
        Some(json!({ "reviewers": ["suture[bot]"] })),
    )
    .await;
    assert_eq!(author.status, 422);

    let issues = call(
        &fake,
        "GET",
        "/repos/acme/shop/issues?labels=suture&state=all",
        None,
    )
    .await;
    let numbers: Vec<&Value> = issues
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|i| &i["number"])
        .collect();
    assert_eq!(
        numbers,
        [&json!(2), &json!(1)],
        "the issues list includes pull requests"
    );
    assert!(issues.body[0].get("pull_request").is_some());

    let pulls = fake.pulls();
    assert_eq!(pulls[0].labels, ["suture", "revert"]);
    assert_eq!(pulls[0].requested_reviewers, ["alice"]);
    assert_eq!(pulls[0].requested_teams, ["backend"]);
    assert_eq!(fake.errors(), Vec::<String>::new());
}

/// Closing with a reason sets it; a reason without a state change is
/// ignored, as GitHub documents; reopening says `reopened`.
#[tokio::test]
async fn state_reason_follows_state_changes() {
    let git = git_dir();
    let fake = fake(&git).await;
    call(
        &fake,
        "POST",
        "/repos/acme/shop/issues",
        Some(json!({ "title": "t" })),
    )
    .await;
    let patch = |body: Value| call(&fake, "PATCH", "/repos/acme/shop/issues/1", Some(body));

    patch(json!({ "state_reason": "not_planned" })).await;
    assert_eq!(fake.issues()[0].state_reason, None);
    let closed = patch(json!({ "state": "closed", "state_reason": "completed" })).await;
    assert_eq!(closed.status, 200, "{:?}", fake.errors());
    assert_eq!(closed.body["state_reason"], "completed");
    let reopened = patch(json!({ "state": "open", "state_reason": "reopened" })).await;
    assert_eq!(reopened.body["state"], "open");
    assert_eq!(fake.issues()[0].state_reason.as_deref(), Some("reopened"));
    assert_eq!(fake.errors(), Vec::<String>::new());
}

/// Lists are paged with `per_page`/`page` and a `Link: rel="next"` header.
#[tokio::test]
async fn pages_lists() {
    let git = git_dir();
    let fake = fake(&git).await;
    for n in 0..3 {
        call(
            &fake,
            "POST",
            "/repos/acme/shop/issues",
            Some(json!({ "title": format!("t{n}") })),
        )
        .await;
    }
    let first = call(
        &fake,
        "GET",
        "/repos/acme/shop/issues?state=all&per_page=2",
        None,
    )
    .await;
    assert_eq!(first.body.as_array().unwrap().len(), 2);
    let link = first.header("link").unwrap();
    assert!(
        link.ends_with("/repos/acme/shop/issues?state=all&per_page=2&page=2>; rel=\"next\""),
        "{link}"
    );
    let second = call(
        &fake,
        "GET",
        "/repos/acme/shop/issues?state=all&per_page=2&page=2",
        None,
    )
    .await;
    assert_eq!(second.body.as_array().unwrap().len(), 1);
    assert_eq!(second.header("link"), None);
    assert_eq!(fake.errors(), Vec::<String>::new());
}

/// An App JWT of the right shape gets an installation token that then
/// authenticates; a JWT with the wrong `iss` is a recorded error; a revoked
/// token gets a 401.
#[tokio::test]
async fn issues_installation_tokens() {
    let git = git_dir();
    let fake = FakeGitHub::builder("acme", "shop")
        .git_dir(git.path())
        .app(4242, 77)
        .start()
        .await;
    let now = Utc::now().timestamp();
    let jwt = |iss: u64| {
        format!(
            "{}.{}.{}",
            b64(&json!({ "alg": "RS256", "typ": "JWT" }).to_string()),
            b64(&json!({ "iss": iss, "iat": now - 60, "exp": now + 540 }).to_string()),
            b64("not-a-real-signature"),
        )
    };
    let base_url = fake.base_url();
    let exchange = |jwt: String| {
        let base_url = base_url.clone();
        async move {
            raw::send(
                &base_url,
                "POST",
                "/app/installations/77/access_tokens",
                &[
                    ("authorization", &format!("Bearer {jwt}")),
                    ("user-agent", "t"),
                ],
                None,
            )
            .await
        }
    };
    let issued = exchange(jwt(4242)).await;
    assert_eq!(issued.status, 201);
    let token = issued.body["token"].as_str().unwrap().to_string();
    assert_eq!(fake.issued_tokens(), std::slice::from_ref(&token));

    let headers = [
        ("authorization", format!("token {token}")),
        ("user-agent", "t".to_string()),
    ];
    let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let ok = raw::send(
        &fake.base_url(),
        "GET",
        "/repos/acme/shop/pulls",
        &headers,
        None,
    )
    .await;
    assert_eq!(ok.status, 200);
    fake.revoke_tokens();
    let revoked = raw::send(
        &fake.base_url(),
        "GET",
        "/repos/acme/shop/pulls",
        &headers,
        None,
    )
    .await;
    assert_eq!(revoked.status, 401);
    assert_eq!(fake.errors(), Vec::<String>::new());

    let wrong = exchange(jwt(1)).await;
    assert_eq!(wrong.status, 500);
    assert_eq!(fake.errors().len(), 1, "{:?}", fake.errors());
}

/// Injected faults answer in GitHub's shapes: a secondary limit with
/// `Retry-After`, a primary limit with `x-ratelimit-reset`, a 502; a fault
/// after applying still changes the state.
#[tokio::test]
async fn injects_faults() {
    let git = git_dir();
    let fake = fake(&git).await;
    fake.inject("POST", ISSUES, Fault::retry_after(403, 60));
    fake.inject("POST", ISSUES, Fault::rate_limit_reset(429, 30));
    fake.inject("POST", ISSUES, Fault::status(502).after_applying());
    let create = || {
        call(
            &fake,
            "POST",
            "/repos/acme/shop/issues",
            Some(json!({ "title": "t" })),
        )
    };

    let secondary = create().await;
    assert_eq!(
        (secondary.status, secondary.header("retry-after")),
        (403, Some("60"))
    );
    let primary = create().await;
    assert_eq!(primary.status, 429);
    assert_eq!(primary.header("x-ratelimit-remaining"), Some("0"));
    let reset: i64 = primary
        .header("x-ratelimit-reset")
        .unwrap()
        .parse()
        .unwrap();
    assert!(reset > Utc::now().timestamp());
    assert!(fake.issues().is_empty());
    let applied = create().await;
    assert_eq!(applied.status, 502);
    assert_eq!(fake.issues().len(), 1);
    assert_eq!(fake.pending_faults(), 0);
    assert_eq!(fake.errors(), Vec::<String>::new());
}

/// A request outside the contract, or breaking it, is recorded.
#[tokio::test]
async fn records_contract_violations() {
    let git = git_dir();
    let fake = fake(&git).await;
    let unknown = call(&fake, "DELETE", "/repos/acme/shop/pulls/1", None).await;
    assert_eq!(unknown.status, 500);
    let bad = call(
        &fake,
        "POST",
        "/repos/acme/shop/pulls",
        Some(json!({ "title": 1 })),
    )
    .await;
    assert_eq!(bad.status, 500);
    let bad_query = call(&fake, "GET", "/repos/acme/shop/pulls?state=merged", None).await;
    assert_eq!(bad_query.status, 500);
    assert_eq!(fake.errors().len(), 3, "{:?}", fake.errors());
}

fn b64(text: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes = text.as_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n =
            chunk.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b)) << (8 * (3 - chunk.len()));
        for index in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * index)) & 63) as usize] as char);
        }
    }
    out
}

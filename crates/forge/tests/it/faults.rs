//! Faults injected into the fake GitHub delay the pull request but never
//! duplicate or lose it; a fault that outlasts the retry budget ends in a
//! recorded `GaveUp`, and the next run opens the pull request once. The
//! clock is paused: the waits GitHub asks for take no real time, and the
//! elapsed (virtual) time shows the client honoured them.

use std::time::Duration;

use fakes::github::{self as gh, Fault};
use forge::{ForgeError, GitHubForge, RetryPolicy};
use tokio::time::Instant;

use crate::support::*;

/// A primary limit (`x-ratelimit-reset` two minutes out), two 502s, a
/// secondary limit with `Retry-After: 60`, one without any header, and a
/// hung request: the client waits each out (reset, backoff, Retry-After,
/// at least a minute, its own timeout) and ends with exactly one pull
/// request and one tracking issue.
#[tokio::test(start_paused = true)]
async fn faults_delay_but_do_not_duplicate() {
    let scene = Scene::new(true);
    let fake = fake_github(&scene).await;
    fake.inject("POST", gh::ISSUES, Fault::rate_limit_reset(403, 120));
    fake.inject("GET", gh::GIT_REF, Fault::status(502));
    fake.inject("GET", gh::GIT_REF, Fault::status(502));
    fake.inject("GET", gh::PULLS, Fault::hang());
    fake.inject("POST", gh::PULLS, Fault::retry_after(403, 60));
    fake.inject("POST", gh::PULLS, Fault::secondary_rate_limit());
    let forge = github_forge(&fake, &scene, token_auth());
    let start = Instant::now();

    let opened = forge
        .open_pull_request(&scene.proposal("inc-7f3a"), &scene.source)
        .await
        .unwrap();

    let waited = start.elapsed();
    // reset (≥ 119 s by the wall clock) + 1 s + 2 s backoff + 10 s timeout
    // + 60 s Retry-After + 60 s secondary minimum.
    assert!(
        waited >= Duration::from_secs(119 + 3 + 10 + 60 + 60),
        "{waited:?}"
    );
    assert!(opened.created);
    assert_eq!(fake.pending_faults(), 0);
    assert_eq!(fake.pulls().len(), 1);
    assert_eq!(fake.issues().len(), 1);
    assert_eq!(fake.requests_to("POST", gh::ISSUES).len(), 2);
    assert_eq!(fake.requests_to("POST", gh::PULLS).len(), 3);
    assert_eq!(
        fake.pulls()[0].labels,
        ["revert", "suture:reproduced", "suture"]
    );
    assert_eq!(fake.errors(), Vec::<String>::new());
}

/// 502s that outlast the budget end in `GaveUp` naming the operation, the
/// attempts and the last failure, after exactly that many requests and
/// before anything was created; the job's retry later opens one pull
/// request.
#[tokio::test(start_paused = true)]
async fn persistent_server_errors_give_up_then_a_retry_succeeds() {
    let scene = Scene::new(true);
    let fake = fake_github(&scene).await;
    for _ in 0..3 {
        fake.inject("GET", gh::ISSUES, Fault::status(502));
    }
    let mut config = config(&fake, &scene, token_auth());
    config.retry = RetryPolicy {
        max_attempts: 3,
        ..policy()
    };
    let forge = GitHubForge::new(config).unwrap();
    let proposal = scene.proposal("inc-7f3a");

    let error = forge
        .open_pull_request(&proposal, &scene.source)
        .await
        .unwrap_err();

    match &error {
        ForgeError::GaveUp {
            operation,
            attempts,
            last,
        } => {
            assert_eq!(operation, "find the tracking issue");
            assert_eq!(*attempts, 3);
            assert!(last.starts_with("502"), "{last}");
        }
        other => panic!("expected GaveUp, got {other}"),
    }
    assert_eq!(fake.requests_to("GET", gh::ISSUES).len(), 3);
    assert!(fake.pulls().is_empty() && fake.issues().is_empty());
    assert_eq!(scene.tip(&proposal.branch()), None);

    let opened = forge
        .open_pull_request(&proposal, &scene.source)
        .await
        .unwrap();
    assert_eq!(fake.pulls().len(), 1);
    assert_eq!(fake.pulls()[0].number, opened.number);
    assert_eq!(fake.errors(), Vec::<String>::new());
}

/// A rate limit whose reset is further away than the policy allows to
/// wait gives up at once instead of sleeping for an hour.
#[tokio::test(start_paused = true)]
async fn an_overlong_rate_limit_gives_up() {
    let scene = Scene::new(true);
    let fake = fake_github(&scene).await;
    fake.inject("GET", gh::ISSUES, Fault::rate_limit_reset(429, 3000));
    let mut config = config(&fake, &scene, token_auth());
    config.retry.max_rate_limit_wait = Duration::from_secs(600);
    let forge = GitHubForge::new(config).unwrap();
    let start = Instant::now();

    let error = forge
        .open_tracking_issue("inc-1", "t", "b")
        .await
        .unwrap_err();

    assert!(
        matches!(error, ForgeError::GaveUp { attempts: 1, .. }),
        "{error}"
    );
    assert!(start.elapsed() < Duration::from_secs(1));
    assert_eq!(fake.errors(), Vec::<String>::new());
}

/// A git remote that accepts the connection and never answers fails the
/// push once the push's own I/O timeout (from the forge's config) passes,
/// instead of hanging the caller; the failure is a transient one.
#[test]
fn a_stalled_git_remote_fails_the_push() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    let (done, outcome) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let pushed = runtime.block_on(async {
            let scene = Scene::new(true);
            let fake = fake_github(&scene).await;
            let mut config = config(&fake, &scene, token_auth());
            config.push_url = Some(format!("http://127.0.0.1:{port}/acme/shop.git"));
            config.retry.push_connect_timeout = Duration::from_secs(1);
            config.retry.push_io_timeout = Duration::from_secs(1);
            let forge = GitHubForge::new(config).unwrap();
            let proposal = scene.proposal("inc-stall");
            let start = std::time::Instant::now();
            let pushed = forge.push_fix_branch(&proposal, &scene.source).await;
            (pushed, start.elapsed())
        });
        let _ = done.send(pushed);
    });
    let (pushed, took) = outcome
        .recv_timeout(Duration::from_secs(60))
        .expect("the push gave up instead of hanging");
    let error = pushed.expect_err("nothing answered");
    assert!(matches!(error, ForgeError::Git { .. }), "{error:?}");
    let chain = format!("{error} {:?}", std::error::Error::source(&error));
    assert!(chain.contains("did not answer within 1 s"), "{chain}");
    assert!(took < Duration::from_secs(30), "{took:?}");
}

//! The whole loop against GitHub: the real `sentry-sdk` reports a crash to
//! `suture serve`, which diagnoses it, proves a revert in bubblewrap,
//! pushes the branch to a real bare repository and opens the pull request
//! on the contract-checked fake GitHub; the merge webhook starts the quiet
//! window; then the tracking issue is closed and the Sentry issue resolved,
//! or, when the error comes back, reopened and escalated.

use std::time::Duration;

use fakes::server::Fault;
use serde_json::Value;
use tests::loop_support::{SENTRY_ISSUE, World, branch_head, deliver_github, report_crash};
use tests::serve_support::{Db, Serve, ServeHome, timeline};

use crate::heal::{inventory, test_command};

const PATIENCE: Duration = Duration::from_secs(180);
const PULLS: &str = "/repos/{owner}/{repo}/pulls";
const ISSUES: &str = "/repos/{owner}/{repo}/issues";

fn home(db: Db, world: &World, repo: &tests::ScriptedRepo, quiet: u64, extra: &str) -> ServeHome {
    let mut home = ServeHome::new(db, &world.config(repo, &test_command(), quiet, extra));
    home.env = world.env();
    home
}

fn incident(serve: &Serve, state: &str) -> Value {
    serve.wait_json("/api/incidents/1", PATIENCE, |incident| {
        incident["state"] == state || incident["state"] == "failed"
    })
}

fn assert_state(incident: &Value, state: &str) {
    assert_eq!(incident["state"], state, "{incident:#}");
}

/// The fakes saw only requests and answers their contracts allow.
fn assert_contracts_kept(world: &World) {
    assert_eq!(world.github.errors(), Vec::<String>::new());
    assert_eq!(world.sentry.errors(), Vec::<String>::new());
}

/// A fix that holds: one pull request even though the service is killed
/// while GitHub is creating it, then merge → quiet window (where the old
/// release still reports the error) → tracking issue closed as completed
/// and the Sentry issue resolved. When the error comes back later, the
/// issue is reopened and a regression round starts.
fn fix_that_holds(db: Db) {
    let (repo, culprit) = inventory();
    let world = World::new(&repo, &[("maintainer", "write")]);
    // GitHub creates the pull request but the answer never comes: the
    // service is killed while it waits.
    world
        .github
        .inject("POST", PULLS, Fault::hang().after_applying());
    let home = home(db, &world, &repo, 4, "");
    let serve = home.start(&[]);
    let release = repo.head().to_string();
    let event_id = report_crash(&serve.dsn, repo.path(), "main.py", &release);
    // The application reports to Sentry too; its issue holds this event.
    world.sentry.add_event("1", &event_id, SENTRY_ISSUE);
    world.wait(PATIENCE, "the pull request is created", |world| {
        world.github.pulls().len() == 1
    });
    serve.kill();

    let serve = home.start(&[]);
    let proposed = incident(&serve, "proposed");
    assert_state(&proposed, "proposed");
    let pulls = world.github.pulls();
    assert_eq!(pulls.len(), 1, "exactly one pull request: {pulls:#?}");
    let pull = &pulls[0];
    assert!(pull.head_ref.starts_with("suture/1-"), "{pull:#?}");
    assert_eq!(pull.base_ref, "main");
    assert_eq!(
        branch_head(&world.remote(), &pull.head_ref).as_deref(),
        Some(pull.head_sha.as_str()),
        "the branch was pushed to the real remote"
    );
    let body = pull.body.clone().unwrap_or_default();
    assert!(
        body.contains(&culprit[..10]),
        "the body names the culprit: {body}"
    );
    assert!(pull.labels.contains(&"suture".to_owned()), "{pull:#?}");
    assert!(pull.labels.contains(&"revert".to_owned()), "{pull:#?}");
    let issues = world.github.issues();
    assert_eq!(issues.len(), 1, "one tracking issue: {issues:#?}");
    assert_eq!(issues[0].state, "open");
    assert_eq!(proposed["fixes"][0]["pr_number"], pull.number);
    assert_eq!(proposed["fixes"][0]["state"], "open");

    world.github.merge_pull(pull.number);
    let payload = world.github.pull_request_closed_webhook(pull.number);
    assert_eq!(deliver_github(&serve, "pull_request", &payload), 200);
    let verifying = incident(&serve, "verifying");
    assert_state(&verifying, "verifying");
    // A server still on the old release reports the error during the
    // window: that is not the fix failing.
    report_crash(&serve.dsn, repo.path(), "main.py", &release);
    let resolved = incident(&serve, "resolved");
    assert_state(&resolved, "resolved");
    assert_eq!(resolved["count"], 2, "the old release's event was counted");
    // The old release's event woke the verification early; it went back to
    // wait, and the fix was declared held only once the window was over.
    let verify_until = resolved["fixes"][0]["verify_until"]
        .as_str()
        .unwrap()
        .to_owned();
    let held_at = timeline_entry(&resolved, "the fix held")["at"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        held_at >= verify_until,
        "held at {held_at}, window until {verify_until}"
    );
    let issue = world
        .github
        .issues()
        .into_iter()
        .find(|issue| issue.number == issues[0].number)
        .unwrap();
    assert_eq!(issue.state, "closed");
    assert_eq!(issue.state_reason.as_deref(), Some("completed"));
    assert!(
        issue.comments.iter().any(|c| c.contains("held")),
        "a summary comment: {issue:#?}"
    );
    let sentry = world.sentry.issues();
    assert_eq!(sentry[0].status, "resolved", "{sentry:#?}");
    assert_eq!(resolved["fixes"][0]["state"], "held");
    assert_eq!(world.github.pulls().len(), 1);

    // Later, the error comes back: the tracking issue is reopened with the
    // evidence, the fix is remembered as one that held, and a regression
    // round starts, which does not propose the merged fix again.
    report_crash(&serve.dsn, repo.path(), "main.py", "3.1.0");
    let regressed = serve.wait_json("/api/incidents/1", PATIENCE, |incident| {
        incident["round"] == 2
            && ["unfixed", "proposed", "failed"].contains(&incident["state"].as_str().unwrap_or(""))
    });
    assert_state(&regressed, "unfixed");
    assert_eq!(regressed["trigger"], "regression", "{regressed:#}");
    let held = regressed["fixes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|fix| fix["round"] == 1)
        .unwrap();
    assert_eq!(held["state"], "held", "{regressed:#}");
    assert!(
        held["note"].as_str().unwrap_or("").contains("recurred"),
        "{regressed:#}"
    );
    let issue = world.github.issues()[0].clone();
    assert_eq!(issue.state, "open", "{issue:#?}");
    assert!(
        issue.comments.iter().any(|c| c.contains("3.1.0")),
        "{issue:#?}"
    );
    assert_eq!(world.github.pulls().len(), 1);
    assert_contracts_kept(&world);
}

#[test]
fn fix_that_holds_sqlite() {
    fix_that_holds(Db::Sqlite);
}

#[test]
fn fix_that_holds_postgres() {
    fix_that_holds(Db::Postgres);
}

/// The error recurs on a new release after the merge: at once, without
/// waiting for the window's end, the tracking issue is reopened with the
/// evidence and the incident escalated; a command from
/// someone without write access is ignored and audited; `/suture retry`
/// from a maintainer starts a new attempt that does not propose the same
/// revert again.
#[test]
fn fix_that_does_not_hold() {
    let (repo, _) = inventory();
    let world = World::new(&repo, &[("maintainer", "maintain"), ("visitor", "read")]);
    // An hour's window: the recurrence must be escalated when it comes,
    // not when the window ends.
    let home = home(Db::Sqlite, &world, &repo, 3600, "");
    let serve = home.start(&[]);
    let release = repo.head().to_string();
    report_crash(&serve.dsn, repo.path(), "main.py", &release);
    assert_state(&incident(&serve, "proposed"), "proposed");
    let pull = world.github.pulls()[0].clone();
    world.github.merge_pull(pull.number);
    let payload = world.github.pull_request_closed_webhook(pull.number);
    assert_eq!(deliver_github(&serve, "pull_request", &payload), 200);
    assert_state(&incident(&serve, "verifying"), "verifying");
    report_crash(&serve.dsn, repo.path(), "main.py", "2.0.0");
    let regressed = incident(&serve, "regressed");
    assert_state(&regressed, "regressed");
    assert_eq!(regressed["fixes"][0]["state"], "failed");
    let tracking = world.github.issues()[0].clone();
    assert_eq!(tracking.state, "open");
    assert!(
        tracking
            .comments
            .iter()
            .any(|c| c.contains("recurred") && c.contains("2.0.0")),
        "the evidence: {tracking:#?}"
    );
    assert_eq!(world.sentry.issues()[0].status, "unresolved");

    // Read access is not enough to steer suture.
    let stop = world
        .github
        .issue_comment_webhook(tracking.number, "visitor", "/suture stop");
    assert_eq!(deliver_github(&serve, "issue_comment", &stop), 200);
    let audited = serve.wait_json("/api/incidents/1", PATIENCE, |incident| {
        timeline(incident)
            .iter()
            .any(|(kind, _)| kind == "command_ignored")
    });
    assert_state(&audited, "regressed");
    let ignored = timeline(&audited)
        .into_iter()
        .find(|(kind, _)| kind == "command_ignored")
        .unwrap();
    assert!(ignored.1.contains("@visitor"), "{ignored:?}");

    let retry = world.github.issue_comment_webhook(
        tracking.number,
        "maintainer",
        "/suture retry the empty field case needs a default",
    );
    assert_eq!(deliver_github(&serve, "issue_comment", &retry), 200);
    let second = serve.wait_json("/api/incidents/1", PATIENCE, |incident| {
        incident["round"] == 2 && incident["state"] == "unfixed"
    });
    assert_eq!(
        world.github.pulls().len(),
        1,
        "the revert is not proposed again"
    );
    let heal = &second["heal"];
    // The remembered revert is refused untested; with the suite's failing
    // test as the reproduction, the next suspect's revert is tried as an
    // experiment and fails it, and bisecting points back at the refused
    // culprit: nothing is proven.
    assert_eq!(heal["outcome"], "unproven", "{heal:#}");
    assert_eq!(heal["reproduction"]["kind"], "existing", "{heal:#}");
    assert!(
        heal["attempts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["violation"]["kind"] == "previously_failed"),
        "{heal:#}"
    );
    let replies = &world.github.issues()[0].comments;
    assert!(
        replies.iter().any(|c| c.contains("attempt 2")),
        "the maintainer got an answer: {replies:#?}"
    );
    assert_contracts_kept(&world);
}

/// Rate limits, 502s after the fact and timeouts from GitHub delay the
/// pull request; none duplicates or loses it. suture acts as a GitHub App
/// here: installation tokens from a JWT signed with the App's key.
#[test]
fn github_faults_delay_but_do_not_duplicate() {
    let (repo, _) = inventory();
    let world = World::with_app(&repo, &[]);
    world
        .github
        .inject("POST", PULLS, Fault::retry_after(403, 1));
    world
        .github
        .inject("POST", PULLS, Fault::status(502).after_applying());
    world.github.inject("POST", ISSUES, Fault::status(503));
    world
        .github
        .inject("POST", ISSUES, Fault::hang().after_applying());
    let home = home(Db::Sqlite, &world, &repo, 3600, "");
    let serve = home.start(&[]);
    report_crash(&serve.dsn, repo.path(), "main.py", "1.0.0");
    let proposed = incident(&serve, "proposed");
    assert_state(&proposed, "proposed");
    assert_eq!(world.github.pending_faults(), 0, "every fault was met");
    assert_eq!(world.github.pulls().len(), 1, "{:#?}", world.github.pulls());
    assert_eq!(
        world.github.issues().len(),
        1,
        "{:#?}",
        world.github.issues()
    );
    assert_contracts_kept(&world);
}

/// GitHub refuses the pull request for good (403, as when the App lacks
/// the pull requests permission): the job is not retried for minutes; the
/// incident fails with GitHub's reason on the record and the attempt says
/// why it never became a proposal.
#[test]
fn a_refused_pull_request_is_recorded_not_retried() {
    let (repo, _) = inventory();
    let world = World::new(&repo, &[]);
    world.github.inject("POST", PULLS, Fault::status(403));
    let home = home(Db::Sqlite, &world, &repo, 3600, "");
    let serve = home.start(&[]);
    report_crash(&serve.dsn, repo.path(), "main.py", "1.0.0");
    let failed = incident(&serve, "failed");
    assert_state(&failed, "failed");
    assert_eq!(failed["jobs"][0]["attempts"], 1, "not retried: {failed:#}");
    assert_eq!(failed["fixes"][0]["state"], "abandoned", "{failed:#}");
    let note = failed["fixes"][0]["note"].as_str().unwrap_or_default();
    assert!(note.contains("403"), "{note}");
    assert!(world.github.pulls().is_empty());
    assert_contracts_kept(&world);
}

fn timeline_entry<'a>(incident: &'a Value, message_start: &str) -> &'a Value {
    incident["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .find(|entry| {
            entry["message"]
                .as_str()
                .is_some_and(|message| message.starts_with(message_start))
        })
        .unwrap_or_else(|| panic!("no timeline entry {message_start:?}: {incident:#}"))
}

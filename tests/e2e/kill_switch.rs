//! The kill switch through the real binary: `suture pause` in another
//! process while a round is between heal and propose holds the pull
//! request back (the round is not failed; the timeline says why), `GET
//! /api/status` and `suture_paused` show the pause, and `suture resume`
//! lets the same round propose.

use std::process::Output;
use std::time::Duration;

use serde_json::Value;
use tests::loop_support::report_crash;
use tests::serve_support::{Db, Serve, ServeHome, http};
use tests::suture_bin;

use crate::heal::{inventory, test_command};

const PATIENCE: Duration = Duration::from_secs(180);

/// How long the heal step is held open by the test hook: the time the test
/// has to run `suture pause` once it sees the step started. A slower pause
/// fails the test (a pull request opens); it never passes it wrongly.
const HEAL_HELD_SECONDS: &str = "10";

/// Runs `suture <command> <args> --config …` against `home`'s store.
pub(crate) fn suture(home: &ServeHome, command: &str, args: &[&str]) -> Output {
    let mut run = std::process::Command::new(suture_bin());
    run.arg(command)
        .args(args)
        .arg("--config")
        .arg(home.dir.path().join("suture.toml"))
        .env_remove("SUTURE_DATABASE_URL");
    if let Some(url) = &home.database_url {
        run.env("SUTURE_DATABASE_URL", url);
    }
    run.output().expect("running suture")
}

fn ok(output: Output) -> String {
    assert!(
        output.status.success(),
        "suture failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn home(db: Db) -> (tests::ScriptedRepo, ServeHome) {
    let (repo, _) = inventory();
    let mut home = ServeHome::new(db, "");
    home.config = format!(
        "[store]\ndata_dir = \"{}\"\n\
         [queue]\npoll_millis = 100\nbackoff_seconds = 1\n\
         [[repos]]\nname = \"inventory\"\npath = \"{}\"\ntest_command = \"{}\"\ndays = 30\nlearning_seconds = 0\n",
        home.data_dir().display(),
        repo.path().display(),
        test_command()
    );
    (repo, home)
}

/// The state of `step` in the incident's first job, if it has started.
fn step_state<'a>(incident: &'a Value, step: &str) -> Option<&'a str> {
    incident["jobs"][0]["steps"]
        .as_array()?
        .iter()
        .find(|entry| entry["step"] == step)?["state"]
        .as_str()
}

fn paused_entries(incident: &Value) -> Vec<String> {
    incident["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|entry| entry["kind"] == "paused")
        .map(|entry| entry["message"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn metrics(serve: &Serve) -> String {
    let (_, body) = http(serve.addr, "GET", "/metrics", &[], b"");
    String::from_utf8(body).unwrap()
}

fn pulls(home: &ServeHome) -> Vec<Value> {
    let listed: Value = serde_json::from_str(&ok(suture(home, "pr", &["list", "--json"]))).unwrap();
    listed.as_array().unwrap().clone()
}

fn pause_between_heal_and_propose(db: Db) {
    let (repo, home) = home(db);
    let serve = home.start(&[
        ("SUTURE_LLM_BASE_URL", ""),
        ("SUTURE_TEST_PAUSE_IN_STEP", "heal"),
        ("SUTURE_TEST_PAUSE_SECONDS", HEAL_HELD_SECONDS),
    ]);
    report_crash(&serve.dsn, repo.path(), "main.py", "1.0.0");
    serve.wait_json("/api/incidents/1", PATIENCE, |incident| {
        step_state(incident, "heal").is_some()
    });
    let said = ok(suture(&home, "pause", &["--reason", "release freeze"]));
    assert!(said.contains("paused everything: release freeze"), "{said}");

    let status = serve.get_json("/api/status");
    assert_eq!(status["paused"]["global"]["reason"], "release freeze");
    assert!(
        status["paused"]["global"]["since"].is_string(),
        "{status:#}"
    );
    assert_eq!(
        status["repos"],
        serde_json::json!([{"name": "inventory", "paused": true}])
    );
    assert!(metrics(&serve).contains("suture_paused{repo=\"*\"} 1"));

    // The heal step ends, the propose step meets the pause: the round
    // waits, on the record, with nothing opened. The timeline's entry is
    // written before the worker hands the job back to the queue, so wait
    // for both.
    let held = serve.wait_json("/api/incidents/1", PATIENCE, |incident| {
        !paused_entries(incident).is_empty() && incident["jobs"][0]["state"] == "queued"
    });
    assert_eq!(step_state(&held, "heal"), Some("finished"), "{held:#}");
    assert_eq!(step_state(&held, "propose"), None, "{held:#}");
    assert_eq!(paused_entries(&held), ["paused: release freeze"]);
    assert!(held["fixes"].as_array().unwrap().is_empty(), "{held:#}");
    assert!(pulls(&home).is_empty());
    assert_ne!(held["state"], "failed", "{held:#}");
    assert_eq!(held["jobs"][0]["state"], "queued", "{held:#}");

    let said = ok(suture(&home, "resume", &[]));
    assert!(said.contains("resumed everything"), "{said}");
    assert!(said.contains("nothing is paused"), "{said}");
    let proposed = serve.wait_json("/api/incidents/1", PATIENCE, |incident| {
        ["proposed", "failed", "unfixed"].contains(&incident["state"].as_str().unwrap_or(""))
    });
    assert_eq!(proposed["state"], "proposed", "{proposed:#}");
    let pulls = pulls(&home);
    assert_eq!(pulls.len(), 1, "{pulls:#?}");
    assert_eq!(pulls[0]["state"], "open");
    // The round waited; it said so once however often it looked again.
    assert_eq!(paused_entries(&proposed), ["paused: release freeze"]);
    let status = serve.get_json("/api/status");
    assert_eq!(status["paused"]["global"], Value::Null);
    assert!(metrics(&serve).contains("suture_paused{repo=\"*\"} 0"));
}

#[test]
fn a_pause_between_heal_and_propose_opens_no_pull_request() {
    pause_between_heal_and_propose(Db::Sqlite);
}

#[test]
fn a_pause_between_heal_and_propose_opens_no_pull_request_postgres() {
    pause_between_heal_and_propose(Db::Postgres);
}

/// A repository paused before its error arrives keeps ingesting,
/// diagnosing and healing (observe mode), proposes nothing until resumed,
/// and `suture pause --repo` refuses a name that is not configured.
#[test]
fn a_paused_repository_keeps_diagnosing_and_proposes_after_resume() {
    let (repo, home) = home(Db::Sqlite);
    let serve = home.start(&[("SUTURE_LLM_BASE_URL", "")]);
    let refused = suture(&home, "pause", &["--repo", "nope"]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("known: inventory"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let said = ok(suture(
        &home,
        "pause",
        &["--repo", "inventory", "--reason", "bad deploy"],
    ));
    assert!(said.contains("inventory: bad deploy"), "{said}");
    assert!(metrics(&serve).contains("suture_paused{repo=\"inventory\"} 1"));

    report_crash(&serve.dsn, repo.path(), "main.py", "1.0.0");
    let held = serve.wait_json("/api/incidents/1", PATIENCE, |incident| {
        !paused_entries(incident).is_empty()
    });
    assert!(held["diagnosis"].is_object(), "{held:#}");
    assert_eq!(step_state(&held, "heal"), Some("finished"), "{held:#}");
    assert_eq!(paused_entries(&held), ["paused: bad deploy"]);
    assert!(pulls(&home).is_empty());
    let status = serve.get_json("/api/status");
    assert_eq!(status["paused"]["global"], Value::Null);
    assert_eq!(
        status["paused"]["repos"]["inventory"]["reason"],
        "bad deploy"
    );

    // Lifting a global pause that was never made leaves the repository's.
    let said = ok(suture(&home, "resume", &[]));
    assert!(said.contains("everything was not paused"), "{said}");
    assert!(said.contains("inventory: bad deploy"), "{said}");
    ok(suture(&home, "resume", &["--repo", "inventory"]));
    let proposed = serve.wait_json("/api/incidents/1", PATIENCE, |incident| {
        ["proposed", "failed", "unfixed"].contains(&incident["state"].as_str().unwrap_or(""))
    });
    assert_eq!(proposed["state"], "proposed", "{proposed:#}");
    assert_eq!(pulls(&home).len(), 1);
}

/// The same on GitHub (the contract-checked fake): a repository paused
/// while its round heals gets no branch, pull request or tracking issue;
/// after the resume it does. Paused again after the merge, the quiet
/// window ends with the tracking issue left open, the Sentry issue left
/// unresolved and a `/suture explain` left unanswered; the resume closes,
/// resolves and answers.
#[test]
fn a_pause_holds_every_github_effect_until_resumed() {
    use tests::loop_support::{World, deliver_github};
    let (repo, _) = inventory();
    let world = World::new(&repo, &[("maintainer", "write")]);
    let mut home = ServeHome::new(Db::Sqlite, "");
    // `suture pause` finds the service's store through the configuration.
    let store = format!("[store]\ndata_dir = \"{}\"\n", home.data_dir().display());
    home.config = world.config(&repo, &test_command(), 2, &store);
    home.env = world.env();
    let serve = home.start(&[
        ("SUTURE_TEST_PAUSE_IN_STEP", "heal"),
        ("SUTURE_TEST_PAUSE_SECONDS", HEAL_HELD_SECONDS),
    ]);
    let event_id = report_crash(&serve.dsn, repo.path(), "main.py", &repo.head().to_string());
    world
        .sentry
        .add_event("1", &event_id, tests::loop_support::SENTRY_ISSUE);
    serve.wait_json("/api/incidents/1", PATIENCE, |incident| {
        step_state(incident, "heal").is_some()
    });
    ok(suture(
        &home,
        "pause",
        &["--repo", "shop", "--reason", "freeze"],
    ));
    let held = serve.wait_json("/api/incidents/1", PATIENCE, |incident| {
        !paused_entries(incident).is_empty()
    });
    assert_eq!(step_state(&held, "heal"), Some("finished"), "{held:#}");
    assert!(world.github.pulls().is_empty());
    assert!(world.github.issues().is_empty());
    assert_eq!(branch_count(&world), 1, "only main is on the remote");

    ok(suture(&home, "resume", &["--repo", "shop"]));
    let proposed = serve.wait_json("/api/incidents/1", PATIENCE, |incident| {
        ["proposed", "failed", "unfixed"].contains(&incident["state"].as_str().unwrap_or(""))
    });
    assert_eq!(proposed["state"], "proposed", "{proposed:#}");
    let pulls = world.github.pulls();
    assert_eq!(pulls.len(), 1, "{pulls:#?}");

    ok(suture(
        &home,
        "pause",
        &["--repo", "shop", "--reason", "review"],
    ));
    world.github.merge_pull(pulls[0].number);
    let payload = world.github.pull_request_closed_webhook(pulls[0].number);
    assert_eq!(deliver_github(&serve, "pull_request", &payload), 200);
    let tracking = world.github.issues()[0].number;
    let explain = world
        .github
        .issue_comment_webhook(tracking, "maintainer", "/suture explain");
    assert_eq!(deliver_github(&serve, "issue_comment", &explain), 200);
    // The merge is a human's act and is recorded at once; what it starts
    // waits for the resume.
    let waiting = serve.wait_json("/api/incidents/1", PATIENCE, |incident| {
        paused_entries(incident).contains(&"paused: review".to_owned())
            && incident["state"] == "verifying"
    });
    assert_eq!(waiting["fixes"][0]["state"], "merged", "{waiting:#}");
    // The verification came due and was held: still nothing was said or
    // done upstream.
    let deadline = std::time::Instant::now() + PATIENCE;
    while !serve
        .stderr()
        .lines()
        .any(|line| line.contains("verify/") && line.contains("held by the kill switch"))
    {
        assert!(std::time::Instant::now() < deadline, "{}", serve.stderr());
        std::thread::sleep(Duration::from_millis(100));
    }
    let issue = &world.github.issues()[0];
    assert_eq!(issue.state, "open", "{issue:#?}");
    assert_eq!(issue.comments, ["/suture explain"], "only the human spoke");
    assert_eq!(world.sentry.issues()[0].status, "unresolved");

    ok(suture(&home, "resume", &["--repo", "shop"]));
    let resolved = serve.wait_json("/api/incidents/1", PATIENCE, |incident| {
        ["resolved", "failed", "regressed"].contains(&incident["state"].as_str().unwrap_or(""))
    });
    assert_eq!(resolved["state"], "resolved", "{resolved:#}");
    world.wait(PATIENCE, "the explanation is posted", |world| {
        world.github.issues()[0].comments.len() > 1
    });
    assert_eq!(world.github.issues()[0].state, "closed");
    assert_eq!(world.sentry.issues()[0].status, "resolved");
    assert_eq!(world.github.errors(), Vec::<String>::new());
    assert_eq!(world.sentry.errors(), Vec::<String>::new());
}

/// Branches on the world's bare remote.
fn branch_count(world: &tests::loop_support::World) -> usize {
    let remote = git2::Repository::open_bare(world.remote()).unwrap();
    remote
        .branches(Some(git2::BranchType::Local))
        .unwrap()
        .count()
}

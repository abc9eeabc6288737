//! The whole loop on the local forge, with no account anywhere and only the
//! `suture` command: the real `sentry-sdk` reports a crash to `suture
//! serve`, the proven revert becomes a pull request in the store and a
//! branch in a bare repository, `suture pr` reviews and merges it, and the
//! quiet window closes the tracking issue.

use std::process::Output;
use std::time::Duration;

use serde_json::Value;
use tests::loop_support::{branch_head, report_crash};
use tests::serve_support::{Db, ServeHome};
use tests::suture_bin;

use crate::heal::{inventory, test_command};

const PATIENCE: Duration = Duration::from_secs(180);

fn pr(home: &ServeHome, args: &[&str]) -> Output {
    let mut command = std::process::Command::new(suture_bin());
    command
        .arg("pr")
        .args(args)
        .arg("--config")
        .arg(home.dir.path().join("suture.toml"))
        .env_remove("SUTURE_DATABASE_URL");
    if let Some(url) = &home.database_url {
        command.env("SUTURE_DATABASE_URL", url);
    }
    command.output().expect("running suture pr")
}

fn ok(output: Output) -> String {
    assert!(
        output.status.success(),
        "suture pr failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn local_loop(db: Db) {
    let (repo, culprit) = inventory();
    let config = |data_dir: &std::path::Path| {
        format!(
            "[store]\ndata_dir = \"{}\"\n\
             [queue]\npoll_millis = 100\nbackoff_seconds = 1\n[verify]\nquiet_seconds = 3\n\
             [[repos]]\nname = \"inventory\"\npath = \"{}\"\ntest_command = \"{}\"\ndays = 30\nlearning_seconds = 0\n",
            data_dir.display(),
            repo.path().display(),
            test_command()
        )
    };
    let mut home = ServeHome::new(db, "");
    home.config = config(&home.data_dir());
    let serve = home.start(&[("SUTURE_LLM_BASE_URL", "")]);
    report_crash(&serve.dsn, repo.path(), "main.py", "1.0.0");
    let proposed = serve.wait_json("/api/incidents/1", PATIENCE, |incident| {
        ["proposed", "failed", "unfixed"].contains(&incident["state"].as_str().unwrap_or(""))
    });
    assert_eq!(proposed["state"], "proposed", "{proposed:#}");
    let number = proposed["fixes"][0]["pr_number"]
        .as_i64()
        .unwrap()
        .to_string();

    let listed: Value = serde_json::from_str(&ok(pr(&home, &["list", "--json"]))).unwrap();
    let pulls = listed.as_array().unwrap();
    assert_eq!(pulls.len(), 1, "{listed:#}");
    assert_eq!(pulls[0]["state"], "open");
    let branch = pulls[0]["branch"].as_str().unwrap().to_owned();
    let remote = home.data_dir().join("forge/inventory.git");
    assert_eq!(
        branch_head(&remote, &branch).as_deref(),
        pulls[0]["head_sha"].as_str(),
        "the fix branch is in the bare remote"
    );
    let shown = ok(pr(&home, &["show", &number]));
    assert!(shown.contains(&culprit[..10]), "{shown}");
    assert!(
        shown.contains("+    if not text:"),
        "the diff restores the guard: {shown}"
    );

    let merged = ok(pr(&home, &["merge", &number]));
    assert!(merged.contains("merged"), "{merged}");
    let main = branch_head(&remote, "main").unwrap();
    let remote_repo = git2::Repository::open_bare(&remote).unwrap();
    let stock = remote_repo
        .find_commit(git2::Oid::from_str(&main).unwrap())
        .unwrap()
        .tree()
        .unwrap()
        .get_path(std::path::Path::new("inventory/stock.py"))
        .unwrap()
        .to_object(&remote_repo)
        .unwrap()
        .peel_to_blob()
        .unwrap()
        .content()
        .to_vec();
    assert!(
        String::from_utf8_lossy(&stock).contains("if not text:"),
        "main has the fix"
    );
    let resolved = serve.wait_json("/api/incidents/1", PATIENCE, |incident| {
        incident["state"] == "resolved" || incident["state"] == "failed"
    });
    assert_eq!(resolved["state"], "resolved", "{resolved:#}");
    assert_eq!(resolved["fixes"][0]["state"], "held");
    let (_, metrics) = tests::serve_support::http(serve.addr, "GET", "/metrics", &[], b"");
    let metrics = String::from_utf8(metrics).unwrap();
    assert!(
        metrics.contains("suture_fix_attempts{strategy=\"revert\",state=\"held\"} 1"),
        "{metrics}"
    );
    for milestone in ["diagnosed", "pull_request", "resolved"] {
        assert!(
            metrics.contains(&format!(
                "suture_incident_milestone_seconds_count{{milestone=\"{milestone}\"}} 1"
            )),
            "{metrics}"
        );
    }

    // The tracking issue is closed, with the summary; explain answers on it.
    let records = tests::serve_support::block_on(home.store().document("local_forge/inventory"))
        .unwrap()
        .expect("the local forge's records are in the store");
    let records: Value = serde_json::from_str(&records).unwrap();
    let tracking = &records["issues"][0];
    assert_eq!(tracking["state"], "closed", "{records:#}");
    assert_eq!(tracking["state_reason"], "completed", "{records:#}");
    let issue = proposed["fixes"][0]["tracking_issue"]
        .as_i64()
        .unwrap()
        .to_string();
    ok(pr(
        &home,
        &["comment", &issue, "/suture explain", "--as", "ops"],
    ));
    let explained = serve.wait_json("/api/incidents/1", PATIENCE, |incident| {
        incident["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .any(|entry| entry["kind"] == "command")
    });
    assert_eq!(explained["state"], "resolved");
    let listed = ok(pr(&home, &["list"]));
    assert!(listed.contains("merged"), "{listed}");
}

#[test]
fn local_loop_sqlite() {
    local_loop(Db::Sqlite);
}

#[test]
fn local_loop_postgres() {
    local_loop(Db::Postgres);
}

/// An event that names no release arrives during the quiet window: it is
/// counted and shown, but does not fail the fix (anyone holding the DSN's
/// public key could send one), and the incident is resolved at the
/// window's end.
#[test]
fn an_unreleased_event_does_not_fail_the_fix() {
    let (repo, _) = inventory();
    let mut home = ServeHome::new(Db::Sqlite, "");
    home.config = format!(
        "[store]\ndata_dir = \"{}\"\n\
         [queue]\npoll_millis = 100\nbackoff_seconds = 1\n[verify]\nquiet_seconds = 8\n\
         [[repos]]\nname = \"inventory\"\npath = \"{}\"\ntest_command = \"{}\"\ndays = 30\nlearning_seconds = 0\n",
        home.data_dir().display(),
        repo.path().display(),
        test_command()
    );
    let serve = home.start(&[("SUTURE_LLM_BASE_URL", "")]);
    report_crash(&serve.dsn, repo.path(), "main.py", "1.0.0");
    let proposed = settled(&serve, &["proposed", "unfixed"]);
    assert_eq!(proposed["state"], "proposed", "{proposed:#}");
    let number = proposed["fixes"][0]["pr_number"]
        .as_i64()
        .unwrap()
        .to_string();
    ok(pr(&home, &["merge", &number]));
    serve.wait_json("/api/incidents/1", PATIENCE, |incident| {
        incident["state"] == "verifying"
    });
    report_crash(&serve.dsn, repo.path(), "main.py", "");
    let resolved = settled(&serve, &["resolved", "regressed"]);
    assert_eq!(resolved["state"], "resolved", "{resolved:#}");
    assert_eq!(resolved["fixes"][0]["state"], "held");
    let note = resolved["fixes"][0]["note"].as_str().unwrap_or_default();
    assert!(
        note.contains("1 event(s) without a release did not count"),
        "{note}"
    );
}

/// A repository with the default local forge and `extra` repo keys.
fn local_home(repo: &tests::ScriptedRepo, extra: &str) -> ServeHome {
    let mut home = ServeHome::new(Db::Sqlite, "");
    home.config = format!(
        "[store]\ndata_dir = \"{}\"\n\
         [queue]\npoll_millis = 100\nbackoff_seconds = 1\n\
         [[repos]]\nname = \"inventory\"\npath = \"{}\"\ntest_command = \"{}\"\ndays = 30\nlearning_seconds = 0\n{extra}",
        home.data_dir().display(),
        repo.path().display(),
        test_command()
    );
    home
}

fn settled(serve: &tests::serve_support::Serve, states: &[&str]) -> Value {
    serve.wait_json("/api/incidents/1", PATIENCE, |incident| {
        let state = incident["state"].as_str().unwrap_or("");
        states.contains(&state) || state == "failed"
    })
}

/// Suggest mode: the proven diff goes into the tracking issue; no branch,
/// no pull request.
#[test]
fn suggest_mode_puts_the_diff_in_the_tracking_issue() {
    let (repo, _) = inventory();
    let home = local_home(&repo, "mode = \"suggest\"\n");
    let serve = home.start(&[("SUTURE_LLM_BASE_URL", "")]);
    report_crash(&serve.dsn, repo.path(), "main.py", "1.0.0");
    let suggested = settled(&serve, &["suggested", "unfixed"]);
    assert_eq!(suggested["state"], "suggested", "{suggested:#}");
    assert_eq!(suggested["fixes"][0]["state"], "suggested");
    assert!(suggested["fixes"][0]["pr_number"].is_null());
    assert_eq!(ok(pr(&home, &["list"])).trim(), "no pull requests");
    let records = tests::serve_support::block_on(home.store().document("local_forge/inventory"))
        .unwrap()
        .unwrap();
    let records: Value = serde_json::from_str(&records).unwrap();
    let body = records["issues"][0]["body"].as_str().unwrap();
    assert!(body.contains("```diff"), "{body}");
    assert!(body.contains("+    if not text:"), "{body}");
    let remote = home.data_dir().join("forge/inventory.git");
    let branches = git2::Repository::open_bare(&remote)
        .unwrap()
        .branches(None)
        .unwrap()
        .count();
    assert_eq!(branches, 0, "no fix branch was pushed");
}

/// A pull request closed without merging is remembered: `/suture retry`
/// starts a round that refuses the same revert; `/suture stop` halts the
/// incident.
#[test]
fn a_rejected_fix_is_not_proposed_again() {
    let (repo, _) = inventory();
    let home = local_home(&repo, "");
    let serve = home.start(&[("SUTURE_LLM_BASE_URL", "")]);
    report_crash(&serve.dsn, repo.path(), "main.py", "1.0.0");
    let proposed = settled(&serve, &["proposed", "unfixed"]);
    assert_eq!(proposed["state"], "proposed", "{proposed:#}");
    let number = proposed["fixes"][0]["pr_number"]
        .as_i64()
        .unwrap()
        .to_string();
    let closed = ok(pr(&home, &["close", &number]));
    assert!(closed.contains("will not propose"), "{closed}");
    let rejected = settled(&serve, &["rejected"]);
    assert_eq!(rejected["fixes"][0]["state"], "rejected", "{rejected:#}");

    ok(pr(
        &home,
        &[
            "comment",
            &number,
            "/suture retry keep the guard",
            "--as",
            "ops",
        ],
    ));
    let second = serve.wait_json("/api/incidents/1", PATIENCE, |incident| {
        incident["round"] == 2
            && ["unfixed", "failed"].contains(&incident["state"].as_str().unwrap_or(""))
    });
    assert_eq!(second["state"], "unfixed", "{second:#}");
    let refused = second["heal"]["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .any(|attempt| attempt["violation"]["kind"] == "previously_failed");
    assert!(refused, "{:#}", second["heal"]);
    assert!(
        second["heal"]["history"]
            .as_str()
            .unwrap_or_default()
            .contains("rejected"),
        "{:#}",
        second["heal"]
    );
    let listed: Value = serde_json::from_str(&ok(pr(&home, &["list", "--json"]))).unwrap();
    assert_eq!(
        listed.as_array().unwrap().len(),
        1,
        "no second pull request"
    );

    ok(pr(
        &home,
        &["comment", &number, "/suture stop", "--as", "ops"],
    ));
    let stopped = settled(&serve, &["stopped"]);
    assert_eq!(stopped["state"], "stopped");
    let bad = pr(&home, &["merge", "99"]);
    assert_eq!(
        bad.status.code(),
        Some(2),
        "an unknown pull request is bad input"
    );
}

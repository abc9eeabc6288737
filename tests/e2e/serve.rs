//! `suture serve` end to end: the real binary on SQLite and PostgreSQL, the
//! real `sentry-sdk` reporting to the DSN it prints, graceful shutdown on
//! SIGTERM, and `suture check-config`.

use std::process::Command;
use std::time::Duration;

use serde_json::json;
use tests::serve_support::{Db, ServeHome, event_envelope, http, sentry_auth, support_script};
use tests::{python, suture};

/// Liveness bound for polls: generous, so slow machines never flake.
const PATIENCE: Duration = Duration::from_secs(120);

/// The real sentry-sdk, its DSN pointed at a running `suture serve`,
/// reports an exception and a message (brotli-compressed when brotli is
/// installed, as scripts/test does): both arrive, each becomes an incident,
/// and the read API shows them.
fn real_sdk_reports_to_serve(db: Db) {
    let home = ServeHome::new(db, "");
    let serve = home.start(&[]);
    let output = Command::new(python())
        .arg(support_script("send_events.py"))
        .arg(&serve.dsn)
        .output()
        .expect("running python");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "sentry-sdk failed (is it installed? scripts/test installs it): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines[0], "compression br",
        "scripts/test installs brotli so the SDK sends br"
    );
    let list = serve.wait_json("/api/incidents", PATIENCE, |list| {
        list["incidents"].as_array().unwrap().len() == 2
    });
    let mut titles: Vec<&str> = list["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["title"].as_str().unwrap())
        .collect();
    titles.sort();
    assert_eq!(
        titles,
        [
            "ZeroDivisionError: division by zero",
            "disk almost full on host-7"
        ]
    );
    let crash = list["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| {
            i["title"]
                .as_str()
                .unwrap()
                .starts_with("ZeroDivisionError")
        })
        .unwrap();
    assert!(
        crash["fingerprint"]
            .as_str()
            .unwrap()
            .starts_with("exception:")
    );
    assert_eq!(crash["count"], 1);
    // No repository is configured: the pipeline says so and ends. The
    // incident says so inside the job, just before the job is recorded done.
    let detail = serve.wait_json(&format!("/api/incidents/{}", crash["id"]), PATIENCE, |i| {
        i["state"] == "no_repo" && i["jobs"][0]["state"] != "running"
    });
    assert_eq!(detail["jobs"][0]["state"], "done");
    let store = home.store();
    let keys = tests::serve_support::block_on(store.signal_keys()).unwrap();
    let event_ids: Vec<String> = lines[1..].iter().map(|id| format!("1:{id}")).collect();
    for id in &event_ids {
        assert!(
            keys.iter()
                .any(|(source, key, n)| source == "sentry_sdk" && key == id && *n == 1),
            "{id} not stored once: {keys:?}"
        );
    }
    // The pages are served under the same per-request rules as the API.
    let (status, _) = http(serve.addr, "GET", "/", &[], b"");
    assert_eq!(status, 200);
    let metrics = String::from_utf8(http(serve.addr, "GET", "/metrics", &[], b"").1).unwrap();
    assert!(
        metrics.contains(
            "suture_signals_total{result=\"accepted\",source=\"sentry_sdk\",reason=\"\"} 2"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("suture_http_requests_total{route=\"/\",status=\"200\"} 1"),
        "{metrics}"
    );
}

#[test]
fn real_sdk_reports_to_serve_sqlite() {
    real_sdk_reports_to_serve(Db::Sqlite);
}

#[test]
fn real_sdk_reports_to_serve_postgres() {
    real_sdk_reports_to_serve(Db::Postgres);
}

/// With no configuration at all, `suture serve` starts with embedded SQLite
/// under its data dir, prints a DSN whose key it keeps across restarts, and
/// its webhook URLs; readiness reports the store reachable.
#[test]
fn bare_serve_prints_dsn_and_webhooks() {
    let home = ServeHome::new(Db::Sqlite, "");
    let serve = home.start(&[]);
    let key = serve.key();
    assert_eq!(key.len(), 32);
    assert!(
        serve.dsn.ends_with(&format!("@{}/1", serve.addr)),
        "{}",
        serve.dsn
    );
    let lines = serve.announcement().join("\n");
    assert!(
        lines.contains(&format!("http://{}/webhooks/pagerduty", serve.addr)),
        "{lines}"
    );
    assert!(home.data_dir().join("suture.db").exists());
    assert_eq!(serve.get_json("/readyz"), json!({"status": "ready"}));
    serve.kill();
    let again = home.start(&[]);
    assert_eq!(again.key(), key, "the generated key survives a restart");
}

/// SIGTERM: accepted deliveries are all committed, a job paused inside a
/// step is released after the drain time (not counted as an attempt), and
/// the process exits 0.
fn sigterm_drains(db: Db) {
    let repo = tests::ScriptedRepo::new();
    repo.commit(
        "Ann <ann@example.com>",
        1_700_000_000,
        "init",
        &[("app.py", Some("def f():\n    return 1 / 0\n"))],
    );
    let config = format!(
        "[server]\ndrain_seconds = 1\n[[repos]]\nname = \"app\"\npath = \"{}\"\nmode = \"observe\"\nlearning_seconds = 0\n",
        repo.path().display()
    );
    let home = ServeHome::new(db, &config);
    let serve = home.start(&[
        ("SUTURE_TEST_PAUSE_IN_STEP", "diagnose"),
        ("SUTURE_TEST_PAUSE_SECONDS", "600"),
    ]);
    let auth = sentry_auth(&serve.key());
    for i in 0..20 {
        let id = format!("{i:032x}");
        let event = json!({"event_id": id, "exception": {"values": [{"type": "ZeroDivisionError", "value": "division by zero",
            "stacktrace": {"frames": [{"filename": "app.py", "function": "f", "lineno": 2, "in_app": true}]}}]}});
        let (status, body) = http(
            serve.addr,
            "POST",
            "/api/1/envelope/",
            &[("X-Sentry-Auth", &auth)],
            &event_envelope(&id, &event),
        );
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    }
    serve.wait_json("/api/incidents/1", PATIENCE, |i| {
        i["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "step_started")
    });
    let (status, stderr) = serve.terminate(PATIENCE);
    assert!(status.success(), "exit {status:?}; stderr:\n{stderr}");
    assert!(stderr.contains("suture stopped"), "{stderr}");
    let store = home.store_after_stop();
    let incident = tests::serve_support::block_on(store.incident(1))
        .unwrap()
        .unwrap();
    assert_eq!(incident.count, 20);
    let jobs = tests::serve_support::block_on(store.incident_jobs(1)).unwrap();
    assert_eq!(
        (jobs[0].state.as_str(), jobs[0].attempts),
        ("queued", 0),
        "released, not failed: {jobs:?}"
    );
}

#[test]
fn sigterm_drains_sqlite() {
    sigterm_drains(Db::Sqlite);
}

#[test]
fn sigterm_drains_postgres() {
    sigterm_drains(Db::Postgres);
}

/// `suture check-config` accepts a good file, and explains each problem of
/// a bad one with its key (exit 2).
#[test]
fn check_config_explains() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(&good, "[server]\nlisten = \"127.0.0.1:9999\"\n").unwrap();
    let output = suture(&["check-config", "--config", good.to_str().unwrap()]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("configuration ok"));

    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[server]\nlisten = \"nowhere\"\n[[repos]]\nname = \"app\"\npath = \"/does/not/exist\"\nsandbox = \"vm\"\n",
    )
    .unwrap();
    let output = suture(&["check-config", "--config", bad.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    for expected in [
        "error: server.listen: \"nowhere\" is not an address and port",
        "error: repos[0].sandbox: \"vm\" is not one of bubblewrap, docker, process",
        "error: repos[0].path: \"/does/not/exist\" is not a git repository",
        "error: 3 problem(s) in the configuration",
    ] {
        assert!(
            stderr.contains(expected),
            "missing {expected:?} in\n{stderr}"
        );
    }
    let typo = dir.path().join("typo.toml");
    std::fs::write(&typo, "[queue]\nworkerz = 3\n").unwrap();
    let output = suture(&["check-config", "--config", typo.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("workerz"));
    let serve = suture(&["serve", "--config", bad.to_str().unwrap()]);
    assert_eq!(
        serve.status.code(),
        Some(2),
        "serve refuses a bad configuration before starting"
    );
}

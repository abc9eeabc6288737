//! Recovery actions and one incident across sources, through the real
//! `suture serve`: signed PagerDuty v3 webhooks, the contract-checked fake
//! PagerDuty API, the fake GitHub with a writer and a reader, commands run
//! by the service and an HTTP action reaching a local server.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fakes::pagerduty::{FakePagerDuty, incident_webhook, sign_pagerduty_webhook};
use serde_json::Value;
use tests::loop_support::{World, deliver_github, report_crash};
use tests::serve_support::{Db, Serve, ServeHome, block_on, http, timeline};

use crate::heal::{inventory, test_command};

const PATIENCE: Duration = Duration::from_secs(180);
const PD_KEY: &str = "pd-test-api-key";
const PD_SECRET: &str = "pd-webhook-secret";

/// The environment that lets the service hear and answer PagerDuty.
fn pagerduty_env() -> Vec<(String, String)> {
    vec![
        ("SUTURE_PAGERDUTY_API_KEY".into(), PD_KEY.into()),
        ("SUTURE_PAGERDUTY_WEBHOOK_SECRETS".into(), PD_SECRET.into()),
    ]
}

/// `[pagerduty]` pointing at the fake.
fn pagerduty_config(pagerduty: &FakePagerDuty) -> String {
    format!(
        "[pagerduty]\napi_url = \"{}\"\nfrom_email = \"suture@example.com\"\n",
        pagerduty.base_url()
    )
}

/// Delivers a signed `incident.triggered` for PagerDuty incident `id` on
/// `service`, titled `title`.
fn page(serve: &Serve, id: &str, service: &str, title: &str) {
    let payload = incident_webhook(
        "incident.triggered",
        &format!("ev-{id}"),
        id,
        service,
        title,
    );
    let body = payload.to_string();
    let signature = sign_pagerduty_webhook(PD_SECRET, body.as_bytes());
    let (status, answer) = http(
        serve.addr,
        "POST",
        "/webhooks/pagerduty",
        &[
            ("X-PagerDuty-Signature", &signature),
            ("Content-Type", "application/json"),
        ],
        body.as_bytes(),
    );
    assert!(
        (200..300).contains(&status),
        "{status}: {}",
        String::from_utf8_lossy(&answer)
    );
}

/// The incident suture opened for PagerDuty incident `upstream`.
fn incident_of(serve: &Serve, upstream: &str) -> Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let list = serve.get_json("/api/incidents");
        if let Some(found) = list["incidents"]
            .as_array()
            .unwrap()
            .iter()
            .find(|incident| incident["upstream_id"] == upstream)
        {
            return serve.get_json(&format!("/api/incidents/{}", found["id"]));
        }
        assert!(Instant::now() < deadline, "no incident for {upstream}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until incident `upstream`'s run of `action` is done or awaits
/// approval.
fn run_of(serve: &Serve, upstream: &str, action: &str) -> Value {
    let id = incident_of(serve, upstream)["id"].as_i64().unwrap();
    let incident = serve.wait_json(&format!("/api/incidents/{id}"), PATIENCE, |incident| {
        incident["actions"].as_array().is_some_and(|runs| {
            runs.iter().any(|run| {
                run["action"] == action
                    && (run["state"] == "done" || run["state"] == "awaiting_approval")
            })
        })
    });
    incident["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|run| run["action"] == action)
        .unwrap()
        .clone()
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// A local HTTP server answering 200 to at most `max` requests, keeping
/// each request's headers (lowercase names) and body.
type Received = Arc<Mutex<Vec<(BTreeMap<String, String>, String)>>>;

fn flag_server(max: usize) -> (u16, Received) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let received: Received = Arc::default();
    let kept = received.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(max) {
            let Ok(mut stream) = stream else { continue };
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut headers = BTreeMap::new();
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            loop {
                line.clear();
                reader.read_line(&mut line).unwrap();
                let Some((name, value)) = line.trim_end().split_once(':') else {
                    break;
                };
                headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
            }
            let length: usize = headers
                .get("content-length")
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            let mut body = vec![0; length.min(1 << 20)];
            reader.read_exact(&mut body).unwrap();
            kept.lock()
                .unwrap()
                .push((headers, String::from_utf8_lossy(&body).into_owned()));
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
        }
    });
    (port, received)
}

/// Command, HTTP, dry-run and approve actions on PagerDuty pages, each
/// within its limits: the auto command runs once between a failing
/// pre-check and a passing post-check and a second page inside its
/// cooldown is `skipped_limit`; a hostile title reaches the command only as
/// an environment variable (the `$(…)` in it runs nothing) and the HTTP
/// server as one inert JSON string, with the header's secret sent but
/// recorded nowhere; `dry_run` runs nothing; a failing post-check
/// escalates with a PagerDuty note and is not retried within the cooldown;
/// an `approve` run waits for `suture action approve`; `suture pause`
/// holds every action.
#[test]
fn actions_run_within_their_limits() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path();
    let pagerduty = block_on(FakePagerDuty::start(
        PD_KEY,
        &["PW1", "PW2", "PC1", "PC2", "PF1", "PA1"],
    ));
    let (port, received) = flag_server(4);
    let w = work.display();
    let actions = format!(
        r#"
[[actions]]
name = "restart-worker"
match = {{ source = "pagerduty", services = ["PWORK"], title = "worker.*down" }}
run = "printf '%s\n' \"$SUTURE_INCIDENT_TITLE\" >> {w}/runs; touch {w}/healthy"
check = "test -f {w}/healthy"
mode = "auto"
cooldown_seconds = 1800
check_timeout_seconds = 5

[[actions]]
name = "scale-out"
match = {{ services = ["PWORK"] }}
run = "touch {w}/scaled"
mode = "dry_run"

[[actions]]
name = "flush-cache"
match = {{ source = "pagerduty", services = ["PCACHE"] }}
run = "echo flush >> {w}/flushes"
check = "false"
mode = "auto"
check_timeout_seconds = 1

[[actions]]
name = "flag-off"
match = {{ source = "pagerduty", services = ["PFLAG"] }}
http = {{ method = "POST", url = "http://127.0.0.1:{port}/flags", headers = {{ Authorization = "Bearer ${{SUTURE_FLAGS_TOKEN}}" }}, body = '{{"flag": "new-checkout", "on": false, "incident": {{{{title}}}}}}' }}
mode = "auto"

[[actions]]
name = "rollback"
match = {{ source = "pagerduty", services = ["PAPPR"] }}
run = "echo rollback >> {w}/rollbacks"
mode = "approve"
"#
    );
    let mut home = ServeHome::new(Db::Sqlite, "");
    // `suture action approve` finds the store through the same file.
    home.config = format!(
        "[store]\ndata_dir = \"{}\"\n[queue]\npoll_millis = 100\nbackoff_seconds = 1\n{}{actions}",
        home.data_dir().display(),
        pagerduty_config(&pagerduty)
    );
    home.env = pagerduty_env();
    home.env
        .push(("SUTURE_FLAGS_TOKEN".into(), "flags-secret-4242".into()));
    let serve = home.start(&[]);

    let hostile = format!(
        "worker \"7\" down; $(touch {w}/pwned) `touch {w}/pwned2` 'q' \\\n{{\"admin\": true}}"
    );
    page(&serve, "PW1", "PWORK", &hostile);
    let ran = run_of(&serve, "PW1", "restart-worker");
    assert_eq!(ran["result"], "ok", "{ran:#}");
    assert_eq!(ran["detail"]["check_before"]["exit"], 1, "{ran:#}");
    assert_eq!(ran["detail"]["check_after"]["exit"], 0, "{ran:#}");
    let title_lines: Vec<String> = hostile.lines().map(str::to_owned).collect();
    assert_eq!(
        lines(&work.join("runs")),
        title_lines,
        "the title, verbatim, once"
    );
    assert!(!work.join("pwned").exists() && !work.join("pwned2").exists());
    let incident = incident_of(&serve, "PW1");
    let entries = timeline(&incident);
    assert!(
        entries.iter().any(|(kind, message)| kind == "action"
            && message.contains("check failed before and passes after")),
        "{entries:#?}"
    );

    page(&serve, "PW2", "PWORK", "worker 8 down");
    let skipped = run_of(&serve, "PW2", "restart-worker");
    assert_eq!(skipped["result"], "skipped_limit", "{skipped:#}");
    assert_eq!(skipped["detail"]["limit"], "cooldown_seconds");
    assert_eq!(
        lines(&work.join("runs")).len(),
        title_lines.len(),
        "ran once"
    );
    for upstream in ["PW1", "PW2"] {
        assert_eq!(run_of(&serve, upstream, "scale-out")["result"], "dry_run");
    }
    assert!(!work.join("scaled").exists(), "a dry run runs nothing");

    page(&serve, "PC1", "PCACHE", "cache stampede");
    let failed = run_of(&serve, "PC1", "flush-cache");
    assert_eq!(failed["result"], "check_failed", "{failed:#}");
    assert_eq!(failed["detail"]["escalated"]["pagerduty_incident"], "PC1");
    let noted = pagerduty
        .incidents()
        .into_iter()
        .find(|incident| incident.id == "PC1")
        .unwrap();
    assert!(
        noted
            .notes
            .iter()
            .any(|note| note.contains("flush-cache") && note.contains("cooldown")),
        "{noted:#?}"
    );
    page(&serve, "PC2", "PCACHE", "cache stampede again");
    assert_eq!(
        run_of(&serve, "PC2", "flush-cache")["result"],
        "skipped_limit"
    );
    assert_eq!(
        lines(&work.join("flushes")),
        ["flush"],
        "not retried within the cooldown"
    );

    page(&serve, "PF1", "PFLAG", &hostile);
    let sent = run_of(&serve, "PF1", "flag-off");
    assert_eq!(sent["result"], "ok", "{sent:#}");
    let requests = received.lock().unwrap().clone();
    assert_eq!(requests.len(), 1, "{requests:#?}");
    let (headers, body) = &requests[0];
    assert_eq!(headers["authorization"], "Bearer flags-secret-4242");
    let body: Value = serde_json::from_str(body).unwrap();
    assert_eq!(body["incident"], hostile.as_str(), "one inert string");
    assert_eq!(body["flag"], "new-checkout");
    assert_eq!(body.as_object().unwrap().len(), 3, "{body:#}");
    let (_, listed) = http(serve.addr, "GET", "/api/actions", &[], b"");
    let listed = String::from_utf8(listed).unwrap();
    assert!(
        !listed.contains("flags-secret-4242"),
        "the secret is never recorded"
    );
    assert!(listed.contains("${SUTURE_FLAGS_TOKEN}"), "{listed}");

    page(&serve, "PA1", "PAPPR", "deploy 42 broke checkout");
    let waiting = run_of(&serve, "PA1", "rollback");
    assert_eq!(waiting["state"], "awaiting_approval", "{waiting:#}");
    assert!(!work.join("rollbacks").exists(), "an approve action waits");
    let run_id = waiting["id"].as_i64().unwrap().to_string();
    let output = std::process::Command::new(tests::suture_bin())
        .args(["action", "approve", &run_id, "--as", "oncall", "--config"])
        .arg(home.dir.path().join("suture.toml"))
        .env_remove("SUTURE_DATABASE_URL")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let id = incident_of(&serve, "PA1")["id"].as_i64().unwrap();
    let approved = serve.wait_json(&format!("/api/incidents/{id}"), PATIENCE, |incident| {
        incident["actions"][0]["result"] == "ok"
    });
    assert_eq!(approved["actions"][0]["approved_by"], "oncall");
    assert_eq!(lines(&work.join("rollbacks")), ["rollback"]);

    let (_, metrics) = http(serve.addr, "GET", "/metrics", &[], b"");
    let metrics = String::from_utf8(metrics).unwrap();
    for line in [
        "suture_actions_total{action=\"restart-worker\",result=\"ok\"} 1",
        "suture_actions_total{action=\"restart-worker\",result=\"skipped_limit\"} 1",
        "suture_actions_total{action=\"scale-out\",result=\"dry_run\"} 2",
        "suture_actions_total{action=\"flush-cache\",result=\"check_failed\"} 1",
        "suture_actions_total{action=\"flag-off\",result=\"ok\"} 1",
        "suture_actions_total{action=\"rollback\",result=\"awaiting_approval\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} in\n{metrics}");
    }

    // The kill switch holds actions too: paused, a match runs nothing.
    let paused = std::process::Command::new(tests::suture_bin())
        .args(["pause", "--reason", "incident review", "--config"])
        .arg(home.dir.path().join("suture.toml"))
        .env_remove("SUTURE_DATABASE_URL")
        .output()
        .unwrap();
    assert!(paused.status.success(), "{paused:?}");
    page(&serve, "PW3", "PWORK", "worker 9 down");
    let held = run_of(&serve, "PW3", "restart-worker");
    assert_eq!(held["result"], "skipped_limit", "{held:#}");
    assert_eq!(held["detail"]["limit"], "paused", "{held:#}");
    assert_eq!(lines(&work.join("runs")).len(), title_lines.len());
    assert_eq!(pagerduty.errors(), Vec::<String>::new());
}

/// A page on a repository's service while the repository's Sentry-sourced
/// incident is open: linked both ways, shown on both timelines; the page's
/// `approve` action ignores a reader's `/suture approve` on the tracking
/// issue (recorded) and runs on a writer's; the fix holds and the
/// PagerDuty incident is resolved on the (contract-checked) fake with a
/// note naming the pull request.
#[test]
fn a_page_joins_its_trace_and_is_resolved_by_its_fix() {
    let (repo, _) = inventory();
    let world = World::new(&repo, &[("maintainer", "maintain"), ("visitor", "read")]);
    let pagerduty = block_on(FakePagerDuty::start(PD_KEY, &["PSHOP1"]));
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("rolled-back");
    // The error's own auto action runs while the fix is prepared: the
    // round still runs, and the pull request says what was done.
    let extra = format!(
        "{}[[actions]]\nname = \"rollback\"\nmatch = {{ source = \"pagerduty\" }}\n\
         run = \"touch {}\"\nmode = \"approve\"\n\
         [[actions]]\nname = \"drain-queue\"\nmatch = {{ source = \"sentry\" }}\n\
         run = \"true\"\nmode = \"auto\"\n",
        pagerduty_config(&pagerduty),
        marker.display()
    );
    let config = format!(
        "{}pagerduty_services = [\"PSHOPSVC\"]\nsentry_projects = [\"1\"]\n",
        world.config(&repo, &test_command(), 3, &extra)
    );
    let mut home = ServeHome::new(Db::Sqlite, &config);
    home.env = world.env();
    home.env.extend(pagerduty_env());
    let serve = home.start(&[]);
    report_crash(&serve.dsn, repo.path(), "main.py", &repo.head().to_string());
    let proposed = serve.wait_json("/api/incidents/1", PATIENCE, |incident| {
        ["proposed", "failed", "unfixed", "observed"]
            .contains(&incident["state"].as_str().unwrap_or(""))
    });
    assert_eq!(proposed["state"], "proposed", "{proposed:#}");
    let pull = world.github.pulls()[0].clone();
    let tracking = world.github.issues()[0].clone();
    assert_eq!(proposed["actions"][0]["result"], "ok", "{proposed:#}");
    let body = pull.body.clone().unwrap_or_default();
    assert!(
        body.contains("Done at runtime") && body.contains("drain-queue"),
        "{body}"
    );

    page(&serve, "PSHOP1", "PSHOPSVC", "checkout is failing");
    let page_id = incident_of(&serve, "PSHOP1")["id"].as_i64().unwrap();
    let paged = serve.wait_json(&format!("/api/incidents/{page_id}"), PATIENCE, |incident| {
        incident["linked"] == serde_json::json!([1])
            && incident["actions"][0]["state"] == "awaiting_approval"
    });
    let trace = serve.get_json("/api/incidents/1");
    assert_eq!(trace["linked"], serde_json::json!([page_id]), "{trace:#}");
    for incident in [&paged, &trace] {
        assert!(
            timeline(incident).iter().any(|(kind, _)| kind == "linked"),
            "{incident:#}"
        );
    }

    let comment = |login: &str| {
        let payload = world
            .github
            .issue_comment_webhook(tracking.number, login, "/suture approve");
        assert_eq!(deliver_github(&serve, "issue_comment", &payload), 200);
    };
    comment("visitor");
    let audited = serve.wait_json("/api/incidents/1", PATIENCE, |incident| {
        timeline(incident)
            .iter()
            .any(|(kind, message)| kind == "command_ignored" && message.contains("@visitor"))
    });
    assert_eq!(audited["state"], "proposed");
    assert_eq!(
        serve.get_json(&format!("/api/incidents/{page_id}"))["actions"][0]["state"],
        "awaiting_approval",
        "a reader's approval is ignored"
    );
    assert!(!marker.exists());
    comment("maintainer");
    let approved = serve.wait_json(&format!("/api/incidents/{page_id}"), PATIENCE, |incident| {
        incident["actions"][0]["result"] == "ok"
    });
    assert_eq!(approved["actions"][0]["approved_by"], "maintainer");
    assert!(marker.exists(), "the approved action ran");

    world.github.merge_pull(pull.number);
    let payload = world.github.pull_request_closed_webhook(pull.number);
    assert_eq!(deliver_github(&serve, "pull_request", &payload), 200);
    let resolved = serve.wait_json("/api/incidents/1", PATIENCE, |incident| {
        ["resolved", "regressed", "failed"].contains(&incident["state"].as_str().unwrap_or(""))
    });
    assert_eq!(resolved["state"], "resolved", "{resolved:#}");
    let paged = serve.wait_json(&format!("/api/incidents/{page_id}"), PATIENCE, |incident| {
        incident["state"] == "resolved"
    });
    assert!(
        timeline(&paged)
            .iter()
            .any(|(_, message)| message.contains(&format!("#{}", pull.number))),
        "{paged:#}"
    );
    let upstream = pagerduty.incidents().into_iter().next().unwrap();
    assert_eq!(upstream.status, "resolved", "{upstream:#?}");
    assert!(
        upstream
            .notes
            .iter()
            .any(|note| note.contains(&format!("pull request #{}", pull.number))),
        "{upstream:#?}"
    );
    assert_eq!(pagerduty.errors(), Vec::<String>::new());
    assert_eq!(world.github.errors(), Vec::<String>::new());
}

/// The linked fix does not hold (the error recurs on a new release during
/// the quiet window): the PagerDuty incident gets a note saying so and is
/// not resolved.
#[test]
fn a_recurrence_is_noted_on_the_linked_page() {
    let (repo, _) = inventory();
    let world = World::new(&repo, &[("maintainer", "maintain")]);
    let pagerduty = block_on(FakePagerDuty::start(PD_KEY, &["PSHOP2"]));
    let config = format!(
        "{}pagerduty_services = [\"PSHOPSVC\"]\nsentry_projects = [\"1\"]\n",
        world.config(&repo, &test_command(), 3600, &pagerduty_config(&pagerduty))
    );
    let mut home = ServeHome::new(Db::Sqlite, &config);
    home.env = world.env();
    home.env.extend(pagerduty_env());
    let serve = home.start(&[]);
    report_crash(&serve.dsn, repo.path(), "main.py", &repo.head().to_string());
    let proposed = serve.wait_json("/api/incidents/1", PATIENCE, |incident| {
        ["proposed", "failed", "unfixed", "observed"]
            .contains(&incident["state"].as_str().unwrap_or(""))
    });
    assert_eq!(proposed["state"], "proposed", "{proposed:#}");
    page(&serve, "PSHOP2", "PSHOPSVC", "checkout is failing");
    let page_id = incident_of(&serve, "PSHOP2")["id"].as_i64().unwrap();
    serve.wait_json(&format!("/api/incidents/{page_id}"), PATIENCE, |incident| {
        incident["linked"] == serde_json::json!([1])
    });
    let pull = world.github.pulls()[0].clone();
    world.github.merge_pull(pull.number);
    let payload = world.github.pull_request_closed_webhook(pull.number);
    assert_eq!(deliver_github(&serve, "pull_request", &payload), 200);
    serve.wait_json("/api/incidents/1", PATIENCE, |incident| {
        incident["state"] == "verifying"
    });
    report_crash(&serve.dsn, repo.path(), "main.py", "2.0.0");
    let regressed = serve.wait_json("/api/incidents/1", PATIENCE, |incident| {
        ["regressed", "failed"].contains(&incident["state"].as_str().unwrap_or(""))
    });
    assert_eq!(regressed["state"], "regressed", "{regressed:#}");
    let deadline = Instant::now() + PATIENCE;
    let upstream = loop {
        let upstream = pagerduty.incidents().into_iter().next().unwrap();
        if !upstream.notes.is_empty() || Instant::now() > deadline {
            break upstream;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(upstream.status, "triggered", "{upstream:#?}");
    assert!(
        upstream
            .notes
            .iter()
            .any(|note| note.contains("did not hold")
                && note.contains(&format!("pull request #{}", pull.number))),
        "{upstream:#?}"
    );
    assert_ne!(
        serve.get_json(&format!("/api/incidents/{page_id}"))["state"],
        "resolved"
    );
    assert_eq!(pagerduty.errors(), Vec::<String>::new());
}

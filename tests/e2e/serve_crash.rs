//! Crash safety of `suture serve` with real SIGKILLs, on SQLite and
//! PostgreSQL: every delivery answered 2xx survives, none is stored twice,
//! and a job killed mid-pipeline completes exactly once after restart,
//! without redoing its finished steps.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use tests::serve_support::{Db, ServeHome, block_on, event_envelope, http, sentry_auth};

const PATIENCE: Duration = Duration::from_secs(120);

fn crash_event(id: &str, kind: usize) -> serde_json::Value {
    let ty = ["ZeroDivisionError", "KeyError", "TypeError"][kind % 3];
    json!({"event_id": id, "exception": {"values": [{"type": ty, "value": "boom",
        "stacktrace": {"frames": [{"module": "shop.cart", "function": "total", "lineno": 3, "in_app": true}]}}]}})
}

/// Rounds of concurrent senders while the server is SIGKILLed mid-load;
/// some deliveries are repeats of acknowledged ones. Afterwards every
/// acknowledged event id is stored exactly once, and the incidents count
/// exactly the stored events.
fn acknowledged_deliveries_survive_sigkill(db: Db) {
    let home = ServeHome::new(db, "[queue]\nworkers = 1\n");
    let acked: Arc<Mutex<BTreeSet<String>>> = Arc::default();
    for round in 0..3 {
        let serve = home.start(&[]);
        let addr = serve.addr;
        let auth = sentry_auth(&serve.key());
        let in_round = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let mut senders = Vec::new();
        for thread in 0..4 {
            let (acked, in_round, stop, auth) =
                (acked.clone(), in_round.clone(), stop.clone(), auth.clone());
            senders.push(std::thread::spawn(move || {
                for n in 0.. {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    // Every 7th delivery repeats one already acknowledged.
                    let repeat = (n % 7 == 6)
                        .then(|| acked.lock().unwrap().iter().next_back().cloned())
                        .flatten();
                    let id = repeat.unwrap_or_else(|| format!("{round:08x}{thread:08x}{n:016x}"));
                    let body = event_envelope(&id, &crash_event(&id, n));
                    let (status, _) = http(
                        addr,
                        "POST",
                        "/api/1/envelope/",
                        &[("X-Sentry-Auth", &auth)],
                        &body,
                    );
                    match status {
                        200 => {
                            acked.lock().unwrap().insert(id);
                            in_round.fetch_add(1, Ordering::SeqCst);
                        }
                        // Killed: this delivery may or may not be stored.
                        0 => break,
                        other => panic!("unexpected status {other}"),
                    }
                }
            }));
        }
        let deadline = Instant::now() + PATIENCE;
        while in_round.load(Ordering::SeqCst) < 150 + round * 50 {
            assert!(
                Instant::now() < deadline,
                "the server stopped acknowledging: {}",
                serve.stderr()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        serve.kill();
        stop.store(true, Ordering::SeqCst);
        for sender in senders {
            sender.join().unwrap();
        }
    }
    // A restart recovers whatever the kills left (WAL replay, expired leases).
    let serve = home.start(&[]);
    assert_eq!(serve.get_json("/readyz")["status"], "ready");
    serve.kill();

    let store = home.store_after_stop();
    let stored = block_on(store.signal_keys()).unwrap();
    let acked = acked.lock().unwrap();
    assert!(acked.len() >= 450, "{} acknowledged", acked.len());
    for (_, _, n) in &stored {
        assert_eq!(*n, 1, "a delivery stored twice");
    }
    let stored_ids: BTreeSet<&str> = stored
        .iter()
        .map(|(_, key, _)| key.trim_start_matches("1:"))
        .collect();
    let missing: Vec<&String> = acked
        .iter()
        .filter(|id| !stored_ids.contains(id.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged deliveries lost, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    let incidents = block_on(store.list_incidents(100)).unwrap();
    assert_eq!(incidents.len(), 3, "three distinct errors");
    assert_eq!(
        incidents.iter().map(|i| i.count).sum::<i64>(),
        stored.len() as i64
    );
    // Each incident also has its `respond` job (links and recovery
    // actions); the round is what must exist exactly once.
    let mut rounds = Vec::new();
    for incident in &incidents {
        let jobs = block_on(store.incident_jobs(incident.id)).unwrap();
        rounds.extend(jobs.into_iter().filter(|job| job.kind == "pipeline"));
    }
    assert_eq!(rounds.len(), 3, "one round per incident: {rounds:?}");
}

#[test]
fn acknowledged_deliveries_survive_sigkill_sqlite() {
    acknowledged_deliveries_survive_sigkill(Db::Sqlite);
}

#[test]
fn acknowledged_deliveries_survive_sigkill_postgres() {
    acknowledged_deliveries_survive_sigkill(Db::Postgres);
}

/// A job is SIGKILLed inside its heal step (the test hook pauses it there,
/// after diagnose and reproduce finished). After restart its lease expires,
/// another process resumes it: neither is run again, heal runs once more, and
/// the job ends exactly once.
fn interrupted_job_completes_exactly_once(db: Db) {
    let repo = tests::ScriptedRepo::new();
    let day = tests::DAY;
    let now = 1_760_000_000;
    repo.commit("Ann <ann@example.com>", now - 10 * day, "cart totals", &[
        ("shop/cart.py", Some("def total(items):\n    return sum(items) / len(items)\n")),
        ("test_cart.py", Some("from shop.cart import total\n\ndef test_total():\n    assert total([2]) == 2\n")),
    ]);
    repo.commit(
        "Bob <bob@example.com>",
        now - day,
        "cart: count items",
        &[(
            "shop/cart.py",
            Some("def total(items):\n    count = len(items)\n    return sum(items) / count\n"),
        )],
    );
    let config = format!(
        "[queue]\nlease_seconds = 6\nheartbeat_seconds = 1\npoll_millis = 100\n\
         [[repos]]\nname = \"shop\"\npath = \"{}\"\nsandbox = \"process\"\nunsafe_allow_process_sandbox = true\ntest_command = \"true\"\ndays = 30\nlearning_seconds = 0\n",
        repo.path().display()
    );
    let home = ServeHome::new(db, &config);
    let serve = home.start(&[
        ("SUTURE_TEST_PAUSE_IN_STEP", "heal"),
        ("SUTURE_TEST_PAUSE_SECONDS", "600"),
    ]);
    let id = "ab".repeat(16);
    let event = json!({"event_id": id, "platform": "python", "timestamp": now, "exception": {"values": [{
        "type": "ZeroDivisionError", "value": "division by zero",
        "stacktrace": {"frames": [{"filename": "shop/cart.py", "abs_path": "/app/shop/cart.py", "module": "shop.cart",
            "function": "total", "lineno": 3, "in_app": true}]}}]}});
    let (status, _) = http(
        serve.addr,
        "POST",
        "/api/1/envelope/",
        &[("X-Sentry-Auth", &sentry_auth(&serve.key()))],
        &event_envelope(&id, &event),
    );
    assert_eq!(status, 200);
    serve.wait_json("/api/incidents/1", PATIENCE, |incident| {
        incident["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "step_started" && e["message"] == "heal started")
    });
    serve.kill();

    let serve = home.start(&[]);
    let done = serve.wait_json("/api/incidents/1", PATIENCE, |incident| {
        incident["jobs"][0]["state"] != "queued" && incident["jobs"][0]["state"] != "running"
    });
    serve.kill();
    let job = &done["jobs"][0];
    assert_eq!(job["state"], "done", "{done:#}");
    assert_eq!(job["attempts"], 2);
    let steps: Vec<(String, String, i64)> = job["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["step"].as_str().unwrap().to_owned(),
                s["state"].as_str().unwrap().to_owned(),
                s["runs"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            ("diagnose".into(), "finished".into(), 1),
            ("reproduce".into(), "finished".into(), 1),
            ("heal".into(), "finished".into(), 2),
            ("propose".into(), "finished".into(), 1)
        ]
    );
    let ended: Vec<&str> = done["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "step_finished" || e["kind"] == "step_failed")
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    assert_eq!(ended.len(), 4, "each step ended once: {ended:?}");
    assert!(ended[0].starts_with("diagnosed"), "{ended:?}");
    assert!(ended[1].contains("reproduced"), "{ended:?}");
    assert!(ended[2].starts_with("heal finished"), "{ended:?}");
    assert!(
        ["proposed", "unfixed"].contains(&done["state"].as_str().unwrap()),
        "{done:#}"
    );
    assert!(done["diagnosis"]["suspects"].is_array(), "{done:#}");
    assert!(done["heal"]["outcome"].is_string(), "{done:#}");
}

#[test]
fn interrupted_job_completes_exactly_once_sqlite() {
    interrupted_job_completes_exactly_once(Db::Sqlite);
}

#[test]
fn interrupted_job_completes_exactly_once_postgres() {
    interrupted_job_completes_exactly_once(Db::Postgres);
}

/// Two `suture serve` replicas on one PostgreSQL database, both taking the
/// same storm: one incident counting every event, one job, run once.
#[test]
fn replicas_share_one_postgres_database() {
    let home = ServeHome::new(Db::Postgres, "[queue]\npoll_millis = 100\n");
    let first = home.start(&[]);
    let second = home.start(&[]);
    assert_eq!(first.key(), second.key(), "one data dir, one DSN key");
    let auth = sentry_auth(&first.key());
    let mut senders = Vec::new();
    for (replica, addr) in [first.addr, second.addr].into_iter().enumerate() {
        let auth = auth.clone();
        senders.push(std::thread::spawn(move || {
            for n in 0..150 {
                let id = format!("{replica:016x}{n:016x}");
                let body = event_envelope(&id, &crash_event(&id, 0));
                let (status, _) = http(
                    addr,
                    "POST",
                    "/api/1/envelope/",
                    &[("X-Sentry-Auth", &auth)],
                    &body,
                );
                assert_eq!(status, 200);
            }
        }));
    }
    for sender in senders {
        sender.join().unwrap();
    }
    let incident = second.wait_json("/api/incidents/1", PATIENCE, |incident| {
        incident["state"] == "no_repo"
    });
    assert_eq!(incident["count"], 300);
    let rounds: Vec<&serde_json::Value> = incident["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|job| job["kind"] == "pipeline")
        .collect();
    assert_eq!(rounds.len(), 1, "{incident:#}");
    assert_eq!(rounds[0]["attempts"], 1);
    assert_eq!(
        first.get_json("/api/incidents")["incidents"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

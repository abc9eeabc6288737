//! Detect and guard through `suture serve`: which incidents get a round
//! (new on the newest release, a spike; not an old error, not during the
//! learning period), and the limits rounds run within (an hourly rate that
//! defers the rest of a storm of forged errors; the circuit breaker after
//! three rejected fixes).

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tests::loop_support::{report_crash, report_crashes};
use tests::serve_support::{
    Db, Serve, ServeHome, block_on, event_envelope, http, sentry_auth, timeline,
};

use crate::heal::{crash, inventory, test_command};
use crate::releases::shop;

const PATIENCE: Duration = Duration::from_secs(120);

fn incidents(list: &Value) -> &[Value] {
    list["incidents"].as_array().map_or(&[], Vec::as_slice)
}

/// The incident of `list` whose title contains `needle`.
fn titled<'a>(list: &'a Value, needle: &str) -> Option<&'a Value> {
    incidents(list)
        .iter()
        .find(|incident| incident["title"].as_str().unwrap_or("").contains(needle))
}

/// Posts `event` (with its `event_id`) to the service's DSN as an SDK
/// envelope.
fn send_event(serve: &Serve, event: &Value) {
    let event_id = event["event_id"].as_str().unwrap();
    let (status, body) = http(
        serve.addr,
        "POST",
        "/api/1/envelope/",
        &[("X-Sentry-Auth", &sentry_auth(&serve.key()))],
        &event_envelope(event_id, event),
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
}

fn held_back_entries(incident: &Value) -> Vec<String> {
    timeline(incident)
        .into_iter()
        .filter(|(kind, _)| kind == "held_back")
        .map(|(_, message)| message)
        .collect()
}

/// An error first seen during the learning period stays observed, also on
/// the next release; an error first seen on the newest release gets a
/// round diagnosed against exactly that deploy; a burst of the old error
/// over its own baseline gets a spike round; `suture heal-incident`
/// starts a manual one.
#[test]
fn an_old_error_is_observed_a_new_one_heals_and_a_burst_spikes() {
    let (repo, v10, _v11) = shop();
    let mut home = ServeHome::new(Db::Sqlite, "");
    home.config = format!(
        "[store]\ndata_dir = \"{}\"\n\
         [queue]\npoll_millis = 100\nbackoff_seconds = 1\n\
         [[repos]]\nname = \"shop\"\npath = \"{}\"\nmode = \"observe\"\ndays = 30\n\
         learning_seconds = 4\nspike_window_seconds = 10\nspike_factor = 2.0\nspike_min_events = 5\n",
        home.data_dir().display(),
        repo.path().display()
    );
    let serve = home.start(&[("SUTURE_LLM_BASE_URL", "")]);
    let started = Instant::now();

    // Error A on 1.0 while suture is still learning the project.
    report_crashes(&serve.dsn, repo.path(), "a.py", "shop@1.0", 2);
    let list = serve.wait_json("/api/incidents", PATIENCE, |list| {
        titled(list, "KeyError").is_some_and(|a| a["state"] == "observed")
    });
    let a_id = titled(&list, "KeyError").unwrap()["id"].as_i64().unwrap();
    let a = serve.get_json(&format!("/api/incidents/{a_id}"));
    assert_eq!(a["held_back"], json!({"reason": "learning"}), "{a:#}");
    assert_eq!(a["trigger"], Value::Null, "{a:#}");
    let said = held_back_entries(&a);
    assert_eq!(said.len(), 1, "{said:?}");
    assert!(said[0].contains("learning period"), "{said:?}");

    // Learning is over: A on 1.1 is still the old error; B, first seen on
    // 1.1, is new in that release.
    std::thread::sleep(Duration::from_secs(5).saturating_sub(started.elapsed()));
    report_crash(&serve.dsn, repo.path(), "a.py", "shop@1.1");
    report_crash(&serve.dsn, repo.path(), "b.py", "shop@1.1");
    let list = serve.wait_json("/api/incidents", PATIENCE, |list| {
        titled(list, "IndexError").is_some_and(|b| b["state"] == "diagnosed")
    });
    let b_id = titled(&list, "IndexError").unwrap()["id"].as_i64().unwrap();
    let b = serve.get_json(&format!("/api/incidents/{b_id}"));
    assert_eq!(b["trigger"], "new_release", "{b:#}");
    assert_eq!(b["held_back"], Value::Null, "{b:#}");
    assert_eq!(b["diagnosis"]["window"]["source"], "releases", "{b:#}");
    assert_eq!(b["diagnosis"]["window"]["base"], v10.as_str(), "{b:#}");
    let a = serve.wait_json(&format!("/api/incidents/{a_id}"), PATIENCE, |a| {
        a["count"] == 3
    });
    assert_eq!(a["state"], "observed", "{a:#}");
    assert_eq!(a["round"], 1, "{a:#}");
    assert_eq!(held_back_entries(&a).len(), 1, "said once: {a:#}");

    // A burst of A, once its earlier events are out of the spike window.
    std::thread::sleep(Duration::from_secs(11));
    report_crashes(&serve.dsn, repo.path(), "a.py", "shop@1.1", 8);
    let a = serve.wait_json(&format!("/api/incidents/{a_id}"), PATIENCE, |a| {
        a["state"] == "diagnosed" || a["state"] == "failed"
    });
    assert_eq!(a["state"], "diagnosed", "{a:#}");
    assert_eq!(a["trigger"], "spike", "{a:#}");
    assert_eq!(a["round"], 2, "{a:#}");

    let metrics = String::from_utf8(http(serve.addr, "GET", "/metrics", &[], b"").1).unwrap();
    assert!(
        metrics.contains("suture_incidents_observed_total{reason=\"learning\"} 1"),
        "{metrics}"
    );

    // A human can start a round for any incident.
    let output = crate::kill_switch::suture(&home, "heal-incident", &[&b_id.to_string()]);
    assert!(output.status.success(), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stdout).contains("round 2 queued"));
    let b = serve.wait_json(&format!("/api/incidents/{b_id}"), PATIENCE, |b| {
        b["round"] == 2 && (b["state"] == "diagnosed" || b["state"] == "failed")
    });
    assert_eq!(b["state"], "diagnosed", "{b:#}");
    assert_eq!(b["trigger"], "manual", "{b:#}");
    let output = crate::kill_switch::suture(&home, "heal-incident", &["999"]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("no incident 999"),
        "{output:?}"
    );
}

/// A storm of distinct forged errors on one release, with
/// `max_rounds_per_hour = 3`: three rounds start, every other incident is
/// deferred with the limit named, and no more than three tracking issues
/// or pull requests are opened.
#[test]
fn forged_errors_past_the_hourly_limit_are_deferred() {
    let (repo, _, _) = shop();
    let config = format!(
        "[queue]\npoll_millis = 100\nbackoff_seconds = 1\n\
         [[repos]]\nname = \"shop\"\npath = \"{}\"\ndays = 30\ntest_command = \"true\"\n\
         learning_seconds = 0\nmax_rounds_per_hour = 3\nmax_concurrent_rounds = 30\n",
        repo.path().display()
    );
    let home = ServeHome::new(Db::Postgres, &config);
    let serve = home.start(&[("SUTURE_LLM_BASE_URL", "")]);
    for n in 0..30 {
        let event_id = format!("{n:032x}");
        let event = json!({
            "event_id": event_id,
            "platform": "python",
            "release": "shop@1.1",
            "exception": {"values": [{
                "type": format!("Forged{n}Error"),
                "value": "forged",
                "stacktrace": {"frames": [{
                    "filename": "a.py", "abs_path": "a.py", "function": "<module>",
                    "lineno": 3, "in_app": true
                }]}
            }]}
        });
        send_event(&serve, &event);
    }
    let finished = ["proposed", "suggested", "unfixed", "diagnosed", "failed"];
    let list = serve.wait_json("/api/incidents?limit=100", PATIENCE, |list| {
        let all = incidents(list);
        all.len() == 30
            && all.iter().filter(|i| i["state"] == "deferred").count() == 27
            && all
                .iter()
                .filter(|i| finished.contains(&i["state"].as_str().unwrap_or("")))
                .count()
                == 3
    });
    let all = incidents(&list);
    for incident in all {
        if incident["state"] == "deferred" {
            assert_eq!(
                incident["held_back"],
                json!({"limit": "max_rounds_per_hour"}),
                "{incident:#}"
            );
            assert_eq!(incident["trigger"], Value::Null, "{incident:#}");
        } else {
            assert_eq!(incident["trigger"], "new_release", "{incident:#}");
        }
    }
    let mut opened = 0;
    for incident in all {
        let detail = serve.get_json(&format!("/api/incidents/{}", incident["id"]));
        for fix in detail["fixes"].as_array().unwrap() {
            opened += usize::from(!fix["tracking_issue"].is_null() || !fix["pr_number"].is_null());
        }
        if incident["state"] == "deferred" {
            let said = held_back_entries(&detail);
            assert_eq!(said.len(), 1, "{detail:#}");
            assert!(said[0].contains("repos[].max_rounds_per_hour"), "{said:?}");
        }
    }
    assert!(opened <= 3, "{opened} tracking issues or pull requests");
    let metrics = String::from_utf8(http(serve.addr, "GET", "/metrics", &[], b"").1).unwrap();
    assert!(
        metrics.contains("suture_rounds_deferred_total{limit=\"max_rounds_per_hour\"} 27"),
        "{metrics}"
    );
}

/// Three proven fixes closed unmerged in a row: the repository pauses
/// itself, `/api/status` says why, and so does the last pull request.
#[test]
fn three_rejected_fixes_trip_the_circuit_breaker() {
    let (repo, _) = inventory();
    let crash = crash(&repo);
    let mut home = ServeHome::new(Db::Sqlite, "");
    home.config = format!(
        "[store]\ndata_dir = \"{}\"\n\
         [queue]\npoll_millis = 100\nbackoff_seconds = 1\n\
         [[repos]]\nname = \"inventory\"\npath = \"{}\"\ntest_command = \"{}\"\ndays = 30\n\
         learning_seconds = 0\nmax_concurrent_rounds = 3\n",
        home.data_dir().display(),
        repo.path().display(),
        test_command()
    );
    let serve = home.start(&[("SUTURE_LLM_BASE_URL", "")]);
    // One failure, three groups (the SDK's own `fingerprint`): three rounds.
    for n in 0..3 {
        let mut event = crash.clone();
        let event_id = format!("{:032x}", 0xb0 + n);
        event["event_id"] = json!(event_id);
        event["fingerprint"] = json!([format!("restock-{n}")]);
        send_event(&serve, &event);
    }
    let list = serve.wait_json("/api/incidents", PATIENCE, |list| {
        incidents(list).len() == 3
            && incidents(list).iter().all(|i| {
                ["proposed", "failed", "unfixed"].contains(&i["state"].as_str().unwrap_or(""))
            })
    });
    let mut numbers = Vec::new();
    for incident in incidents(&list) {
        assert_eq!(incident["state"], "proposed", "{incident:#}");
        let detail = serve.get_json(&format!("/api/incidents/{}", incident["id"]));
        numbers.push(detail["fixes"][0]["pr_number"].as_i64().unwrap());
    }
    numbers.sort_unstable();
    for (closed, number) in numbers.iter().enumerate() {
        let output = crate::kill_switch::suture(&home, "pr", &["close", &number.to_string()]);
        assert!(output.status.success(), "{output:?}");
        let status = serve.wait_json("/api/incidents", PATIENCE, |list| {
            incidents(list)
                .iter()
                .filter(|i| i["state"] == "rejected")
                .count()
                == closed + 1
        });
        drop(status);
    }
    let status = serve.wait_json("/api/status", PATIENCE, |status| {
        !status["paused"]["repos"]["inventory"].is_null()
    });
    let reason = status["paused"]["repos"]["inventory"]["reason"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(reason.contains("Circuit breaker"), "{status:#}");
    assert!(reason.contains("the last 3 fixes"), "{status:#}");
    let records = serve.wait_json("/api/status", PATIENCE, |_| {
        block_on(home.store().document("local_forge/inventory"))
            .unwrap()
            .is_some_and(|text| text.contains("suture paused itself"))
    });
    drop(records);
}

/// `llm_tokens_per_day`: a round spends the LLM tokens of its repository's
/// day; once they are spent, the next round makes no LLM request and says
/// why on its timeline.
#[test]
fn the_day_s_llm_tokens_bound_the_next_rounds() {
    use crate::reproduce_gate::{GOOD_TEST, shipping, submit_test};
    let (repo, _) = shipping();
    let event = crate::reproduce_gate::crash(&repo, "ship.py");
    let fake = block_on(fakes::openai::FakeOpenAi::start(vec![
        submit_test("tests/test_loose_orders.py", GOOD_TEST).with_usage(900, 100),
    ]));
    let config = format!(
        "[queue]\npoll_millis = 100\nbackoff_seconds = 1\n\
         [[repos]]\nname = \"shipping\"\npath = \"{}\"\ntest_command = \"{}\"\ndays = 30\n\
         learning_seconds = 0\nllm_tokens_per_day = 1\n",
        repo.path().display(),
        test_command()
    );
    let home = ServeHome::new(Db::Sqlite, &config);
    let base_url = fake.base_url();
    let serve = home.start(&[
        ("SUTURE_LLM_BASE_URL", base_url.as_str()),
        ("SUTURE_LLM_MODEL", "fake-model"),
        ("SUTURE_LLM_API_KEY", "sk-fake-key-for-tests-000111"),
    ]);
    let send = |n: u32| {
        let mut event = event.clone();
        let event_id = format!("{:032x}", 0xe0 + n);
        event["event_id"] = json!(event_id);
        event["fingerprint"] = json!([format!("per-box-{n}")]);
        send_event(&serve, &event);
    };
    let settled = |id: i64| {
        serve.wait_json(&format!("/api/incidents/{id}"), PATIENCE, |incident| {
            ["proposed", "unfixed", "failed"].contains(&incident["state"].as_str().unwrap_or(""))
        })
    };

    // The first round may spend: one token is left, and the model's one
    // answer (1,000 tokens) writes the reproduction.
    send(1);
    let first = settled(1);
    assert_eq!(first["state"], "proposed", "{first:#}");
    assert_eq!(fake.requests().len(), 1);
    let metrics = String::from_utf8(http(serve.addr, "GET", "/metrics", &[], b"").1).unwrap();
    assert!(
        metrics.contains("suture_llm_tokens_total{repo=\"shipping\"} 1000"),
        "{metrics}"
    );

    // Nothing is left for the day: the second round asks the model nothing.
    send(2);
    let second = settled(2);
    assert_eq!(
        fake.requests().len(),
        1,
        "no LLM request once the day's tokens are spent"
    );
    let said: Vec<&str> = second["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|entry| entry["kind"] == "limit")
        .map(|entry| entry["message"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(said.len(), 1, "{second:#}");
    assert!(said[0].contains("llm_tokens_per_day"), "{said:?}");
}

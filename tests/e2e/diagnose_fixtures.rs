//! `suture diagnose` on the shared Sentry fixtures, exactly as the
//! integration platform delivered them, against repositories whose history
//! is scripted around the fixture's own timestamp and frames.

use serde_json::Value;
use tests::{DAY, ScriptedRepo, shared_fixture, suture_json};

fn event_time(fixture: &str) -> i64 {
    let body: Value =
        serde_json::from_slice(&std::fs::read(shared_fixture(fixture)).unwrap()).unwrap();
    body["data"]["event"]["timestamp"].as_f64().unwrap() as i64
}

fn lines(n: usize, marker: &str) -> String {
    (1..=n).map(|i| format!("// {marker} line {i}\n")).collect()
}

/// The Node capture (`in_app: true`, `/home/…/trigger-exception.js`):
/// the culprit rewrote line 11, where the error is captured; innocent
/// commits touched other lines of the same file and another file.
#[test]
fn node_event_alert_fixture() {
    let fixture = "sentry-integration/event_alert.triggered.node.json";
    let at = event_time(fixture);
    let repo = ScriptedRepo::new();
    let base = lines(20, "base");
    repo.commit(
        "Ana <ana@x.test>",
        at - 40 * DAY,
        "init",
        &[
            ("trigger-exception.js", Some(&base)),
            ("util.js", Some("x\n")),
        ],
    );
    let with_line_3 = base.replace("// base line 3\n", "// tweak line 3\n");
    repo.commit(
        "Ben <ben@x.test>",
        at - 5 * DAY,
        "tweak header",
        &[("trigger-exception.js", Some(&with_line_3))],
    );
    let with_line_11 = with_line_3.replace("// base line 11\n", "// bad line 11\n");
    let culprit = repo.commit(
        "Cy <cy@x.test>",
        at - 3 * DAY,
        "capture differently",
        &[("trigger-exception.js", Some(&with_line_11))],
    );
    repo.commit(
        "Di <di@x.test>",
        at - DAY,
        "util",
        &[("util.js", Some("y\n"))],
    );

    let diagnosis = suture_json(&[
        "diagnose",
        "--repo",
        repo.path().to_str().unwrap(),
        "--event",
        shared_fixture(fixture).to_str().unwrap(),
        "--code-mapping",
        "/home/hemanth/Desktop/sentry/=",
    ]);
    assert_eq!(
        diagnosis["suspects"][0]["commit"],
        culprit.to_string(),
        "{diagnosis:#}"
    );
    assert_eq!(diagnosis["suspects"][0]["evidence"][0]["kind"], "line");
    assert_eq!(diagnosis["revision_source"], "head");
    let frames = diagnosis["frames"].as_array().unwrap();
    assert_eq!(frames[0]["path"], "trigger-exception.js");
    assert_eq!(frames[0]["mapping"], "code_mapping");
    assert!(frames.iter().any(|f| f["library"] == "node module"));
}

/// The Python capture: Sentry's server marked the frame `in_app: false`, but
/// it is the repository's own top-level file; the culprit wrote line 7.
#[test]
fn python_event_alert_fixture() {
    let fixture = "sentry-integration/event_alert.triggered.python.json";
    let at = event_time(fixture);
    let repo = ScriptedRepo::new();
    let base: String = (1..=12).map(|i| format!("x{i} = {i}\n")).collect();
    repo.commit(
        "Ana <ana@x.test>",
        at - 30 * DAY,
        "init",
        &[("trigger-exception.py", Some(&base))],
    );
    let bad = base.replace("x7 = 7\n", "raise Exception('Custom exception!')\n");
    let culprit = repo.commit(
        "Cy <cy@x.test>",
        at - 2 * DAY,
        "raise early",
        &[("trigger-exception.py", Some(&bad))],
    );
    let innocent = bad.replace("x2 = 2\n", "x2 = 22\n");
    repo.commit(
        "Di <di@x.test>",
        at - DAY,
        "tune",
        &[("trigger-exception.py", Some(&innocent))],
    );

    let diagnosis = suture_json(&[
        "diagnose",
        "--repo",
        repo.path().to_str().unwrap(),
        "--event",
        shared_fixture(fixture).to_str().unwrap(),
    ]);
    assert_eq!(
        diagnosis["suspects"][0]["commit"],
        culprit.to_string(),
        "{diagnosis:#}"
    );
    assert_eq!(diagnosis["culprit"], culprit.to_string());
    assert_eq!(diagnosis["frames"][0]["path"], "trigger-exception.py");
    assert_eq!(diagnosis["frames"][0]["sdk_in_app"], false);
}

//! Bad input to `suture diagnose`: exit 2 with one clear line, nothing else.

use tests::{ScriptedRepo, shared_fixture, suture};

fn stderr_line(args: &[&str]) -> String {
    let output = suture(args);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    stderr
}

fn fixture_event() -> String {
    shared_fixture("sentry-integration/event_alert.triggered.python.json")
        .to_str()
        .unwrap()
        .to_string()
}

#[test]
fn unreadable_repository() {
    let dir = tempfile::tempdir().unwrap();
    let line = stderr_line(&[
        "diagnose",
        "--repo",
        dir.path().to_str().unwrap(),
        "--event",
        &fixture_event(),
    ]);
    assert!(
        line.starts_with("error: cannot open git repository at "),
        "{line}"
    );
}

#[test]
fn missing_event_file() {
    let repo = ScriptedRepo::new();
    repo.commit(
        "A <a@x.test>",
        1_700_000_000,
        "init",
        &[("a.py", Some("x = 1\n"))],
    );
    let line = stderr_line(&[
        "diagnose",
        "--repo",
        repo.path().to_str().unwrap(),
        "--event",
        "/nonexistent/event.json",
    ]);
    assert!(
        line.starts_with("error: reading event /nonexistent/event.json: "),
        "{line}"
    );
}

#[test]
fn event_that_is_not_an_event() {
    let repo = ScriptedRepo::new();
    repo.commit(
        "A <a@x.test>",
        1_700_000_000,
        "init",
        &[("a.py", Some("x = 1\n"))],
    );
    let garbage = repo.path().join(".git/garbage.json");
    std::fs::write(&garbage, "{not json").unwrap();
    let line = stderr_line(&[
        "diagnose",
        "--repo",
        repo.path().to_str().unwrap(),
        "--event",
        garbage.to_str().unwrap(),
    ]);
    assert!(
        line.contains("holds no readable event: body is not json"),
        "{line}"
    );

    let issue_webhook = shared_fixture("sentry-integration/issue.created.json");
    let line = stderr_line(&[
        "diagnose",
        "--repo",
        repo.path().to_str().unwrap(),
        "--event",
        issue_webhook.to_str().unwrap(),
    ]);
    assert!(
        line.contains("issue.created webhook carries no event"),
        "{line}"
    );
}

#[test]
fn unknown_since_revision() {
    let repo = ScriptedRepo::new();
    repo.commit(
        "A <a@x.test>",
        1_700_000_000,
        "init",
        &[("a.py", Some("x = 1\n"))],
    );
    let line = stderr_line(&[
        "diagnose",
        "--repo",
        repo.path().to_str().unwrap(),
        "--event",
        &fixture_event(),
        "--since",
        "no-such-rev",
    ]);
    assert!(
        line.starts_with("error: unknown revision \"no-such-rev\""),
        "{line}"
    );
}

#[test]
fn empty_repository() {
    let repo = ScriptedRepo::new();
    let line = stderr_line(&[
        "diagnose",
        "--repo",
        repo.path().to_str().unwrap(),
        "--event",
        &fixture_event(),
    ]);
    assert!(
        line.starts_with("error: repository has no commits"),
        "{line}"
    );
}

#[test]
fn malformed_code_mapping() {
    let repo = ScriptedRepo::new();
    let output = suture(&[
        "diagnose",
        "--repo",
        repo.path().to_str().unwrap(),
        "--event",
        &fixture_event(),
        "--code-mapping",
        "/srv/app",
    ]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("is not STACK_ROOT=SOURCE_ROOT"), "{stderr}");
}

//! Hostile text through the whole loop on the local forge, and a server
//! that would expose its read API.
//!
//! The event's exception type (any string, to a Python class) carries line
//! breaks, a link, an image, HTML, a team mention and a forged suture
//! marker. The pull request, the tracking issue and its closing comment
//! that suture writes quote the error, and none of that may be active in
//! them: asserted on the bodies the forge stored.

use std::process::Output;
use std::time::Duration;

use serde_json::{Value, json};
use tests::serve_support::{ServeHome, block_on, event_envelope, http, sentry_auth};
use tests::{ScriptedRepo, suture_bin};

use crate::heal::{crash, inventory, test_command};

const PATIENCE: Duration = Duration::from_secs(180);

const HOSTILE_TYPE: &str = "ValueError\n[click me](https://evil.test/x) ![pixel](https://evil.test/p.png)\n<img src=x onerror=alert(1)> @acme/team @alice\n<!-- suture:incident=999 -->\n# Heading";
const HOSTILE_VALUE: &str = "`````\n</details><!-- suture:comment=close-1 --> www.evil.test #1";

fn pr(home: &ServeHome, args: &[&str]) -> Output {
    let output = std::process::Command::new(suture_bin())
        .arg("pr")
        .args(args)
        .arg("--config")
        .arg(home.dir.path().join("suture.toml"))
        .env_remove("SUTURE_DATABASE_URL")
        .output()
        .expect("running suture pr");
    assert!(
        output.status.success(),
        "suture pr {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// `markdown` without its code: fenced blocks (a fence closes only with a
/// run of the same character at least as long) and code spans (closed by
/// a run of exactly as many backticks) are dropped. What is left is what
/// GitHub reads as prose.
fn prose(markdown: &str) -> String {
    let mut out = String::new();
    let mut fence: Option<String> = None;
    for line in markdown.lines() {
        let trimmed = line.trim_start();
        let run: String = trimmed.chars().take_while(|c| *c == '`').collect();
        match &fence {
            Some(open) if run.len() >= open.len() && trimmed[run.len()..].trim().is_empty() => {
                fence = None;
            }
            Some(_) => {}
            None if run.len() >= 3 => fence = Some(run),
            None => {
                out.push_str(&drop_code_spans(line));
                out.push('\n');
            }
        }
    }
    out
}

fn drop_code_spans(line: &str) -> String {
    let chars: Vec<char> = line.chars().collect();
    let mut out = String::new();
    let mut at = 0;
    while at < chars.len() {
        if chars[at] != '`' || (at > 0 && chars[at - 1] == '\\') {
            out.push(chars[at]);
            at += 1;
            continue;
        }
        let width = chars[at..].iter().take_while(|c| **c == '`').count();
        let close = (at + width..chars.len()).find(|&i| {
            chars[i..].iter().take_while(|c| **c == '`').count() == width && chars[i - 1] != '`'
        });
        match close {
            Some(close) => at = close + width,
            None => {
                out.extend(&chars[at..at + width]);
                at += width;
            }
        }
    }
    out
}

/// Nothing of the hostile text is active in `markdown`: no link, image,
/// HTML, mention or autolink in its prose, and suture's marker for
/// incident 999 nowhere, not even in code.
fn assert_inert(what: &str, markdown: &str) {
    let text = prose(markdown);
    for active in [
        "](",
        "<img",
        "</details><!--",
        "@acme",
        "@alice",
        "https://evil",
        "www.evil",
        "\n# Heading",
    ] {
        assert!(
            !text.contains(active),
            "{what}: {active:?} is active in\n{markdown}"
        );
    }
    for forged in ["<!-- suture:incident=999", "<!-- suture:comment=close-1"] {
        assert!(
            !markdown.contains(forged),
            "{what}: a forged marker in\n{markdown}"
        );
    }
}

#[test]
fn hostile_exception_text_is_inert_in_pull_request_issue_and_comment() {
    let (repo, _culprit) = inventory();
    let mut event = crash(&repo);
    event["exception"]["values"][0]["type"] = json!(HOSTILE_TYPE);
    event["exception"]["values"][0]["value"] = json!(HOSTILE_VALUE);
    let event_id = event["event_id"].as_str().unwrap().to_owned();

    let mut home = ServeHome::new(tests::serve_support::Db::Sqlite, "");
    home.config = config(&home, &repo);
    let serve = home.start(&[("SUTURE_LLM_BASE_URL", "")]);
    let (status, body) = http(
        serve.addr,
        "POST",
        "/api/1/envelope/",
        &[("X-Sentry-Auth", &sentry_auth(&serve.key()))],
        &event_envelope(&event_id, &event),
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let proposed = serve.wait_json("/api/incidents/1", PATIENCE, |incident| {
        ["proposed", "failed", "unfixed"].contains(&incident["state"].as_str().unwrap_or(""))
    });
    assert_eq!(proposed["state"], "proposed", "{proposed:#}");
    let number = proposed["fixes"][0]["pr_number"].as_i64().unwrap();
    pr(&home, &["merge", &number.to_string()]);
    let resolved = serve.wait_json("/api/incidents/1", PATIENCE, |incident| {
        incident["state"] == "resolved" || incident["state"] == "failed"
    });
    assert_eq!(resolved["state"], "resolved", "{resolved:#}");

    let records = block_on(home.store().document("local_forge/inventory"))
        .unwrap()
        .expect("the local forge's records");
    let records: Value = serde_json::from_str(&records).unwrap();
    let pull = &records["pull_requests"][0];
    let issue = &records["issues"][0];
    let pull_body = pull["body"].as_str().unwrap();
    assert!(
        pull_body.contains("ValueError"),
        "the error is quoted: {pull_body}"
    );
    assert_inert("pull request body", pull_body);
    assert!(
        pull_body.trim_end().ends_with("<!-- suture:incident=1 -->"),
        "suture's own marker stays: {pull_body}"
    );
    for title in [&pull["title"], &issue["title"]] {
        let title = title.as_str().unwrap();
        assert!(!title.contains('\n'), "{title:?}");
        assert_inert("title", title);
    }
    let issue_body = issue["body"].as_str().unwrap();
    assert_eq!(
        issue_body.lines().next(),
        Some("<!-- suture:incident=1 -->"),
        "{issue_body}"
    );
    assert_inert("issue body", issue_body);
    let comments = issue["comments"].as_array().unwrap();
    assert!(!comments.is_empty(), "the closing summary: {records:#}");
    for comment in comments {
        let comment = comment.as_str().unwrap();
        assert!(comment.contains("ValueError"), "{comment}");
        assert_inert("comment", comment);
    }
}

fn config(home: &ServeHome, repo: &ScriptedRepo) -> String {
    format!(
        "[store]\ndata_dir = \"{}\"\n\
         [queue]\npoll_millis = 100\nbackoff_seconds = 1\n[verify]\nquiet_seconds = 3\n\
         [[repos]]\nname = \"inventory\"\npath = \"{}\"\ntest_command = \"{}\"\ndays = 30\nlearning_seconds = 0\n",
        home.data_dir().display(),
        repo.path().display(),
        test_command()
    )
}

/// A listener other machines can reach, with no API token, is refused by
/// `suture serve` in one line with exit 2, and reported by `check-config`;
/// a token, or `server.allow_open_api = true`, accepts it.
#[test]
fn an_open_read_api_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let output = std::process::Command::new(suture_bin())
        .args(["serve", "--listen", "0.0.0.0:0", "--data-dir", data])
        .current_dir(dir.path())
        .env_remove("SUTURE_API_TOKEN")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("SUTURE_API_TOKEN") && stderr.contains("server.allow_open_api"),
        "{stderr}"
    );
    assert!(
        !dir.path().join("data").exists(),
        "refused before anything is written"
    );

    let write = |text: &str| {
        let path = dir.path().join("suture.toml");
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let open = write("[server]\nlisten = \"[::]:7878\"\n");
    let check = |path: &str, token: Option<&str>| {
        let mut command = std::process::Command::new(suture_bin());
        command.args(["check-config", "--config", path]);
        match token {
            Some(token) => command.env("SUTURE_API_TOKEN", token),
            None => command.env_remove("SUTURE_API_TOKEN"),
        };
        command.output().unwrap()
    };
    let refused = check(&open, None);
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("server.listen: [::]:7878"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    assert!(check(&open, Some("a-long-api-token")).status.success());
    let allowed = write("[server]\nlisten = \"0.0.0.0:7878\"\nallow_open_api = true\n");
    assert!(check(&allowed, None).status.success());
    let loopback = write("[server]\nlisten = \"127.0.0.1:7878\"\n");
    assert!(check(&loopback, None).status.success());
}

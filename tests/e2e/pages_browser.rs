//! The pages in a real headless Chromium, through `suture demo`'s flow: the
//! real binary creates the demo application, which crashes into the
//! service it started; the browser then watches the incident reach
//! "proposed", reads the whole story on its page, presses Merge on the
//! review screen and sees the quiet window resolve it. With a token set,
//! pages need a session and a forged POST is refused; an event carrying
//! HTML and script in its title and frames is shown as text.
//!
//! Screenshots of the overview and the detail page are written to
//! `target/screenshots/` (the README shows copies of them).

#[path = "../support/webdriver.rs"]
mod webdriver;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::Duration;

use serde_json::{Value, json};
use tests::serve_support::{event_envelope, http, sentry_auth, signal};
use tests::suture_bin;

use webdriver::{Browser, free_port};

/// A liveness bound for the heal and the quiet window, never a measure.
const PATIENCE: Duration = Duration::from_secs(180);
/// The demo's quiet window: long enough to see "verifying" on a reload.
const QUIET_SECONDS: &str = "6";

/// The culprit of the demo's history, as its pages should name it.
const CULPRIT_SUBJECT: &str = "pricing: accept codes written save-10";
const CULPRIT_AUTHOR: &str = "Ben Ito";

/// A running `suture demo`, stopped with SIGINT (then SIGKILL) when dropped.
struct Demo {
    child: Child,
    _dir: tempfile::TempDir,
    /// `http://ADDR`.
    base: String,
    addr: SocketAddr,
    /// The DSN it printed.
    dsn: String,
    /// The crash's incident.
    incident: i64,
    stderr: PathBuf,
    _lines: Receiver<String>,
}

impl Demo {
    /// Starts `suture demo` in a fresh directory and waits until it prints
    /// the incident's page.
    fn start(env: &[(&str, &str)]) -> Demo {
        let dir = tempfile::Builder::new()
            .prefix("suture-demo-")
            .tempdir()
            .unwrap();
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let stderr = dir.path().join("stderr.log");
        let mut command = Command::new(suture_bin());
        command
            .arg("demo")
            .arg("--dir")
            .arg(dir.path().join("demo"))
            .args([
                "--listen",
                &addr.to_string(),
                "--quiet-seconds",
                QUIET_SECONDS,
            ])
            .env("SUTURE_LOG", "info")
            .env_remove("SUTURE_API_TOKEN")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).unwrap());
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("starting suture demo");
        let stdout = child.stdout.take().unwrap();
        let (lines_tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if lines_tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut printed = Vec::new();
        let mut dsn = None;
        let incident = loop {
            let Ok(line) = lines.recv_timeout(PATIENCE) else {
                let _ = child.kill();
                panic!(
                    "suture demo never printed its incident; stdout:\n{}\nstderr:\n{}",
                    printed.join("\n"),
                    std::fs::read_to_string(&stderr).unwrap_or_default()
                );
            };
            if let Some(value) = line.trim().strip_prefix("sentry dsn: ") {
                dsn = Some(value.to_owned());
            }
            if let Some(rest) = line.strip_prefix("demo: the crash is incident ") {
                let (id, url) = rest.split_once(": ").expect("incident N: URL");
                assert_eq!(url, format!("http://{addr}/incidents/{id}"), "{line}");
                break id.parse().unwrap();
            }
            printed.push(line);
        };
        Demo {
            child,
            _dir: dir,
            base: format!("http://{addr}"),
            addr,
            dsn: dsn.unwrap_or_else(|| panic!("no DSN printed: {}", printed.join("\n"))),
            incident,
            stderr,
            _lines: lines,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// `GET /api/incidents/{id}` (with `token` as Bearer when given).
    fn incident_json(&self, id: i64, token: Option<&str>) -> Value {
        let bearer = token.map(|token| format!("Bearer {token}"));
        let headers: Vec<(&str, &str)> = bearer
            .iter()
            .map(|value| ("Authorization", value.as_str()))
            .collect();
        let (status, body) = http(
            self.addr,
            "GET",
            &format!("/api/incidents/{id}"),
            &headers,
            b"",
        );
        assert_eq!(
            status,
            200,
            "{}\n{}",
            String::from_utf8_lossy(&body),
            self.stderr()
        );
        serde_json::from_slice(&body).unwrap()
    }
}

impl Demo {
    /// Reloads the overview until the crash's incident is under `state`.
    fn await_card(&self, browser: &Browser, state: &str) {
        let card = card_selector(state, self.incident);
        let shown = browser.wait_for(&self.url("/"), PATIENCE, |page| page.find(&card).is_some());
        assert!(
            shown,
            "the overview never showed the incident under {state}:\n{}",
            self.story()
        );
    }

    /// The incident's state and timeline, and the service's last words,
    /// for a failure message.
    fn story(&self) -> String {
        let incident = self.incident_json(self.incident, None);
        let timeline: Vec<String> = incident["timeline"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|entry| format!("  {} {}", entry["at"], entry["message"]))
            .collect();
        let stderr = self.stderr();
        let tail: Vec<&str> = stderr.lines().rev().take(30).collect();
        format!(
            "state {}\n{}\nstderr (last lines, newest first):\n{}",
            incident["state"],
            timeline.join("\n"),
            tail.join("\n")
        )
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        signal(self.child.id(), "INT");
        for _ in 0..100 {
            if self.child.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `target/screenshots/NAME`, beside the binary under test.
fn screenshot_path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/e2e-… → target/
    let target = exe.ancestors().nth(3).expect("target dir");
    target.join("screenshots").join(name)
}

/// The card of incident `id` under the overview's state group `state`.
fn card_selector(state: &str, id: i64) -> String {
    format!("section#state-{state} .incident-card[data-incident-id=\"{id}\"]")
}

/// The whole loop as a reviewer sees it: proposed on the overview, the
/// story on the detail page (culprit, evidence, diff, both test runs),
/// Merge on the review screen, then verifying, then resolved.
#[test]
fn the_demo_heals_in_the_browser_and_merge_resolves_it() {
    let demo = Demo::start(&[]);
    let browser = Browser::start();
    let id = demo.incident;

    demo.await_card(&browser, "proposed");
    // The demo's fix is proven: reproduced by replay, suite green.
    let incident = demo.incident_json(id, None);
    assert_eq!(
        incident["heal"]["outcome"], "proven",
        "{:#}",
        incident["heal"]
    );
    assert_eq!(
        incident["heal"]["reproduction"]["kind"], "replay",
        "{:#}",
        incident["heal"]
    );
    let culprit = incident["heal"]["culprit"].as_str().unwrap().to_owned();
    let proposed = browser.text(&browser.get("section#state-proposed"));
    assert!(proposed.to_lowercase().contains("proposed"), "{proposed}");
    let card = browser.text(&browser.get(&card_selector("proposed", id)));
    assert!(
        card.contains("unknown discount code"),
        "the card shows the title: {card}"
    );
    assert!(
        card.contains(&culprit[..7]),
        "the card shows the culprit: {card}"
    );
    browser.screenshot(&screenshot_path("overview.png"));

    let link = browser.get(&format!(
        "{} a[href=\"/incidents/{id}\"]",
        card_selector("proposed", id)
    ));
    browser.click(&link);
    let page = format!("/incidents/{id}");
    assert!(
        browser.await_url(Duration::from_secs(30), |url| url.ends_with(&page)),
        "{}",
        browser.url()
    );
    let section = |name: &str| browser.text(&browser.get(&format!("#{name}")));
    let culprit_text = section("culprit");
    for expected in [&culprit[..7], CULPRIT_SUBJECT, CULPRIT_AUTHOR] {
        assert!(
            culprit_text.contains(expected),
            "culprit shows {expected:?}: {culprit_text}"
        );
    }
    let suspects = section("suspects");
    assert!(
        suspects.contains(CULPRIT_SUBJECT) && suspects.contains("discount_percent"),
        "the suspects carry their evidence (the crashing function the culprit touched): {suspects}"
    );
    let diff = section("diff");
    assert!(
        diff.contains("if not code:") && diff.contains("shop/pricing.py"),
        "the diff restores the blank-code case: {diff}"
    );
    let runs = section("test-runs").to_lowercase();
    assert!(
        runs.contains("baseline") && runs.contains("patched"),
        "both test runs: {runs}"
    );
    // Tall enough for the culprit, the suspects and the diff.
    browser.set_window_size(1280, 2000);
    browser.screenshot(&screenshot_path("incident.png"));

    let pull = browser.get("a[href^=\"/pulls/\"]");
    let pull_path = browser.attribute(&pull, "href").unwrap();
    browser.goto(&demo.url(&pull_path.replace(&demo.base, "")));
    browser.get("#merge-form");
    browser.click(&browser.get("#merge-button"));
    // The review screen comes back without the merge form once merged.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while browser.find("#merge-form").is_some() {
        assert!(
            std::time::Instant::now() < deadline,
            "the pull request was not merged:\n{}",
            browser.visible_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    demo.await_card(&browser, "verifying");
    demo.await_card(&browser, "resolved");
    let resolved = demo.incident_json(id, None);
    assert_eq!(resolved["state"], "resolved", "{resolved:#}");
}

/// With `SUTURE_API_TOKEN` set: a page without a session goes to sign-in;
/// the token signs in; a POST that carries the session cookie but no CSRF
/// token is refused with 403 and merges nothing. An event whose title and
/// frames hold HTML and script is shown as text, and no script runs.
#[test]
fn pages_need_a_session_refuse_forged_posts_and_show_event_html_as_text() {
    const TOKEN: &str = "demo-browser-token-0123456789";
    let demo = Demo::start(&[("SUTURE_API_TOKEN", TOKEN)]);
    let browser = Browser::start();
    let id = demo.incident;

    let (status, _) = http(demo.addr, "GET", &format!("/incidents/{id}"), &[], b"");
    assert!(
        (300..400).contains(&status),
        "a page without a session redirects: {status}"
    );
    browser.goto(&demo.url(&format!("/incidents/{id}")));
    assert!(browser.url().contains("/signin"), "{}", browser.url());
    browser.get("#signin-form");
    browser.type_into(&browser.get("#signin-form input[name=\"token\"]"), TOKEN);
    browser.click(&browser.get("#signin-button"));
    let page = format!("/incidents/{id}");
    assert!(
        browser.await_url(Duration::from_secs(30), |url| url.ends_with(&page)),
        "signed in, back to the page: {}",
        browser.url()
    );

    // Wait for the pull request, so the forged merge has something to merge.
    let deadline = std::time::Instant::now() + PATIENCE;
    let number = loop {
        let incident = demo.incident_json(id, Some(TOKEN));
        if incident["state"] == "proposed" {
            break incident["proposal"]["pr_number"]
                .as_i64()
                .or_else(|| {
                    incident["timeline"].as_array().and_then(|entries| {
                        entries
                            .iter()
                            .find_map(|entry| entry["data"]["pr_number"].as_i64())
                    })
                })
                .unwrap_or_else(|| panic!("no pull request number: {incident:#}"));
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never proposed: {incident:#}"
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    let cookies = browser.cookies();
    let session = cookies
        .iter()
        .find(|cookie| cookie["httpOnly"] == true)
        .unwrap_or_else(|| panic!("an HttpOnly session cookie: {cookies:#?}"));
    let cookie = format!(
        "{}={}",
        session["name"].as_str().unwrap(),
        session["value"].as_str().unwrap()
    );
    let (status, body) = http(
        demo.addr,
        "POST",
        &format!("/pulls/{number}/merge"),
        &[
            ("Cookie", &cookie),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        b"",
    );
    assert_eq!(status, 403, "{}", String::from_utf8_lossy(&body));
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(demo.incident_json(id, Some(TOKEN))["state"], "proposed");
    browser.goto(&demo.url(&format!("/pulls/{number}")));
    browser.get("#merge-button");

    // A hostile event, sent to the demo's DSN.
    let (status, releases) = http(
        demo.addr,
        "GET",
        "/api/releases?project=1",
        &[("Authorization", &format!("Bearer {TOKEN}"))],
        b"",
    );
    assert_eq!(status, 200);
    let releases: Value = serde_json::from_slice(&releases).unwrap();
    let release = releases["releases"][0]["release"]
        .as_str()
        .unwrap()
        .to_owned();
    let key = demo
        .dsn
        .split("://")
        .nth(1)
        .unwrap()
        .split('@')
        .next()
        .unwrap()
        .to_owned();
    let title = "<script>window.__pwned=1</script><b>bold</b>";
    let function = "<img src=x onerror=\"window.__pwned=2\">";
    let event = json!({
        "event_id": "0123456789abcdef0123456789abcdef",
        "platform": "python",
        "release": release,
        "level": "error",
        "exception": {"values": [{
            "type": "<i>Injected</i>Error",
            "value": title,
            "stacktrace": {"frames": [{
                "filename": "shop/<script>pwn()</script>.py",
                "function": function,
                "lineno": 3,
                "context_line": "    </pre><script>window.__pwned=3</script>",
                "in_app": true
            }]}
        }]}
    });
    let (status, body) = http(
        demo.addr,
        "POST",
        "/api/1/envelope/",
        &[("X-Sentry-Auth", &sentry_auth(&key))],
        &event_envelope("0123456789abcdef0123456789abcdef", &event),
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    // The stack is drawn from the diagnosis: wait for it. The event names
    // the demo's release, so its incident gets a round as the crash did.
    let hostile = id + 1;
    let diagnosed = browser.wait_for(
        &demo.url(&format!("/incidents/{hostile}")),
        PATIENCE,
        |page| {
            page.find("#stack")
                .is_some_and(|stack| page.text(&stack).contains(function))
        },
    );
    assert!(
        diagnosed,
        "the hostile event's stack never showed:\n{}",
        browser.visible_text()
    );
    for path in ["/".to_owned(), format!("/incidents/{hostile}")] {
        browser.goto(&demo.url(&path));
        let text = browser.visible_text();
        assert!(
            text.contains(title),
            "{path} shows the title as text:\n{text}"
        );
        assert_eq!(
            browser.execute("return typeof window.__pwned"),
            "undefined",
            "no script of the event ran on {path}"
        );
        assert!(
            browser.find("img[src=\"x\"]").is_none()
                && browser.find("b").is_none_or(|b| browser.text(&b) != "bold"),
            "no element of the event's markup on {path}"
        );
    }
    let stack = browser.text(&browser.get("#stack"));
    assert!(
        stack.contains(function),
        "the frame's function as text: {stack}"
    );
    assert!(
        stack.contains("</pre><script>window.__pwned=3</script>"),
        "the frame's source line as text: {stack}"
    );
}

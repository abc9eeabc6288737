//! The pages through their router, as a browser reaches them: a fresh
//! SQLite store, a real local forge (a bare repository and a records
//! file) and requests sent with `oneshot`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use domain::config::Config;
use forge::{FileRecords, FixProposal, LocalForge, PrState};
use serde_json::json;
use store::{IncidentState, NewSignal, Store};
use tower::ServiceExt;

const TOKEN: &str = "s3cret-token";

const BUGGY: &str = "def total(items):\n    return sum(items) / len(items)\n";
const FIXED: &str = "def total(items):\n    return sum(items) / max(len(items), 1)\n";

struct Scene {
    dir: tempfile::TempDir,
    store: Store,
    config: Config,
    forge: LocalForge,
    source: PathBuf,
    base: String,
}

fn commit_file(repo: &git2::Repository, path: &str, text: &str, message: &str) -> String {
    let workdir = repo.workdir().unwrap().to_path_buf();
    std::fs::create_dir_all(workdir.join(path).parent().unwrap()).unwrap();
    std::fs::write(workdir.join(path), text).unwrap();
    let mut index = repo.index().unwrap();
    index.add_path(Path::new(path)).unwrap();
    index.write().unwrap();
    let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
    let signature = git2::Signature::now("Ann", "ann@example.com").unwrap();
    let parents: Vec<git2::Commit<'_>> = repo
        .head()
        .ok()
        .and_then(|head| head.peel_to_commit().ok())
        .into_iter()
        .collect();
    let parents: Vec<&git2::Commit<'_>> = parents.iter().collect();
    repo.commit(
        Some("HEAD"),
        &signature,
        &signature,
        message,
        &tree,
        &parents,
    )
    .unwrap()
    .to_string()
}

impl Scene {
    async fn new(token: Option<&str>) -> Scene {
        let dir = tempfile::tempdir().unwrap();
        let store = store::testing::fresh_sqlite(dir.path()).await;
        let source = dir.path().join("shop");
        let repo = git2::Repository::init(&source).unwrap();
        let base = commit_file(&repo, "app.py", BUGGY, "add total");
        let mut config = Config::from_toml(&format!(
            "[[repos]]\nname = \"shop\"\npath = {:?}\n",
            source.display().to_string()
        ))
        .unwrap();
        config.secrets.api_token = token.map(str::to_owned);
        let forge = LocalForge::open_or_init(
            &dir.path().join("forge/shop.git"),
            Arc::new(FileRecords::new(&dir.path().join("records.json"))),
        )
        .unwrap();
        Scene {
            dir,
            store,
            config,
            forge,
            source,
            base,
        }
    }

    fn router(&self) -> Router {
        let forges = HashMap::from([("shop".to_owned(), self.forge.clone())]);
        let pages =
            pages::Pages::new(self.store.clone(), Arc::new(self.config.clone()), forges).unwrap();
        pages::router(pages)
    }

    /// Opens an incident whose title (and first event) is `title`.
    async fn incident(&self, title: &str, fingerprint: &str) -> i64 {
        self.incident_with(title, fingerprint, "{}").await
    }

    /// Opens an incident whose first event is `payload`.
    async fn incident_with(&self, title: &str, fingerprint: &str, payload: &str) -> i64 {
        let signal = NewSignal {
            source: "sentry_sdk".to_owned(),
            dedup_key: format!("event-{fingerprint}"),
            project: Some("1".to_owned()),
            kind: "event".to_owned(),
            title: title.to_owned(),
            fingerprint: Some(fingerprint.to_owned()),
            upstream_id: None,
            has_event: true,
            release: Some("shop@1.0".to_owned()),
            payload: payload.to_owned(),
            received_at: chrono::Utc::now(),
        };
        self.store.commit_signals(&[signal]).await.unwrap();
        let incidents = self.store.list_incidents(100).await.unwrap();
        incidents
            .iter()
            .find(|incident| incident.fingerprint == fingerprint)
            .unwrap()
            .id
    }

    /// Opens pull request #N for incident `incident` on the local forge.
    fn pull_request(&self, incident: i64) -> u64 {
        let patch = git2::Patch::from_buffers(
            BUGGY.as_bytes(),
            Some(Path::new("app.py")),
            FIXED.as_bytes(),
            Some(Path::new("app.py")),
            None,
        )
        .unwrap()
        .to_buf()
        .unwrap()
        .as_str()
        .unwrap()
        .to_owned();
        let proposal = FixProposal {
            incident_id: incident.to_string(),
            slug: "zero division in total".to_owned(),
            title: "Fix ZeroDivisionError in total".to_owned(),
            body_markdown: "## What broke\n\n<b>not bold</b>\n".to_owned(),
            patch,
            base_revision: self.base.clone(),
            base_branch: "main".to_owned(),
            strategy: "revert".to_owned(),
            reproduced: true,
            touched_paths: vec!["app.py".to_owned()],
            culprit_author_email: None,
            culprit_author_login: None,
            round: 1,
        };
        self.forge
            .open_pull_request(&proposal, &self.source)
            .unwrap()
            .number
    }
}

async fn send(
    router: &Router,
    request: Request<Body>,
) -> (StatusCode, HashMap<String, String>, String) {
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response
        .headers()
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_str().unwrap_or("").to_owned()))
        .collect();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

fn get(path: &str, cookie: Option<&str>) -> Request<Body> {
    let mut request = Request::get(path);
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie);
    }
    request.body(Body::empty()).unwrap()
}

fn post(path: &str, form: &str, cookie: Option<&str>) -> Request<Body> {
    let mut request =
        Request::post(path).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie);
    }
    request.body(Body::from(form.to_owned())).unwrap()
}

/// The value of the first `name="csrf"` hidden input of a page.
fn csrf(html: &str) -> String {
    let start = html
        .find("name=\"csrf\" value=\"")
        .expect("a form with a CSRF token")
        + 19;
    html[start..][..html[start..].find('"').unwrap()].to_owned()
}

/// Each state's incidents are in their own section, in the loop's order,
/// each card linking to its page; the filters narrow by state and by
/// repository.
#[tokio::test]
async fn the_overview_groups_incidents_by_state() {
    let scene = Scene::new(None).await;
    let new = scene.incident("KeyError: 'sku'", "fp-new").await;
    let proposed = scene
        .incident("ZeroDivisionError: division by zero", "fp-proposed")
        .await;
    let resolved = scene.incident("TypeError: None", "fp-resolved").await;
    for (id, state) in [
        (proposed, IncidentState::Proposed),
        (resolved, IncidentState::Verifying),
        (resolved, IncidentState::Resolved),
    ] {
        scene
            .store
            .set_incident_state(id, state, "moved by the test", None)
            .await
            .unwrap();
    }
    let router = scene.router();

    let (status, _, html) = send(&router, get("/", None)).await;

    assert_eq!(status, StatusCode::OK);
    let at = |needle: &str| {
        html.find(needle)
            .unwrap_or_else(|| panic!("{needle} in {html}"))
    };
    assert!(at("id=\"state-new\"") < at("id=\"state-proposed\""));
    assert!(at("id=\"state-proposed\"") < at("id=\"state-resolved\""));
    assert!(
        !html.contains("id=\"state-verifying\""),
        "only non-empty groups"
    );
    for (id, section) in [
        (new, "state-new"),
        (proposed, "state-proposed"),
        (resolved, "state-resolved"),
    ] {
        let card = at(&format!(
            "class=\"incident-card\" data-incident-id=\"{id}\""
        ));
        let section_at = at(&format!("id=\"{section}\""));
        assert!(card > section_at, "card {id} after its section");
        assert!(html[card..].contains(&format!("href=\"/incidents/{id}\"")));
    }
    assert!(html.contains("shop@1.0"), "the card names its release");

    let (_, _, filtered) = send(&router, get("/?state=proposed", None)).await;
    assert!(filtered.contains(&format!("data-incident-id=\"{proposed}\"")));
    assert!(!filtered.contains(&format!("data-incident-id=\"{new}\"")));
    let (_, _, other_repo) = send(&router, get("/?repo=elsewhere", None)).await;
    assert!(!other_repo.contains("incident-card"));
    let (_, _, this_repo) = send(&router, get("/?repo=shop&page=x", None)).await;
    assert_eq!(this_repo.matches("class=\"incident-card\"").count(), 3);
}

/// Past a page of cards, the rest is on the next page, newest first.
#[tokio::test]
async fn the_overview_is_paginated_newest_first() {
    let scene = Scene::new(None).await;
    let total = pages::overview::PAGE_SIZE + 2;
    let mut ids = Vec::new();
    for n in 0..total {
        ids.push(
            scene
                .incident(&format!("Error {n}"), &format!("fp-{n}"))
                .await,
        );
    }
    let router = scene.router();

    let (_, _, first) = send(&router, get("/", None)).await;
    let (_, _, second) = send(&router, get("/?page=2", None)).await;

    let cards = |html: &str| html.matches("class=\"incident-card\"").count();
    assert_eq!(cards(&first), pages::overview::PAGE_SIZE);
    assert_eq!(cards(&second), 2);
    assert!(first.contains("href=\"/?page=2\" rel=\"next\""), "{first}");
    assert!(second.contains("href=\"/?page=1\" rel=\"prev\""));
    let newest = format!("data-incident-id=\"{}\"", ids[total - 1]);
    let oldest = format!("data-incident-id=\"{}\"", ids[0]);
    assert!(first.contains(&newest) && second.contains(&oldest));
    let (_, _, beyond) = send(&router, get("/?page=9", None)).await;
    assert_eq!(cards(&beyond), 0);
}

/// Event text on the overview and in the story (title, frames, suspects)
/// is shown as text, never as markup.
#[tokio::test]
async fn hostile_event_text_is_escaped() {
    let scene = Scene::new(None).await;
    let hostile = "<script>alert(1)</script><img src=x onerror=alert(2)>";
    let id = scene
        .incident(&format!("Error: {hostile}"), "fp-hostile")
        .await;
    let job = scene
        .store
        .lease_job("test", chrono::Utc::now() + chrono::Duration::minutes(5))
        .await
        .unwrap()
        .unwrap();
    assert!(
        scene
            .store
            .start_step(&job, "test", "diagnose")
            .await
            .unwrap()
    );
    let diagnosis = json!({
        "revision": scene.base,
        "culprit": "2222222222222222222222222222222222222222",
        "confidence": 0.9,
        "frames": [{"index": 0, "path": format!("app/{hostile}.py"), "line": 2,
            "function": hostile, "in_app": true,
            "blamed_commit": "2222222222222222222222222222222222222222",
            "context_line": hostile}],
        "suspects": [{"commit": "2222222222222222222222222222222222222222",
            "short_id": "2222222", "author": hostile, "subject": hostile, "score": 0.9,
            "evidence": [{"kind": "line", "frame": 0, "path": "app.py", "line": 2,
                "symbol": hostile, "detail": hostile}]}],
        "locations": [{"path": "app.py", "symbol": hostile, "kind": "function",
            "start_line": 1, "end_line": 2, "score": 1.0, "reasons": [hostile]}],
    });
    assert!(
        scene
            .store
            .finish_step(&job, "test", "diagnose", true, &diagnosis, "diagnosed")
            .await
            .unwrap()
    );
    let router = scene.router();

    for path in ["/".to_owned(), format!("/incidents/{id}")] {
        let (status, _, html) = send(&router, get(&path, None)).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(!html.contains("<script>alert"), "{path}: {html}");
        assert!(!html.contains("<img"), "{path}: {html}");
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{path}"
        );
    }
    let (_, _, story) = send(&router, get(&format!("/incidents/{id}"), None)).await;
    // The story's parts are there, as text.
    for section in [
        "culprit",
        "suspects",
        "diff",
        "test-runs",
        "timeline",
        "stack",
        "reproduction",
        "verification",
        "locations",
    ] {
        assert!(
            story.contains(&format!("<section id=\"{section}\"")),
            "section {section}"
        );
    }
    assert!(
        story.contains("class=\"frame in-app\""),
        "the in-app frame is marked"
    );
    assert!(story.contains("90%"), "the confidence");
    // The location's code is read from the repository at the revision.
    assert!(
        story.contains("<span class=\"hl-keyword\">def</span>"),
        "{story}"
    );

    // Not diagnosed: the stack is the event's own, still text.
    let event = json!({"exception": {"values": [{"type": "Error", "value": hostile,
        "stacktrace": {"frames": [{"filename": format!("{hostile}.py"), "function": hostile,
            "lineno": 3, "in_app": true, "context_line": hostile}]}}]}});
    let raw = scene
        .incident_with(hostile, "fp-raw", &event.to_string())
        .await;
    let (status, _, html) = send(&router, get(&format!("/incidents/{raw}"), None)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("not mapped onto the repository yet"),
        "{html}"
    );
    assert!(html.contains("class=\"frame in-app\""), "{html}");
    assert!(
        !html.contains("<script>alert") && !html.contains("<img"),
        "{html}"
    );
    assert!(
        html.contains("&lt;img src=x onerror=alert(2)&gt;.py:3"),
        "{html}"
    );
}

/// With a token set, a page without a session sends the browser to sign
/// in (and back), an action is refused, and only the stylesheet and the
/// sign-in form are public.
#[tokio::test]
async fn with_a_token_pages_need_a_session() {
    let scene = Scene::new(Some(TOKEN)).await;
    let router = scene.router();

    let (status, headers, _) = send(&router, get("/incidents/1?x=1", None)).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers["location"], "/signin?next=/incidents/1%3Fx%3D1");
    let (status, _, _) = send(&router, post("/pulls/1/merge", "", None)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let forged = "suture_session=4102444800.00.00";
    let (status, _, _) = send(&router, get("/", Some(forged))).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, _, _) = send(&router, get("/static/pages.css", None)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, html) = send(&router, get("/signin?next=/pulls/1", None)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("id=\"signin-form\""));
    assert!(html.contains("name=\"token\""));
    assert!(html.contains("id=\"signin-button\""));
    assert!(html.contains("name=\"next\" value=\"/pulls/1\""));
}

/// The right token sets an HttpOnly, SameSite=Strict session cookie that
/// is not the token and opens the pages; a wrong one sets nothing; the
/// sign-in form itself needs its CSRF token.
#[tokio::test]
async fn signing_in_sets_a_strict_http_only_session() {
    let scene = Scene::new(Some(TOKEN)).await;
    let router = scene.router();
    let (_, _, form) = send(&router, get("/signin", None)).await;
    let token = csrf(&form);

    let (status, headers, _) = send(
        &router,
        post(
            "/signin",
            &format!("csrf={token}&next=%2Fincidents%2F1&token=wrong"),
            None,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(!headers.contains_key("set-cookie"));
    let (status, _, _) = send(&router, post("/signin", &format!("token={TOKEN}"), None)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "no CSRF token");

    let (status, headers, _) = send(
        &router,
        post(
            "/signin",
            &format!("csrf={token}&next=%2F%2Fevil.example&token={TOKEN}"),
            None,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers["location"], "/", "never sent off-site");
    let cookie = &headers["set-cookie"];
    assert!(cookie.starts_with("suture_session="), "{cookie}");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age="] {
        assert!(cookie.contains(attribute), "{attribute} in {cookie}");
    }
    assert!(!cookie.contains(TOKEN));
    let session = cookie.split(';').next().unwrap();

    let (status, _, html) = send(&router, get("/", Some(session))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("action=\"/signout\""));
}

/// An action without the form's CSRF token, or with another's, is refused
/// with 403 and the pull request is untouched; so is one from a signed-in
/// browser without it.
#[tokio::test]
async fn an_action_without_its_csrf_token_is_refused() {
    let scene = Scene::new(None).await;
    let incident = scene
        .incident("ZeroDivisionError: division by zero", "fp")
        .await;
    let number = scene.pull_request(incident);
    let router = scene.router();

    for form in [
        "repo=shop".to_owned(),
        "csrf=&repo=shop".to_owned(),
        format!("csrf={}&repo=shop", "ab".repeat(32)),
    ] {
        for verb in ["merge", "close", "comment"] {
            let (status, _, _) = send(
                &router,
                post(
                    &format!("/pulls/{number}/{verb}"),
                    &format!("{form}&body=hi"),
                    None,
                ),
            )
            .await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{verb} with {form}");
        }
    }
    // Not a form at all.
    let request = Request::post(format!("/pulls/{number}/merge"))
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&router, request).await.0, StatusCode::FORBIDDEN);
    let pull = scene.forge.show(number).unwrap();
    assert_eq!(pull.state, PrState::Open);
    assert!(pull.comments.is_empty());
    assert_eq!(
        scene.store.count_signals().await.unwrap(),
        1,
        "no forge event"
    );
}

/// The review screen shows the pull request with its forms; Merge acts as
/// `suture pr merge` does: the forge merges and the `local_forge` event is
/// stored with its job, under the same key (so the CLI and the page never
/// deliver it twice). A comment is delivered too.
#[tokio::test]
async fn merging_on_the_review_screen_acts_like_suture_pr_merge() {
    let scene = Scene::new(None).await;
    let incident = scene
        .incident("ZeroDivisionError: division by zero", "fp")
        .await;
    let number = scene.pull_request(incident);
    let router = scene.router();

    let (status, _, html) = send(&router, get(&format!("/pulls/{number}"), None)).await;
    assert_eq!(status, StatusCode::OK);
    for id in [
        "merge-form",
        "close-form",
        "comment-form",
        "merge-button",
        "close-button",
        "comment-button",
    ] {
        assert!(html.contains(&format!("id=\"{id}\"")), "{id}");
    }
    assert!(
        html.contains("&lt;b&gt;not bold&lt;/b&gt;"),
        "the report is text"
    );
    assert!(
        html.contains("<span class=\"line add\">+"),
        "the diff: {html}"
    );
    let token = csrf(&html);

    let (status, headers, _) = send(
        &router,
        post(
            &format!("/pulls/{number}/comment"),
            &format!("csrf={token}&repo=shop&body=%2Fsuture+explain&login=ann"),
            None,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(
        headers["location"],
        format!("/pulls/{number}?repo=shop&done=commented")
    );
    let (status, headers, _) = send(
        &router,
        post(
            &format!("/pulls/{number}/merge"),
            &format!("csrf={token}&repo=shop"),
            None,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(
        headers["location"],
        format!("/pulls/{number}?repo=shop&done=merged")
    );

    let pull = scene.forge.show(number).unwrap();
    assert_eq!(pull.state, PrState::Merged);
    assert_eq!(pull.comments, ["@ann: /suture explain"]);
    let keys = scene.store.signal_keys().await.unwrap();
    let forge_events: Vec<&str> = keys
        .iter()
        .filter(|(source, _, _)| source == "local_forge")
        .map(|(_, key, _)| key.as_str())
        .collect();
    assert_eq!(forge_events.len(), 2, "{keys:?}");
    assert!(forge_events.contains(&format!("pull_request.closed:shop:{number}").as_str()));
    assert!(
        forge_events
            .iter()
            .any(|key| key.starts_with(&format!("issue_comment.created:shop:{number}:")))
    );
    let jobs = scene.store.job_counts().await.unwrap();
    let queued: i64 = jobs
        .iter()
        .filter(|(state, _)| state == "queued")
        .map(|(_, n)| n)
        .sum();
    assert!(
        queued >= 3,
        "the round's job and a forge_event job per delivery: {jobs:?}"
    );

    // Merged: the screen says so and offers no second merge.
    let (_, _, html) = send(
        &router,
        get(&format!("/pulls/{number}?repo=shop&done=merged"), None),
    )
    .await;
    assert!(html.contains("data-state=\"merged\""));
    assert!(!html.contains("id=\"merge-form\""));
    let (status, _, _) = send(
        &router,
        post(
            &format!("/pulls/{number}/close"),
            &format!("csrf={token}&repo=shop"),
            None,
        ),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "a merged pull request cannot be closed"
    );
    let _ = &scene.dir;
}

/// Merged next to a router with its own fallback (ingest's), the pages
/// add their routes and leave everything else to it.
#[tokio::test]
async fn the_pages_merge_beside_a_router_with_a_fallback() {
    let scene = Scene::new(None).await;
    let api = Router::new()
        .route("/api/incidents", axum::routing::get(|| async { "api" }))
        .fallback(|| async { (StatusCode::NOT_FOUND, "api 404") });
    let router = api.merge(scene.router());

    assert_eq!(send(&router, get("/api/incidents", None)).await.2, "api");
    assert_eq!(send(&router, get("/nowhere", None)).await.2, "api 404");
    assert_eq!(send(&router, get("/", None)).await.0, StatusCode::OK);
    let (status, headers, css) = send(&router, get("/static/pages.css", None)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers["content-type"].starts_with("text/css"));
    assert!(css.contains("prefers-color-scheme: dark"));
    let (_, headers, _) = send(&router, get("/", None)).await;
    assert!(headers["content-security-policy"].contains("frame-ancestors 'none'"));
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["cache-control"], "no-store");
    let (_, headers, _) = send(&router, get("/nowhere", None)).await;
    assert!(
        !headers.contains_key("content-security-policy"),
        "ingest's own"
    );
    assert_eq!(
        send(&router, get("/incidents/nope", None)).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        send(&router, get("/pulls/99", None)).await.0,
        StatusCode::NOT_FOUND
    );
}

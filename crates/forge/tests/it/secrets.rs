//! Tokens stay secret: not in request bodies or URLs, not in the bare
//! repository's files or the source repository's config, not in logs (all
//! levels, octocrab's included), not in `Debug` output or error messages;
//! over HTTPS the push sends the token only in `Authorization`, once the
//! remote asked for credentials.

use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::IntoResponse;
use fakes::github::{self as gh, Fault};

use crate::support::*;

/// The whole flow with an App (so a JWT and a minted token exist) and with
/// a plain token, logs captured at TRACE, then every place a token could
/// leak is searched.
#[tokio::test]
async fn tokens_never_leak() {
    let logs = Logs::capture();
    let scene = Scene::new(true);
    let fake = fake_github(&scene).await;
    let app_forge = github_forge(&fake, &scene, app_auth());
    let token_forge = github_forge(&fake, &scene, token_auth());
    let opened = app_forge
        .open_pull_request(&scene.proposal("inc-1"), &scene.source)
        .await
        .unwrap();
    app_forge
        .close_issue(opened.tracking_issue.unwrap(), "done")
        .await
        .unwrap();
    token_forge
        .open_pull_request(&scene.proposal("inc-2"), &scene.source)
        .await
        .unwrap();
    fake.inject("GET", gh::PULL, Fault::status(401));
    let error = token_forge.pr_state(opened.number).await.unwrap_err();

    let mut secrets: Vec<String> = fake.issued_tokens();
    secrets.push(TOKEN.to_string());
    let key_lines: Vec<&str> = test_key()
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .collect();
    secrets.extend(key_lines.iter().map(|line| line.to_string()));
    let jwts: Vec<String> = fake
        .requests_to("POST", gh::ACCESS_TOKENS)
        .iter()
        .map(|r| {
            r.header("authorization")
                .unwrap()
                .trim_start_matches("Bearer ")
                .to_string()
        })
        .collect();
    secrets.extend(jwts);
    assert!(secrets.len() > 3);

    let leaks = |place: &str, text: &str| {
        for secret in &secrets {
            assert!(
                !text.contains(secret.as_str()),
                "a secret leaked into {place}"
            );
        }
    };
    for request in fake.requests() {
        leaks("a request body", &request.raw_body);
        leaks("a request path", &request.path);
    }
    for file in scene
        .object_files()
        .iter()
        .chain(std::iter::once(&scene.remote.join("config")))
    {
        leaks(
            "the bare repository",
            &String::from_utf8_lossy(&std::fs::read(file).unwrap()),
        );
    }
    let source_config = std::fs::read_to_string(scene.source.join(".git/config")).unwrap();
    leaks("the source repository's config", &source_config);
    assert!(
        !source_config.contains("remote"),
        "no remote was saved: {source_config}"
    );
    let log_text = logs.text();
    assert!(
        log_text.contains("pull request ready"),
        "logs were captured"
    );
    assert!(
        log_text.contains("HTTP"),
        "octocrab's spans were captured too"
    );
    leaks("the logs", &log_text);
    leaks(
        "Debug of the forge",
        &format!("{app_forge:?} {token_forge:?}"),
    );
    leaks(
        "Debug of the config",
        &format!("{:?}", config(&fake, &scene, app_auth())),
    );
    leaks("an error", &format!("{error} {error:?}"));
    assert_eq!(fake.errors(), Vec::<String>::new());
}

/// Over HTTPS (here plain HTTP to a stand-in of GitHub's git endpoint) the
/// token reaches the server only as `Basic x-access-token:<token>` after a
/// 401 challenge: never in a URL, and not in the error when the server
/// still refuses, which is a permanent 403 naming the branch.
#[tokio::test]
async fn https_pushes_carry_the_token_only_in_the_challenge_answer() {
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let recorded = seen.clone();
    let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap| {
        let recorded = recorded.clone();
        async move {
            let authorization = headers
                .get("authorization")
                .map(|v| v.to_str().unwrap().to_string());
            recorded
                .lock()
                .unwrap()
                .push((uri.to_string(), authorization.clone()));
            match authorization {
                None => (
                    StatusCode::UNAUTHORIZED,
                    [("www-authenticate", "Basic realm=\"GitHub\"")],
                )
                    .into_response(),
                Some(_) => StatusCode::FORBIDDEN.into_response(),
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let scene = Scene::new(false);
    let fake = fake_github(&scene).await;
    let mut config = config(&fake, &scene, token_auth());
    config.push_url = Some(format!("http://{addr}/acme/shop.git"));
    let forge = forge::GitHubForge::new(config).unwrap();

    let error = forge
        .push_fix_branch(&scene.proposal("inc-1"), &scene.source)
        .await
        .unwrap_err();

    let seen = seen.lock().unwrap().clone();
    assert!(seen.len() >= 2, "{seen:?}");
    assert_eq!(seen[0].1, None, "the first request carries no credentials");
    let expected = format!("Basic {}", base64(&format!("x-access-token:{TOKEN}")));
    assert!(
        seen.iter()
            .any(|(_, auth)| auth.as_deref() == Some(expected.as_str())),
        "{seen:?}"
    );
    for (uri, _) in &seen {
        assert!(uri.starts_with("/acme/shop.git/info/refs"), "{uri}");
        assert!(!uri.contains(TOKEN));
    }
    let message = format!("{error} {error:?}");
    assert!(!message.contains(TOKEN), "{message}");
    assert!(
        matches!(error, forge::ForgeError::Status { status: 403, .. }),
        "{error}"
    );
    assert_eq!(
        error.to_string(),
        "git remote answered 403 to push suture/inc-1-zero-division-in-checkout: \
         the token may not push to this repository"
    );
}

/// A request's URI and `Authorization` header.
type Seen = (String, Option<String>);

fn base64(text: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in text.as_bytes().chunks(3) {
        let n =
            chunk.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b)) << (8 * (3 - chunk.len()));
        for index in 0..4 {
            if index <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * index)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

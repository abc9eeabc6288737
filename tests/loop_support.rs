//! Support for the whole-loop scenarios: a GitHub world (the fake REST API
//! backed by a real bare repository that fix branches are pushed to) and a
//! fake Sentry API, the `suture.toml` pointing at them, signed webhook
//! deliveries, and the real `sentry-sdk` reporting a crash to the service.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use fakes::github::FakeGitHub;
use fakes::sentry::FakeSentry;
use tempfile::TempDir;

use crate::serve_support::{Serve, block_on, http};
use crate::{ScriptedRepo, python};

/// The GitHub token the fake accepts and the service is given.
pub const GITHUB_TOKEN: &str = "ghs_loopTestToken0123456789";
/// The webhook secret shared by the test and the service.
pub const WEBHOOK_SECRET: &str = "loop-webhook-secret";
/// The Sentry token the fake accepts.
pub const SENTRY_TOKEN: &str = "sntrys_loopTestToken";
/// The Sentry issue the application's crash is grouped into upstream.
pub const SENTRY_ISSUE: &str = "4242";

/// A fake GitHub and Sentry, and the bare repository fix branches go to.
pub struct World {
    /// `<dir>/git/acme/shop.git` is the repository's "GitHub" remote.
    pub dir: TempDir,
    /// The fake GitHub REST API for `acme/shop`.
    pub github: FakeGitHub,
    /// The fake Sentry API for organisation `acme`.
    pub sentry: FakeSentry,
    /// Whether suture acts as a GitHub App (else with a token).
    app: bool,
}

/// The GitHub App's id and its installation's, in App mode.
const APP: (u64, u64) = (42, 4242);

impl World {
    /// Starts the fakes; the bare remote holds `repo`'s `main`, as the
    /// repository on GitHub would. `collaborators` are `(login, role)`.
    pub fn new(repo: &ScriptedRepo, collaborators: &[(&str, &str)]) -> World {
        World::start(repo, collaborators, false)
    }

    /// [`World::new`], with suture acting as a GitHub App installed on the
    /// repository: JWT → installation token, its private key in a file.
    pub fn with_app(repo: &ScriptedRepo, collaborators: &[(&str, &str)]) -> World {
        World::start(repo, collaborators, true)
    }

    fn start(repo: &ScriptedRepo, collaborators: &[(&str, &str)], app: bool) -> World {
        let dir = tempfile::Builder::new()
            .prefix("suture-world-")
            .tempdir()
            .unwrap();
        let remote = dir.path().join("git/acme/shop.git");
        std::fs::create_dir_all(&remote).unwrap();
        let bare = git2::Repository::init_bare(&remote).unwrap();
        let source = git2::Repository::open(repo.path()).unwrap();
        let mut push = source.remote_anonymous(remote.to_str().unwrap()).unwrap();
        push.push(&["refs/heads/main:refs/heads/main"], None)
            .unwrap();
        bare.set_head("refs/heads/main").unwrap();
        let mut builder = FakeGitHub::builder("acme", "shop").git_dir(&remote);
        builder = if app {
            // A throwaway key: the fake checks the JWT's shape and claims.
            let key = Command::new("openssl")
                .args(["genrsa", "2048"])
                .output()
                .expect("the tests make a throwaway rsa key with the openssl cli");
            assert!(key.status.success(), "openssl genrsa failed");
            std::fs::write(dir.path().join("app.pem"), key.stdout).unwrap();
            builder.app(APP.0, APP.1)
        } else {
            builder.token(GITHUB_TOKEN)
        };
        for (login, role) in collaborators {
            builder = builder.collaborator(login, role);
        }
        let github = block_on(builder.start());
        let sentry = block_on(FakeSentry::start("acme", SENTRY_TOKEN, &[SENTRY_ISSUE]));
        World {
            dir,
            github,
            sentry,
            app,
        }
    }

    /// The bare repository fix branches are pushed to.
    pub fn remote(&self) -> PathBuf {
        self.dir.path().join("git/acme/shop.git")
    }

    /// `suture.toml` for `repo` on this world, with a quiet window of
    /// `quiet_seconds` and `extra` appended.
    pub fn config(
        &self,
        repo: &ScriptedRepo,
        test_command: &str,
        quiet_seconds: u64,
        extra: &str,
    ) -> String {
        let (app_id, installation) = if self.app {
            (
                format!("app_id = {}\n", APP.0),
                format!("github_installation_id = {}\n", APP.1),
            )
        } else {
            (String::new(), String::new())
        };
        format!(
            "[queue]\nlease_seconds = 6\nheartbeat_seconds = 1\npoll_millis = 100\nbackoff_seconds = 1\n\
             [verify]\nquiet_seconds = {quiet_seconds}\n\
             [github]\napi_url = \"{}\"\ngit_url = \"{}\"\nrequest_timeout_seconds = 2\n{app_id}\
             [sentry]\napi_url = \"{}\"\norganization = \"acme\"\n\
             {extra}\n\
             [[repos]]\nname = \"shop\"\npath = \"{}\"\nforge = \"github\"\ngithub_repo = \"acme/shop\"\n\
             test_command = \"{}\"\ndays = 30\nlearning_seconds = 0\n{installation}",
            self.github.base_url(),
            self.dir.path().join("git").display(),
            self.sentry.base_url(),
            repo.path().display(),
            test_command.replace('\\', "\\\\").replace('"', "\\\"")
        )
    }

    /// The environment the service needs for this world.
    pub fn env(&self) -> Vec<(String, String)> {
        let credentials = if self.app {
            (
                "SUTURE_GITHUB_APP_PRIVATE_KEY_FILE".to_owned(),
                self.dir.path().join("app.pem").display().to_string(),
            )
        } else {
            ("SUTURE_GITHUB_TOKEN".to_owned(), GITHUB_TOKEN.to_owned())
        };
        vec![
            credentials,
            ("SUTURE_GITHUB_WEBHOOK_SECRET".into(), WEBHOOK_SECRET.into()),
            ("SUTURE_SENTRY_API_TOKEN".into(), SENTRY_TOKEN.into()),
            ("SUTURE_LLM_BASE_URL".into(), String::new()),
        ]
    }

    /// Polls `done` on the fakes until it holds, for at most `limit`.
    pub fn wait(&self, limit: Duration, what: &str, done: impl Fn(&World) -> bool) {
        let deadline = Instant::now() + limit;
        while !done(self) {
            assert!(Instant::now() < deadline, "never happened: {what}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Delivers a GitHub webhook (`event` is the `X-GitHub-Event` name) to the
/// service, signed as GitHub signs it; returns the status.
pub fn deliver_github(serve: &Serve, event: &str, payload: &serde_json::Value) -> u16 {
    let body = payload.to_string();
    let signature = fakes::github::sign_github_webhook(WEBHOOK_SECRET, body.as_bytes());
    let delivery = format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let (status, _) = http(
        serve.addr,
        "POST",
        "/webhooks/github",
        &[
            ("X-GitHub-Event", event),
            ("X-GitHub-Delivery", &delivery),
            ("X-Hub-Signature-256", &signature),
            ("Content-Type", "application/json"),
        ],
        body.as_bytes(),
    );
    status
}

/// Runs `program` of `repo` under the real `sentry-sdk`, reporting its crash
/// to `dsn` as release `release`; returns the event id.
pub fn report_crash(dsn: &str, repo: &Path, program: &str, release: &str) -> String {
    report_crashes(dsn, repo, program, release, 1)
}

/// [`report_crash`] `count` times from one process (a burst of the same
/// error); returns the last event's id.
pub fn report_crashes(dsn: &str, repo: &Path, program: &str, release: &str, count: u32) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("support/report_crash.py");
    let output = Command::new(python())
        .arg(&script)
        .arg(dsn)
        .arg(program)
        .arg(release)
        .arg(count.to_string())
        .current_dir(repo)
        .output()
        .expect("running python");
    assert!(
        output.status.success(),
        "reporting a crash with sentry-sdk failed (the README's test command installs it): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let id = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    assert_eq!(id.len(), 32, "an event id: {id:?}");
    id
}

/// The commit `branch` points at in the bare repository `remote`.
pub fn branch_head(remote: &Path, branch: &str) -> Option<String> {
    let repo = git2::Repository::open_bare(remote).ok()?;
    let reference = repo.find_reference(&format!("refs/heads/{branch}")).ok()?;
    reference.target().map(|oid| oid.to_string())
}

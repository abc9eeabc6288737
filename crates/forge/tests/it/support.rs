//! The scene every forge test starts from: a real source repository with a
//! commit to fix, a real bare repository as the remote, a proven-looking
//! patch, a fake GitHub that reads branches from the bare repository, and
//! log capture.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use fakes::github::FakeGitHub;
use forge::{FixProposal, GitHubAuth, GitHubConfig, GitHubForge, RetryPolicy, SecretString};
use git2::{Repository, Signature};

pub(crate) const OWNER: &str = "acme";
pub(crate) const REPO: &str = "shop";
pub(crate) const TOKEN: &str = "ghp_plaintokenforthetests0000000000000";
pub(crate) const APP_ID: u64 = 4242;
pub(crate) const INSTALLATION_ID: u64 = 77;

pub(crate) const BUGGY: &str = "def total(items, count):\n    return sum(items) / count\n";
pub(crate) const FIXED: &str = "def total(items, count):\n    if count == 0:\n        return 0\n    return sum(items) / count\n";
pub(crate) const CODEOWNERS: &str =
    "# owners\n* @carol\napp/ @alice @acme/backend @other-org/ops\n";

/// A source repository (one commit on `main`) and a bare remote holding it.
pub(crate) struct Scene {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) source: PathBuf,
    pub(crate) remote: PathBuf,
    /// The commit the fix applies to.
    pub(crate) base: String,
    /// The fix, a unified diff against `base`.
    pub(crate) patch: String,
}

impl Scene {
    /// With or without `.github/CODEOWNERS`.
    pub(crate) fn new(with_codeowners: bool) -> Scene {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("source");
        let remote = dir.path().join("remote.git");
        let repo = Repository::init(&source).unwrap();
        write(&source, "app/checkout.py", BUGGY);
        write(&source, "README.md", "# shop\n");
        if with_codeowners {
            write(&source, ".github/CODEOWNERS", CODEOWNERS);
        }
        let base = commit_all(&repo, "add checkout");
        let bare = Repository::init_bare(&remote).unwrap();
        bare.set_head("refs/heads/main").unwrap();
        copy_objects(&repo, &bare);
        bare.reference("refs/heads/main", base.parse().unwrap(), true, "seed")
            .unwrap();
        let patch = git2::Patch::from_buffers(
            BUGGY.as_bytes(),
            Some(Path::new("app/checkout.py")),
            FIXED.as_bytes(),
            Some(Path::new("app/checkout.py")),
            None,
        )
        .unwrap()
        .to_buf()
        .unwrap()
        .as_str()
        .unwrap()
        .to_string();
        Scene {
            dir,
            source,
            remote,
            base,
            patch,
        }
    }

    /// The fix proposal of incident `incident`.
    pub(crate) fn proposal(&self, incident: &str) -> FixProposal {
        FixProposal {
            incident_id: incident.to_string(),
            slug: "zero division in checkout".to_string(),
            title: "Fix ZeroDivisionError in checkout total".to_string(),
            body_markdown: "## What broke\n\n`ZeroDivisionError` in `total`.\n\n## The fix\n\nRevert the culprit.\n".to_string(),
            patch: self.patch.clone(),
            base_revision: self.base.clone(),
            base_branch: "main".to_string(),
            strategy: "revert".to_string(),
            reproduced: true,
            touched_paths: vec!["app/checkout.py".to_string()],
            culprit_author_email: Some("bob@example.com".to_string()),
            culprit_author_login: Some("bob".to_string()),
            round: 1,
        }
    }

    /// The bare remote.
    pub(crate) fn remote_repo(&self) -> Repository {
        Repository::open_bare(&self.remote).unwrap()
    }

    /// `path` at the tip of `branch` in the bare remote.
    pub(crate) fn file_on(&self, branch: &str, path: &str) -> String {
        let repo = self.remote_repo();
        let commit = repo
            .find_reference(&format!("refs/heads/{branch}"))
            .unwrap()
            .peel_to_commit()
            .unwrap();
        let entry = commit.tree().unwrap().get_path(Path::new(path)).unwrap();
        let blob = repo.find_blob(entry.id()).unwrap();
        String::from_utf8(blob.content().to_vec()).unwrap()
    }

    /// The tip of `branch` in the bare remote.
    pub(crate) fn tip(&self, branch: &str) -> Option<String> {
        let repo = self.remote_repo();
        repo.find_reference(&format!("refs/heads/{branch}"))
            .ok()
            .map(|r| r.peel_to_commit().unwrap().id().to_string())
    }

    /// Every file in the bare remote's object store (a push adds some).
    pub(crate) fn object_files(&self) -> Vec<PathBuf> {
        fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(&path, out);
                } else {
                    out.push(path);
                }
            }
        }
        let mut files = Vec::new();
        walk(&self.remote.join("objects"), &mut files);
        files.sort();
        files
    }

    /// Commits a change to `main` of the bare remote (someone else's work
    /// landing after the fix was built).
    pub(crate) fn advance_main(&self, path: &str, contents: &str) -> String {
        let repo = self.remote_repo();
        let main = repo
            .find_reference("refs/heads/main")
            .unwrap()
            .peel_to_commit()
            .unwrap();
        let blob = repo.blob(contents.as_bytes()).unwrap();
        let tree = git2::build::TreeUpdateBuilder::new()
            .upsert(path, blob, git2::FileMode::Blob)
            .create_updated(&repo, &main.tree().unwrap())
            .unwrap();
        let tree = repo.find_tree(tree).unwrap();
        let signature = Signature::now("Dev", "dev@example.com").unwrap();
        repo.commit(
            Some("refs/heads/main"),
            &signature,
            &signature,
            "unrelated change",
            &tree,
            &[&main],
        )
        .unwrap()
        .to_string()
    }
}

/// Copies every object of `from` into `to`. The scene builds its remotes
/// without git2 remotes: forge registers its HTTP transport with libgit2 on
/// the first push, and that registration must not race another thread's
/// remote operation (see forge's `transport::register`).
pub(crate) fn copy_objects(from: &Repository, to: &Repository) {
    let (source, target) = (from.odb().unwrap(), to.odb().unwrap());
    source
        .foreach(|oid| {
            let object = source.read(*oid).unwrap();
            target.write(object.kind(), object.data()).unwrap();
            true
        })
        .unwrap();
}

pub(crate) fn write(root: &Path, path: &str, contents: &str) {
    let path = root.join(path);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, contents).unwrap();
}

pub(crate) fn commit_all(repo: &Repository, message: &str) -> String {
    let mut index = repo.index().unwrap();
    index
        .add_all(["*"].iter(), git2::IndexAddOption::DEFAULT, None)
        .unwrap();
    index.write().unwrap();
    let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
    let signature = Signature::now("Dev", "dev@example.com").unwrap();
    let parent = repo.head().ok().map(|head| head.peel_to_commit().unwrap());
    let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
    let oid = repo
        .commit(
            Some("HEAD"),
            &signature,
            &signature,
            message,
            &tree,
            &parents,
        )
        .unwrap();
    if repo.find_reference("refs/heads/main").is_err() {
        repo.reference("refs/heads/main", oid, true, "main")
            .unwrap();
        repo.set_head("refs/heads/main").unwrap();
    }
    oid.to_string()
}

/// A fake GitHub for `acme/shop` reading branches from the scene's remote:
/// alice and bob write, carol admin, team `backend`, the plain token and
/// the App accepted.
pub(crate) async fn fake_github(scene: &Scene) -> FakeGitHub {
    FakeGitHub::builder(OWNER, REPO)
        .git_dir(&scene.remote)
        .token(TOKEN)
        .app(APP_ID, INSTALLATION_ID)
        .collaborator("alice", "write")
        .collaborator("bob", "write")
        .collaborator("carol", "admin")
        .collaborator("tri", "triage")
        .team("backend")
        .start()
        .await
}

/// Retries as in production but with a short request timeout (paused-time
/// tests skip the waits anyway).
pub(crate) fn policy() -> RetryPolicy {
    RetryPolicy {
        request_timeout: Duration::from_secs(10),
        ..RetryPolicy::default()
    }
}

pub(crate) fn config(fake: &FakeGitHub, scene: &Scene, auth: GitHubAuth) -> GitHubConfig {
    let mut config = GitHubConfig::new(OWNER, REPO, auth);
    config.api_url = fake.base_url();
    config.push_url = Some(scene.remote.to_str().unwrap().to_string());
    config.retry = policy();
    config
}

pub(crate) fn token_auth() -> GitHubAuth {
    GitHubAuth::Token(SecretString::from(TOKEN.to_string()))
}

pub(crate) fn app_auth() -> GitHubAuth {
    GitHubAuth::App {
        app_id: APP_ID,
        installation_id: INSTALLATION_ID,
        private_key_pem: SecretString::from(test_key().to_string()),
    }
}

pub(crate) fn github_forge(fake: &FakeGitHub, scene: &Scene, auth: GitHubAuth) -> GitHubForge {
    GitHubForge::new(config(fake, scene, auth)).unwrap()
}

/// A 2048-bit RSA key made for this test run with the `openssl` CLI (test
/// only: the fake checks the JWT's shape, not its signature).
pub(crate) fn test_key() -> &'static str {
    static KEY: OnceLock<String> = OnceLock::new();
    KEY.get_or_init(|| {
        #[allow(clippy::disallowed_methods)] // a test key from the real openssl
        let output = std::process::Command::new("openssl")
            .args(["genrsa", "2048"])
            .output()
            .expect("the tests make a throwaway rsa key with the openssl cli");
        assert!(output.status.success(), "openssl genrsa failed");
        String::from_utf8(output.stdout).unwrap()
    })
}

/// Captures every log line (all levels, all targets, octocrab's too) from
/// the moment of `capture`. The subscriber is the test binary's global one,
/// so lines of tests running alongside are included: a leak check over a
/// superset is only stricter. (A thread-scoped subscriber misses events of
/// callsites whose interest another thread cached first.)
pub(crate) struct Logs {
    start: usize,
}

struct Sink;

fn buffer() -> &'static Mutex<Vec<u8>> {
    static BUFFER: OnceLock<Mutex<Vec<u8>>> = OnceLock::new();
    BUFFER.get_or_init(|| {
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(|| Sink)
            .finish();
        tracing::subscriber::set_global_default(subscriber)
            .expect("no other global subscriber in the forge tests");
        Mutex::new(Vec::new())
    })
}

impl Write for Sink {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        buffer().lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    pub(crate) fn capture() -> Logs {
        Logs {
            start: buffer().lock().unwrap().len(),
        }
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&buffer().lock().unwrap()[self.start..]).into_owned()
    }
}

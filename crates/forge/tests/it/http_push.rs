//! Fix-branch pushes over forge's own smart-HTTP transport: end to end
//! against the real `git http-backend` behind a tiny in-test HTTP server
//! (which asks for credentials, and answers chunked), with redirects, a
//! non-fast-forward, and a TLS server whose self-signed certificate the
//! push must refuse. Every server here listens on 127.0.0.1, answers a
//! bounded number of requests and stops by itself.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use forge::{ForgeError, GitHubForge};
use git2::Repository;

use crate::support::*;

/// How long a test server lives at most, whatever the test does.
const SERVER_LIFETIME: Duration = Duration::from_secs(60);
/// Connections a test server accepts at most.
const MAX_CONNECTIONS: usize = 16;

/// A request the server read.
#[derive(Debug, Clone)]
pub(crate) struct Seen {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// An answer to write.
pub(crate) struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn empty(status: u16, headers: &[(&str, &str)]) -> Answer {
        Answer {
            status,
            headers: headers
                .iter()
                .map(|(name, value)| (name.to_string(), value.to_string()))
                .collect(),
            body: Vec::new(),
        }
    }
}

pub(crate) type Handler = Box<dyn Fn(&Seen) -> Answer + Send>;

/// A server on 127.0.0.1 running `serve` on each accepted connection, one
/// at a time; it stops when dropped, after [`MAX_CONNECTIONS`], or after
/// [`SERVER_LIFETIME`].
pub(crate) struct Server<T> {
    pub(crate) addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Vec<T>>>,
}

impl<T: Send + 'static> Server<T> {
    fn start(serve: impl Fn(TcpStream) -> T + Send + 'static) -> Server<T> {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            let deadline = Instant::now() + SERVER_LIFETIME;
            let mut outcomes = Vec::new();
            while !stopping.load(Ordering::Relaxed)
                && Instant::now() < deadline
                && outcomes.len() < MAX_CONNECTIONS
            {
                match listener.accept() {
                    Ok((stream, _)) => {
                        stream.set_nonblocking(false).unwrap();
                        stream
                            .set_read_timeout(Some(Duration::from_secs(10)))
                            .unwrap();
                        outcomes.push(serve(stream));
                    }
                    Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err(error) => panic!("accept: {error}"),
                }
            }
            outcomes
        });
        Server {
            addr,
            stop,
            thread: Some(thread),
        }
    }

    /// Stops the server; what each connection gave.
    pub(crate) fn finish(mut self) -> Vec<T> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap()
    }
}

impl<T> Drop for Server<T> {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// An HTTP/1.1 server answering each request with `handler`; 200 answers
/// go chunked, as git hosts send them.
pub(crate) fn http_server(handler: Handler) -> Server<Seen> {
    Server::start(move |stream| {
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let seen = read_request(&mut reader);
        let answer = handler(&seen);
        write_answer(stream, &answer);
        seen
    })
}

fn read_request(reader: &mut impl BufRead) -> Seen {
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let mut parts = line.split_whitespace();
    let (method, target) = (
        parts.next().unwrap().to_string(),
        parts.next().unwrap().to_string(),
    );
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':').unwrap();
        headers.push((name.trim().to_string(), value.trim().to_string()));
    }
    let mut seen = Seen {
        method,
        target,
        headers,
        body: Vec::new(),
    };
    let length: usize = seen
        .header("content-length")
        .map_or(0, |length| length.parse().unwrap());
    seen.body = vec![0; length];
    reader.read_exact(&mut seen.body).unwrap();
    seen
}

fn write_answer(mut stream: TcpStream, answer: &Answer) {
    let mut head = format!("HTTP/1.1 {} X\r\nConnection: close\r\n", answer.status);
    for (name, value) in &answer.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    let chunked = answer.status == 200;
    if chunked {
        head.push_str("Transfer-Encoding: chunked\r\n\r\n");
    } else {
        head.push_str(&format!("Content-Length: {}\r\n\r\n", answer.body.len()));
    }
    let mut wire = head.into_bytes();
    if chunked {
        for chunk in answer.body.chunks(100) {
            wire.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
            wire.extend_from_slice(chunk);
            wire.extend_from_slice(b"\r\n");
        }
        wire.extend_from_slice(b"0\r\n\r\n");
    } else {
        wire.extend_from_slice(&answer.body);
    }
    // The client may have given up already.
    let _ = stream.write_all(&wire);
}

/// `Basic base64(x-access-token:<TOKEN>)`, what a push must send.
fn expected_authorization() -> String {
    use base64::Engine as _;
    let pair = format!("x-access-token:{TOKEN}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

/// Serves the bare repositories under `root` through `git http-backend`
/// (CGI) to requests carrying the token, as GitHub does: without it, a 401
/// challenge.
pub(crate) fn git_http_backend(root: PathBuf) -> impl Fn(&Seen) -> Answer + Send + 'static {
    move |seen| {
        if seen.header("authorization") != Some(expected_authorization().as_str()) {
            return Answer::empty(401, &[("WWW-Authenticate", "Basic realm=\"test\"")]);
        }
        let (path, query) = seen
            .target
            .split_once('?')
            .unwrap_or((seen.target.as_str(), ""));
        #[allow(clippy::disallowed_methods)] // the real git server side, in a test
        let mut child = std::process::Command::new("git")
            .arg("http-backend")
            .env("GIT_PROJECT_ROOT", &root)
            .env("GIT_HTTP_EXPORT_ALL", "1")
            .env("REQUEST_METHOD", &seen.method)
            .env("PATH_INFO", path)
            .env("QUERY_STRING", query)
            .env("CONTENT_TYPE", seen.header("content-type").unwrap_or(""))
            .env("CONTENT_LENGTH", seen.body.len().to_string())
            .env("REMOTE_USER", "x-access-token")
            .env("REMOTE_ADDR", "127.0.0.1")
            .env("GATEWAY_INTERFACE", "CGI/1.1")
            .env("SERVER_PROTOCOL", "HTTP/1.1")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("the tests run `git http-backend`");
        let mut stdin = child.stdin.take().unwrap();
        let body = seen.body.clone();
        let writer = std::thread::spawn(move || stdin.write_all(&body));
        let output = child.wait_with_output().unwrap();
        writer.join().unwrap().unwrap();
        cgi_answer(&output.stdout)
    }
}

/// A CGI program's output as an HTTP answer.
fn cgi_answer(output: &[u8]) -> Answer {
    let split = output
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|at| (at, 4))
        .or_else(|| {
            output
                .windows(2)
                .position(|w| w == b"\n\n")
                .map(|at| (at, 2))
        })
        .expect("a CGI head");
    let head = String::from_utf8_lossy(&output[..split.0]);
    let mut answer = Answer::empty(200, &[]);
    for line in head.lines() {
        let (name, value) = line.split_once(':').unwrap();
        if name.eq_ignore_ascii_case("status") {
            answer.status = value.trim()[..3].parse().unwrap();
        } else {
            answer
                .headers
                .push((name.trim().to_string(), value.trim().to_string()));
        }
    }
    answer.body = output[split.0 + split.1..].to_vec();
    answer
}

/// A forge whose pushes go to `push_url`; the fake GitHub reads branches
/// from the scene's remote.
pub(crate) async fn forge_pushing_to(
    scene: &Scene,
    push_url: String,
) -> (fakes::github::FakeGitHub, GitHubForge) {
    let fake = fake_github(scene).await;
    let mut config = config(&fake, scene, token_auth());
    config.push_url = Some(push_url);
    config.retry.push_connect_timeout = Duration::from_secs(10);
    config.retry.push_io_timeout = Duration::from_secs(20);
    let forge = GitHubForge::new(config).unwrap();
    (fake, forge)
}

/// (method, target, Authorization) of each request.
fn shapes(seen: &[Seen]) -> Vec<(String, String, Option<String>)> {
    seen.iter()
        .map(|seen| {
            (
                seen.method.clone(),
                seen.target.clone(),
                seen.header("authorization").map(str::to_string),
            )
        })
        .collect()
}

/// The whole push over plain HTTP against git's own server: the
/// advertisement is asked without credentials, the 401 is answered with
/// `Basic x-access-token:<token>`, the pack is POSTed with git's content
/// types and the credentials from the start, and the branch lands with the
/// fix.
#[tokio::test]
async fn a_push_over_smart_http_lands_the_branch() {
    let scene = Scene::new(false);
    let server = http_server(Box::new(git_http_backend(scene.dir.path().to_path_buf())));
    let (fake, forge) =
        forge_pushing_to(&scene, format!("http://{}/remote.git", server.addr)).await;
    let proposal = scene.proposal("inc-http");

    let sha = forge
        .push_fix_branch(&proposal, &scene.source)
        .await
        .unwrap();

    let seen = server.finish();
    assert_eq!(scene.tip(&proposal.branch()), Some(sha.clone()));
    assert_eq!(scene.file_on(&proposal.branch(), "app/checkout.py"), FIXED);
    let basic = expected_authorization();
    let refs = "/remote.git/info/refs?service=git-receive-pack".to_string();
    assert_eq!(
        shapes(&seen),
        [
            ("GET".to_string(), refs.clone(), None),
            ("GET".to_string(), refs, Some(basic.clone())),
            (
                "POST".to_string(),
                "/remote.git/git-receive-pack".to_string(),
                Some(basic)
            ),
        ]
    );
    let post = &seen[2];
    assert_eq!(
        post.header("content-type"),
        Some("application/x-git-receive-pack-request")
    );
    assert_eq!(
        post.header("accept"),
        Some("application/x-git-receive-pack-result")
    );
    assert!(!post.body.is_empty());
    for request in &seen {
        assert!(
            request.header("user-agent").unwrap().starts_with("git/"),
            "{request:?}"
        );
        assert!(!request.target.contains(TOKEN));
    }
    assert_eq!(fake.errors(), Vec::<String>::new());
}

/// A redirect of the advertisement on the same host moves the whole push
/// (the POST goes where the repository moved); a redirect to another host
/// is not followed and fails the push with its status, a permanent error.
#[tokio::test]
async fn redirects_are_followed_on_the_same_host_only() {
    let scene = Scene::new(false);
    let backend = git_http_backend(scene.dir.path().to_path_buf());
    let server = http_server(Box::new(move |seen: &Seen| {
        if let Some(rest) = seen.target.strip_prefix("/old.git") {
            return Answer::empty(301, &[("Location", &format!("/remote.git{rest}"))]);
        }
        if let Some(rest) = seen.target.strip_prefix("/away.git") {
            let location = format!("http://elsewhere.invalid/remote.git{rest}");
            return Answer::empty(302, &[("Location", &location)]);
        }
        backend(seen)
    }));
    let (fake, forge) = forge_pushing_to(&scene, format!("http://{}/old.git", server.addr)).await;
    let proposal = scene.proposal("inc-moved");
    let sha = forge
        .push_fix_branch(&proposal, &scene.source)
        .await
        .unwrap();
    assert_eq!(scene.tip(&proposal.branch()), Some(sha));
    assert_eq!(fake.errors(), Vec::<String>::new());

    let (_fake, away) = forge_pushing_to(&scene, format!("http://{}/away.git", server.addr)).await;
    let error = away
        .push_fix_branch(&scene.proposal("inc-away"), &scene.source)
        .await
        .unwrap_err();

    let seen = server.finish();
    let targets: Vec<(String, String)> = seen
        .iter()
        .map(|seen| (seen.method.clone(), seen.target.clone()))
        .collect();
    let get = |target: &str| ("GET".to_string(), target.to_string());
    assert_eq!(
        targets,
        [
            get("/old.git/info/refs?service=git-receive-pack"),
            get("/remote.git/info/refs?service=git-receive-pack"),
            get("/remote.git/info/refs?service=git-receive-pack"),
            (
                "POST".to_string(),
                "/remote.git/git-receive-pack".to_string()
            ),
            get("/away.git/info/refs?service=git-receive-pack"),
        ]
    );
    assert!(
        matches!(error, ForgeError::Status { status: 302, .. }),
        "{error}"
    );
    assert!(
        error.to_string().contains("same scheme, host and port"),
        "{error}"
    );
}

/// A branch that moved on the HTTP remote is not overwritten: the push is
/// refused as not a fast-forward, never forced.
#[tokio::test]
async fn a_non_fast_forward_over_http_is_rejected() {
    let scene = Scene::new(false);
    let proposal = scene.proposal("inc-nff");
    // The HTTP remote is another copy of the repository, whose fix branch
    // already holds someone else's commit.
    let root = scene.dir.path().join("served");
    let other = Repository::init_bare(root.join("other.git")).unwrap();
    copy_objects(&Repository::open(&scene.source).unwrap(), &other);
    let theirs = commit_on(&other, &scene.base, "README.md", "# theirs\n");
    other
        .reference(
            &format!("refs/heads/{}", proposal.branch()),
            theirs,
            true,
            "theirs",
        )
        .unwrap();
    let server = http_server(Box::new(git_http_backend(root)));
    let (_fake, forge) =
        forge_pushing_to(&scene, format!("http://{}/other.git", server.addr)).await;

    let error = forge
        .push_fix_branch(&proposal, &scene.source)
        .await
        .unwrap_err();

    server.finish();
    assert!(matches!(error, ForgeError::PushRejected { .. }), "{error}");
    assert_eq!(
        other
            .find_reference(&format!("refs/heads/{}", proposal.branch()))
            .unwrap()
            .target(),
        Some(theirs)
    );
}

/// A commit on `parent` in `repo` changing `path`.
fn commit_on(repo: &Repository, parent: &str, path: &str, contents: &str) -> git2::Oid {
    let parent = repo.find_commit(parent.parse().unwrap()).unwrap();
    let blob = repo.blob(contents.as_bytes()).unwrap();
    let tree = git2::build::TreeUpdateBuilder::new()
        .upsert(path, blob, git2::FileMode::Blob)
        .create_updated(repo, &parent.tree().unwrap())
        .unwrap();
    let tree = repo.find_tree(tree).unwrap();
    let signature = git2::Signature::now("Other", "other@example.com").unwrap();
    repo.commit(None, &signature, &signature, "theirs", &tree, &[&parent])
        .unwrap()
}

/// An HTTPS remote whose certificate no system CA signed (self-signed,
/// made here) is refused during the TLS handshake, on the client's side:
/// the server sees the handshake aborted and no request; the error names
/// the certificate and is permanent (`Invalid`), and nothing is pushed.
#[tokio::test]
async fn an_untrusted_certificate_refuses_the_push() {
    let scene = Scene::new(false);
    let server = tls_server();
    let (_fake, forge) = forge_pushing_to(
        &scene,
        format!("https://127.0.0.1:{}/acme/shop.git", server.addr.port()),
    )
    .await;
    let proposal = scene.proposal("inc-tls");

    let error = forge
        .push_fix_branch(&proposal, &scene.source)
        .await
        .unwrap_err();

    let handshakes = server.finish();
    match &error {
        ForgeError::Invalid { what, reason } => {
            assert_eq!(*what, "git remote");
            assert!(reason.contains("certificate"), "{reason}");
        }
        other => panic!("expected a certificate error, got {other:?}"),
    }
    assert!(!handshakes.is_empty());
    for handshake in &handshakes {
        let refused = handshake
            .as_ref()
            .expect_err("the client refused the handshake");
        assert!(refused.contains("alert"), "{refused}");
    }
    assert_eq!(scene.tip(&proposal.branch()), None);
}

/// A TLS server for 127.0.0.1 with a freshly made self-signed certificate;
/// each connection gives the server side's handshake outcome.
fn tls_server() -> Server<Result<(), String>> {
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![certified.cert.der().clone()], key)
            .unwrap(),
    );
    Server::start(move |mut stream| {
        let mut connection = rustls::ServerConnection::new(config.clone()).unwrap();
        while connection.is_handshaking() {
            connection
                .complete_io(&mut stream)
                .map_err(|error| error.to_string())?;
        }
        Ok(())
    })
}

//! git's smart HTTP protocol for fix-branch pushes, over our own HTTP
//! client, registered with libgit2 for `http://` and `https://` remotes.
//!
//! Why: libgit2 built with git2's `https` feature links OpenSSL, and its
//! initialisation (the first git2 call of a process, reading a local
//! repository included) has OpenSSL load and parse the system's whole CA
//! bundle: some 90 ms before any suture command, `--version` included, did
//! anything. libgit2 is now built without TLS, so its start is cheap, and
//! only a push pays for the network: this transport speaks HTTP/1.1 itself
//! ([`http1`]) with rustls, against the system's CA certificates, read on
//! the first HTTPS push of the process.
//!
//! The protocol (git's `gitprotocol-http`, smart flavour only; libgit2
//! does the pkt-line and pack work and calls [`SmartHttp`] for bytes, one
//! stream per request, as git2-curl does):
//!
//! - `GET <repo>/info/refs?service=git-receive-pack` (or
//!   `git-upload-pack`) answers `application/x-git-receive-pack-advertisement`;
//! - `POST <repo>/git-receive-pack` with an
//!   `application/x-git-receive-pack-request` body answers
//!   `application/x-git-receive-pack-result`. libgit2 writes the whole
//!   request before it reads, so writes are buffered and the request is
//!   sent on the first read.
//!
//! Credentials: the token of the push under way reaches the transport
//! through a [`PushScope`], a thread-local set around `Remote::push` (libgit2
//! calls transports synchronously, on the pushing thread), never through the
//! URL. As git does, a request first goes without credentials; when the
//! remote answers 401 it is sent again with `Authorization: Basic`
//! (`x-access-token:<token>`), and later requests of the same push carry it
//! from the start. The header is built per request and never logged.
//!
//! Failures: HTTP errors, untrusted certificates and answers that are not
//! git's are recorded in the scope as a [`Failure`], which the push turns
//! into a [`ForgeError`] after libgit2 gives up: statuses as
//! [`ForgeError::Status`] (4xx permanent, 5xx transient), certificates as
//! [`ForgeError::Invalid`] (retrying cannot mend them), foreign answers as
//! [`ForgeError::Protocol`]. Connection failures and timeouts stay libgit2's
//! [`ForgeError::Git`], which callers retry.
//!
//! Redirects: only the first request of a push (`info/refs`) follows them,
//! at most [`MAX_REDIRECTS`], and only to the same scheme, host and port
//! (so the token never leaves the host it was meant for); the rest of the
//! push goes where that request ended. A redirect elsewhere, or of a later
//! request, is a failure naming its status.

mod http1;

use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use base64::Engine as _;
use git2::transport::{Service, SmartSubtransport, SmartSubtransportStream, Transport};
use octocrab::secrecy::{ExposeSecret, SecretString};

use crate::error::ForgeError;

/// Redirects the first request of a push may follow.
const MAX_REDIRECTS: usize = 3;

/// Sent as `User-Agent`: git hosts look for the `git/` prefix to speak the
/// smart protocol.
const USER_AGENT: &str = "git/2.0 (suture)";

/// How long a push waits on the remote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Timeouts {
    /// For a TCP connection to be accepted.
    pub(crate) connect: Duration,
    /// For each read or write once connected (the TLS handshake included).
    pub(crate) io: Duration,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts {
            connect: Duration::from_secs(30),
            io: Duration::from_secs(120),
        }
    }
}

/// Registers this transport with libgit2 for `http` and `https`, once per
/// process; every later call returns the first one's outcome.
///
/// Called before every remote operation forge makes (local paths too),
/// which is what makes the registration sound: see the comment inside.
pub(crate) fn register() -> Result<(), ForgeError> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    let outcome = REGISTERED.get_or_init(|| {
        for scheme in ["http", "https"] {
            // SAFETY: `git2::transport::register` is unsafe because libgit2
            // keeps custom transports in an unsynchronised global list,
            // which every remote operation (push, fetch, clone; local paths
            // included) reads to find its transport: registering while
            // another thread does so is a data race. Every remote operation
            // forge makes calls `register` first; `OnceLock` runs this
            // closure once and makes every caller, on any thread, wait for
            // it and see its writes, so none of forge's reads overlaps the
            // write. The rest of suture connects no remote (`repo` only
            // reads repositories), and forge's tests build their remotes
            // without git2 remotes. Code that connected git2 remotes on
            // another thread during forge's first push would break this.
            let registered = unsafe {
                git2::transport::register(scheme, |remote| {
                    Transport::smart(remote, true, SmartHttp::for_this_push())
                })
            };
            registered.map_err(|error| {
                format!(
                    "registering the {scheme} transport with libgit2: {}",
                    error.message()
                )
            })?;
        }
        Ok(())
    });
    outcome.clone().map_err(|reason| ForgeError::Git {
        context: "setting up git over HTTP".to_string(),
        source: git2::Error::from_str(&reason),
    })
}

/// Why the remote refused or failed a push, as the transport saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
    /// An HTTP status other than success (and than a 401 that credentials
    /// answered).
    Status { status: u16, message: String },
    /// The remote's TLS certificate is not trusted, or there is nothing to
    /// check it against.
    Certificate { reason: String },
    /// The remote answered something that is not git's smart protocol.
    Protocol { reason: String },
}

impl Failure {
    /// The error of a push of `branch` that failed this way.
    pub(crate) fn into_error(self, branch: &str) -> ForgeError {
        let operation = format!("push {branch}");
        match self {
            Failure::Status { status, message } => ForgeError::Status {
                service: "git remote",
                operation,
                status,
                message,
            },
            Failure::Certificate { reason } => ForgeError::Invalid {
                what: "git remote",
                reason: format!("its TLS certificate is not trusted: {reason}"),
            },
            Failure::Protocol { reason } => ForgeError::Protocol {
                service: "git remote",
                operation,
                reason,
            },
        }
    }
}

/// What the transport needs to know about the push under way.
struct Session {
    token: Option<SecretString>,
    timeouts: Timeouts,
    /// The remote asked for credentials: from now on every request of this
    /// push carries them instead of being refused first.
    challenged: AtomicBool,
    /// The first failure, for the push's error.
    failure: Mutex<Option<Failure>>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("token", &self.token.as_ref().map(|_| "[redacted]"))
            .field("timeouts", &self.timeouts)
            .finish_non_exhaustive()
    }
}

impl Session {
    fn new(token: Option<&SecretString>, timeouts: Timeouts) -> Session {
        Session {
            token: token.cloned(),
            timeouts,
            challenged: AtomicBool::new(false),
            failure: Mutex::new(None),
        }
    }

    fn record(&self, failure: Failure) {
        let mut slot = self.failure.lock().unwrap_or_else(PoisonError::into_inner);
        slot.get_or_insert(failure);
    }

    /// `Basic base64(x-access-token:<token>)`, built anew for each request.
    fn authorization(&self) -> Option<String> {
        let token = self.token.as_ref()?;
        let pair = format!("x-access-token:{}", token.expose_secret());
        Some(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        ))
    }

    /// `text` with the token (bare or as sent) blanked, should a server
    /// echo it back.
    fn redact(&self, text: &str) -> String {
        let (Some(token), Some(header)) = (&self.token, self.authorization()) else {
            return text.to_string();
        };
        let encoded = header.trim_start_matches("Basic ");
        let mut text = text.to_string();
        for secret in [token.expose_secret(), encoded] {
            if !secret.is_empty() {
                text = text.replace(secret, "[redacted]");
            }
        }
        text
    }
}

thread_local! {
    /// The push under way on this thread, if any.
    static CURRENT: RefCell<Option<Arc<Session>>> = const { RefCell::new(None) };
}

/// The token and timeouts of the push under way on this thread, for the
/// transports libgit2 creates during `Remote::push`. Dropping it ends the
/// push (it is not `Send`: it ends on the thread it began on).
pub(crate) struct PushScope {
    session: Arc<Session>,
    previous: Option<Arc<Session>>,
    _thread_bound: PhantomData<*const ()>,
}

impl std::fmt::Debug for PushScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushScope")
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

impl PushScope {
    /// Begins a push on this thread with `token` (none for local remotes)
    /// and `timeouts`.
    pub(crate) fn enter(token: Option<&SecretString>, timeouts: Timeouts) -> PushScope {
        let session = Arc::new(Session::new(token, timeouts));
        let previous = CURRENT.with(|current| current.replace(Some(session.clone())));
        PushScope {
            session,
            previous,
            _thread_bound: PhantomData,
        }
    }

    /// The first failure the transport recorded during this push.
    pub(crate) fn failure(&self) -> Option<Failure> {
        self.session
            .failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Drop for PushScope {
    fn drop(&mut self) {
        let previous = self.previous.take();
        CURRENT.with(|current| current.replace(previous));
    }
}

/// One libgit2 transport instance: the requests of one remote operation.
struct SmartHttp {
    session: Arc<Session>,
    /// After the first request was redirected: the URL libgit2 asks for and
    /// the one the repository answers at.
    moved: Arc<Mutex<Option<(String, String)>>>,
}

impl SmartHttp {
    /// For the push under way on this thread; outside one (git2 used for
    /// HTTP by other code), no credentials and the default timeouts.
    fn for_this_push() -> SmartHttp {
        let session = CURRENT
            .with(|current| current.borrow().clone())
            .unwrap_or_else(|| Arc::new(Session::new(None, Timeouts::default())));
        SmartHttp {
            session,
            moved: Arc::default(),
        }
    }
}

impl SmartSubtransport for SmartHttp {
    fn action(
        &self,
        url: &str,
        action: Service,
    ) -> Result<Box<dyn SmartSubtransportStream>, git2::Error> {
        let asked = url.trim_end_matches('/').to_string();
        let base = match &*self.moved.lock().unwrap_or_else(PoisonError::into_inner) {
            Some((from, to)) if *from == asked => to.clone(),
            _ => asked.clone(),
        };
        Ok(Box::new(Exchange {
            session: self.session.clone(),
            moved: self.moved.clone(),
            asked,
            base,
            kind: Kind::of(action),
            request: Vec::new(),
            response: None,
        }))
    }

    fn close(&self) -> Result<(), git2::Error> {
        Ok(())
    }
}

/// The four requests of the smart protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Kind {
    /// `git-upload-pack` or `git-receive-pack`.
    service: &'static str,
    /// The reference advertisement (`GET info/refs`), else the `POST`.
    advertisement: bool,
}

impl Kind {
    fn of(action: Service) -> Kind {
        let (service, advertisement) = match action {
            Service::UploadPackLs => ("git-upload-pack", true),
            Service::UploadPack => ("git-upload-pack", false),
            Service::ReceivePackLs => ("git-receive-pack", true),
            Service::ReceivePack => ("git-receive-pack", false),
        };
        Kind {
            service,
            advertisement,
        }
    }

    /// What follows the repository URL.
    fn suffix(self) -> String {
        if self.advertisement {
            format!("/info/refs?service={}", self.service)
        } else {
            format!("/{}", self.service)
        }
    }

    /// The content type a smart server answers with.
    fn answer_type(self) -> String {
        if self.advertisement {
            format!("application/x-{}-advertisement", self.service)
        } else {
            format!("application/x-{}-result", self.service)
        }
    }
}

/// One request: written by libgit2, sent on its first read, then read.
struct Exchange {
    session: Arc<Session>,
    moved: Arc<Mutex<Option<(String, String)>>>,
    /// The repository URL libgit2 asked for.
    asked: String,
    /// Where the request goes (`asked`, or where a redirect moved it).
    base: String,
    kind: Kind,
    request: Vec<u8>,
    response: Option<http1::Body>,
}

impl Write for Exchange {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.response.is_some() {
            return Err(io::Error::other("git wrote after reading the answer"));
        }
        self.request.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Read for Exchange {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let timeouts = self.session.timeouts;
        let body = match &mut self.response {
            Some(body) => body,
            None => {
                let body = self.send()?;
                self.response.insert(body)
            }
        };
        body.read(buf).map_err(|error| stalled(error, timeouts))
    }
}

impl Exchange {
    /// Sends the request (following a redirect of the advertisement, and
    /// answering a credentials challenge once) and returns the answer's
    /// body, or records why there is none.
    fn send(&mut self) -> io::Result<http1::Body> {
        let kind = self.kind;
        let suffix = kind.suffix();
        let accept = if kind.advertisement {
            "*/*".to_string()
        } else {
            kind.answer_type()
        };
        let request_type = format!("application/x-{}-request", kind.service);
        let mut url = format!("{}{suffix}", self.base);
        let mut redirects = 0;
        loop {
            let target = http1::Target::parse(&url).map_err(|error| self.fail_with(&error))?;
            let authorization = if self.session.challenged.load(Ordering::Relaxed) {
                self.session.authorization()
            } else {
                None
            };
            let mut headers: Vec<(&'static str, &str)> =
                vec![("User-Agent", USER_AGENT), ("Accept", &accept)];
            if kind.advertisement {
                headers.push(("Pragma", "no-cache"));
            } else {
                headers.push(("Content-Type", &request_type));
            }
            if let Some(authorization) = &authorization {
                headers.push(("Authorization", authorization));
            }
            let request = http1::Request {
                method: if kind.advertisement { "GET" } else { "POST" },
                target: &target,
                headers: &headers,
                body: (!kind.advertisement).then_some(self.request.as_slice()),
            };
            let response = http1::send(&request, self.session.timeouts)
                .map_err(|error| self.fail_with(&error))?;
            tracing::debug!(
                service = kind.service,
                advertisement = kind.advertisement,
                status = response.status,
                "git remote answered"
            );
            match response.status {
                200..=299 => return self.check_type(response),
                301 | 302 | 303 | 307 | 308 if kind.advertisement => {
                    let location = response.header("location").unwrap_or_default();
                    let message = match redirected(&target, location, &suffix) {
                        Some(base) if redirects < MAX_REDIRECTS => {
                            redirects += 1;
                            url = format!("{base}{suffix}");
                            *self.moved.lock().unwrap_or_else(PoisonError::into_inner) =
                                Some((self.asked.clone(), base.clone()));
                            self.base = base;
                            continue;
                        }
                        Some(_) => format!("the remote redirects more than {MAX_REDIRECTS} times"),
                        None => "the remote redirects elsewhere; pushes follow redirects only \
                                 within the same scheme, host and port"
                            .to_string(),
                    };
                    return Err(self.fail(Failure::Status {
                        status: response.status,
                        message,
                    }));
                }
                // The challenge: ask again, this time with the token.
                401 if self.session.token.is_some()
                    && !self.session.challenged.load(Ordering::Relaxed) =>
                {
                    self.session.challenged.store(true, Ordering::Relaxed);
                }
                status => {
                    let server = self
                        .session
                        .redact(&summary(&response.body.text_start(2048)));
                    let reason = refusal(status, self.session.token.is_some());
                    let message = if server.is_empty() {
                        reason
                    } else {
                        format!("{reason}: {server}")
                    };
                    return Err(self.fail(Failure::Status { status, message }));
                }
            }
        }
    }

    fn check_type(&self, response: http1::Response) -> io::Result<http1::Body> {
        let expected = self.kind.answer_type();
        let got = response
            .header("content-type")
            .unwrap_or_default()
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        if got == expected {
            return Ok(response.body);
        }
        Err(self.fail(Failure::Protocol {
            reason: format!(
                "the remote does not speak git's smart HTTP protocol (it answered {:?}, not {expected})",
                if got.is_empty() { "no content type" } else { got.as_str() },
            ),
        }))
    }

    /// Records `failure` and returns the error libgit2 reports for it.
    fn fail(&self, failure: Failure) -> io::Error {
        let text = match &failure {
            Failure::Status { status, message } => {
                format!("the remote answered {status}: {message}")
            }
            Failure::Certificate { reason } => {
                format!("the remote's TLS certificate is not trusted: {reason}")
            }
            Failure::Protocol { reason } => reason.clone(),
        };
        self.session.record(failure);
        io::Error::other(text)
    }

    /// The error of a request that got no answer: certificates and unusable
    /// URLs are recorded (retrying cannot mend them), connection failures
    /// and timeouts are left to libgit2's error.
    fn fail_with(&self, error: &http1::Error) -> io::Error {
        match error {
            http1::Error::Certificate(reason) => self.fail(Failure::Certificate {
                reason: reason.clone(),
            }),
            http1::Error::Url(_) | http1::Error::Protocol(_) => self.fail(Failure::Protocol {
                reason: error.to_string(),
            }),
            http1::Error::Io(io) | http1::Error::Connect(io) if timed_out(io) => io::Error::new(
                io::ErrorKind::TimedOut,
                timeout_text(error, self.session.timeouts),
            ),
            _ => io::Error::other(error.to_string()),
        }
    }
}

/// The text for an HTTP refusal of a push.
fn refusal(status: u16, has_token: bool) -> String {
    match (status, has_token) {
        (401, false) => "the remote asks for credentials and none are configured".to_string(),
        (401, true) => "the remote refused the token".to_string(),
        (403, true) => "the token may not push to this repository".to_string(),
        (403, false) => "the remote refused access".to_string(),
        (404, _) => "no repository at the push URL (or the token cannot see it)".to_string(),
        (300..=399, _) => "the remote redirects the push itself; it is not followed".to_string(),
        (500..=599, _) => "the remote failed".to_string(),
        _ => "the remote refused the push".to_string(),
    }
}

/// A server's error text, on one line and short.
fn summary(text: &str) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() <= 200 {
        line
    } else {
        let cut: String = line.chars().take(200).collect();
        format!("{cut}…")
    }
}

/// Where a redirect of `from` (a URL ending in `suffix`) to `location`
/// moves the repository: `None` unless it stays on the same scheme, host
/// and port and keeps the suffix (git's rule).
fn redirected(from: &http1::Target, location: &str, suffix: &str) -> Option<String> {
    let absolute = if location.starts_with('/') && !location.starts_with("//") {
        // Relative to the same origin.
        format!("{}{location}", from.origin())
    } else {
        location.to_string()
    };
    let to = http1::Target::parse(&absolute).ok()?;
    if !from.same_origin(&to) {
        return None;
    }
    absolute
        .strip_suffix(suffix)
        .map(|base| base.trim_end_matches('/').to_string())
}

fn timed_out(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
    )
}

fn timeout_text(error: &http1::Error, timeouts: Timeouts) -> String {
    match error {
        http1::Error::Connect(_) => format!(
            "the remote did not accept a connection within {} s",
            timeouts.connect.as_secs_f32()
        ),
        _ => format!(
            "the remote did not answer within {} s",
            timeouts.io.as_secs_f32()
        ),
    }
}

/// A body read that failed: a timeout reads as one.
fn stalled(error: io::Error, timeouts: Timeouts) -> io::Error {
    if timed_out(&error) {
        io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "the remote stopped answering for {} s",
                timeouts.io.as_secs_f32()
            ),
        )
    } else {
        error
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The four requests' paths and content types.
    #[test]
    fn request_shapes() {
        let ls = Kind::of(Service::ReceivePackLs);
        assert_eq!(ls.suffix(), "/info/refs?service=git-receive-pack");
        assert_eq!(
            ls.answer_type(),
            "application/x-git-receive-pack-advertisement"
        );
        let pack = Kind::of(Service::ReceivePack);
        assert_eq!(pack.suffix(), "/git-receive-pack");
        assert_eq!(pack.answer_type(), "application/x-git-receive-pack-result");
        let fetch = Kind::of(Service::UploadPack);
        assert_eq!(fetch.suffix(), "/git-upload-pack");
        assert_eq!(fetch.answer_type(), "application/x-git-upload-pack-result");
    }

    /// Redirects stay on the same scheme, host and port and keep the
    /// request's suffix; the repository moves to what precedes it.
    #[test]
    fn redirects_stay_home() {
        let suffix = "/info/refs?service=git-receive-pack";
        let from = http1::Target::parse(&format!("https://github.com/acme/shop{suffix}")).unwrap();
        assert_eq!(
            redirected(
                &from,
                &format!("https://GITHUB.com/acme/shop.git{suffix}"),
                suffix
            ),
            Some("https://GITHUB.com/acme/shop.git".to_string())
        );
        assert_eq!(
            redirected(&from, &format!("/acme/renamed.git{suffix}"), suffix),
            Some("https://github.com/acme/renamed.git".to_string())
        );
        for elsewhere in [
            format!("https://evil.example/acme/shop.git{suffix}"),
            format!("http://github.com/acme/shop.git{suffix}"),
            format!("https://github.com:8443/acme/shop.git{suffix}"),
            format!("//evil.example/acme/shop.git{suffix}"),
            "https://github.com/login".to_string(),
            String::new(),
        ] {
            assert_eq!(redirected(&from, &elsewhere, suffix), None, "{elsewhere}");
        }
    }

    /// The header is `Basic base64(x-access-token:<token>)`; the token is
    /// blanked from server text and absent from `Debug`.
    #[test]
    fn credentials() {
        let token = SecretString::from("ghs_abc".to_string());
        let session = Session::new(Some(&token), Timeouts::default());
        assert_eq!(
            session.authorization().as_deref(),
            Some("Basic eC1hY2Nlc3MtdG9rZW46Z2hzX2FiYw==")
        );
        assert_eq!(
            session.redact("denied for ghs_abc (eC1hY2Nlc3MtdG9rZW46Z2hzX2FiYw==)."),
            "denied for [redacted] ([redacted])."
        );
        let scope = PushScope::enter(Some(&token), Timeouts::default());
        assert!(!format!("{scope:?}").contains("ghs_abc"));
        assert!(
            Session::new(None, Timeouts::default())
                .authorization()
                .is_none()
        );
    }

    /// A scope is seen by transports created on its thread while it lasts,
    /// and the previous one comes back after it.
    #[test]
    fn scopes_nest_per_thread() {
        let outer = PushScope::enter(None, Timeouts::default());
        {
            let inner_timeouts = Timeouts {
                connect: Duration::from_secs(1),
                io: Duration::from_secs(2),
            };
            let _inner = PushScope::enter(None, inner_timeouts);
            assert_eq!(SmartHttp::for_this_push().session.timeouts, inner_timeouts);
            let elsewhere = std::thread::spawn(|| SmartHttp::for_this_push().session.timeouts)
                .join()
                .unwrap();
            assert_eq!(elsewhere, Timeouts::default());
        }
        assert!(Arc::ptr_eq(
            &SmartHttp::for_this_push().session,
            &outer.session
        ));
        outer.session.record(Failure::Protocol {
            reason: "first".into(),
        });
        outer.session.record(Failure::Protocol {
            reason: "second".into(),
        });
        assert_eq!(
            outer.failure(),
            Some(Failure::Protocol {
                reason: "first".into()
            })
        );
    }

    /// Server text is one short line.
    #[test]
    fn summaries() {
        assert_eq!(
            summary("  Permission to acme/shop.git\n denied.\n"),
            "Permission to acme/shop.git denied."
        );
        assert_eq!(summary(&"x".repeat(300)).chars().count(), 201);
    }
}

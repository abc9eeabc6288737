//! Who may look and act, and that an action came from our own form.
//!
//! With `SUTURE_API_TOKEN` set, `/signin` takes the token once and sets a
//! session cookie (`HttpOnly`, `SameSite=Strict`, [`SESSION_HOURS`]
//! hours). The cookie holds a signed session, never the token: an expiry
//! and a random nonce with their HMAC under a per-process secret, so a
//! restart signs everyone out and nothing stored in a browser opens the
//! API. Without a session, a page redirects to `/signin` and an action is
//! refused with 403. Without a token the pages are open, as the API is
//! (the service refuses to listen beyond loopback without one unless
//! `server.allow_open_api`).
//!
//! Every form carries a CSRF token: the HMAC of the session (or of a
//! fixed label while the pages are open, or for the sign-in form) under
//! the same secret. Another site can neither read it nor, with
//! `SameSite=Strict`, send the cookie; a POST without a valid token is
//! refused with 403 before its form is read.

use axum::extract::{Form, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use hmac::{Hmac, KeyInit, Mac};
use maud::html;
use serde::Deserialize;
use sha2::Sha256;

use crate::{Pages, PagesError, layout};

type HmacSha256 = Hmac<Sha256>;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "suture_session";

/// How long a session lasts.
pub const SESSION_HOURS: i64 = 12;

/// What a CSRF token binds to while the pages are open (no API token).
const OPEN_BINDING: &str = "open";

/// What the sign-in form's CSRF token binds to (there is no session yet).
const SIGNIN_BINDING: &str = "signin";

/// The per-process secret and the API token sessions are opened with.
pub(crate) struct Keys {
    secret: [u8; 32],
    token: Option<String>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("secret", &"<redacted>")
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .finish()
    }
}

impl Keys {
    /// Draws a fresh secret; `token` is the API token, when set.
    pub(crate) fn new(token: Option<String>) -> Result<Keys, PagesError> {
        let mut secret = [0u8; 32];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut random| std::io::Read::read_exact(&mut random, &mut secret))
            .map_err(PagesError::Random)?;
        Ok(Keys {
            secret,
            token: token.filter(|token| !token.is_empty()),
        })
    }

    fn mac(&self, label: &str, value: &str) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.secret).expect("hmac takes any key length");
        mac.update(label.as_bytes());
        mac.update(b"\0");
        mac.update(value.as_bytes());
        mac
    }

    fn sign(&self, label: &str, value: &str) -> String {
        hex::encode(self.mac(label, value).finalize().into_bytes())
    }

    /// Whether `signature` (hex) is `value`'s under `label`, compared in
    /// constant time.
    fn verify(&self, label: &str, value: &str, signature: &str) -> bool {
        hex::decode(signature)
            .is_ok_and(|bytes| self.mac(label, value).verify_slice(&bytes).is_ok())
    }

    /// Whether the pages need a session.
    pub(crate) fn required(&self) -> bool {
        self.token.is_some()
    }

    /// Whether `given` is the API token; compared through HMAC so the
    /// time taken says nothing about a matching prefix.
    fn token_matches(&self, given: &str) -> bool {
        self.token.as_deref().is_some_and(|token| {
            let expected = self.sign("api-token", token);
            self.verify("api-token", given, &expected)
        })
    }

    /// A new session valid until `expires` (Unix seconds).
    fn new_session(&self, expires: i64) -> Result<String, PagesError> {
        let mut nonce = [0u8; 16];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut random| std::io::Read::read_exact(&mut random, &mut nonce))
            .map_err(PagesError::Random)?;
        let body = format!("{expires}.{}", hex::encode(nonce));
        let signature = self.sign("session", &body);
        Ok(format!("{body}.{signature}"))
    }

    /// Whether `cookie` is a session this process signed that has not
    /// expired at `now` (Unix seconds).
    fn session_valid(&self, cookie: &str, now: i64) -> bool {
        let Some((body, signature)) = cookie.rsplit_once('.') else {
            return false;
        };
        let Some(expires) = body
            .split_once('.')
            .and_then(|(e, _)| e.parse::<i64>().ok())
        else {
            return false;
        };
        expires > now && self.verify("session", body, signature)
    }

    /// The CSRF token of forms shown with `binding`.
    pub(crate) fn csrf(&self, binding: &str) -> String {
        self.sign("csrf", binding)
    }
}

/// Who is looking: what their forms' CSRF tokens bind to, and whether
/// they are signed in. Set on every request by [`require_session`].
#[derive(Debug, Clone)]
pub(crate) struct Viewer {
    binding: String,
    signed_in: bool,
}

impl Viewer {
    /// The CSRF token for this viewer's forms.
    pub(crate) fn csrf(&self, keys: &Keys) -> String {
        keys.csrf(&self.binding)
    }

    /// The sign-out form's token, when there is a session to end.
    pub(crate) fn signout(&self, keys: &Keys) -> Option<String> {
        self.signed_in.then(|| self.csrf(keys))
    }

    /// Refuses an action whose form did not carry this viewer's token.
    pub(crate) fn check(&self, keys: &Keys, given: Option<&str>) -> Result<(), PagesError> {
        match given {
            Some(given) if keys.verify("csrf", &self.binding, given) => Ok(()),
            Some(_) => Err(PagesError::Forbidden(
                "the form's CSRF token is not valid; reload the page and try again",
            )),
            None => Err(PagesError::Forbidden("the form carries no CSRF token")),
        }
    }
}

/// The session cookie's value in `headers`, when there is one.
fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value)
}

/// Lets a request through with its [`Viewer`], or sends it to sign in
/// (a page) or refuses it (an action).
pub(crate) async fn require_session(
    State(pages): State<Pages>,
    mut request: Request,
    next: Next,
) -> Response {
    let keys = pages.keys();
    let path = request.uri().path();
    let public = path == "/signin" || path.starts_with("/static/");
    let viewer = if !keys.required() {
        Some(Viewer {
            binding: OPEN_BINDING.to_owned(),
            signed_in: false,
        })
    } else {
        session_cookie(request.headers())
            .filter(|cookie| keys.session_valid(cookie, chrono::Utc::now().timestamp()))
            .map(|cookie| Viewer {
                binding: cookie.to_owned(),
                signed_in: true,
            })
    };
    let viewer = match viewer {
        Some(viewer) => viewer,
        None if public => Viewer {
            binding: SIGNIN_BINDING.to_owned(),
            signed_in: false,
        },
        None if request.method() == Method::GET || request.method() == Method::HEAD => {
            let wanted = request
                .uri()
                .path_and_query()
                .map_or("/", |target| target.as_str());
            return Redirect::to(&format!("/signin?next={}", percent_encode(wanted)))
                .into_response();
        }
        None => {
            return PagesError::Forbidden("sign in first: this action needs a session")
                .into_response();
        }
    };
    request.extensions_mut().insert(viewer);
    next.run(request).await
}

/// Query of `GET /signin`.
#[derive(Debug, Deserialize)]
pub(crate) struct SigninQuery {
    next: Option<String>,
}

/// `GET /signin`: the sign-in form.
pub(crate) async fn signin_page(
    State(pages): State<Pages>,
    Query(query): Query<SigninQuery>,
) -> Response {
    signin_form(
        &pages,
        &local_target(query.next.as_deref()),
        None,
        StatusCode::OK,
    )
}

fn signin_form(pages: &Pages, next: &str, problem: Option<&str>, status: StatusCode) -> Response {
    let keys = pages.keys();
    let body = html! {
        h1 { "Sign in" }
        @if !keys.required() {
            p.notice { "No API token is set, so the pages are open: there is nothing to sign in to." }
            p { a href="/" { "Go to the incidents" } }
        } @else {
            @if let Some(problem) = problem {
                p.error role="alert" { (problem) }
            }
            form #signin-form.stacked method="post" action="/signin" {
                input type="hidden" name="csrf" value=(keys.csrf(SIGNIN_BINDING));
                input type="hidden" name="next" value=(next);
                p {
                    label for="token" { "API token" }
                    input #token type="password" name="token" autocomplete="current-password" required;
                }
                p.muted { "The token set in SUTURE_API_TOKEN. The browser keeps a session for "
                    (SESSION_HOURS) " hours, not the token." }
                button #signin-button.primary type="submit" { "Sign in" }
            }
        }
    };
    (status, layout::page("Sign in", None, body)).into_response()
}

/// Form of `POST /signin`.
#[derive(Debug, Deserialize)]
pub(crate) struct SigninForm {
    #[serde(default)]
    token: String,
    csrf: Option<String>,
    next: Option<String>,
}

/// `POST /signin`: a right token opens a session.
pub(crate) async fn signin(
    State(pages): State<Pages>,
    form: Result<Form<SigninForm>, axum::extract::rejection::FormRejection>,
) -> Result<Response, PagesError> {
    let keys = pages.keys();
    let Ok(Form(form)) = form else {
        return Err(PagesError::Forbidden("the form carries no CSRF token"));
    };
    let signin = Viewer {
        binding: SIGNIN_BINDING.to_owned(),
        signed_in: false,
    };
    signin.check(keys, form.csrf.as_deref())?;
    let next = local_target(form.next.as_deref());
    if !keys.required() {
        return Ok(Redirect::to(&next).into_response());
    }
    if !keys.token_matches(&form.token) {
        return Ok(signin_form(
            &pages,
            &next,
            Some("That is not the API token."),
            StatusCode::UNAUTHORIZED,
        ));
    }
    let expires = chrono::Utc::now().timestamp() + SESSION_HOURS * 3600;
    let session = keys.new_session(expires)?;
    let cookie = format!(
        "{SESSION_COOKIE}={session}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
        SESSION_HOURS * 3600
    );
    let mut response = Redirect::to(&next).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).expect("hex and ASCII make a valid header"),
    );
    Ok(response)
}

/// Form of `POST /signout`.
#[derive(Debug, Deserialize)]
pub(crate) struct CsrfOnly {
    csrf: Option<String>,
}

/// `POST /signout`: the browser forgets its session.
pub(crate) async fn signout(
    State(pages): State<Pages>,
    axum::Extension(viewer): axum::Extension<Viewer>,
    form: Result<Form<CsrfOnly>, axum::extract::rejection::FormRejection>,
) -> Result<Response, PagesError> {
    let given = form.ok().and_then(|Form(form)| form.csrf);
    viewer.check(pages.keys(), given.as_deref())?;
    let mut response = Redirect::to("/signin").into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("suture_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    Ok(response)
}

/// `next` when it is a path on this site, else `/`: a sign-in never sends
/// the browser elsewhere.
fn local_target(next: Option<&str>) -> String {
    match next {
        Some(next)
            if next.starts_with('/')
                && !next.starts_with("//")
                && !next.starts_with("/\\")
                && next.len() <= 2048
                && !next.chars().any(|c| c.is_control() || c == '\\') =>
        {
            next.to_owned()
        }
        _ => "/".to_owned(),
    }
}

/// `text` with everything but unreserved characters percent-encoded, for
/// a query value.
pub(crate) fn percent_encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fresh_keys() -> Keys {
        Keys::new(Some("t0ken".to_owned())).unwrap()
    }

    #[test]
    fn a_session_is_valid_until_it_expires_and_only_as_signed() {
        let keys = fresh_keys();
        let session = keys.new_session(1_000).unwrap();
        assert!(keys.session_valid(&session, 999));
        assert!(!keys.session_valid(&session, 1_000));
        // A later expiry with the old signature is not this process's.
        let (_, rest) = session.split_once('.').unwrap();
        assert!(!keys.session_valid(&format!("99999999999.{rest}"), 999));
        // Another process's secret signs other sessions.
        assert!(!keys.session_valid(&fresh_keys().new_session(1_000).unwrap(), 999));
        assert!(!keys.session_valid("", 0));
        assert!(!keys.session_valid("t0ken", 0));
    }

    #[test]
    fn only_the_token_matches() {
        let keys = fresh_keys();
        assert!(keys.token_matches("t0ken"));
        assert!(!keys.token_matches("t0ke"));
        assert!(!keys.token_matches(""));
        assert!(!Keys::new(None).unwrap().token_matches(""));
    }

    #[test]
    fn a_csrf_token_holds_for_its_binding_only() {
        let keys = fresh_keys();
        let viewer = Viewer {
            binding: "a".to_owned(),
            signed_in: true,
        };
        assert!(viewer.check(&keys, Some(&keys.csrf("a"))).is_ok());
        assert!(viewer.check(&keys, Some(&keys.csrf("b"))).is_err());
        assert!(viewer.check(&keys, Some("zz")).is_err());
        assert!(viewer.check(&keys, None).is_err());
    }

    #[test]
    fn sign_in_only_returns_to_this_site() {
        assert_eq!(local_target(Some("/incidents/3?x=1")), "/incidents/3?x=1");
        for outside in [
            "//evil.example/",
            "https://evil.example/",
            "/\\evil",
            "",
            "x",
        ] {
            assert_eq!(local_target(Some(outside)), "/", "{outside}");
        }
        assert_eq!(local_target(None), "/");
        assert_eq!(percent_encode("/a?b=c&d"), "/a%3Fb%3Dc%26d");
    }
}

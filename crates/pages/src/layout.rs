//! The shell every page shares (landmarks: a header with the navigation,
//! one main), the one stylesheet (`/static/pages.css`) and the one small
//! script (`/static/pages.js`), served apart so pages carry no inline
//! style or script and a strict CSP stays possible.
//!
//! The script only enhances: it counts the quiet window down, and on a
//! page with a `suture-watch` digest (the overview, an incident) it
//! reloads once what the page shows has moved on — the digest of a fresh
//! copy differs — so a new state or step appears without a reload by hand.
//! Without JavaScript the server-rendered page says the same, as of when
//! it was loaded.

use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

/// The stylesheet: light and dark themes from the system's preference.
const STYLESHEET: &str = include_str!("pages.css");

/// The script (see the module doc).
const SCRIPT: &str = include_str!("pages.js");

/// `GET /static/pages.css`.
pub(crate) async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        STYLESHEET,
    )
}

/// What every page's response says about how it may be used: only our
/// own style, script and forms, never inside another site's frame (no
/// clickjacked Merge), never cached (forms carry CSRF tokens), never
/// sniffed as another type.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data:; \
     frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'";

/// Adds the security headers (see [`CONTENT_SECURITY_POLICY`]) to a
/// page's response.
pub(crate) async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// `GET /static/pages.js`.
pub(crate) async fn script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        SCRIPT,
    )
}

/// A whole page titled `title` around `main`; `signout` is the sign-out
/// form's CSRF token when someone is signed in.
pub(crate) fn page(title: &str, signout: Option<&str>, main: Markup) -> Html<String> {
    watched_page(title, signout, None, main)
}

/// [`page`], reloaded by the script once a fresh copy's `watch` digest
/// differs.
pub(crate) fn watched_page(
    title: &str,
    signout: Option<&str>,
    watch: Option<&str>,
    main: Markup,
) -> Html<String> {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light dark";
                title { (title) " · suture" }
                link rel="stylesheet" href="/static/pages.css";
                @if let Some(watch) = watch {
                    meta name="suture-watch" content=(watch);
                }
                script src="/static/pages.js" defer {}
            }
            body {
                a.skip href="#main" { "Skip to the content" }
                header.site {
                    nav aria-label="Main" {
                        a.brand href="/" { "suture" }
                        a href="/" { "Incidents" }
                        @if let Some(csrf) = signout {
                            form.inline method="post" action="/signout" {
                                input type="hidden" name="csrf" value=(csrf);
                                button.link type="submit" { "Sign out" }
                            }
                        }
                    }
                }
                main #main { (main) }
            }
        }
    };
    Html(markup.into_string())
}

/// A short digest of `parts`, for a `suture-watch` meta: equal parts,
/// equal digests, within one process.
pub(crate) fn digest(parts: &[&str]) -> String {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let mut hasher = DefaultHasher::new();
    parts.hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}

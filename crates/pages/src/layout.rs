//! The shell every page shares (landmarks: a header with the navigation,
//! one main) and the one stylesheet, served from `/static/pages.css` so
//! pages carry no inline style and a strict CSP stays possible.

use axum::http::header;
use axum::response::{Html, IntoResponse};
use maud::{DOCTYPE, Markup, html};

/// The stylesheet: light and dark themes from the system's preference.
const STYLESHEET: &str = include_str!("pages.css");

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

/// A whole page titled `title` around `main`; `signout` is the sign-out
/// form's CSRF token when someone is signed in.
pub(crate) fn page(title: &str, signout: Option<&str>, main: Markup) -> Html<String> {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light dark";
                title { (title) " · suture" }
                link rel="stylesheet" href="/static/pages.css";
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

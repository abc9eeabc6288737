//! suture's pages, server-rendered for the people who act on incidents:
//! reviewers and on-call engineers who look rather than read JSON. They
//! work with JavaScript off; one small script only counts the quiet
//! window down.
//!
//! - `/` ([`overview`]): incidents grouped by state, newest first, with
//!   filters by repository and state and pages of [`overview::PAGE_SIZE`].
//! - `/incidents/{id}` ([`incident`]): the whole story, read from the
//!   persisted outputs of the incident's steps ([`story`]).
//! - `/pulls/{n}` ([`review`]): the local forge's review screen; its
//!   Merge, Close and Comment forms act through the same functions as
//!   `suture pr` ([`review::merge`], [`review::close`], [`review::comment`]).
//! - `/signin`, `/signout` ([`auth`]), `/static/pages.css` and
//!   `/static/pages.js` (`layout`).
//!
//! Markup the browser tests rely on (keep it stable):
//!
//! - overview: one `<section id="state-<state>">` per non-empty state
//!   (`state-proposed`, `state-verifying`, `state-resolved`, …), each
//!   card an `<article class="incident-card" data-incident-id="N">` with a
//!   link to `/incidents/N`;
//! - detail page sections: `culprit`, `suspects`, `locations`, `stack`,
//!   `reproduction`, `diff`, `test-runs` (baseline and patched), `fixes`,
//!   `verification`, `timeline`;
//! - review screen: forms `merge-form`, `close-form`, `comment-form` with
//!   submit buttons `merge-button`, `close-button`, `comment-button` (the
//!   merge and close forms only while the pull request is open);
//! - sign-in: form `signin-form` with an input `name="token"` and a button
//!   `signin-button`.
//!
//! Everything event-derived is text: maud escapes every interpolation,
//! and highlighted code is escaped by the highlighter before it is marked
//! up ([`highlight`]). The routes have no fallback, so merged next to
//! ingest's router, ingest keeps its own (`/api`, `/webhooks`, `/metrics`
//! and the JSON 404s).

pub mod auth;
mod error;
pub mod highlight;
pub mod incident;
mod layout;
pub mod overview;
pub mod review;
pub mod story;

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use domain::config::Config;
use forge::LocalForge;
use store::Store;

pub use crate::error::PagesError;

/// What the pages read and act through.
#[derive(Debug, Clone)]
pub struct Pages {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Store,
    config: Arc<Config>,
    /// Each repository on the local forge, by its `[[repos]]` name.
    local_forges: HashMap<String, LocalForge>,
    keys: auth::Keys,
}

impl Pages {
    /// The pages over `store`, for the repositories of `config` (with the
    /// API token of `config.secrets` guarding them when set), acting on
    /// the local forges in `local_forges` (by repository name).
    ///
    /// # Errors
    ///
    /// When no secret can be drawn for sessions and CSRF tokens.
    pub fn new(
        store: Store,
        config: Arc<Config>,
        local_forges: HashMap<String, LocalForge>,
    ) -> Result<Pages, PagesError> {
        let keys = auth::Keys::new(config.secrets.api_token.clone())?;
        Ok(Pages {
            inner: Arc::new(Inner {
                store,
                config,
                local_forges,
                keys,
            }),
        })
    }

    fn store(&self) -> &Store {
        &self.inner.store
    }

    fn config(&self) -> &Config {
        &self.inner.config
    }

    fn keys(&self) -> &auth::Keys {
        &self.inner.keys
    }

    fn local_forges(&self) -> &HashMap<String, LocalForge> {
        &self.inner.local_forges
    }
}

/// The pages' routes, without a fallback (see the module doc).
pub fn router(pages: Pages) -> Router {
    Router::new()
        .route("/", get(overview::page))
        .route("/incidents/{id}", get(incident::page))
        .route("/pulls/{number}", get(review::page))
        .route("/pulls/{number}/merge", post(review::merge_action))
        .route("/pulls/{number}/close", post(review::close_action))
        .route("/pulls/{number}/comment", post(review::comment_action))
        .route("/signin", get(auth::signin_page).post(auth::signin))
        .route("/signout", post(auth::signout))
        .route("/static/pages.css", get(layout::stylesheet))
        .route("/static/pages.js", get(layout::script))
        .route_layer(axum::middleware::from_fn_with_state(
            pages.clone(),
            auth::require_session,
        ))
        .route_layer(axum::middleware::map_response(layout::security_headers))
        .with_state(pages)
}

//! What can go wrong behind a page, and the status each answers with.
//! The page says what went wrong in a sentence; the detail of a store or
//! forge failure goes to the log, not to the browser.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::layout;

/// A failure of the pages.
#[derive(Debug, thiserror::Error)]
pub enum PagesError {
    /// No secret could be drawn for sessions and CSRF tokens.
    #[error("reading /dev/urandom for the pages' secret")]
    Random(#[source] std::io::Error),
    /// The store failed.
    #[error("the store")]
    Store(#[from] store::StoreError),
    /// The forge refused or failed.
    #[error("the local forge")]
    Forge(#[from] forge::ForgeError),
    /// A blocking task (forge, git) panicked or was cancelled.
    #[error("a background task")]
    Join(#[from] tokio::task::JoinError),
    /// There is no such page (incident, pull request, repository).
    #[error("not found: {0}")]
    NotFound(String),
    /// An action without a valid session or CSRF token.
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    /// A form or query the pages cannot use.
    #[error("bad request: {0}")]
    BadRequest(String),
}

impl PagesError {
    fn status(&self) -> StatusCode {
        match self {
            PagesError::NotFound(_) | PagesError::Forge(forge::ForgeError::NotFound { .. }) => {
                StatusCode::NOT_FOUND
            }
            PagesError::Forbidden(_) => StatusCode::FORBIDDEN,
            PagesError::BadRequest(_) => StatusCode::BAD_REQUEST,
            PagesError::Forge(forge::ForgeError::WrongState { .. }) => StatusCode::CONFLICT,
            PagesError::Random(_)
            | PagesError::Store(_)
            | PagesError::Forge(_)
            | PagesError::Join(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The sentence shown: the whole error for what the person can act
    /// on, a pointer to the log otherwise.
    fn sentence(&self) -> String {
        match self {
            PagesError::NotFound(_) | PagesError::Forbidden(_) | PagesError::BadRequest(_) => {
                self.to_string()
            }
            PagesError::Forge(
                error @ (forge::ForgeError::NotFound { .. } | forge::ForgeError::WrongState { .. }),
            ) => error.to_string(),
            _ => format!("{self} failed; the service's log has the detail"),
        }
    }
}

impl IntoResponse for PagesError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = ?self, "a page failed");
        }
        let body = layout::page(
            status.canonical_reason().unwrap_or("error"),
            None,
            maud::html! {
                h1 { (status.as_u16()) " " (status.canonical_reason().unwrap_or("error")) }
                p.error { (self.sentence()) }
                p { a href="/" { "Back to the incidents" } }
            },
        );
        (status, body).into_response()
    }
}

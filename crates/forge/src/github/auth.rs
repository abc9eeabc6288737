//! GitHub credentials: a plain token, or a GitHub App installation token
//! minted from an RS256 JWT and cached until shortly before it expires.
//!
//! The JWT follows GitHub's recipe (octocrab's `create_jwt`): `iat` 60 s in
//! the past for clock drift, `exp` 9 minutes ahead (GitHub allows at most
//! 10), `iss` the App id. `POST /app/installations/{id}/access_tokens`
//! answers a token valid for an hour; it is reused until
//! [`REFRESH_BEFORE_EXPIRY`] before its `expires_at`, and dropped at once
//! when GitHub answers 401 to it (revoked, permissions changed).
//!
//! An installation may cover many repositories with broad permissions; the
//! token is asked for the one repository the forge serves and only what the
//! pull request flow needs ([`TOKEN_PERMISSIONS`]), so a leaked token, or a
//! confused step, cannot reach further.

use std::time::Duration;

use chrono::{DateTime, Utc};
use http::Method;
use http::header::{AUTHORIZATION, HeaderName, HeaderValue};
use octocrab::EncodingKey;
use octocrab::models::AppId;
use octocrab::secrecy::{ExposeSecret, SecretString};

use crate::error::ForgeError;
use crate::http::{Http, secret_header};
use crate::retry::{Backoff, Flavour, RetryPolicy, judge};

/// What an installation token may do: push the fix branch (contents),
/// open pull requests and ask for reviews (pull requests), open, label,
/// comment on and close the tracking issue (issues), read collaborators'
/// permissions (metadata).
pub(crate) const TOKEN_PERMISSIONS: [(&str, &str); 4] = [
    ("contents", "write"),
    ("pull_requests", "write"),
    ("issues", "write"),
    ("metadata", "read"),
];

/// A cached installation token is replaced this long before it expires.
pub(crate) const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(5 * 60);

/// How requests to GitHub authenticate.
pub(crate) enum Credentials {
    Token(SecretString),
    App(App),
}

pub(crate) struct App {
    app_id: u64,
    installation_id: u64,
    /// The repository (its name, without the owner) tokens are minted for.
    repository: String,
    key: EncodingKey,
    /// The installation token; a tokio mutex so that concurrent callers
    /// wait for one refresh instead of each minting a token.
    cached: tokio::sync::Mutex<Option<Cached>>,
}

struct Cached {
    token: SecretString,
    expires_at: DateTime<Utc>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Token(_) => f.write_str("Token([REDACTED])"),
            Credentials::App(app) => f
                .debug_struct("App")
                .field("app_id", &app.app_id)
                .field("installation_id", &app.installation_id)
                .field("key", &"[REDACTED]")
                .finish_non_exhaustive(),
        }
    }
}

#[derive(serde::Deserialize)]
struct AccessToken {
    token: String,
    expires_at: DateTime<Utc>,
}

impl Credentials {
    pub(crate) fn app(
        app_id: u64,
        installation_id: u64,
        repository: &str,
        private_key_pem: &SecretString,
    ) -> Result<Credentials, ForgeError> {
        let key = EncodingKey::from_rsa_pem(private_key_pem.expose_secret().as_bytes())
            .map_err(|error| ForgeError::invalid("github app private key", format!("{error}")))?;
        Ok(Credentials::App(App {
            app_id,
            installation_id,
            repository: repository.to_string(),
            key,
            cached: tokio::sync::Mutex::new(None),
        }))
    }

    pub(crate) fn is_app(&self) -> bool {
        matches!(self, Credentials::App(_))
    }

    /// The token to use now: the plain one, or a valid installation token
    /// (minted when none is cached or it is about to expire).
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: a cancelled refresh leaves the cache as it was.
    pub(crate) async fn token(
        &self,
        http: &Http,
        policy: &RetryPolicy,
        extra_headers: &[(HeaderName, HeaderValue)],
    ) -> Result<SecretString, ForgeError> {
        let app = match self {
            Credentials::Token(token) => return Ok(token.clone()),
            Credentials::App(app) => app,
        };
        let mut cached = app.cached.lock().await;
        let fresh_until =
            Utc::now() + chrono::Duration::from_std(REFRESH_BEFORE_EXPIRY).expect("five minutes");
        if let Some(token) = cached.as_ref()
            && token.expires_at > fresh_until
        {
            return Ok(token.token.clone());
        }
        let minted = app.mint(http, policy, extra_headers).await?;
        tracing::debug!(expires_at = %minted.expires_at, "minted a github installation token");
        let token = minted.token.clone();
        *cached = Some(minted);
        Ok(token)
    }

    /// Forgets the cached installation token (GitHub refused it).
    pub(crate) async fn invalidate(&self) {
        if let Credentials::App(app) = self {
            *app.cached.lock().await = None;
        }
    }
}

impl App {
    /// The body of the token request: this repository, these permissions.
    fn token_scope(&self) -> serde_json::Value {
        let permissions: serde_json::Map<String, serde_json::Value> = TOKEN_PERMISSIONS
            .iter()
            .map(|(name, level)| ((*name).to_string(), (*level).into()))
            .collect();
        serde_json::json!({
            "repositories": [self.repository],
            "permissions": permissions,
        })
    }

    async fn mint(
        &self,
        http: &Http,
        policy: &RetryPolicy,
        extra_headers: &[(HeaderName, HeaderValue)],
    ) -> Result<Cached, ForgeError> {
        let operation = "create installation access token";
        let path = format!("/app/installations/{}/access_tokens", self.installation_id);
        let mut backoff = Backoff::new(policy, operation);
        let scope = self.token_scope();
        loop {
            let jwt = octocrab::auth::create_jwt(AppId(self.app_id), &self.key)
                .map_err(ForgeError::Jwt)?;
            let mut headers = extra_headers.to_vec();
            headers.push((AUTHORIZATION, secret_header(&format!("Bearer {jwt}"))?));
            let outcome = http.once(Method::POST, &path, &headers, Some(&scope)).await;
            match judge(outcome, Flavour::GitHub, Utc::now().timestamp()) {
                Ok(reply) if reply.status == 201 => {
                    let answer: AccessToken = reply.json(http.service, operation)?;
                    return Ok(Cached {
                        token: SecretString::from(answer.token),
                        expires_at: answer.expires_at,
                    });
                }
                Ok(reply) => return Err(reply.into_error(http.service, operation)),
                Err(retry) => backoff.wait(retry).await?,
            }
        }
    }
}

//! An action's HTTP request (`http`, `check_http`): the operator's method,
//! URL and headers, and the body template filled with the incident's
//! fields as escaped JSON strings (the rule is the configuration's,
//! `HttpRequestConfig::body_json`). Incident text never goes into the URL
//! or a header.
//!
//! Header values may name `SUTURE_*` secrets of suture's environment; they
//! are expanded only for the request. The record keeps the header as
//! configured (`Bearer ${SUTURE_FLAGS_TOKEN}`) and blanks every expanded
//! secret out of the answer it keeps, so no record carries one.

use std::collections::BTreeMap;
use std::time::Duration;

use domain::config::{HttpRequestConfig, expand_secrets, secret_variables};
use forge::action_http::{ActionRequest, send};
use serde_json::{Value, json};

use crate::job::Stop;

/// Characters of the answer kept in the record.
const BODY_TAIL_CHARS: usize = 2_000;

/// What a request did.
pub(super) struct Sent {
    /// A 2xx came back.
    pub(super) passed: bool,
    /// The record: method, URL, headers as configured, body, status and
    /// the answer's start, secrets blanked.
    pub(super) record: Value,
}

/// Sends `request` with its body filled from `fields`.
pub(super) async fn send_request(
    request: &HttpRequestConfig,
    fields: &BTreeMap<&str, String>,
    timeout: Duration,
) -> Result<Sent, Stop> {
    let body = match request.body_json(fields) {
        Ok(body) => body,
        // Validation refuses such a template before suture starts; a
        // failed run, on the record, should one get here all the same.
        Err(message) => {
            return Ok(Sent {
                passed: false,
                record: json!({"kind": "http", "method": request.method, "url": request.url,
                    "error": format!("the body template {message}")}),
            });
        }
    };
    let lookup = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
    let secrets: Vec<String> = request
        .headers
        .values()
        .flat_map(|value| secret_variables(value).unwrap_or_default())
        .filter_map(|name| lookup(&name))
        .collect();
    let headers: Vec<(String, String)> = request
        .headers
        .iter()
        .map(|(name, value)| (name.clone(), expand_secrets(value, lookup)))
        .collect();
    let mut record = json!({
        "kind": "http",
        "method": request.method,
        "url": request.url,
        "headers": request.headers,
        "body": body,
    });
    let answer = send(&ActionRequest {
        method: &request.method,
        url: &request.url,
        headers: &headers,
        body: body.as_ref(),
        timeout,
    })
    .await;
    let passed = match answer {
        Ok(reply) => {
            record["status"] = json!(reply.status);
            let tail: String = reply.body.chars().take(BODY_TAIL_CHARS).collect();
            record["response_tail"] = json!(blank(&tail, &secrets));
            reply.is_success()
        }
        Err(error) => {
            record["error"] = json!(blank(&error.to_string(), &secrets));
            false
        }
    };
    Ok(Sent { passed, record })
}

/// `text` with every one of `secrets` replaced by `***`.
pub(super) fn blank(text: &str, secrets: &[String]) -> String {
    secrets
        .iter()
        .filter(|secret| secret.len() >= 4)
        .fold(text.to_owned(), |text, secret| {
            text.replace(secret.as_str(), "***")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A secret echoed by the server never stays in the record.
    #[test]
    fn secrets_are_blanked() {
        assert_eq!(
            blank(
                "auth=s3cret-token ok s3cret-token",
                &["s3cret-token".into()]
            ),
            "auth=*** ok ***"
        );
        assert_eq!(
            blank("abc", &["ab".into()]),
            "abc",
            "too short to blank safely"
        );
    }
}

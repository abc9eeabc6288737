//! Webhook signatures: HMAC-SHA256 of the raw body, compared in constant time.
//!
//! The three senders sign the same way (the hex HMAC-SHA256 of the exact
//! request bytes) and differ only in the header's shape: Sentry sends the
//! bare hex in `Sentry-Hook-Signature`, GitHub `sha256=<hex>` in
//! `X-Hub-Signature-256`, PagerDuty one `v1=<hex>` per active secret,
//! comma-separated, in `X-PagerDuty-Signature` (several during rotation: any
//! may match). Verification runs on the raw bytes before anything parses
//! them; the comparison is `Mac::verify_slice`, which is constant-time.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::IngestError;

type HmacSha256 = Hmac<Sha256>;

/// Whether `signature` (raw bytes) is the HMAC-SHA256 of `body` under `secret`.
fn verifies(secret: &[u8], body: &[u8], signature: &[u8]) -> bool {
    let Ok(mut mac) = HmacSha256::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(signature).is_ok()
}

/// The hex HMAC-SHA256 of `body` under `secret`: what a sender puts in its
/// header. For tests and the benchmark, which sign like the senders do.
pub fn sign_hex(secret: &[u8], body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(secret).expect("hmac takes any key length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Checks Sentry's `Sentry-Hook-Signature` (bare lowercase hex).
pub fn verify_sentry(secret: &str, body: &[u8], header: Option<&str>) -> Result<(), IngestError> {
    let header = header.ok_or(IngestError::BadSignature("missing Sentry-Hook-Signature"))?;
    let signature = hex::decode(header.trim())
        .map_err(|_| IngestError::BadSignature("malformed Sentry-Hook-Signature: expected hex"))?;
    if verifies(secret.as_bytes(), body, &signature) {
        Ok(())
    } else {
        Err(IngestError::BadSignature(
            "Sentry-Hook-Signature does not match the body",
        ))
    }
}

/// Checks GitHub's `X-Hub-Signature-256: sha256=<hex>`.
pub fn verify_github(secret: &str, body: &[u8], header: Option<&str>) -> Result<(), IngestError> {
    let header = header.ok_or(IngestError::BadSignature("missing X-Hub-Signature-256"))?;
    let signature = header
        .trim()
        .strip_prefix("sha256=")
        .and_then(|hex_text| hex::decode(hex_text).ok())
        .ok_or(IngestError::BadSignature(
            "malformed X-Hub-Signature-256: expected sha256=<hex>",
        ))?;
    if verifies(secret.as_bytes(), body, &signature) {
        Ok(())
    } else {
        Err(IngestError::BadSignature(
            "X-Hub-Signature-256 does not match the body",
        ))
    }
}

/// Checks PagerDuty's `X-PagerDuty-Signature: v1=<hex>[,v1=<hex>…]`: any
/// entry matching any of `secrets` verifies.
pub fn verify_pagerduty(
    secrets: &[String],
    body: &[u8],
    header: Option<&str>,
) -> Result<(), IngestError> {
    let header = header.ok_or(IngestError::BadSignature("missing X-PagerDuty-Signature"))?;
    let signatures: Vec<Vec<u8>> = header
        .split(',')
        .filter_map(|entry| entry.trim().strip_prefix("v1="))
        .filter_map(|hex_text| hex::decode(hex_text).ok())
        .collect();
    if signatures.is_empty() {
        return Err(IngestError::BadSignature(
            "malformed X-PagerDuty-Signature: expected v1=<hex>",
        ));
    }
    let any = signatures.iter().any(|signature| {
        secrets
            .iter()
            .any(|secret| verifies(secret.as_bytes(), body, signature))
    });
    if any {
        Ok(())
    } else {
        Err(IngestError::BadSignature(
            "X-PagerDuty-Signature does not match the body",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// GitHub's published test vector.
    #[test]
    fn github_official_vector() {
        let header = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert!(
            verify_github("It's a Secret to Everybody", b"Hello, World!", Some(header)).is_ok()
        );
        assert!(
            verify_github("It's a Secret to Everybody", b"Hello, World?", Some(header)).is_err()
        );
        assert_eq!(
            sign_hex(b"It's a Secret to Everybody", b"Hello, World!"),
            header.trim_start_matches("sha256=")
        );
    }

    /// During rotation PagerDuty sends one signature per secret; either works.
    #[test]
    fn pagerduty_rotation() {
        let body = br#"{"event":{}}"#;
        let old = sign_hex(b"old", body);
        let new = sign_hex(b"new", body);
        let header = format!("v1={old},v1={new}");
        assert!(verify_pagerduty(&["new".into()], body, Some(&header)).is_ok());
        assert!(verify_pagerduty(&["old".into()], body, Some(&header)).is_ok());
        assert!(verify_pagerduty(&["other".into()], body, Some(&header)).is_err());
        assert!(verify_pagerduty(&["new".into()], body, Some("v2=abc")).is_err());
        assert!(verify_pagerduty(&["new".into()], body, None).is_err());
    }

    /// Sentry's header is the bare hex; anything else is refused with a reason.
    #[test]
    fn sentry_signatures() {
        let body = br#"{"action":"created"}"#;
        let good = sign_hex(b"s3cret", body);
        assert!(verify_sentry("s3cret", body, Some(&good)).is_ok());
        let error = verify_sentry("s3cret", body, Some("zz")).unwrap_err();
        assert_eq!(
            error.to_string(),
            "malformed Sentry-Hook-Signature: expected hex"
        );
        let error = verify_sentry("wrong", body, Some(&good)).unwrap_err();
        assert_eq!(
            error.to_string(),
            "Sentry-Hook-Signature does not match the body"
        );
    }
}

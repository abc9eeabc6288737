//! Keeping secrets out of everything suture writes: reports, prompts, pull
//! request bodies, transcripts.
//!
//! The sandbox never sees the host's secrets (its environment is cleared),
//! but text can still carry them: a test that prints a configuration file, a
//! model that echoes what it was shown, an exception that quotes a database
//! URL. As a last line, every text that leaves suture passes through a
//! [`Redactor`], which blanks two kinds of secret:
//!
//! - *known values*: the host's secret-looking environment variables, as
//!   written and base64-encoded (a `Basic` header, a dumped config map, at
//!   each of the three byte offsets a value can start at inside encoded
//!   text, standard and URL-safe alphabets);
//! - *shapes*: secrets suture was never told about but that look like one
//!   (GitHub and OpenAI-style tokens, AWS keys, PEM private keys, the
//!   password of a `scheme://user:password@host` URL).
//!
//! Shapes are matched narrowly (a prefix and a length, or a keyword next to
//! the value): a redactor that blanks ordinary code would make reports
//! useless, and the values already cover what the host knows.

use std::sync::LazyLock;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use regex::Regex;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// What replaces a secret.
pub const REDACTED: &str = "[redacted]";

/// Values shorter than this are not treated as secrets: they would match
/// ordinary text.
const MIN_SECRET_LEN: usize = 6;

/// Base64 fragments shorter than this are not searched for: a short run of
/// base64 characters is ordinary text.
const MIN_ENCODED_LEN: usize = 8;

/// Secret shapes and what each becomes: `$pre` and `$post` keep the text
/// around the secret that says what it was.
static SHAPES: LazyLock<Vec<(Regex, String)>> = LazyLock::new(|| {
    let blank = |pattern: &str| {
        (
            Regex::new(pattern).expect("a valid pattern"),
            REDACTED.to_string(),
        )
    };
    let keep = |pattern: &str| {
        (
            Regex::new(pattern).expect("a valid pattern"),
            format!("${{pre}}{REDACTED}${{post}}"),
        )
    };
    vec![
        // PEM private keys, whole; an unterminated one (a cut output tail)
        // to the end of the text.
        blank(
            r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\z)",
        ),
        // GitHub: personal, OAuth, user-to-server, installation, refresh
        // tokens, and fine-grained personal tokens.
        blank(r"\bgh[pousr]_[A-Za-z0-9]{20,255}\b"),
        blank(r"\bgithub_pat_[A-Za-z0-9_]{22,255}\b"),
        // OpenAI-style API keys (also project and service-account keys).
        blank(r"\bsk-[A-Za-z0-9_-]{20,}"),
        // AWS access key ids, long-term and temporary.
        blank(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"),
        // AWS secret keys have no prefix: only next to their name.
        keep(
            r#"(?i)(?P<pre>aws_secret_access_key["']?\s*[:=]\s*["']?)[A-Za-z0-9/+]{40}(?P<post>)"#,
        ),
        // The password of a URL's userinfo.
        keep(r"(?P<pre>\b[A-Za-z][A-Za-z0-9+.-]*://[^\s:/?#@]*:)[^\s/?#@]+(?P<post>@)"),
    ]
});

/// Replaces known secret values, and text shaped like a secret, in text.
#[derive(Clone, Default)]
pub struct Redactor {
    /// The known values and their base64 forms, longest first.
    needles: Vec<String>,
    /// How many values were added (for `Debug`).
    values: usize,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Redactor({} secrets)", self.values)
    }
}

impl Redactor {
    /// A redactor for the values of this process's secret-looking variables
    /// (names containing TOKEN, SECRET, PASSWORD, PASSWD, CREDENTIAL, AUTH,
    /// PRIVATE, or ending in KEY or DSN).
    pub fn from_env() -> Redactor {
        Redactor::from_vars(std::env::vars())
    }

    /// A redactor for the secret-looking variables among `vars`.
    pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Redactor {
        let mut redactor = Redactor::default();
        for (name, value) in vars {
            if is_secret_name(&name) {
                redactor.add(value);
            }
        }
        redactor
    }

    /// Treats `value` (and its base64 forms) as a secret too.
    pub fn add(&mut self, value: impl Into<String>) {
        let value = value.into();
        if value.len() < MIN_SECRET_LEN || self.needles.contains(&value) {
            return;
        }
        self.values += 1;
        let encoded = base64_forms(value.as_bytes());
        for needle in std::iter::once(value).chain(encoded) {
            if !self.needles.contains(&needle) {
                self.needles.push(needle);
            }
        }
        // Longest first, so a secret containing another is blanked whole.
        self.needles.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }

    /// `item` with every string in it redacted, through its serde form: for
    /// reports built from event text and commit metadata. An item that does
    /// not round-trip is returned as it was, which no report type does.
    pub fn redact_all<T: Serialize + DeserializeOwned>(&self, item: T) -> T {
        let Ok(mut value) = serde_json::to_value(&item) else {
            return item;
        };
        self.redact_json(&mut value);
        serde_json::from_value(value).unwrap_or(item)
    }

    /// Every string in `value`, redacted in place.
    pub fn redact_json(&self, value: &mut Value) {
        match value {
            Value::String(text) => *text = self.redact(text),
            Value::Array(items) => items.iter_mut().for_each(|item| self.redact_json(item)),
            Value::Object(map) => map.values_mut().for_each(|item| self.redact_json(item)),
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }

    /// `text` with every known secret, and everything shaped like one,
    /// replaced by [`REDACTED`].
    pub fn redact(&self, text: &str) -> String {
        let mut text = text.to_string();
        for needle in &self.needles {
            if text.contains(needle.as_str()) {
                text = text.replace(needle.as_str(), REDACTED);
            }
        }
        for (shape, replacement) in SHAPES.iter() {
            if shape.is_match(&text) {
                text = shape.replace_all(&text, replacement.as_str()).into_owned();
            }
        }
        text
    }
}

/// The base64 text that `secret` always produces inside a longer encoded
/// text, for each of the three offsets (modulo 3) it can start at, in the
/// standard and URL-safe alphabets: the characters that depend on the
/// secret's bytes alone.
fn base64_forms(secret: &[u8]) -> Vec<String> {
    let mut forms = Vec::new();
    for offset in 0..3usize {
        let mut bytes = vec![0u8; offset];
        bytes.extend_from_slice(secret);
        // Characters 0..skip carry bits of the bytes before the secret;
        // characters from `end` on carry bits of the bytes after it.
        let skip = [0, 2, 3][offset];
        let end = bytes.len() * 8 / 6;
        for engine in [&STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
            let encoded = engine.encode(&bytes);
            if let Some(form) = encoded.get(skip..end)
                && form.len() >= MIN_ENCODED_LEN
                && !forms.iter().any(|f: &String| f == form)
            {
                forms.push(form.to_string());
            }
        }
    }
    forms
}

fn is_secret_name(name: &str) -> bool {
    let name = name.to_ascii_uppercase();
    [
        "TOKEN",
        "SECRET",
        "PASSWORD",
        "PASSWD",
        "CREDENTIAL",
        "AUTH",
        "PRIVATE",
    ]
    .iter()
    .any(|part| name.contains(part))
        || name.ends_with("KEY")
        || name.ends_with("DSN")
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE};

    use super::*;

    fn redactor() -> Redactor {
        Redactor::from_vars(
            [
                ("GITHUB_TOKEN", "ghs_abcdef123456"),
                ("SUTURE_LLM_API_KEY", "sk-test-0123456789"),
                ("PATH", "/usr/bin:/bin"),
                ("SHORT_SECRET", "abc"),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string())),
        )
    }

    /// Secret-named variables are blanked wherever their values appear.
    /// Every string of a structure is redacted, keys and numbers kept.
    #[test]
    fn redacts_every_string_of_a_structure() {
        let redactor =
            Redactor::from_vars([("SUTURE_DB_PASSWORD".into(), "hunter2-hunter2".into())]);
        let value = serde_json::json!({
            "title": "connect failed: hunter2-hunter2",
            "frames": [{"line": 3, "context": ["pw = 'hunter2-hunter2'"]}],
            "ok": true,
        });
        let redacted = redactor.redact_all(value);
        assert_eq!(
            redacted,
            serde_json::json!({
                "title": "connect failed: [redacted]",
                "frames": [{"line": 3, "context": ["pw = '[redacted]'"]}],
                "ok": true,
            })
        );
    }

    #[test]
    fn secret_values_are_replaced() {
        let text = "token ghs_abcdef123456 and key sk-test-0123456789 in /usr/bin:/bin";
        assert_eq!(
            redactor().redact(text),
            "token [redacted] and key [redacted] in /usr/bin:/bin"
        );
    }

    /// Ordinary variables and values too short to be secrets stay.
    #[test]
    fn ordinary_values_stay() {
        assert_eq!(redactor().redact("abc /usr/bin:/bin"), "abc /usr/bin:/bin");
    }

    /// A known value inside base64 text is found whatever bytes come before
    /// it (all three alignments) and whichever alphabet encoded it, and the
    /// encoding no longer decodes to the secret.
    #[test]
    fn base64_forms_of_known_values_are_replaced() {
        let secret = "hunter2-db-pass?>~";
        let redactor = Redactor::from_vars([("DB_PASSWORD".to_string(), secret.to_string())]);
        for prefix in ["", "u", "us", "user:", "x-access-token:"] {
            for engine in [&STANDARD, &URL_SAFE] {
                let encoded = engine.encode(format!("{prefix}{secret};tail"));
                let text = format!("Authorization: Basic {encoded}");
                let redacted = redactor.redact(&text);
                assert!(redacted.contains(REDACTED), "{prefix:?}: {redacted}");
                let rest = redacted.trim_start_matches("Authorization: Basic ");
                for part in rest.split(REDACTED) {
                    let decoded = engine.decode(part).unwrap_or_default();
                    assert!(
                        !String::from_utf8_lossy(&decoded).contains("hunter2"),
                        "{prefix:?}: {redacted}"
                    );
                }
            }
        }
    }

    /// GitHub tokens of every kind are blanked without being known.
    #[test]
    fn github_tokens_are_replaced_by_shape() {
        let none = Redactor::default();
        for token in [
            "ghp_16C7e42F292c6912E7710c838347Ae178B4a",
            "gho_16C7e42F292c6912E7710c838347Ae178B4a",
            "ghu_16C7e42F292c6912E7710c838347Ae178B4a",
            "ghs_16C7e42F292c6912E7710c838347Ae178B4a",
            "ghr_1B4a2e77838347a7E420ce178F2E7c6912E169246c34E1ccbF66C46812d16D5B1A9Dc86A1498",
            "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUV",
        ] {
            assert_eq!(
                none.redact(&format!("push with {token}, then")),
                "push with [redacted], then"
            );
        }
        assert_eq!(none.redact("ghp_short gh_x"), "ghp_short gh_x");
    }

    /// OpenAI-style keys are blanked by shape; a short `sk-` word stays.
    #[test]
    fn openai_keys_are_replaced_by_shape() {
        let none = Redactor::default();
        assert_eq!(
            none.redact("OPENAI=sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv"),
            "OPENAI=[redacted]"
        );
        assert_eq!(none.redact("uses sk-learn"), "uses sk-learn");
    }

    /// AWS access key ids by shape; secret keys next to their name, which
    /// stays so the reader knows what was there.
    #[test]
    fn aws_keys_are_replaced() {
        let none = Redactor::default();
        assert_eq!(
            none.redact("id AKIAIOSFODNN7EXAMPLE and ASIAIOSFODNN7EXAMPLE"),
            "id [redacted] and [redacted]"
        );
        assert_eq!(
            none.redact("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n"),
            "aws_secret_access_key = [redacted]\n"
        );
        assert_eq!(
            none.redact(r#"{"AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}"#),
            r#"{"AWS_SECRET_ACCESS_KEY": "[redacted]"}"#
        );
        // Forty base64 characters elsewhere are ordinary text (a digest).
        let digest = "commit wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
        assert_eq!(none.redact(digest), digest);
    }

    /// A PEM private key block is blanked whole, also when the output tail
    /// cut it short; a certificate stays.
    #[test]
    fn pem_private_keys_are_replaced() {
        let none = Redactor::default();
        let text = "key:\n-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA0Z3VS5JJcds3xfn\n/ygWyF8PbnGy0AHB7MhgHcTz6sE2I2yPB\n-----END RSA PRIVATE KEY-----\nnext";
        assert_eq!(none.redact(text), "key:\n[redacted]\nnext");
        let cut = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC";
        assert_eq!(none.redact(cut), "[redacted]");
        let cert = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----";
        assert_eq!(none.redact(cert), cert);
    }

    /// The password of a URL is blanked; the user and host stay, and a URL
    /// without a password is untouched.
    #[test]
    fn url_passwords_are_replaced() {
        let none = Redactor::default();
        assert_eq!(
            none.redact("OperationalError: postgres://shop:Sup3r$ecret@db:5432/shop failed"),
            "OperationalError: postgres://shop:[redacted]@db:5432/shop failed"
        );
        assert_eq!(
            none.redact("redis://:pw123@cache/0"),
            "redis://:[redacted]@cache/0"
        );
        let plain = "see https://example.test:8443/path?q=1 and git@github.com:o/r";
        assert_eq!(none.redact(plain), plain);
    }
}

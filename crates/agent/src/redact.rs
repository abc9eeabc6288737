//! Keeping secrets out of everything suture writes: reports, prompts, pull
//! request bodies, transcripts.
//!
//! The sandbox never sees the host's secrets (its environment is cleared),
//! but text can still carry them: a test that prints a configuration file, a
//! model that echoes what it was shown. As a last line, every text that
//! leaves suture passes through a [`Redactor`] that knows the values of the
//! host's secret-looking environment variables and blanks them out.

/// What replaces a secret.
pub const REDACTED: &str = "[redacted]";

/// Values shorter than this are not treated as secrets: they would match
/// ordinary text.
const MIN_SECRET_LEN: usize = 6;

/// Replaces known secret values in text.
#[derive(Clone, Default)]
pub struct Redactor {
    secrets: Vec<String>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Redactor({} secrets)", self.secrets.len())
    }
}

impl Redactor {
    /// A redactor for the values of this process's secret-looking variables
    /// (names containing TOKEN, SECRET, PASSWORD, PASSWD, CREDENTIAL, AUTH,
    /// PRIVATE, or ending in KEY).
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

    /// Treats `value` as a secret too.
    pub fn add(&mut self, value: impl Into<String>) {
        let value = value.into();
        if value.len() >= MIN_SECRET_LEN && !self.secrets.contains(&value) {
            self.secrets.push(value);
            // Longest first, so a secret containing another is blanked whole.
            self.secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        }
    }

    /// `text` with every known secret replaced by [`REDACTED`].
    pub fn redact(&self, text: &str) -> String {
        let mut text = text.to_string();
        for secret in &self.secrets {
            if text.contains(secret.as_str()) {
                text = text.replace(secret.as_str(), REDACTED);
            }
        }
        text
    }
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
}

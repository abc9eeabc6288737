//! Which failures are worth another attempt, and how long to wait first.
//!
//! GitHub's rules (`rate-limits-for-the-rest-api.md`): a 403 or 429 with
//! `retry-after` means wait that long; with `x-ratelimit-remaining: 0`,
//! wait until `x-ratelimit-reset` (epoch seconds); otherwise a 429, or a 403
//! whose message names a rate limit, is a secondary limit: wait at least a
//! minute and back off exponentially. Sentry and PagerDuty answer 429 (with
//! `Retry-After` when they know). 5xx answers, connection errors and
//! timeouts are transient: bounded retries with exponential backoff. Any
//! other answer goes back to the caller as it is.
//!
//! A wait is a `tokio::time::sleep`, so tests run these schedules under
//! `tokio::time::pause()` in no real time. There is no jitter: one job per
//! incident calls at a time, and tests want exact schedules.

use std::time::Duration;

use crate::error::ForgeError;
use crate::http::Reply;

/// Retry and timeout settings, shared by every client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per operation, the first included (default 8).
    pub max_attempts: u32,
    /// First backoff after a 5xx, connection error or timeout; doubles per
    /// retry (default 1 s).
    pub base_delay: Duration,
    /// Cap of that backoff (default 60 s).
    pub max_delay: Duration,
    /// First wait after a secondary rate limit without `retry-after`;
    /// doubles per retry (default 60 s, GitHub's minimum).
    pub secondary_rate_limit_delay: Duration,
    /// The longest wait a rate limit may impose before the operation gives
    /// up instead (default 1 h, a primary limit's window).
    pub max_rate_limit_wait: Duration,
    /// Time allowed for one request, answer read included (default 30 s).
    pub request_timeout: Duration,
    /// How long a fix-branch push waits for the git remote to accept a
    /// connection (default 30 s).
    pub push_connect_timeout: Duration,
    /// How long a fix-branch push waits on the git remote for each read or
    /// write once connected (default 120 s): a remote that stalls longer
    /// fails the push with a transient error instead of hanging it.
    pub push_io_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 8,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
            secondary_rate_limit_delay: Duration::from_secs(60),
            max_rate_limit_wait: Duration::from_secs(3600),
            request_timeout: Duration::from_secs(30),
            push_connect_timeout: Duration::from_secs(30),
            push_io_timeout: Duration::from_secs(120),
        }
    }
}

/// Why an attempt is retried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Retry {
    /// The service said how long to wait.
    After { wait: Duration, reason: String },
    /// A secondary rate limit without a wait: back off from a minute.
    SecondaryRateLimit { reason: String },
    /// 5xx, connection error, timeout.
    Transient { reason: String },
    /// Try again at once (a refreshed credential).
    Now { reason: String },
}

impl Retry {
    fn reason(&self) -> &str {
        match self {
            Retry::After { reason, .. }
            | Retry::SecondaryRateLimit { reason }
            | Retry::Transient { reason }
            | Retry::Now { reason } => reason,
        }
    }
}

/// How a service reports rate limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavour {
    /// 403 may be a rate limit (read the headers and the message).
    GitHub,
    /// 403 is always a refusal; only 429 limits.
    Other,
}

/// Whether an attempt's outcome is retried. `now_epoch` is the wall clock
/// in seconds, for `x-ratelimit-reset`.
pub(crate) fn judge(
    outcome: Result<Reply, String>,
    flavour: Flavour,
    now_epoch: i64,
) -> Result<Reply, Retry> {
    let reply = match outcome {
        Ok(reply) => reply,
        Err(reason) => return Err(Retry::Transient { reason }),
    };
    let status = reply.status;
    if status >= 500 {
        return Err(Retry::Transient {
            reason: format!("{status}: {}", reply.message()),
        });
    }
    let may_be_limit = status == 429 || (status == 403 && flavour == Flavour::GitHub);
    if !may_be_limit {
        return Ok(reply);
    }
    let reason = format!("{status}: {}", reply.message());
    if let Some(seconds) = reply
        .header("retry-after")
        .and_then(|value| value.trim().parse::<u64>().ok())
    {
        return Err(Retry::After {
            wait: Duration::from_secs(seconds),
            reason,
        });
    }
    if reply.header("x-ratelimit-remaining").map(str::trim) == Some("0")
        && let Some(reset) = reply
            .header("x-ratelimit-reset")
            .and_then(|value| value.trim().parse::<i64>().ok())
    {
        // One second past the reset: GitHub's clock and ours differ a little.
        let wait = (reset - now_epoch).max(0) as u64 + 1;
        return Err(Retry::After {
            wait: Duration::from_secs(wait),
            reason,
        });
    }
    if status == 429 || reply.message().to_ascii_lowercase().contains("rate limit") {
        return Err(Retry::SecondaryRateLimit { reason });
    }
    // A 403 that is not a limit: a real refusal.
    Ok(reply)
}

/// The retry budget of one operation.
#[derive(Debug)]
pub(crate) struct Backoff<'a> {
    policy: &'a RetryPolicy,
    operation: String,
    attempts: u32,
    transient: u32,
    secondary: u32,
}

impl<'a> Backoff<'a> {
    pub(crate) fn new(policy: &'a RetryPolicy, operation: &str) -> Backoff<'a> {
        Backoff {
            policy,
            operation: operation.to_string(),
            attempts: 0,
            transient: 0,
            secondary: 0,
        }
    }

    /// Counts a failed attempt and waits before the next one; gives up
    /// (`ForgeError::GaveUp`) when the budget is spent or a rate limit asks
    /// for more than `max_rate_limit_wait`.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: dropping it only cuts the wait short.
    pub(crate) async fn wait(&mut self, retry: Retry) -> Result<(), ForgeError> {
        self.attempts += 1;
        let give_up = |last: String, attempts: u32| ForgeError::GaveUp {
            operation: self.operation.clone(),
            attempts,
            last,
        };
        if self.attempts >= self.policy.max_attempts.max(1) {
            tracing::warn!(
                operation = %self.operation,
                attempts = self.attempts,
                last = retry.reason(),
                "giving up"
            );
            return Err(give_up(retry.reason().to_string(), self.attempts));
        }
        let delay = match &retry {
            Retry::After { wait, .. } => *wait,
            Retry::SecondaryRateLimit { .. } => {
                let delay = doubled(self.policy.secondary_rate_limit_delay, self.secondary);
                self.secondary += 1;
                delay
            }
            Retry::Transient { .. } => {
                let delay =
                    doubled(self.policy.base_delay, self.transient).min(self.policy.max_delay);
                self.transient += 1;
                delay
            }
            Retry::Now { .. } => Duration::ZERO,
        };
        if delay > self.policy.max_rate_limit_wait {
            let last = format!(
                "{}; asked to wait {} s, more than the {} s allowed",
                retry.reason(),
                delay.as_secs(),
                self.policy.max_rate_limit_wait.as_secs()
            );
            tracing::warn!(operation = %self.operation, last = %last, "giving up");
            return Err(give_up(last, self.attempts));
        }
        tracing::warn!(
            operation = %self.operation,
            attempt = self.attempts,
            wait_ms = delay.as_millis() as u64,
            reason = retry.reason(),
            "retrying"
        );
        tokio::time::sleep(delay).await;
        Ok(())
    }
}

fn doubled(base: Duration, times: u32) -> Duration {
    base.saturating_mul(1u32.checked_shl(times.min(16)).unwrap_or(u32::MAX))
}

#[cfg(test)]
mod tests {
    use http::HeaderMap;

    use super::*;

    fn reply(
        status: u16,
        headers: &[(&'static str, &str)],
        message: &str,
    ) -> Result<Reply, String> {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.insert(*name, value.parse().unwrap());
        }
        Ok(Reply {
            status,
            headers: map,
            body: serde_json::json!({ "message": message }).to_string(),
        })
    }

    fn github(outcome: Result<Reply, String>) -> Result<u16, Retry> {
        judge(outcome, Flavour::GitHub, 1_000).map(|reply| reply.status)
    }

    /// `retry-after` wins over the other headers.
    #[test]
    fn retry_after_is_honoured() {
        let outcome = github(reply(
            403,
            &[("retry-after", "60"), ("x-ratelimit-remaining", "0")],
            "x",
        ));
        assert!(
            matches!(outcome, Err(Retry::After { wait, .. }) if wait == Duration::from_secs(60))
        );
    }

    /// An exhausted primary limit waits until one second past the reset.
    #[test]
    fn primary_limit_waits_for_the_reset() {
        let outcome = github(reply(
            403,
            &[
                ("x-ratelimit-remaining", "0"),
                ("x-ratelimit-reset", "1030"),
            ],
            "API rate limit exceeded",
        ));
        assert!(
            matches!(outcome, Err(Retry::After { wait, .. }) if wait == Duration::from_secs(31))
        );
    }

    /// A 403 naming a secondary limit backs off; a plain 403 is a refusal;
    /// Sentry's 403 is never a limit.
    #[test]
    fn forbidden_is_a_limit_only_when_github_says_so() {
        let limited = github(reply(
            403,
            &[("x-ratelimit-remaining", "10")],
            "You have exceeded a secondary rate limit",
        ));
        assert!(matches!(limited, Err(Retry::SecondaryRateLimit { .. })));
        assert_eq!(
            github(reply(403, &[], "Resource not accessible by integration")),
            Ok(403)
        );
        let other = judge(reply(403, &[], "rate limit"), Flavour::Other, 0).map(|r| r.status);
        assert_eq!(other, Ok(403));
    }

    /// 5xx and transport errors are transient; 4xx go back to the caller.
    #[test]
    fn server_errors_are_transient() {
        assert!(matches!(
            github(reply(502, &[], "Bad Gateway")),
            Err(Retry::Transient { .. })
        ));
        assert!(matches!(
            github(Err("timeout".into())),
            Err(Retry::Transient { .. })
        ));
        assert_eq!(github(reply(422, &[], "Validation Failed")), Ok(422));
        assert_eq!(github(reply(404, &[], "Not Found")), Ok(404));
    }

    /// Backoff doubles from the base up to the cap, and the budget ends in
    /// `GaveUp` naming the last failure; no real time passes.
    #[tokio::test(start_paused = true)]
    async fn backoff_doubles_then_gives_up() {
        let policy = RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(3),
            ..RetryPolicy::default()
        };
        let mut backoff = Backoff::new(&policy, "op");
        let start = tokio::time::Instant::now();
        let transient = || Retry::Transient {
            reason: "502".into(),
        };
        backoff.wait(transient()).await.unwrap();
        backoff.wait(transient()).await.unwrap();
        backoff.wait(transient()).await.unwrap();
        assert_eq!(start.elapsed(), Duration::from_secs(1 + 2 + 3));
        let error = backoff.wait(transient()).await.unwrap_err();
        assert!(matches!(error, ForgeError::GaveUp { attempts: 4, ref last, .. } if last == "502"));
    }

    /// A rate limit asking for more than the allowed wait gives up at once.
    #[tokio::test(start_paused = true)]
    async fn overlong_rate_limit_gives_up() {
        let policy = RetryPolicy {
            max_rate_limit_wait: Duration::from_secs(600),
            ..RetryPolicy::default()
        };
        let mut backoff = Backoff::new(&policy, "op");
        let retry = Retry::After {
            wait: Duration::from_secs(3600),
            reason: "403: API rate limit exceeded".into(),
        };
        let error = backoff.wait(retry).await.unwrap_err();
        assert!(
            error.to_string().contains("more than the 600 s allowed"),
            "{error}"
        );
    }
}

//! Per-project event rate limits, answered the way Relay answers them.
//!
//! `limits.events_per_minute_per_project` error events are accepted per SDK
//! project in each fixed one-minute window (the window starts with the
//! project's first event after the previous one ended). Past it, the event
//! is refused with 429, `Retry-After: <seconds left in the window>` and
//! `X-Sentry-Rate-Limits: <seconds>:error;default:project`, which SDKs obey
//! by dropping error events until then; nothing of the request is stored.
//! The check runs after the DSN key is verified, so the map only ever holds
//! configured projects.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(60);

/// The per-project counters; `per_minute == 0` admits everything.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    per_minute: u64,
    windows: Mutex<HashMap<String, Window>>,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    admitted: u64,
}

impl RateLimiter {
    pub(crate) fn new(per_minute: u64) -> RateLimiter {
        RateLimiter {
            per_minute,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one event of `project` at `now`; past the limit, the whole
    /// seconds until its window ends (at least 1).
    pub(crate) fn admit(&self, project: &str, now: Instant) -> Result<(), u64> {
        if self.per_minute == 0 {
            return Ok(());
        }
        let mut windows = self
            .windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let window = windows.entry(project.to_owned()).or_insert(Window {
            started: now,
            admitted: 0,
        });
        if now.duration_since(window.started) >= WINDOW {
            *window = Window {
                started: now,
                admitted: 0,
            };
        }
        if window.admitted < self.per_minute {
            window.admitted += 1;
            return Ok(());
        }
        let left = WINDOW.saturating_sub(now.duration_since(window.started));
        Err(left.as_secs_f64().ceil().max(1.0) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each project has its own window; past the limit the answer is the
    /// seconds left, and a new window admits again.
    #[test]
    fn windows() {
        let limiter = RateLimiter::new(2);
        let start = Instant::now();
        assert_eq!(limiter.admit("1", start), Ok(()));
        assert_eq!(limiter.admit("1", start), Ok(()));
        assert_eq!(
            limiter.admit("1", start + Duration::from_millis(500)),
            Err(60)
        );
        assert_eq!(limiter.admit("1", start + Duration::from_secs(45)), Err(15));
        assert_eq!(limiter.admit("2", start), Ok(()));
        assert_eq!(limiter.admit("1", start + Duration::from_secs(60)), Ok(()));
    }

    /// 0 is off.
    #[test]
    fn zero_is_off() {
        let limiter = RateLimiter::new(0);
        let now = Instant::now();
        assert!((0..10_000).all(|_| limiter.admit("1", now).is_ok()));
    }
}

//! An action's check: a command or request that says whether the system
//! is healthy. Before the run it confirms the problem (a healthy system
//! needs no action); after the run it is repeated until it passes or
//! `check_timeout_seconds` end.

use std::collections::BTreeMap;
use std::time::Duration;

use domain::config::ActionConfig;
use serde_json::{Value, json};

use super::{command, http};
use crate::job::Stop;

/// Pause between two looks of the post-check.
const RECHECK: Duration = Duration::from_secs(1);

/// One look: whether the system is healthy, and the record.
pub(super) async fn once(
    action: &ActionConfig,
    env: &[(String, String)],
    fields: &BTreeMap<&str, String>,
) -> Result<Option<(bool, Value)>, Stop> {
    let timeout = Duration::from_secs(action.check_timeout_seconds);
    if let Some(check) = &action.check {
        let ran = command::run(check, env.to_vec(), timeout).await?;
        return Ok(Some((ran.passed, ran.record)));
    }
    if let Some(request) = &action.check_http {
        let sent = http::send_request(request, fields, timeout).await?;
        return Ok(Some((sent.passed, sent.record)));
    }
    Ok(None)
}

/// The post-check: looks until healthy or `check_timeout_seconds` end.
/// `None` when the action has no check.
pub(super) async fn until_healthy(
    action: &ActionConfig,
    env: &[(String, String)],
    fields: &BTreeMap<&str, String>,
) -> Result<Option<(bool, Value)>, Stop> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(action.check_timeout_seconds);
    let mut looks = 0_u32;
    loop {
        let Some((healthy, mut record)) = once(action, env, fields).await? else {
            return Ok(None);
        };
        looks += 1;
        let now = tokio::time::Instant::now();
        if healthy || now + RECHECK >= deadline {
            record["looks"] = json!(looks);
            return Ok(Some((healthy, record)));
        }
        tokio::time::sleep(RECHECK).await;
    }
}

//! A run that failed, or whose post-check still fails, escalates to a
//! human where one is already looking: the tracking issue of the incident
//! (or of an incident linked to it), else the PagerDuty incident (its own,
//! or a linked one) as a note. The cooldown then keeps the action from
//! running again while the human looks.
//!
//! The message is suture's own words with the action's name; the incident
//! title is not echoed.

use domain::config::{ActionConfig, ForgeKind, SignalSource};
use serde_json::{Value, json};
use store::Incident;

use crate::cause::Cause;
use crate::job::{Ctx, Stop};

/// Escalates `message` about `action` on `incident`; answers where it went.
pub(super) async fn escalate(
    ctx: &Ctx<'_>,
    incident: &Incident,
    action: &ActionConfig,
    message: &str,
) -> Result<Value, Stop> {
    let store = ctx.store();
    let mut incidents = vec![incident.clone()];
    for id in store.linked_incidents(incident.id).await? {
        incidents.extend(store.incident(id).await?);
    }
    let text = format!(
        "suture's recovery action {} needs a human: {message}. It will not run again within its \
         cooldown ({} s). The run's record is on suture incident #{} and in `GET /api/actions`.",
        agent::markdown::code(&action.name),
        action.cooldown_seconds,
        incident.id
    );
    for candidate in &incidents {
        let attempts = store
            .attempts_for_fingerprint(&candidate.fingerprint)
            .await?;
        let Some((attempt, number)) = attempts
            .iter()
            .rev()
            .find_map(|attempt| attempt.tracking_issue.map(|number| (attempt, number)))
        else {
            continue;
        };
        let Some(forge) = ForgeKind::parse(&attempt.forge)
            .and_then(|kind| ctx.forges().find(kind, &attempt.forge_repo))
        else {
            continue;
        };
        forge
            .forge
            .comment(u64::try_from(number).unwrap_or_default(), &text)
            .await
            .map_err(Cause::forge("escalating on the tracking issue"))?;
        return Ok(json!({"tracking_issue": number}));
    }
    if let Some(pagerduty) = &ctx.forges().pagerduty {
        for candidate in &incidents {
            if candidate.source != SignalSource::Pagerduty.as_str() {
                continue;
            }
            let Some(upstream) = &candidate.upstream_id else {
                continue;
            };
            pagerduty
                .add_note(upstream, &text)
                .await
                .map_err(Cause::forge("escalating with a PagerDuty note"))?;
            return Ok(json!({"pagerduty_incident": upstream}));
        }
    }
    Ok(
        json!({"nowhere": "no tracking issue and no PagerDuty incident to tell; the timeline says it"}),
    )
}

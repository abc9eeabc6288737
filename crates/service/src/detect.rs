//! The `detect` job: another look at an `observed` incident that received
//! events (the write path queues it), so a burst or the `min_events`-th
//! event starts the round triage held back. The rules are
//! [`crate::triage`]'s; this only starts the round.

use serde_json::json;
use store::IncidentState;

use crate::job::{Ctx, Stop};
use crate::triage;

/// Looks again at the job's incident.
pub(crate) async fn run(ctx: &Ctx<'_>) -> Result<(), Stop> {
    let store = ctx.store();
    let Some(incident) = store.incident(ctx.job.incident_id).await? else {
        return Ok(());
    };
    if incident.state != IncidentState::Observed {
        return Ok(());
    }
    let Some(signal_id) = incident.event_signal_id else {
        return Ok(());
    };
    let Some(signal) = store.signal(signal_id).await? else {
        return Ok(());
    };
    let Some(repo) = ctx
        .config()
        .repo_for(&signal.source, signal.project.as_deref())
    else {
        return Ok(());
    };
    let Some(trigger) = triage::look_again(store, repo, &incident, chrono::Utc::now()).await?
    else {
        return Ok(());
    };
    let round = store
        .start_round(
            incident.id,
            Some(&json!({"trigger": trigger})),
            &format!("{trigger}: a round starts for this observed incident"),
        )
        .await?;
    tracing::info!(
        incident_id = incident.id,
        round,
        trigger,
        "observed incident starts a round"
    );
    Ok(())
}

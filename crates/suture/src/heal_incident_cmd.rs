//! `suture heal-incident ID`: start a healing round for any incident,
//! whatever triage said of it (an `observed` incident, one that ended
//! `unfixed`). The round is `manual`: it skips triage and the
//! fingerprint's cooldown, and still runs within the repository's other
//! limits and the kill switch.

use std::path::PathBuf;

use clap::Args;
use serde_json::json;

use crate::CommandError;
use crate::pause_cmd::with_store;

/// Flags of `suture heal-incident`.
#[derive(Debug, Args)]
pub(crate) struct HealIncidentArgs {
    /// The incident's id, as `/api/incidents` shows it.
    id: i64,
    /// The configuration file [default: suture.toml, when it exists].
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

/// `suture heal-incident`.
pub(crate) fn run(args: &HealIncidentArgs) -> Result<(), CommandError> {
    let by = std::env::var("USER").ok().filter(|user| !user.is_empty());
    let id = args.id;
    let missing = std::cell::Cell::new(false);
    let missing_flag = &missing;
    let result = with_store(args.config.as_ref(), None, |store| async move {
        if store.incident(id).await?.is_none() {
            missing_flag.set(true);
            return Ok(());
        }
        let message = format!(
            "{} asked for a round (suture heal-incident)",
            by.as_deref().unwrap_or("an operator")
        );
        let round = store
            .start_round(
                id,
                Some(&json!({"trigger": "manual", "requested_by": by})),
                &message,
            )
            .await?;
        println!("incident {id}: round {round} queued");
        Ok(())
    });
    if missing.get() {
        return Err(CommandError::bad_input(anyhow::anyhow!(
            "no incident {id} in the store this configuration uses"
        )));
    }
    result
}

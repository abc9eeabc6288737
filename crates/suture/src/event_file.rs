//! Reading an event from a file in whichever shape it was saved: an SDK event,
//! a webhook body, or a whole SDK envelope.

use std::path::Path;

use anyhow::{Context, anyhow};
use domain::event::{ParsedEvent, parse_event};
use ingest::envelope::Envelope;

/// Reads and parses the event file.
pub(crate) fn load(path: &Path) -> anyhow::Result<ParsedEvent> {
    let bytes = std::fs::read(path).with_context(|| format!("reading event {}", path.display()))?;
    let as_json = parse_event(&bytes);
    let error = match as_json {
        Ok(parsed) => return Ok(parsed),
        Err(error) => error,
    };
    // An envelope is several lines of JSON; a single JSON document never
    // parses as one with items, so only fall back when the JSON read failed.
    if let Ok(envelope) = Envelope::parse(&bytes)
        && let Some(event) = envelope.event()
    {
        return event
            .with_context(|| format!("reading the event item of envelope {}", path.display()));
    }
    Err(anyhow!(error)).with_context(|| format!("{} holds no readable event", path.display()))
}

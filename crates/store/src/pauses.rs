//! The kill switch: what an operator paused (everything, or one
//! repository), why and since when.
//!
//! It is one small document (`pauses`) rather than a table: it is read
//! whole before every outside effect and changed rarely, by hand, and
//! [`Store::update_document`] already makes a change from `suture pause` in
//! one process and from another replica land one after the other. Because
//! every replica reads it from the store right before acting, a pause
//! holds across all of them without any message between processes.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{Store, StoreError, begin_write, dispatch, millis};

/// The name of the document the pauses live in.
const PAUSES_DOCUMENT: &str = "pauses";

/// The timeline kind of a "this step waits for a resume" entry.
const PAUSED_KIND: &str = "paused";

/// One pause: why, since when and who asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pause {
    /// The operator's reason, as given.
    pub reason: String,
    /// When the pause began.
    pub since: DateTime<Utc>,
    /// Who paused, when known (the user running `suture pause`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

/// Everything that is paused.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pauses {
    /// Every repository is paused.
    pub global: Option<Pause>,
    /// Repositories paused one by one, by their `[[repos]]` name.
    #[serde(default)]
    pub repos: BTreeMap<String, Pause>,
}

impl Pauses {
    /// What holds back repository `repo`: the global pause first (it was
    /// the broader decision), else the repository's own.
    pub fn for_repo(&self, repo: &str) -> Option<&Pause> {
        self.global.as_ref().or_else(|| self.repos.get(repo))
    }

    /// Whether nothing is paused.
    pub fn is_empty(&self) -> bool {
        self.global.is_none() && self.repos.is_empty()
    }
}

/// Reads the document's text; a missing document is nothing paused.
fn parse(text: Option<&str>) -> Result<Pauses, StoreError> {
    match text {
        None => Ok(Pauses::default()),
        Some(text) => serde_json::from_str(text)
            .map_err(|error| StoreError::Corrupt(format!("the pauses document: {error}"))),
    }
}

/// A pause with `reason` by `by`, since `kept`'s start when it was paused
/// already (a new reason does not restart the clock).
fn paused(kept: Option<Pause>, reason: &str, by: Option<&str>) -> Pause {
    Pause {
        reason: reason.to_owned(),
        since: kept.map_or_else(Utc::now, |pause| pause.since),
        by: by.map(str::to_owned),
    }
}

fn render(pauses: &Pauses) -> Result<String, StoreError> {
    serde_json::to_string(pauses)
        .map_err(|error| StoreError::Corrupt(format!("the pauses document: {error}")))
}

impl Store {
    /// What is paused now.
    pub async fn pauses(&self) -> Result<Pauses, StoreError> {
        parse(self.document(PAUSES_DOCUMENT).await?.as_deref())
    }

    /// Pauses repository `repo`, or everything when `None`, with `reason`.
    /// Pausing what is already paused replaces the reason and keeps the
    /// original `since`. Answers the pauses after the change.
    pub async fn pause(
        &self,
        repo: Option<&str>,
        reason: &str,
        by: Option<&str>,
    ) -> Result<Pauses, StoreError> {
        self.update_document(PAUSES_DOCUMENT, |text| {
            let mut pauses = parse(text.as_deref())?;
            let slot = match repo {
                None => &mut pauses.global,
                Some(repo) => {
                    let kept = pauses.repos.remove(repo);
                    let pause = paused(kept, reason, by);
                    pauses.repos.insert(repo.to_owned(), pause);
                    return Ok((Some(render(&pauses)?), pauses));
                }
            };
            *slot = Some(paused(slot.take(), reason, by));
            Ok((Some(render(&pauses)?), pauses))
        })
        .await
    }

    /// Lifts the pause of repository `repo`, or the global pause when
    /// `None` (repositories paused one by one stay paused). Answers the
    /// pause that was lifted, if there was one, and what stays paused.
    pub async fn resume(&self, repo: Option<&str>) -> Result<(Option<Pause>, Pauses), StoreError> {
        self.update_document(PAUSES_DOCUMENT, |text| {
            let mut pauses = parse(text.as_deref())?;
            let lifted = match repo {
                None => pauses.global.take(),
                Some(repo) => pauses.repos.remove(repo),
            };
            let write = match lifted {
                Some(_) => Some(render(&pauses)?),
                None => None,
            };
            Ok((write, (lifted, pauses)))
        })
        .await
    }

    /// Records on incident `incident_id`'s timeline that its work waits
    /// for a resume, as a `paused` entry with `message`, unless the latest
    /// entry already says exactly that: a job that checks again and again
    /// while paused says so once. Answers whether an entry was written.
    pub async fn note_paused(&self, incident_id: i64, message: &str) -> Result<bool, StoreError> {
        dispatch!(self, pool => {
            let mut tx = begin_write!(self, pool);
            let latest: Option<(String, String)> = sqlx::query_as(
                "SELECT kind, message FROM timeline WHERE incident_id = $1 ORDER BY id DESC LIMIT 1",
            )
            .bind(incident_id)
            .fetch_optional(&mut *tx)
            .await?;
            if latest.is_some_and(|(kind, said)| kind == PAUSED_KIND && said == message) {
                tx.rollback().await?;
                return Ok(false);
            }
            sqlx::query(
                "INSERT INTO timeline (incident_id, at, kind, message, data) VALUES ($1, $2, $3, $4, NULL)",
            )
            .bind(incident_id)
            .bind(millis(Utc::now()))
            .bind(PAUSED_KIND)
            .bind(message)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(true)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The global pause wins over a repository's own; a repository that
    /// is not paused is free.
    #[test]
    fn the_global_pause_comes_first() {
        let pause = |reason: &str| Pause {
            reason: reason.to_owned(),
            since: Utc::now(),
            by: None,
        };
        let mut pauses = Pauses::default();
        assert!(pauses.is_empty());
        pauses.repos.insert("app".into(), pause("flaky deploy"));
        assert_eq!(pauses.for_repo("app").unwrap().reason, "flaky deploy");
        assert_eq!(pauses.for_repo("other"), None);
        pauses.global = Some(pause("incident review"));
        assert_eq!(pauses.for_repo("other").unwrap().reason, "incident review");
        assert_eq!(pauses.for_repo("app").unwrap().reason, "incident review");
    }

    /// A document that is not the pauses' shape is an error, not "nothing
    /// paused": an unreadable kill switch must not read as off.
    #[test]
    fn an_unreadable_document_is_an_error() {
        assert!(matches!(parse(Some("[1]")), Err(StoreError::Corrupt(_))));
        assert_eq!(parse(None).unwrap(), Pauses::default());
    }
}

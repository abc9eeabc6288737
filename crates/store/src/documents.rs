//! Small named documents, read whole and updated whole under a lock.
//!
//! Some state is one small JSON document rather than rows (the local forge
//! keeps its pull request records this way). What it needs from the store is
//! read-modify-write that concurrent writers, in this process or in another
//! replica, cannot interleave: [`Store::update_document`] runs the edit
//! inside one write transaction that holds a lock on the name.

use chrono::Utc;

use crate::{Db, Store, StoreError, begin_write, dispatch, millis};

/// The first key of the PostgreSQL advisory locks taken on document names
/// (the second is a hash of the name); the two-key lock space is apart from
/// the one-key lock migrations take.
const DOCUMENT_LOCK_CLASS: i32 = 0x5375_446f; // "SuDo"

/// A stable 32-bit hash (FNV-1a) of `name`: the second key of its lock. A
/// collision only makes two names wait for each other.
pub(crate) fn lock_key(name: &str) -> i32 {
    let hash = name.bytes().fold(0x811c_9dc5_u32, |hash, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    });
    i32::from_ne_bytes(hash.to_ne_bytes())
}

impl Store {
    /// The document called `name`, if one was written.
    pub async fn document(&self, name: &str) -> Result<Option<String>, StoreError> {
        dispatch!(self, pool => {
            Ok(sqlx::query_scalar("SELECT doc FROM documents WHERE name = $1")
                .bind(name)
                .fetch_optional(pool)
                .await?)
        })
    }

    /// Reads, edits and writes back document `name` in one write
    /// transaction, so concurrent updaters of one name run one after the
    /// other and none loses another's write. `edit` gets the current text
    /// (`None` when there is none) and returns the new text (`None` to write
    /// nothing) and a result handed back to the caller. An `Err` from `edit`
    /// writes nothing and is returned as is.
    ///
    /// SQLite serialises through `BEGIN IMMEDIATE`; PostgreSQL through a
    /// transaction-scoped advisory lock on the name, which also covers a
    /// name that has no row yet.
    pub async fn update_document<T, E>(
        &self,
        name: &str,
        edit: impl FnOnce(Option<String>) -> Result<(Option<String>, T), E>,
    ) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        match self.update_document_inner(name, edit).await {
            Ok(result) => result,
            Err(error) => Err(E::from(error)),
        }
    }

    /// [`Store::update_document`] with the store's errors apart from the
    /// edit's.
    async fn update_document_inner<T, E>(
        &self,
        name: &str,
        edit: impl FnOnce(Option<String>) -> Result<(Option<String>, T), E>,
    ) -> Result<Result<T, E>, StoreError> {
        dispatch!(self, pool => {
            let mut tx = begin_write!(self, pool);
            if matches!(self.db, Db::Postgres(_)) {
                sqlx::query("SELECT pg_advisory_xact_lock($1, $2)")
                    .bind(DOCUMENT_LOCK_CLASS)
                    .bind(lock_key(name))
                    .execute(&mut *tx)
                    .await?;
            }
            let current: Option<String> = sqlx::query_scalar("SELECT doc FROM documents WHERE name = $1")
                .bind(name)
                .fetch_optional(&mut *tx)
                .await?;
            match edit(current) {
                Err(error) => {
                    tx.rollback().await?;
                    Ok(Err(error))
                }
                Ok((None, result)) => {
                    tx.rollback().await?;
                    Ok(Ok(result))
                }
                Ok((Some(doc), result)) => {
                    sqlx::query(
                        "INSERT INTO documents (name, doc, updated_at) VALUES ($1, $2, $3) \
                         ON CONFLICT (name) DO UPDATE SET doc = excluded.doc, updated_at = excluded.updated_at",
                    )
                    .bind(name)
                    .bind(doc)
                    .bind(millis(Utc::now()))
                    .execute(&mut *tx)
                    .await?;
                    tx.commit().await?;
                    Ok(Ok(result))
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lock key is stable across builds and platforms (FNV-1a's
    /// published test vectors), so replicas of different builds agree.
    #[test]
    fn lock_key_is_fnv1a() {
        assert_eq!(lock_key(""), 0x811c_9dc5_u32 as i32);
        assert_eq!(lock_key("a"), 0xe40c_292c_u32 as i32);
        assert_eq!(lock_key("foobar"), 0xbf9c_f968_u32 as i32);
    }
}

//! Migrations: the schema, one SQL text for both databases, applied at start.
//!
//! sqlx's own migrator embeds files verbatim, which would mean one copy of
//! the schema per database. Instead each migration is written once (see
//! `migrations/`), the one token that differs (`@ID@`, the auto-assigned
//! key) is substituted per database, and applied versions are recorded in
//! `suture_migrations`. On PostgreSQL an advisory lock serialises replicas
//! that start together; SQLite's write lock does the same.

use crate::{Db, Store, StoreError, begin_write, dispatch, millis};

/// Every migration, in order: (version, name, SQL).
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "init", include_str!("../migrations/0001_init.sql")),
    (2, "loop", include_str!("../migrations/0002_loop.sql")),
    (3, "release", include_str!("../migrations/0003_release.sql")),
    (
        4,
        "releases",
        include_str!("../migrations/0004_releases.sql"),
    ),
    (5, "rounds", include_str!("../migrations/0005_rounds.sql")),
    (6, "actions", include_str!("../migrations/0006_actions.sql")),
];

/// The key PostgreSQL's advisory lock is taken on while migrating.
const MIGRATION_LOCK_KEY: i64 = 0x5375_7475_7265; // "Suture"

/// Applies every migration the database lacks, each in its own transaction.
pub(crate) async fn migrate(store: &Store) -> Result<(), StoreError> {
    migrate_to(store, i64::MAX).await
}

/// Applies the migrations the database lacks up to version `upto`: all of
/// them in service, fewer in the tests that upgrade an older schema.
pub(crate) async fn migrate_to(store: &Store, upto: i64) -> Result<(), StoreError> {
    let known = MIGRATIONS.last().map_or(0, |(version, _, _)| *version);
    dispatch!(store, pool => {
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS suture_migrations \
             (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
        )
        .execute(pool)
        .await?;
    });
    for &(version, name, sql) in MIGRATIONS.iter().filter(|(version, _, _)| *version <= upto) {
        let sql = substitute(&store.db, sql);
        dispatch!(store, pool => {
            let mut tx = begin_write!(store, pool);
            if matches!(store.db, Db::Postgres(_)) {
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(MIGRATION_LOCK_KEY)
                    .execute(&mut *tx)
                    .await?;
            }
            let applied: Option<i64> =
                sqlx::query_scalar("SELECT version FROM suture_migrations WHERE version = $1")
                    .bind(version)
                    .fetch_optional(&mut *tx)
                    .await?;
            if applied.is_none() {
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                    .execute(&mut *tx)
                    .await
                    .map_err(|source| StoreError::Migrate { version, source })?;
                sqlx::query(
                    "INSERT INTO suture_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
                )
                .bind(version)
                .bind(name)
                .bind(millis(chrono::Utc::now()))
                .execute(&mut *tx)
                .await?;
                tracing::info!(version, name, "applied migration");
            }
            tx.commit().await?;
        });
    }
    let found: Option<i64> = dispatch!(store, pool => {
        sqlx::query_scalar("SELECT MAX(version) FROM suture_migrations")
            .fetch_one(pool)
            .await?
    });
    match found {
        Some(found) if found > known => Err(StoreError::SchemaTooNew { found, known }),
        _ => Ok(()),
    }
}

/// `sql` with the dialect token replaced for `db`.
fn substitute(db: &Db, sql: &str) -> String {
    let id = match db {
        Db::Sqlite(_) => "INTEGER PRIMARY KEY",
        Db::Postgres(_) => "BIGSERIAL PRIMARY KEY",
    };
    sql.replace("@ID@", id)
}

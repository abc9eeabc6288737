//! Fresh databases for tests, on both backends.
//!
//! The test suite runs every store-backed test on SQLite and on PostgreSQL.
//! PostgreSQL comes from `SUTURE_TEST_DATABASE_URL`, which `scripts/test`
//! exports after starting a server; each test gets a database of its own,
//! created here. A missing variable fails the test, never skips it.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::{Store, StoreOptions};

/// The variable naming the PostgreSQL server tests use.
pub const DATABASE_URL_VAR: &str = "SUTURE_TEST_DATABASE_URL";

/// The URL of the test PostgreSQL server's maintenance database.
///
/// # Panics
///
/// When `SUTURE_TEST_DATABASE_URL` is not set: the test must fail, with a
/// message saying how to get one.
pub fn postgres_server_url() -> String {
    std::env::var(DATABASE_URL_VAR).unwrap_or_else(|_| {
        panic!(
            "{DATABASE_URL_VAR} is not set: these tests need PostgreSQL; run scripts/test, \
             which starts one and exports the variable"
        )
    })
}

/// Creates an empty database on the test PostgreSQL server and returns its URL.
///
/// # Panics
///
/// When the server is not configured or not reachable.
pub async fn fresh_postgres_url() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let server = postgres_server_url();
    let name = format!(
        "suture_test_{}_{}_{}",
        std::process::id(),
        chrono::Utc::now().timestamp_micros(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(&server)
        .await
        .unwrap_or_else(|error| {
            panic!("connecting to {server} ({DATABASE_URL_VAR}): {error}; run scripts/test")
        });
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .expect("creating a test database");
    let base = server
        .rsplit_once('/')
        .map_or(server.as_str(), |(base, _)| base);
    format!("{base}/{name}")
}

/// Waits (at most `limit`) until no other session is connected to the
/// PostgreSQL database at `url`: the backends of SIGKILLed clients finish
/// (commit what they had been told to, abort the rest) before a test reads.
///
/// # Panics
///
/// When the database cannot be reached or sessions linger past `limit`.
pub async fn wait_for_other_sessions(url: &str, limit: std::time::Duration) {
    let mut connection = <sqlx::PgConnection as sqlx::Connection>::connect(url)
        .await
        .expect("connecting to the test database");
    let deadline = std::time::Instant::now() + limit;
    loop {
        let others: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )
        .fetch_one(&mut connection)
        .await
        .expect("reading pg_stat_activity");
        if others == 0 {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{others} sessions still connected to {url}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// A freshly migrated store on an empty PostgreSQL database.
///
/// # Panics
///
/// When PostgreSQL is not available.
pub async fn fresh_postgres() -> Store {
    let url = fresh_postgres_url().await;
    Store::open(&url, &StoreOptions::default())
        .await
        .expect("opening the test database")
}

/// A freshly migrated store in a new SQLite file under `dir`.
///
/// # Panics
///
/// When the file cannot be created.
pub async fn fresh_sqlite(dir: &std::path::Path) -> Store {
    let url = format!("sqlite:{}", dir.join("suture.db").display());
    Store::open(&url, &StoreOptions::default())
        .await
        .expect("opening the test database")
}

/// Opens the database at `url` with the migrations applied only up to
/// version `version`: upgrade tests fill an older schema with this, then
/// [`Store::open`] it to migrate the rest. Only queries that older schema
/// has may run on the returned store.
///
/// # Panics
///
/// When the database cannot be opened or migrated.
pub async fn open_at_version(url: &str, version: i64) -> Store {
    let store = Store::connect(url, &StoreOptions::default())
        .await
        .expect("opening the test database");
    crate::schema::migrate_to(&store, version)
        .await
        .expect("migrating the test database");
    store
}

/// Runs `sql` (statements without parameters) on `store`'s database: for
/// tests that write rows the way an older schema's code did.
///
/// # Panics
///
/// When the statements fail.
pub async fn execute(store: &Store, sql: &str) {
    crate::dispatch!(store, pool => {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(pool)
            .await
            .expect("running test sql");
    });
}

/// Runs each named scenario, an `async fn(Store)` of the calling module, as
/// two `#[tokio::test]`s: `sqlite::NAME` on a fresh SQLite file and
/// `postgres::NAME` on a fresh PostgreSQL database.
#[macro_export]
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let dir = tempfile::tempdir().unwrap();
                    super::$name($crate::testing::fresh_sqlite(dir.path()).await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name($crate::testing::fresh_postgres().await).await;
                }
            )*
        }
    };
}

//! The store: one SQLite database in the data directory, opened once per process as a
//! connection pool, with the schema from `migrations/` embedded in the binary.
//!
//! Opening, configuring and migrating the database live here, and so, module by module, do
//! the queries, one module per table family with typed functions: `jobs` (the lease
//! queue), `runs` (a run's progress, training steps, probes, adapter), `samples` (sampled
//! answers: the runner's writes, the sample browser's and export's reads), `judgements`
//! (the judges' verdicts), `prompts`, `questions`, `models`, `reviews` (labels and pins),
//! `datasets`, `experiments`, `strength` (the prompt-strength caches) and `workers` (the
//! workers registry and which worker held which run). The domain
//! modules call them and hold no SQL. A store module imports no other domain module
//! (`scripts/check-layers` checks both): the row types it returns live here and the domain
//! re-exports them.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

pub mod datasets;
pub mod experiments;
pub mod jobs;
pub mod judgements;
pub mod models;
pub mod prompts;
pub mod questions;
pub mod reviews;
pub mod runs;
pub mod samples;
pub mod strength;
pub mod workers;

/// Errors from opening or using the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create the data directory {path}: {source}")]
    DataDir { path: PathBuf, source: std::io::Error },
    #[error("cannot open the database {path}: {source}")]
    Open { path: PathBuf, source: sqlx::Error },
    #[error("cannot migrate the database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Sql(#[from] sqlx::Error),
}

/// The embedded migrations; `sqlx::migrate!` reads the folder at compile time.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations");

/// A connection of the store, inside a transaction (`Store::begin`) or taken from the
/// pool: what store functions take when a caller composes several into one unit of work.
pub type Connection = sqlx::SqliteConnection;

/// A handle to the database. Cheap to clone: clones share the pool.
#[derive(Clone, Debug)]
pub struct Store {
    pool: SqlitePool,
    /// The data directory the database lives in; run artefacts (adapters) are stored
    /// under it by relative path, so code that checks them needs it.
    data_dir: PathBuf,
}

impl Store {
    /// Opens (creating if needed) `DATA_DIR/inoculab.sqlite`, in WAL mode so readers (page
    /// loads) never wait on the writer (the job worker), and applies pending migrations.
    pub async fn open(data_dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(data_dir)
            .map_err(|source| StoreError::DataDir { path: data_dir.to_owned(), source })?;
        let path = data_dir.join("inoculab.sqlite");
        let options = SqliteConnectOptions::from_str("sqlite://")
            .expect("a constant URL parses")
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // NORMAL is durable across process crashes in WAL mode; only an OS crash can lose
            // the last transactions, never corrupt the file.
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await
            .map_err(|source| StoreError::Open { path: path.clone(), source })?;
        MIGRATOR.run(&pool).await?;
        Ok(Store { pool, data_dir: data_dir.to_owned() })
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Begins a transaction for a unit of work that spans several store calls (each taking
    /// the `&mut SqliteConnection` it derefs to); the caller commits it, and dropping it
    /// uncommitted rolls everything back.
    pub async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
        self.pool.begin().await
    }

    /// The data directory: paths stored relative to it (a run's `adapter_dir`) resolve here.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Runs `PRAGMA integrity_check`; returns SQLite's report, `"ok"` when healthy.
    pub async fn integrity_check(&self) -> Result<String, StoreError> {
        let row: (String,) = sqlx::query_as("PRAGMA integrity_check").fetch_one(&self.pool).await?;
        Ok(row.0)
    }

    /// Folds the write-ahead log into the database file and truncates it, so the file's size
    /// is the database's (the benchmarks measure it).
    pub async fn wal_checkpoint(&self) -> Result<(), StoreError> {
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&self.pool).await?;
        Ok(())
    }

    /// Reads a value from the `meta` table.
    pub async fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT value FROM meta WHERE key = ?").bind(key).fetch_optional(&self.pool).await?;
        Ok(row.map(|r| r.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn opens_migrates_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        assert_eq!(store.integrity_check().await.unwrap(), "ok");
        let mode: (String,) = sqlx::query_as("PRAGMA journal_mode").fetch_one(store.pool()).await.unwrap();
        assert_eq!(mode.0, "wal");
        drop(store);
        // A second open finds the migrations applied and changes nothing.
        let store = Store::open(dir.path()).await.unwrap();
        assert_eq!(store.meta("missing").await.unwrap(), None);
    }
}

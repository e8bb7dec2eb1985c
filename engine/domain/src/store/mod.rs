//! The store: one database, SQLite (the default: a file in the data directory) or Postgres
//! (several machines sharing one queue), opened once per process as a connection pool,
//! with each backend's schema from `migrations/<backend>/` embedded in the binary.
//!
//! Opening, configuring and migrating the database live here, and so, module by module, do
//! the queries, one module per table family with typed functions: `jobs` (the lease
//! queue), `workers`, `runs` (a run's progress, training steps, probes, adapter), `samples`
//! (sampled answers: the runner's writes, the sample browser's and export's reads),
//! `judgements` (the judges' verdicts), `prompts`, `questions`, `models`, `reviews` (labels
//! and pins), `datasets`, `experiments` and `strength` (the prompt-strength caches). The
//! domain modules call them and hold no SQL. A store module imports no other domain module
//! (`scripts/check-layers` checks both): the row types it returns live here and the domain
//! re-exports them.
//!
//! Both backends run the same query text through sqlx's `any` driver, so the SQL is the
//! common dialect of SQLite >= 3.44 and Postgres 15: `$N` placeholders, `ON CONFLICT`,
//! `RETURNING`, `COUNT(*) FILTER (WHERE ...)`, `string_agg`; timestamps are bound from Rust
//! ([`now_text`]), never computed by SQL functions; flags are integers (0/1) on both, read
//! as `i64`, because the `any` driver cannot read SQLite's integers as `bool`. Where the two
//! really differ (text search, JSON, the job claim's locking) a query asks [`Backend`].

use std::path::{Path, PathBuf};
use std::str::FromStr;

use sqlx::any::{AnyArguments, AnyPoolOptions};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{AnyPool, Arguments, ConnectOptions, Executor};

pub mod accounts;
pub mod calibrations;
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
// Not SQL, but the store's other half: run artefacts by key (see the module).
pub mod artifacts;

/// Errors from opening or using the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create the data directory {path}: {source}")]
    DataDir { path: PathBuf, source: std::io::Error },
    /// `target` is the SQLite file or the Postgres URL without its password.
    #[error("cannot open the database {target}: {source}")]
    Open { target: String, source: sqlx::Error },
    #[error("unsupported database URL {0:?}: expected sqlite://PATH or postgres://USER@HOST/DB")]
    Url(String),
    #[error("cannot migrate the database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("{0}")]
    Artifacts(#[from] artifacts::ArtifactError),
}

/// The embedded migrations of each backend; `sqlx::migrate!` reads the folders at compile
/// time. They are kept apart because the schemas differ where the backends do (SQLite's
/// FTS5 index and `STRICT` tables, Postgres' trigram index and PL/pgSQL triggers); the
/// tables, columns and keys are the same.
pub static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/sqlite");
pub static POSTGRES_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/postgres");

/// A connection of the store, inside a transaction (`Store::begin`) or taken from the
/// pool: what store functions take when a caller composes several into one unit of work.
pub type Connection = sqlx::AnyConnection;

/// Which database a pool or connection talks to, for the few queries that differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The backend of a connection (functions that take one inside a caller's
    /// transaction have no `Store` to ask).
    pub fn of(conn: &Connection) -> Backend {
        if conn.backend_name() == "PostgreSQL" {
            Backend::Postgres
        } else {
            Backend::Sqlite
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// A handle to the database. Cheap to clone: clones share the pool.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// Postgres' URL, for the connection that listens for new jobs (`jobs::listen`).
    url: Secret,
    /// The data directory: this node's own files (the SQLite file by default, the model
    /// cache, a worker's scratch folders).
    data_dir: PathBuf,
    /// Where run artefacts (checkpoints, adapters) live, by key (`runs.adapter_dir`): the
    /// data directory unless `--artifacts` names a shared directory or a bucket. The
    /// database and the artefacts travel together, so the store carries both.
    artifacts: artifacts::Artifacts,
}

/// Connections per process, at most. SQLite: readers never wait on the writer in WAL mode.
/// Postgres: with a worker's listening connection that is 9 per worker, so a server's
/// default `max_connections` of 100 serves a web node and about ten workers; raise it for
/// more.
const MAX_CONNECTIONS: u32 = 8;

impl Store {
    /// Opens the default store, `DATA_DIR/inoculab.sqlite` (created if needed).
    pub async fn open(data_dir: &Path) -> Result<Store, StoreError> {
        Store::connect(data_dir, None).await
    }

    /// Opens the store at `database_url` (`sqlite://PATH` or `postgres://...`; `None`: the
    /// data directory's SQLite file), applies pending migrations, and keeps `data_dir` for
    /// artefacts.
    pub async fn connect(data_dir: &Path, database_url: Option<&str>) -> Result<Store, StoreError> {
        std::fs::create_dir_all(data_dir)
            .map_err(|source| StoreError::DataDir { path: data_dir.to_owned(), source })?;
        sqlx::any::install_default_drivers();
        let (url, backend) = match database_url.map(str::trim).filter(|u| !u.is_empty()) {
            None => (sqlite_url(&data_dir.join("inoculab.sqlite")), Backend::Sqlite),
            // Created when missing, like the default file, unless the URL says otherwise.
            Some(u) if u.starts_with("sqlite:") && !u.contains("mode=") => {
                (format!("{u}{}mode=rwc", if u.contains('?') { '&' } else { '?' }), Backend::Sqlite)
            }
            Some(u) if u.starts_with("sqlite:") => (u.to_owned(), Backend::Sqlite),
            Some(u) if u.starts_with("postgres://") || u.starts_with("postgresql://") => {
                (without_statement_cache(u), Backend::Postgres)
            }
            Some(u) => return Err(StoreError::Url(redact_url(u))),
        };
        let mut options = AnyPoolOptions::new().max_connections(MAX_CONNECTIONS);
        if backend == Backend::Sqlite {
            options = options.after_connect(|conn, _| {
                Box::pin(async move {
                    // WAL: page loads read while the worker writes. NORMAL is durable across
                    // process crashes in WAL mode; only an OS crash can lose the last
                    // transactions, never corrupt the file. Several worker processes on one
                    // file wait for each other's writes up to the busy timeout.
                    conn.execute(
                        "PRAGMA busy_timeout = 10000; PRAGMA journal_mode = WAL; \
                         PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
                    )
                    .await?;
                    Ok(())
                })
            });
        }
        let pool =
            options.connect(&url).await.map_err(|source| StoreError::Open { target: redact_url(&url), source })?;
        match backend {
            Backend::Sqlite => SQLITE_MIGRATOR.run(&pool).await?,
            Backend::Postgres => POSTGRES_MIGRATOR.run(&pool).await?,
        }
        let artifacts = artifacts::Artifacts::directory(data_dir)?;
        Ok(Store { pool, backend, url: Secret(url), data_dir: data_dir.to_owned(), artifacts })
    }

    /// The store tests run on: the data directory's SQLite file, or, when
    /// `INOCULAB_TEST_DATABASE_URL` names a Postgres server, a new empty database on it
    /// (named after a random suffix, so tests running side by side never share one).
    /// `scripts/test` sets the variable for its second pass over the domain's suites.
    pub async fn open_for_test(data_dir: &Path) -> Result<Store, StoreError> {
        match test_database_url().await? {
            None => Store::open(data_dir).await,
            Some(url) => Store::connect(data_dir, Some(&url)).await,
        }
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The URL the store was opened with (credentials included: never show or log it).
    fn url(&self) -> &str {
        &self.url.0
    }

    /// Begins a transaction for a unit of work that spans several store calls (each taking
    /// the `&mut Connection` it derefs to); the caller commits it, and dropping it
    /// uncommitted rolls everything back.
    pub async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
        self.pool.begin().await
    }

    /// This node's data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The artefact store (see [`crate::artifacts`]).
    pub fn artifacts(&self) -> &artifacts::Artifacts {
        &self.artifacts
    }

    /// The same store with its artefacts elsewhere (`--artifacts`).
    pub fn with_artifacts(mut self, artifacts: artifacts::Artifacts) -> Store {
        self.artifacts = artifacts;
        self
    }

    /// SQLite's `PRAGMA integrity_check` (`"ok"` when healthy); on Postgres, which checks
    /// its own pages, `"ok"` once a query answers.
    pub async fn integrity_check(&self) -> Result<String, StoreError> {
        let sql = match self.backend {
            Backend::Sqlite => "PRAGMA integrity_check",
            Backend::Postgres => "SELECT 'ok'",
        };
        let row: (String,) = sqlx::query_as(sql).fetch_one(&self.pool).await?;
        Ok(row.0)
    }

    /// Folds SQLite's write-ahead log into the database file and truncates it, so the
    /// file's size is the database's (the benchmarks measure it). Nothing on Postgres.
    pub async fn wal_checkpoint(&self) -> Result<(), StoreError> {
        if self.backend == Backend::Sqlite {
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&self.pool).await?;
        }
        Ok(())
    }

    /// The database's size on disk, in bytes: SQLite's file (without its write-ahead log;
    /// see `wal_checkpoint`), or what Postgres reports for the database.
    pub async fn size_bytes(&self) -> Result<u64, StoreError> {
        let (bytes,): (i64,) = match self.backend {
            Backend::Sqlite => {
                sqlx::query_as("SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()")
                    .fetch_one(&self.pool)
                    .await?
            }
            Backend::Postgres => {
                sqlx::query_as("SELECT pg_database_size(current_database())").fetch_one(&self.pool).await?
            }
        };
        Ok(bytes.max(0) as u64)
    }

    /// Refreshes Postgres' planner statistics (`ANALYZE`), as autovacuum does within a
    /// minute or so of a bulk load; the benchmark calls it after filling the store so that
    /// it times the plans a running server gets. Nothing on SQLite, whose queries fix their
    /// own join order and keep no statistics.
    pub async fn analyze(&self) -> Result<(), StoreError> {
        if self.backend == Backend::Postgres {
            sqlx::query("ANALYZE").execute(&self.pool).await?;
        }
        Ok(())
    }

    /// Reads a value from the `meta` table.
    pub async fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT value FROM meta WHERE key = $1").bind(key).fetch_optional(&self.pool).await?;
        Ok(row.map(|r| r.0))
    }
}

/// A new empty database on the Postgres server that `INOCULAB_TEST_DATABASE_URL` names,
/// for a test (or a benchmark) to use alone: its URL, or `None` when the variable is unset
/// (SQLite, then).
pub async fn test_database_url() -> Result<Option<String>, StoreError> {
    let Ok(server) = std::env::var("INOCULAB_TEST_DATABASE_URL") else { return Ok(None) };
    fresh_database(&server).await.map(Some)
}

/// Creates a database with a random name on the Postgres server at `server` (a URL whose
/// path names a database to connect to first) and returns the new database's URL.
pub async fn fresh_database(server: &str) -> Result<String, StoreError> {
    sqlx::any::install_default_drivers();
    let admin =
        AnyPool::connect(server).await.map_err(|source| StoreError::Open { target: redact_url(server), source })?;
    let name = format!("inoculab_test_{:016x}", rand::random::<u64>());
    admin.execute(format!("CREATE DATABASE {name}").as_str()).await?;
    admin.close().await;
    // The server URL's path names its maintenance database; the new one replaces it.
    let (base, query) = server.split_once('?').map(|(b, q)| (b, Some(q))).unwrap_or((server, None));
    let base = base.rsplit_once('/').map(|(b, _)| b).unwrap_or(base);
    Ok(match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    })
}

/// A database URL, which may carry a password: `Debug` prints it redacted, so a `Store` in
/// a log line or a panic message never shows it.
#[derive(Clone)]
struct Secret(String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", redact_url(&self.0))
    }
}

/// The URL of a SQLite file, created if missing.
fn sqlite_url(path: &Path) -> String {
    SqliteConnectOptions::from_str("sqlite://")
        .expect("a constant URL parses")
        .filename(path)
        .create_if_missing(true)
        .to_url_lossy()
        .to_string()
}

/// The Postgres URL with the driver's prepared-statement cache off. sqlx 0.8's `any`
/// driver sends a NULL `f64` as a NULL `float4`; a statement cached after such a first use
/// then refuses every later non-NULL `f64` ("incorrect binary data format"). Unnamed
/// statements are planned per use with the types of that use, which the store's short
/// queries hardly notice (and which poolers such as PgBouncer need anyway).
fn without_statement_cache(url: &str) -> String {
    if url.contains("statement-cache-capacity=") {
        return url.to_owned();
    }
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}statement-cache-capacity=0")
}

/// A database URL fit for messages and logs: the password, if any, replaced by `***`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let (authority, tail) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            let user = if userinfo.contains(':') { format!("{user}:***") } else { user.to_owned() };
            let tail = tail.split('?').next().unwrap_or("");
            format!("{scheme}://{user}@{host}{tail}")
        }
        None => format!("{scheme}://{authority}{}", tail.split('?').next().unwrap_or("")),
    }
}

/// Now, as the text every `*_at` column holds: RFC 3339 UTC with milliseconds
/// (`2026-12-06T13:39:36.123Z`), the same text SQLite's `strftime('%Y-%m-%dT%H:%M:%fZ')`
/// column defaults write, so old and new rows sort together.
pub fn now_text() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}

/// Model output as stored: NUL characters replaced by U+FFFD. Postgres' text cannot hold
/// NUL, and a small model samples one now and then; both backends store the same text so a
/// sample reads the same whichever holds it.
pub fn storable(text: &str) -> std::borrow::Cow<'_, str> {
    if text.contains('\0') {
        std::borrow::Cow::Owned(text.replace('\0', "\u{FFFD}"))
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

/// A query assembled at run time, numbering its placeholders `$1, $2, ...` as both
/// backends read them (sqlx's `QueryBuilder` writes `?` for the `any` driver, which
/// Postgres refuses).
pub struct Sql<'q> {
    text: String,
    args: AnyArguments<'q>,
}

impl<'q> Sql<'q> {
    pub fn new(text: &str) -> Sql<'q> {
        Sql { text: text.to_owned(), args: AnyArguments::default() }
    }

    pub fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Appends a placeholder bound to `value`.
    pub fn bind<T>(&mut self, value: T) -> &mut Self
    where
        T: 'q + sqlx::Encode<'q, sqlx::Any> + sqlx::Type<sqlx::Any>,
    {
        // Encoding into the `any` buffer only copies the value; it cannot fail.
        self.args.add(value).expect("binding a value to an any-driver query");
        self.text.push('$');
        self.text.push_str(&self.args.len().to_string());
        self
    }

    /// Appends `(v1, v2, ...)`, one placeholder per value.
    pub fn bind_list<T>(&mut self, values: impl IntoIterator<Item = T>) -> &mut Self
    where
        T: 'q + sqlx::Encode<'q, sqlx::Any> + sqlx::Type<sqlx::Any>,
    {
        self.push("(");
        for (i, v) in values.into_iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.bind(v);
        }
        self.push(")")
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn query(&mut self) -> sqlx::query::Query<'_, sqlx::Any, AnyArguments<'_>> {
        sqlx::query_with(&self.text, std::mem::take(&mut self.args))
    }

    pub fn query_as<O>(&mut self) -> sqlx::query::QueryAs<'_, sqlx::Any, O, AnyArguments<'_>>
    where
        O: for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow>,
    {
        sqlx::query_as_with(&self.text, std::mem::take(&mut self.args))
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

    #[test]
    fn urls_are_redacted_and_checked() {
        assert_eq!(redact_url("postgres://me:secret@db:5432/lab?sslmode=require"), "postgres://me:***@db:5432/lab");
        assert_eq!(redact_url("postgres://me@db/lab"), "postgres://me@db/lab");
        assert_eq!(redact_url("postgres://db/lab?password=x"), "postgres://db/lab");
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let err = rt.block_on(Store::connect(dir.path(), Some("mysql://u:pw@h/db"))).unwrap_err();
        assert!(matches!(&err, StoreError::Url(u) if !u.contains("pw")), "{err}");
    }

    #[tokio::test]
    async fn a_sqlite_url_names_a_file_created_when_missing() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("elsewhere.sqlite");
        let url = format!("sqlite://{}", file.display());
        let store = Store::connect(dir.path(), Some(&url)).await.unwrap();
        assert_eq!(store.backend(), Backend::Sqlite);
        assert!(file.exists());
        assert!(!format!("{store:?}").contains("secret"));
    }

    #[test]
    fn a_stores_debug_hides_the_password() {
        let s = Secret("postgres://me:hunter2@db/lab".into());
        assert_eq!(format!("{s:?}"), "\"postgres://me:***@db/lab\"");
    }

    #[test]
    fn placeholders_are_numbered_in_order() {
        let mut q = Sql::new("SELECT 1 FROM t WHERE a = ");
        q.bind(1_i64).push(" AND b IN ").bind_list(["x".to_string(), "y".to_string()]);
        assert_eq!(q.text(), "SELECT 1 FROM t WHERE a = $1 AND b IN ($2, $3)");
    }

    #[test]
    fn nul_is_replaced_before_storing() {
        assert_eq!(storable("a\0b"), "a\u{FFFD}b");
        assert!(matches!(storable("plain"), std::borrow::Cow::Borrowed("plain")));
    }

    #[test]
    fn now_text_has_the_column_format() {
        let t = now_text();
        assert_eq!(t.len(), "2026-12-06T13:39:36.123Z".len(), "{t}");
        assert!(t.ends_with('Z') && t.as_bytes()[10] == b'T', "{t}");
    }
}

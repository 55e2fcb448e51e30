//! Persistent state of the control plane: entities, revisions and worker status, in Postgres or
//! SQLite through the sqlx `Any` driver.
//!
//! The SQL is written once for both databases (`$n` placeholders, BIGINT integers and
//! unix-millisecond timestamps, JSON as TEXT). Every config change is one transaction that first
//! bumps the single `revision_head` row, so writers are serialised and a rejected change uses up no
//! revision number.
//!
//! Its parts import one way, so that each can be read and changed knowing only those below it:
//! `resources` (entity rows and their decoding) ← `revisions` and `history` (the log, the config
//! at a revision) ← `commit` (the write transaction) ← `write` (the changes callers ask for).
//! `nodes` stands apart.

mod commit;
mod history;
mod nodes;
mod resources;
mod revisions;
mod write;

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use gateway_config::{FieldError, ValidationErrors};
use sqlx::any::AnyPoolOptions;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AnyConnection, AnyPool, Connection, SqlSafeStr};

pub use commit::{NOTIFY_CHANNEL, WriteOptions, notified_by};
pub use history::KeptRange;
pub use nodes::{HelloRecord, NodeRow};
pub use resources::{Entity, EntityMeta, Record};
pub use revisions::{LatestConfig, RevisionRow};
pub use write::{Applied, Change, WriteOutcome};

/// The migrations, embedded in the binary so that a deployment needs no files beside it.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "init", include_str!("../../../migrations/0001_init.sql")),
    (
        2,
        "history created_at",
        include_str!("../../../migrations/0002_history_created_at.sql"),
    ),
];

/// Revisions kept by default; older ones are pruned.
pub const DEFAULT_RETENTION: i64 = 1000;

/// How long a request waits for a database connection before the database counts as down.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot reach the database: {0}")]
    Unavailable(String),
    #[error("{kind} `{name}` already exists")]
    AlreadyExists { kind: &'static str, name: String },
    #[error("{kind} `{name}` does not exist")]
    NotFound { kind: &'static str, name: String },
    #[error("upstream `{name}` is used by routes {}", routes.join(", "))]
    InUse {
        name: String,
        routes: Vec<String>,
        /// Each reference: the route and the field that names the upstream.
        references: Vec<(String, String)>,
    },
    #[error("invalid configuration: {0}")]
    Invalid(ValidationErrors),
    #[error("stored {kind} `{name}` is unreadable: {message}")]
    Corrupt {
        kind: String,
        name: String,
        message: String,
    },
    #[error("database error: {0}")]
    Database(String),
    #[error("database migration failed: {0}")]
    Migration(String),
    #[error("the latest revision is {current}, not {expected}")]
    PreconditionFailed { expected: i64, current: i64 },
    #[error("revision {revision} {}", describe_kept(*.kept))]
    RevisionNotKept {
        revision: i64,
        kept: Option<KeptRange>,
    },
}

fn describe_kept(kept: Option<KeptRange>) -> String {
    match kept {
        Some(KeptRange { oldest, latest }) => {
            format!("does not exist or is no longer kept; kept revisions are {oldest} to {latest}")
        }
        None => "does not exist; no revisions have been made yet".to_owned(),
    }
}

impl StoreError {
    /// Whether the error is about reaching the database rather than about the request.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }

    pub fn validation_errors(&self) -> Option<&[FieldError]> {
        match self {
            StoreError::Invalid(errors) => Some(&errors.0),
            _ => None,
        }
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        match &error {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
            | sqlx::Error::Protocol(_) => StoreError::Unavailable(error.to_string()),
            sqlx::Error::Database(db) if is_busy(db.code().as_deref()) => {
                StoreError::Unavailable(error.to_string())
            }
            _ => StoreError::Database(error.to_string()),
        }
    }
}

/// SQLite's "busy"/"locked" codes and Postgres' connection and shutdown classes mean "try later",
/// not "your request is wrong".
fn is_busy(code: Option<&str>) -> bool {
    match code {
        Some(code) => {
            matches!(code, "5" | "6" | "517" | "261" | "262")
                || code.starts_with("08")
                || code.starts_with("57P")
        }
        None => false,
    }
}

/// Current time in unix milliseconds.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Handle on the database; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    /// Set on Postgres, where writes NOTIFY other replicas; they LISTEN with this URL.
    postgres_url: Option<Arc<str>>,
    /// Names this replica in its notifications, so that it can ignore its own: it publishes its
    /// writes itself.
    replica: Arc<str>,
    retention: i64,
}

impl Store {
    /// This replica's id, as its notifications carry it.
    pub fn replica(&self) -> &Arc<str> {
        &self.replica
    }

    /// Connects, switches SQLite to WAL so readers never block the writer, and runs the
    /// migrations.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        // One direct attempt first: a pool only reports "timed out", hiding why it failed.
        AnyConnection::connect(url)
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))?
            .close()
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let pool = AnyPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect(url)
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        if url.starts_with("sqlite:")
            && !url.contains(":memory:")
            && let Err(error) = sqlx::query("PRAGMA journal_mode = WAL")
                .fetch_all(&pool)
                .await
        {
            tracing::warn!(%error, "could not switch SQLite to WAL mode");
        }
        let postgres_url = url.starts_with("postgres").then(|| Arc::from(url));
        let store = Store {
            pool,
            postgres_url,
            replica: uuid::Uuid::new_v4().to_string().into(),
            retention: DEFAULT_RETENTION,
        };
        store.migrate().await?;
        Ok(store)
    }

    /// Keeps only the newest `revisions` revisions (at least 1) from the next write on.
    pub fn with_retention(mut self, revisions: i64) -> Store {
        self.retention = revisions.max(1);
        self
    }

    /// The URL to LISTEN on for revisions committed by other replicas (Postgres only).
    pub fn postgres_url(&self) -> Option<&str> {
        self.postgres_url.as_deref()
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let migrations = MIGRATIONS
            .iter()
            .map(|(version, description, sql)| {
                Migration::new(
                    *version,
                    Cow::Borrowed(*description),
                    MigrationType::Simple,
                    (*sql).into_sql_str(),
                    false,
                )
            })
            .collect();
        Migrator::with_migrations(migrations)
            .run(&self.pool)
            .await
            .map_err(|e| match e {
                sqlx::migrate::MigrateError::Execute(inner) => StoreError::from(inner),
                other => StoreError::Migration(other.to_string()),
            })
    }

    /// Answers whether the database responds at all.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").fetch_one(&self.pool).await?;
        Ok(())
    }

    #[cfg(test)]
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Databases for tests: SQLite in a temporary directory, and a throwaway Postgres database
    //! when `GATEWAY_TEST_POSTGRES_URL` points at a server.

    use super::Store;

    pub struct TestDb {
        pub store: Store,
        pub url: String,
        _dir: Option<tempfile::TempDir>,
    }

    #[allow(clippy::unwrap_used)]
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().unwrap();
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("gateway.db").display()
        );
        let store = Store::connect(&url).await.unwrap();
        TestDb {
            store,
            url,
            _dir: Some(dir),
        }
    }

    impl TestDb {
        /// Drops a throwaway Postgres database; SQLite files go with their temporary directory.
        #[allow(clippy::unwrap_used)]
        pub async fn cleanup(self) {
            if self._dir.is_some() {
                return;
            }
            self.store.pool().close().await;
            let Some((server, name)) = self.url.rsplit_once('/') else {
                return;
            };
            let admin = sqlx::AnyPool::connect(&format!("{server}/postgres"))
                .await
                .unwrap();
            sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE {name}")))
                .execute(&admin)
                .await
                .unwrap();
        }
    }

    /// A fresh Postgres database, or None when no server is configured.
    #[allow(clippy::unwrap_used)]
    pub async fn postgres() -> Option<TestDb> {
        let base = std::env::var("GATEWAY_TEST_POSTGRES_URL").ok()?;
        sqlx::any::install_default_drivers();
        let admin = sqlx::AnyPool::connect(&base).await.unwrap();
        let name = format!("gw_test_{}", uuid::Uuid::new_v4().simple());
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&admin)
            .await
            .unwrap();
        let url = match base.rsplit_once('/') {
            Some((server, _)) => format!("{server}/{name}"),
            None => format!("{base}/{name}"),
        };
        let store = Store::connect(&url).await.unwrap();
        Some(TestDb {
            store,
            url,
            _dir: None,
        })
    }
}

#[cfg(test)]
mod tests;

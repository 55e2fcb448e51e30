//! The handle on the database that every part of the store extends with its own queries:
//! connecting, migrating, and the settings a write needs (retention, the replica's id, where
//! other replicas LISTEN). A leaf of its own, so that the parts take it from here rather than
//! from the module that re-exports them.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AnyConnection, AnyPool, Connection, SqlSafeStr};

use super::error::StoreError;
use crate::kek::Keyring;

/// The migrations, embedded in the binary so that a deployment needs no files beside it.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "init", include_str!("../../../migrations/0001_init.sql")),
    (
        2,
        "history created_at",
        include_str!("../../../migrations/0002_history_created_at.sql"),
    ),
    (
        3,
        "admin tokens",
        include_str!("../../../migrations/0003_admin_tokens.sql"),
    ),
];

/// Revisions kept by default; older ones are pruned.
pub const DEFAULT_RETENTION: i64 = 1000;

/// How long a request waits for a database connection before the database counts as down.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

/// Handle on the database; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pub(super) pool: AnyPool,
    /// Set on Postgres, where writes NOTIFY other replicas; they LISTEN with this URL.
    pub(super) postgres_url: Option<Arc<str>>,
    /// Names this replica in its notifications, so that it can ignore its own: it publishes its
    /// writes itself.
    pub(super) replica: Arc<str>,
    pub(super) retention: i64,
    /// Seals and opens the private keys of certificates; None when the control plane was
    /// given no key-encryption key, and then no private key can be stored or read.
    pub(super) keyring: Option<Arc<Keyring>>,
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
            keyring: None,
        };
        store.migrate().await?;
        Ok(store)
    }

    /// Keeps only the newest `revisions` revisions (at least 1) from the next write on.
    pub fn with_retention(mut self, revisions: i64) -> Store {
        self.retention = revisions.max(1);
        self
    }

    /// Seals private keys with `keyring` from now on.
    pub fn with_keyring(mut self, keyring: Arc<Keyring>) -> Store {
        self.keyring = Some(keyring);
        self
    }

    pub(super) fn keyring(&self) -> Option<&Keyring> {
        self.keyring.as_deref()
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

//! Persistent state of the control plane: entities, revisions and worker status, in Postgres or
//! SQLite through the sqlx `Any` driver.
//!
//! The SQL is written once for both databases (`$n` placeholders, BIGINT integers and
//! unix-millisecond timestamps, JSON as TEXT). Config changes are made in transactions that first
//! lock the single `revision_head` row, so writers are serialised; a transaction may carry several
//! writes, each its own revision, and a rejected change uses up no revision number.
//!
//! The latest config lives in memory as a [`State`] of shared entities; a write changes the
//! caller's state and stores only the rows it touched, and a state that fell behind (another
//! replica wrote) is brought forward from the history rows in between.
//!
//! Its parts import one way, so that each can be read and changed knowing only those below it:
//! `error`, `clock`, `state` (entities in memory) and `handle` (the `Store` itself) ←
//! `resources` (entity rows and their decoding) ← `revisions`, `history` and `catch_up` (the
//! log, the config at a revision, moving a state forward) ← `commit` (the write transaction) ←
//! `batch` (writes sharing a transaction) ← `write` (the changes callers ask for). `nodes`,
//! `tokens` and `reseal` (private keys sealed again after a key rotation) stand apart, on the
//! handle. This module only
//! declares the parts and re-exports what the rest of the crate uses.

mod batch;
mod catch_up;
mod clock;
mod commit;
mod error;
mod handle;
mod history;
mod nodes;
mod reseal;
mod resources;
mod revisions;
mod state;
mod tokens;
mod write;

pub use batch::{Ended, Job, Step};
pub use clock::now_ms;
pub use commit::{NOTIFY_CHANNEL, WriteOptions, notified_by};
pub use error::StoreError;
pub use handle::Store;
pub use nodes::{HelloRecord, NodeAnswer, NodeRow};
pub use revisions::RevisionRow;
pub use state::{Advance, Entity, Key, Record, State};
pub use tokens::{Revocation, TokenRow};
pub use write::{Applied, Change, ConfigWrite, EntityWrite, WriteOutcome};

#[cfg(test)]
pub(crate) mod test_support {
    //! Databases for tests: SQLite in a temporary directory, and a throwaway Postgres database
    //! when `GATEWAY_TEST_POSTGRES_URL` points at a server.

    use std::sync::Arc;

    use super::Store;
    use crate::kek::Keyring;

    /// A keyring of its own for each test database, as a control plane gets from its file.
    #[allow(clippy::unwrap_used)]
    fn keyring() -> (tempfile::TempDir, Arc<Keyring>) {
        let dir = tempfile::tempdir().unwrap();
        let (keyring, _) = Keyring::load_or_create(&dir.path().join("test.kek")).unwrap();
        (dir, Arc::new(keyring))
    }

    pub struct TestDb {
        pub store: Store,
        pub url: String,
        _dir: Option<tempfile::TempDir>,
        _keys: tempfile::TempDir,
    }

    #[allow(clippy::unwrap_used)]
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().unwrap();
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("gateway.db").display()
        );
        let (keys, keyring) = keyring();
        let store = Store::connect(&url).await.unwrap().with_keyring(keyring);
        TestDb {
            store,
            url,
            _dir: Some(dir),
            _keys: keys,
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
        let (keys, keyring) = keyring();
        let store = Store::connect(&url).await.unwrap().with_keyring(keyring);
        Some(TestDb {
            store,
            url,
            _dir: None,
            _keys: keys,
        })
    }
}

#[cfg(test)]
mod tests;

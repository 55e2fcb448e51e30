//! The one place where the config changes: every write (one entity, a declarative apply, a
//! rollback, and the dry runs of each) goes through the replica's writer ([`Batcher`]), which
//! commits it and publishes it to this replica's workers before the caller hears back.
//!
//! Publishing with the commit, rather than leaving it to NOTIFY or the poll, is what gets a local
//! write to local workers at once; doing it in one place means that no write path can forget it.
//! The service knows nothing of HTTP: it answers with the store's errors and its own [`Written`],
//! and the admin API turns those into statuses and bodies.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use gateway_config::{Change as ConfigChange, Config};

use crate::batcher::Batcher;
use crate::hub::SnapshotHub;
use crate::snapshot::Snapshot;
use crate::store::{
    Applied, Change, ConfigWrite, Entity, EntityWrite, Record, Store, StoreError, WriteOptions,
    WriteOutcome,
};

/// How long a read waits for the database before it counts as down (and the admin API answers
/// from memory where it can).
pub const READ_TIMEOUT: Duration = Duration::from_secs(2);

/// A write that has not reached its commit by then is abandoned (its transaction rolls back)
/// and answered as the database being down, so that clients are not left hanging on a database
/// that stopped answering.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(8);

async fn within<T>(
    limit: Duration,
    future: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    tokio::time::timeout(limit, future)
        .await
        .unwrap_or_else(|_| {
            Err(StoreError::Unavailable(
                "the database did not answer in time".into(),
            ))
        })
}

/// Runs a database read with [`READ_TIMEOUT`]; a missed deadline counts as the database being
/// down.
pub async fn read<T>(future: impl Future<Output = Result<T, StoreError>>) -> Result<T, StoreError> {
    within(READ_TIMEOUT, future).await
}

/// What a write did.
#[derive(Debug)]
pub enum Written<T> {
    /// Nothing was stored: `changes` is what the write would do on top of `revision`, the latest.
    DryRun {
        revision: i64,
        changes: Vec<ConfigChange>,
    },
    /// Stored and published; a write that changed nothing made no revision and publishes
    /// nothing.
    Stored(T),
}

/// A stored write of one entity.
#[derive(Debug)]
pub struct EntityStored<T> {
    /// The revision made; the latest one when the write changed nothing.
    pub revision: i64,
    /// True when the write added an entity that did not exist.
    pub created: bool,
    /// The entity as stored now; None after a delete.
    pub record: Option<Record<T>>,
}

/// A stored whole-config write (declarative apply, rollback).
#[derive(Debug)]
pub struct ConfigStored {
    /// The revision made; the latest one when the config already was as asked.
    pub revision: i64,
    /// False when the config already was as asked: then no revision was made.
    pub changed: bool,
    pub changes: Vec<ConfigChange>,
}

/// A whole-config write (declarative apply, rollback) writes every entity it changes, so it
/// gets longer than a one-entity write before it counts as the database being down.
pub const APPLY_TIMEOUT: Duration = Duration::from_secs(120);

/// Commits changes and publishes them; cheap to clone.
#[derive(Clone, Debug)]
pub struct ConfigService {
    store: Store,
    hub: SnapshotHub,
    /// Writers of this replica queue here rather than on the database's revision lock: each
    /// batch starts from the state the previous one published, so none reads the config from
    /// the database, and waiting writers hold no database connection.
    writer: Batcher,
}

impl ConfigService {
    pub fn new(store: Store, hub: SnapshotHub) -> Self {
        let writer = Batcher::start(store.clone(), hub.clone());
        ConfigService { store, hub, writer }
    }

    /// The database, for reads.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The latest config this replica knows, for answers from memory.
    pub fn latest(&self) -> Arc<Snapshot> {
        self.hub.current()
    }

    /// Creates, replaces or deletes one entity, as one revision.
    pub async fn write<T: Entity>(
        &self,
        change: Change<T>,
        options: &WriteOptions,
    ) -> Result<Written<EntityStored<T>>, StoreError> {
        let outcome: WriteOutcome<T> = self
            .writer
            .submit(EntityWrite::new(change, options.clone()), WRITE_TIMEOUT)
            .await?;
        let (revision, created, record) = (outcome.revision, outcome.created, outcome.record);
        Ok(
            self.conclude(options, outcome.dry_run, revision, outcome.changes, |_| {
                EntityStored {
                    revision,
                    created,
                    record,
                }
            }),
        )
    }

    /// Makes the config equal `desired` (a declarative apply), as one revision.
    pub async fn apply(
        &self,
        desired: Config,
        options: &WriteOptions,
    ) -> Result<Written<ConfigStored>, StoreError> {
        self.apply_as(desired, "apply config", options).await
    }

    /// Makes the config equal the one at `revision` again, as a new revision.
    pub async fn rollback(
        &self,
        revision: i64,
        options: &WriteOptions,
    ) -> Result<Written<ConfigStored>, StoreError> {
        let target = read(self.store.config_at(revision)).await?;
        let message = format!("rollback to revision {revision}");
        self.apply_as(target.config, &message, options).await
    }

    async fn apply_as(
        &self,
        desired: Config,
        message: &str,
        options: &WriteOptions,
    ) -> Result<Written<ConfigStored>, StoreError> {
        let applied: Applied = self
            .writer
            .submit(
                ConfigWrite::new(desired, message, options.clone()),
                APPLY_TIMEOUT,
            )
            .await?;
        let (revision, changed) = (applied.revision, applied.changed);
        Ok(self.conclude(
            options,
            applied.dry_run,
            revision,
            applied.changes,
            |changes| ConfigStored {
                revision,
                changed,
                changes,
            },
        ))
    }

    /// How every write ends: a dry run answers with what it would change, anything else with
    /// what was stored, after one audit log line for a write that made a revision.
    fn conclude<T>(
        &self,
        options: &WriteOptions,
        dry_run: bool,
        revision: i64,
        changes: Vec<ConfigChange>,
        stored: impl FnOnce(Vec<ConfigChange>) -> T,
    ) -> Written<T> {
        if dry_run {
            return Written::DryRun { revision, changes };
        }
        if !changes.is_empty() {
            tracing::info!(
                target: "audit",
                actor = %options.actor,
                client = %options.client.map_or_else(|| "-".to_owned(), |c| c.ip().to_string()),
                revision,
                changes = %summary(&changes),
                "config changed"
            );
        }
        Written::Stored(stored(changes))
    }
}

/// Most changes an audit line names one by one; the rest are counted.
const AUDIT_NAMED: usize = 20;

/// `updated route r1, created upstream u2` (and `… and 98 more` past [`AUDIT_NAMED`]).
fn summary(changes: &[ConfigChange]) -> String {
    let mut text = changes
        .iter()
        .take(AUDIT_NAMED)
        .map(|change| {
            let op = match change.op {
                gateway_config::Op::Create => "created",
                gateway_config::Op::Update => "updated",
                gateway_config::Op::Delete => "deleted",
            };
            format!("{op} {} {}", change.kind.as_str(), change.name)
        })
        .collect::<Vec<_>>()
        .join(", ");
    if changes.len() > AUDIT_NAMED {
        text.push_str(&format!(" and {} more", changes.len() - AUDIT_NAMED));
    }
    text
}

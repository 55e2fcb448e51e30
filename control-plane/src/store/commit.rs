//! The one path by which the config changes: a write transaction that takes the revision lock,
//! checks the caller's precondition, and either stores the new state as exactly one revision
//! (resources, history, revision row, pruning, NOTIFY) or, on a dry run or when nothing changes,
//! stores nothing at all.

use std::collections::BTreeSet;

use gateway_config::{Change as ConfigChange, Config, Kind};
use sqlx::{Any, Transaction};

use super::clock::now_ms;
use super::error::StoreError;
use super::handle::Store;
use super::resources::{Current, EntityMeta, load_current};
use super::revisions::LatestConfig;

/// The channel on which Postgres writers announce each new revision.
pub const NOTIFY_CHANNEL: &str = "gateway_revisions";

/// The payload of a revision notification: `<revision> <replica>`.
pub fn notification(revision: i64, replica: &str) -> String {
    format!("{revision} {replica}")
}

/// Whether a notification payload comes from `replica`.
pub fn notified_by(payload: &str, replica: &str) -> bool {
    payload
        .split_once(' ')
        .is_some_and(|(_, sender)| sender == replica)
}

/// How a write is to be made.
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    /// Who asks for the change, recorded in the revision.
    pub actor: String,
    /// Overrides the revision message derived from the change.
    pub message: Option<String>,
    /// The write only happens while this is the latest revision.
    pub if_match: Option<i64>,
    /// Validate and compute the changes, store nothing.
    pub dry_run: bool,
}

impl WriteOptions {
    #[cfg(test)]
    pub fn by(actor: impl Into<String>) -> Self {
        WriteOptions {
            actor: actor.into(),
            ..WriteOptions::default()
        }
    }
}

/// A write transaction holding the revision lock.
pub(super) struct Pending {
    tx: Transaction<'static, Any>,
    /// The number the write gets if it commits.
    revision: i64,
    pub current: Current,
    pub now: i64,
}

pub(super) struct Finished {
    pub revision: i64,
    pub changes: Vec<ConfigChange>,
    pub latest: Option<LatestConfig>,
}

impl Store {
    /// Opens the write transaction: bumping `revision_head` first serialises writers, and the
    /// precondition is checked under that lock so that no other write can slip in between.
    pub(super) async fn begin_write(&self, options: &WriteOptions) -> Result<Pending, StoreError> {
        let mut tx = self.pool.begin().await?;
        let revision: i64 = sqlx::query_scalar(
            "UPDATE revision_head SET revision = revision + 1 WHERE id = 1 RETURNING revision",
        )
        .fetch_one(&mut *tx)
        .await?;
        if let Some(expected) = options.if_match
            && expected != revision - 1
        {
            return Err(StoreError::PreconditionFailed {
                expected,
                current: revision - 1,
            });
        }
        let current = load_current(&mut tx).await?;
        Ok(Pending {
            tx,
            revision,
            current,
            now: now_ms(),
        })
    }

    /// Stores `next` as the new revision, rewriting the `touched` entities; a dry run (or an
    /// empty `touched`) rolls back instead and reports the current revision.
    pub(super) async fn finish_write(
        &self,
        pending: Pending,
        next: Config,
        touched: BTreeSet<(Kind, String)>,
        message: String,
        options: &WriteOptions,
    ) -> Result<Finished, StoreError> {
        let Pending {
            mut tx,
            revision,
            current,
            now,
        } = pending;
        let changes = current.config.diff(&next);
        if options.dry_run || touched.is_empty() {
            tx.rollback().await?;
            return Ok(Finished {
                revision: revision - 1,
                changes,
                latest: None,
            });
        }
        let mut meta = current.meta;
        for key in &touched {
            let (kind, name) = key;
            let spec = spec_of(&next, *kind, name)?;
            let created_at = match (*kind, next.routes.get(name)) {
                (Kind::Route, Some(route)) => route.created_at_unix_ms,
                _ => meta.get(key).map_or(now, |m| m.created_at),
            };
            match &spec {
                Some(spec) => {
                    sqlx::query(
                        "INSERT INTO resources (kind, name, spec, created_at, updated_at, revision) \
                         VALUES ($1, $2, $3, $4, $5, $6) \
                         ON CONFLICT (kind, name) DO UPDATE SET spec = excluded.spec, \
                            updated_at = excluded.updated_at, revision = excluded.revision",
                    )
                    .bind(kind.as_str())
                    .bind(name)
                    .bind(spec)
                    .bind(created_at)
                    .bind(now)
                    .bind(revision)
                    .execute(&mut *tx)
                    .await?;
                    meta.insert(
                        key.clone(),
                        EntityMeta {
                            created_at,
                            updated_at: now,
                            revision,
                        },
                    );
                }
                None => {
                    sqlx::query("DELETE FROM resources WHERE kind = $1 AND name = $2")
                        .bind(kind.as_str())
                        .bind(name)
                        .execute(&mut *tx)
                        .await?;
                    meta.remove(key);
                }
            }
            sqlx::query(
                "INSERT INTO resource_history (revision, kind, name, spec, created_at) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(revision)
            .bind(kind.as_str())
            .bind(name)
            .bind(spec.clone())
            .bind(spec.as_ref().map(|_| created_at))
            .execute(&mut *tx)
            .await?;
        }
        let digest = gateway_config::digest(&next);
        let message = options.message.clone().unwrap_or(message);
        sqlx::query(
            "INSERT INTO revisions (revision, actor, message, digest, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(revision)
        .bind(&options.actor)
        .bind(&message)
        .bind(&digest)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if revision > self.retention {
            prune(&mut tx, revision - self.retention + 1).await?;
        }
        if self.postgres_url.is_some() {
            // Delivered to the listeners only when the transaction commits.
            sqlx::query("SELECT 1 AS sent FROM (SELECT pg_notify($1, $2)) AS n")
                .bind(NOTIFY_CHANNEL)
                .bind(notification(revision, &self.replica))
                .fetch_all(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(Finished {
            revision,
            changes,
            latest: Some(LatestConfig {
                revision,
                committed_at: now,
                digest,
                config: next,
                meta,
            }),
        })
    }
}

/// The stored JSON of an entity of `config`, None when it is absent.
fn spec_of(config: &Config, kind: Kind, name: &str) -> Result<Option<String>, StoreError> {
    let json = match kind {
        Kind::Upstream => config.upstreams.get(name).map(serde_json::to_string),
        Kind::Route => config.routes.get(name).map(serde_json::to_string),
    };
    json.transpose()
        .map_err(|e| StoreError::Database(e.to_string()))
}

/// Drops revisions below `oldest_kept`. Each entity keeps its newest history row at or below
/// `oldest_kept` (its state there, the baseline every kept revision is rebuilt from) unless that
/// row is a deletion; every older row goes.
async fn prune(tx: &mut Transaction<'static, Any>, oldest_kept: i64) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM revisions WHERE revision < $1")
        .bind(oldest_kept)
        .execute(&mut **tx)
        .await?;
    sqlx::query(
        "DELETE FROM resource_history WHERE revision < $1 AND EXISTS ( \
            SELECT 1 FROM resource_history newer \
            WHERE newer.kind = resource_history.kind AND newer.name = resource_history.name \
              AND newer.revision > resource_history.revision AND newer.revision <= $1)",
    )
    .bind(oldest_kept)
    .execute(&mut **tx)
    .await?;
    sqlx::query("DELETE FROM resource_history WHERE revision <= $1 AND spec IS NULL")
        .bind(oldest_kept)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

//! The one path by which the config changes: a write transaction that takes the revision lock,
//! checks the caller's precondition, and either stores the new state as exactly one revision
//! (resources, history, revision row, pruning, NOTIFY) or, on a dry run or when nothing changes,
//! stores nothing at all.

use gateway_config::{Kind, Route, Upstream};
use sqlx::{Any, Transaction};

use super::catch_up::advance;
use super::clock::now_ms;
use super::error::StoreError;
use super::handle::Store;
use super::resources::load_whole;
use super::state::{Advance, Entity, Key, State};

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
    pub revision: i64,
    /// The latest committed state, the one the write changes.
    pub current: State,
    /// Entities that differ between the caller's base and `current`, when the base was behind
    /// and could be brought forward from the history; None when it had to be read whole.
    caught_up: Option<(i64, Vec<Key>)>,
    pub now: i64,
}

pub(super) struct Finished {
    /// The revision made; the latest one when nothing was stored.
    pub revision: i64,
    /// The new state and what changed since the caller's base; None when nothing was stored.
    pub latest: Option<Advance>,
}

/// Rows per multi-row statement: few round trips for a large apply, well under every
/// database's limit on bound parameters.
const BATCH: usize = 500;

impl Store {
    /// Opens the write transaction: bumping `revision_head` first serialises writers, and the
    /// precondition is checked under that lock so that no other write can slip in between.
    /// `base` is the caller's latest state; when another replica has written since, it is
    /// brought forward from the history under the lock.
    pub(super) async fn begin_write(
        &self,
        base: &State,
        options: &WriteOptions,
    ) -> Result<Pending, StoreError> {
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
        let latest = revision - 1;
        let (current, caught_up) = if base.revision == latest {
            (base.clone(), Some((latest, Vec::new())))
        } else {
            match advance(&mut tx, base, latest).await? {
                Some(Advance {
                    state,
                    since,
                    changed: Some(changed),
                }) if base.revision < latest => (state, Some((since, changed))),
                _ => (load_whole(&mut tx, latest).await?, None),
            }
        };
        Ok(Pending {
            tx,
            revision,
            current,
            caught_up,
            now: now_ms(),
        })
    }

    /// Stores `next` (the current state with the `touched` entities changed) as the new
    /// revision; a dry run, or an empty `touched`, rolls back instead.
    pub(super) async fn finish_write(
        &self,
        pending: Pending,
        mut next: State,
        touched: Vec<Key>,
        message: String,
        options: &WriteOptions,
    ) -> Result<Finished, StoreError> {
        let Pending {
            mut tx,
            revision,
            current,
            caught_up,
            now,
        } = pending;
        if options.dry_run || touched.is_empty() {
            tx.rollback().await?;
            return Ok(Finished {
                revision: current.revision,
                latest: None,
            });
        }
        if next.push_len() > gateway_proto::MAX_CONFIG_PUSH_BYTES {
            return Err(StoreError::TooLarge {
                bytes: next.push_len(),
                limit: gateway_proto::MAX_CONFIG_PUSH_BYTES,
            });
        }
        next.seal(revision, now);
        write_entities(&mut tx, &next, &touched, revision, now).await?;
        let message = options.message.clone().unwrap_or(message);
        sqlx::query(
            "INSERT INTO revisions (revision, actor, message, digest, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(revision)
        .bind(&options.actor)
        .bind(&message)
        .bind(&next.digest)
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
        let (since, changed) = match caught_up {
            Some((since, mut changed)) => {
                changed.extend(touched);
                changed.sort();
                changed.dedup();
                (since, changed)
            }
            None => (revision - 1, touched),
        };
        Ok(Finished {
            revision,
            latest: Some(Advance {
                state: next,
                since,
                changed: Some(changed),
            }),
        })
    }
}

/// One row of a touched entity: its stored JSON and creation time, or None when it is gone.
type EntityRow<'a> = (&'a Key, Option<(String, i64)>);

/// Rewrites the `resources` rows of the `touched` entities as `next` has them and records each
/// in `resource_history`, a few hundred rows per statement.
async fn write_entities(
    tx: &mut Transaction<'static, Any>,
    next: &State,
    touched: &[Key],
    revision: i64,
    now: i64,
) -> Result<(), StoreError> {
    let mut rows: Vec<EntityRow<'_>> = Vec::with_capacity(touched.len());
    for key in touched {
        rows.push((key, spec_of(next, key)?));
    }
    for chunk in rows.chunks(BATCH) {
        let present: Vec<_> = chunk
            .iter()
            .filter_map(|(key, spec)| spec.as_ref().map(|spec| (*key, spec)))
            .collect();
        if !present.is_empty() {
            let sql = format!(
                "INSERT INTO resources (kind, name, spec, created_at, updated_at, revision) \
                 VALUES {} ON CONFLICT (kind, name) DO UPDATE SET spec = excluded.spec, \
                    updated_at = excluded.updated_at, revision = excluded.revision",
                placeholders(present.len(), 6)
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for ((kind, name), (spec, created_at)) in &present {
                query = query
                    .bind(kind.as_str())
                    .bind(name.as_str())
                    .bind(spec.as_str())
                    .bind(*created_at)
                    .bind(now)
                    .bind(revision);
            }
            query.execute(&mut **tx).await?;
        }
        for kind in [Kind::Upstream, Kind::Route] {
            let gone: Vec<&str> = chunk
                .iter()
                .filter(|((k, _), spec)| *k == kind && spec.is_none())
                .map(|((_, name), _)| name.as_str())
                .collect();
            if gone.is_empty() {
                continue;
            }
            let list: Vec<String> = (2..gone.len() + 2).map(|n| format!("${n}")).collect();
            let sql = format!(
                "DELETE FROM resources WHERE kind = $1 AND name IN ({})",
                list.join(", ")
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(kind.as_str());
            for name in gone {
                query = query.bind(name);
            }
            query.execute(&mut **tx).await?;
        }
        let sql = format!(
            "INSERT INTO resource_history (revision, kind, name, spec, created_at) VALUES {}",
            placeholders(chunk.len(), 5)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for ((kind, name), spec) in chunk {
            query = query
                .bind(revision)
                .bind(kind.as_str())
                .bind(name.as_str())
                .bind(spec.as_ref().map(|(spec, _)| spec.clone()))
                .bind(spec.as_ref().map(|(_, created_at)| *created_at));
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

/// `($1, $2, …), ($n+1, …)`: `rows` tuples of `columns` numbered placeholders.
fn placeholders(rows: usize, columns: usize) -> String {
    let mut sql = String::with_capacity(rows * columns * 5);
    for row in 0..rows {
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for column in 0..columns {
            if column > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("${}", row * columns + column + 1));
        }
        sql.push(')');
    }
    sql
}

/// The stored JSON and creation time of the entity `key` of `state`, None when it is absent.
fn spec_of(state: &State, (kind, name): &Key) -> Result<Option<(String, i64)>, StoreError> {
    fn json<T: Entity>(state: &State, name: &str) -> Result<Option<(String, i64)>, StoreError> {
        state
            .get::<T>(name)
            .map(|stored| {
                serde_json::to_string(&stored.entity)
                    .map(|json| (json, stored.meta.created_at))
                    .map_err(|e| StoreError::Database(e.to_string()))
            })
            .transpose()
    }
    match kind {
        Kind::Upstream => json::<Upstream>(state, name),
        Kind::Route => json::<Route>(state, name),
    }
}

/// Drops revisions below `oldest_kept`. Each entity keeps its newest history row at or below
/// `oldest_kept` (its state there, the baseline every kept revision is rebuilt from) unless that
/// row is a deletion; every older row goes.
///
/// Only the revisions that leave the window are looked at (one per write once the window is
/// full): the entities each of them changed lose their older rows, and its deletions go, since
/// nothing is left to delete at the baseline. A prune then costs in proportion to the
/// revisions it drops, not to the config.
async fn prune(tx: &mut Transaction<'static, Any>, oldest_kept: i64) -> Result<(), StoreError> {
    let oldest: Option<i64> = sqlx::query_scalar("SELECT MIN(revision) FROM revisions")
        .fetch_one(&mut **tx)
        .await?;
    let Some(oldest) = oldest else {
        return Ok(());
    };
    if oldest >= oldest_kept {
        return Ok(());
    }
    sqlx::query("DELETE FROM revisions WHERE revision < $1")
        .bind(oldest_kept)
        .execute(&mut **tx)
        .await?;
    for baseline in (oldest + 1)..=oldest_kept {
        sqlx::query(
            "DELETE FROM resource_history WHERE revision < $1 AND (kind, name) IN ( \
                SELECT kind, name FROM resource_history WHERE revision = $1)",
        )
        .bind(baseline)
        .execute(&mut **tx)
        .await?;
        sqlx::query("DELETE FROM resource_history WHERE revision = $1 AND spec IS NULL")
            .bind(baseline)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

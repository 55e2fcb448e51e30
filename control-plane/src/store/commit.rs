//! The one path by which the config changes: a write transaction that takes the revision lock,
//! stages one or more revisions on top of the latest state (each write its own revision, its
//! precondition checked against the one staged before it), and stores them all (resources,
//! history, revision rows, pruning, NOTIFY) in one commit, or, when nothing was staged, stores
//! nothing at all.

use std::sync::Arc;

use gateway_config::{Certificate, Kind, Route, Upstream};
use sqlx::{Any, Transaction};

use super::catch_up::advance;
use super::clock::now_ms;
use super::error::StoreError;
use super::handle::Store;
use super::resources::load_whole;
use super::state::{Advance, Entity, Key, State};
use crate::kek::Keyring;

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
    /// The client's address, for the audit log; not stored.
    pub client: Option<std::net::SocketAddr>,
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

/// A write transaction holding the revision lock, with the revisions staged in it so far: a
/// batch of writes commits as one transaction and one fsync, each write still its own revision.
pub(super) struct Pending {
    tx: Transaction<'static, Any>,
    /// The latest committed state, the one the transaction started from.
    base: State,
    /// Entities that differ between the caller's base and the committed state, when the base
    /// was behind and could be brought forward from the history; None when it had to be read
    /// whole.
    caught_up: Option<(i64, Vec<Key>)>,
    pub now: i64,
    staged: Vec<Staged>,
    /// Seals the private keys of the rows staged.
    keyring: Option<Arc<Keyring>>,
}

/// One revision staged in a [`Pending`] transaction.
struct Staged {
    /// Sealed with the revision's number and time.
    state: State,
    touched: Vec<Key>,
    /// Each touched entity's stored JSON and creation time at this revision; None when gone.
    rows: Vec<EntityRow>,
    actor: String,
    message: String,
}

/// One row of a touched entity: its stored JSON and creation time, or None when it is gone.
type EntityRow = (Key, Option<(String, i64)>);

/// Rows per multi-row statement: few round trips for a large apply, well under every
/// database's limit on bound parameters.
const BATCH: usize = 500;

impl Pending {
    /// The latest state, committed or staged: the one the next write changes.
    pub fn head(&self) -> &State {
        self.staged
            .last()
            .map_or(&self.base, |staged| &staged.state)
    }

    /// The number the next staged revision gets.
    pub fn next_revision(&self) -> i64 {
        self.head().revision + 1
    }

    /// Fails when the caller's precondition does not hold on the latest state.
    pub fn check(&self, options: &WriteOptions) -> Result<(), StoreError> {
        match options.if_match {
            Some(expected) if expected != self.head().revision => {
                Err(StoreError::PreconditionFailed {
                    expected,
                    current: self.head().revision,
                })
            }
            _ => Ok(()),
        }
    }

    /// Stages `next` (the head with the `touched` entities changed) as the next revision and
    /// returns its number; a dry run, or an empty `touched`, stages nothing and returns None.
    pub fn stage(
        &mut self,
        mut next: State,
        touched: Vec<Key>,
        message: String,
        options: &WriteOptions,
    ) -> Result<Option<i64>, StoreError> {
        if options.dry_run || touched.is_empty() {
            return Ok(None);
        }
        if next.push_len() > gateway_proto::MAX_CONFIG_PUSH_BYTES {
            return Err(StoreError::TooLarge {
                bytes: next.push_len(),
                limit: gateway_proto::MAX_CONFIG_PUSH_BYTES,
            });
        }
        let revision = self.next_revision();
        next.seal(revision, self.now);
        let mut rows = Vec::with_capacity(touched.len());
        for key in &touched {
            rows.push((key.clone(), spec_of(&next, key, self.keyring.as_deref())?));
        }
        self.staged.push(Staged {
            state: next,
            touched,
            rows,
            actor: options.actor.clone(),
            message: options.message.clone().unwrap_or(message),
        });
        Ok(Some(revision))
    }
}

impl Store {
    /// Opens the write transaction: locking `revision_head` first serialises writers of every
    /// replica, so that preconditions checked afterwards hold until the commit. `base` is the
    /// caller's latest state; when another replica has written since, it is brought forward
    /// from the history under the lock.
    pub(super) async fn begin_write(&self, base: &State) -> Result<Pending, StoreError> {
        let mut tx = self.pool.begin().await?;
        // An update that changes nothing still takes the row's write lock.
        let latest: i64 = sqlx::query_scalar(
            "UPDATE revision_head SET revision = revision WHERE id = 1 RETURNING revision",
        )
        .fetch_one(&mut *tx)
        .await?;
        let (base, caught_up) = if base.revision == latest {
            (base.clone(), Some((latest, Vec::new())))
        } else {
            match advance(&mut tx, base, latest, self.keyring()).await? {
                Some(Advance {
                    state,
                    since,
                    changed: Some(changed),
                }) if base.revision < latest => (state, Some((since, changed))),
                _ => (load_whole(&mut tx, latest, self.keyring()).await?, None),
            }
        };
        Ok(Pending {
            tx,
            base,
            caught_up,
            now: now_ms(),
            staged: Vec::new(),
            keyring: self.keyring.clone(),
        })
    }

    /// Stores every staged revision (resources, history, revision rows, the head, pruning,
    /// NOTIFY) and commits; with nothing staged it rolls back instead. Returns the staged
    /// revisions in order, each as the state at it and what changed since the one before (for
    /// the first: since the caller's base).
    pub(super) async fn commit(&self, pending: Pending) -> Result<Vec<Advance>, StoreError> {
        let Pending {
            mut tx,
            mut caught_up,
            staged,
            now,
            ..
        } = pending;
        let Some(last) = staged.last().map(|s| s.state.revision) else {
            tx.rollback().await?;
            return Ok(Vec::new());
        };
        write_entities(&mut tx, &staged, now).await?;
        write_revisions(&mut tx, &staged, now).await?;
        sqlx::query("UPDATE revision_head SET revision = $1 WHERE id = 1")
            .bind(last)
            .execute(&mut *tx)
            .await?;
        if last > self.retention {
            prune(&mut tx, last - self.retention + 1).await?;
        }
        if self.postgres_url.is_some() {
            // Delivered to the listeners only when the transaction commits; one for the batch,
            // since a listener catches up to the latest revision whatever the payload says.
            sqlx::query("SELECT 1 AS sent FROM (SELECT pg_notify($1, $2)) AS n")
                .bind(NOTIFY_CHANNEL)
                .bind(notification(last, &self.replica))
                .fetch_all(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        let mut committed = Vec::with_capacity(staged.len());
        for staged in staged {
            let revision = staged.state.revision;
            let (since, changed) = match caught_up.take() {
                Some((since, mut changed)) => {
                    changed.extend(staged.touched);
                    changed.sort();
                    changed.dedup();
                    (since, changed)
                }
                None => (revision - 1, staged.touched),
            };
            committed.push(Advance {
                state: staged.state,
                since,
                changed: Some(changed),
            });
        }
        Ok(committed)
    }
}

/// Rewrites the `resources` rows of every entity the batch touched as its last revision has
/// them, and records each touch in `resource_history`, a few hundred rows per statement.
async fn write_entities(
    tx: &mut Transaction<'static, Any>,
    staged: &[Staged],
    now: i64,
) -> Result<(), StoreError> {
    // An entity written twice in the batch gets one `resources` row, as its last write left it.
    let mut seen = std::collections::HashSet::new();
    let mut latest: Vec<(i64, &EntityRow)> = Vec::new();
    for revision in staged.iter().rev() {
        for row in &revision.rows {
            if seen.insert(&row.0) {
                latest.push((revision.state.revision, row));
            }
        }
    }
    for chunk in latest.chunks(BATCH) {
        let present: Vec<_> = chunk
            .iter()
            .filter_map(|(revision, (key, spec))| spec.as_ref().map(|spec| (*revision, key, spec)))
            .collect();
        if !present.is_empty() {
            let sql = format!(
                "INSERT INTO resources (kind, name, spec, created_at, updated_at, revision) \
                 VALUES {} ON CONFLICT (kind, name) DO UPDATE SET spec = excluded.spec, \
                    updated_at = excluded.updated_at, revision = excluded.revision",
                placeholders(present.len(), 6)
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (revision, (kind, name), (spec, created_at)) in &present {
                query = query
                    .bind(kind.as_str())
                    .bind(name.as_str())
                    .bind(spec.as_str())
                    .bind(*created_at)
                    .bind(now)
                    .bind(*revision);
            }
            query.execute(&mut **tx).await?;
        }
        for kind in Kind::ALL {
            let gone: Vec<&str> = chunk
                .iter()
                .filter(|(_, ((k, _), spec))| *k == kind && spec.is_none())
                .map(|(_, ((_, name), _))| name.as_str())
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
    }
    let history: Vec<(i64, &EntityRow)> = staged
        .iter()
        .flat_map(|revision| {
            revision
                .rows
                .iter()
                .map(|row| (revision.state.revision, row))
        })
        .collect();
    for chunk in history.chunks(BATCH) {
        let sql = format!(
            "INSERT INTO resource_history (revision, kind, name, spec, created_at) VALUES {}",
            placeholders(chunk.len(), 5)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (revision, ((kind, name), spec)) in chunk {
            query = query
                .bind(*revision)
                .bind(kind.as_str())
                .bind(name.as_str())
                .bind(spec.as_ref().map(|(spec, _)| spec.clone()))
                .bind(spec.as_ref().map(|(_, created_at)| *created_at));
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

/// One `revisions` row per staged revision.
async fn write_revisions(
    tx: &mut Transaction<'static, Any>,
    staged: &[Staged],
    now: i64,
) -> Result<(), StoreError> {
    for chunk in staged.chunks(BATCH) {
        let sql = format!(
            "INSERT INTO revisions (revision, actor, message, digest, created_at) VALUES {}",
            placeholders(chunk.len(), 5)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for revision in chunk {
            query = query
                .bind(revision.state.revision)
                .bind(revision.actor.as_str())
                .bind(revision.message.as_str())
                .bind(revision.state.digest.as_str())
                .bind(now);
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
fn spec_of(
    state: &State,
    (kind, name): &Key,
    keyring: Option<&Keyring>,
) -> Result<Option<(String, i64)>, StoreError> {
    fn json<T: Entity>(
        state: &State,
        name: &str,
        keyring: Option<&Keyring>,
    ) -> Result<Option<(String, i64)>, StoreError> {
        state
            .get::<T>(name)
            .map(|stored| {
                stored
                    .entity
                    .to_spec(keyring)
                    .map(|json| (json, stored.meta.created_at))
            })
            .transpose()
    }
    match kind {
        Kind::Upstream => json::<Upstream>(state, name, keyring),
        Kind::Route => json::<Route>(state, name, keyring),
        Kind::Certificate => json::<Certificate>(state, name, keyring),
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

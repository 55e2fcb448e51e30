//! Bringing a state up to a newer revision from the history rows in between, so that a replica
//! that sees another replica's writes, or a writer whose in-memory state is behind, reads only what
//! changed rather than the whole config.
//!
//! History rows above a revision that is still kept are never pruned (pruning only removes rows
//! below the oldest kept revision), so the rows above `base` are complete exactly when `base` is
//! at or above the oldest kept revision; that is checked after reading them, so that a prune
//! committed meanwhile is noticed.

use std::collections::BTreeSet;

use gateway_config::{Certificate, Kind, Route, Upstream};
use sqlx::{AnyConnection, Row};

use super::error::StoreError;
use super::handle::Store;
use super::resources::{StoredRow, kind_of, parse_spec};
use super::state::{Advance, Entity, EntityMeta, Key, State, Stored};
use crate::kek::Keyring;

/// `base` moved to revision `to`, or None when the history no longer reaches back to `base`
/// (the caller then reads the whole config).
pub(super) async fn advance(
    conn: &mut AnyConnection,
    base: &State,
    to: i64,
    keyring: Option<&Keyring>,
) -> Result<Option<Advance>, StoreError> {
    let rows = sqlx::query(
        "SELECT h.kind, h.name, h.spec, h.created_at, h.revision, v.created_at AS committed_at \
         FROM resource_history h JOIN revisions v ON v.revision = h.revision \
         WHERE h.revision > $1 AND h.revision <= $2 ORDER BY h.revision",
    )
    .bind(base.revision)
    .bind(to)
    .fetch_all(&mut *conn)
    .await?;
    let target_committed_at: Option<i64> =
        sqlx::query_scalar("SELECT created_at FROM revisions WHERE revision = $1")
            .bind(to)
            .fetch_optional(&mut *conn)
            .await?;
    let oldest: Option<i64> = sqlx::query_scalar("SELECT MIN(revision) FROM revisions")
        .fetch_one(&mut *conn)
        .await?;
    let (Some(committed_at), Some(oldest)) = (target_committed_at, oldest) else {
        return Ok(None);
    };
    if oldest > base.revision {
        return Ok(None);
    }
    let mut state = base.clone();
    let mut changed: BTreeSet<Key> = BTreeSet::new();
    for row in &rows {
        let kind: String = row.try_get("kind")?;
        let Some(known) = kind_of(&kind) else {
            continue;
        };
        let name: String = row.try_get("name")?;
        let spec: Option<String> = row.try_get("spec")?;
        let meta = EntityMeta {
            created_at: row.try_get::<Option<i64>, _>("created_at")?.unwrap_or(0),
            updated_at: row.try_get("committed_at")?,
            revision: row.try_get("revision")?,
        };
        let stored = spec.as_deref().map(|spec| StoredRow {
            kind: &kind,
            name: &name,
            spec,
            created_at: meta.created_at,
            keyring,
        });
        match known {
            Kind::Upstream => replay::<Upstream>(&mut state, &name, stored, meta)?,
            Kind::Route => replay::<Route>(&mut state, &name, stored, meta)?,
            Kind::Certificate => replay::<Certificate>(&mut state, &name, stored, meta)?,
        }
        changed.insert((known, name));
    }
    state.seal(to, committed_at);
    Ok(Some(Advance {
        since: base.revision,
        changed: Some(changed.into_iter().collect()),
        state,
    }))
}

/// Applies one history row: the entity as it was stored, or its removal.
fn replay<T: Entity>(
    state: &mut State,
    name: &str,
    row: Option<StoredRow<'_>>,
    meta: EntityMeta,
) -> Result<(), StoreError> {
    match row {
        Some(row) => {
            let mut entity: T = parse_spec(&row)?;
            entity.set_created_at(meta.created_at);
            state.put(Stored::new(entity, meta));
        }
        None => {
            state.remove::<T>(name);
        }
    }
    Ok(())
}

impl Store {
    /// The digest stored for revision `base` and every entity that differs between it and
    /// `target`, or None when `base` is no longer kept.
    pub async fn changes_between(
        &self,
        base: i64,
        target: i64,
    ) -> Result<Option<(String, Vec<Key>)>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let rows = sqlx::query(
            "SELECT DISTINCT kind, name FROM resource_history \
             WHERE revision > $1 AND revision <= $2",
        )
        .bind(base)
        .bind(target)
        .fetch_all(&mut *conn)
        .await?;
        let digest: Option<String> =
            sqlx::query_scalar("SELECT digest FROM revisions WHERE revision = $1")
                .bind(base)
                .fetch_optional(&mut *conn)
                .await?;
        // Read last: finding `base` still kept proves no prune removed rows above it meanwhile.
        let oldest: Option<i64> = sqlx::query_scalar("SELECT MIN(revision) FROM revisions")
            .fetch_one(&mut *conn)
            .await?;
        let (Some(digest), Some(oldest)) = (digest, oldest) else {
            return Ok(None);
        };
        if oldest > base {
            return Ok(None);
        }
        let mut keys = Vec::with_capacity(rows.len());
        for row in &rows {
            let kind: String = row.try_get("kind")?;
            if let Some(kind) = kind_of(&kind) {
                keys.push((kind, row.try_get("name")?));
            }
        }
        Ok(Some((digest, keys)))
    }

    /// The latest committed state: `base` brought forward when the history reaches back to it,
    /// else read whole.
    pub async fn catch_up(&self, base: &State) -> Result<Advance, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let head: i64 = sqlx::query_scalar("SELECT revision FROM revision_head WHERE id = 1")
            .fetch_one(&mut *conn)
            .await?;
        if head > base.revision
            && let Some(advanced) = advance(&mut conn, base, head, self.keyring()).await?
        {
            return Ok(advanced);
        }
        drop(conn);
        let state = self.latest_config().await?;
        Ok(Advance {
            since: state.revision,
            changed: None,
            state,
        })
    }
}

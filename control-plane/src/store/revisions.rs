//! The revision log and the latest committed config, read whole.

use std::collections::BTreeMap;

use sqlx::Row;

use super::error::StoreError;
use super::handle::Store;
use super::resources::{config_from_decoded, kind_of};
use super::state::{EntityMeta, State};

/// One committed revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevisionRow {
    pub revision: i64,
    pub actor: String,
    pub message: String,
    pub digest: String,
    pub created_at: i64,
}

impl RevisionRow {
    pub(super) fn from_row(row: &sqlx::any::AnyRow) -> Result<RevisionRow, StoreError> {
        Ok(RevisionRow {
            revision: row.try_get("revision")?,
            actor: row.try_get("actor")?,
            message: row.try_get("message")?,
            digest: row.try_get("digest")?,
            created_at: row.try_get("created_at")?,
        })
    }
}

impl Store {
    /// The latest revision number (0 before the first change).
    pub async fn head_revision(&self) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT revision FROM revision_head WHERE id = 1")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// Revisions newest first, starting below `before`, at most `limit`; the flag says whether
    /// older ones follow.
    pub async fn list_revisions(
        &self,
        before: Option<i64>,
        limit: usize,
    ) -> Result<(Vec<RevisionRow>, bool), StoreError> {
        let rows = sqlx::query(
            "SELECT revision, actor, message, digest, created_at FROM revisions \
             WHERE revision < $1 ORDER BY revision DESC LIMIT $2",
        )
        .bind(before.unwrap_or(i64::MAX))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX - 1) + 1)
        .fetch_all(&self.pool)
        .await?;
        let mut items = Vec::with_capacity(rows.len());
        for row in &rows {
            items.push(RevisionRow::from_row(row)?);
        }
        let more = items.len() > limit;
        items.truncate(limit);
        Ok((items, more))
    }

    /// The latest revision and its entities, read in one statement so that both come from the
    /// same snapshot of the database.
    pub async fn latest_config(&self) -> Result<State, StoreError> {
        let rows = sqlx::query(
            "SELECT h.revision AS head, v.created_at AS committed_at, \
                    r.kind, r.name, r.spec, r.created_at, r.updated_at, \
                    r.revision AS changed_in \
             FROM revision_head h \
             LEFT JOIN revisions v ON v.revision = h.revision \
             LEFT JOIN resources r ON 1 = 1 \
             WHERE h.id = 1",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut revision = 0;
        let mut committed_at = 0;
        let mut entities = Vec::with_capacity(rows.len());
        let mut meta = BTreeMap::new();
        for row in &rows {
            revision = row.try_get("head")?;
            committed_at = row.try_get::<Option<i64>, _>("committed_at")?.unwrap_or(0);
            let kind: Option<String> = row.try_get("kind")?;
            let name: Option<String> = row.try_get("name")?;
            let spec: Option<String> = row.try_get("spec")?;
            let created_at: Option<i64> = row.try_get("created_at")?;
            if let (Some(kind), Some(name), Some(spec)) = (kind, name, spec) {
                if let Some(k) = kind_of(&kind) {
                    meta.insert(
                        (k, name.clone()),
                        EntityMeta {
                            created_at: created_at.unwrap_or(0),
                            updated_at: row.try_get::<Option<i64>, _>("updated_at")?.unwrap_or(0),
                            revision: row.try_get::<Option<i64>, _>("changed_in")?.unwrap_or(0),
                        },
                    );
                }
                entities.push((kind, name, spec, created_at.unwrap_or(0)));
            }
        }
        let config = config_from_decoded(&entities, self.keyring())?;
        Ok(State::build(revision, committed_at, config, &meta))
    }
}

//! The config at any kept revision, rebuilt from `resource_history`: for each entity, its newest
//! row at or below the revision (a NULL spec meaning it was absent). Pruning keeps each entity's
//! baseline row, so this stays exact for every revision still in `revisions`.

use gateway_config::Config;
use sqlx::Row;

use super::error::{KeptRange, StoreError};
use super::handle::Store;
use super::resources::config_from_decoded;
use super::revisions::RevisionRow;

/// One kept revision and the whole config at it.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigAt {
    pub row: RevisionRow,
    pub config: Config,
}

impl Store {
    /// The revisions still kept; None before the first write.
    pub async fn kept_range(&self) -> Result<Option<KeptRange>, StoreError> {
        let row =
            sqlx::query("SELECT MIN(revision) AS oldest, MAX(revision) AS latest FROM revisions")
                .fetch_one(&self.pool)
                .await?;
        let oldest: Option<i64> = row.try_get("oldest")?;
        let latest: Option<i64> = row.try_get("latest")?;
        Ok(oldest
            .zip(latest)
            .map(|(oldest, latest)| KeptRange { oldest, latest }))
    }

    /// One revision's log entry, if it is kept.
    pub async fn revision_row(&self, revision: i64) -> Result<Option<RevisionRow>, StoreError> {
        let row = sqlx::query(
            "SELECT revision, actor, message, digest, created_at FROM revisions WHERE revision = $1",
        )
        .bind(revision)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(RevisionRow::from_row).transpose()
    }

    /// The whole config at `revision`, or [`StoreError::RevisionNotKept`].
    pub async fn config_at(&self, revision: i64) -> Result<ConfigAt, StoreError> {
        let not_kept = || async {
            Err(StoreError::RevisionNotKept {
                revision,
                kept: self.kept_range().await?,
            })
        };
        if self.revision_row(revision).await?.is_none() {
            return not_kept().await;
        }
        let rows = sqlx::query(
            "SELECT h.kind, h.name, h.spec, h.created_at FROM resource_history h \
             WHERE h.revision <= $1 AND h.spec IS NOT NULL AND NOT EXISTS ( \
                SELECT 1 FROM resource_history newer \
                WHERE newer.kind = h.kind AND newer.name = h.name \
                  AND newer.revision > h.revision AND newer.revision <= $1)",
        )
        .bind(revision)
        .fetch_all(&self.pool)
        .await?;
        let mut entities = Vec::with_capacity(rows.len());
        for row in &rows {
            let kind: String = row.try_get("kind")?;
            let name: String = row.try_get("name")?;
            let spec: String = row.try_get("spec")?;
            let created_at: Option<i64> = row.try_get("created_at")?;
            entities.push((kind, name, spec, created_at.unwrap_or(0)));
        }
        // Read after the history: a prune committed in between would have removed this row too,
        // so finding it proves the history read saw the revision complete.
        let Some(row) = self.revision_row(revision).await? else {
            return not_kept().await;
        };
        let config = config_from_decoded(&entities, self.keyring())?;
        Ok(ConfigAt { row, config })
    }
}

//! Sealing stored private keys again after a key-encryption key rotation: every certificate row,
//! current and kept history alike, whose key another key than the keyring's first sealed is
//! opened and sealed with the first, in one transaction, so that the old key can then be removed.
//! Replicas starting together may both do it; each writes a valid sealing of the same key.

use sqlx::Row;

use super::error::StoreError;
use super::handle::Store;
use super::state::reseal_spec;

impl Store {
    /// Seals again every stored private key that the keyring's first key did not seal; returns
    /// how many rows changed.
    pub async fn reseal_stale_keys(&self) -> Result<u64, StoreError> {
        let Some(keyring) = self.keyring() else {
            return Ok(0);
        };
        let mut tx = self.pool.begin().await?;
        let mut changed = 0;
        let current = sqlx::query("SELECT name, spec FROM resources WHERE kind = 'certificate'")
            .fetch_all(&mut *tx)
            .await?;
        for row in &current {
            let name: String = row.try_get("name")?;
            let spec: String = row.try_get("spec")?;
            if let Some(resealed) = reseal_spec(&name, &spec, keyring)? {
                sqlx::query(
                    "UPDATE resources SET spec = $1 WHERE kind = 'certificate' AND name = $2",
                )
                .bind(resealed)
                .bind(&name)
                .execute(&mut *tx)
                .await?;
                changed += 1;
            }
        }
        let history = sqlx::query(
            "SELECT revision, name, spec FROM resource_history \
             WHERE kind = 'certificate' AND spec IS NOT NULL",
        )
        .fetch_all(&mut *tx)
        .await?;
        for row in &history {
            let revision: i64 = row.try_get("revision")?;
            let name: String = row.try_get("name")?;
            let spec: String = row.try_get("spec")?;
            if let Some(resealed) = reseal_spec(&name, &spec, keyring)? {
                sqlx::query(
                    "UPDATE resource_history SET spec = $1 \
                     WHERE kind = 'certificate' AND name = $2 AND revision = $3",
                )
                .bind(resealed)
                .bind(&name)
                .bind(revision)
                .execute(&mut *tx)
                .await?;
                changed += 1;
            }
        }
        tx.commit().await?;
        Ok(changed)
    }
}

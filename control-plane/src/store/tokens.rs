//! The admin API's tokens in the database: one row per token, holding the SHA-256 of its secret
//! (never the secret), its role and its expiry. Shared by every replica.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::error::StoreError;
use super::handle::Store;

/// A stored token, without its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    pub name: String,
    pub role: String,
    /// Hex SHA-256 of the secret.
    pub secret_sha256: String,
    pub created_at: i64,
    /// Unix ms after which the token is refused; `None` never expires.
    pub expires_at: Option<i64>,
    /// The token (or `bootstrap`, or `anonymous`) that created it.
    pub created_by: String,
}

/// What [`Store::revoke_token`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revocation {
    Revoked,
    NotFound,
    /// Refused: it is the last valid admin token.
    LastAdmin,
}

fn token_of(row: &AnyRow) -> Result<TokenRow, StoreError> {
    Ok(TokenRow {
        name: row.try_get("name")?,
        role: row.try_get("role")?,
        secret_sha256: row.try_get("secret_sha256")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        created_by: row.try_get("created_by")?,
    })
}

impl Store {
    /// Stores a new token; a name already taken is refused.
    pub async fn create_token(&self, token: &TokenRow) -> Result<(), StoreError> {
        let inserted = sqlx::query(
            "INSERT INTO admin_tokens \
                (name, role, secret_sha256, created_at, expires_at, created_by) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        )
        .bind(&token.name)
        .bind(&token.role)
        .bind(&token.secret_sha256)
        .bind(token.created_at)
        .bind(token.expires_at)
        .bind(&token.created_by)
        .execute(&self.pool)
        .await?;
        if inserted.rows_affected() == 0 {
            return Err(StoreError::AlreadyExists {
                kind: "token",
                name: token.name.clone(),
            });
        }
        Ok(())
    }

    /// Every token, by name.
    pub async fn list_tokens(&self) -> Result<Vec<TokenRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT name, role, secret_sha256, created_at, expires_at, created_by \
             FROM admin_tokens ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(token_of).collect()
    }

    /// The token named `name`.
    pub async fn token_by_name(&self, name: &str) -> Result<Option<TokenRow>, StoreError> {
        self.one_token(
            "SELECT name, role, secret_sha256, created_at, expires_at, created_by \
             FROM admin_tokens WHERE name = $1",
            name,
        )
        .await
    }

    /// The token whose secret hashes to `secret_sha256`.
    pub async fn token_by_hash(&self, secret_sha256: &str) -> Result<Option<TokenRow>, StoreError> {
        self.one_token(
            "SELECT name, role, secret_sha256, created_at, expires_at, created_by \
             FROM admin_tokens WHERE secret_sha256 = $1",
            secret_sha256,
        )
        .await
    }

    /// The token `query` finds by `value` in one of the table's unique columns.
    async fn one_token(
        &self,
        query: &'static str,
        value: &str,
    ) -> Result<Option<TokenRow>, StoreError> {
        let row = sqlx::query(query)
            .bind(value)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(token_of).transpose()
    }

    /// Deletes the token `name` unless its role is `admin_role` and no other token of that role
    /// is valid at `now_ms`. The admin tokens' rows are write-locked first (SQLite: the database), so two
    /// revocations at once, on any replica, cannot each count the other's token as the admin
    /// left.
    pub async fn revoke_token(
        &self,
        name: &str,
        admin_role: &str,
        now_ms: i64,
    ) -> Result<Revocation, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE admin_tokens SET role = role WHERE role = $1")
            .bind(admin_role)
            .execute(&mut *tx)
            .await?;
        let role: Option<String> =
            sqlx::query_scalar("SELECT role FROM admin_tokens WHERE name = $1")
                .bind(name)
                .fetch_optional(&mut *tx)
                .await?;
        let Some(role) = role else {
            tx.rollback().await?;
            return Ok(Revocation::NotFound);
        };
        if role == admin_role {
            let others: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM admin_tokens WHERE role = $1 AND name <> $2 \
                 AND (expires_at IS NULL OR expires_at > $3)",
            )
            .bind(admin_role)
            .bind(name)
            .bind(now_ms)
            .fetch_one(&mut *tx)
            .await?;
            if others == 0 {
                tx.rollback().await?;
                return Ok(Revocation::LastAdmin);
            }
        }
        sqlx::query("DELETE FROM admin_tokens WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Revocation::Revoked)
    }

    /// Deletes the token `name`.
    pub async fn delete_token(&self, name: &str) -> Result<(), StoreError> {
        let deleted = sqlx::query("DELETE FROM admin_tokens WHERE name = $1")
            .bind(name)
            .execute(&self.pool)
            .await?;
        if deleted.rows_affected() == 0 {
            return Err(StoreError::NotFound {
                kind: "token",
                name: name.to_owned(),
            });
        }
        Ok(())
    }
}

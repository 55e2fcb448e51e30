//! Per-worker sync status, shared by every control-plane replica through the database.
//!
//! Each row is owned by the stream that wrote it last (`stream`), so updates from an older stream
//! of the same worker (one that a replica has not noticed closing yet) change nothing.

use sqlx::Row;

use super::error::StoreError;
use super::handle::Store;

/// What a worker said about itself when its stream opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelloRecord {
    pub id: String,
    pub group: String,
    pub build: String,
    pub applied_revision: i64,
    pub applied_digest: String,
}

/// A stored worker row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRow {
    pub id: String,
    pub group: String,
    pub build: String,
    pub applied_revision: i64,
    pub applied_digest: String,
    pub last_error: Option<String>,
    pub connected: bool,
    pub last_seen: i64,
    pub first_seen: i64,
    pub replica: String,
}

/// What a stream's worker answered since its status was last written.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct NodeAnswer {
    /// The latest revision it applied, with its digest.
    pub acked: Option<(i64, String)>,
    /// The error of a NACK that came after that ACK (or with no ACK pending).
    pub error: Option<String>,
    /// When the latest answer came, unix ms.
    pub at: i64,
}

impl Store {
    /// Records a newly opened stream; a known worker keeps its `first_seen`.
    pub async fn node_connected(
        &self,
        hello: &HelloRecord,
        replica: &str,
        stream: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO nodes (id, node_group, build, applied_revision, applied_digest, \
                                last_error, connected, last_seen, first_seen, replica, stream) \
             VALUES ($1, $2, $3, $4, $5, NULL, 1, $6, $6, $7, $8) \
             ON CONFLICT (id) DO UPDATE SET node_group = excluded.node_group, \
                build = excluded.build, applied_revision = excluded.applied_revision, \
                applied_digest = excluded.applied_digest, last_error = NULL, connected = 1, \
                last_seen = excluded.last_seen, replica = excluded.replica, \
                stream = excluded.stream",
        )
        .bind(&hello.id)
        .bind(&hello.group)
        .bind(&hello.build)
        .bind(hello.applied_revision)
        .bind(&hello.applied_digest)
        .bind(now)
        .bind(replica)
        .bind(stream)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The worker applied `revision`.
    #[cfg(test)]
    pub async fn node_acked(
        &self,
        id: &str,
        stream: &str,
        revision: i64,
        digest: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let answer = NodeAnswer {
            acked: Some((revision, digest.to_owned())),
            error: None,
            at: now,
        };
        self.nodes_answered(&[((id.to_owned(), stream.to_owned()), answer)])
            .await
    }

    /// Records the answers of many streams in one transaction: for each, its last ACK (which
    /// clears the error), then the error of a NACK that came after it.
    pub async fn nodes_answered(
        &self,
        answers: &[((String, String), NodeAnswer)],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for ((id, stream), answer) in answers {
            if let Some((revision, digest)) = &answer.acked {
                sqlx::query(
                    "UPDATE nodes SET applied_revision = $1, applied_digest = $2, \
                        last_error = NULL, last_seen = $3 WHERE id = $4 AND stream = $5",
                )
                .bind(*revision)
                .bind(digest.as_str())
                .bind(answer.at)
                .bind(id.as_str())
                .bind(stream.as_str())
                .execute(&mut *tx)
                .await?;
            }
            if let Some(error) = &answer.error {
                sqlx::query(
                    "UPDATE nodes SET last_error = $1, last_seen = $2 WHERE id = $3 AND stream = $4",
                )
                .bind(error.as_str())
                .bind(answer.at)
                .bind(id.as_str())
                .bind(stream.as_str())
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// The worker refused its last push and keeps serving what it had.
    #[cfg(test)]
    pub async fn node_nacked(
        &self,
        id: &str,
        stream: &str,
        error: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let answer = NodeAnswer {
            acked: None,
            error: Some(error.to_owned()),
            at: now,
        };
        self.nodes_answered(&[((id.to_owned(), stream.to_owned()), answer)])
            .await
    }

    /// The stream is still open.
    pub async fn node_seen(&self, id: &str, stream: &str, now: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE nodes SET last_seen = $1 WHERE id = $2 AND stream = $3")
            .bind(now)
            .bind(id)
            .bind(stream)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The stream closed.
    pub async fn node_disconnected(
        &self,
        id: &str,
        stream: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE nodes SET connected = 0, last_seen = $1 WHERE id = $2 AND stream = $3")
            .bind(now)
            .bind(id)
            .bind(stream)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Every worker ever seen, by id.
    pub async fn list_nodes(&self) -> Result<Vec<NodeRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, node_group, build, applied_revision, applied_digest, last_error, \
                    connected, last_seen, first_seen, replica \
             FROM nodes ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut nodes = Vec::with_capacity(rows.len());
        for row in &rows {
            nodes.push(NodeRow {
                id: row.try_get("id")?,
                group: row.try_get("node_group")?,
                build: row.try_get("build")?,
                applied_revision: row.try_get("applied_revision")?,
                applied_digest: row.try_get("applied_digest")?,
                last_error: row.try_get("last_error")?,
                connected: row.try_get::<i64, _>("connected")? != 0,
                last_seen: row.try_get("last_seen")?,
                first_seen: row.try_get("first_seen")?,
                replica: row.try_get("replica")?,
            });
        }
        Ok(nodes)
    }
}

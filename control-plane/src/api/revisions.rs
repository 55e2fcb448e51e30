//! `GET /v1/revisions`: the change log, newest first.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use serde::Serialize;

use super::AppState;
use super::body::{ListQuery, Page, decode_cursor, encode_cursor, timestamp};
use super::error::ApiError;

#[derive(Debug, Serialize)]
pub struct RevisionItem {
    pub revision: i64,
    pub actor: String,
    pub message: String,
    pub digest: String,
    pub created_at: String,
}

pub async fn list(
    State(state): State<AppState>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<Page<RevisionItem>>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::invalid_field(None, e.body_text()))?;
    let limit = query.limit()?;
    let before = match query.cursor.as_deref() {
        Some(cursor) => Some(decode_cursor(cursor)?.parse::<i64>().map_err(|_| {
            ApiError::invalid_field(
                Some("cursor".into()),
                "is not a cursor returned by this API",
            )
        })?),
        None => None,
    };
    let (rows, more) = state.store.list_revisions(before, limit).await?;
    let next_cursor = match rows.last() {
        Some(last) if more => Some(encode_cursor(&last.revision.to_string())),
        _ => None,
    };
    let items = rows
        .into_iter()
        .map(|row| RevisionItem {
            revision: row.revision,
            actor: row.actor,
            message: row.message,
            digest: row.digest,
            created_at: timestamp(row.created_at),
        })
        .collect();
    Ok(Json(Page { items, next_cursor }))
}

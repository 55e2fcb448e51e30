//! The change log: list revisions, show the config at one, diff two, roll back to one.

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use gateway_config::Config;
use serde::Serialize;
use serde_json::json;

use super::AppState;
use super::body::{ListQuery, Page, decode_cursor, encode_cursor, timestamp};
use super::config::document;
use super::entities::read;
use super::error::ApiError;
use super::write::{self, WriteQuery};
use crate::store::{Applied, RevisionRow};

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
    let items = rows.into_iter().map(RevisionItem::from).collect();
    Ok(Json(Page { items, next_cursor }))
}

impl From<RevisionRow> for RevisionItem {
    fn from(row: RevisionRow) -> Self {
        RevisionItem {
            revision: row.revision,
            actor: row.actor,
            message: row.message,
            digest: row.digest,
            created_at: timestamp(row.created_at),
        }
    }
}

fn revision_number(text: &str) -> Result<i64, ApiError> {
    text.parse::<i64>()
        .ok()
        .filter(|n| *n >= 0)
        .ok_or_else(|| ApiError::not_found(format!("`{text}` is not a revision number")))
}

/// Creation times are bookkeeping, not content: two revisions differ only where documents do.
fn content(mut config: Config) -> Config {
    for route in config.routes.values_mut() {
        route.created_at_unix_ms = 0;
    }
    config
}

/// `GET /v1/revisions/{n}`: the log entry and the whole config at `n`.
pub async fn show(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(text) = path.map_err(|e| ApiError::not_found(e.body_text()))?;
    let at = read(state.store.config_at(revision_number(&text)?)).await?;
    let mut body = serde_json::to_value(RevisionItem::from(at.row)).unwrap_or_default();
    body["config"] = document(&at.config);
    Ok(Json(body).into_response())
}

/// `GET /v1/revisions/{a}/diff/{b}`: the changes that turn config `a` into config `b`.
pub async fn diff(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path((a, b)) = path.map_err(|e| ApiError::not_found(e.body_text()))?;
    let (from, to) = (revision_number(&a)?, revision_number(&b)?);
    let before = read(state.store.config_at(from)).await?;
    let after = read(state.store.config_at(to)).await?;
    let changes = content(before.config).diff(&content(after.config));
    Ok(Json(json!({"from": from, "to": to, "changes": changes})).into_response())
}

/// `POST /v1/revisions/{n}/rollback`: one new revision whose config equals the config at `n`.
pub async fn rollback(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    query: Result<Query<WriteQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Path(text) = path.map_err(|e| ApiError::not_found(e.body_text()))?;
    let revision = revision_number(&text)?;
    let options = write::options(&headers, query)?;
    let target = read(state.store.config_at(revision)).await?;
    let applied = write::within(state.store.apply_config(
        target.config,
        &format!("rollback to revision {revision}"),
        &options,
    ))
    .await?;
    Ok(applied_response(&state, applied))
}

/// Publishes a whole-config write to this replica's workers and answers with its summary.
pub fn applied_response(state: &AppState, applied: Applied) -> Response {
    if applied.dry_run {
        return write::dry_run_response(applied.revision, applied.changes);
    }
    if let Some(latest) = applied.latest {
        state.hub.publish(latest.into());
    }
    write::applied_response(applied.revision, applied.changes)
}

//! The change log: list revisions, show the config at one, diff two, roll back to one.

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use gateway_config::Config;
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::Caller;
use super::body::{ListQuery, Page, decode_cursor, encode_cursor, timestamp};
use super::error::ApiError;
use super::openapi::{
    BadRequest, ConfigWritten, Internal, NotFound, PreconditionFailed, Unavailable, Unprocessable,
};
use super::schema::Change;
use super::state::AppState;
use super::write::{self, WriteHeaders, WriteQuery};
use crate::service::read;
use crate::store::RevisionRow;

/// One entry of the change log.
#[derive(Debug, Serialize, ToSchema)]
pub struct RevisionItem {
    #[schema(minimum = 1)]
    pub revision: i64,
    /// Who made it (`x-gateway-actor`).
    pub actor: String,
    pub message: String,
    /// Digest of the config at this revision, as workers report it.
    pub digest: String,
    #[schema(format = DateTime)]
    pub created_at: String,
}

/// A log entry with the whole config at that revision.
#[derive(Debug, Serialize, ToSchema)]
pub struct RevisionDetail {
    #[serde(flatten)]
    pub item: RevisionItem,
    pub config: Config,
}

/// The changes that turn config `from` into config `to`.
#[derive(Debug, Serialize, ToSchema)]
pub struct RevisionDiff {
    pub from: i64,
    pub to: i64,
    #[schema(value_type = Vec<Change>)]
    pub changes: Vec<gateway_config::Change>,
}

const PATH_REVISION: &str = "A revision number";

/// List revisions, newest first
#[utoipa::path(
    get,
    path = "/v1/revisions",
    tag = "revisions",
    operation_id = "list_revisions",
    params(
        ("limit" = Option<u64>, Query, minimum = 1,
         description = "Items per page: 100 by default; more than 1000 is taken as 1000."),
        ("cursor" = Option<String>, Query, description = "The `next_cursor` of the previous page."),
    ),
    responses(
        (status = 200, description = "One page", body = Page<RevisionItem>),
        (status = 422, response = Unprocessable),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
    )
)]
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
    let (rows, more) = state.service.store().list_revisions(before, limit).await?;
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

/// Show a revision and the whole config at it
#[utoipa::path(
    get,
    path = "/v1/revisions/{n}",
    tag = "revisions",
    operation_id = "show_revision",
    params(("n" = u64, Path, description = PATH_REVISION)),
    responses(
        (status = 200, description = "The log entry and the config", body = RevisionDetail),
        (status = 404, response = NotFound),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
    )
)]
pub async fn show(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<RevisionDetail>, ApiError> {
    let Path(text) = path.map_err(|e| ApiError::not_found(e.body_text()))?;
    let at = read(state.service.store().config_at(revision_number(&text)?)).await?;
    Ok(Json(RevisionDetail {
        item: RevisionItem::from(at.row),
        config: at.config,
    }))
}

/// Diff two revisions
///
/// The changes that turn the config at `a` into the config at `b`; either may be the older.
#[utoipa::path(
    get,
    path = "/v1/revisions/{a}/diff/{b}",
    tag = "revisions",
    operation_id = "diff_revisions",
    params(
        ("a" = u64, Path, description = PATH_REVISION),
        ("b" = u64, Path, description = PATH_REVISION),
    ),
    responses(
        (status = 200, description = "The changes", body = RevisionDiff),
        (status = 404, response = NotFound),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
    )
)]
pub async fn diff(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Json<RevisionDiff>, ApiError> {
    let Path((a, b)) = path.map_err(|e| ApiError::not_found(e.body_text()))?;
    let (from, to) = (revision_number(&a)?, revision_number(&b)?);
    let store = state.service.store();
    let before = read(store.config_at(from)).await?;
    let after = read(store.config_at(to)).await?;
    let changes = content(before.config).diff(&content(after.config));
    Ok(Json(RevisionDiff { from, to, changes }))
}

/// Roll back to a revision
///
/// Makes one new revision whose config equals the config at `n` (none if it already does).
#[utoipa::path(
    post,
    path = "/v1/revisions/{n}/rollback",
    tag = "revisions",
    operation_id = "rollback",
    params(("n" = u64, Path, description = PATH_REVISION), WriteQuery, WriteHeaders),
    responses(
        (status = 200, description = "Rolled back, or a dry run",
         body = ConfigWritten,
         headers(("x-gateway-revision" = i64,
                  description = "The revision made, or the latest when nothing was made"))),
        (status = 400, response = BadRequest),
        (status = 404, response = NotFound),
        (status = 412, response = PreconditionFailed),
        (status = 422, response = Unprocessable),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
    )
)]
pub async fn rollback(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    caller: Caller,
    query: Result<Query<WriteQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Path(text) = path.map_err(|e| ApiError::not_found(e.body_text()))?;
    let revision = revision_number(&text)?;
    let options = write::options(&headers, &caller, query)?;
    let written = state.service.rollback(revision, &options).await?;
    Ok(write::config_written_response(written))
}

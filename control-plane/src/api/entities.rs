//! CRUD handlers shared by every entity kind (`/v1/upstreams`, `/v1/routes`); the described
//! endpoints of each kind are in [`super::collections`].
//!
//! Reads fall back to this replica's in-memory latest snapshot when the database does not
//! answer, in the same shapes; writes need the database and answer 503 without it.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::auth::Caller;
use super::body::{ListQuery, Page, decode_cursor, encode_cursor, parse_entity, resource_json};
use super::error::ApiError;
use super::state::AppState;
use super::write::{self, WriteQuery};
use crate::service::{EntityStored, Written, read};
use crate::snapshot::Snapshot;
use crate::store::{Change, Entity, Record};

fn collection<T: Entity>() -> String {
    format!("/v1/{}s", T::KIND.as_str())
}

fn path_name(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    path.map(|Path(name)| name)
        .map_err(|e| ApiError::not_found(e.body_text()))
}

/// The entity `name` of the snapshot, with its metadata.
fn record_in<T: Entity>(snapshot: &Snapshot, name: &str) -> Option<Record<T>> {
    snapshot.state.get::<T>(name).map(|stored| stored.record())
}

/// [`crate::store::Store::list`] over the in-memory snapshot.
fn list_in<T: Entity>(
    snapshot: &Snapshot,
    after: Option<&str>,
    limit: usize,
    tag: Option<&str>,
) -> (Vec<Record<T>>, bool) {
    let mut items = Vec::new();
    for stored in snapshot.state.iter_after::<T>(after) {
        if tag.is_some_and(|tag| !stored.entity.tags().iter().any(|t| t == tag)) {
            continue;
        }
        if items.len() == limit {
            return (items, true);
        }
        items.push(stored.record());
    }
    (items, false)
}

pub async fn list<T: Entity>(
    State(state): State<AppState>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::invalid_field(None, e.body_text()))?;
    let limit = query.limit()?;
    let after = query.cursor.as_deref().map(decode_cursor).transpose()?;
    let tag = query.tag.as_deref();
    let store = state.service.store();
    let (records, more) = match read(store.list::<T>(after.as_deref(), limit, tag)).await {
        Ok(page) => page,
        Err(error) if error.is_unavailable() => {
            tracing::debug!(%error, "listing from memory");
            list_in::<T>(&state.service.latest(), after.as_deref(), limit, tag)
        }
        Err(error) => return Err(error.into()),
    };
    let next_cursor = match records.last() {
        Some(last) if more => Some(encode_cursor(last.entity.name())),
        _ => None,
    };
    let items = records.iter().map(resource_json).collect();
    Ok(Json(Page { items, next_cursor }).into_response())
}

pub async fn get<T: Entity>(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let name = path_name(path)?;
    let record = match read(state.service.store().get::<T>(&name)).await {
        Ok(record) => record,
        Err(error) if error.is_unavailable() => record_in::<T>(&state.service.latest(), &name),
        Err(error) => return Err(error.into()),
    };
    match record {
        Some(record) => Ok(Json(resource_json(&record)).into_response()),
        None => Err(ApiError::not_found(format!(
            "{} `{name}` does not exist",
            T::KIND
        ))),
    }
}

pub async fn create<T: Entity>(
    State(state): State<AppState>,
    headers: HeaderMap,
    caller: Caller,
    query: Result<Query<WriteQuery>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let options = write::options(&headers, &caller, query)?;
    let entity: T = parse_entity(&body?, None)?;
    let written = state
        .service
        .write(Change::Create(entity), &options)
        .await?;
    Ok(written_response(written))
}

pub async fn put<T: Entity>(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    caller: Caller,
    query: Result<Query<WriteQuery>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let name = path_name(path)?;
    let options = write::options(&headers, &caller, query)?;
    let entity: T = parse_entity(&body?, Some(&name))?;
    let written = state.service.write(Change::Put(entity), &options).await?;
    Ok(written_response(written))
}

pub async fn delete<T: Entity>(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    caller: Caller,
    query: Result<Query<WriteQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let name = path_name(path)?;
    let options = write::options(&headers, &caller, query)?;
    let written = state
        .service
        .write(Change::<T>::Delete(name), &options)
        .await?;
    Ok(written_response(written))
}

/// 201 with `Location` for a new entity, 200 with it for a replaced one, 204 after a delete.
fn written_response<T: Entity>(written: Written<EntityStored<T>>) -> Response {
    let stored = match written {
        Written::DryRun { revision, changes } => {
            return write::dry_run_response(revision, changes);
        }
        Written::Stored(stored) => stored,
    };
    let response = match &stored.record {
        Some(record) => {
            let status = if stored.created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            let mut response = (status, Json(resource_json(record))).into_response();
            if stored.created {
                let location = format!("{}/{}", collection::<T>(), record.entity.name());
                if let Ok(value) = HeaderValue::from_str(&location) {
                    response.headers_mut().insert(header::LOCATION, value);
                }
            }
            response
        }
        None => StatusCode::NO_CONTENT.into_response(),
    };
    write::with_revision(response, stored.revision)
}

//! CRUD handlers shared by every entity kind (`/v1/upstreams`, `/v1/routes`).

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::body::{Page, decode_cursor, encode_cursor, parse_entity, resource_json};
use super::error::ApiError;
use crate::store::{Change, Entity, WriteOutcome};

/// Header naming who made a change, recorded in the revision.
pub const ACTOR_HEADER: &str = "x-gateway-actor";
pub const REVISION_HEADER: &str = "x-gateway-revision";
const DEFAULT_ACTOR: &str = "admin-api";

fn actor(headers: &HeaderMap) -> String {
    headers
        .get(ACTOR_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .unwrap_or(DEFAULT_ACTOR)
        .to_owned()
}

fn collection<T: Entity>() -> String {
    format!("/v1/{}s", T::KIND.as_str())
}

fn path_name(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    path.map(|Path(name)| name)
        .map_err(|e| ApiError::not_found(e.body_text()))
}

pub async fn list<T: Entity>(
    State(state): State<AppState>,
    query: Result<Query<super::body::ListQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::invalid_field(None, e.body_text()))?;
    let limit = query.limit()?;
    let after = query.cursor.as_deref().map(decode_cursor).transpose()?;
    let (records, more) = state
        .store
        .list::<T>(after.as_deref(), limit, query.tag.as_deref())
        .await?;
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
    match state.store.get::<T>(&name).await? {
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
    body: Bytes,
) -> Result<Response, ApiError> {
    let entity: T = parse_entity(&body, None)?;
    let outcome = state
        .store
        .write(Change::Create(entity), &actor(&headers))
        .await?;
    Ok(written(&state, outcome))
}

pub async fn put<T: Entity>(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let name = path_name(path)?;
    let entity: T = parse_entity(&body, Some(&name))?;
    let outcome = state
        .store
        .write(Change::Put(entity), &actor(&headers))
        .await?;
    Ok(written(&state, outcome))
}

pub async fn delete<T: Entity>(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let name = path_name(path)?;
    let outcome = state
        .store
        .write(Change::<T>::Delete(name), &actor(&headers))
        .await?;
    Ok(written(&state, outcome))
}

/// Publishes the new revision to this replica's workers at once, then answers.
fn written<T: Entity>(state: &AppState, outcome: WriteOutcome<T>) -> Response {
    let revision = outcome.revision;
    state.hub.publish(outcome.latest.into());
    let mut response = match &outcome.record {
        Some(record) => {
            let status = if outcome.created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            let mut response = (status, Json(resource_json(record))).into_response();
            if outcome.created {
                let location = format!("{}/{}", collection::<T>(), record.entity.name());
                if let Ok(value) = HeaderValue::from_str(&location) {
                    response.headers_mut().insert(header::LOCATION, value);
                }
            }
            response
        }
        None => StatusCode::NO_CONTENT.into_response(),
    };
    response
        .headers_mut()
        .insert(REVISION_HEADER, HeaderValue::from(revision));
    response
}

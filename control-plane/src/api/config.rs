//! `GET /v1/config` (export the whole config) and `PUT /v1/config` (declarative apply: make the
//! config equal the document, as one revision or not at all).

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use gateway_config::Config;
use serde::Deserialize;

use super::AppState;
use super::document;
use super::entities::read;
use super::error::ApiError;
use super::write::{self, WriteQuery};

const YAML: &str = "application/yaml";

#[derive(Debug, Default, Deserialize)]
pub struct ExportQuery {
    pub format: Option<String>,
}

/// The document form of a config: entities as users write them, no server-set keys.
pub fn document(config: &Config) -> serde_json::Value {
    serde_json::to_value(config).unwrap_or_default()
}

/// Whether the client asked for YAML (`?format=yaml` or `Accept: application/yaml`).
pub fn wants_yaml(format: Option<&str>, headers: &HeaderMap) -> Result<bool, ApiError> {
    match format {
        Some("yaml" | "yml") => Ok(true),
        Some("json") => Ok(false),
        Some(other) => Err(ApiError::invalid_field(
            Some("format".into()),
            format!("`{other}` is not json or yaml"),
        )),
        None => Ok(headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|accept| accept.contains("yaml"))),
    }
}

/// A JSON or YAML rendering of `value`, fields in declaration order (`name` first).
pub fn render(value: &impl serde::Serialize, yaml: bool) -> Response {
    if yaml {
        // Through a JSON value first: serializing the model straight to YAML writes enums as tags
        // (`!prefix /v1`) that no YAML reader of ours takes back.
        let text = serde_json::to_value(value)
            .map(|value| serde_yaml_ng::to_string(&value).unwrap_or_default())
            .unwrap_or_default();
        ([(header::CONTENT_TYPE, YAML)], text).into_response()
    } else {
        axum::Json(value).into_response()
    }
}

pub async fn get(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<ExportQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::invalid_field(None, e.body_text()))?;
    let yaml = wants_yaml(query.format.as_deref(), &headers)?;
    let (revision, config) = match read(state.store.latest_config()).await {
        Ok(latest) => (latest.revision, latest.config),
        Err(error) if error.is_unavailable() => {
            let snapshot = state.hub.current();
            let revision = i64::try_from(snapshot.revision).unwrap_or(i64::MAX);
            (revision, snapshot.config.clone())
        }
        Err(error) => return Err(error.into()),
    };
    let mut response = write::with_revision(render(&config, yaml), revision);
    if let Ok(etag) = HeaderValue::from_str(&format!("\"{revision}\"")) {
        response.headers_mut().insert(header::ETAG, etag);
    }
    Ok(response)
}

pub async fn put(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<WriteQuery>, QueryRejection>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let options = write::options(&headers, query)?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let desired = document::parse(&body, content_type)?;
    let applied =
        write::within(state.store.apply_config(desired, "apply config", &options)).await?;
    Ok(super::revisions::applied_response(&state, applied))
}

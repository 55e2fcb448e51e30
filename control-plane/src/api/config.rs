//! `GET /v1/config` (export the whole config) and `PUT /v1/config` (declarative apply: make the
//! config equal the document, as one revision or not at all).

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Extension, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use gateway_config::Config;
use serde::Deserialize;

use super::auth::Caller;
use super::body::read_limited;
use super::document;
use super::error::ApiError;
use super::limits::Limits;
use super::openapi::{
    BadRequest, ConfigWritten, Internal, PayloadTooLarge, PreconditionFailed, Unavailable,
    Unprocessable,
};
use super::state::AppState;
use super::write::{self, WriteHeaders, WriteQuery};
use crate::service::read;

const YAML: &str = "application/yaml";

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// `json` or `yaml` (`yml`); without it, YAML when `Accept` names YAML, else JSON.
    #[param(pattern = "^(json|yaml|yml)$")]
    pub format: Option<String>,
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

/// Export the whole config
///
/// The entities as users write them, without server-set keys: what `PUT /v1/config` takes back.
/// Falls back to this replica's latest config in memory when the database does not answer.
#[utoipa::path(
    get,
    path = "/v1/config",
    tag = "config",
    operation_id = "export_config",
    params(ExportQuery),
    responses(
        (status = 200, description = "The config at the latest revision",
         content((Config = "application/json"), (Config = "application/yaml")),
         headers(
             ("etag" = String, description = "The revision, quoted"),
             ("x-gateway-revision" = i64, description = "The revision"),
         )),
        (status = 422, response = Unprocessable),
        (status = 500, response = Internal),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<ExportQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::invalid_field(None, e.body_text()))?;
    let yaml = wants_yaml(query.format.as_deref(), &headers)?;
    // This replica's latest state is the export whenever the database agrees on the head, which
    // spares reading every entity back.
    let in_memory = state.service.latest();
    let (revision, config) = match read(state.service.store().head_revision()).await {
        Ok(head) if head == in_memory.state.revision => (head, in_memory.state.to_config()),
        Ok(_) => {
            let latest = read(state.service.store().latest_config()).await?;
            (latest.revision, latest.to_config())
        }
        Err(error) if error.is_unavailable() => {
            (in_memory.state.revision, in_memory.state.to_config())
        }
        Err(error) => return Err(error.into()),
    };
    let mut response = write::with_revision(render(&config, yaml), revision);
    if let Ok(etag) = HeaderValue::from_str(&format!("\"{revision}\"")) {
        response.headers_mut().insert(header::ETAG, etag);
    }
    Ok(response)
}

/// Apply a whole config
///
/// Makes the config equal the document, as one revision or not at all. Every problem of a
/// refused document is listed in the error's `details`. Entities left out are deleted; keys set
/// by the server are ignored. The body is read as JSON when its type says so or it starts with
/// `{`, else as YAML.
#[utoipa::path(
    put,
    path = "/v1/config",
    tag = "config",
    operation_id = "apply_config",
    params(WriteQuery, WriteHeaders),
    request_body(content((Config = "application/json"), (Config = "application/yaml"))),
    responses(
        (status = 200, description = "Applied (`changed` is false and no revision is made when \
            the config already equals the document), or a dry run",
         body = ConfigWritten,
         headers(("x-gateway-revision" = i64,
                  description = "The revision made, or the latest when nothing was made"))),
        (status = 400, response = BadRequest),
        (status = 412, response = PreconditionFailed),
        (status = 413, response = PayloadTooLarge),
        (status = 422, response = Unprocessable),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
    )
)]
pub async fn put(
    State(state): State<AppState>,
    Extension(limits): Extension<Limits>,
    headers: HeaderMap,
    caller: Caller,
    query: Result<Query<WriteQuery>, QueryRejection>,
    body: Body,
) -> Result<Response, ApiError> {
    // The headers first: a bad If-Match is refused before a large body is read.
    let options = write::options(&headers, &caller, query)?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let bytes = read_limited(body, &headers, limits.config_body()).await?;
    let document_limits = limits.document();
    let desired = limits
        .parse(move || document::parse(&bytes, content_type.as_deref(), &document_limits))
        .await?;
    let written = state.service.apply(desired, &options).await?;
    Ok(write::config_written_response(written))
}

//! What every write shares: the actor and message headers, `If-Match`, `?dry_run=true`, and the
//! answer of a whole-config write (`{"revision", "changed", "changes"}`).

use axum::Json;
use axum::extract::Query;
use axum::extract::rejection::QueryRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use gateway_config::Change as ConfigChange;
use serde::Deserialize;
use serde_json::json;

use super::error::ApiError;
use crate::store::{StoreError, WriteOptions};

/// A write that has not finished by then is abandoned (its transaction rolls back) and answered
/// with 503, so that clients are not left hanging on a database that stopped answering.
pub const WRITE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(8);

/// Runs a database write with [`WRITE_TIMEOUT`].
pub async fn within<T>(
    future: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    tokio::time::timeout(WRITE_TIMEOUT, future)
        .await
        .unwrap_or_else(|_| {
            Err(StoreError::Unavailable(
                "the database did not answer in time".into(),
            ))
        })
}

/// Header naming who made a change, recorded in the revision.
pub const ACTOR_HEADER: &str = "x-gateway-actor";
/// Header overriding a write's revision message.
pub const MESSAGE_HEADER: &str = "x-gateway-message";
pub const REVISION_HEADER: &str = "x-gateway-revision";
const DEFAULT_ACTOR: &str = "admin-api";

/// Query parameters every write accepts.
#[derive(Debug, Default, Deserialize)]
pub struct WriteQuery {
    pub dry_run: Option<String>,
}

fn header_text(headers: &HeaderMap, name: impl header::AsHeaderName) -> Option<&str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// The options of a write request, from its headers and query.
pub fn options(
    headers: &HeaderMap,
    query: Result<Query<WriteQuery>, QueryRejection>,
) -> Result<WriteOptions, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::invalid_field(None, e.body_text()))?;
    let dry_run = match query.dry_run.as_deref() {
        None | Some("false" | "0") => false,
        Some("true" | "1" | "") => true,
        Some(other) => {
            return Err(ApiError::invalid_field(
                Some("dry_run".into()),
                format!("`{other}` is not true or false"),
            ));
        }
    };
    Ok(WriteOptions {
        actor: header_text(headers, ACTOR_HEADER)
            .unwrap_or(DEFAULT_ACTOR)
            .to_owned(),
        message: header_text(headers, MESSAGE_HEADER).map(str::to_owned),
        if_match: if_match(headers)?,
        dry_run,
    })
}

/// `If-Match: <revision>`, quotes (and a weak `W/` prefix) optional; `*` matches anything.
fn if_match(headers: &HeaderMap) -> Result<Option<i64>, ApiError> {
    let Some(text) = header_text(headers, header::IF_MATCH) else {
        return Ok(None);
    };
    if text == "*" {
        return Ok(None);
    }
    let bare = text.strip_prefix("W/").unwrap_or(text).trim_matches('"');
    bare.parse::<i64>().map(Some).map_err(|_| {
        ApiError::invalid_field(
            Some("If-Match".into()),
            format!("`{text}` is not a revision number"),
        )
    })
}

/// The answer to a dry run: what the write would change, at the current revision.
pub fn dry_run_response(revision: i64, changes: Vec<ConfigChange>) -> Response {
    let body = json!({
        "dry_run": true,
        "revision": revision,
        "changed": !changes.is_empty(),
        "changes": changes,
    });
    with_revision(Json(body).into_response(), revision)
}

/// The answer to a whole-config write.
pub fn applied_response(revision: i64, changes: Vec<ConfigChange>) -> Response {
    let body = json!({
        "revision": revision,
        "changed": !changes.is_empty(),
        "changes": changes,
    });
    with_revision((StatusCode::OK, Json(body)).into_response(), revision)
}

pub fn with_revision(mut response: Response, revision: i64) -> Response {
    response
        .headers_mut()
        .insert(REVISION_HEADER, HeaderValue::from(revision));
    response
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn if_match_forms() {
        let mut headers = HeaderMap::new();
        assert_eq!(if_match(&headers).unwrap(), None);
        for (value, expected) in [
            ("7", Some(7)),
            ("\"7\"", Some(7)),
            ("W/\"8\"", Some(8)),
            ("*", None),
        ] {
            headers.insert(header::IF_MATCH, HeaderValue::from_static(value));
            assert_eq!(if_match(&headers).unwrap(), expected, "{value}");
        }
        headers.insert(header::IF_MATCH, HeaderValue::from_static("abc"));
        assert_eq!(
            if_match(&headers).unwrap_err().field.as_deref(),
            Some("If-Match")
        );
    }
}
